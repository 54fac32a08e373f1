"""Exact results for the random energy model family, σ ∈ {−1, +1}^n, ``Var E = n/2`` (the p-spin CS convention).

* REM (Derrida 1980, PRL 45:79; 1981, PRB 24:2613): 2^n independent energies ``E ~ N(0, n/2)``. Per spin, for
  ``T ≥ T_c = 1/(2√ln 2)``: ``f = −T ln 2 − 1/(4T)``, ``u = −1/(2T)``, ``s = ln 2 − 1/(4T²)``; below T_c the
  measure freezes on the lowest states: ``f = u = −√ln 2``, ``s = 0``.
* GREM (Derrida 1985, J. Phys. Lett. 46:L401; Derrida & Gardner 1986, J. Phys. C 19:2253): K levels, level i with
  ``α_i^n`` branches per node and energy variance ``a_i n/2``. Level i freezes at ``T_i = ½ √(a_i / ln α_i)``; when
  the T_i do not decrease along the tree, consecutive levels merge along the concave hull of the cumulative
  variance A as a function of the cumulative entropy L (Capocaccia, Cassandro & Picco 1987; Bovier & Kurkova 2004,
  Ann. IHP 40:439, Thm 1.5).
* Minimal frustration (Bryngelson & Wolynes 1987, PNAS 84:7524): a REM of ``e^{S_0}`` misfolded states with
  ruggedness ΔE and a native state a gap δE_s below their mean. ``T_g = ΔE/√(2 S_0)``; T_f solves
  ``δE_s = ΔE²/(2 T_f) + T_f S_0`` on the branch T_f ≥ T_g.
* The REM-plus-native-state model at finite n, exactly (quenched average over the disorder), from the Laplace
  representations ``ln Z = ∫_0^∞ (e^{−t} − e^{−tZ}) dt/t`` and ``1/(1+x) = ∫_0^∞ e^{−t(1+x)} dt``: the energies are
  independent, so ``E e^{−tZ}`` factorizes into one-dimensional Gaussian integrals (the REM's Z studied through its
  Laplace transform: Gardner & Derrida 1989, J. Phys. A 22:1975).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "rem_critical_temperature",
    "rem_free_energy",
    "rem_energy",
    "rem_entropy",
    "grem_freezing_temperatures",
    "grem_free_energy",
    "bryngelson_wolynes",
    "rem_native_free_energy",
    "rem_native_occupancy",
]

_LN2 = float(np.log(2.0))


def _check_temperature(temperature):
    t = np.asarray(temperature, dtype=np.float64)
    if np.any(~(t > 0)):
        raise ValueError(f"temperature={temperature!r}: must be > 0")
    return t


def rem_critical_temperature() -> float:
    """Freezing temperature of the REM, ``T_c = 1/(2√ln 2) = 0.600561`` (Var E = n/2). Derrida 1981, eq. (2.13)."""
    return 0.5 / np.sqrt(_LN2)


def rem_free_energy(temperature):
    """REM free energy per spin ``f(T) = −T ln 2 − 1/(4T)`` for T ≥ T_c, ``−√ln 2`` below (Derrida 1981)."""
    t = _check_temperature(temperature)
    return np.where(t >= rem_critical_temperature(), -t * _LN2 - 0.25 / t, -np.sqrt(_LN2))


def rem_energy(temperature):
    """REM energy per spin ``u(T) = −1/(2T)`` for T ≥ T_c, ``−√ln 2`` below."""
    t = _check_temperature(temperature)
    return np.where(t >= rem_critical_temperature(), -0.5 / t, -np.sqrt(_LN2))


def rem_entropy(temperature):
    """REM entropy per spin ``s(T) = ln 2 − 1/(4T²)`` for T ≥ T_c, 0 below (it vanishes continuously at T_c)."""
    t = _check_temperature(temperature)
    return np.where(t >= rem_critical_temperature(), _LN2 - 0.25 / t**2, 0.0)


def _grem_levels(variance_shares, log_branchings):
    a = np.atleast_1d(np.asarray(variance_shares, dtype=np.float64))
    la = np.atleast_1d(np.asarray(log_branchings, dtype=np.float64))
    if a.ndim != 1 or a.size == 0 or np.any(~(a > 0)):
        raise ValueError(f"variance_shares={variance_shares!r}: must be a non-empty list of numbers > 0")
    if la.shape != a.shape or np.any(~(la > 0)):
        raise ValueError(
            f"log_branchings={log_branchings!r}: must be {a.size} numbers > 0 (per-spin ln α_i, one per level)"
        )
    # Concave hull of the cumulative variance A(L) over cumulative entropy L, from (0, 0): a vertex is kept when the
    # slope a/ln α (∝ T_i²) strictly decreases; otherwise the two levels merge (upper hull, monotone chain).
    hull = [(0.0, 0.0)]
    for L, A in zip(np.cumsum(la), np.cumsum(a)):
        while len(hull) >= 2:
            (l0, a0), (l1, a1) = hull[-2], hull[-1]
            # keep hull[-1] only if it lies strictly above the chord from hull[-2] to the new point
            if (a1 - a0) * (L - l0) > (A - a0) * (l1 - l0):
                break
            hull.pop()
        hull.append((float(L), float(A)))
    pts = np.array(hull)
    return np.diff(pts[:, 1]), np.diff(pts[:, 0])


def grem_freezing_temperatures(variance_shares, log_branchings):
    """Freezing temperatures ``T_j = ½ √(a_j / ln α_j)`` of the effective (merged) GREM levels, top level first.

    Levels whose T_i do not decrease along the tree are merged into one effective level with ``a = Σ a_i``,
    ``ln α = Σ ln α_i`` (the concave hull of A(L)); the returned temperatures strictly decrease.
    Returns ``(temperatures, a_eff, log_alpha_eff)``.
    """
    a, la = _grem_levels(variance_shares, log_branchings)
    return 0.5 * np.sqrt(a / la), a, la


def grem_free_energy(temperature, variance_shares, log_branchings):
    """GREM free energy per spin, with merged levels where the freezing temperatures are out of order.

    ``f(T) = −Σ_{T > T_j} [T ln α_j + a_j/(4T)] − Σ_{T ≤ T_j} √(a_j ln α_j)`` over the effective levels j of
    :func:`grem_freezing_temperatures`. ``log_branchings`` are per-spin ``ln α_i`` (Σ = ln 2 for Ising spins);
    ``variance_shares`` the ``a_i`` (Σ = 1 in the Var E = n/2 convention). Derrida & Gardner 1986, eq. (2.9);
    Bovier & Kurkova 2004, Thm 1.5 (concave hull).
    """
    t = _check_temperature(temperature)
    tj, a, la = grem_freezing_temperatures(variance_shares, log_branchings)
    tt = t[..., None]
    hot = -(tt * la + a / (4.0 * tt))
    frozen = -np.sqrt(a * la) * np.ones_like(tt)
    return np.sum(np.where(tt > tj, hot, frozen), axis=-1)


def bryngelson_wolynes(entropy, ruggedness, gap):
    """Glass and folding temperatures ``(T_g, T_f)`` of a REM of misfolded states plus a native state.

    ``T_g = ΔE / √(2 S_0)``; ``T_f`` is the root ≥ T_g of ``δE_s = ΔE²/(2T_f) + T_f S_0``, i.e.
    ``T_f/T_g + T_g/T_f = √(2/S_0) δE_s/ΔE``. When ``δE_s < ΔE √(2 S_0)`` the native state lies above the lowest
    misfolded states and never dominates: ``T_f = nan`` (no folding transition; the system only glasses).
    Arguments broadcast. Bryngelson & Wolynes, PNAS 84:7524 (1987); Onuchic et al., Annu. Rev. Phys. Chem. 48:545.

    Args:
      entropy: S_0 > 0, the log number of misfolded states (n ln 2 for n Ising spins).
      ruggedness: ΔE > 0, the standard deviation of the misfolded energies (√(n/2) here).
      gap: δE_s, the stability gap of the native state below the misfolded mean.
    """
    s0 = np.asarray(entropy, dtype=np.float64)
    de = np.asarray(ruggedness, dtype=np.float64)
    gap = np.asarray(gap, dtype=np.float64)
    if np.any(~(s0 > 0)):
        raise ValueError(f"entropy={entropy!r}: must be > 0")
    if np.any(~(de > 0)):
        raise ValueError(f"ruggedness={ruggedness!r}: must be > 0")
    tg = de / np.sqrt(2.0 * s0)
    disc = gap**2 - 2.0 * s0 * de**2
    with np.errstate(invalid="ignore"):
        tf = np.where(disc >= 0, (gap + np.sqrt(np.maximum(disc, 0.0))) / (2.0 * s0), np.nan)
    return tg, tf


# --- REM plus a native state, exact at finite n ------------------------------------------------------------------


def _log_one_minus_laplace(log_s, beta, sigma, num_states):
    """``M ln E[exp(−s e^{−βE})]`` for each ``ln s`` in ``log_s`` (the log Laplace transform of M lognormals).

    E ~ N(0, σ²); the Gaussian integral is a trapezoid rule on a grid fine on the scale 1/(βσ) of the integrand's
    step and wide enough that M·(tail mass) beyond it is < 1e-15.
    """
    reach = np.sqrt(2.0 * np.log(max(num_states, 2.0))) + 9.0
    h = min(0.02, 0.25 / max(beta * sigma, 1e-12))
    g = np.arange(-reach, reach + h, h)
    dens = np.exp(-0.5 * g**2) / np.sqrt(2.0 * np.pi) * h
    dens[0] *= 0.5
    dens[-1] *= 0.5
    out = np.empty(log_s.shape)
    for i0 in range(0, log_s.size, 256):
        ls = log_s[i0 : i0 + 256, None]
        x = np.exp(np.minimum(ls - beta * sigma * g, 700.0))  # s · e^{−βσg}
        one_minus = -(np.expm1(-x) @ dens)  # E[1 − e^{−s w}] ≥ 0
        out[i0 : i0 + 256] = num_states * np.log1p(-np.minimum(one_minus, 1.0 - 1e-300))
    return out


def _native_setup(temperature, gap, n):
    t = _check_temperature(temperature)
    if int(n) != n or not 1 <= n <= 64:
        raise ValueError(f"n={n!r}: must be an integer in [1, 64]")
    gap = float(gap)
    return np.atleast_1d(t), gap, int(n)


def rem_native_free_energy(temperature, gap: float, n: int):
    """Quenched free energy per spin ``−T E[ln Z]/n`` of the REM-plus-native-state model, exact at finite n.

    Model: the native configuration has energy ``−n·gap``; the other ``M = 2^n − 1`` configurations have independent
    energies ``N(0, n/2)``. With ``φ(t) = E exp(−t e^{−βE})`` for one misfolded state,

        E ln Z = ∫_0^∞ [e^{−t} − exp(−t e^{βn·gap}) φ(t)^M] dt / t,

    integrated in u = ln t on a grid of step 0.02 (φ by a Gaussian quadrature; relative accuracy ~1e-7).
    As n → ∞ it tends to ``min(−gap, f_REM(T))`` (Bryngelson & Wolynes 1987). The law of the REM's Z through its
    Laplace transform: Gardner & Derrida, J. Phys. A 22:1975 (1989).
    """
    t, gap, n = _native_setup(temperature, gap, n)
    sigma = np.sqrt(n / 2.0)
    num = 2.0**n - 1.0
    out = np.empty(t.shape)
    for i, temp in enumerate(t):
        beta = 1.0 / temp
        log_zn = beta * n * gap
        # Below u = −ln E[Z] − 40 both terms of the integrand equal 1 − O(e^u Z); above u = 6 both vanish.
        ln_ez = np.logaddexp(log_zn, np.log(num) + beta**2 * sigma**2 / 2.0)
        lo = -ln_ez - 40.0
        hi = 6.0
        u = np.arange(lo, hi, 0.02)
        log_phi_m = _log_one_minus_laplace(u, beta, sigma, num)
        ln_z = _frullani(u, log_zn, log_phi_m)
        out[i] = -temp * ln_z / n
    return out if np.ndim(temperature) else out[0]


def _frullani(u, log_zn, log_phi_m):
    """``∫ [e^{−e^u} − E e^{−e^u Z}] du`` on the grid u (both terms → 1 below it and → 0 above it)."""
    integrand = np.exp(-np.exp(u)) - np.exp(-np.exp(u + log_zn) + log_phi_m)
    return np.trapezoid(integrand, u)


def rem_native_occupancy(temperature, gap: float, n: int):
    """Disorder-averaged Boltzmann weight of the native state, exact at finite n (same model as above).

    ``E p_N = E[1/(1 + e^{−βn·gap} Z_mis)] = ∫_0^∞ e^{−t} φ(t e^{−βn·gap})^M dt`` with
    ``φ(s) = E exp(−s e^{−βE})``, ``E ~ N(0, n/2)``, ``M = 2^n − 1``; integrated in ln t. As n → ∞ it tends to a
    step from 1 to 0 at the Bryngelson–Wolynes T_f.
    """
    t, gap, n = _native_setup(temperature, gap, n)
    sigma = np.sqrt(n / 2.0)
    num = 2.0**n - 1.0
    out = np.empty(t.shape)
    for i, temp in enumerate(t):
        beta = 1.0 / temp
        log_c = -beta * n * gap
        u = np.arange(-60.0, 6.0, 0.02)
        log_phi_m = _log_one_minus_laplace(u + log_c, beta, sigma, num)
        out[i] = np.trapezoid(np.exp(u - np.exp(u) + log_phi_m), u)
    return out if np.ndim(temperature) else out[0]
