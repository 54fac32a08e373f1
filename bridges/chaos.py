"""Mean-field signal propagation in deep random networks: length and correlation maps, order-to-chaos line.

A network with ``z^l = φ(z^{l-1}) W^l + b^l``, ``W^l_ij ~ N(0, σ_w²/N)``, ``b^l_i ~ N(0, σ_b²)`` (the
initialization of ``nets.mlp.init``) carries, as the width N → ∞, an input's squared length per unit
``q^l = (1/N) Σ_i (z^l_i)²`` and two inputs' correlation ``c^l`` through deterministic maps (Poole et al. 2016,
arXiv:1606.05340; Schoenholz et al. 2017, arXiv:1611.01232). With ``Dz`` the standard normal measure and
``u1 = √q z1``, ``u2 = √q (c z1 + √(1-c²) z2)``:

- length map       ``L(q) = σ_w² ∫Dz φ(√q z)² + σ_b²``, fixed point ``q* = L(q*)``;
- slope at q*      ``χ_1 = σ_w² ∫Dz φ'(√q* z)²``: order (``χ_1 < 1``) vs chaos (``χ_1 > 1``);
- correlation map  ``C(c) = (σ_w² ∫Dz1 Dz2 φ(u1) φ(u2) + σ_b²) / q*`` at ``q = q*``, fixed point c*;
- ``χ_c(c) = σ_w² ∫Dz1 Dz2 φ'(u1) φ'(u2)`` (Schoenholz eq. 9), ``χ_c(1) = χ_1``;
- depth scales     ``ξ_q = -1/ln[χ_1 + σ_w² ∫Dz φ''(√q* z) φ(√q* z)]`` (the bracket is L'(q*), by Gaussian
  integration by parts) and ``ξ_c = -1/ln χ_c(c*)`` (Schoenholz eq. 9); both are ∞ where the log is ≥ 0 (on the
  critical line and at marginal fixed points).

The correlation map is evaluated in the normalized form ``(σ_w² E[φ(u1)φ(u2)] + σ_b²) / (σ_w² E[φ(u1)²] + σ_b²)``
(both by the same 2-D rule): at q = q* the denominator is L(q*) = q*, so this is Poole's map, C(1) = 1 holds to
rounding, and where q* is 0 or ∞ (σ_b = 0 and an unbounded or vanishing signal) the map is the limit q → 0 or
q → ∞, evaluated at ``q = 1e-16`` or ``1e16``. ``χ_1`` at q* = ∞ is the same limit (relu: σ_w²/2).

Quadrature. Gauss–Hermite rules (``hermegauss``) converge slowly here: for tanh at q = 100 a 256-point rule is off
by 1e-2 (the integrand is a near step of width 1/√q), and for relu's kink a 2-D product rule converges only as 1/n.
So every Gaussian integral is a composite Gauss–Legendre rule on [-12, 12] (the normal mass outside is 3.6e-33)
whose panels are graded geometrically (ratio 1/2) toward the point where the activation's argument vanishes —
z = 0 in 1-D and for z1, z2 = -c z1 / √(1-c²) in the inner integral — so kinks sit on panel edges and the near
step is resolved by panels down to 3.5e-10 (1-D) and 2.3e-5 (2-D) wide. φ', φ'' are ``jax.grad`` of the activation
in ``nets.mlp.ACTIVATIONS``, evaluated in float64. Against closed forms (relu's arc-cosine kernel, linear) and
``scipy.integrate.quad`` the rules agree to rounding, ~1e-15 (measured for tanh up to q = 1e5 in 2-D; the tests
check q ≤ 100 in 1-D and the fixed points in 2-D).

Fixed points are found by bracketing on a log grid and ``scipy.optimize.brentq``. q* is the fixed point that the
iteration ``q ← L(q)`` started at ``q0`` converges to (L increases with q for these activations — checked on a grid
for tanh, gelu, relu — so the iteration is monotone); ∞ when it diverges (relu with σ_w² > 2, linear with σ_w ≥ 1
and σ_b > 0, …). c* is the largest fixed point of C below 1 when χ_1 > 1 (the one reached from correlated
inputs), else 1.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial.legendre import leggauss
from scipy import optimize

from nets import mlp

__all__ = [
    "length_map",
    "fixed_point",
    "chi1",
    "correlation_map",
    "chi_c",
    "correlation_fixed_point",
    "depth_scales",
    "critical_weight_std",
    "PhaseDiagram",
    "phase_diagram",
    "mean_field_correlations",
    "EmpiricalCorrelations",
    "empirical_correlation_map",
    "NetworkPosition",
    "network_position",
]

_Z_MAX = 12.0  # the normal mass beyond ±12 is 3.6e-33, below float64 resolution of any integral here
_GL_NODES = 12  # Gauss–Legendre nodes per panel
_LEVELS_1D = 36  # panel edges at ±12·2^-k, k < 36: the finest panel is 3.5e-10 wide
_LEVELS_2D = 20  # inner/outer grading of the 2-D rule: finest panel 2.3e-5, enough for tanh up to q ~ 1e5
_Q_TINY, _Q_HUGE = 1e-16, 1e16  # stand-ins for the limits q* → 0 and q* → ∞ of the normalized maps
_Q_GRID = np.geomspace(1e-16, 1e16, 129)  # 4 points per decade to bracket q*
_ROUNDING = 1e-14  # |L(q) - q| below this · q is zero to the rounding of the quadrature sum
_SIGMA_W_STEP, _SIGMA_W_MAX = 1.25, 100.0  # the order-to-chaos crossing is bracketed in [1/100, 100]
_C_GRID = np.concatenate([[0.0], 1.0 - np.geomspace(1.0, 1e-12, 25)[1:]])  # dense toward c = 1


# ----------------------------------------------------------------------------------------------------------------
# Quadrature
# ----------------------------------------------------------------------------------------------------------------


def _panel_rule(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on the panels between consecutive ``edges`` (last axis); zero-width panels
    get zero weight, so a fixed number of edges can be clipped and merged without changing the array shapes."""
    x, w = leggauss(_GL_NODES)
    a, b = edges[..., :-1, None], edges[..., 1:, None]
    half = 0.5 * (b - a)
    nodes = 0.5 * (a + b) + half * x
    weights = half * w
    shape = edges.shape[:-1] + (-1,)
    return nodes.reshape(shape), weights.reshape(shape)


def _normal_density(z):
    return np.exp(-0.5 * np.square(z)) / math.sqrt(2.0 * math.pi)


def _graded_edges(centre: np.ndarray, levels: int) -> np.ndarray:
    """Panel edges clipped to [-12, 12]: a fixed coarse set plus ``centre ± 12·2^-k`` (k < levels) and ``centre``."""
    offsets = _Z_MAX * 0.5 ** np.arange(levels)
    moving = np.asarray(centre, np.float64)[..., None] + np.concatenate([-offsets, [0.0], offsets])
    fixed = np.broadcast_to(np.array([-12.0, -6.0, -3.0, -1.5, 0.0, 1.5, 3.0, 6.0, 12.0]),
                            moving.shape[:-1] + (9,))
    return np.sort(np.clip(np.concatenate([fixed, moving], axis=-1), -_Z_MAX, _Z_MAX), axis=-1)


@functools.cache
def _rule_1d(levels: int = _LEVELS_1D) -> tuple[np.ndarray, np.ndarray]:
    """``∫Dz f(z) ≈ Σ w_i f(z_i)``, graded toward z = 0."""
    z, w = _panel_rule(_graded_edges(np.float64(0.0), levels))
    return z, w * _normal_density(z)


def _rule_2d(c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes ``z1 (n,)``, ``z2 (n, m)`` and weights ``(n, m)`` for ``∫Dz1 Dz2 f``, the inner rule graded toward the
    line ``c z1 + √(1-c²) z2 = 0`` where the second argument ``u2`` vanishes (|c| < 1)."""
    z1, w1 = _rule_1d(_LEVELS_2D)
    s = math.sqrt(1.0 - c * c)
    z2, w2 = _panel_rule(_graded_edges(-c * z1 / s, _LEVELS_2D))
    return z1, z2, w1[:, None] * w2 * _normal_density(z2)


# ----------------------------------------------------------------------------------------------------------------
# The activation and its derivatives in float64
# ----------------------------------------------------------------------------------------------------------------


@functools.cache
def _derivatives(activation: str):
    phi = mlp.ACTIVATIONS[activation]
    d1 = jax.grad(phi)
    return tuple(jax.jit(f) for f in (phi, jnp.vectorize(d1), jnp.vectorize(jax.grad(d1))))


def _phi(activation: str, x, order: int = 0) -> np.ndarray:
    """``φ^{(order)}(x)`` elementwise in float64 (``order`` 0, 1 or 2)."""
    with jax.enable_x64(True):
        return np.asarray(_derivatives(activation)[order](jnp.asarray(x, jnp.float64)))


def _check(weight_std, bias_std, activation):
    if activation not in mlp.ACTIVATIONS:
        raise ValueError(f"activation={activation!r}: must be one of {', '.join(map(repr, mlp.ACTIVATIONS))}")
    if not (np.all(np.isfinite(weight_std)) and np.all(np.asarray(weight_std) > 0)):
        raise ValueError(f"weight_std={weight_std!r}: must be finite and > 0")
    if not (np.all(np.isfinite(bias_std)) and np.all(np.asarray(bias_std) >= 0)):
        raise ValueError(f"bias_std={bias_std!r}: must be finite and ≥ 0")


def _elementwise(fn, *args):
    """Apply a scalar function over broadcast array arguments; a float when every argument is a scalar."""
    arrays = np.broadcast_arrays(*[np.asarray(a, np.float64) for a in args])
    if arrays[0].ndim == 0:
        return float(fn(*[float(a) for a in arrays]))
    return np.vectorize(fn, otypes=[np.float64])(*arrays)


# ----------------------------------------------------------------------------------------------------------------
# Length map
# ----------------------------------------------------------------------------------------------------------------


def _gauss_mean(activation: str, q, order: int, power: int = 2, times_phi: bool = False) -> np.ndarray:
    """``∫Dz φ^{(order)}(√q z)^power`` (or ``∫Dz φ^{(order)} φ`` with ``times_phi``) for an array of q."""
    z, w = _rule_1d()
    x = np.sqrt(np.asarray(q, np.float64))[..., None] * z
    f = _phi(activation, x, order)
    f = f * _phi(activation, x, 0) if times_phi else f**power
    return f @ w


def length_map(q, weight_std: float, bias_std: float, activation: str = "tanh"):
    """``L(q) = σ_w² ∫Dz φ(√q z)² + σ_b²`` (Poole et al. 2016), vectorized over q ≥ 0."""
    _check(weight_std, bias_std, activation)
    qa = np.asarray(q, np.float64)
    if np.any(~(qa >= 0)):
        raise ValueError(f"q={q!r}: must be ≥ 0")
    out = weight_std**2 * _gauss_mean(activation, qa, 0) + bias_std**2
    return float(out) if out.ndim == 0 else out


def _fixed_point(weight_std: float, bias_std: float, activation: str, q0: float) -> float:
    def excess(q):  # L(q) - q and its rounding band (a ~1000-term float64 sum of terms of size ~q)
        return weight_std**2 * _gauss_mean(activation, q, 0) + bias_std**2 - q, _ROUNDING * np.asarray(q)

    f0, tol0 = excess(q0)
    if abs(f0) <= tol0:  # q0 is already a fixed point (relu at σ_w = √2, σ_b = 0: every q is one)
        return q0
    if f0 > 0:  # the iteration increases: the first clear crossing below zero above q0, or divergence
        grid = _Q_GRID[_Q_GRID > q0]
        f, tol = excess(grid)
        hit = np.flatnonzero(f < -tol)
        if hit.size == 0:
            return math.inf
        i = hit[0]
        lo, hi = (q0, f0) if i == 0 else (grid[i - 1], f[i - 1]), grid[i]
        if lo[1] <= 0:  # the step before the crossing is zero to rounding
            return float(lo[0])
        lo = lo[0]
    else:  # it decreases: the last clear crossing above zero below q0, or 0
        grid = _Q_GRID[_Q_GRID < q0]
        f, tol = excess(grid)
        hit = np.flatnonzero(f > tol)
        if hit.size == 0:
            if float(excess(0.0)[0]) <= 0:  # L(0) = 0: q = 0 is the fixed point (σ_b = 0, φ(0) = 0)
                return 0.0
            lo, hi = 0.0, grid[0]
        else:
            i = hit[-1]
            lo, (hi, f_hi) = grid[i], ((q0, f0) if i == grid.size - 1 else (grid[i + 1], f[i + 1]))
            if f_hi >= 0:
                return float(hi)
    return float(optimize.brentq(lambda q: float(excess(q)[0]), lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps))


def fixed_point(weight_std, bias_std, activation: str = "tanh", q0: float = 1.0):
    """The fixed point ``q* = L(q*)`` reached by iterating the length map from ``q0`` (∞ if the iteration diverges).

    Found by bracketing ``L(q) - q`` on a log grid of q in [1e-16, 1e16] from q0 in the direction the iteration moves,
    then Brent's method to full float64 precision. relu has a finite q* > 0 only for σ_w² < 2 with σ_b > 0
    (``q* = σ_b² / (1 - σ_w²/2)``); for σ_w² > 2 it is ∞, for σ_b = 0 and σ_w² < 2 it is 0. Arrays broadcast.

    Reference: Poole et al. 2016 (arXiv:1606.05340), the length map and its fixed point.
    """
    _check(weight_std, bias_std, activation)
    if not (math.isfinite(q0) and q0 > 0):
        raise ValueError(f"q0={q0!r}: must be finite and > 0")
    return _elementwise(lambda w, b: _fixed_point(w, b, activation, float(q0)), weight_std, bias_std)


def _finite_q(q: float) -> float:
    return _Q_HUGE if math.isinf(q) else (_Q_TINY if q == 0.0 else q)


def chi1(weight_std, bias_std, activation: str = "tanh", q0: float = 1.0):
    """``χ_1 = σ_w² ∫Dz φ'(√q* z)²``, the slope of the correlation map at c = 1 (Poole et al. 2016).

    ``χ_1 = 1`` is the order-to-chaos transition. At q* = 0 or ∞ the limit q → 0⁺ or ∞ is taken (relu: ``σ_w²/2``,
    its value at every q > 0, although jax's relu'(0) is 0). Arrays broadcast.
    """
    _check(weight_std, bias_std, activation)

    def one(w, b):
        return w**2 * float(_gauss_mean(activation, _finite_q(_fixed_point(w, b, activation, q0)), 1))

    return _elementwise(one, weight_std, bias_std)


# ----------------------------------------------------------------------------------------------------------------
# Correlation map
# ----------------------------------------------------------------------------------------------------------------


def _pair_mean(activation: str, q: float, c: float, order: int) -> float:
    """``∫Dz1 Dz2 φ^{(order)}(u1) φ^{(order)}(u2)`` with ``u1 = √q z1``, ``u2 = √q (c z1 + √(1-c²) z2)``."""
    if abs(c) >= 1.0:  # u2 = ±u1: a 1-D integral
        z, w = _rule_1d()
        x = math.sqrt(q) * z
        return float(w @ (_phi(activation, x, order) * _phi(activation, math.copysign(1.0, c) * x, order)))
    z1, z2, w = _rule_2d(c)
    rq, s = math.sqrt(q), math.sqrt(1.0 - c * c)
    f1 = _phi(activation, rq * z1, order)
    f2 = _phi(activation, rq * (c * z1[:, None] + s * z2), order)
    return float(np.sum(w * f1[:, None] * f2))


def _c_map(c: float, weight_std: float, bias_std: float, activation: str, q: float) -> float:
    num = weight_std**2 * _pair_mean(activation, q, c, 0) + bias_std**2
    den = weight_std**2 * _pair_mean(activation, q, 1.0, 0) + bias_std**2
    return num / den


def _check_c(c):
    if np.any(~(np.abs(np.asarray(c, np.float64)) <= 1.0)):
        raise ValueError(f"c={c!r}: must be a correlation in [-1, 1]")


def correlation_map(c, weight_std: float, bias_std: float, activation: str = "tanh", q: float | None = None):
    """``C(c) = (σ_w² ∫Dz1 Dz2 φ(u1) φ(u2) + σ_b²) / L(q)`` at ``q = q*`` unless ``q`` is given (Poole et al.
    2016).

    At q = q* the denominator L(q*) equals q*; the normalized form keeps ``C(1) = 1`` and defines the map at
    q* ∈ {0, ∞} as its limit (see the module docstring). Vectorized over c ∈ [-1, 1].
    """
    _check(weight_std, bias_std, activation)
    _check_c(c)
    if q is not None and not (math.isfinite(q) and q >= 0):
        raise ValueError(f"q={q!r}: must be finite and ≥ 0 (or None for q*)")
    qq = _finite_q(_fixed_point(weight_std, bias_std, activation, 1.0) if q is None else float(q))
    return _elementwise(lambda x: _c_map(x, weight_std, bias_std, activation, qq), c)


def chi_c(c, weight_std: float, bias_std: float, activation: str = "tanh"):
    """``χ_c(c) = σ_w² ∫Dz1 Dz2 φ'(u1) φ'(u2)`` at q = q* (Schoenholz et al. 2017, eq. 9); ``χ_c(1) = χ_1``."""
    _check(weight_std, bias_std, activation)
    _check_c(c)
    qq = _finite_q(_fixed_point(weight_std, bias_std, activation, 1.0))
    return _elementwise(lambda x: weight_std**2 * _pair_mean(activation, qq, x, 1), c)


def _correlation_fixed_point(weight_std: float, bias_std: float, activation: str) -> float:
    if chi1(weight_std, bias_std, activation) <= 1.0:
        return 1.0
    qq = _finite_q(_fixed_point(weight_std, bias_std, activation, 1.0))

    def excess(c):  # C(c) - c: ≥ 0 at c = 0 (C(0) = (σ_w² (E φ)² + σ_b²)/q* ≥ 0), < 0 just below 1 when χ_1 > 1
        return _c_map(c, weight_std, bias_std, activation, qq) - c

    values = np.array([excess(c) for c in _C_GRID])
    if abs(values[0]) <= _ROUNDING and np.all(values[1:] < 0):  # odd φ without bias: C(0) = 0 up to rounding
        return 0.0
    hit = np.flatnonzero(values >= 0)
    if hit.size == 0:
        raise ValueError(f"no fixed point of the correlation map in [0, 1) for weight_std={weight_std}, "
                         f"bias_std={bias_std}, activation={activation!r}")
    i = hit[-1]
    if i == _C_GRID.size - 1:  # C(c) ≥ c up to 1 - 1e-12: the iteration creeps to 1 (relu at q* = ∞)
        return 1.0
    return float(optimize.brentq(excess, _C_GRID[i], _C_GRID[i + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps))


def correlation_fixed_point(weight_std, bias_std, activation: str = "tanh"):
    """The stable fixed point c* of the correlation map: 1 in the ordered phase (χ_1 ≤ 1), else the largest fixed
    point below 1 (for odd φ and σ_b = 0 it is 0). Arrays broadcast. Poole et al. 2016."""
    _check(weight_std, bias_std, activation)
    return _elementwise(lambda w, b: _correlation_fixed_point(w, b, activation), weight_std, bias_std)


def _inverse_log_depth(slope: float) -> float:
    return -1.0 / math.log(slope) if 0.0 < slope < 1.0 else (0.0 if slope == 0.0 else math.inf)


def _depth_scales(weight_std: float, bias_std: float, activation: str) -> tuple[float, float]:
    q_star = _fixed_point(weight_std, bias_std, activation, 1.0)
    q = _finite_q(q_star)
    if math.isinf(q_star):
        xi_q = math.inf
    else:
        slope = weight_std**2 * float(_gauss_mean(activation, q, 1) + _gauss_mean(activation, q, 2, times_phi=True))
        xi_q = _inverse_log_depth(slope)
    c_star = _correlation_fixed_point(weight_std, bias_std, activation)
    xi_c = _inverse_log_depth(weight_std**2 * _pair_mean(activation, q, c_star, 1))
    return xi_q, xi_c


def depth_scales(weight_std: float, bias_std: float, activation: str = "tanh") -> tuple[float, float]:
    """``(ξ_q, ξ_c)``: the depths over which lengths approach q* and correlations approach c*.

    ``ξ_q = -1/ln L'(q*)`` with ``L'(q*) = χ_1 + σ_w² ∫Dz φ''(√q* z) φ(√q* z)`` (Schoenholz et al. 2017) and
    ``ξ_c = -1/ln χ_c(c*)`` (their eq. 9; in the ordered phase c* = 1 and ``ξ_c = -1/ln χ_1``). Each is ∞ where its
    slope is ≥ 1. Schoenholz et al. find networks trainable up to depths of about 6 ξ_c, so on the critical line,
    where ξ_c diverges, at any depth.
    """
    _check(weight_std, bias_std, activation)
    return _depth_scales(float(weight_std), float(bias_std), activation)


# ----------------------------------------------------------------------------------------------------------------
# The order-to-chaos line and the phase diagram
# ----------------------------------------------------------------------------------------------------------------


def _critical_weight_std(bias_std: float, activation: str) -> float:
    def excess(w):
        return float(chi1(w, bias_std, activation)) - 1.0

    # expand geometrically from σ_w = 1 until χ_1 - 1 changes sign (χ_1 grows with σ_w for tanh, relu, linear)
    lo = hi = 1.0
    if excess(1.0) < 0:
        while excess(hi) < 0:
            lo, hi = hi, hi * _SIGMA_W_STEP
            if hi > _SIGMA_W_MAX:
                raise ValueError(f"bias_std={bias_std!r}: χ_1 stays below 1 for weight_std up to {_SIGMA_W_MAX} "
                                 f"with activation={activation!r}")
    else:
        while excess(lo) >= 0:
            lo, hi = lo / _SIGMA_W_STEP, lo
            if lo < 1.0 / _SIGMA_W_MAX:
                raise ValueError(f"bias_std={bias_std!r}: χ_1 stays above 1 for weight_std down to "
                                 f"{1.0 / _SIGMA_W_MAX} with activation={activation!r}")
    if excess(hi) == 0.0:
        return hi
    root = optimize.brentq(excess, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)
    below, above = excess(root * (1 - 1e-9)), excess(root * (1 + 1e-9))
    if max(abs(below), abs(above)) > 1e-6:  # a jump, not a crossing: q* from q0 = 1 leaps to ∞ (gelu)
        raise ValueError(f"bias_std={bias_std!r}: with activation={activation!r}, χ_1 jumps from {below + 1:.4g} to "
                         f"{above + 1:.4g} at weight_std ≈ {root:.6g}, where the fixed point q* reached from q0 = 1 "
                         "becomes infinite; there is no finite-q* point with χ_1 = 1")
    return float(root)


def critical_weight_std(bias_std, activation: str = "tanh"):
    """The order-to-chaos line: the σ_w with ``χ_1(σ_w, σ_b) = 1`` (Poole et al. 2016;
    Schoenholz et al. 2017).

    Found by stepping σ_w geometrically (×1.25) from 1 until ``χ_1 - 1`` changes sign, then Brent's method; for the
    activations whose χ_1 grows with σ_w (tanh, relu, linear) this is the only crossing.
    tanh: 1 at σ_b = 0, ≈ 1.3956 at σ_b = 0.3. relu: √2 for every σ_b (χ_1 = σ_w²/2 does not depend on q*).
    gelu with σ_b > 0 has no such point: χ_1 jumps across 1 where q* becomes infinite (a saddle-node of the length
    map); that raises ``ValueError`` naming the jump. Arrays broadcast.
    """
    _check(1.0, bias_std, activation)
    return _elementwise(lambda b: _critical_weight_std(b, activation), bias_std)


class PhaseDiagram(NamedTuple):
    """Mean-field quantities on a grid: every field has shape ``(len(bias_stds), len(weight_stds))`` except
    ``critical_weight_std`` ``(len(bias_stds),)``."""

    weight_stds: np.ndarray
    bias_stds: np.ndarray
    q_star: np.ndarray
    chi1: np.ndarray
    c_star: np.ndarray
    xi_q: np.ndarray
    xi_c: np.ndarray
    critical_weight_std: np.ndarray


def phase_diagram(weight_stds, bias_stds, activation: str = "tanh") -> PhaseDiagram:
    """q*, χ_1, c*, ξ_q, ξ_c on the grid ``bias_stds × weight_stds`` and the critical σ_w at each σ_b.

    Cost: of order 0.1 s per grid point on one CPU core (c* takes ~35 2-D quadratures of ~2.4e5 nodes each).
    """
    ws = np.atleast_1d(np.asarray(weight_stds, np.float64))
    bs = np.atleast_1d(np.asarray(bias_stds, np.float64))
    _check(ws, bs, activation)
    out = {k: np.empty((bs.size, ws.size)) for k in ("q_star", "chi1", "c_star", "xi_q", "xi_c")}
    for i, b in enumerate(bs):
        for j, w in enumerate(ws):
            out["q_star"][i, j] = _fixed_point(w, b, activation, 1.0)
            out["chi1"][i, j] = chi1(w, b, activation)
            out["c_star"][i, j] = _correlation_fixed_point(w, b, activation)
            out["xi_q"][i, j], out["xi_c"][i, j] = _depth_scales(w, b, activation)
    crit = np.array([_critical_weight_std(b, activation) for b in bs])
    return PhaseDiagram(weight_stds=ws, bias_stds=bs, critical_weight_std=crit, **out)


# ----------------------------------------------------------------------------------------------------------------
# Finite networks: the correlation map measured, and where a network sits
# ----------------------------------------------------------------------------------------------------------------


def mean_field_correlations(weight_std: float, bias_std: float, activation: str, c0: float, depth: int) -> np.ndarray:
    """The mean-field trajectory ``c^0 = c0, c^l = C(c^{l-1})`` for l = 1 … depth at q = q*: shape ``(depth + 1,)``."""
    _check(weight_std, bias_std, activation)
    _check_c(c0)
    qq = _finite_q(_fixed_point(weight_std, bias_std, activation, 1.0))
    out = [float(c0)]
    for _ in range(int(depth)):
        out.append(_c_map(out[-1], weight_std, bias_std, activation, qq))
    return np.array(out)


class EmpiricalCorrelations(NamedTuple):
    """Measured per layer for each sampled network: ``correlation (num_networks, depth + 1)`` of the two inputs'
    pre-activations and their ``length (num_networks, depth + 1, 2)`` ``q^l = mean_i (z^l_i)²``; layer 0 is the
    input."""

    correlation: np.ndarray
    length: np.ndarray


def empirical_correlation_map(
    key: jax.Array,
    weight_std: float,
    bias_std: float,
    activation: str = "tanh",
    width: int = 1000,
    depth: int = 10,
    c0: float = 0.5,
    *,
    num_networks: int = 64,
) -> EmpiricalCorrelations:
    """Propagate a pair of inputs with correlation ``c0`` through ``num_networks`` random networks and measure c^l.

    Each network has ``depth`` layers of ``width`` units, ``z^l = φ(z^{l-1}) W^l + b^l`` with ``nets.mlp.init``'s
    law ``W ~ N(0, σ_w²/width)``, ``b ~ N(0, σ_b²)``, fresh at every layer. The input pair ``z^0`` is drawn per
    network with squared length per unit exactly q* and correlation exactly c0, so the mean-field prediction is
    ``mean_field_correlations(..., c0, depth)``. Measured ``c^l = Σ_i z1_i z2_i / √(Σ z1_i² Σ z2_i²)`` (Poole et al.
    2016; the finite-width fluctuations are O(1/√width) per network, the bias O(1/width)).

    Sampling is exact in law without drawing the width² weights: given the layer's input ``A = φ(z^{l-1})`` (2 ×
    width), the columns ``W_{:,j}`` are independent ``N(0, σ_w²/width · I)``, so the output pairs ``(z1_j, z2_j)`` are
    independent over units j with the 2×2 covariance ``Σ = σ_w²/width · A Aᵀ + σ_b² 𝟙𝟙ᵀ``. Each layer draws
    ``2 · width`` normals and multiplies them by a Cholesky factor of Σ: the same joint law of every layer's pair as
    the full network, at ``width/2`` times less random-number work. Computed in float32, one jitted program.
    """
    _check(weight_std, bias_std, activation)
    _check_c(c0)
    for name, value in (("width", width), ("depth", depth), ("num_networks", num_networks)):
        if int(value) < 1:
            raise ValueError(f"{name}={value!r}: must be a positive integer")
    if int(width) < 2:
        raise ValueError(f"width={width!r}: must be ≥ 2 (two inputs must fit)")
    q = _fixed_point(weight_std, bias_std, activation, 1.0)
    if not (math.isfinite(q) and q > 0):
        raise ValueError(f"weight_std={weight_std}, bias_std={bias_std}, activation={activation!r}: q* = {q}, the "
                         "signal vanishes or diverges, so there is no finite-length input to propagate")
    n = int(width)
    keys = jax.random.split(key, int(num_networks))
    c, lengths = _propagate_pairs(keys, jnp.float32(weight_std**2 / n), jnp.float32(bias_std**2), jnp.float32(c0),
                                  jnp.float32(math.sqrt(q * n)), activation=activation, width=n, depth=int(depth))
    return EmpiricalCorrelations(correlation=np.asarray(c, np.float64), length=np.asarray(lengths, np.float64))


def _pair_stats(z):
    q11, q22 = jnp.mean(z[0] * z[0]), jnp.mean(z[1] * z[1])
    return jnp.mean(z[0] * z[1]) / jnp.sqrt(q11 * q22), jnp.stack([q11, q22])


@functools.partial(jax.jit, static_argnames=("activation", "width", "depth"))
def _propagate_pairs(keys, w_var, b_var, c0, radius, *, activation: str, width: int, depth: int):
    """Structure static, numbers traced: one compiled program per (activation, width, depth)."""
    phi = mlp.ACTIVATIONS[activation]

    def one_network(k):
        k_in, k_layers = jax.random.split(k)
        g = jax.random.normal(k_in, (2, width), jnp.float32)
        e1 = g[0] / jnp.linalg.norm(g[0])
        e2 = g[1] - jnp.dot(g[1], e1) * e1
        e2 = e2 / jnp.linalg.norm(e2)
        z0 = radius * jnp.stack([e1, c0 * e1 + jnp.sqrt(1.0 - c0 * c0) * e2])

        def layer(z, kl):
            a = phi(z)
            cov = w_var * (a @ a.T) + b_var
            # Cholesky of the 2×2 covariance by hand (its (1,1) entry is > 0 whenever the signal is)
            l11 = jnp.sqrt(cov[0, 0])
            l21 = cov[1, 0] / l11
            l22 = jnp.sqrt(jnp.maximum(cov[1, 1] - l21 * l21, jnp.float32(0.0)))
            x = jax.random.normal(kl, (2, width), jnp.float32)
            z = jnp.stack([l11 * x[0], l21 * x[0] + l22 * x[1]])
            return z, _pair_stats(z)

        _, (c, lengths) = jax.lax.scan(layer, z0, jax.random.split(k_layers, depth))
        c_in, q_in = _pair_stats(z0)
        return jnp.concatenate([c_in[None], c]), jnp.concatenate([q_in[None], lengths])

    return jax.vmap(one_network)(keys)


class NetworkPosition(NamedTuple):
    """Per dense layer (in forward order; a stack adds a leading network axis): the estimated ``weight_std`` and
    ``bias_std``, ``chi1`` at those values, the ``critical_weight_std`` at that σ_b, and the signed ``distance``
    ``σ_w - σ_w,crit(σ_b)`` to the order-to-chaos line (> 0: chaotic side)."""

    weight_std: np.ndarray
    bias_std: np.ndarray
    chi1: np.ndarray
    critical_weight_std: np.ndarray
    distance: np.ndarray


def _dense_layers(layer) -> list:
    if isinstance(layer, mlp.Dense):
        return [layer]
    return _dense_layers(layer.first) + _dense_layers(layer.second) + _dense_layers(layer.short)


def _critical_or_nan(bias_std: float, activation: str) -> float:
    try:
        return _critical_weight_std(float(bias_std), activation)
    except ValueError:  # no χ_1 = 1 point at this σ_b (gelu's jump)
        return math.nan


def network_position(params: mlp.MLP) -> NetworkPosition:
    """Where a network sits on the mean-field phase diagram of its activation, layer by layer.

    ``σ_w² = fan_in · mean(W²)`` and ``σ_b² = mean(b²)``: second moments about zero, which is what the length map
    sums (``(1/N) Σ_i z_i²`` picks up ``mean(b²)``, not ``Var(b)``); for a fresh ``nets.mlp.init`` network (zero-mean
    entries) they are unbiased estimates of the initialization's σ_w², σ_b² and ``fan_in·Var(W)``, ``Var(b)`` differ
    from them only by the squared sample mean. Works at initialization or after training, on one network or on a
    stack (a leading axis on every leaf, as from ``nets.train.fit_many``); Fractal blocks contribute their dense
    layers in the order first, second, short. The readout layer is included: it is a step of the length map too.
    Where σ_b has no χ_1 = 1 point (see :func:`critical_weight_std`) the critical σ_w and distance are NaN.
    """
    layers = [d for layer in params.layers for d in _dense_layers(layer)]
    if not layers:
        raise ValueError("params: the network has no dense layers")
    ws, bs = [], []
    for d in layers:
        w, b = np.asarray(d.w, np.float64), np.asarray(d.b, np.float64)
        ws.append(np.sqrt(w.shape[-2] * np.mean(np.square(w), axis=(-2, -1))))
        bs.append(np.sqrt(np.mean(np.square(b), axis=-1)))
    weight_std, bias_std = np.stack(ws, axis=-1), np.stack(bs, axis=-1)
    act = params.activation
    crit = np.vectorize(lambda b: _critical_or_nan(b, act), otypes=[np.float64])(bias_std)
    return NetworkPosition(
        weight_std=weight_std,
        bias_std=bias_std,
        chi1=np.asarray(chi1(weight_std, bias_std, act), np.float64),
        critical_weight_std=crit,
        distance=weight_std - crit,
    )
