"""Replica multi-spin coded Metropolis for the 2D Ising model (h = 0, uniform J): 32 replicas per uint32 word.

Layout. ``MultispinIsingState.black``/``.white`` are the two checkerboard sublattices of
:func:`physics.kernels.lattice.pack_checkerboard`, each ``(L0, L1/2)`` uint32; bit ``k`` of a word is the spin of
replica ``k`` at that site (bit 1 means s = -1). The 32 replicas share the lattice, J and T; ``.x`` unpacks them
to ``(32, L0, L1)`` int8 and ``.energy`` is their ``(32,)`` exact energies, computed when read.

Update. For a site word ``s`` and its four neighbour words ``n_i`` (all on the other sublattice), the bits of
``a_i = s ^ n_i ^ m_J`` (``m_J`` all ones when J < 0) mark the unsatisfied bonds (antiparallel for J > 0), which
a flip of ``s`` satisfies; a bitwise adder gives per bit their count ``c``, and ``ΔE = 2|J|(4 - 2c)``: a flip is
accepted always for ``c ≥ 2``, with probability ``p₄ = e^{-4β|J|}`` for ``c = 1`` and ``p₈ = e^{-8β|J|}`` for
``c = 0``. Both sublattice half-sweeps keep the checkerboard order of the packed kernel.

Random numbers. Each site and sweep draws one two-round hash word ``w`` (``physics.hashing``, counter = site index
as in the packed kernel), and replica ``k`` compares ``u_k = top_bits(w) XOR c_k(row, col)`` with the threshold,
where bit b of ``c_k`` is bit k of ``R_b(row) ^ rotl(E(col), b)`` and the words ``R_b(row)``, ``E(col)`` are fresh
hashes per step and sublattice (``bits·L0 + L1/2`` extra words per half-sweep, negligible). The offsets do not depend
on ``w``, so for one replica the ``u_k`` of all sites are independent uniform ``bits``-bit integers: each replica's
chain is exact checkerboard Metropolis, probabilities rounded down to multiples of ``2^-bits`` (as in the packed
kernel at bits = 24). The 32 comparisons are bit-sliced over the word: the word whose bit k is ``¬(bit b of u_k)``
is ``¬R_b ^ rotl(E, b) ^ broadcast(bit b of w)``, and ``u < t`` for a constant t is, from the least significant bit
up, ``lt ← maj(¬u_b, t_b, lt)``: about 12 bitwise operations per bit for both thresholds, one hash per 32 updates.

Why not one shared ``u`` per site (``c_k = 0``): replicas fed identical random numbers in the same order are a
synchronous coupling and coalesce into copies of one chain (the negative control of the independence test).
Why not independent Bernoulli masks (``bits`` hash words per site for each threshold): 48 hash words per 32
replica-site updates cost more than the packed kernel's one per site. The price of sharing ``w``: replicas
``j, k`` see ``u_j ^ u_k = c_j ^ c_k``, uniform at each site (so each pair of replicas draws independent uniforms at
a site) but a fixed function of (row, col) within one half-sweep, so the replicas are pairwise independent site by
site, not proven jointly independent. ``tests/physics/test_multispin.py`` measures the inter-replica correlation
(none found at the 2·10⁻⁴ level) and uses one replica per independent chain wherever independence is assumed.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import hashing
from ..lattice import Ising
from .base import Kernel, check_temperature
from .lattice import LatticeInfo, _even_rows, _require_even, pack_checkerboard, unpack_checkerboard

__all__ = ["REPLICAS", "MultispinIsingState", "multispin_metropolis", "pack_replicas", "unpack_replicas"]

REPLICAS = 32
_BITS = np.arange(REPLICAS, dtype=np.uint32)  # NumPy: importing must not start a JAX backend (jax.distributed)


def pack_replicas(x: jax.Array) -> jax.Array:
    """``(32, ...)`` ±1 spins to ``(...)`` uint32 words, bit k = replica k, set where s = -1."""
    bits = (jnp.asarray(x) < 0).astype(jnp.uint32)
    return jnp.sum(bits << _BITS.reshape(-1, *([1] * (bits.ndim - 1))), axis=0, dtype=jnp.uint32)


def unpack_replicas(words: jax.Array) -> jax.Array:
    """Inverse of :func:`pack_replicas`: ``(...)`` uint32 to ``(32, ...)`` int8 ±1."""
    bits = (words[None] >> _BITS.reshape(-1, *([1] * words.ndim))) & jnp.uint32(1)
    return (1 - 2 * bits.astype(jnp.int8)).astype(jnp.int8)


def _neighbour_words(other: jax.Array, shift_even: int) -> tuple[jax.Array, ...]:
    """The four neighbour words of every site of one sublattice (same geometry as ``lattice._neighbour_sum``)."""
    even = _even_rows(other.shape[-2])
    horizontal = jnp.where(even, jnp.roll(other, shift_even, -1), jnp.roll(other, -shift_even, -1))
    return jnp.roll(other, 1, -2), jnp.roll(other, -1, -2), other, horizontal


def _popcount_per_replica(words: jax.Array) -> jax.Array:
    """``(32,)`` number of set bits at each bit position, summed over all words (int32)."""
    bits = (words[..., None] >> _BITS) & jnp.uint32(1)
    return jnp.sum(bits.astype(jnp.int32), axis=tuple(range(words.ndim)))


class MultispinIsingState(NamedTuple):
    """32 replicas of a 2D Ising lattice, as two ``(L0, L1/2)`` uint32 sublattices (bit k = replica k, 1 = down).

    ``.energy`` (``(32,)``, computed when read): every bond joins a black and a white site, so replica k has
    ``A_k`` = the count of bit k over ``black ^ n_i`` (its 4 neighbour words) antiparallel bonds out of 2N, and
    ``E_k = -J (2N - 2 A_k)``, an exact integer times J. One state per object (``jax.vmap`` over batches).
    """

    black: jax.Array
    white: jax.Array
    J: jax.Array

    @property
    def x(self) -> jax.Array:
        return unpack_checkerboard(unpack_replicas(self.black), unpack_replicas(self.white))

    @property
    def energy(self) -> jax.Array:
        anti = sum(_popcount_per_replica(self.black ^ n) for n in _neighbour_words(self.white, 1))
        bonds = 2 * self.black.size * 2 - 2 * anti  # 2N bonds (N = 2·black.size), each +1 or -1
        return -self.J * bonds.astype(jnp.float32)


def _threshold_masks(p: jax.Array, bits: int) -> tuple[jax.Array, jax.Array]:
    """``t = ⌊p 2^bits⌋`` as per-bit all-ones/all-zeros uint32 masks (LSB first), and a mask set when p = 1."""
    t = jnp.floor(p * 2.0**bits).astype(jnp.int32)
    full = t >= (1 << bits)
    t = jnp.minimum(t, (1 << bits) - 1).astype(jnp.uint32)
    masks = [jnp.uint32(0) - ((t >> jnp.uint32(b)) & jnp.uint32(1)) for b in range(bits)]
    return jnp.stack(masks), jnp.where(full, jnp.uint32(0xFFFFFFFF), jnp.uint32(0))


def _replica_offsets(key, sublattice: int, rows: int, width: int, bits: int, n: int):
    """The replica offsets of one half-sweep: ``¬R_b(row)`` ``(bits, rows, 1)`` and ``E(col)`` ``(1, width)``.

    Bit k of ``R_b(row) ^ rotl(E(col), b)`` is bit b of replica k's offset ``c_k(row, col)``. Counters
    ``n + (sublattice·rows + row)·bits + b`` and ``n + 2·rows·bits + sublattice·width + col``: above every site
    counter (< n) and distinct. ``R_b`` is returned complemented so that the update needs one XOR for ``¬x_b``.
    """
    row = jax.lax.broadcasted_iota(jnp.uint32, (1, rows, 1), 1)
    bit = jnp.arange(bits, dtype=jnp.uint32)[:, None, None]
    line = jnp.uint32(n) + (jnp.uint32(sublattice * rows) + row) * jnp.uint32(bits) + bit
    column = jnp.uint32(n + 2 * rows * bits + sublattice * width) + jax.lax.broadcasted_iota(jnp.uint32, (1, width), 1)
    return ~hashing.hash32(key, line), hashing.hash32(key, column)


def _maj(a, b, c):
    return (a & b) | (c & (a | b))


def multispin_metropolis(model: Ising, temperature, *, bits: int = 24) -> Kernel:
    """Checkerboard Metropolis on 32 replicas of a 2D Ising model (h = 0, uniform J) packed in uint32 words.

    ``init(key, x)`` takes ``(32, L0, L1)`` ±1 spins (or one ``(L0, L1)`` lattice, copied to every replica);
    one ``step`` is one sweep of every replica. ``bits`` (≤ 24) is the precision of the acceptance comparison:
    probabilities are rounded down to multiples of ``2^-bits``. See the module docstring for the random numbers.
    """
    if not isinstance(model, Ising) or len(model.shape) != 2:
        raise ValueError(f"model={model!r}: multispin_metropolis needs a 2D lattice.Ising")
    if not isinstance(model.h, jax.core.Tracer) and not np.all(np.asarray(model.h) == 0):
        raise ValueError(f"h={model.h!r}: multispin_metropolis needs h = 0 (use kernels.metropolis otherwise)")
    if not 1 <= int(bits) <= 24:
        raise ValueError(f"bits={bits!r}: must be an integer in 1..24")
    _require_even(model.shape, "multispin_metropolis")
    check_temperature(temperature)
    bits = int(bits)
    rows, cols = model.shape
    half = rows * cols // 2
    n = rows * cols
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)
    J = jnp.asarray(model.J, jnp.float32)

    def init(key, x):
        del key
        x = jnp.asarray(x).astype(jnp.int8)
        if x.ndim == 2:
            x = jnp.broadcast_to(x, (REPLICAS, rows, cols))
        black, white = pack_checkerboard(x)
        return MultispinIsingState(pack_replicas(black), pack_replicas(white), J)

    def half_sweep(key, spins, other, shift_even, sublattice, t4, t8, full4, full8, jmask):
        r, w = spins.shape
        row = jax.lax.broadcasted_iota(jnp.uint32, (r, 1), 0)
        counter = row * jnp.uint32(w) + jax.lax.broadcasted_iota(jnp.uint32, (r, w), 1) + jnp.uint32(
            sublattice * half)
        word = hashing.hash32(key, counter)
        not_rows, column = _replica_offsets(key, sublattice, r, w, bits, n)
        a1, a2, a3, a4 = (spins ^ nb ^ jmask for nb in _neighbour_words(other, shift_even))
        s1, k1, s2, k2 = a1 ^ a2, a1 & a2, a3 ^ a4, a3 & a4
        ge2 = k1 | k2 | (s1 & s2)
        eq1 = (s1 ^ s2) & ~(k1 | k2)
        eq0 = ~(s1 | s2 | k1 | k2)
        lt4 = jnp.zeros_like(spins)
        lt8 = jnp.zeros_like(spins)
        for b in range(bits):  # bit (32 - bits + b) of the hash word: its top `bits` bits, LSB first
            shift = jnp.uint32(32 - bits + b)
            rot = column if b == 0 else (column << jnp.uint32(b)) | (column >> jnp.uint32(32 - b))
            y = not_rows[b] ^ rot ^ (jnp.uint32(0) - ((word >> shift) & jnp.uint32(1)))
            lt4 = _maj(y, t4[b], lt4)
            lt8 = _maj(y, t8[b], lt8)
        flip = ge2 | (eq1 & (lt4 | full4)) | (eq0 & (lt8 | full8))
        return spins ^ flip, flip

    def step(key, state):
        absj = jnp.abs(state.J)
        t4, full4 = _threshold_masks(jnp.exp(-4.0 * beta * absj), bits)
        t8, full8 = _threshold_masks(jnp.exp(-8.0 * beta * absj), bits)
        jmask = jnp.where(state.J < 0, jnp.uint32(0xFFFFFFFF), jnp.uint32(0))
        black, fb = half_sweep(key, state.black, state.white, 1, 0, t4, t8, full4, full8, jmask)
        white, fw = half_sweep(key, state.white, black, -1, 1, t4, t8, full4, full8, jmask)
        # acceptance: a reduction, removed by XLA unless the caller keeps the info (it then recomputes the sweep)
        count = (jnp.sum(jax.lax.population_count(fb).astype(jnp.int32))
                 + jnp.sum(jax.lax.population_count(fw).astype(jnp.int32)))
        info = LatticeInfo(count.astype(jnp.float32) / (n * REPLICAS), jnp.isfinite(state.J))
        return MultispinIsingState(black, white, state.J), info

    return Kernel(init, step)
