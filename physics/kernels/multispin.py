"""Multi-spin coded Metropolis and heat bath on 2D and 3D lattices (h = 0): 32 replicas or 32 ±J disorder samples
per uint32 word.

Four kernels share one sweep. :func:`multispin_metropolis` and :func:`multispin_heat_bath` run 32 replicas of one
``lattice.Ising`` model (uniform J); :func:`multispin_ea_metropolis` and :func:`multispin_ea_heat_bath` run 32
independent ±J Edwards–Anderson samples, sample k's spins and bonds in bit k of the words. The Ising kernels are the
special case in which every sample has the same bonds; the two rules differ only in the flip probability of each
count class (below).

Layout. A ``d``-dimensional lattice (d = 2, 3, every side even) is split into its checkerboard sublattices along the
last axis: with ``p(r)`` the parity of the sum of the first d - 1 coordinates r, ``black[r, k] = x[r, 2k + p(r)]``
and ``white[r, k] = x[r, 2k + 1 - p(r)]`` (in 2D exactly :func:`physics.kernels.lattice.pack_checkerboard`). Each
sublattice is a ``(L0, …, L_{d-1}/2)`` uint32 array whose bit k is the spin of replica / sample k (1 means s = -1).
Neighbours along the first d - 1 axes sit at the same packed column of the other sublattice one row over; along the
last axis one neighbour is at the same column and the other one column left or right, by the row's parity. Why
this packing in 3D: only the last axis is halved, so the two sublattices are exactly the even/odd sites of
``kernels.metropolis`` (the same checkerboard order, the same independent sets), and every neighbour is a roll of
the other sublattice and at most one select; the even-side requirement is that of every checkerboard on a torus.

Padded lines. In 3D a line of ``8 < W < 16`` words (``W = L2/2``; L2 = 18 … 30) is stored as ``Wp = 8⌈(W+2)/8⌉``
words (16, or 24 for W = 15): the W real words, then a copy of word 0, zero words, and a copy of word W - 1 last
(``MultispinState.black``/``white`` and the ±J bond words are ``(L0, L1, Wp)``; the state's type records W, and
``.x`` and ``.energy`` drop the padding). Why: XLA:CPU compiled the sweep's fusion without vectors for those inner
dimensions (3D ±J, same run: L = 20, 24, 28, 30 at 2.0–2.5 updates/ns against 8–12 at L = 16, 32, 36, 40, and 256-
and 512-bit programs equally fast). With the two copies the words wrapped at Wp are the neighbours wrapped at W, so
the sweep reads the other sublattice exactly as it does unpadded; every real site draws the hash words of the
unpadded layout (its natural index and column), so a trajectory is bitwise that of the unpadded state; the
padding words are swept too, their flips discarded and the copies rewritten after each half-sweep. Same run, 3D ±J,
padded against unpadded (updates/ns): L = 24 bare sweeps 8.0 vs 1.9 (4.2×), the energy read every sweep 3.9 vs 1.7
(2.3×), parallel tempering over 8 rungs 5.8 vs 2.2 (2.7×); L = 20 3.9×, 1.8×, 2.3×; L = 28 4.4×, 2.2×, 2.9×. Not
done where it did not pay: W = 18, 20 were faster unpadded (padded to 24: 0.70×, 0.74×), W = 22 the same (1.01×);
not for W ≤ 8 (the tests read those small states' words directly) nor in 2D.

Bonds. Sample k's bond between a site and its neighbour in direction ``(mu, ±)`` is antiferromagnetic where bit k of
the bond word is 1; the words are stored per sublattice and direction (``bonds_black``/``bonds_white``, 2d words
per site; for the Ising kernel one broadcast word per direction, all ones when J < 0). ``|J|`` is common to all.
For a site word ``s`` with neighbour words ``n_i`` and bond words ``m_i`` the bits of ``a_i = s ^ n_i ^ m_i`` mark
the unsatisfied bonds, which flipping ``s`` satisfies; a bitwise adder gives per bit their count ``c ∈ 0..2d`` and
``ΔE = 2|J|(2d - 2c)``: a flip is accepted always for ``c ≥ d`` and with probability ``e^{-4β|J|(d - c)}`` for
``c = d-1 … 0`` (two thresholds in 2D, three in 3D). The per-bit threshold is selected by the count class first
(``t_b = ∨_c eq_c ∧ T_c,b``), so one comparison chain serves all classes.

Heat bath (Glauber). The spin is set to +1 with probability ``σ(2βh_i)`` whatever its value, i.e. flipped with
probability ``1 / (1 + e^{βΔE})``: ``p_c = 1 / (1 + e^{4β|J|(d - c)})`` for every class ``c = 0 … 2d`` (no class
flips always, ``p_d = 1/2``; so no zero-field state is frozen into a flip cycle, as under Metropolis). The classes
pair up, ``p_{2d-c} = 1 - p_c``, which the sweep uses to keep the selection short: with ``m = min(c, 2d - c)``
(``d + 1`` folded classes, thresholds ``t_m = ⌊p_m 2^bits⌋``, ``t_d = 2^{bits-1}`` exactly) and ``g`` the mask of
``c > d``, it compares ``v = u XOR g`` (u complemented where c > d: ``¬v_b = ¬u_b ^ g``) with ``t_m`` in the same
chain and flips where ``g XOR (v < t_m)``. For ``c > d`` that is ``¬(2^bits - 1 - u < t_m) = (u < 2^bits - t_m)``,
probability ``1 - t_m 2^-bits``: every probability is off by less than ``2^-bits``, as under Metropolis, and the
rounded probabilities of a class pair still sum to 1. Per comparison bit this costs d + 1 class selections and one
XOR instead of 2d + 1 selections (3D: 8 operations against 13, beside the 8 of the chain and the random word).

Random numbers. Each site and sweep draws one two-round hash word ``w`` (``physics.hashing``, counter = the site's
index in its sublattice plus ``N/2`` for white, as in the packed kernel), and replica k compares
``u_k = top_bits(w) XOR c_k(row, col)`` with the threshold, where "row" is the first coordinate, "col" the flattened
rest of the sublattice index, and bit b of ``c_k`` is bit k of ``R_b(row) ^ rotl(E(col), b)``; ``R_b(row)`` and
``E(col)`` are fresh hashes per step and sublattice (``bits·L0 + N/(2 L0)`` extra hash words per half-sweep against
``N/2`` site words: 8% at L = 32 in 3D, 19% at L = 256 and 5% at L = 1024 in 2D). The offsets do not depend on
``w``, so for one replica the ``u_k`` of all sites are independent uniform ``bits``-bit integers: each replica's
chain is exact checkerboard Metropolis (resp. heat bath), probabilities rounded to multiples of ``2^-bits`` (as
in the packed kernel at bits = 24). The comparisons are bit-sliced over the word: the word whose bit k is
``¬(bit b of u_k)`` is ``¬R_b ^ rotl(E, b) ^ broadcast(bit b of w)``, and ``u < t`` is, from the least significant
bit up, ``lt ← maj(¬u_b, t_b, lt)``. Bit k of the new spin word depends only on bit k of the spin, neighbour and
bond words and on ``u_k``, so sample k's trajectory does not depend on the other samples' bonds or spins at all
(``tests/physics/test_multispin.py`` and ``test_multispin_heat_bath.py`` check it bitwise).

Why not one shared ``u`` per site (``c_k = 0``): replicas fed identical random numbers in the same order are a
synchronous coupling and coalesce into copies of one chain (the negative control of the independence test).
Why not independent Bernoulli masks (``bits`` hash words per site for each threshold): 48–72 hash words per 32
updates cost more than the packed kernel's one per site. The price of sharing ``w``: replicas ``j, k`` see
``u_j ^ u_k = c_j ^ c_k``, uniform at each site (so each pair draws independent uniforms at a site) but a fixed
function of (row, col) within one half-sweep, so the replicas are pairwise independent site by site, not proven
jointly independent. The tests measure the inter-replica correlation (none found at the 2·10⁻⁴ level) and use one
replica per independent chain wherever independence is assumed.

Why 32 and not 64 per word: uint64 arithmetic in JAX needs ``jax_enable_x64``, a process-wide switch that turns
every default float and int in the library (and in the user's code) into 64-bit. Turning it on inside a kernel is not
possible and demanding it of users is not reasonable, so words are uint32; 64 samples are two words (a batch axis,
``jax.vmap``) at the same cost per sample on a CPU, whose vector units process 32-bit lanes twice as wide.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import hashing
from ..lattice import EdwardsAnderson, Ising
from .base import Kernel, check_temperature
from .lattice import LatticeInfo, _require_even, pack_sublattices, unpack_sublattices

__all__ = ["REPLICAS", "RULES", "RULE_BUILDERS", "MultispinState", "MultispinIsingState", "multispin_metropolis",
           "multispin_ea_metropolis", "multispin_heat_bath", "multispin_ea_heat_bath", "pack_replicas",
           "unpack_replicas"]

REPLICAS = 32
_BITS = np.arange(REPLICAS, dtype=np.uint32)  # NumPy: importing must not start a JAX backend (jax.distributed)
_ONES = 0xFFFFFFFF
# Store 3D lines of 8 < W < 16 words (W = L2/2) padded to a multiple of 8 words (module docstring, "Padded lines"):
# the measured slow range. Off only in the tests that compare the two layouts.
_PAD_LINES = True
_LINE_ALIGN = 8


def _line_words(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(W, Wp)``: the real words per line of a sublattice of ``shape`` and the words the state stores."""
    real = shape[-1] // 2
    if _PAD_LINES and len(shape) == 3 and _LINE_ALIGN < real < 2 * _LINE_ALIGN:
        return real, -(-(real + 2) // _LINE_ALIGN) * _LINE_ALIGN  # two words for the halo copies
    return real, real


def pack_replicas(x: jax.Array) -> jax.Array:
    """``(32, ...)`` ±1 spins (or ±J bonds) to ``(...)`` uint32 words, bit k = replica k, set where the value < 0."""
    bits = (jnp.asarray(x) < 0).astype(jnp.uint32)
    return jnp.sum(bits << _BITS.reshape(-1, *([1] * (bits.ndim - 1))), axis=0, dtype=jnp.uint32)


def unpack_replicas(words: jax.Array) -> jax.Array:
    """Inverse of :func:`pack_replicas`: ``(...)`` uint32 to ``(32, ...)`` int8 ±1."""
    bits = (words[None] >> _BITS.reshape(-1, *([1] * words.ndim))) & jnp.uint32(1)
    return (1 - 2 * bits.astype(jnp.int8)).astype(jnp.int8)


def _even_rows(shape: tuple[int, ...]) -> np.ndarray:
    """``p(r) = 0``: the rows (first d - 1 coordinates) whose black sites sit at even last coordinates; shape
    ``(*shape[:-1], 1)``, NumPy (a trace-time constant)."""
    return (np.indices(shape[:-1]).sum(axis=0) % 2 == 0)[..., None]


def _neighbour_words(other: jax.Array, own_at_even: np.ndarray) -> list[jax.Array]:
    """The 2d neighbour words of every site of one sublattice, in the order ``+e_0, -e_0, …, +e_last, -e_last``.

    ``own_at_even`` marks the rows where this sublattice's sites have even last coordinate (black: ``p = 0``;
    white: ``p = 1``); there the ``+e_last`` neighbour is at the same packed column and ``-e_last`` one column left,
    elsewhere ``+e_last`` is one column right and ``-e_last`` at the same column. The shifts are slices of a copy of
    ``other`` with a one-word periodic halo rather than ``jnp.roll``: XLA:CPU turns a roll inside a loop fusion into
    a per-element select between two slices, which keeps the sweep from vectorizing.
    """
    d = other.ndim
    padded = jnp.pad(other, 1, mode="wrap")

    def shifted(axis, shift):  # the word at (site + shift along axis), periodic
        return padded[tuple(slice(1 + (shift if a == axis else 0), 1 + (shift if a == axis else 0) + other.shape[a])
                            for a in range(d))]

    words = []
    for axis in range(d - 1):
        words += [shifted(axis, 1), shifted(axis, -1)]
    here = shifted(-1, 0)
    words += [jnp.where(own_at_even, here, shifted(d - 1, 1)), jnp.where(own_at_even, shifted(d - 1, -1), here)]
    return words


def _bond_directions(couplings: jax.Array, d: int) -> jax.Array:
    """``(..., d, *shape)`` bonds ``J_mu(i)`` (site i to i + e_mu) to ``(..., 2d, *shape)``: the bond each site has
    in direction ``+e_0, -e_0, …`` (``J_mu(i)`` and ``J_mu(i - e_mu)``), the order of :func:`_neighbour_words`."""
    out = []
    for mu in range(d):
        plus = couplings[(Ellipsis, mu) + (slice(None),) * d]
        out += [plus, jnp.roll(plus, 1, axis=mu - d)]
    return jnp.stack(out, axis=-d - 1)


_SPREAD_WORDS = 32  # words per plane left when the folding stops and each bit is spread into its own lane


def _add_planes(a: list[jax.Array], b: list[jax.Array]) -> list[jax.Array]:
    """Ripple-carry sum of two bit-sliced numbers of P planes each (plane i weighs 2^i, LSB first) into P + 1
    planes: per bit position an ordinary binary addition, full adder ``s = x ^ y ^ c``, ``c' = xy | c (x ^ y)``."""
    total, carry = [a[0] ^ b[0]], a[0] & b[0]
    for x, y in zip(a[1:], b[1:]):
        either = x ^ y
        total.append(either ^ carry)
        carry = (x & y) | (carry & either)
    return total + [carry]


def _per_bit_sums(numbers: jax.Array) -> jax.Array:
    """``(32,)`` int32: ``Σ_j Σ_b 2^b · (bit k of numbers[b, j])`` for each bit position k.

    ``numbers`` is ``(P, n)`` uint32: n bit-sliced numbers of P planes, bit k of ``numbers[:, j]`` the binary digits
    of one count of sample k. A vertical counter by tree reduction: the second half of the words is added to the
    first (:func:`_add_planes`, a zero word appended when n is odd), so each level halves the words and adds one
    plane, and the work is about twice the first level's; below :data:`_SPREAD_WORDS` words per plane each bit is
    spread into its own lane and summed with its weight. Exact: every level preserves ``Σ_j value_k(j)`` for every
    k and no carry is dropped. Each level is one elementwise pass over two contiguous halves, where
    byte-lane counting needs 8 shifted passes per plane over rows of at most 255 words (``multispin_tempering``
    module docstring: 3.7× in 3D, 4.3× in 2D).
    """
    while numbers.shape[1] > _SPREAD_WORDS:
        if numbers.shape[1] % 2:
            numbers = jnp.concatenate([numbers, jnp.zeros((numbers.shape[0], 1), jnp.uint32)], axis=1)
        half = numbers.shape[1] // 2
        numbers = jnp.stack(_add_planes(list(numbers[:, :half]), list(numbers[:, half:])))
        # one materialized array per level: left to itself XLA:CPU fuses the levels into their consumers and
        # recomputes each level once per plane that reads it (3× slower in 3D, L = 16, 8 rungs)
        numbers = jax.lax.optimization_barrier(numbers)
    bits = ((numbers[..., None] >> _BITS) & jnp.uint32(1)).astype(jnp.int32)  # (P, ≤ 32, 32)
    weights = (1 << np.arange(numbers.shape[0], dtype=np.int32))[:, None, None]
    return jnp.sum(bits * weights, axis=(0, 1))


def _rolled_neighbour_words(other: jax.Array, own_at_even: np.ndarray) -> list[jax.Array]:
    """The words of :func:`_neighbour_words` (same order, same arguments) by ``jnp.roll``. The sweep avoids
    rolls because inside its loop fusion they stop vectorization; here each roll is a copy of its own, and the
    padded copy the sweep uses made the energy read 1.4× slower in 3D (L = 16, 8 rungs, one same-run timing)."""
    d = other.ndim
    words = []
    for axis in range(d - 1):
        words += [jnp.roll(other, -1, axis=axis), jnp.roll(other, 1, axis=axis)]  # the words at site ± e_axis
    right, left = jnp.roll(other, -1, axis=d - 1), jnp.roll(other, 1, axis=d - 1)
    words += [jnp.where(own_at_even, other, right), jnp.where(own_at_even, left, other)]
    return words


def _exact_energies(base: MultispinState) -> jax.Array:
    """``(32,)`` exact energies ``-|J| (d·N - 2 A_k)``, ``A_k`` sample k's unsatisfied bonds, each bond counted once
    from its black end (``MultispinState.energy``; parallel tempering reads it every step). The 2d unsatisfied-bond
    words of every black site are added in pairs of directions (a half adder per site: 2 planes), the d pair sums
    laid end to end, and the per-bit sum of those 2-plane numbers is :func:`_per_bit_sums`."""
    base = base._real_lines()  # padding words hold no sites: counted, they would add bonds that do not exist
    d = base.black.ndim
    neighbours = _rolled_neighbour_words(base.white, _even_rows((*base.black.shape[:-1], 2 * base.black.shape[-1])))
    unsatisfied = [jnp.broadcast_to(base.black ^ n ^ m, base.black.shape).reshape(-1)
                   for n, m in zip(neighbours, base.bonds_black)]
    pairs = list(zip(unsatisfied[::2], unsatisfied[1::2]))
    low = jnp.concatenate([a ^ b for a, b in pairs])
    high = jnp.concatenate([a & b for a, b in pairs])
    # starting from the per-site pair sums rather than the 2d words (one level fewer, done where the words are
    # made) or the 3-plane per-site count (a ripple adder per site costs more than the levels it saves)
    unsatisfied_count = _per_bit_sums(jax.lax.optimization_barrier(jnp.stack([low, high])))
    bonds = d * 2 * base.black.size - 2 * unsatisfied_count
    return -base.scale * bonds.astype(jnp.float32)


class MultispinState(NamedTuple):
    """32 replicas / samples of a d-dimensional lattice as two uint32 sublattices (bit k = replica k, 1 = down).

    ``bonds_black``/``bonds_white`` are ``(2d, …)`` bond words per direction (bit k = 1 where sample k's bond is
    antiferromagnetic; broadcast ``(2d, 1, …)`` words for the Ising kernel) and ``scale`` is ``|J|``.
    ``.energy`` (``(32,)``, computed when read): every bond joins a black and a white site, so sample k has
    ``A_k`` = the count of bit k over ``black ^ n_i ^ m_i`` unsatisfied bonds out of ``d·N``, and
    ``E_k = -|J| (d·N - 2 A_k)``, an exact integer times |J|. One state per object (``jax.vmap`` over batches).
    """

    black: jax.Array
    white: jax.Array
    bonds_black: jax.Array
    bonds_white: jax.Array
    scale: jax.Array

    # real words per line when the stored lines are padded (set on the subclass :func:`_padded_state_type` makes)
    real_line_words = None

    def _real_lines(self) -> MultispinState:
        """The state without its padding words (itself when the lines are not padded)."""
        real = self.real_line_words
        if real is None:
            return self
        return MultispinState(self.black[..., :real], self.white[..., :real], self.bonds_black[..., :real],
                              self.bonds_white[..., :real], self.scale)

    @property
    def x(self) -> jax.Array:
        real = self._real_lines()
        return unpack_sublattices(unpack_replicas(real.black), unpack_replicas(real.white), real.black.ndim)

    @property
    def energy(self) -> jax.Array:
        return _exact_energies(self)


MultispinIsingState = MultispinState  # the name the 2D Ising kernel's state had


@functools.cache
def _padded_state_type(real: int) -> type[MultispinState]:
    """A ``MultispinState`` whose lines store ``real`` words and then padding: a subclass, so the number is static
    (a pytree leaf would be traced) and survives ``_replace``, ``jax.jit``, ``lax.scan`` and ``jax.vmap``."""
    return type("MultispinState", (MultispinState,), {"__slots__": (), "real_line_words": real})


def _threshold_masks(p: jax.Array, bits: int) -> tuple[list[jax.Array], jax.Array]:
    """``t = ⌊p 2^bits⌋`` as per-bit all-ones/all-zeros uint32 masks (LSB first), and a mask set when p = 1."""
    t = jnp.floor(p * 2.0**bits).astype(jnp.int32)
    full = t >= (1 << bits)
    t = jnp.minimum(t, (1 << bits) - 1).astype(jnp.uint32)
    masks = [jnp.uint32(0) - ((t >> jnp.uint32(b)) & jnp.uint32(1)) for b in range(bits)]
    return masks, jnp.where(full, jnp.uint32(_ONES), jnp.uint32(0))


def _replica_offsets(key, sublattice: int, sub_shape: tuple[int, ...], bits: int, n: int, real: int):
    """The replica offsets of one half-sweep: ``¬R_b(row)`` ``(bits, L0, 1, …)`` and ``E(col)`` ``(1, …)``.

    Bit k of ``R_b(row) ^ rotl(E(col), b)`` is bit b of replica k's offset ``c_k(row, col)`` (row = first
    coordinate, col = the flattened rest). Counters ``n + (sublattice·L0 + row)·bits + b`` and
    ``n + 2·L0·bits + sublattice·cols + col``: above every site counter (< n) and distinct. ``R_b`` is returned
    complemented so that the update needs one XOR for ``¬u_b``. ``real``: the real words per line; with lines padded
    beyond it, col is that of the unpadded sublattice (the padding words' offsets are unused).
    """
    rows, rest = sub_shape[0], sub_shape[1:]
    cols = int(np.prod(rest))
    if real != rest[-1]:  # padded (3D only): col = l1·W + w
        cols = cols // rest[-1] * real
        col = (jax.lax.broadcasted_iota(jnp.uint32, (1, *rest), 1) * jnp.uint32(real)
               + jax.lax.broadcasted_iota(jnp.uint32, (1, *rest), len(rest)))
    else:
        col = jnp.arange(cols, dtype=jnp.uint32).reshape(1, *rest)
    row = jax.lax.broadcasted_iota(jnp.uint32, (1, rows, *[1] * len(rest)), 1)
    bit = jnp.arange(bits, dtype=jnp.uint32).reshape(bits, 1, *[1] * len(rest))
    line = jnp.uint32(n) + (jnp.uint32(sublattice * rows) + row) * jnp.uint32(bits) + bit
    column = jnp.uint32(n + 2 * rows * bits + sublattice * cols) + col
    return ~hashing.hash32(key, line), hashing.hash32(key, column)


def _maj(a, b, c):
    return (a & b) | (c & (a | b))


def _binary_count(a: list[jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per bit, the number c of set bits among the 2d words ``a`` in binary, ``c = low + 2·twos + 4·fours``: two
    half adders (2D) or two full adders (3D) and one full adder of their carries."""
    if len(a) == 4:
        s1, k1, s2, k2 = a[0] ^ a[1], a[0] & a[1], a[2] ^ a[3], a[2] & a[3]
    else:
        s1, k1 = a[0] ^ a[1] ^ a[2], _maj(a[0], a[1], a[2])
        s2, k2 = a[3] ^ a[4] ^ a[5], _maj(a[3], a[4], a[5])
    low, carry = s1 ^ s2, s1 & s2
    return low, k1 ^ k2 ^ carry, _maj(k1, k2, carry)


def _count_classes(a: list[jax.Array]) -> tuple[jax.Array, list[jax.Array]]:
    """Per bit, the number c of set bits among the 2d words ``a``: ``(c ≥ d, [c == d-1, …, c == 0])``."""
    if len(a) == 4:  # 2D: read off the two half adders directly, without the carry adder (the hot 2D kernel)
        s1, k1, s2, k2 = a[0] ^ a[1], a[0] & a[1], a[2] ^ a[3], a[2] & a[3]
        ge2 = k1 | k2 | (s1 & s2)
        eq1 = (s1 ^ s2) & ~(k1 | k2)
        eq0 = ~(s1 | s2 | k1 | k2)
        return ge2, [eq1, eq0]
    low, twos, fours = _binary_count(a)
    ge3 = fours | (twos & low)
    eq2 = twos & ~(fours | low)
    eq1 = low & ~(fours | twos)
    eq0 = ~(fours | twos | low)
    return ge3, [eq2, eq1, eq0]


def _heat_bath_classes(a: list[jax.Array]) -> tuple[jax.Array, list[jax.Array]]:
    """Per bit, with c the number of set bits among the 2d words ``a``: ``(c > d, [m == d, m == d-1, …, m == 0])``
    where ``m = min(c, 2d - c)`` (the heat bath's folded class, module docstring).

    From the binary count ``c = low + 2·twos + 4·fours`` (:func:`_binary_count`): in 2D (c ≤ 4)
    ``c > 2`` is ``fours | twos & low``, ``m = 1`` is ``c ∈ {1, 3}`` = ``low``, ``m = 2`` is ``c = 2`` and
    ``m = 0`` is ``c ∈ {0, 4}``; in 3D (c ≤ 6) ``c > 3`` is ``fours``, ``m = 3`` is ``c = 3`` = ``low & twos``,
    ``m = 1`` is ``c ∈ {1, 5}`` = ``low & ~twos``, ``m = 2`` is ``c ∈ {2, 4}`` and ``m = 0`` is ``c ∈ {0, 6}``.
    """
    low, twos, fours = _binary_count(a)
    if len(a) == 4:
        return fours | (twos & low), [twos & ~low, low, ~(low | twos)]
    mixed = twos ^ fours
    return fours, [low & twos, ~low & mixed, low & ~twos, ~(low | mixed)]


def _multispin_kernel(shape: tuple[int, ...], temperature, bits: int, make_bonds, scale, rule: str) -> Kernel:
    """The shared sweep; ``rule`` (a key of :data:`RULE_BUILDERS`) picks the flip probability of each count class.
    ``make_bonds()`` gives the ``(bonds_black, bonds_white)`` words of the state."""
    d = len(shape)
    n = int(np.prod(shape))
    half = n // 2
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)
    even = _even_rows(shape)
    heat_bath = rule == "heat_bath"
    real, stored = _line_words(shape)
    padded = stored != real
    state_type = _padded_state_type(real) if padded else MultispinState

    def pad_line(words):  # zero words after the real ones (a broadcast bond word has nothing to pad)
        if not padded or words.shape[-1] == 1:
            return words
        return jnp.pad(words, [(0, 0)] * (words.ndim - 1) + [(0, stored - real)])

    def with_halo(words):  # word W a copy of word 0, word Wp - 1 of word W - 1: wrapped at Wp, the lines wrap at W
        if not padded:
            return words
        words = jax.lax.dynamic_update_slice_in_dim(words, words[..., :1], real, axis=-1)
        return jax.lax.dynamic_update_slice_in_dim(words, words[..., real - 1:real], stored - 1, axis=-1)

    def init(key, x):
        del key
        x = jnp.asarray(x).astype(jnp.int8)
        if x.ndim == d:
            x = jnp.broadcast_to(x, (REPLICAS, *shape))
        if x.shape != (REPLICAS, *shape):
            raise ValueError(f"x.shape={x.shape}: expected ({REPLICAS}, {', '.join(map(str, shape))}) or {shape}")
        black, white = pack_sublattices(x, d)
        bonds_black, bonds_white = make_bonds()
        black, white, bonds_black, bonds_white = map(pad_line, (pack_replicas(black), pack_replicas(white),
                                                                 bonds_black, bonds_white))
        return state_type(with_halo(black), with_halo(white), bonds_black, bonds_white, jnp.asarray(scale, jnp.float32))

    def half_sweep(key, spins, other, bonds, own_at_even, sublattice, thresholds):
        sub_shape = spins.shape
        if padded:  # the site's index in the unpadded sublattice: the random numbers of the unpadded state
            line = jax.lax.broadcasted_iota(jnp.uint32, sub_shape, 0) * jnp.uint32(sub_shape[1])
            line = line + jax.lax.broadcasted_iota(jnp.uint32, sub_shape, 1)
            index = line * jnp.uint32(real) + jax.lax.broadcasted_iota(jnp.uint32, sub_shape, 2)
        else:
            index = jnp.arange(spins.size, dtype=jnp.uint32).reshape(sub_shape)
        word = hashing.hash32(key, index + jnp.uint32(sublattice * half))
        not_rows, column = _replica_offsets(key, sublattice, sub_shape, bits, n, real)
        unsatisfied = [spins ^ nb ^ m for nb, m in zip(_neighbour_words(other, own_at_even), bonds)]
        if heat_bath:
            # complementing u where c > d turns u < 1 - p_m into ¬(u' < p_m): one chain, d + 1 thresholds
            upper, classes = _heat_bath_classes(unsatisfied)
        else:
            always, classes = _count_classes(unsatisfied)
            full = jnp.zeros_like(spins)
            for eq, (_, full_c) in zip(classes, thresholds):
                full = full | (eq & full_c)
        lt = jnp.zeros_like(spins)
        for b in range(bits):  # bit (32 - bits + b) of the hash word: its top `bits` bits, LSB first
            shift = jnp.uint32(32 - bits + b)
            rot = column if b == 0 else (column << jnp.uint32(b)) | (column >> jnp.uint32(32 - b))
            not_u = not_rows[b] ^ rot ^ (jnp.uint32(0) - ((word >> shift) & jnp.uint32(1)))
            if heat_bath:
                not_u = not_u ^ upper
            t = classes[0] & thresholds[0][0][b]
            for eq, (masks, _) in zip(classes[1:], thresholds[1:]):
                t = t | (eq & masks[b])
            lt = _maj(not_u, t, lt)
        flip = (upper ^ lt) if heat_bath else (always | full | lt)
        return with_halo(spins ^ flip), flip

    def step(key, state):
        if heat_bath:  # folded class m = d … 0 (the order of _heat_bath_classes): p_m = 1 / (1 + e^{4β|J|(d - m)})
            thresholds = [_threshold_masks(jax.nn.sigmoid(-4.0 * (d - m) * beta * state.scale), bits)
                          for m in range(d, -1, -1)]
        else:  # class c = d-1-m (m = 0 … d-1) costs ΔE = 4|J|(m + 1)
            thresholds = [_threshold_masks(jnp.exp(-4.0 * (m + 1) * beta * state.scale), bits) for m in range(d)]
        black, fb = half_sweep(key, state.black, state.white, state.bonds_black, even, 0, thresholds)
        white, fw = half_sweep(key, state.white, black, state.bonds_white, ~even, 1, thresholds)
        # acceptance: a reduction, removed by XLA unless the caller keeps the info (it then recomputes the sweep)
        count = (jnp.sum(jax.lax.population_count(fb[..., :real]).astype(jnp.int32))
                 + jnp.sum(jax.lax.population_count(fw[..., :real]).astype(jnp.int32)))
        info = LatticeInfo(count.astype(jnp.float32) / (n * REPLICAS), jnp.isfinite(state.scale))
        return state._replace(black=black, white=white), info

    return Kernel(init, step)


def _check_common(shape, h, temperature, bits, name):
    if not isinstance(h, jax.core.Tracer) and not np.all(np.asarray(h) == 0):
        fallback = "kernels.heat_bath" if "heat_bath" in name else "kernels.metropolis"
        raise ValueError(f"h={h!r}: {name} needs h = 0 (use {fallback} otherwise)")
    if not 1 <= int(bits) <= 24:
        raise ValueError(f"bits={bits!r}: must be an integer in 1..24")
    _require_even(shape, name)
    check_temperature(temperature)


def _ising_kernel(model, temperature, bits, rule: str, name: str, ea_name: str) -> Kernel:
    if not isinstance(model, Ising):
        raise ValueError(f"model={model!r}: {name} needs a 2D or 3D lattice.Ising ({ea_name} runs ±J spin glasses)")
    _check_common(model.shape, model.h, temperature, bits, name)
    d = len(model.shape)
    J = jnp.asarray(model.J, jnp.float32)

    def make_bonds():
        word = jnp.where(J < 0, jnp.uint32(_ONES), jnp.uint32(0))  # J < 0: every bond antiferromagnetic
        words = jnp.broadcast_to(word, (2 * d,) + (1,) * d)
        return words, words

    return _multispin_kernel(model.shape, temperature, int(bits), make_bonds, jnp.abs(J), rule)


def _ea_kernel(couplings, temperature, bits, rule: str, name: str, plain: str) -> Kernel:
    h = 0.0
    if isinstance(couplings, EdwardsAnderson):
        h, couplings = couplings.h, couplings.couplings
    elif isinstance(couplings, Sequence) and couplings and isinstance(couplings[0], EdwardsAnderson):
        h = np.asarray([0.0 if isinstance(m.h, jax.core.Tracer) else m.h for m in couplings])
        couplings = jnp.stack([m.couplings for m in couplings])
    couplings = jnp.asarray(couplings, jnp.float32)
    if couplings.ndim not in (4, 5) or couplings.shape[0] != REPLICAS or couplings.shape[1] != couplings.ndim - 2:
        raise ValueError(f"couplings.shape={couplings.shape}: expected ({REPLICAS}, d, *shape) with d = 2 or 3")
    if not isinstance(couplings, jax.core.Tracer) and not np.all(np.abs(np.asarray(couplings)) == 1):
        raise ValueError(f"couplings: {name} needs ±1 bonds (use {plain} for Gaussian EA)")
    shape = tuple(couplings.shape[2:])
    _check_common(shape, h, temperature, bits, name)
    d = len(shape)

    def make_bonds():
        directions = _bond_directions(couplings, d)  # (32, 2d, *shape)
        black, white = pack_sublattices(directions, d)
        return pack_replicas(black), pack_replicas(white)

    return _multispin_kernel(shape, temperature, int(bits), make_bonds, 1.0, rule)


def multispin_metropolis(model: Ising, temperature, *, bits: int = 24) -> Kernel:
    """Checkerboard Metropolis on 32 replicas of a 2D or 3D Ising model (h = 0, uniform J) packed in uint32 words.

    ``init(key, x)`` takes ``(32, *shape)`` ±1 spins (or one lattice, copied to every replica); one ``step`` is one
    sweep of every replica. ``bits`` (≤ 24) is the precision of the acceptance comparison: probabilities are rounded
    down to multiples of ``2^-bits``. See the module docstring for the layout and the random numbers.
    """
    return _ising_kernel(model, temperature, bits, "metropolis", "multispin_metropolis", "multispin_ea_metropolis")


def multispin_heat_bath(model: Ising, temperature, *, bits: int = 24) -> Kernel:
    """Checkerboard heat bath (Glauber) on 32 replicas of a 2D or 3D Ising model (h = 0, uniform J), packed as
    :func:`multispin_metropolis` is: a spin with c unsatisfied bonds flips with probability
    ``p_c = 1 / (1 + e^{4β|J|(d - c)})``, i.e. is set to +1 with probability ``σ(2βh_i)`` whatever its value.

    ``bits`` (≤ 24): ``p_c`` for ``c < d`` is rounded down to a multiple of ``2^-bits`` and ``p_{2d-c}`` taken as
    exactly ``1 - p_c`` (module docstring); ``p_d = 1/2`` is exact. ``init`` and ``step`` as for Metropolis.
    """
    return _ising_kernel(model, temperature, bits, "heat_bath", "multispin_heat_bath", "multispin_ea_heat_bath")


def multispin_ea_metropolis(couplings, temperature, *, bits: int = 24) -> Kernel:
    """Checkerboard Metropolis on 32 independent ±1 Edwards–Anderson samples (h = 0), sample k in bit k of each word.

    ``couplings``: ``(32, d, *shape)`` ±1 bonds (``couplings[k, mu, *site]`` joins site and site + e_mu in sample k,
    the convention of ``lattice.EdwardsAnderson``), an ``EdwardsAnderson`` whose couplings have that batched shape,
    or a sequence of 32 ``EdwardsAnderson`` models of one shape. d = 2 or 3, every side even. ``init(key, x)`` takes
    ``(32, *shape)`` ±1 spins (or one lattice for every sample); one ``step`` is one sweep of every sample. The
    state's ``.x`` is ``(32, *shape)`` int8 and ``.energy`` the 32 exact energies ``-Σ J_ij s_i s_j``.
    """
    return _ea_kernel(couplings, temperature, bits, "metropolis", "multispin_ea_metropolis", "kernels.metropolis")


def multispin_ea_heat_bath(couplings, temperature, *, bits: int = 24) -> Kernel:
    """Checkerboard heat bath (Glauber) on 32 independent ±1 Edwards–Anderson samples (h = 0), sample k in bit k of
    each word: the flip probabilities of :func:`multispin_heat_bath` with |J| = 1, the inputs and the state of
    :func:`multispin_ea_metropolis`."""
    return _ea_kernel(couplings, temperature, bits, "heat_bath", "multispin_ea_heat_bath", "kernels.heat_bath")


# the kernels of each sweep rule: (32 replicas of a lattice.Ising, 32 ±J samples); packed batches
# (``kernels.metropolis``/``heat_bath``) and parallel tempering pick their builders here
RULE_BUILDERS = {"metropolis": (multispin_metropolis, multispin_ea_metropolis),
                 "heat_bath": (multispin_heat_bath, multispin_ea_heat_bath)}
RULES = tuple(RULE_BUILDERS)
