"""Heavy-tailed self-regularization diagnostics of weight matrices: a JAX-native, batched WeightWatcher.

Conventions. A weight matrix ``W`` of shape ``(a, b)`` has ``N = max(a, b)``, ``M = min(a, b)``, aspect ratio
``Q = N / M ≥ 1``. Its empirical spectral density (ESD) is the ``M`` eigenvalues of the smaller Gram matrix
(``WᵀW`` if ``a ≥ b``, else ``WWᵀ``), i.e. the squared singular values:

    λ_i = s_i(W)²          normalize=False (default; WeightWatcher's unnormalized convention)
    λ_i = s_i(W)² / N      normalize=True  (Martin & Mahoney's X = WᵀW / N)

α, ``Q``, the stable rank, the entropy, the soft rank, ``rand_distance`` and the phase do not depend on the
convention; ``lambda_max``, the log norms, ``mp_sigma2``, the MP edges and ``xmin`` scale with it.

Per layer (the record columns of :func:`analyze`):

- ``alpha``, ``xmin``, ``ks_distance``, ``num_tail``, ``alpha_stderr``: the power-law tail ``ρ(λ) ∝ λ^-α`` for
  ``λ ≥ xmin`` fitted by Clauset, Shalizi & Newman (SIAM Rev. 51:661, 2009) exactly as ``powerlaw.Fit`` does
  (Alstott et al. 2014; continuous, no xmax, ``xmin_distance="D"``), see :func:`fit_power_law`.
- ``alpha_weighted = α log10 λ_max``; ``log_spectral_norm = log10 λ_max``; ``log_frobenius_norm = log10 Σλ``
  (the squared Frobenius norm ‖W‖_F², as WeightWatcher's ``log_norm``); ``log_alpha_norm = log10 Σ λ^α``;
  ``stable_rank = Σλ / λ_max``.
- ``entropy``: WeightWatcher's matrix entropy, the Shannon entropy of ``p_i = λ_i / Σλ`` (squared singular values)
  divided by its maximum ``ln R``, ``R`` the numerical rank: ``-Σ p_i ln p_i / ln R`` in [0, 1] (0 when R ≤ 1).
- Marchenko–Pastur fit: for iid entries of variance σ_w², the ESD fills ``[λ−, λ+]``, ``λ± = σ²(1 ± 1/√Q)²`` with
  ``σ² = σ_w²`` (normalize=True) or ``N σ_w²`` (normalize=False) — ``mp_sigma2`` is that σ², the mean bulk
  eigenvalue. It is fitted by iterating ``σ² ← mean{λ_i : λ_i ≤ τ(σ²)}`` from the mean of all eigenvalues, where
  ``τ(σ²) = λ+ + 4 σ_TW``, ``σ_TW = σ² (√N + √M)(N^-1/2 + M^-1/2)^(1/3) / N`` being the Tracy–Widom scale of the
  largest eigenvalue (Johnstone 2001, Ann. Stat. 29:295); the sequence decreases monotonically to the largest
  fixed point (nested bulk sets). ``num_spikes`` counts eigenvalues above τ: a pure-noise matrix's λ_max exceeds
  it with probability P(TW₁ > 4) ≈ 2·10⁻⁴, while a spike above the BBP threshold sits O(1) above λ+.
  ``mp_softrank = λ+ / λ_max`` (WeightWatcher's MP soft rank).
- ``rand_distance``: Jensen–Shannon distance (base 2, in [0, 1]) between the ESD of ``W`` and the ESD of ``W`` with
  its entries randomly permuted (``key``; a keyed pseudo-random permutation, see :func:`shuffle_entries`), each
  histogrammed on the same ``⌈√M⌉`` (clipped to 10…100) equal bins
  of ``log10 λ`` (see :func:`jensen_shannon_distance`). NaN when ``key`` is None.
- ``rank_loss``: eigenvalues at or below ``√M ε λ_max`` (ε of the dtype, float32 by default): the rounding level of
  Gram-matrix eigenvalues, which come out ≲ 2 ε λ_max for an exactly low-rank W. A Gram matrix resolves nothing
  finer, so a W whose ESD spans more than ``1/(√M ε)`` (≈ 6·10⁵ at M = 200 in float32; very heavy tails, e.g.
  Pareto μ ≤ 1 entries, can) is rank-deficient at this precision and counted so.
- ``phase`` (Martin & Mahoney 2021, JMLR 22(165); arXiv:1810.01075, Table 1, "5+1 phases"), the first rule that
  applies: ``rank-collapse`` if rank_loss > 10% of M; ``random-like`` if num_spikes = 0; with few spikes
  (num_spikes ≤ max(1, 5% of M)) ``bulk+spikes`` if λ_max ≥ 1.5 λ+ (separated spikes) else ``bleeding-out``
  (eigenvalues just past the edge); with more, ``heavy-tailed`` if α ≤ 4 else ``bulk-decay``; ``undetermined`` if
  α could not be fitted there, ``non-finite`` for a network with NaN/Inf weights (a diverged run is a result).
- ``warning``: ``"under-trained"`` if α > 6, ``"over-trained"`` if α < 2, else ``""`` (Martin & Mahoney 2021).

A stack of networks (``nets.mlp.MLP`` with leading axes) is analysed with one jitted, vmapped call per distinct
layer shape. :func:`analyze` computes in float32; :func:`esd` and :func:`fit_power_law` keep a float64 input's
precision under ``jax.enable_x64``.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import eigh_tridiagonal

from nets import mlp

from .weights_io import WeightsError, _matrix, leaf_name, load_run_snapshot, load_weights, source_kind, tensor_shapes

__all__ = [
    "COLUMNS",
    "PowerLawFit",
    "MarchenkoPasturFit",
    "SpectraTable",
    "WeightsError",
    "esd",
    "fit_power_law",
    "fit_marchenko_pastur",
    "marchenko_pastur_density",
    "jensen_shannon_distance",
    "shuffle_entries",
    "classify_phase",
    "training_warning",
    "analyze",
    "analyze_path",
    "load_weights",
]

SPIKE_TW_MARGIN = 4.0  # Tracy–Widom scales above λ+ before an eigenvalue counts as a spike
RANK_COLLAPSE_FRACTION = 0.1
FEW_SPIKES_FRACTION = 0.05
SPIKE_SEPARATION = 1.5
HEAVY_TAIL_ALPHA = 4.0
UNDER_TRAINED_ALPHA = 6.0
OVER_TRAINED_ALPHA = 2.0
_ROW_BLOCK_ELEMENTS = 1 << 22  # candidate rows per block × eigenvalues: bounds the xmin scan's memory

COLUMNS = ("network", "layer", "shape", "N", "M", "Q", "alpha", "alpha_weighted", "lambda_max",
           "log_spectral_norm", "log_frobenius_norm", "log_alpha_norm", "stable_rank", "entropy", "mp_sigma2",
           "lambda_minus", "lambda_plus", "num_spikes", "mp_softrank", "rand_distance", "ks_distance", "xmin",
           "num_tail", "alpha_stderr", "rank_loss", "phase", "warning")
_INT_COLUMNS = ("network", "N", "M", "num_tail", "num_spikes", "rank_loss")
_STR_COLUMNS = ("layer", "phase", "warning")


class PowerLawFit(NamedTuple):
    """A power-law tail ``p(λ) = (α-1)/xmin (λ/xmin)^-α`` on ``λ ≥ xmin``; NaN fields when it cannot be fitted."""

    alpha: jax.Array
    xmin: jax.Array
    ks_distance: jax.Array
    num_tail: jax.Array
    alpha_stderr: jax.Array  # (α - 1)/√num_tail, the MLE's standard error (CSN eq. 3.2)


class MarchenkoPasturFit(NamedTuple):
    """MP bulk ``[lambda_minus, lambda_plus]`` of scale ``sigma2``; spikes are eigenvalues above ``spike_threshold``."""

    sigma2: jax.Array
    lambda_minus: jax.Array
    lambda_plus: jax.Array
    spike_threshold: jax.Array
    num_spikes: jax.Array


# --- spectra ---------------------------------------------------------------------------------------------------
def _esd(w, normalize):
    a, b = w.shape
    hi = jax.lax.Precision.HIGHEST  # TPU/GPU default f32 matmuls round to bf16/tf32
    gram = jnp.matmul(w.T, w, precision=hi) if a >= b else jnp.matmul(w, w.T, precision=hi)
    # Householder tridiagonalization (LAPACK sytrd) + bisection: eigenvalues only. jnp.linalg.eigvalsh would run
    # syevd with eigenvectors, 2-3x slower on a CPU; both are accurate to a few ε·λ_max.
    _, diag, off, _ = jax.lax.linalg.tridiagonal(gram, lower=True)
    ev = jnp.sort(eigh_tridiagonal(diag, off, eigvals_only=True)) if min(a, b) > 1 else diag
    ev = jnp.maximum(ev, 0.0)  # rounding can leave -ε for a zero eigenvalue
    return ev / max(a, b) if normalize else ev


def _float_array(x):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def esd(w, normalize: bool = False) -> jax.Array:
    """The ESD of ``w``: ascending eigenvalues of the smaller Gram matrix, ``s_i(W)²`` (``/ N`` if ``normalize``).

    Example:
      >>> esd(jnp.eye(3) * 2.0)            # [4., 4., 4.]
    """
    w = _float_array(w)
    if w.ndim != 2 or min(w.shape) < 1:
        raise ValueError(f"w.shape={w.shape}: must be a non-empty 2-D matrix")
    return _esd_jit(w, bool(normalize))


_esd_jit = jax.jit(_esd, static_argnums=1)


# --- power-law tail -----------------------------------------------------------------------------------------------
@jax.jit
def _fit_power_law(ev, max_alpha):
    x = jnp.sort(ev)
    n = x.shape[0]
    dtype = x.dtype
    idx = jnp.arange(n)
    pos = x > 0  # powerlaw drops zeros; a Gram matrix has no negative eigenvalue
    first = pos & jnp.concatenate([jnp.ones(1, bool), x[1:] != x[:-1]])  # first copy of each distinct value
    distinct_above = jnp.cumsum(first[::-1])[::-1]  # distinct values ≥ x_k
    # powerlaw tries every distinct value but the two largest (data < max, then drops the last unique value)
    candidate = first & (distinct_above >= 3)
    logx = jnp.log(jnp.where(pos, x, 1.0))

    def row(k):
        # Tail x_k ≤ x_j: the MLE and the KS distance of one candidate xmin = x_k. The log-ratio sum is formed term
        # by term: a cumulative sum of logs minus n_t ln x_k would cancel digits when the tail is narrow.
        tail = idx >= k
        r = logx - logx[k]
        nt = (n - k).astype(dtype)
        alpha = 1.0 + nt / jnp.sum(jnp.where(tail, r, 0.0))
        # powerlaw's empirical CDF at a distinct value x is the fraction of tail points strictly below x
        # (searchsorted side="left"), compared with the fitted CDF 1 - (x/xmin)^(1-α) at the distinct values only
        empirical = (idx - k).astype(dtype) / nt
        fitted = -jnp.expm1((1.0 - alpha) * jnp.where(tail, r, 0.0))
        d = jnp.max(jnp.where(tail & first, jnp.abs(fitted - empirical), 0.0))
        return alpha, d

    alphas, ds = jax.lax.map(row, idx, batch_size=max(1, min(n, _ROW_BLOCK_ELEMENTS // max(n, 1))))
    valid = candidate & (alphas < max_alpha)
    use = jnp.where(jnp.any(valid), valid, candidate)
    best = jnp.argmin(jnp.where(use, ds, jnp.inf))
    ok = jnp.sum(candidate) >= 2  # powerlaw gives up (NaN) with fewer than two candidates
    nan = jnp.asarray(jnp.nan, dtype)
    alpha = jnp.where(ok, alphas[best], nan)
    num_tail = jnp.where(ok, n - best, 0)
    return PowerLawFit(alpha=alpha, xmin=jnp.where(ok, x[best], nan), ks_distance=jnp.where(ok, ds[best], nan),
                       num_tail=num_tail, alpha_stderr=(alpha - 1.0) / jnp.sqrt(num_tail.astype(dtype)))


def fit_power_law(eigenvalues, *, max_alpha: float | None = None) -> PowerLawFit:
    """Clauset–Shalizi–Newman power-law fit of the tail, as ``powerlaw.Fit(eigenvalues)`` computes it.

    Sorted positive values ``x_0 ≤ … ≤ x_{n-1}`` (zeros and negatives dropped). Each distinct value except the two
    largest is a candidate ``xmin = x_k`` with tail ``x_j ≥ x_k`` of ``n_t = n - k`` points:

        α_k = 1 + n_t / Σ_{j≥k} ln(x_j / x_k)                                  (CSN eq. 3.1, the continuous MLE)
        D_k = max over distinct tail values x of |1 - (x/x_k)^(1-α_k) - #{tail points < x}/n_t|

    and the candidate with the smallest ``D_k`` is kept (the first on ties). This is the KS distance of
    ``powerlaw`` 2.0 (its empirical CDF uses ``searchsorted(side="left")``). Every candidate is evaluated at once
    (blocks of a candidate × point array), so the function jits and vmaps; an empty fit (fewer than four distinct
    positive values) is all NaN with ``num_tail = 0``.

    ``max_alpha``: only candidates with ``α_k < max_alpha`` compete (all of them if none qualifies). ``None`` — the
    default — is the plain CSN method, as powerlaw 1.x and WeightWatcher report it. ``max_alpha=3.0`` reproduces
    ``powerlaw`` 2.0's own default, whose parameter range ``alpha ∈ (0, 3)`` marks every candidate with α ≥ 3 as
    failed; ``powerlaw.Fit(x, parameter_ranges={"alpha": [0, None]})`` reproduces ``max_alpha=None``.
    """
    x = _float_array(eigenvalues)
    if x.ndim != 1:
        raise ValueError(f"eigenvalues.shape={x.shape}: must be 1-D")
    if max_alpha is not None and not float(max_alpha) > 1.0:
        raise ValueError(f"max_alpha={max_alpha!r}: must be None or a number > 1")
    return _fit_power_law(x, jnp.asarray(jnp.inf if max_alpha is None else float(max_alpha), x.dtype))


# --- Marchenko–Pastur -----------------------------------------------------------------------------------------
def _mp_constants(n, m):
    edge = (1.0 + 1.0 / math.sqrt(n / m)) ** 2
    tw = (math.sqrt(n) + math.sqrt(m)) * (n ** -0.5 + m ** -0.5) ** (1.0 / 3.0) / n
    return edge, (1.0 - 1.0 / math.sqrt(n / m)) ** 2, edge + SPIKE_TW_MARGIN * tw


def _fit_mp(ev, n, m):
    upper, lower, cut = _mp_constants(n, m)

    def bulk(s):
        inside = ev <= s * cut
        count = jnp.sum(inside)
        return jnp.sum(jnp.where(inside, ev, 0.0)) / jnp.maximum(count, 1).astype(ev.dtype), count

    def body(state):
        s, _, size = state
        s_new, size_new = bulk(s)
        return s_new, size, size_new

    s0 = jnp.mean(ev)
    # the bulk sets are nested and shrink until one repeats; then σ² is a fixed point
    s, _, size = jax.lax.while_loop(lambda st: st[2] < st[1], body, (s0, jnp.asarray(m + 2), jnp.asarray(m + 1)))
    return MarchenkoPasturFit(sigma2=s, lambda_minus=s * lower, lambda_plus=s * upper, spike_threshold=s * cut,
                              num_spikes=jnp.sum(ev > s * cut))


def fit_marchenko_pastur(eigenvalues, shape) -> MarchenkoPasturFit:
    """Marchenko–Pastur bulk of an ESD (see the module docstring): ``shape`` is the ``(a, b)`` shape of ``W``.

    ``eigenvalues`` in either convention (σ² comes out in the same one). Jits and vmaps (``shape`` is static).
    """
    x = _float_array(eigenvalues)
    n, m = max(shape), min(shape)
    if x.shape != (m,) or m < 1:
        raise ValueError(f"eigenvalues.shape={x.shape}: must be (min(shape),) = ({m},) for shape={tuple(shape)}")
    return _fit_mp(x, n, m)


def marchenko_pastur_density(x, sigma2, q):
    """MP density of the eigenvalues of ``WᵀW/N`` for iid entries of variance ``sigma2`` and ``Q = N/M ≥ 1``:

        ρ(λ) = Q √((λ+ - λ)(λ - λ−)) / (2π σ² λ)   on [λ−, λ+],  λ± = σ²(1 ± 1/√Q)²,  else 0.

    Integrates to 1 with mean ``sigma2`` (Marchenko & Pastur 1967, Math. USSR Sb. 1:457).
    """
    x = jnp.asarray(x)
    lo, hi = sigma2 * (1 - q ** -0.5) ** 2, sigma2 * (1 + q ** -0.5) ** 2
    inside = (x > lo) & (x < hi)
    safe = jnp.where(inside, x, 0.5 * (lo + hi))
    return jnp.where(inside, q * jnp.sqrt((hi - safe) * (safe - lo)) / (2 * jnp.pi * sigma2 * safe), 0.0)


# --- ESD distance -------------------------------------------------------------------------------------------------
def _zero_level(lam_max, m, dtype):
    return lam_max * (math.sqrt(m) * float(jnp.finfo(dtype).eps))


def _default_bins(m):
    return int(min(100, max(10, math.ceil(math.sqrt(m)))))


def _js_distance(a, b, num_bins):
    hi = jnp.maximum(a.max(), b.max())
    floor = _zero_level(hi, max(a.shape[0], b.shape[0]), a.dtype)  # Gram rounding level: below it is zero
    la, lb = jnp.log10(jnp.maximum(a, floor)), jnp.log10(jnp.maximum(b, floor))
    lo, top = jnp.minimum(la.min(), lb.min()), jnp.log10(hi)
    width = jnp.where(top > lo, top - lo, 1.0)

    def hist(v):
        i = jnp.clip(jnp.floor((v - lo) / width * num_bins).astype(jnp.int32), 0, num_bins - 1)
        c = jnp.zeros(num_bins, a.dtype).at[i].add(1.0)
        return c / c.sum()

    p, q = hist(la), hist(lb)
    mid = 0.5 * (p + q)

    def kl(u):  # Σ u log2(u/mid) over u > 0 (there mid > 0 too)
        ok = u > 0
        return jnp.sum(jnp.where(ok, u * jnp.log2(jnp.where(ok, u, 1.0) / jnp.where(ok, mid, 1.0)), 0.0))

    return jnp.sqrt(jnp.maximum(0.5 * (kl(p) + kl(q)), 0.0))


_js_distance_jit = jax.jit(_js_distance, static_argnums=2)


def jensen_shannon_distance(a, b, *, num_bins: int | None = None) -> jax.Array:
    """Jensen–Shannon distance (base 2) between two ESDs, histogrammed on common bins of ``log10 λ``.

    Eigenvalues below ``floor = max(a ∪ b) · √max(len a, len b) · ε`` (ε of the dtype) are raised to ``floor``; the
    ``num_bins`` (default ``⌈√len⌉`` clipped to 10…100) equal bins span ``[min log10, max log10]`` of both sets,
    the last bin closed, as ``numpy.histogram``. ``JSD = ½ KL(p‖m) + ½ KL(q‖m)``, ``m = (p + q)/2``; the distance
    is ``√JSD`` in [0, 1] (Endres & Schindelin 2003).
    """
    a, b = _float_array(a), _float_array(b)
    if a.ndim != 1 or b.ndim != 1 or a.size == 0 or b.size == 0:
        raise ValueError(f"a.shape={a.shape}, b.shape={b.shape}: must be non-empty 1-D")
    bins = _default_bins(max(a.size, b.size)) if num_bins is None else int(num_bins)
    if bins < 1:
        raise ValueError(f"num_bins={num_bins!r}: must be a positive integer")
    return _js_distance_jit(a, b, bins)


# --- entry shuffle ----------------------------------------------------------------------------------------------
_FEISTEL_ROUNDS = 12


def _mix32(x):
    # a 32-bit integer finalizer (xorshift-multiply; Wellons' "lowbias32" constants)
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x21F0AAAD)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x735A2D97)
    return x ^ (x >> 15)


def _round_offset(x, round_key, size):
    u = (_mix32(x.astype(jnp.uint32) ^ round_key) >> 8).astype(jnp.float32) * (2.0 ** -24)  # uniform in [0, 1)
    return jnp.minimum((u * size).astype(jnp.int32), size - 1)


def shuffle_entries(key, w):
    """``w`` with its entries moved by a keyed pseudo-random permutation of the positions ``(i, j) ∈ Z_N × Z_M``.

    A modular Feistel network of 12 half-rounds, alternately ``i ← i + F_r(j) mod N`` and ``j ← j + G_r(i) mod M``
    with ``F_r, G_r`` hashes of the coordinate and a round key from ``key``: every half-round is a bijection, so the
    whole map is one, on exactly the N·M positions (no cycle walking). It costs O(NM) elementwise integer work and a
    gather — measured 15-50× less on a CPU than the sort behind ``jax.random.permutation`` — and its shuffles mix
    positions and spectra as uniform permutations do, within sampling noise (tests/bridges/test_spectra.py).
    Jits and vmaps.
    """
    w = jnp.asarray(w)
    n, m = w.shape
    round_keys = jax.random.bits(key, (_FEISTEL_ROUNDS,), jnp.uint32)
    i = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None], (n, m))
    j = jnp.broadcast_to(jnp.arange(m, dtype=jnp.int32)[None, :], (n, m))
    # A gather needs the inverse map (target -> source): undo the half-rounds in reverse order, the forward map
    # being i += F_r(j) for even r, j += G_r(i) for odd r. A loop, not unrolled: XLA:CPU would fuse the unrolled
    # rounds into the gather and recompute shared hashes (measured 3-7x slower).
    def undo_pair(t, ij):
        i, j = ij
        r = _FEISTEL_ROUNDS - 1 - 2 * t
        j = j - _round_offset(i, round_keys[r], m)
        j = jnp.where(j < 0, j + m, j)
        i = i - _round_offset(j, round_keys[r - 1], n)
        return jnp.where(i < 0, i + n, i), j

    i, j = jax.lax.fori_loop(0, _FEISTEL_ROUNDS // 2, undo_pair, (i, j))
    return w[i, j]


# --- one layer, batched ---------------------------------------------------------------------------------------


def _metrics(w, key, max_alpha, normalize, with_rand):
    a, b = w.shape
    n, m = max(a, b), min(a, b)
    finite = jnp.all(jnp.isfinite(w))
    w = jnp.where(finite, w, 0.0)  # a diverged network gets NaN records, not a LAPACK failure
    ev = _esd(w, normalize)
    fit = _fit_power_law(ev, max_alpha)
    mp = _fit_mp(ev, n, m)
    lam_max, total = ev[-1], jnp.sum(ev)
    log_lmax = jnp.log10(lam_max)
    rank = jnp.sum(ev > _zero_level(lam_max, m, ev.dtype))
    p = ev / total
    shannon = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    entropy = jnp.where(rank > 1, shannon / jnp.log(jnp.maximum(rank, 2).astype(ev.dtype)), 0.0)
    if with_rand:
        rand = _js_distance(ev, _esd(shuffle_entries(key, w), normalize), _default_bins(m))
    else:
        rand = jnp.asarray(jnp.nan, ev.dtype)
    floats = {
        "alpha": fit.alpha, "alpha_weighted": fit.alpha * log_lmax, "lambda_max": lam_max,
        "log_spectral_norm": log_lmax, "log_frobenius_norm": jnp.log10(total),
        # log10 Σ λ^α without overflow: α log10 λ_max + log10 Σ (λ/λ_max)^α
        "log_alpha_norm": fit.alpha * log_lmax + jnp.log10(jnp.sum((ev / lam_max) ** fit.alpha)),
        "stable_rank": total / lam_max, "entropy": entropy, "mp_sigma2": mp.sigma2,
        "lambda_minus": mp.lambda_minus, "lambda_plus": mp.lambda_plus, "mp_softrank": mp.lambda_plus / lam_max,
        "rand_distance": rand, "ks_distance": fit.ks_distance, "xmin": fit.xmin, "alpha_stderr": fit.alpha_stderr,
    }
    out = {k: jnp.where(finite, v, jnp.nan) for k, v in floats.items()}
    ints = {"num_tail": fit.num_tail, "num_spikes": mp.num_spikes, "rank_loss": m - rank}
    out.update({k: jnp.where(finite, v, -1).astype(jnp.int32) for k, v in ints.items()})
    out["eigenvalues"] = jnp.where(finite, ev, jnp.nan)
    return out


@partial(jax.jit, static_argnames=("normalize", "with_rand"))
def _metrics_batch(ws, keys, max_alpha, *, normalize, with_rand):
    return jax.vmap(lambda w, k: _metrics(w, k, max_alpha, normalize, with_rand))(ws, keys)


def classify_phase(*, num_spikes, m, lambda_max, lambda_plus, alpha, rank_loss) -> str:
    """The phase label of one layer by the rules of the module docstring (Martin & Mahoney 2021, Table 1)."""
    if not (np.isfinite(lambda_max) and num_spikes >= 0):
        return "non-finite"
    if rank_loss > RANK_COLLAPSE_FRACTION * m:
        return "rank-collapse"
    if num_spikes == 0:
        return "random-like"
    if num_spikes <= max(1.0, FEW_SPIKES_FRACTION * m):
        return "bulk+spikes" if lambda_max >= SPIKE_SEPARATION * lambda_plus else "bleeding-out"
    if not np.isfinite(alpha):
        return "undetermined"
    return "heavy-tailed" if alpha <= HEAVY_TAIL_ALPHA else "bulk-decay"


def training_warning(alpha) -> str:
    """``"under-trained"`` if α > 6, ``"over-trained"`` if α < 2, else ``""`` (also for NaN)."""
    if alpha > UNDER_TRAINED_ALPHA:
        return "under-trained"
    if alpha < OVER_TRAINED_ALPHA:
        return "over-trained"
    return ""


# --- the table ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SpectraTable:
    """One record per layer (per network): ``columns[name]`` is an array over records (``shape`` is ``(R, 2)``);
    ``eigenvalues[i]`` is record i's ESD (ascending)."""

    columns: dict
    eigenvalues: tuple

    def __len__(self) -> int:
        return len(self.columns["layer"])

    def __getitem__(self, item):
        if isinstance(item, str):
            return self.columns[item]
        return self.record(item)

    def __iter__(self):
        return (self.record(i) for i in range(len(self)))

    def record(self, i: int) -> dict:
        out = {}
        for name in COLUMNS:
            v = self.columns[name][i]
            out[name] = (tuple(int(s) for s in v) if name == "shape" else int(v) if name in _INT_COLUMNS
                         else str(v) if name in _STR_COLUMNS else float(v))
        return out

    def records(self) -> list[dict]:
        return list(self)

    def to_dict(self) -> dict[str, list]:
        """``{column: list of values}`` (``shape`` as tuples)."""
        recs = self.records()
        return {name: [r[name] for r in recs] for name in COLUMNS}

    @staticmethod
    def concat(tables) -> SpectraTable:
        tables = list(tables)
        if not tables:
            return _empty_table()
        cols = {name: np.concatenate([t.columns[name] for t in tables]) for name in COLUMNS}
        return SpectraTable(columns=cols, eigenvalues=tuple(e for t in tables for e in t.eigenvalues))

    def with_layer_prefix(self, prefix: str) -> SpectraTable:
        cols = dict(self.columns)
        cols["layer"] = np.array([prefix + s for s in cols["layer"]], dtype=object)
        return SpectraTable(columns=cols, eigenvalues=self.eigenvalues)


def _empty_table():
    cols = {name: np.zeros((0, 2) if name == "shape" else 0, np.int64 if name in _INT_COLUMNS + ("shape",)
                           else object if name in _STR_COLUMNS else np.float64) for name in COLUMNS}
    return SpectraTable(columns=cols, eigenvalues=())


def _analyze_layers(names, arrays, num_networks, *, normalize, key, max_alpha):
    """``arrays[i]``: layer ``names[i]`` of every network, shape ``(num_networks, a, b)``."""
    results = [None] * len(names)
    by_shape: dict[tuple, list[int]] = {}
    for i, arr in enumerate(arrays):
        by_shape.setdefault(tuple(arr.shape[1:]), []).append(i)
    base = jax.random.key(0) if key is None else key
    max_alpha = jnp.asarray(jnp.inf if max_alpha is None else float(max_alpha), jnp.float32)
    for members in by_shape.values():
        ws = jnp.concatenate([jnp.asarray(arrays[i], jnp.float32) for i in members])
        keys = jnp.concatenate([jax.random.split(jax.random.fold_in(base, i), num_networks) for i in members])
        out = jax.device_get(_metrics_batch(ws, keys, max_alpha, normalize=bool(normalize),
                                            with_rand=key is not None))
        for j, i in enumerate(members):
            results[i] = {k: v[j * num_networks:(j + 1) * num_networks] for k, v in out.items()}
    rows, eigs = [], []
    for net in range(num_networks):
        for i, name in enumerate(names):
            a, b = arrays[i].shape[1:]
            r = {k: v[net] for k, v in results[i].items()}
            eigs.append(np.asarray(r.pop("eigenvalues")))
            r.update(network=net, layer=name, shape=(a, b), N=max(a, b), M=min(a, b), Q=max(a, b) / min(a, b))
            r["phase"] = classify_phase(num_spikes=int(r["num_spikes"]), m=min(a, b), alpha=float(r["alpha"]),
                                        lambda_max=float(r["lambda_max"]), lambda_plus=float(r["lambda_plus"]),
                                        rank_loss=int(r["rank_loss"]))
            r["warning"] = "diverged" if r["phase"] == "non-finite" else training_warning(float(r["alpha"]))
            rows.append(r)
    if not rows:
        return _empty_table()
    cols = {}
    for name in COLUMNS:
        values = [r[name] for r in rows]
        cols[name] = (np.array(values, np.int64) if name in _INT_COLUMNS + ("shape",)
                      else np.array(values, dtype=object) if name in _STR_COLUMNS else np.array(values, np.float64))
    return SpectraTable(columns=cols, eigenvalues=tuple(eigs))


def _mlp_layers(net):
    flat = [(leaf_name(path), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(net)[0]]
    dense = [(name, leaf) for name, leaf in flat if name.rsplit("/", 1)[-1] == "w"]
    leads = {tuple(leaf.shape[:-2]) for _, leaf in dense}
    if len(leads) != 1:
        raise ValueError(f"weights: the weight matrices have different leading (stack) axes {sorted(leads)}")
    lead = leads.pop()
    count = int(np.prod(lead, dtype=np.int64))
    return [n for n, _ in dense], [jnp.reshape(w, (count, *w.shape[-2:])) for _, w in dense], count


def analyze(weights, *, normalize: bool = False, key: jax.Array | None = None,
            max_alpha: float | None = None) -> SpectraTable:
    """Every metric of the module docstring for every weight matrix: one record per layer (per network).

    Args:
      weights: a mapping ``name -> 2-D array`` (0-D/1-D entries skipped; others raise :class:`WeightsError`), or a
        ``nets.mlp.MLP`` — single, or a stack with leading axes (records numbered by ``network``, the leading axes
        flattened in C order) analysed in one jitted, vmapped call per layer shape. Layers are named by their pytree
        path (``layers/0/w``; FractalNet sub-layers ``layers/1/first/second/w``). Networks with NaN/Inf weights
        get NaN metrics, phase ``non-finite`` and warning ``diverged``; a mapping with NaN/Inf is an error.
      normalize: eigenvalues of ``WᵀW/N`` instead of ``WᵀW``.
      key: PRNG key for ``rand_distance`` (NaN without one; saves an eigendecomposition per layer).
      max_alpha: see :func:`fit_power_law`.

    Example:
      >>> nets = jax.vmap(lambda k: mlp.init(k, (64, 128, 10)))(jax.random.split(jax.random.key(0), 8))
      >>> table = analyze(nets, key=jax.random.key(1))
      >>> table["alpha"].shape                 # (16,): 8 networks × 2 layers
    """
    if max_alpha is not None and not float(max_alpha) > 1.0:
        raise ValueError(f"max_alpha={max_alpha!r}: must be None or a number > 1")
    if isinstance(weights, mlp.MLP):
        names, arrays, count = _mlp_layers(weights)
    elif isinstance(weights, Mapping):
        names, arrays, count = [], [], 1
        for name, value in weights.items():
            matrix = _matrix("weights mapping", str(name), np.asarray(value))
            if matrix is not None:
                names.append(str(name))
                arrays.append(matrix[None])
    else:
        raise ValueError(f"weights={type(weights).__name__}: must be a mapping name -> 2-D array or a nets.mlp.MLP")
    return _analyze_layers(names, arrays, count, normalize=normalize, key=key, max_alpha=max_alpha)


def analyze_path(path, *, normalize: bool = False, key: jax.Array | None = None, max_alpha: float | None = None,
                 step: int | None = None, progress: bool = True) -> SpectraTable:
    """:func:`analyze` of a weights file, a sharded checkpoint or a run directory (see ``bridges.weights_io``).

    Files are read one tensor at a time, each analysed and released (a tqdm bar on stderr unless
    ``progress=False``); a run directory's snapshot (the last written, or ``step``) is analysed as stacked
    networks, layer names prefixed by ``width_<w>/``. Raises :class:`WeightsError` for an unreadable input or one
    without any 2-D weight matrix.
    """
    from tqdm import tqdm

    kind = source_kind(path)
    tables = []
    if kind == "run":
        snap = load_run_snapshot(path, step=step)
        items = list(snap.networks.items())
        for i, (label, stack) in enumerate(tqdm(items, desc="networks", file=sys.stderr, disable=not progress)):
            k = None if key is None else jax.random.fold_in(key, i)
            tables.append(analyze(stack, normalize=normalize, key=k, max_alpha=max_alpha)
                          .with_layer_prefix(f"{label}/"))
    else:
        total = sum(len(s) >= 2 for s in tensor_shapes(path).values())
        with tqdm(total=total, desc="tensors", unit="tensor", file=sys.stderr, disable=not progress) as bar:
            for i, (name, w) in enumerate(load_weights(path)):
                k = None if key is None else jax.random.fold_in(key, i)
                tables.append(_analyze_layers([name], [w[None]], 1, normalize=normalize, key=k, max_alpha=max_alpha))
                del w  # release the tensor before reading the next
                bar.update()
    if not tables or sum(len(t) for t in tables) == 0:
        raise WeightsError(f"{path}: holds no 2-D weight matrix")
    return SpectraTable.concat(tables)
