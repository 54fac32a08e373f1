"""Lattice Monte Carlo kernels: checkerboard Metropolis and heat bath, and Wolff clusters.

One ``step`` of ``metropolis``/``heat_bath`` is one full sweep: the even sublattice (Σ coordinates even) is updated
in parallel, then the odd one. On a torus the two sublattices are independent sets only when every side length is
even, so odd side lengths are refused with a clear error (they would break detailed balance silently).

Random numbers come from ``physics.hashing``: one keyed hash per site per sweep with the site index as the counter
(each site is updated once per sweep, so counters never repeat under one step key). Metropolis acceptance
``u < exp(-β ΔE)`` and heat-bath probabilities ``P(s_i=+1) = 1/(1 + exp(-2β(f_i + h)))`` (Glauber 1963) satisfy
detailed balance with respect to ``exp(-βH)``; the χ² tests against exact enumeration check both.

Zero-field states. Metropolis accepts ΔE = 0 always, so with h = 0 a state in which every spin has zero local field
is mapped to −x by one sweep at any temperature and alternates for ever (36 such states on the 4×4 torus; their
share falls exponentially with size). The set is closed and, the Boltzmann law being stationary, never entered from
outside: only a chain *started* there is stuck. Start from an ordered state or a few heat-bath sweeps on tiny
lattices (tests/physics/test_metropolis_trap.py pins this for every 2D Metropolis path).

Wolff (PRL 62:361, 1989): bonds between aligned neighbours are activated with probability ``1 - exp(-2βJ)``;
the connected component of a uniformly chosen seed site is flipped. One step = one cluster flip.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import hashing
from ..lattice import EdwardsAnderson, Ising
from .base import Kernel, register

__all__ = ["LatticeState", "PackedLatticeState", "PackedIsingState", "LatticeInfo", "WolffInfo", "checkerboard_masks",
           "pack_checkerboard", "unpack_checkerboard", "pack_sublattices", "unpack_sublattices"]


class LatticeState(NamedTuple):
    """A lattice configuration (int8 ±1) and its extensive energy."""

    x: jax.Array
    energy: jax.Array


class LatticeInfo(NamedTuple):
    """Fraction of sites flipped in the sweep."""

    acceptance: jax.Array
    is_finite: jax.Array


class WolffInfo(NamedTuple):
    """Number of spins in the flipped cluster."""

    cluster_size: jax.Array
    is_finite: jax.Array


def _require_even(shape, name):
    if any(s % 2 for s in shape):
        raise ValueError(
            f"shape={shape!r}: {name} uses checkerboard sweeps, which need every side length even on a torus "
            f"(odd sides make neighbours share a colour); use even sides, or kernels.wolff for the Ising model"
        )


def checkerboard_masks(shape) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the even and odd sublattices (Σ coordinates even / odd)."""
    parity = np.indices(shape).sum(axis=0) % 2
    return parity == 0, parity == 1


def _site_counter(shape):
    return jnp.arange(int(np.prod(shape)), dtype=jnp.uint32).reshape(shape)


def _init(model):
    def init(key, x):
        del key
        x = jnp.asarray(x).astype(jnp.int8)
        return LatticeState(x, model.energy(x))

    return init


# --- sublattice-packed checkerboard sweeps for any lattice model (Metropolis and heat bath) -------------------
def _even_lead(lead: tuple[int, ...]) -> jax.Array:
    """``(*lead, 1)`` booleans: the sum of a site's leading coordinates is even (it starts an even-sublattice row)."""
    total = sum(jax.lax.broadcasted_iota(jnp.int32, (*lead, 1), axis) for axis in range(len(lead)))
    return total % 2 == 0


def pack_sublattices(x: jax.Array, ndim: int) -> tuple[jax.Array, jax.Array]:
    """Split the last ``ndim`` axes of ``x`` into its (even, odd) checkerboard sublattices, each ``(*lead, L/2)``.

    Along the last axis a row whose leading coordinates sum to an even number starts with an even site:
    ``even[I, k] = x[I, 2k + p(I)]`` and ``odd[I, k] = x[I, 2k + 1 - p(I)]`` with ``p(I) = Σ I mod 2``. In 2D this is
    :func:`pack_checkerboard` (black = even). Leading batch axes are allowed.
    """
    even = _even_lead(x.shape[-ndim:-1])
    first, second = x[..., 0::2], x[..., 1::2]
    return jnp.where(even, first, second), jnp.where(even, second, first)


def unpack_sublattices(even_sites: jax.Array, odd_sites: jax.Array, ndim: int) -> jax.Array:
    """Inverse of :func:`pack_sublattices`."""
    even = _even_lead(even_sites.shape[-ndim:-1])
    first, second = jnp.where(even, even_sites, odd_sites), jnp.where(even, odd_sites, even_sites)
    return jnp.stack([first, second], axis=-1).reshape(*even_sites.shape[:-1], 2 * even_sites.shape[-1])


def _wrap_pad(a: jax.Array, ndim: int) -> jax.Array:
    """``a`` with a one-site periodic halo on each of its last ``ndim`` axes (faces only: edges and corners are 0).

    Built as a zero pad whose faces are then overwritten in place (``dynamic_update_slice``) rather than with
    ``jnp.pad(mode="wrap")`` or ``jnp.roll``: those are concatenations, which XLA:CPU fuses into the sweep, where
    they become a branch per element and the loop no longer vectorizes (the sweep ran 4× slower). An in-place
    update is never fused into its consumer, so the sweep reads the halo as plain slices. The faces are copied from
    ``a`` itself rather than from the padded array being written, which made XLA copy that array once per face.
    """
    batch = a.ndim - ndim
    padded = jax.lax.pad(a, jnp.zeros((), a.dtype), [(0, 0, 0)] * batch + [(1, 1, 0)] * ndim)
    for axis in range(batch, a.ndim):
        n = a.shape[axis]
        start = [0] * batch + [1] * ndim
        for source, target in ((n - 1, 0), (0, n + 1)):
            start[axis] = target
            padded = jax.lax.dynamic_update_slice(padded, jax.lax.slice_in_dim(a, source, source + 1, axis=axis),
                                                  start)
    return padded


def _shifted(padded: jax.Array, mu: int, shift: int, ndim: int) -> jax.Array:
    """The interior of a haloed packed array moved by ``shift`` (-1, 0, 1) packed sites along lattice axis ``mu``."""
    index = [Ellipsis]
    for axis in range(ndim):
        start = 1 + (shift if axis == mu else 0)
        index.append(slice(start, start + padded.shape[axis - ndim] - 2))
    return padded[tuple(index)]


def _interior(padded: jax.Array, ndim: int) -> jax.Array:
    return _shifted(padded, 0, 0, ndim)


def _neighbours(padded: jax.Array, starts_row: jax.Array, mu: int, ndim: int) -> tuple[jax.Array, jax.Array]:
    """Values of the opposite sublattice (packed, haloed) at ``i + e_mu`` and ``i - e_mu`` of every updated site.

    Along a leading axis both sit at the same packed column. Along the last axis a site at column ``2k`` (where
    ``starts_row``) has its neighbours at packed columns k and k-1 of the other sublattice; one at ``2k + 1`` at
    k + 1 and k. Slices of a haloed copy rather than ``jnp.roll``: XLA:CPU lowers a roll inside a loop fusion to a
    per-element branch (a concatenate), which kept the sweep from vectorizing (5× slower on the neighbour sum).
    """
    if mu < ndim - 1:
        return _shifted(padded, mu, 1, ndim), _shifted(padded, mu, -1, ndim)
    here = _shifted(padded, mu, 0, ndim)
    return (jnp.where(starts_row, here, _shifted(padded, mu, 1, ndim)),
            jnp.where(starts_row, _shifted(padded, mu, -1, ndim), here))


def _packed_local_field(spins: jax.Array, c_self, c_other, starts_row: jax.Array, ndim: int) -> jax.Array:
    """``Σ_mu J_mu(i) s_{i+e_mu} + J_mu(i-e_mu) s_{i-e_mu}`` on one packed sublattice, without h (float32).

    ``spins`` is the other sublattice, haloed float32 (:func:`_wrap_pad`); ``c_self[mu]`` holds ``J_mu`` at the
    updated sites and ``c_other[mu]`` at the other sublattice's sites, haloed (both scalars for a uniform
    ferromagnet). The terms are added in the order of ``physics.lattice.local_field`` and the backward product
    ``J·s`` is formed at the neighbour, as there, so every site gets the bitwise same float.
    """
    field = jnp.zeros(_interior(spins, ndim).shape, jnp.float32)
    for mu in range(ndim):
        forward, _ = _neighbours(spins, starts_row, mu, ndim)
        _, backward = _neighbours(c_other[mu] * spins, starts_row, mu, ndim)
        field = field + c_self[mu] * forward + backward
    return field


def _packed_site_counter(shape: tuple[int, ...], starts_row: jax.Array) -> jax.Array:
    """Flat index (row-major, whole lattice) of every site of one packed sublattice: the hash counter."""
    lead, width = shape[:-1], shape[-1]
    row = jnp.zeros((*lead, 1), jnp.uint32)
    for axis, size in enumerate(lead):
        row = row * jnp.uint32(size) + jax.lax.broadcasted_iota(jnp.uint32, (*lead, 1), axis)
    column = (jnp.uint32(2) * jax.lax.broadcasted_iota(jnp.uint32, (*lead, width // 2), len(lead))
              + jnp.where(starts_row, jnp.uint32(0), jnp.uint32(1)))
    return row * jnp.uint32(width) + column


@dataclasses.dataclass(frozen=True)
class PackedLatticeState:
    """A lattice configuration stored as its two checkerboard sublattices (:func:`pack_sublattices`), int8 ±1.

    ``even`` and ``odd`` have shape ``(*lead, L/2)``. ``couplings`` is J (a scalar per chain) for the uniform
    ``Ising`` model and, for ``EdwardsAnderson``, the array ``(2, d, *halo)`` of ``J_mu`` at the even and at the odd
    sites, packed and haloed (:func:`_wrap_pad`); ``h`` is the uniform field.

    ``.x`` rebuilds the lattice; ``.energy`` is computed when read, from the bonds ``-Σ_b J_b s s' - h Σ_i s_i``
    (for ``Ising`` an exact integer bond count times J; for ``EdwardsAnderson`` a float32 sum of the terms ±J_b,
    whose terms are exact, so that programs reading it agree to the bit). The sweep
    itself then has no reduction, so each half-sweep is one loop over the half lattice with one hashed word per
    site. Leading batch axes are allowed.
    """

    even: jax.Array
    odd: jax.Array
    couplings: jax.Array
    h: jax.Array
    ndim: int

    @property
    def x(self) -> jax.Array:
        d = self.ndim
        return unpack_sublattices(self.even, self.odd, d)

    @property
    def energy(self) -> jax.Array:
        d = self.ndim
        lattice_axes = tuple(range(-d, 0))
        even = self.even
        starts_row = _even_lead(even.shape[-d:-1])
        spins = jnp.sum(even.astype(jnp.int32) + self.odd.astype(jnp.int32), axis=lattice_axes)
        field_term = -self.h * spins.astype(jnp.float32)
        if self.couplings.ndim < self.even.ndim:  # uniform J: an exact integer bond count
            odd = _wrap_pad(self.odd.astype(jnp.int32), d)
            neighbours = sum(sum(_neighbours(odd, starts_row, mu, d)) for mu in range(d))
            bonds = jnp.sum(even.astype(jnp.int32) * neighbours, axis=lattice_axes)
            return -self.couplings * bonds.astype(jnp.float32) + field_term
        # Each bond once, as the forward bond of its even or of its odd end. Every term is exactly ±J (a select, not
        # a product summed into a field), so only the order of the float sums could differ between the programs
        # that read it; test_driver compares energies read in two programs bit for bit.
        bonds = jnp.zeros(spins.shape, jnp.float32)
        for side, (spins_here, other, starts) in enumerate(((even, self.odd, starts_row),
                                                             (self.odd, even, ~starts_row))):
            couplings = _per_direction(jnp.take(self.couplings, side, axis=-d - 2), d)
            halo = _wrap_pad(other, d)
            for mu in range(d):
                aligned = spins_here * _neighbours(halo, starts, mu, d)[0] > 0
                bond = _interior(couplings[mu], d)
                bonds = bonds + jnp.sum(jnp.where(aligned, bond, -bond), axis=lattice_axes)
        return -bonds + field_term

jax.tree_util.register_dataclass(PackedLatticeState, data_fields=["even", "odd", "couplings", "h"],
                                 meta_fields=["ndim"])


def _per_direction(couplings: jax.Array, ndim: int) -> list[jax.Array]:
    """``[J_0, …, J_{d-1}]`` from a packed ``(..., d, *sites)`` coupling array."""
    return [jnp.take(couplings, mu, axis=-ndim - 1) for mu in range(ndim)]


def _coupling_leaf(model) -> jax.Array:
    """The state's couplings: J for ``Ising``, the packed, haloed ``(2, d, *halo)`` bonds for ``EdwardsAnderson``."""
    if isinstance(model, Ising):
        return jnp.asarray(model.J, jnp.float32)
    d = len(model.shape)
    return _wrap_pad(jnp.stack(pack_sublattices(jnp.asarray(model.couplings, jnp.float32), d)), d)


def _exact_integer_fields(model) -> bool:
    """An ``Ising`` model with concrete scalar J and h for which every partial sum of the local field is exact.

    ``local_field`` adds the 2d terms ``±J`` one by one; when every multiple ``mJ`` (|m| ≤ 2d) is a float32, each
    partial sum is exact, so the field is ``float32(σJ) + h`` for the integer neighbour sum σ whatever the order —
    true for J = 1 and any J with at most 21 significant bits.
    """
    if not isinstance(model, Ising):
        return False
    if any(isinstance(v, jax.core.Tracer) or np.ndim(v) for v in (model.J, model.h)):
        return False
    coupling = np.float64(np.float32(model.J))
    multiples = np.arange(-2 * len(model.shape), 2 * len(model.shape) + 1) * coupling
    return bool(np.isfinite(coupling) and np.all(multiples.astype(np.float32).astype(np.float64) == multiples))


def _levels_chain(sigma: jax.Array, table: jax.Array, ndim: int) -> jax.Array:
    """``table[(σ + 2d)/2]`` for neighbour sums σ ∈ {-2d, …, 2d}, as a chain of selects (which vectorizes)."""
    out = table[2 * ndim]
    for level in range(2 * ndim - 1, -1, -1):
        out = jnp.where(sigma == 2 * level - 2 * ndim, table[level], out)
    return out


def _packed_sweep(model, probability, outcome) -> Kernel:
    """A sweep on packed sublattices: the even half, then the odd one.

    Each site draws ``u = uniform01(key, flat site index)`` and takes ``outcome(s, u < probability(s, f))`` with
    ``s`` its spin (float32) and ``f = local_field(x) + h`` — per site the masked full-lattice sweep this replaces,
    to the bit. But each half-sweep computes only the half it updates, reading the other half through a haloed
    copy, and nothing is summed inside the sweep (the acceptance count is removed by XLA unless the caller keeps
    the info; the energy is computed when read).

    For an ``Ising`` model whose local fields take exact values (:func:`_exact_integer_fields`) the field only
    depends on the integer neighbour sum σ, so the probabilities of the 2(2d + 1) cases (s, σ) are computed once
    per step with the same float expressions and turned into 24-bit integer thresholds: ``u = m 2^-24 < p`` holds
    exactly when ``m < ⌈p 2^24⌉``. Each site then sums int8 neighbours and compares its hash word with a threshold:
    the same configurations, without a float exp per site.
    """
    shape = model.shape
    d = len(shape)
    integer_fields = _exact_integer_fields(model)

    def init(key, x):
        del key
        even, odd = pack_sublattices(jnp.asarray(x).astype(jnp.int8), d)
        return PackedLatticeState(even, odd, _coupling_leaf(model), jnp.asarray(model.h, jnp.float32), d)

    def thresholds(state, spin):
        levels = jnp.arange(-2 * d, 2 * d + 1, 2, dtype=jnp.float32) * state.couplings + state.h
        p = probability(jnp.full(levels.shape, spin, jnp.float32), levels)
        return jnp.where(p >= 1.0, jnp.int32(_ONE), jnp.ceil(p * 2.0**24).astype(jnp.int32))

    def step(key, state):
        starts_row = _even_lead(shape[:-1])
        if state.couplings.ndim == 0:
            c_even = c_odd = halo_even = halo_odd = [state.couplings] * d
        else:
            halo_even, halo_odd = _per_direction(state.couplings[0], d), _per_direction(state.couplings[1], d)
            c_even, c_odd = ([_interior(c, d) for c in halo] for halo in (halo_even, halo_odd))
        if integer_fields:
            t_up, t_down = thresholds(state, 1.0), thresholds(state, -1.0)

        def half_sweep(spins, halo, starts, c_self, c_other):
            counter = _packed_site_counter(shape, starts)
            if integer_fields:
                sigma = sum(sum(_neighbours(halo, starts, mu, d)) for mu in range(d))
                words = (hashing.hash32(key, counter) >> 8).astype(jnp.int32)
                threshold = jnp.where(spins > 0, _levels_chain(sigma, t_up, d), _levels_chain(sigma, t_down, d))
                return outcome(spins, words < threshold)
            field = _packed_local_field(halo.astype(jnp.float32), c_self, c_other, starts, d) + state.h
            u = hashing.uniform01(key, counter)
            return outcome(spins, u < probability(spins.astype(jnp.float32), field))

        even = half_sweep(state.even, _wrap_pad(state.odd, d), starts_row, c_even, halo_odd)
        odd = half_sweep(state.odd, _wrap_pad(even, d), ~starts_row, c_odd, halo_even)
        flipped = jnp.sum(even != state.even, dtype=jnp.int32) + jnp.sum(odd != state.odd, dtype=jnp.int32)
        finite = jnp.all(jnp.isfinite(state.couplings)) & jnp.isfinite(state.h)
        info = LatticeInfo(flipped.astype(jnp.float32) / model.n, finite)
        return PackedLatticeState(even, odd, state.couplings, state.h, d), info

    return Kernel(init, step)


@register("metropolis", Ising)
@register("metropolis", EdwardsAnderson)
def lattice_metropolis(model, temperature) -> Kernel:
    """Checkerboard Metropolis: flip ``s_i`` with probability ``min(1, exp(-ΔE_i / T))``, one sweep per step.

    The 2D Ising model gets the packed fast path (:func:`ising2d_metropolis`); other lattices the generic one.
    """
    _require_even(model.shape, "metropolis")
    if isinstance(model, Ising) and len(model.shape) == 2:
        return ising2d_metropolis(model, temperature)
    return generic_metropolis(model, temperature)


def generic_metropolis(model, temperature) -> Kernel:
    """Checkerboard Metropolis on any lattice model (packed sublattices, :class:`PackedLatticeState`).

    ``ΔE_i = 2 s_i (f_i + h)`` in float32, and ``s_i`` flips when ``u_i < exp(-ΔE_i / T)``.
    """
    _require_even(model.shape, "metropolis")
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)

    def probability(spin, field):
        return jnp.exp(-beta * (2.0 * spin * field))

    def outcome(spins, accept):
        return jnp.where(accept, -spins, spins)

    return _packed_sweep(model, probability, outcome)


@register("heat_bath", Ising)
@register("heat_bath", EdwardsAnderson)
def lattice_heat_bath(model, temperature) -> Kernel:
    """Checkerboard heat bath: draw ``s_i = +1`` with probability ``1/(1 + exp(-2(f_i + h)/T))``, one sweep per step."""
    _require_even(model.shape, "heat_bath")
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)

    def probability(spin, field):
        del spin
        return jax.nn.sigmoid(2.0 * beta * field)

    def outcome(spins, up):
        # ±|s| rather than the constants ±1 (the same int8 values). With constants XLA:CPU copied the update's cheap
        # tail (hash, compare, select) into the halo built for the next half-sweep, splitting the loop at the
        # sigmoid's divide and hashing every site twice; with s read it keeps the update in one loop (2× faster)
        magnitude = jnp.abs(spins)
        return jnp.where(up, magnitude, -magnitude)

    return _packed_sweep(model, probability, outcome)


@register("wolff", EdwardsAnderson)
def _wolff_refused(model, temperature):
    raise ValueError(
        "model=EdwardsAnderson: kernels.wolff needs a ferromagnet (frustrated couplings have no valid single-cluster"
        " move); use metropolis, heat_bath or parallel_tempering"
    )


@register("wolff", Ising)
def lattice_wolff(model, temperature) -> Kernel:
    """Wolff single-cluster kernel for ``Ising`` with J > 0 and h = 0 (J and h are checked when concrete)."""
    for name, value, ok in (("J", model.J, lambda v: v > 0), ("h", model.h, lambda v: v == 0)):
        if not isinstance(value, jax.core.Tracer) and not np.all(ok(np.asarray(value))):
            raise ValueError(f"{name}={value!r}: kernels.wolff needs J > 0 and h = 0 (use metropolis otherwise)")
    shape = model.shape
    d = len(shape)
    n = model.n
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)

    def step(key, state):
        x = state.x
        p_add = -jnp.expm1(-2.0 * beta * jnp.asarray(model.J, jnp.float32))
        counters = _site_counter(shape)
        # Bond percolation on aligned bonds: bond (i, i+e_mu) uses counter mu·N + i; the seed uses d·N.
        active = [
            (x == jnp.roll(x, -1, axis=mu)) & (hashing.uniform01(key, counters + jnp.uint32(mu * n)) < p_add)
            for mu in range(d)
        ]
        seed = (hashing.hash32(key, jnp.uint32(d * n)) % jnp.uint32(n)).astype(jnp.int32)
        cluster = (counters.astype(jnp.int32) == seed)

        def grow(c):
            new = c
            for mu in range(d):
                new = new | (active[mu] & jnp.roll(c, -1, axis=mu)) | jnp.roll(active[mu] & c, 1, axis=mu)
            return new

        def cond(carry):
            return carry[1]

        def body(carry):
            c, _ = carry
            new = grow(grow(c))
            return new, jnp.any(new != c)

        cluster, _ = jax.lax.while_loop(cond, body, (cluster, jnp.array(True)))
        x = jnp.where(cluster, -x, x)
        energy = model.energy(x)
        size = jnp.sum(cluster, dtype=jnp.int32)
        return LatticeState(x, energy), WolffInfo(size, jnp.isfinite(energy))

    return Kernel(_init(model), step)


# --- the packed 2D Ising Metropolis fast path ---------------------------------------------------------------
class PackedIsingState(NamedTuple):
    """A 2D configuration stored as its two checkerboard sublattices, each ``(L0, L1/2)`` int8.

    ``black[i, k] = x[i, 2k + i%2]`` and ``white[i, k] = x[i, 2k + 1 - i%2]``; ``.x`` rebuilds the lattice.
    ``.energy`` is computed from the sublattices when read, ``E = -J Σ_black b·(Σ of its 4 white neighbours)
    - h Σ s`` (every bond joins a black and a white site, so each is counted once), exactly in integers: the sweep
    itself does no reduction, which lets XLA compute each site's random word once (an energy accumulated in the
    step made it fuse the hash into every consumer, three times per site). Leading batch axes are allowed.
    """

    black: jax.Array
    white: jax.Array
    J: jax.Array
    h: jax.Array

    @property
    def x(self) -> jax.Array:
        return unpack_checkerboard(self.black, self.white)

    @property
    def energy(self) -> jax.Array:
        even = _even_rows(self.black.shape[-2])
        bonds = jnp.sum((self.black * _neighbour_sum(self.white, even, 1)).astype(jnp.int32), axis=(-2, -1))
        spins = jnp.sum(self.black.astype(jnp.int32) + self.white.astype(jnp.int32), axis=(-2, -1))
        return -self.J * bonds.astype(jnp.float32) - self.h * spins.astype(jnp.float32)


def _even_rows(rows: int) -> jax.Array:
    return (jnp.arange(rows) % 2 == 0)[:, None]


def pack_checkerboard(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Split a 2D lattice (last two axes) into its (black, white) sublattices."""
    even = _even_rows(x.shape[-2])
    xe, xo = x[..., 0::2], x[..., 1::2]
    return jnp.where(even, xe, xo), jnp.where(even, xo, xe)


def unpack_checkerboard(black: jax.Array, white: jax.Array) -> jax.Array:
    """Inverse of :func:`pack_checkerboard`."""
    even = _even_rows(black.shape[-2])
    xe, xo = jnp.where(even, black, white), jnp.where(even, white, black)
    return jnp.stack([xe, xo], axis=-1).reshape(*black.shape[:-1], 2 * black.shape[-1])


def _neighbour_sum(other: jax.Array, even: jax.Array, shift_even: int) -> jax.Array:
    """Sum of the 4 neighbours (all on the other sublattice) of every site of one sublattice.

    Vertical neighbours sit at the same packed column; of the horizontal pair one is at the same packed column and
    the other one column left or right depending on the row parity (``shift_even`` for even rows).
    """
    horizontal = jnp.where(even, jnp.roll(other, shift_even, -1), jnp.roll(other, -shift_even, -1))
    return jnp.roll(other, 1, -2) + jnp.roll(other, -1, -2) + other + horizontal


_ONE = 1 << 24  # acceptance thresholds are 24-bit integers: a hashed word's top 24 bits below it accept


def _packed_thresholds(J, h, beta, spin):
    """The 24-bit acceptance thresholds ``⌊min(1, e^{-βΔE}) 2^24⌋`` for ``sσ = -4, -2, 0, 2, 4`` at spin ``spin``."""
    de = 2.0 * J * jnp.arange(-4, 5, 2, dtype=jnp.float32) + 2.0 * h * spin
    p = jnp.minimum(1.0, jnp.exp(-beta * de))
    return jnp.where(p >= 1.0, jnp.int32(_ONE), jnp.floor(p * 2.0**24).astype(jnp.int32))


def _zero_field(h) -> bool:
    """A concrete h = 0 (the common case): the threshold then depends on sσ alone (one select chain)."""
    return not isinstance(h, jax.core.Tracer) and bool(np.all(np.asarray(h) == 0))


def _select_threshold(sn, t):
    return jnp.where(sn <= -2, jnp.where(sn == -4, t[0], t[1]),
                     jnp.where(sn == 0, t[2], jnp.where(sn == 2, t[3], t[4])))


def _packed_flip(key, spins, neighbours, row, offset, t_up, t_down, zero_field: bool):
    """Metropolis on rows of one packed sublattice: ``(new spins, accepted)``.

    ``neighbours`` is each site's neighbour sum σ, ``row`` a uint32 column of the rows' global indices (the random
    word of a site is ``hash32(key, row · width + column + offset)``, so a slab of the lattice on one device draws
    the numbers the whole lattice would: ``physics.kernels.split``).
    """
    sn = (spins * neighbours).astype(jnp.int32)
    if zero_field:
        threshold = jnp.where(sn <= 0, jnp.int32(_ONE), jnp.where(sn == 2, t_up[3], t_up[4]))
    else:
        threshold = jnp.where(spins > 0, _select_threshold(sn, t_up), _select_threshold(sn, t_down))
    counter = (row * jnp.uint32(spins.shape[1]) + jax.lax.broadcasted_iota(jnp.uint32, spins.shape, 1)
               + jnp.uint32(offset))
    u = (hashing.hash32(key, counter) >> 8).astype(jnp.int32)
    accept = u < threshold
    return jnp.where(accept, -spins, spins), accept


def ising2d_metropolis(model: Ising, temperature) -> Kernel:
    """Metropolis for the 2D Ising model on packed sublattices with integer acceptance thresholds.

    Flipping ``s`` with neighbour sum ``σ`` costs ``ΔE = 2J sσ + 2h s``: ten possible values, so the acceptance
    probabilities ``min(1, e^{-βΔE})`` are computed once per step as 24-bit integer thresholds and each site
    compares the top 24 bits of its hashed word with its threshold (probabilities are rounded down to multiples of
    2^-24: a bias below 6e-8). The state's energy is an exact integer sum computed when read
    (:class:`PackedIsingState`), so a sweep is one loop fusion per sublattice.
    """
    _require_even(model.shape, "metropolis")
    rows, cols = model.shape
    half = rows * cols // 2
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)
    J = jnp.asarray(model.J, jnp.float32)
    h = jnp.asarray(model.h, jnp.float32)

    def init(key, x):
        del key
        x = jnp.asarray(x).astype(jnp.int8)
        black, white = pack_checkerboard(x)
        return PackedIsingState(black, white, J, h)

    zero_field = _zero_field(model.h)

    def half_sweep(key, spins, other, shift_even, offset, t_up, t_down):
        row = jax.lax.broadcasted_iota(jnp.uint32, (spins.shape[0], 1), 0)
        neighbours = _neighbour_sum(other, _even_rows(rows), shift_even)
        return _packed_flip(key, spins, neighbours, row, offset, t_up, t_down, zero_field)

    def step(key, state):
        t_up, t_down = _packed_thresholds(J, h, beta, 1.0), _packed_thresholds(J, h, beta, -1.0)
        black, accept_black = half_sweep(key, state.black, state.white, 1, 0, t_up, t_down)
        white, accept_white = half_sweep(key, state.white, black, -1, half, t_up, t_down)
        new = PackedIsingState(black, white, state.J, state.h)
        # acceptance: a reduction, removed by XLA unless the caller keeps the info
        count = jnp.sum(accept_black, dtype=jnp.int32) + jnp.sum(accept_white, dtype=jnp.int32)
        finite = jnp.isfinite(state.J) & jnp.isfinite(state.h)  # the energy is an exact integer sum times J, h
        info = LatticeInfo(count.astype(jnp.float32) / model.n, finite)
        return new, info

    return Kernel(init, step)
