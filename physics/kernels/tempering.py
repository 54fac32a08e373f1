"""Parallel tempering (replica exchange) composed with any base kernel.

Hukushima & Nemoto, J. Phys. Soc. Jpn. 65:1604 (1996). One step = one step of the base kernel at every temperature
(vmapped), then swap attempts between neighbouring temperatures ``(i, i+1)`` for the pairs of one parity,
alternating even and odd pairs between steps. A swap is accepted with probability
``min(1, exp((β_i - β_{i+1}) (E_i - E_{i+1})))``, which satisfies detailed balance for the product measure
``Π_i exp(-β_i H(x_i))``.

Configurations (the whole base state) are exchanged, so ``state.x[i]`` is always the configuration at
``temperatures[i]`` and observables need no permutation; ``labels`` follow each walker so round trips
(bottom → top → bottom of the ladder) are counted.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .base import Kernel, check_temperature

__all__ = ["PTState", "PTInfo", "parallel_tempering"]


class PTState(NamedTuple):
    """``x`` and ``energy`` per temperature (leading axis), the base states, walker labels and round trips."""

    x: Any
    energy: jax.Array
    base: Any
    labels: jax.Array
    direction: jax.Array  # per position's walker: +1 last visited the bottom (index 0), -1 the top, 0 neither
    round_trips: jax.Array
    parity: jax.Array


class PTInfo(NamedTuple):
    """The base kernels' infos (leading axis = temperature) and, per neighbour pair, whether a swap was tried and
    accepted."""

    base: Any
    swap_attempted: jax.Array
    swap_accepted: jax.Array
    is_finite: jax.Array


def ladder(temperatures) -> tuple[jax.Array, jax.Array]:
    """A checked temperature ladder as float32 ``(temperatures, betas)``; ``ValueError`` names a bad one."""
    check_temperature(temperatures, name="temperatures")
    temps = jnp.asarray(temperatures, jnp.float32)
    if temps.ndim != 1 or temps.shape[0] < 2:
        raise ValueError(f"temperatures={temperatures!r}: need a 1-D list of at least 2 temperatures")
    return temps, 1.0 / temps


def parallel_tempering(make_kernel: Callable[[jax.Array], Kernel], temperatures) -> Kernel:
    """Replica exchange over ``temperatures`` with base kernels ``make_kernel(T)``.

    ``init(key, xs)`` takes one configuration per temperature (leading axis). ``temperatures`` may be traced.

    Example:
      >>> pt = parallel_tempering(lambda t: kernels.metropolis(model, t), jnp.linspace(1.5, 3.0, 8))
      >>> state = pt.init(key, jax.vmap(model.random_state)(jax.random.split(key, 8)))
    """
    temps, betas = ladder(temperatures)
    count = temps.shape[0]

    def init(key, xs):
        keys = jax.random.split(key, count)
        base = jax.vmap(lambda t, k, x: make_kernel(t).init(k, x))(temps, keys, xs)
        walkers = jnp.arange(count, dtype=jnp.int32)
        direction = jnp.zeros(count, jnp.int32).at[0].set(1).at[-1].set(-1)
        return PTState(base.x, base.energy, base, walkers, direction, jnp.zeros((), jnp.int32),
                       jnp.zeros((), jnp.int32))

    def step(key, state):
        key_base, key_swap = jax.random.split(key)
        keys = jax.random.split(key_base, count)
        base, base_info = jax.vmap(lambda t, k, s: make_kernel(t).step(k, s))(temps, keys, state.base)
        energy = base.energy
        pairs = jnp.arange(count - 1)
        attempted = (pairs % 2) == state.parity
        log_ratio = (betas[:-1] - betas[1:]) * (energy[:-1] - energy[1:])
        u = jax.random.uniform(key_swap, (count - 1,))
        accepted = attempted & (jnp.log(u) < log_ratio)
        up = jnp.concatenate([accepted, jnp.zeros(1, bool)])  # position i takes i+1
        down = jnp.concatenate([jnp.zeros(1, bool), accepted])  # position i takes i-1
        positions = jnp.arange(count)
        perm = jnp.where(up, positions + 1, jnp.where(down, positions - 1, positions))
        base = jax.tree_util.tree_map(lambda a: a[perm], base)
        labels = state.labels[perm]
        direction = state.direction[perm]
        # A walker arriving at the bottom after visiting the top completes a round trip.
        round_trips = state.round_trips + (direction[0] == -1).astype(jnp.int32)
        direction = direction.at[0].set(1).at[-1].set(-1)
        info = PTInfo(base_info, attempted, accepted, jnp.all(jnp.isfinite(base.energy)))
        new = PTState(base.x, base.energy, base, labels, direction, round_trips, 1 - state.parity)
        return new, info

    return Kernel(init, step)
