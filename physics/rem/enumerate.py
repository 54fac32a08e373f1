"""Exact thermodynamics of one REM-family sample by streaming enumeration of all 2^n states (n ≤ 36).

Both paths stream over the states in chunks of 2^20 (index k ↔ σ_i = +1 where bit i of k is 1, as in
``physics.rem.models``); neither ever holds a 2^n table.

* Stream (``exact_thermodynamics(..., method="stream")``, the default for a model without a native state at up
  to 16 temperatures): ln Z, U, S and Y = Σp² at a fixed list of temperatures are log-sum-exp reductions, so each
  chunk gives, per temperature, the sums of w = e^{−β(E−m)}, (E−m)·w and w² over its states (m its minimum), and
  the host folds the chunks into float64 running sums, rescaled whenever the running minimum falls. No histogram,
  no scatter; the cost is one exponential per state and temperature (``_chunk_boltzmann``: error bound, ≈ 10^-7
  relative in practice).
* Histogram (``density_of_states``, ``method="histogram"``): 3 local moments of the energies on a grid of width
  2^-11, optionally resolved by the overlap with a native state; from it ln Z, U, S, Y and F(Q) at any temperature
  ≥ 0.05 with relative error < 2·10^-8 from truncating the moment series (see ``DensityOfStates``). Energies on the
  integer lattice (e.g. the perceptron's error counts) sit exactly at a fixed offset −h/2 from their bin centre, so
  their moments are exact. F(Q) (``log_z_agree``, the funnel) and any later temperatures need this path.

``energy_chunks`` hands the same stream of energies (and overlaps) to other exact reductions. ``deepglass bench
rem`` times both at n = 26 against NumPy and the whole enumeration at n = 30.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..driver import jit
from .models import Funnel, _check_n, _popcount, _tree, index_words

__all__ = [
    "DensityOfStates",
    "Exact",
    "density_of_states",
    "energy_chunks",
    "exact_thermodynamics",
    "free_energy_profile",
]

_MAX_ENUM_N = 36


class DensityOfStates(NamedTuple):
    """Exact density of states of one sample, as local moments on a fine energy grid.

    The energy axis is cut into bins of width ``h = 2^-11`` (a power of 2, so the offsets below are exact float32
    numbers for |E| < 64); bin b holds ``moments[..., b, k] = Σ_{E in bin} (E − c_b)^k`` for k = 0, 1, 2, ``c_b``
    its centre. Then ``Σ_{E in bin} e^{−βE} = e^{−βc_b} Σ_k (−β)^k moments_k / k!``; truncating after k = 2
    leaves a relative error below ``(βh/2)^3/3! ≈ 2·10^-8`` for β ≤ 20 (T ≥ 0.05) — below the float32 rounding of
    the energies themselves. Three moments on a fine grid rather than seven on a coarse one: the scatter into the
    histogram costs per moment, and it is the enumeration's bottleneck. Leading axis (optional): the number m of
    spins agreeing with a native state.
    """

    centers: np.ndarray
    moments: np.ndarray
    ground_energy: float
    n: int


class Exact(NamedTuple):
    """Exact thermodynamics of one sample, per temperature (all extensive; divide by n for per-spin values).

    ``log_z``: ln Z; ``energy``: U = ⟨H⟩; ``entropy``: S = ln Z + βU; ``participation``: Y = Σ p_σ² =
    Z(2β)/Z(β)² (the probability that two replicas sit in the same state: E Y = 1 − T/T_c below T_c in the REM,
    0 above as n → ∞ — Derrida & Toulouse 1985, J. Phys. Lett. 46:L223); ``ground_energy``: min H;
    ``log_z_agree[t, m]``: ln of the partition function restricted to states with m spins equal to the native
    state (only when the enumeration was resolved by a native state).
    """

    temperature: np.ndarray
    log_z: np.ndarray
    energy: np.ndarray
    entropy: np.ndarray
    participation: np.ndarray
    ground_energy: float
    log_z_agree: np.ndarray | None


_H = 2.0**-11
_K = 3
_METHODS = ("auto", "stream", "histogram")
_BLOCK = 2**13  # states per block of the Boltzmann sums (T × block float32 weights, made once, reduced 3 ways)
_BLOCK_WEIGHTS = 2**20  # at most this many weights per block (many temperatures: smaller blocks)
_STREAM_MAX_T = 16  # "auto" streams up to this many temperatures (one exponential per state and temperature)
_FOLD = 32  # chunk results fetched and folded into the float64 running sums at a time
# 2^f on [−½, ½]: least-squares fit of the relative error, degree 6; with float32 Horner rounding ≤ 1.0·10^-7
_EXP2 = (1.0, 0.6931471824645996, 0.24022646248340607, 0.05550329014658928, 0.009618519805371761,
         0.001339986571110785, 0.00015337580407503992)
_FAR = 2.0**100  # stands in for E − m of the states at the chunk minimum: its weight is exactly 0


@jit(static_argnames=("size", "with_agree"))  # 512-bit vectors on CPU: energies 1.6 ms, not 2.9
def _chunk_energies(model, lo0, hi, size, with_agree):
    e = model.chunk_energies(lo0, hi, size)
    if with_agree:
        lo = lo0 + jnp.arange(size, dtype=jnp.uint32)
        m = model.agreement_from_index(lo, hi)
    else:
        m = jnp.zeros((), jnp.int32)
    return e, m


@partial(jax.jit, static_argnames=("num_bins", "num_agree"))
def _chunk_histogram(e, m, num_bins, num_agree):
    # A separate program from the energies: fused together, XLA recomputes the hash inside every consumer.
    b = jnp.floor(e * jnp.float32(1.0 / _H)).astype(jnp.int32)
    d = e - (b.astype(jnp.float32) + jnp.float32(0.5)) * jnp.float32(_H)  # exact: h is a power of 2
    b0 = jnp.min(b)
    local = b - b0
    powers = jnp.stack([jnp.ones_like(d), d, d * d], axis=-1)
    if num_agree:
        target = jnp.zeros((num_agree, num_bins, _K), jnp.float32).at[m, local].add(powers, mode="drop")
    else:
        target = jnp.zeros((num_bins, _K), jnp.float32).at[local].add(powers, mode="drop")
    return b0, jnp.max(local), jnp.min(e), target


def _stream_target(model, native, chunk_bits):
    """Checked ``(n, target, with_agree)``: the model, or a view of it that also counts agreement with ``native``."""
    n = _check_n(model.n, _MAX_ENUM_N)
    if not 4 <= chunk_bits <= 24:
        raise ValueError(f"chunk_bits={chunk_bits!r}: must be in [4, 24]")
    if native is not None:
        nat = np.asarray(native)
        if nat.shape != (n,) or not np.all(np.abs(nat) == 1):
            raise ValueError(f"native: must be a ±1 array of shape ({n},), got shape {nat.shape}")
        target = _AgreeView(model, jnp.asarray(nat, jnp.int8))
    elif isinstance(model, Funnel):
        target = model
    else:
        target = None
    with_agree = target is not None
    return n, (model if target is None else target), with_agree


def density_of_states(model, *, native=None, chunk_bits: int = 20) -> DensityOfStates:
    """Enumerate all 2^n states of ``model`` (n ≤ 36), streamed in chunks of 2^chunk_bits: never a 2^n table.

    ``native`` (a ±1 configuration; a Funnel's own by default) resolves the density by agreement with it, from
    which :func:`free_energy_profile` gives F(Q). Chunk histograms are float32 (a bin of width 2^-11 receives at
    most a few hundred of a chunk's 2^20 states: relative rounding ~1e-6 of its own, tiny, moments), combined in
    float64. Integer energies (error counts) put a whole level into one bin, at offset −h/2 from its centre: counts
    and sums of the equal offsets stay exact in float32 up to 2^24 states per chunk.
    """
    n, target, with_agree = _stream_target(model, native, chunk_bits)
    size = 2 ** min(n, chunk_bits)
    num_bins = 2**14
    acc = None  # float64 moments over absolute bins [offset, offset + len)
    offset = 0
    ground = np.inf
    for start in range(0, 2**n, size):
        lo0 = jnp.uint32(start & 0xFFFFFFFF)
        hi = jnp.uint32(start >> 32)
        e, m = _chunk_energies(target, lo0, hi, size, with_agree)
        while True:
            b0, top, emin, hist = _chunk_histogram(e, m, num_bins, n + 1 if with_agree else 0)
            if int(top) < num_bins:
                break
            num_bins = 2 ** int(np.ceil(np.log2(int(top) + 1)))  # wider energy range: recompile once, redo
        b0 = int(b0)
        ground = min(ground, float(emin))
        hist = np.asarray(hist, np.float64)[..., : int(top) + 1, :]
        if acc is None:
            acc, offset = hist, b0
            continue
        lo_new, hi_new = min(offset, b0), max(offset + acc.shape[-2], b0 + hist.shape[-2])
        if lo_new < offset or hi_new > offset + acc.shape[-2]:
            pad = [(0, 0)] * acc.ndim
            pad[-2] = (offset - lo_new, hi_new - offset - acc.shape[-2])
            acc, offset = np.pad(acc, pad), lo_new
        acc[..., b0 - offset : b0 - offset + hist.shape[-2], :] += hist
    centers = (np.arange(acc.shape[-2]) + offset + 0.5) * _H
    return DensityOfStates(centers, acc, ground, n)


def energy_chunks(model, *, native=None, chunk_bits: int = 20) -> Iterator[tuple[int, jax.Array, jax.Array | None]]:
    """Stream the energies of all 2^n states of ``model`` (n ≤ 36): ``(start, energies, agreement)`` per chunk.

    ``energies[j]`` is the energy of state index ``start + j`` (j < 2^min(n, chunk_bits)), computed by the same
    compiled program as :func:`density_of_states`; ``agreement[j]`` counts the spins of that state equal to
    ``native`` (or a Funnel's own native state), ``None`` without one. Device arrays: reduce them on the device or
    copy them out, one chunk at a time, to keep any exact statistic of the landscape in O(2^chunk_bits) memory.
    """
    n, target, with_agree = _stream_target(model, native, chunk_bits)
    size = 2 ** min(n, chunk_bits)
    for start in range(0, 2**n, size):
        e, m = _chunk_energies(target, jnp.uint32(start & 0xFFFFFFFF), jnp.uint32(start >> 32), size, with_agree)
        yield start, e, (m if with_agree else None)


def _log_sums(dos: DensityOfStates, betas):
    """ln Σ e^{−βE} and Σ E e^{−βE} / Σ e^{−βE} for each β of ``betas``: arrays of shape (β, *leading axes).

    Only occupied bins are summed, in blocks of 64 temperatures (bins × block float64 temporaries).
    """
    betas = np.atleast_1d(np.asarray(betas, np.float64))
    occupied = np.any(dos.moments[..., 0] > 0, axis=tuple(range(dos.moments.ndim - 2)))
    m = dos.moments[..., occupied, :]  # (..., bins, K)
    c = dos.centers[occupied]
    fact = np.array([math.factorial(i) for i in range(_K)], np.float64)
    log_z, energy = [], []
    for i in range(0, betas.size, 64):
        beta = betas[i : i + 64]  # (B,)
        coef = (-beta[:, None]) ** np.arange(_K) / fact  # (B, K)
        s = np.einsum("...bk,tk->t...b", m, coef)  # Σ_bin e^{−β(E−c)}, truncated after (βh/2)^2
        t = np.einsum("...bk,tk->t...b", m[..., 1:], coef[:, :-1])  # Σ_bin (E−c) e^{−β(E−c)} (≤ 3e-9 in U)
        bc = (-beta[:, None] * c).reshape((beta.size,) + (1,) * (m.ndim - 2) + (c.size,))
        with np.errstate(divide="ignore", invalid="ignore"):
            logw = np.where(s > 0, bc + np.log(np.where(s > 0, s, 1.0)), -np.inf)
            top = np.max(logw, axis=-1, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)
            z = np.sum(np.exp(logw - top), axis=-1)
            log_z.append(top[..., 0] + np.log(z))
            energy.append(np.sum(np.exp(bc - top) * (c * s + t), axis=-1) / z)
    return np.concatenate(log_z), np.concatenate(energy)


def exact_thermodynamics(model, temperatures, *, native=None, chunk_bits: int = 20, method: str = "auto") -> Exact:
    """ln Z, U, S and the participation ratio of one sample by exact enumeration of its 2^n states.

    ``method``: ``"stream"`` — float64 running log-sum-exp sums at these temperatures, no histogram (≈ 10^-7
    relative, see ``_chunk_boltzmann``); ``"histogram"`` — through :func:`density_of_states` (needed for
    ``log_z_agree``/F(Q)); ``"auto"`` (default) — the histogram when ``model`` is a :class:`DensityOfStates` (then
    any temperatures cost nothing), a :class:`~physics.rem.models.Funnel`, when ``native`` is given or for more
    than 16 temperatures (the stream costs one exponential per state and temperature, the histogram a fixed
    scatter: on a 2-core CPU they break even near 20 temperatures), else the stream.

    Example:
      >>> ex = exact_thermodynamics(REM.random(jax.random.key(0), 20), [0.5, 1.0, 2.0])
      >>> ex.log_z / 20, ex.participation
    """
    temps = np.atleast_1d(np.asarray(temperatures, np.float64))
    if temps.ndim != 1 or np.any(~(temps >= 0.05)):
        raise ValueError(f"temperatures={temperatures!r}: must be a list of numbers ≥ 0.05")
    if method not in _METHODS:
        raise ValueError(f"method={method!r}: must be one of {_METHODS}")
    if method == "stream" and (isinstance(model, DensityOfStates) or native is not None):
        raise ValueError("method='stream' sums over the states at the given temperatures only: it takes a model, "
                         "not a DensityOfStates, and no native= (F(Q) needs method='histogram')")
    histogram = isinstance(model, (DensityOfStates, Funnel)) or native is not None or temps.size > _STREAM_MAX_T
    if method == "stream" or (method == "auto" and not histogram):
        return _stream_thermodynamics(model, temps, chunk_bits)
    dos = model if isinstance(model, DensityOfStates) else density_of_states(model, native=native,
                                                                           chunk_bits=chunk_bits)
    resolved = dos.moments.ndim == 3
    total = DensityOfStates(dos.centers, dos.moments.sum(axis=0), dos.ground_energy, dos.n) if resolved else dos
    log_z, u = _log_sums(total, 1.0 / temps)
    log_z2, _ = _log_sums(total, 2.0 / temps)
    return Exact(
        temperature=temps,
        log_z=log_z,
        energy=u,
        entropy=log_z + u / temps,
        participation=np.exp(log_z2 - 2.0 * log_z),
        ground_energy=dos.ground_energy,
        log_z_agree=_log_sums(dos, 1.0 / temps)[0] if resolved else None,
    )


def _exp2_neg(y):
    """``2^y`` for ``y ≤ 0`` (float32), exactly 0 below 2^-126: ``2^k · p(y − k)``, k = round(y).

    ``y − k`` is exact, so the only errors are the polynomial's (≤ 1.0·10^-7 relative, Horner rounding included).
    Written out rather than ``jnp.exp``: XLA rewrites ``exp(x)·exp(x)`` into ``exp(2x)`` (a second exponential per
    state and temperature for Σw²), and the clamp makes the states at the minimum (``y`` ≈ −10^31) weigh 0.
    """
    f = jnp.float32
    k = jnp.round(y)
    r = y - k
    p = f(_EXP2[-1])
    for c in _EXP2[-2::-1]:
        p = p * r + f(c)
    scale = jax.lax.bitcast_convert_type((jnp.maximum(k, f(-126)).astype(jnp.int32) + 127) << 23, f)
    return jnp.where(y >= f(-126), p * scale, f(0))


@jit(static_argnames=("block",))  # 512-bit vectors on CPU: sums 2.5 ms, not 3.4
def _chunk_boltzmann(e, log2_weight, block):
    """One chunk's Boltzmann sums: ``(m, count, parts)`` with m = min E, count = #{E = m} and
    ``parts[b] = (Σ w, Σ (E−m) w, Σ w²)`` (shape (blocks, 3, T)) over the block b's states with E > m, where
    ``w = e^{−β(E−m)} = 2^{y}``, ``y = log2_weight · (E − m)``, ``log2_weight = −β log2 e`` (float32, shape (T,)).

    A separate program from the energies (fused, XLA would recompute the hash for every temperature). The chunk
    is cut into blocks of ``block`` states and each block's weights (T × block) are made once and reduced three
    ways (two sums and a dot): XLA:CPU neither fuses sibling reductions nor keeps ``exp(x)·exp(x)`` (it makes a
    second exponential), and whole-chunk weights (T × 2^20) are a temporary too large to be cheap.

    Error bound, relative to exact arithmetic on the float32 energies E (u = 2^-24, d = E − m): d, ``−β log2 e``
    and y are each rounded once, so ``|δy| ≤ 3|y| u`` and a weight is off by at most ``(3βd + 2) u`` relative (the
    2 u bounds the polynomial), ``d·w`` by ``(3βd + 4) u``. A sum of positive terms is off by at most the
    weighted mean of its terms' errors: ln Z by ``(3β(U − E_0) + 2) u`` (≈ 1.4·10^-6 for the REM at n = 26,
    T = 2), Σ(E − E_0)w relatively by ``(3β⟨(E − E_0)²⟩/(U − E_0) + 4) u`` and U − E_0 by the sum of the two,
    plus the float32 block sums: (block − 1) u in the worst case for positive terms in any order, measured
    ≤ 1·10^-7 (sums) and ≤ 7·10^-7 (the dot) over 8192 terms; everything after is float64. The states at the
    minimum are counted exactly (``count``) rather than summed, so that ln Z near 0 (a few degenerate ground
    states, integer energies) keeps its relative precision. Weights below 2^-126 of the chunk's largest are
    dropped (< 2^-106 of Z per chunk).
    """
    m = jnp.min(e)
    d = e - m
    count = jnp.sum(d == 0, dtype=jnp.int32)
    d = jnp.where(d > 0, d, jnp.float32(_FAR)).reshape(-1, block)

    def body(carry, db):
        w = _exp2_neg(log2_weight[:, None] * db)
        dw = jnp.dot(w, db, precision=jax.lax.Precision.HIGHEST)
        return carry, jnp.stack([jnp.sum(w, axis=1), dw, jnp.sum(w * w, axis=1)])

    return m, count, jax.lax.scan(body, None, d)[1]


class _Running(NamedTuple):
    """Float64 running sums of the streaming path, relative to the lowest energy M seen so far (per temperature):
    ``count`` = #{E = M} (exact), ``z`` = Σ_{E>M} e^{−β(E−M)}, ``n`` = Σ (E−M) e^{−β(E−M)},
    ``q`` = Σ_{E>M} e^{−2β(E−M)}."""

    m: float
    count: int
    z: np.ndarray
    n: np.ndarray
    q: np.ndarray


def _shift(acc: _Running, m: float, betas) -> _Running:
    """The same sums relative to a lower reference ``m ≤ acc.m`` (the states at acc.m leave the exact count)."""
    if m == acc.m:
        return acc
    gap = acc.m - m  # exact in float64: both are float32 energies
    a = np.exp(-betas * gap)
    z = acc.count + acc.z
    return _Running(m, 0, a * z, a * (acc.n + gap * z), a * a * (acc.count + acc.q))


def _fold(acc: _Running | None, m, count, sums, betas) -> _Running:
    """Fold chunk results (``m``, ``count`` of shape (C,); ``sums`` (C, 3, T) float64) into the running sums."""
    lowest = float(np.min(m)) if acc is None else min(acc.m, float(np.min(m)))
    acc = _Running(lowest, 0, 0.0, 0.0, 0.0) if acc is None else _shift(acc, lowest, betas)
    gap = (np.asarray(m, np.float64) - lowest)[:, None]
    a = np.exp(-betas[None, :] * gap)  # (C, T): 1 for the chunks at the minimum, rescaled otherwise
    at_min = gap[:, 0] == 0
    rest = np.where(at_min, 0, count)[:, None]  # states at another chunk's (higher) minimum join the sums
    z = sums[:, 0] + rest
    return _Running(
        lowest,
        acc.count + int(np.sum(np.where(at_min, count, 0))),
        acc.z + np.sum(a * z, axis=0),
        acc.n + np.sum(a * (sums[:, 1] + gap * z), axis=0),
        acc.q + np.sum(a * a * (sums[:, 2] + rest), axis=0),
    )


def _stream_thermodynamics(model, temps, chunk_bits) -> Exact:
    n = _check_n(model.n, _MAX_ENUM_N)
    if not 4 <= chunk_bits <= 24:
        raise ValueError(f"chunk_bits={chunk_bits!r}: must be in [4, 24]")
    size = 2 ** min(n, chunk_bits)
    betas = 1.0 / temps
    log2_weight = jnp.asarray(-betas / np.log(2.0), jnp.float32)
    block = min(size, _BLOCK, 2 ** max(6, int(np.log2(_BLOCK_WEIGHTS // temps.size))))
    acc, pending = None, []

    def fold(acc, pending):
        got = jax.device_get(pending)
        m = np.array([g[0] for g in got], np.float64)
        count = np.array([g[1] for g in got], np.int64)
        sums = np.stack([np.asarray(g[2], np.float64).sum(axis=0) for g in got])
        return _fold(acc, m, count, sums, betas)

    for start in range(0, 2**n, size):
        e, _ = _chunk_energies(model, jnp.uint32(start & 0xFFFFFFFF), jnp.uint32(start >> 32), size, False)
        pending.append(_chunk_boltzmann(e, log2_weight, block))
        if len(pending) == _FOLD:
            acc, pending = fold(acc, pending), []
    if pending:
        acc = fold(acc, pending)
    z = acc.count + acc.z
    log_rel = np.log(acc.count) + np.log1p(acc.z / acc.count)  # ln Σ e^{−β(E−M)}; count ≥ 1
    mean_gap = acc.n / z  # U − M ≥ 0
    return Exact(
        temperature=temps,
        log_z=log_rel - betas * acc.m,
        energy=acc.m + mean_gap,
        entropy=log_rel + betas * mean_gap,  # ln Z + βU without the cancellation of −βM against βM
        participation=(acc.count + acc.q) / (z * z),
        ground_energy=acc.m,
        log_z_agree=None,
    )


@partial(_tree, data=["model", "native"], meta=[])
@dataclasses.dataclass(frozen=True)
class _AgreeView:
    """A model's energies plus the agreement count with a given native state (for F(Q) of any model)."""

    model: Any
    native: jax.Array

    @property
    def n(self):
        return self.model.n

    def energies_from_index(self, lo, hi):
        return self.model.energies_from_index(lo, hi)

    def chunk_energies(self, lo0, hi, size):
        return self.model.chunk_energies(lo0, hi, size)

    def agreement_from_index(self, lo, hi):
        nlo, nhi = index_words(self.native)
        return self.n - _popcount(jnp.asarray(lo, jnp.uint32) ^ nlo) - _popcount(jnp.asarray(hi, jnp.uint32) ^ nhi)


def free_energy_profile(exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    """Landau free energy ``F(Q) = −T ln Z(Q)`` (extensive) per temperature, from an enumeration with a native state.

    Returns ``(q, F)`` with ``q = 2m/n − 1`` for m = 0…n agreeing spins and ``F`` of shape (temperatures, n+1)
    (``+inf`` where no state has that overlap).
    """
    if exact.log_z_agree is None:
        raise ValueError("exact: was computed without a native state; pass native= to exact_thermodynamics")
    n = exact.log_z_agree.shape[1] - 1
    q = 2.0 * np.arange(n + 1) / n - 1.0
    return q, -exact.temperature[:, None] * exact.log_z_agree
