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

__all__ = ["LatticeState", "LatticeInfo", "WolffInfo", "checkerboard_masks"]


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
    """Checkerboard Metropolis: flip ``s_i`` with probability ``min(1, exp(-ΔE_i / T))``, one sweep per step."""
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
        f"model=EdwardsAnderson: kernels.wolff needs a ferromagnet (frustrated couplings have no valid single-cluster"
        f" move); use metropolis, heat_bath or parallel_tempering"
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
