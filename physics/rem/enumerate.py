"""Exact thermodynamics of one REM-family sample by streaming enumeration of all 2^n states (n ≤ 36).

``density_of_states`` streams over the states in chunks of 2^20 (index k ↔ σ_i = +1 where bit i of k is 1, as in
``physics.rem.models``) and keeps only 3 local moments of the energies on a grid of width 2^-11 (optionally
resolved by the overlap with a native state); ``exact_thermodynamics`` then gives ln Z, U, S, Y = Σp² and F(Q) at
any temperature ≥ 0.05 with relative error < 2·10^-8 from truncating the moment series (see ``DensityOfStates``).
Energies on the integer lattice (e.g. the perceptron's error counts) sit exactly at a fixed offset −h/2 from their
bin centre, so their moments are exact. ``energy_chunks`` hands the same stream of energies (and overlaps) to
other exact reductions. ``deepglass bench rem`` times n = 30.
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


@partial(jax.jit, static_argnames=("size", "with_agree"))
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


def exact_thermodynamics(model, temperatures, *, native=None, chunk_bits: int = 20) -> Exact:
    """ln Z, U, S and the participation ratio of one sample by exact enumeration (see :func:`density_of_states`).

    ``model`` may be a model or an already computed :class:`DensityOfStates` (then any temperatures cost nothing).
    """
    temps = np.atleast_1d(np.asarray(temperatures, np.float64))
    if temps.ndim != 1 or np.any(~(temps >= 0.05)):
        raise ValueError(f"temperatures={temperatures!r}: must be a list of numbers ≥ 0.05")
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
