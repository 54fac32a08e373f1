"""Mixed spherical spin glasses: threshold, annealed complexity and ground state for a general ξ, CS units.

Convention (``../shared/REFERENCES.md``): ``H`` is a centred Gaussian field on the sphere ``Σ_i s_i² = N`` with
``E[H(s) H(s')] = N ξ(s·s'/N)``, ``ξ(q) = Σ_p c_p² q^p / 2`` (``p`` given as an int or a mapping ``{p: c_p}``;
a degree 1 is a random external field). Energies are per spin, in CS units (ABC units: multiply by √2, see
``pspin_to_abc``). Write ``ξ, ξ', ξ''`` for ξ and its derivatives at q = 1. Every formula below reduces to the pure
p-spin results of ``_pspin`` when ξ = q^p/2 (tested for p = 3 and 4).

**Kac–Rice ingredients** (derived from the covariance by differentiating ``N ξ(x·y/N)``; Auffinger & Ben Arous,
Ann. Probab. 41:4214, 2013, §2, who write ν = 2ξ). At a point s of the sphere, in an orthonormal frame of its
tangent space:

* the energy ``E = H/N`` and the radial derivative ``D = s·∇H/N`` are jointly Gaussian with covariance ``Σ/N``,
  ``Σ = [[ξ, ξ'], [ξ', ξ' + ξ'']]`` (pure p: ``D = pE`` exactly, Σ singular);
* the tangential gradient has i.i.d. components of variance ξ', independent of everything else;
* the tangential block M of the Euclidean Hessian is independent of (E, D), a GOE whose semicircle has radius
  ``2√ξ''``; the Riemannian Hessian is ``M − D·I``, so the spectrum at a point is a semicircle centred at −D.

**Annealed complexity.** By the Kac–Rice formula, with ``t = d/√ξ''``, ``Ω(t) = ∫ ln|λ − t| ρ_sc(λ) dλ``
(``ρ_sc`` the semicircle on [−2, 2]: ``Ω = t²/4 − ½`` for |t| ≤ 2, minus ``J(t)`` beyond) and
``J(t) = |t|√(t² − 4)/4 − ln((|t| + √(t² − 4))/2)`` (the large-deviation cost of one GOE eigenvalue at t),

    θ(e)   = ½(1 − ln ξ') + ½ ln ξ'' + sup_d [Ω(t) − Q(e, d)],               Q = ½ (e, d) Σ⁻¹ (e, d)ᵀ,
    θ_k(e) = ½(1 − ln ξ') + ½ ln ξ'' + sup_{d ≤ −2√ξ''} [t²/4 − ½ − (k+1) J(t) − Q(e, d)]

are the exponential rates of the mean number of critical points (of index k) at energy e. The objective is
jointly concave in (e, d), so θ and θ_k are concave in e; counts below e are the cumulative
``sup_{e' ≤ e} θ(e')``, as in ABC (``pspin_complexity``). For pure p the supremum is at ``d = pe`` and the formulas
are exactly ABC's Θ_p and Θ_{k,p} (Auffinger, Ben Arous, Černý, CPAM 66:165, 2013, Thms 2.5, 2.8).
These are annealed (first-moment) counts: upper bounds on the typical number, equal to it for pure models
(Subag, Ann. Probab. 45:3385, 2017) and mixtures close to pure (Ben Arous, Subag, Zeitouni, CPAM 73:1732, 2020).

**Threshold.** Inside the bulk the supremum is at ``d*(e) = 2ξ'ξ'' e / (ξ(ξ'' − ξ') + ξ'²)``; the Hessian edge
``−2√ξ'' − d*`` of typical critical points vanishes at

    E_th = −(ξ(ξ'' − ξ') + ξ'²) / (ξ' √ξ''),

ABA's E_∞ for ξ(1) = 1 (pure p: ``−√(2(p−1)/p)``). Below E_th typical critical points are minima. Note that a
*random* point of energy e has ``E[D | e] = ξ' e / ξ``, not d*(e): for a mixture the Hessian of a random point
touches zero at a different energy (−2√ξ'' ξ/ξ'); conditioning on ∇H = 0 tilts D.

**Ground state.** The zero-temperature limit of the Crisanti–Sommers functional (Talagrand, PTRF 134:339, 2006;
Chen & Sen, Comm. Math. Phys. 350:129, 2017) restricted to one step of replica symmetry breaking,
``γ(q) = lim βx(q) = μ`` on [0, 1) and ``χ = lim β(1 − q_max)``, gives

    E_1RSB = −min_{μ ≥ 0, χ > 0} ½ [ξ' χ + μ ξ + ln(1 + μ/χ)/μ],

a lower bound on the ground-state energy per spin (the Parisi formula is an infimum over all γ). It is the
ground state exactly when the 1RSB γ is optimal among all nondecreasing γ, i.e. when
``G(a) = ξ(a) − ln((χ + μ)/(χ + μ(1 − a)))/μ² + a/(μ(χ + μ)) ≤ 0`` on [0, 1] (the first-order condition of the
convex functional in the directions ``±1{q ≥ a}``; pure-like mixtures in ABA's language). The zero of the annealed
complexity of minima θ_0 is a second lower bound (no minimum lies where the mean number vanishes); numerically
it coincides with E_1RSB for every mixture tried (ABA 2013 derive the complexity from the 1RSB functional), and
both are strictly below the true ground state of a full-RSB mixture (e.g. ``{2: 1, 8: 1}``), where even below it
the mean number of minima is exponentially large (ABA's second scenario). p = 3: −1.171675 (CS).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq

__all__ = [
    "MixedGroundState",
    "mixed_xi",
    "mixed_threshold_energy",
    "mixed_radial_derivative",
    "mixed_hessian_semicircle",
    "mixed_complexity",
    "mixed_ground_state",
    "mixed_ground_state_energy",
]

# First-order 1RSB condition G(a) ≤ 0 is checked to this absolute tolerance (G is O(1) and the 1RSB parameters
# are solved to ~1e-12 relative, so a violation of 1e-9 is real).
_RSB_TOL = 1e-9


# --- the mixture -----------------------------------------------------------------------------------------------


def _weights(p) -> dict[int, float]:
    """``{p: c_p}`` from an int (pure, c_p = 1) or a mapping; degrees ≥ 1, weights finite ≥ 0, one of degree ≥ 2."""
    items = dict(p) if isinstance(p, Mapping) else {p: 1.0}
    out = {}
    for deg, c in items.items():
        if isinstance(deg, bool) or not isinstance(deg, (int, np.integer)) or deg < 1:
            raise ValueError(f"p={p!r}: degrees must be integers ≥ 1")
        c = float(c)
        if not math.isfinite(c) or c < 0:
            raise ValueError(f"p={p!r}: the weight c_{deg} = {c} must be a finite number ≥ 0")
        if c > 0:
            out[int(deg)] = c
    if not any(d >= 2 for d in out):
        raise ValueError(f"p={p!r}: needs a weight c_p > 0 of some degree p ≥ 2 (ξ''(1) > 0)")
    return out


def mixed_xi(q, p, derivative: int = 0):
    """``ξ(q) = Σ_p c_p² q^p / 2`` (degrees ≥ 1 allowed) or its ``derivative``-th derivative."""
    if isinstance(derivative, bool) or not isinstance(derivative, (int, np.integer)) or derivative < 0:
        raise ValueError(f"derivative={derivative!r}: must be an integer ≥ 0")
    q = np.asarray(q, dtype=np.float64)
    out = np.zeros_like(q)
    for deg, c in _weights(p).items():
        if derivative <= deg:
            out = out + 0.5 * c * c * math.perm(deg, derivative) * q ** (deg - derivative)
    return float(out) if out.ndim == 0 else out


class _Xi(NamedTuple):
    x0: float  # ξ(1)
    x1: float  # ξ'(1)
    x2: float  # ξ''(1)
    det: float  # det Σ = ξ(ξ' + ξ'') − ξ'²  (0 for a pure model)

    @property
    def pure(self) -> bool:
        # det ≥ 0 by Cauchy–Schwarz, = 0 only for one degree; rounding of the products is ~1e-16 relative
        return self.det <= 1e-13 * self.x0 * (self.x1 + self.x2)

    @property
    def edge(self) -> float:
        """The radial derivative at which the bulk edge of the Hessian reaches zero: ``−2√ξ''``."""
        return -2.0 * math.sqrt(self.x2)


def _xi(p) -> _Xi:
    w = _weights(p)
    x0 = sum(0.5 * c * c for c in w.values())
    x1 = sum(0.5 * c * c * d for d, c in w.items())
    x2 = sum(0.5 * c * c * d * (d - 1) for d, c in w.items())
    return _Xi(x0, x1, x2, x0 * (x1 + x2) - x1 * x1)


# --- the semicircle log-potential ------------------------------------------------------------------------------


def _j(t: float) -> float:
    """``J(t)``: the cost of one GOE eigenvalue at t outside [−2, 2] (0 inside)."""
    a = abs(t)
    if a <= 2.0:
        return 0.0
    r = math.sqrt(a * a - 4.0)
    return a * r / 4.0 - math.log((a + r) / 2.0)


def _omega(t: float) -> float:
    """``∫ ln|λ − t| ρ_sc(λ) dλ`` for the semicircle on [−2, 2]."""
    return t * t / 4.0 - 0.5 - _j(t)


def _domega(t: float) -> float:
    """``Ω'(t)``: the Stieltjes transform, ``t/2`` inside and ``(t ∓ √(t² − 4))/2`` outside."""
    if abs(t) <= 2.0:
        return t / 2.0
    r = math.sqrt(t * t - 4.0)
    return (t + r) / 2.0 if t < 0 else (t - r) / 2.0


def _objective(x: _Xi, index):
    """The d-objective without the constants, and its derivative, for all critical points or index k."""
    s = math.sqrt(x.x2)
    if index is None:
        return (lambda d: _omega(d / s)), (lambda d: _domega(d / s) / s)
    k1 = index + 1

    def f(d):
        t = d / s
        return t * t / 4.0 - 0.5 - k1 * _j(t)

    def df(d):
        t = d / s
        return (t + k1 * math.sqrt(max(t * t - 4.0, 0.0))) / (2.0 * s)

    return f, df


def _argmax_concave(df, lo_hint: float, hi: float | None) -> float:
    """The zero of a decreasing ``df`` on (−∞, hi] (hi = None: on R), or hi when ``df(hi) ≥ 0``."""
    if hi is not None and df(hi) >= 0:
        return hi
    lo = lo_hint
    while df(lo) <= 0:
        lo = 2.0 * lo - 1.0
    top = hi if hi is not None else abs(lo_hint) + 1.0
    while hi is None and df(top) >= 0:
        top = 2.0 * top + 1.0
    return brentq(df, lo, top, xtol=1e-14, rtol=1e-15)


def _theta(e: float, x: _Xi, index) -> tuple[float, float]:
    """Density exponent θ(e) (or θ_k) and the maximizing radial derivative d; −inf where no such point exists."""
    const = 0.5 * (1.0 - math.log(x.x1)) + 0.5 * math.log(x.x2)
    f, df = _objective(x, index)
    hi = None if index is None else x.edge
    if x.pure:  # D = (ξ'/ξ) E exactly
        d = x.x1 / x.x0 * e
        if hi is not None and d > hi:
            return -math.inf, d
        return const + f(d) - e * e / (2.0 * x.x0), d

    def dq(d):  # ∂Q/∂d
        return (x.x0 * d - x.x1 * e) / x.det

    d = _argmax_concave(lambda d: df(d) - dq(d), min(x.edge, x.x1 / x.x0 * e) - 1.0, hi)
    q = ((x.x1 + x.x2) * e * e - 2.0 * x.x1 * e * d + x.x0 * d * d) / (2.0 * x.det)
    return const + f(d) - q, d


def _peak_energy(x: _Xi, index) -> float:
    """The energy where θ (or θ_k) is largest: maximize over (e, d), ``e = ξ' d/(ξ' + ξ'')`` minimizes Q at fixed d."""
    f, df = _objective(x, index)
    sdd = x.x1 + x.x2
    hi = None if index is None else x.edge
    d = _argmax_concave(lambda d: df(d) - d / sdd, x.edge - 1.0, hi)
    return x.x1 * d / sdd


# --- public formulas -------------------------------------------------------------------------------------------


def mixed_threshold_energy(p) -> float:
    """Threshold energy per spin ``E_th = −(ξ(ξ''−ξ') + ξ'²)/(ξ'√ξ'')`` (CS), where the Hessian bulk of typical
    critical points touches zero (module docstring; ABA 2013's E_∞ over √2). Pure p: ``−√(2(p−1)/p)``."""
    x = _xi(p)
    return -(x.x0 * (x.x2 - x.x1) + x.x1 * x.x1) / (x.x1 * math.sqrt(x.x2))


def mixed_radial_derivative(energy, p, index: int | None = None):
    """The radial derivative ``D = s·∇H/N`` of the critical points that dominate the count at energy e.

    The maximizer d of the Kac–Rice exponent (module docstring); pure p: ``D = p e``. With ``index=k`` the
    maximizer over ``d ≤ −2√ξ''`` (index-k points need their Hessian bulk above zero).
    """
    x = _xi(p)
    _check_index(index)
    out = np.vectorize(lambda e: _theta(float(e), x, index)[1], otypes=[np.float64])(np.asarray(energy, np.float64))
    return float(out) if out.ndim == 0 else out


def mixed_hessian_semicircle(energy, p) -> tuple[float, float]:
    """Centre ``−D(e)`` and radius ``2√ξ''`` of the Riemannian Hessian spectrum of typical critical points at
    energy per spin e (CS). Its left edge vanishes at :func:`mixed_threshold_energy`; pure p gives
    ``pspin_hessian_semicircle`` (centre −p e, radius √(2p(p−1)))."""
    centre = -np.asarray(mixed_radial_derivative(energy, p), dtype=np.float64)
    return (float(centre) if centre.ndim == 0 else centre), 2.0 * math.sqrt(_xi(p).x2)


def _check_index(index):
    if index is not None and (isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0):
        raise ValueError(f"index={index!r}: must be None (all critical points) or an integer ≥ 0")


def mixed_complexity(energy, p, index: int | None = None):
    """Annealed complexity (1/N) ln E[#critical points with energy per spin ≤ e] of a mixture, CS units.

    The Kac–Rice exponent of the module docstring, maximized over the radial derivative and made cumulative
    (``sup_{e' ≤ e} θ(e')``, constant above the energy where θ peaks); ``index=k`` counts critical points of index
    k (k = 0: local minima). Negative values mean that the mean number vanishes exponentially. Pure p: ABC's Θ_p
    and Θ_{k,p} (``pspin_complexity``). An upper bound on the typical (quenched) complexity; equal to it for pure
    and near-pure mixtures (Subag 2017; Ben Arous–Subag–Zeitouni 2020).
    """
    x = _xi(p)
    _check_index(index)
    peak = _peak_energy(x, index)
    out = np.vectorize(lambda e: _theta(min(float(e), peak), x, index)[0], otypes=[np.float64])(
        np.asarray(energy, np.float64)
    )
    return float(out) if out.ndim == 0 else out


class MixedGroundState(NamedTuple):
    """The zero-temperature 1RSB solution and the annealed bound.

    ``energy``: E_1RSB per spin (CS), a lower bound on the ground state, exact when ``rsb1_exact``;
    ``mu``, ``chi``: the 1RSB parameters (μ = 0: replica symmetric, as for p = 2); ``rsb1_exact``: the first-order
    optimality condition ``max G ≤ 0`` holds; ``max_g``: that maximum; ``complexity_zero``: the zero of the annealed
    complexity of minima (another lower bound; equal to ``energy`` numerically).
    """

    energy: float
    mu: float
    chi: float
    rsb1_exact: bool
    max_g: float
    complexity_zero: float


def _rsb1_chi(mu: float, x1: float) -> float:
    """χ solving ``∂_χ = 0``: ``χ(χ + μ) = 1/ξ'`` (stable form of the positive root)."""
    disc = math.sqrt(mu * mu + 4.0 / x1)
    return 2.0 / (x1 * (mu + disc))


def _rsb1_value(mu: float, x: _Xi) -> float:
    chi = _rsb1_chi(mu, x.x1)
    tail = math.log1p(mu / chi) / mu if mu > 1e-12 else 1.0 / chi - mu / (2.0 * chi * chi)
    return 0.5 * (x.x1 * chi + mu * x.x0 + tail)


def mixed_ground_state(p) -> MixedGroundState:
    """Ground-state energy per spin of a mixture: the zero-temperature 1RSB Crisanti–Sommers value, whether it is
    exact, and the zero of the annealed complexity of minima (module docstring). p = 3: −1.171675 (CS)."""
    x = _xi(p)
    # F(μ, χ(μ)) is smooth and unimodal in μ; locate the basin on a log grid, then refine to ~1e-13
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 1e3, 400)])
    vals = np.array([_rsb1_value(m, x) for m in grid])
    i = int(np.argmin(vals))
    if i == 0:
        mu = 0.0
    else:
        # the stationarity ∂_μ F = 0 (∂_χ F = 0 holds on the curve χ(μ)) by bracketing: G below depends on μ at
        # first order, so μ must be accurate to rounding, not to the √ε of a minimizer
        def slope(m):
            chi = _rsb1_chi(m, x.x1)
            return x.x0 - math.log1p(m / chi) / (m * m) + 1.0 / (m * (chi + m))

        lo, hi = grid[i - 1], grid[min(i + 1, grid.size - 1)]
        lo = max(lo, 1e-7)
        mu = brentq(slope, lo, hi, xtol=1e-15, rtol=1e-15) if slope(lo) < 0 < slope(hi) else float(grid[i])
    chi = _rsb1_chi(mu, x.x1)
    energy = -_rsb1_value(mu, x)
    a = np.linspace(0.0, 1.0, 4001)
    if mu > 1e-12:
        g = mixed_xi(a, p) - np.log((chi + mu) / (chi + mu * (1.0 - a))) / mu**2 + a / (mu * (chi + mu))
    else:  # μ → 0: ξ(a) − a²/(2χ²)
        g = mixed_xi(a, p) - a * a / (2.0 * chi * chi)
    max_g = float(np.max(g))
    peak = _peak_energy(x, 0)
    top = _theta(peak, x, 0)[0]
    if top <= 1e-13:  # no exponential number of minima (e.g. p = 2): the lowest minima sit at the peak
        zero = peak
    else:
        lo = peak - 1.0
        while _theta(lo, x, 0)[0] > 0:
            lo = peak + 2.0 * (lo - peak)
        zero = brentq(lambda e: _theta(e, x, 0)[0], lo, peak, xtol=1e-14, rtol=1e-15)
    return MixedGroundState(energy, mu, chi, max_g <= _RSB_TOL, max_g, zero)


def mixed_ground_state_energy(p) -> float:
    """The 1RSB ground-state energy per spin (CS) of :func:`mixed_ground_state` (exact for pure and pure-like
    mixtures; a lower bound otherwise). p = 3: −1.171675; p = 2: −1."""
    return mixed_ground_state(p).energy
