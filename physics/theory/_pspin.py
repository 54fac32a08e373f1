"""Spherical p-spin glass: thermodynamics, dynamics and landscape, in Crisanti–Sommers (CS) units.

Convention (the project's, ``../shared/REFERENCES.md``): ``Σ_i s_i² = N``, ``E[H(s) H(s')] = N ξ(q)`` with
``q = s·s'/N`` and ``ξ(q) = Σ_p c_p² q^p / 2`` (a pure p-spin has ``ξ(q) = q^p/2``). Energies are per spin.

The probability literature (Auffinger–Ben Arous–Černý "ABC", Subag, Choromanska et al.) normalizes the covariance
to ``N q^p``, so ``E_ABC = √2 E_CS`` and ``T_ABC = √2 T_CS``: :func:`pspin_to_abc` and :func:`pspin_from_abc`
convert energies and temperatures alike. Every function here takes and returns CS values; nothing is tabulated,
each number is solved from its defining equation:

* paramagnet ``e(T) = -ξ(1)/T`` (annealed = quenched for T > T_s);
* dynamical temperature T_d: the largest T where ``β² ξ'(q) = q/(1-q)`` has a root q ∈ (0, 1) (mode coupling,
  Crisanti–Horner–Sommers, Z. Phys. B 92:257, 1993); pure p: ``T_d² = p (p-2)^{p-2} / (2 (p-1)^{p-1})``;
* static temperature T_s: the 1RSB solution at m = 1, ``β² ξ'(q) = q/(1-q)`` and ``β² ξ(q) + q + ln(1-q) = 0``
  (Crisanti–Sommers, Z. Phys. B 87:341, 1992);
* threshold ``E_th = -√(2(p-1)/p)`` and its finite-T form e_th(T) (Cugliandolo–Kurchan, PRL 71:173, 1993);
* ground state E_0 = the zero of the ABC complexity of minima Θ_{0,p}, and the complexities Θ_{k,p}(u)
  (Auffinger, Ben Arous, Černý, CPAM 66:165, 2013, Theorems 2.5, 2.8 and 2.12);
* the Riemannian Hessian at a critical point of energy e: a semicircle centred at ``-p e`` of radius
  ``2√ξ''(1) = √(2p(p-1))`` (ABC 2013 §2; Cavagna, Giardina, Parisi, PRB 57:11251, 1998).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.optimize import brentq, minimize_scalar

__all__ = [
    "pspin_xi",
    "pspin_to_abc",
    "pspin_from_abc",
    "pspin_paramagnetic_energy",
    "pspin_dynamical_temperature",
    "pspin_static_temperature",
    "pspin_threshold_energy",
    "pspin_threshold_energy_at",
    "pspin_threshold_overlap",
    "pspin_complexity",
    "pspin_ground_state_energy",
    "pspin_hessian_semicircle",
    "pspin_hessian_density",
    "pspin_hessian_index_fraction",
]

_SQRT2 = math.sqrt(2.0)


# --- mixtures --------------------------------------------------------------------------------------------------


def _weights(p) -> dict[int, float]:
    """``{p: c_p}`` from an int (pure model, c_p = 1) or a mapping; validated."""
    if isinstance(p, Mapping):
        items = dict(p)
    else:
        items = {p: 1.0}
    out = {}
    for deg, c in items.items():
        if isinstance(deg, bool) or not isinstance(deg, (int, np.integer)) or deg < 2:
            raise ValueError(f"p={p!r}: degrees must be integers ≥ 2")
        c = float(c)
        if not math.isfinite(c) or c < 0:
            raise ValueError(f"p={p!r}: the weight c_{deg} = {c} must be a finite number ≥ 0")
        if c > 0:
            out[int(deg)] = c
    if not out:
        raise ValueError(f"p={p!r}: at least one weight c_p must be > 0")
    return out


def _pure(p) -> int:
    if isinstance(p, Mapping):
        w = _weights(p)
        if len(w) == 1 and next(iter(w.values())) == 1.0:
            return next(iter(w))
        raise ValueError(f"p={p!r}: this formula is for a pure p-spin (an int p ≥ 2, or {{p: 1}})")
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 2:
        raise ValueError(f"p={p!r}: must be an integer ≥ 2")
    return int(p)


def pspin_xi(q, p, derivative: int = 0):
    """The covariance function ``ξ(q) = Σ_p c_p² q^p / 2`` (CS) or its ``derivative``-th derivative in q.

    ``p`` is an int (pure model) or a mapping ``{p: c_p}``.
    """
    q = np.asarray(q, dtype=np.float64)
    out = np.zeros_like(q)
    for deg, c in _weights(p).items():
        if derivative > deg:
            continue
        falling = math.perm(deg, derivative)  # p (p-1) … (p-d+1)
        out = out + 0.5 * c * c * falling * q ** (deg - derivative)
    return float(out) if out.ndim == 0 else out


def pspin_to_abc(value):
    """CS → ABC/Choromanska units for energies and temperatures: multiply by √2 (covariance N ξ → 2 N ξ)."""
    return _SQRT2 * np.asarray(value, dtype=np.float64) if np.ndim(value) else _SQRT2 * float(value)


def pspin_from_abc(value):
    """ABC/Choromanska → CS units for energies and temperatures: divide by √2."""
    return np.asarray(value, dtype=np.float64) / _SQRT2 if np.ndim(value) else float(value) / _SQRT2


def _check_temperature(temperature, allow_zero=False):
    t = np.asarray(temperature, dtype=np.float64)
    bad = ~(t >= 0) if allow_zero else ~(t > 0)
    if np.any(bad) or np.any(~np.isfinite(t)):
        raise ValueError(f"temperature={temperature!r}: must be finite and {'≥' if allow_zero else '>'} 0")
    return t


# --- thermodynamics --------------------------------------------------------------------------------------------


def pspin_paramagnetic_energy(temperature, p):
    """Equilibrium energy per spin of the paramagnet, ``e(T) = -ξ(1)/T`` (pure p: ``-1/(2T)``), valid for T > T_s.

    The annealed free energy is ``f = -T s_sphere - ξ(1)/(2T)`` (``E[e^{-βH}] = e^{β² N ξ(1)/2}`` for a Gaussian
    field of variance N ξ(1)); it is the quenched one above T_s (Crisanti–Sommers 1992, the RS solution q = 0).
    """
    t = _check_temperature(temperature)
    return -pspin_xi(1.0, p) / t if np.ndim(t) else -pspin_xi(1.0, p) / float(t)


def _mct_gap(q, p):
    """``ξ'(q)(1-q)/q``: the T² at which ``β² ξ'(q) = q/(1-q)`` holds at overlap q."""
    return pspin_xi(q, p, 1) * (1.0 - q) / q


def pspin_dynamical_temperature(p) -> float:
    """Dynamical (mode-coupling) temperature T_d, solved: ``T_d² = max_{0<q<1} ξ'(q)(1-q)/q``.

    Below T_d the equation ``β² ξ'(q) = q/(1-q)`` for the plateau of the two-time correlation has a root q > 0 and
    dynamics from a random start no longer equilibrates. Pure p: ``√(p (p-2)^{p-2} / (2 (p-1)^{p-1}))``, attained
    at ``q_d = (p-2)/(p-1)``; p = 3: √(3/8). Crisanti, Horner, Sommers, Z. Phys. B 92:257 (1993), Eq. 5.6.
    For p = 2 the transition is continuous and T_d = T_s = √ξ''(0) = 1.
    """
    w = _weights(p)
    if min(w) == 2:  # ξ'(q)/q → ξ''(0) as q → 0: the supremum may sit at q → 0 (continuous transition)
        edge = pspin_xi(0.0, p, 2)
    else:
        edge = 0.0
    res = minimize_scalar(lambda q: -_mct_gap(q, p), bounds=(1e-9, 1 - 1e-9), method="bounded",
                          options={"xatol": 1e-13})
    # refine with a dense grid too: the gap can be multimodal for mixtures
    grid = np.linspace(1e-6, 1 - 1e-6, 20001)
    best = max(float(-res.fun), float(np.max(_mct_gap(grid, p))), edge)
    return math.sqrt(best)


def _rsb1_residual(q, p):
    """``β² ξ(q) + q + ln(1-q)`` with β² eliminated by ``β² ξ'(q) = q/(1-q)``."""
    beta2 = q / ((1.0 - q) * pspin_xi(q, p, 1))
    return beta2 * pspin_xi(q, p) + q + math.log1p(-q)


def pspin_static_temperature(p) -> float:
    """Static (Kauzmann) temperature T_s, solved from the 1RSB equations at m = 1.

    ``β² ξ'(q) = q/(1-q)`` and ``β² ξ(q) + q + ln(1-q) = 0`` (Crisanti–Sommers, Z. Phys. B 87:341, 1992, Eqs. 4.9
    and 4.11 at m = 1). Eliminating β leaves one equation in q ∈ (0, 1), solved by bracketing; then
    ``T_s = √(ξ'(q)(1-q)/q)``. p = 3: 0.586054. For p = 2 (no 1RSB root) the transition is continuous at
    T_s = √ξ''(0) = 1; a mixture without a root and without a p = 2 term raises ValueError.
    """
    qs = np.linspace(1e-4, 1 - 1e-9, 4001)
    r = np.array([_rsb1_residual(q, p) for q in qs])
    # the physical solution is the largest sign change from − to + (for pure p there is exactly one)
    idx = np.nonzero((r[:-1] < 0) & (r[1:] >= 0))[0]
    if idx.size == 0:
        w = _weights(p)
        if 2 in w:
            return math.sqrt(pspin_xi(0.0, p, 2))
        raise ValueError(f"p={p!r}: no 1RSB (m = 1) solution; the transition is not discontinuous")
    i = idx[-1]
    q = brentq(lambda x: _rsb1_residual(x, p), qs[i], qs[i + 1], xtol=1e-15, rtol=1e-15)
    return math.sqrt(_mct_gap(q, p))


# --- threshold -------------------------------------------------------------------------------------------------


def pspin_threshold_energy(p) -> float:
    """Zero-temperature threshold energy per spin ``E_th = -√(2(p-1)/p)`` (CS); ABC form ``-2√((p-1)/p)``.

    Where the Hessian semicircle of critical points touches zero (``-p E_th = √(2p(p-1))``), the energy that
    gradient descent from a random start reaches as N → ∞. Pure p only. Cugliandolo–Kurchan 1993, Eq. 23;
    ABC 2013, E_∞.
    """
    p = _pure(p)
    return -math.sqrt(2.0 * (p - 1) / p)


def pspin_threshold_overlap(temperature, p):
    """Plateau overlap q of the aging state: the largest root of ``β² p(p-1) q^{p-2} (1-q)² / 2 = 1``, T ≤ T_d.

    Cugliandolo–Kurchan, PRL 71:173 (1993), Eq. 20 (the marginality condition), in CS units. Returns 1 at T = 0
    and 0 above T_d (no aging plateau). Pure p ≥ 3.
    """
    p = _pure(p)
    if p < 3:
        raise ValueError(f"p={p!r}: the Cugliandolo–Kurchan threshold needs p ≥ 3")
    t = _check_temperature(temperature, allow_zero=True)
    td = pspin_dynamical_temperature(p)

    def one(tt):
        if tt == 0:
            return 1.0
        if tt >= td:
            return 0.0
        beta2 = 1.0 / (tt * tt)
        f = lambda q: beta2 * p * (p - 1) * q ** (p - 2) * (1 - q) ** 2 / 2 - 1.0  # noqa: E731
        q_d = (p - 2) / (p - 1)  # the root at T_d; the physical root stays above it for T < T_d
        return brentq(f, q_d * (1 - 1e-12), 1.0, xtol=1e-15, rtol=1e-15)

    out = np.vectorize(one, otypes=[np.float64])(t)
    return float(out) if out.ndim == 0 else out


def pspin_threshold_energy_at(temperature, p):
    """Asymptotic energy per spin of aging dynamics at temperature T (Cugliandolo–Kurchan 1993), CS units.

    ``e_th(T) = -(β/2) [1 - (1-x) q^p]`` with q the plateau (:func:`pspin_threshold_overlap`) and
    ``x = (p-2)(1-q)/q``; ``e_th(0) = E_th`` (the limit βz with z = β(1-q) → √(2/(p(p-1)))) and
    ``e_th(T_d) = -1/(2T_d)``. Above T_d dynamics equilibrates and this returns the paramagnetic ``-1/(2T)``.
    CK, PRL 71:173 (1993), Eqs. 20–22.
    """
    p = _pure(p)
    t = _check_temperature(temperature, allow_zero=True)
    e_th = pspin_threshold_energy(p)
    td = pspin_dynamical_temperature(p)

    def one(tt):
        if tt == 0:
            return e_th
        if tt >= td:
            return -0.5 / tt
        beta = 1.0 / tt
        q = pspin_threshold_overlap(tt, p)
        x = (p - 2) * (1 - q) / q
        return -0.5 * beta * (1.0 - (1.0 - x) * q**p)

    out = np.vectorize(one, otypes=[np.float64])(t)
    return float(out) if out.ndim == 0 else out


# --- complexity and ground state -------------------------------------------------------------------------------


def _abc_e_inf(p: int) -> float:
    return 2.0 * math.sqrt((p - 1) / p)


def _abc_i1(u, p: int):
    """ABC's ``I_1(u) = -(u/E_∞²) √(u² - E_∞²) - ln(-u + √(u² - E_∞²)) + ln E_∞`` for u ≤ -E_∞ (0 above)."""
    e_inf = _abc_e_inf(p)
    u = np.asarray(u, dtype=np.float64)
    uu = np.minimum(u, -e_inf)
    root = np.sqrt(np.maximum(uu * uu - e_inf * e_inf, 0.0))
    return -(uu / e_inf**2) * root - np.log(-uu + root) + math.log(e_inf)


def pspin_complexity(energy, p, index: int | None = None):
    """Annealed complexity (1/N) ln E[#critical points with energy per spin ≤ e], e in CS units.

    With ``u = √2 e`` (ABC units), ``E_∞ = 2√((p-1)/p)`` and ABC's ``I_1`` (see REFERENCES.md):
    ``index = k`` gives Θ_{k,p}(u) = ½ ln(p-1) - (p-2)/(4(p-1)) u² - (k+1) I_1(u) for u ≤ -E_∞ and the constant
    ½ ln(p-1) - (p-2)/p above; ``index=None`` gives all critical points, Θ_p(u): the same with k+1 → 1 below -E_∞,
    ½ ln(p-1) - (p-2)/(4(p-1)) u² on [-E_∞, 0], and ½ ln(p-1) for u ≥ 0 (counts are cumulative in the energy).
    Auffinger, Ben Arous, Černý, CPAM 66:165 (2013), Theorems 2.5 and 2.8. Pure p ≥ 2.
    """
    p = _pure(p)
    if index is not None and (isinstance(index, bool) or int(index) != index or index < 0):
        raise ValueError(f"index={index!r}: must be None (all critical points) or an integer ≥ 0")
    u = np.sqrt(2.0) * np.asarray(energy, dtype=np.float64)
    e_inf = _abc_e_inf(p)
    a = 0.5 * math.log(p - 1)
    b = (p - 2) / (4 * (p - 1))
    i1 = _abc_i1(u, p)
    if index is None:
        out = np.where(u <= -e_inf, a - b * u * u - i1, np.where(u <= 0, a - b * u * u, a))
    else:
        out = np.where(u <= -e_inf, a - b * u * u - (index + 1) * i1, a - (p - 2) / p)
    return float(out) if out.ndim == 0 else out


def pspin_ground_state_energy(p) -> float:
    """Ground-state energy per spin E_0 (CS): the zero of the complexity of minima Θ_{0,p} below -E_∞, over √2.

    Θ_{0,p} is increasing on (-∞, -E_∞] from -∞ to ½ ln(p-1) - (p-2)/p > 0 (p ≥ 3), so the zero is unique and is
    the ground state (ABC 2013, Theorem 2.12 with Subag's matching lower bound, Ann. Probab. 45:3385, 2017).
    p = 3: E_0 = -1.656998 (ABC) = -1.171675 (CS). p = 2 gives the edge -1 of the semicircle.
    """
    p = _pure(p)
    e_inf = _abc_e_inf(p)
    if p == 2:
        return -e_inf / _SQRT2
    u0 = brentq(lambda u: pspin_complexity(u / _SQRT2, p, 0), -10.0 * e_inf, -e_inf, xtol=1e-15, rtol=1e-15)
    return u0 / _SQRT2


# --- Hessian ---------------------------------------------------------------------------------------------------


def pspin_hessian_semicircle(energy, p) -> tuple[float, float]:
    """Centre and radius of the Riemannian Hessian spectrum at a critical point of energy per spin ``e`` (CS).

    The Euclidean Hessian is a GOE of radius ``2√ξ''(1) = √(2p(p-1))`` shifted by the radial term
    ``-(s·∇H/N) = -p e`` (H homogeneous of degree p), so the semicircle is centred at ``-p e``. Its left edge
    vanishes at ``e = E_th``. ABC 2013, Eq. 2.9; Cavagna–Giardina–Parisi, PRB 57:11251 (1998).
    """
    p = _pure(p)
    e = np.asarray(energy, dtype=np.float64)
    centre = -p * e
    radius = math.sqrt(2.0 * p * (p - 1))
    return (float(centre) if centre.ndim == 0 else centre), radius


def pspin_hessian_density(eigenvalue, energy, p):
    """Semicircle density ``ρ(λ) = (2/(π r²)) √(r² - (λ - c)²)`` with (c, r) from :func:`pspin_hessian_semicircle`."""
    c, r = pspin_hessian_semicircle(energy, p)
    x = np.asarray(eigenvalue, dtype=np.float64) - c
    out = 2.0 / (np.pi * r * r) * np.sqrt(np.maximum(r * r - x * x, 0.0))
    return float(out) if out.ndim == 0 else out


def pspin_hessian_index_fraction(energy, p):
    """Fraction of negative Hessian eigenvalues (index / N) of the semicircle at energy per spin e.

    ``∫_{-∞}^0 ρ(λ) dλ = F(-c/r)`` with ``F(x) = ½ + (x √(1-x²) + arcsin x)/π`` clipped to [0, 1]; it is 0 for
    ``e ≤ E_th`` (minima) and grows above the threshold (saddles with an extensive index).
    """
    c, r = pspin_hessian_semicircle(energy, p)
    x = np.clip(-np.asarray(c, dtype=np.float64) / r, -1.0, 1.0)
    out = 0.5 + (x * np.sqrt(1 - x * x) + np.arcsin(x)) / np.pi
    return float(out) if out.ndim == 0 else out
