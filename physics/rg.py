"""Renormalization group on lattices: block spins, exact 1D decimation, Monte Carlo RG and flows.

Conventions: spins are ±1 (any integer or float dtype) on periodic hypercubic lattices; the lattice axes are the
*last* ``ndim`` axes of an array, every leading axis is a batch axis. The Ising Hamiltonian is
``H = -Σ_α K_α S_α`` in units where β = 1, with ``S_α`` the lattice sum of the interaction α (each term once).

* ``block_spin``: Kadanoff blocks of side ``b``. Majority rule ``s' = sign(Σ_block s)`` (ties, possible when
  ``b^d`` is even, are broken by a fair coin from ``key``) or decimation ``s' = s_corner``.
* ``decimate_1d``: the exact 1D flow ``tanh K' = tanh^b K`` (Kadanoff 1966; Nelson & Fisher 1975), with the
  free-energy constant and the correlation length ``ξ = -1/ln tanh K``.
* ``mcrg``: Swendsen's Monte Carlo RG (PRL 42:859, 1979; PRL 52:1165, 1984). With ``S^(n)_α`` the interactions of
  the n-times blocked configuration, the chain rule ``∂<S^(n)_γ>/∂K^(n-1)_β = Σ_α ∂<S^(n)_γ>/∂K^(n)_α T_αβ``
  gives the linearized RG matrix ``T = B⁻¹ A`` from connected correlators
  ``A_γβ = <S^(n)_γ S^(n-1)_β>_c`` and ``B_γα = <S^(n)_γ S^(n)_α>_c``; its eigenvalues are ``λ = b^y``.
  Even and odd interactions do not mix (spin-flip symmetry), so the two sectors are separate matrices.
* ``rg_flow``: the coupling ``K^(n)`` of the nearest-neighbour model whose exact nearest-neighbour correlation on the
  ``L/b^n`` torus (Kaufman 1949) equals that of the n-times blocked samples — a one-coupling projection of the flow.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "block_spin",
    "decimate_1d",
    "decimate_1d_constant",
    "ising_1d_correlation_length",
    "ising_1d_log_partition",
    "Interaction",
    "interaction",
    "EVEN_2D",
    "ODD_2D",
    "interaction_sums",
    "MCRGResult",
    "mcrg",
    "mcrg_from_sums",
    "blocked_interaction_sums",
    "default_interactions",
    "nn_correlation",
    "match_coupling_2d",
    "FlowResult",
    "rg_flow",
]

_RULES = ("majority", "decimation")


# ---------------------------------------------------------------------------------------------------------------
# Block spins
# ---------------------------------------------------------------------------------------------------------------
def block_spin(x, b: int, *, key=None, rule: str = "majority", ndim: int = 2):
    """Coarse-grain ±1 spins on blocks of side ``b`` (the last ``ndim`` axes are the lattice).

    Majority rule: ``s'_I = sign(Σ_{i∈I} s_i)``; when ``b^ndim`` is even a zero sum is a tie, broken by a fair coin
    drawn from ``key`` (independently per block and per sample), so ``key`` is then required. Decimation:
    ``s'_I = s_{corner of I}``. Pure and jit-able (``b``, ``rule``, ``ndim`` static); leading axes are a batch.

    Reference: L. P. Kadanoff, Physics 2:263 (1966); R. H. Swendsen, PRL 42:859 (1979) for the majority rule.

    Example:
      >>> xb = block_spin(x, 2, key=jax.random.key(0))   # (..., L, L) -> (..., L/2, L/2)
    """
    b = int(b)
    if b < 2:
        raise ValueError(f"b={b!r}: the block side must be an integer ≥ 2")
    if rule not in _RULES:
        raise ValueError(f"rule={rule!r}: must be one of {_RULES}")
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim={ndim!r}: must be 1, 2 or 3")
    x = jnp.asarray(x)
    if x.ndim < ndim:
        raise ValueError(f"x has shape {x.shape}: needs at least ndim={ndim} lattice axes")
    lat = x.shape[x.ndim - ndim:]
    if any(s % b for s in lat):
        raise ValueError(f"x lattice shape {lat}: every side must be a multiple of b={b}")
    batch = x.shape[: x.ndim - ndim]
    if rule == "decimation":
        idx = (Ellipsis,) + tuple(slice(None, None, b) for _ in range(ndim))
        return x[idx]
    split = []
    for s in lat:
        split += [s // b, b]
    blocks = x.reshape(*batch, *split).astype(jnp.int32)
    axes = tuple(len(batch) + 2 * k + 1 for k in range(ndim))
    total = jnp.sum(blocks, axis=axes)
    if b**ndim % 2 == 1:
        out = jnp.sign(total)
    else:
        if key is None:
            raise ValueError(
                f"key=None: the majority rule with b={b} in {ndim}D has ties (blocks of {b**ndim} spins); "
                f"pass key=jax.random.key(...) to break them at random, or use an odd b"
            )
        coin = jnp.where(jax.random.bernoulli(key, 0.5, total.shape), 1, -1).astype(jnp.int32)
        out = jnp.where(total == 0, coin, jnp.sign(total))
    return out.astype(x.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Exact 1D decimation
# ---------------------------------------------------------------------------------------------------------------
def decimate_1d(K, b: int = 2):
    """The exact decimation flow of the 1D Ising chain: ``tanh K' = tanh^b K`` (returns K').

    Summing out ``b-1`` spins between kept ones: ``Σ T^b = A exp(K' s s')`` with ``T = exp(K s s')``, whose
    eigenvalues ``2cosh K, 2sinh K`` give ``tanh K' = tanh^b K``. Reference: D. R. Nelson & M. E. Fisher,
    Ann. Phys. 91:226 (1975); any RG textbook (e.g. Cardy, "Scaling and renormalization", §3.3).
    """
    b = _check_b(b)
    K = np.asarray(K, dtype=np.float64)
    return np.arctanh(np.tanh(K) ** b)


def decimate_1d_constant(K, b: int = 2):
    """ln A(K), the spin-independent factor of one decimation step, per block of ``b`` original bonds.

    ``Σ_{b-1 inner spins} Π exp(K s s') = A exp(K' s_0 s_b)`` with
    ``A² = [(2cosh K)^{2b} - (2sinh K)^{2b}] / 4``, so the free energy obeys
    ``ln Z_N(K) = (N/b) ln A(K) + ln Z_{N/b}(K')`` and per spin ``g(K) = ln A / b + g(K') / b``.
    """
    b = _check_b(b)
    K = np.asarray(K, dtype=np.float64)
    lc = b * np.log(2 * np.cosh(K))
    # ln[(2c)^{2b} - (2s)^{2b}] = 2 lc + ln(1 - tanh^{2b} K)
    return 0.5 * (2 * lc + np.log1p(-np.tanh(K) ** (2 * b)) - np.log(4.0))


def ising_1d_correlation_length(K):
    """Correlation length of the infinite 1D Ising chain, ``ξ = -1 / ln tanh K`` (lattice units)."""
    K = np.asarray(K, dtype=np.float64)
    return -1.0 / np.log(np.tanh(K))


def ising_1d_log_partition(K, n=None):
    """ln Z of the 1D Ising chain per spin: ``ln 2cosh K`` (n=None, infinite chain), or of a ring of ``n`` spins,
    ``ln[(2cosh K)^n + (2sinh K)^n]`` (transfer matrix, total not per spin)."""
    K = np.asarray(K, dtype=np.float64)
    if n is None:
        return np.log(2 * np.cosh(K))
    return n * np.log(2 * np.cosh(K)) + np.log1p(np.tanh(K) ** int(n))


def _check_b(b):
    if int(b) != b or b < 2:
        raise ValueError(f"b={b!r}: must be an integer ≥ 2")
    return int(b)


# ---------------------------------------------------------------------------------------------------------------
# Interactions (lattice sums of products of spins)
# ---------------------------------------------------------------------------------------------------------------
class Interaction(NamedTuple):
    """A lattice interaction: ``name`` and the orbit of offset sets under the lattice symmetries (static)."""

    name: str
    shapes: tuple[tuple[tuple[int, ...], ...], ...]

    @property
    def odd(self) -> bool:
        return len(self.shapes[0]) % 2 == 1


def _canonical(offsets):
    lo = min(offsets)
    return tuple(sorted(tuple(o - l for o, l in zip(off, lo)) for off in offsets))


def interaction(name: str, representative: Sequence[Sequence[int]], ndim: int = 2) -> Interaction:
    """The interaction generated by one offset set under every rotation/reflection of the hypercubic lattice.

    ``representative`` lists the sites of one term (2D offsets are padded with zeros in 3D). Its lattice sum is
    ``S = Σ_i Σ_{g in orbit} Π_{o in g} s_{i+o}``; each distinct translation class is counted once.
    """
    rep = [tuple(int(c) for c in o) + (0,) * (ndim - len(o)) for o in representative]
    if any(len(o) != ndim for o in rep):
        raise ValueError(f"representative={representative!r}: offsets must have at most ndim={ndim} coordinates")
    orbit = set()
    for perm in itertools.permutations(range(ndim)):
        for signs in itertools.product((1, -1), repeat=ndim):
            img = [tuple(signs[k] * o[perm[k]] for k in range(ndim)) for o in rep]
            orbit.add(_canonical(img))
    return Interaction(name, tuple(sorted(orbit)))


_EVEN_REPS = (
    ("nn", ((0, 0), (1, 0))),
    ("nnn", ((0, 0), (1, 1))),
    ("plaquette", ((0, 0), (1, 0), (0, 1), (1, 1))),
    ("3rd nn", ((0, 0), (2, 0))),
    ("(2,1)", ((0, 0), (2, 1))),
    ("(2,2)", ((0, 0), (2, 2))),
    ("4-spin bent", ((0, 0), (1, 0), (1, 1), (2, 1))),
)
_ODD_REPS = (
    ("m", ((0, 0),)),
    ("3-spin corner", ((0, 0), (1, 0), (0, 1))),
    ("3-spin line", ((0, 0), (1, 0), (2, 0))),
    ("3-spin diag", ((0, 0), (1, 1), (2, 2))),
    ("3-spin bent", ((0, 0), (1, 0), (2, 1))),
)


def default_interactions(ndim: int = 2):
    """Swendsen's ordered sets: even (nn, nnn, plaquette, 3rd nn, …) and odd (m, three-spin, …)."""
    return (
        tuple(interaction(n, r, ndim) for n, r in _EVEN_REPS),
        tuple(interaction(n, r, ndim) for n, r in _ODD_REPS),
    )


EVEN_2D, ODD_2D = default_interactions(2)


def interaction_sums(x, interactions: Sequence[Interaction], ndim: int = 2):
    """Lattice sums ``S_α`` of each interaction for a batch of ±1 configurations: shape ``(..., len(interactions))``
    (int32). The last ``ndim`` axes of ``x`` are the periodic lattice."""
    x = jnp.asarray(x).astype(jnp.int32)
    axes = tuple(range(x.ndim - ndim, x.ndim))
    cache = {}

    def shifted(off):
        if off not in cache:
            cache[off] = jnp.roll(x, tuple(-o for o in off), axis=axes) if any(off) else x
        return cache[off]

    out = []
    for inter in interactions:
        total = 0
        for shape in inter.shapes:
            prod = shifted(shape[0])
            for off in shape[1:]:
                prod = prod * shifted(off)
            total = total + jnp.sum(prod, axis=axes, dtype=jnp.int32)
        out.append(total)
    return jnp.stack(out, axis=-1)


# ---------------------------------------------------------------------------------------------------------------
# Monte Carlo RG
# ---------------------------------------------------------------------------------------------------------------
class MCRGResult(NamedTuple):
    """Exponents ``y = ln λ / ln b`` of Swendsen's linearized RG matrix, per blocking level (level n compares the
    n-times blocked lattice with the (n-1)-times blocked one; index 0 is level 1).

    ``y_t``/``y_h``: leading even / odd exponent with all couplings, shape (levels,), with jackknife errors.
    ``y_even``/``y_odd``: all eigenvalue exponents (descending by real part), shape (levels, n_even|n_odd).
    ``y_t_by_couplings``/``y_h_by_couplings``: the leading exponent when only the first k couplings are kept,
    shape (levels, n) for k = 1..n — the truncation series Swendsen tabulates.
    """

    b: int
    y_t: np.ndarray
    y_t_err: np.ndarray
    y_h: np.ndarray
    y_h_err: np.ndarray
    y_even: np.ndarray
    y_even_err: np.ndarray
    y_odd: np.ndarray
    y_odd_err: np.ndarray
    y_t_by_couplings: np.ndarray
    y_t_by_couplings_err: np.ndarray
    y_h_by_couplings: np.ndarray
    y_h_by_couplings_err: np.ndarray
    even_names: tuple[str, ...]
    odd_names: tuple[str, ...]
    num_replicas: int


def _blocked_sums(x, key, b, levels, rule, ndim, even, odd):
    """S^(n) for n = 0..levels, concatenated [even, odd] per level: shape (..., levels+1, n_e + n_o)."""
    inters = tuple(even) + tuple(odd)
    out = [interaction_sums(x, inters, ndim)]
    for n in range(levels):
        x = block_spin(x, b, key=jax.random.fold_in(key, n), rule=rule, ndim=ndim)
        out.append(interaction_sums(x, inters, ndim))
    return jnp.stack(out, axis=-2)


# One compiled program per (sizes, rule, interactions): repeated calls (a sweep over couplings) do not recompile.
_blocked_sums_jit = jax.jit(_blocked_sums, static_argnums=(2, 3, 4, 5, 6, 7))


def _leading_y(T, b):
    ev = np.linalg.eigvals(T)
    ev = ev[np.argsort(-ev.real)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(ev.real) / np.log(b)


def _mcrg_estimates(moments, b, levels, n_e, n_o):
    """All exponents from pooled moments ``[mean v, mean v vᵀ]`` (v = flattened S over levels)."""
    moments = np.asarray(moments)
    m = moments.mean(axis=0) if moments.ndim == 2 else moments
    nv = (levels + 1) * (n_e + n_o)
    mean = m[:nv]
    cov = m[nv:].reshape(nv, nv) - np.outer(mean, mean)
    width = n_e + n_o
    sectors = ((0, n_e), (n_e, n_o))
    out = []
    for start, size in sectors:
        for lvl in range(1, levels + 1):
            cur = slice(lvl * width + start, lvl * width + start + size)
            prev = slice((lvl - 1) * width + start, (lvl - 1) * width + start + size)
            A = cov[cur, prev]
            B = cov[cur, cur]
            full = _leading_y(np.linalg.solve(B, A), b)
            trunc = [_leading_y(np.linalg.solve(B[:k, :k], A[:k, :k]), b)[0] for k in range(1, size + 1)]
            out.append(np.concatenate([full, trunc]))
    return np.concatenate(out)


def mcrg(samples, b: int, *, levels: int, key=None, rule: str = "majority", ndim: int = 2,
         even: Sequence[Interaction] | int | None = None, odd: Sequence[Interaction] | int | None = None,
         chunk: int = 512) -> MCRGResult:
    """Swendsen's Monte Carlo renormalization group from equilibrium samples.

    For each level n = 1..levels: ``T^(n) = B⁻¹ A`` with ``A_γβ = <S^(n)_γ S^(n-1)_β> - <S^(n)_γ><S^(n-1)_β>`` and
    ``B_γα = <S^(n)_γ S^(n)_α> - <S^(n)_γ><S^(n)_α>``, separately for even and odd interactions; eigenvalues
    ``λ = b^y``. At a critical point the leading ones converge (in couplings and levels) to ``y_t = 1/ν`` and
    ``y_h = d - β/ν`` (2D Ising: 1 and 15/8).

    Args:
      samples: ±1 configurations, shape ``(R, M, *lattice)``: R ≥ 2 independent replicas (or blocks of one chain
        longer than its autocorrelation time) of M samples each. Errors are jackknife over the R replicas.
      b: block side. levels: number of blockings (every side must be divisible by ``b**levels``).
      key: PRNG key for the majority-rule tie-breaks (required when ``b**ndim`` is even).
      even, odd: interactions (default ``default_interactions(ndim)``), or an int k to keep the first k defaults.
      chunk: samples blocked per compiled call (memory bound only).

    Returns:
      :class:`MCRGResult`.

    Reference: R. H. Swendsen, PRL 42:859 (1979), Eqs. (5)–(8); PRL 52:1165 (1984).
    """
    b = _check_b(b)
    if int(levels) != levels or levels < 1:
        raise ValueError(f"levels={levels!r}: must be an integer ≥ 1")
    levels = int(levels)
    samples = np.asarray(samples)
    if samples.ndim != ndim + 2:
        raise ValueError(f"samples shape {samples.shape}: must be (replicas, samples, *lattice) with {ndim} "
                         f"lattice axes")
    R, M = samples.shape[:2]
    if R < 2:
        raise ValueError(f"samples shape {samples.shape}: needs ≥ 2 independent replicas for jackknife errors")
    lat = samples.shape[2:]
    if any(s % b**levels for s in lat):
        raise ValueError(f"levels={levels}: every lattice side {lat} must be divisible by b**levels = {b**levels}")
    if rule == "majority" and b**ndim % 2 == 0 and key is None:
        raise ValueError(f"key=None: majority blocks of {b**ndim} spins have ties; pass key=jax.random.key(...)")
    key = jax.random.key(0) if key is None else key
    de, do = default_interactions(ndim)
    even = de[:even] if isinstance(even, int) else (de if even is None else tuple(even))
    odd = do[:odd] if isinstance(odd, int) else (do if odd is None else tuple(odd))
    def fn(x, k):
        return _blocked_sums_jit(x, k, b, levels, rule, ndim, tuple(even), tuple(odd))
    sums = []
    for r in range(R):
        per = []
        for c0 in range(0, M, chunk):
            k = jax.random.fold_in(jax.random.fold_in(key, r), c0)
            per.append(np.asarray(fn(jnp.asarray(samples[r, c0:c0 + chunk]), k)))
        sums.append(np.concatenate(per))
    return mcrg_from_sums(np.stack(sums), b, even=even, odd=odd)


def blocked_interaction_sums(x, key, b: int, *, levels: int, rule: str = "majority", ndim: int = 2,
                             even=None, odd=None):
    """``S^(n)_α`` of configurations ``x`` (..., *lattice) for n = 0..levels: shape (..., levels+1, n_e+n_o),
    even interactions first (jit-able; the input of :func:`mcrg_from_sums`, e.g. recorded by a job)."""
    de, do = default_interactions(ndim)
    even = de[:even] if isinstance(even, int) else (de if even is None else tuple(even))
    odd = do[:odd] if isinstance(odd, int) else (do if odd is None else tuple(odd))
    return _blocked_sums(x, key, int(b), int(levels), rule, ndim, even, odd)


def mcrg_from_sums(sums, b: int, *, even, odd) -> MCRGResult:
    """Swendsen's MCRG exponents from recorded interaction sums ``(R, M, levels+1, n_e+n_o)`` (see :func:`mcrg`).

    ``even``/``odd`` are the interaction tuples (or counts of defaults) the sums were computed with.
    """
    from .observables import jackknife

    sums = np.asarray(sums, np.float64)
    R, M, nl = sums.shape[:3]
    levels = nl - 1
    de, do = default_interactions(2)
    n_e = even if isinstance(even, int) else len(even)
    n_o = odd if isinstance(odd, int) else len(odd)
    even_names = tuple(i.name for i in (de[:even] if isinstance(even, int) else even))
    odd_names = tuple(i.name for i in (do[:odd] if isinstance(odd, int) else odd))
    v = sums.reshape(R, M, -1)
    # centre on the grand mean first: the connected correlators then lose no float64 digits
    v = v - v.mean(axis=(0, 1))
    moments = np.concatenate([v.mean(axis=1), np.einsum("rmi,rmj->rij", v, v).reshape(R, -1) / M], axis=1)
    est, err = jackknife(lambda m: _mcrg_estimates(m, b, levels, n_e, n_o), moments)
    parts, pos = [], 0
    for size in (n_e, n_o):
        vals = est[pos:pos + levels * 2 * size].reshape(levels, 2 * size)
        errs = err[pos:pos + levels * 2 * size].reshape(levels, 2 * size)
        parts.append((vals[:, :size], errs[:, :size], vals[:, size:], errs[:, size:]))
        pos += levels * 2 * size
    (ye, yee, yte, ytee), (yo, yoe, yho, yhoe) = parts
    return MCRGResult(
        b=int(b), y_t=ye[:, 0], y_t_err=yee[:, 0], y_h=yo[:, 0], y_h_err=yoe[:, 0],
        y_even=ye, y_even_err=yee, y_odd=yo, y_odd_err=yoe,
        y_t_by_couplings=yte, y_t_by_couplings_err=ytee, y_h_by_couplings=yho, y_h_by_couplings_err=yhoe,
        even_names=even_names, odd_names=odd_names, num_replicas=R,
    )


# ---------------------------------------------------------------------------------------------------------------
# RG flow by matching nearest-neighbour correlations (2D)
# ---------------------------------------------------------------------------------------------------------------
def nn_correlation(x, ndim: int = 2):
    """Mean nearest-neighbour correlation ``<s_i s_{i+e}>`` of each configuration (float32, ``x.shape[:-ndim]``)."""
    s = interaction_sums(x, (interaction("nn", ((0, 0), (1, 0)), ndim),), ndim)[..., 0]
    n = int(np.prod(jnp.shape(x)[-ndim:]))
    return s.astype(jnp.float32) / (ndim * n)


def match_coupling_2d(corr, L: int, *, k_max: float = 3.0):
    """The K whose exact nearest-neighbour correlation on the L×L torus equals ``corr``: ``-u_Kaufman(L, 1/K)/2``.

    Values outside the reachable range map to 0 (``corr ≤ <ss>(K→0)``) or ``k_max``.
    """
    from scipy.optimize import brentq

    from .theory import kaufman_energy

    def c_of_k(k):
        return float(-np.asarray(kaufman_energy(int(L), 1.0 / k)) / 2.0)

    lo, hi = 1e-3, float(k_max)
    c_lo, c_hi = c_of_k(lo), c_of_k(hi)

    def one(c):
        if not np.isfinite(c):
            return np.nan
        if c <= c_lo:
            return 0.0
        if c >= c_hi:
            return hi
        return brentq(lambda k: c_of_k(k) - c, lo, hi, xtol=1e-10)

    return np.vectorize(one)(np.asarray(corr, dtype=np.float64))


class FlowResult(NamedTuple):
    """Effective nearest-neighbour coupling per level (index 0 = the unblocked samples) with replica errors."""

    sizes: np.ndarray
    couplings: np.ndarray
    couplings_err: np.ndarray
    correlations: np.ndarray
    correlations_err: np.ndarray


@functools.partial(jax.jit, static_argnames=("b", "levels", "rule"))
def _correlation_levels(x, key, b: int, levels: int, rule: str):
    """Nearest-neighbour correlation of samples ``x`` (M, L, L) and of their 1…levels times blocked images."""
    out = [nn_correlation(x)]
    for n in range(levels):
        x = block_spin(x, b, key=jax.random.fold_in(key, n), rule=rule)
        out.append(nn_correlation(x))
    return jnp.stack(out, axis=-1)


def rg_flow(samples, b: int, *, levels: int, key=None, rule: str = "majority") -> FlowResult:
    """Follow blocked 2D Ising samples: the coupling K^(n) whose exact nn correlation on the ``L/b^n`` torus matches
    the n-times blocked samples' (a one-coupling projection of the RG flow; K^(0) recovers the sampling K).

    Away from K_c the sequence runs to 0 (disordered side) or grows (ordered side); near the projected fixed point it
    stays put. Errors: standard error over the R independent replicas of ``samples`` ``(R, M, L, L)``.
    """
    from .observables import mean_stderr

    b = _check_b(b)
    samples = np.asarray(samples)
    if samples.ndim != 4 or samples.shape[2] != samples.shape[3]:
        raise ValueError(f"samples shape {samples.shape}: must be (replicas, samples, L, L)")
    L = samples.shape[-1]
    if L % b**levels:
        raise ValueError(f"levels={levels}: L={L} must be divisible by b**levels = {b**levels}")
    if rule == "majority" and b % 2 == 0 and key is None:
        raise ValueError("key=None: majority blocks with even b have ties; pass key=jax.random.key(...)")
    key = jax.random.key(0) if key is None else key
    per_rep = np.stack([
        np.asarray(_correlation_levels(jnp.asarray(samples[r]), jax.random.fold_in(key, r), b, levels, rule),
                   np.float64).mean(axis=0)
        for r in range(samples.shape[0])
    ])  # (R, levels+1)
    sizes = np.array([L // b**n for n in range(levels + 1)])
    ks = np.stack([match_coupling_2d(per_rep[:, n], sizes[n]) for n in range(levels + 1)], axis=-1)
    c, ce = mean_stderr(per_rep, axis=0)
    k, ke = mean_stderr(ks, axis=0)
    return FlowResult(sizes, k, ke, c, ce)
