"""Lattice Monte Carlo kernels: checkerboard Metropolis and heat bath, and Wolff clusters.

One ``step`` of ``metropolis``/``heat_bath`` is one full sweep: the even sublattice (Σ coordinates even) is updated
in parallel, then the odd one. On a torus the two sublattices are independent sets only when every side length is
even, so odd side lengths are refused with a clear error (they would break detailed balance silently).

Random numbers come from ``physics.hashing``: one keyed hash per site per sweep with the site index as the counter
(each site is updated once per sweep, so counters never repeat under one step key). Metropolis acceptance
``u < exp(-β ΔE)`` and heat-bath probabilities ``P(s_i=+1) = 1/(1 + exp(-2β(f_i + h)))`` (Glauber 1963) satisfy
detailed balance with respect to ``exp(-βH)``; the χ² tests against exact enumeration check both.

Wolff (PRL 62:361, 1989): bonds between aligned neighbours are activated with probability ``1 - exp(-2βJ)``;
the connected component of a uniformly chosen seed site is flipped. One step = one cluster flip.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import hashing
from ..lattice import EdwardsAnderson, Ising
from .base import Kernel, register

__all__ = ["LatticeState", "PackedIsingState", "LatticeInfo", "WolffInfo", "checkerboard_masks", "pack_checkerboard",
           "unpack_checkerboard"]


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


def _sweep(model, update):
    """A sweep: ``update(x, field, u) -> new x`` applied to each sublattice in turn, energy tracked exactly."""
    shape = model.shape
    masks = checkerboard_masks(shape)

    def step(key, state):
        u = hashing.uniform01(key, _site_counter(shape))
        x, energy = state.x, state.energy
        flipped = jnp.zeros((), jnp.int32)
        for mask in masks:
            field = model.local_field(x)
            new = jnp.where(mask, update(x, field, u), x)
            changed = new != x
            # ΔE of flipping s_i is 2 s_i (f_i + h); sites of one sublattice do not interact.
            de = jnp.where(changed, 2.0 * x.astype(jnp.float32) * field, 0.0)
            energy = energy + jnp.sum(de)
            flipped = flipped + jnp.sum(changed, dtype=jnp.int32)
            x = new
        info = LatticeInfo(flipped.astype(jnp.float32) / model.n, jnp.isfinite(energy))
        return LatticeState(x, energy), info

    return step


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
    """Checkerboard Metropolis on any lattice model with a ``local_field`` (masked full-lattice updates)."""
    _require_even(model.shape, "metropolis")
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)

    def update(x, field, u):
        de = 2.0 * x.astype(jnp.float32) * field
        accept = u < jnp.exp(-beta * de)
        return jnp.where(accept, -x, x)

    return Kernel(_init(model), _sweep(model, update))


@register("heat_bath", Ising)
@register("heat_bath", EdwardsAnderson)
def lattice_heat_bath(model, temperature) -> Kernel:
    """Checkerboard heat bath: draw ``s_i = +1`` with probability ``1/(1 + exp(-2(f_i + h)/T))``, one sweep per step."""
    _require_even(model.shape, "heat_bath")
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)

    def update(x, field, u):
        p_up = jax.nn.sigmoid(2.0 * beta * field)
        return jnp.where(u < p_up, 1, -1).astype(x.dtype)

    return Kernel(_init(model), _sweep(model, update))


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
