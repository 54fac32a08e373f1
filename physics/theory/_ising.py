"""Exact results for the 2D Ising model ``H = -J Σ_<ij> s_i s_j`` on the square lattice (k_B = 1).

* Onsager (1944) energy per spin and Yang (1952) spontaneous magnetization, L → ∞.
* Kaufman (1949, Phys. Rev. 76:1232) partition function of the finite L×L torus, with the sign of γ_0 as in
  Beale (1996, PRL 76:78): ``γ_0 = 2K + ln tanh K`` (negative below T_c). Energy and specific heat are exact
  derivatives of ln Z (5-point differences of a float64 ln Z, relative error < 1e-9).
* The Binder cumulant crossing on periodic squares, U* = 0.61069 (Kamieniarz & Blöte 1993).
"""
from __future__ import annotations

import numpy as np
from scipy.special import ellipk

__all__ = [
    "ising_critical_temperature",
    "ising_critical_coupling",
    "onsager_energy",
    "onsager_free_energy",
    "yang_magnetization",
    "kaufman_log_partition",
    "kaufman_energy",
    "kaufman_specific_heat",
    "ising_binder_crossing",
    "ISING_2D_EXPONENTS",
]

#: Critical exponents of the 2D Ising universality class and the RG eigenvalue exponents.
ISING_2D_EXPONENTS = {"nu": 1.0, "beta": 0.125, "gamma": 1.75, "eta": 0.25, "y_t": 1.0, "y_h": 1.875}


def ising_critical_temperature(J: float = 1.0) -> float:
    """T_c = 2J / ln(1 + √2) = 2.2691853 J."""
    return 2.0 * J / np.log1p(np.sqrt(2.0))


def ising_critical_coupling() -> float:
    """K_c = J/T_c = ln(1 + √2)/2 = 0.4406868."""
    return 0.5 * np.log1p(np.sqrt(2.0))


def _check_temperature(temperature):
    t = np.asarray(temperature, dtype=np.float64)
    if np.any(~(t > 0)):
        raise ValueError(f"temperature={temperature!r}: must be > 0")
    return t


def onsager_energy(temperature, J: float = 1.0):
    """Energy per spin of the infinite 2D Ising model.

    ``u = -J coth(2K) [1 + (2/π)(2 tanh²(2K) - 1) K_1(κ)]``, ``κ = 2 sinh(2K)/cosh²(2K)``, ``K = J/T``, with
    ``K_1`` the complete elliptic integral of the first kind (``ellipk(m=κ²)``). Onsager, Phys. Rev. 65:117 (1944).
    At exactly T_c the logarithmic divergence of K_1 multiplies zero; the limit ``-√2 J`` is returned.
    """
    t = _check_temperature(temperature)
    k = J / t
    kappa = 2.0 * np.sinh(2 * k) / np.cosh(2 * k) ** 2
    m = np.minimum(kappa**2, 1.0)
    factor = 2.0 * np.tanh(2 * k) ** 2 - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        term = np.where(m < 1.0, factor * ellipk(np.where(m < 1.0, m, 0.5)), 0.0)
    u = -J / np.tanh(2 * k) * (1.0 + 2.0 / np.pi * term)
    return float(u) if np.ndim(u) == 0 else u


def onsager_free_energy(temperature, J: float = 1.0):
    """Free energy per spin ``f = -T ln Z / N`` of the infinite lattice (Onsager's double integral, by quadrature)."""
    from scipy.integrate import quad

    t = _check_temperature(temperature)

    def one(tt):
        k = J / tt
        c2, s2 = np.cosh(2 * k), np.sinh(2 * k)
        kap = 2 * s2 / c2**2

        def integrand(theta):
            return np.log(0.5 * (1 + np.sqrt(max(1 - kap**2 * np.sin(theta) ** 2, 0.0))))

        integral, _ = quad(integrand, 0, np.pi, limit=200)
        # -βf = ln(2 cosh 2K) + (1/π) ∫_0^{π/2} ln[½(1 + √(1 - κ² sin²θ))] dθ; the integrand is symmetric about π/2
        lnz = np.log(2 * c2) + integral / (2 * np.pi)
        return -tt * lnz

    out = np.vectorize(one)(t)
    return float(out) if np.ndim(out) == 0 else out


def yang_magnetization(temperature, J: float = 1.0):
    """Spontaneous magnetization per spin ``m = (1 - sinh(2K)^-4)^{1/8}`` below T_c, 0 above (Yang 1952)."""
    t = _check_temperature(temperature)
    k = J / t
    x = 1.0 - np.sinh(2 * k) ** -4.0
    m = np.where(x > 0, np.abs(x) ** 0.125, 0.0)
    return float(m) if np.ndim(m) == 0 else m


def _log_abs_products(gammas: np.ndarray, rows: int):
    """log|Π 2cosh(mγ/2)|, log|Π 2sinh(mγ/2)| and the sign of the sinh product."""
    x = 0.5 * rows * gammas
    ax = np.abs(x)
    # log(2 cosh x) = |x| + log1p(e^{-2|x|});  log|2 sinh x| = |x| + log(-expm1(-2|x|))
    log_cosh = np.sum(ax + np.log1p(np.exp(-2 * ax)))
    with np.errstate(divide="ignore"):
        log_sinh = np.sum(ax + np.log(-np.expm1(-2 * ax)))
    sign = np.prod(np.sign(x))
    return log_cosh, log_sinh, sign


def _kaufman_lnz_coupling(rows: int, cols: int, k: float) -> float:
    c = np.cosh(2 * k) / np.tanh(2 * k)
    r = np.arange(cols)
    g_odd = np.arccosh(c - np.cos(np.pi * (2 * r + 1) / cols))
    g_even = np.arccosh(np.maximum(c - np.cos(np.pi * (2 * r) / cols), 1.0))
    g_even[0] = 2 * k + np.log(np.tanh(k))  # γ_0 with its sign (Beale 1996)
    l1, l2, s2 = _log_abs_products(g_odd, rows)
    l3, l4, s4 = _log_abs_products(g_even, rows)
    logs = np.array([l1, l2, l3, l4])
    signs = np.array([1.0, s2, 1.0, s4])
    top = logs.max()
    total = np.sum(signs * np.exp(logs - top))
    n = rows * cols
    return float(-np.log(2.0) + 0.5 * n * np.log(2 * np.sinh(2 * k)) + top + np.log(total))


def kaufman_log_partition(L: int, temperature, J: float = 1.0, *, cols: int | None = None):
    """ln Z of the 2D Ising model on an ``L × cols`` torus (default square), exactly.

    ``Z = ½ (2 sinh 2K)^{N/2} Σ_{i=1..4} Z_i`` with ``Z_{1,2} = Π_r 2cosh, 2sinh(L γ_{2r+1}/2)``,
    ``Z_{3,4} = Π_r 2cosh, 2sinh(L γ_{2r}/2)``, ``cosh γ_k = cosh 2K coth 2K - cos(πk/cols)``, r = 0..cols-1,
    and ``γ_0 = 2K + ln tanh K``. Kaufman, Phys. Rev. 76:1232 (1949); Beale, PRL 76:78 (1996).
    """
    if int(L) != L or L < 2:
        raise ValueError(f"L={L!r}: must be an integer ≥ 2")
    cols = L if cols is None else cols
    t = _check_temperature(temperature)
    out = np.vectorize(lambda tt: _kaufman_lnz_coupling(int(L), int(cols), J / tt))(t)
    return float(out) if np.ndim(out) == 0 else out


def _derivatives_in_beta(L: int, temperature, J: float):
    """d lnZ/dβ and d² lnZ/dβ² by 5-point central differences in β."""
    t = _check_temperature(temperature)
    beta = 1.0 / t
    h = 1e-3 * np.maximum(beta, 1e-3)
    f = {j: kaufman_log_partition(L, 1.0 / (beta + j * h), J) for j in (-2, -1, 0, 1, 2)}
    d1 = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)
    d2 = (-f[-2] + 16 * f[-1] - 30 * f[0] + 16 * f[1] - f[2]) / (12 * h**2)
    return beta, d1, d2


def kaufman_energy(L: int, temperature, J: float = 1.0):
    """Exact mean energy per spin ``u = -(1/N) ∂ ln Z/∂β`` of the L×L torus."""
    _, d1, _ = _derivatives_in_beta(L, temperature, J)
    return -d1 / (L * L)


def kaufman_specific_heat(L: int, temperature, J: float = 1.0):
    """Exact specific heat per spin ``c = β² (∂² ln Z/∂β²)/N`` of the L×L torus."""
    beta, _, d2 = _derivatives_in_beta(L, temperature, J)
    return beta**2 * d2 / (L * L)


def ising_binder_crossing() -> float:
    """Binder cumulant ``U = 1 - <m⁴>/(3<m²>²)`` at T_c, L → ∞, periodic square lattice: 0.61069.

    From Q = <m²>²/<m⁴> = 0.856216 (Kamieniarz & Blöte, J. Phys. A 26:201, 1993): U* = 1 - 1/(3Q).
    """
    return 1.0 - 1.0 / (3.0 * 0.856216)
