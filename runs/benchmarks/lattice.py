"""``deepglass bench lattice``: site updates per ns of the generic checkerboard kernels (3D Ising, Edwards–Anderson).

Engine: ``kernels.metropolis`` / ``kernels.heat_bath`` on ``lattice.Ising`` in 3D and ``lattice.EdwardsAnderson``
in 2D and 3D — sublattice-packed sweeps that compute only the half being updated, with no reduction inside the
sweep (``physics.kernels.lattice.PackedLatticeState``). Baseline, same process: the masked full-lattice sweep those
kernels replaced (kept below, :func:`masked_kernel`), which draws the same numbers and produces the bitwise same
configurations; it computes the local field and the update of the whole lattice for each half-sweep and tracks the
energy inside the sweep. The engine is compiled as the library compiles sweeps (``physics.jit``: 512-bit vectors on
a CPU); the baseline as it ran before (``jax.jit``), and, to separate the two gains, also under ``physics.jit``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import physics
from physics import hashing, kernels, lattice, run
from physics.kernels import Kernel
from physics.kernels.lattice import LatticeInfo, checkerboard_masks

from . import Row, timeit

__all__ = ["bench", "masked_kernel"]


class _MaskedState(NamedTuple):
    x: jax.Array
    energy: jax.Array


def masked_kernel(model, temperature, algorithm: str) -> Kernel:
    """The replaced generic sweep: each half-sweep updates the whole lattice and keeps one sublattice by a mask.

    ``algorithm`` is ``"metropolis"`` (``u < exp(-2 s f / T)``) or ``"heat_bath"`` (``s = +1`` iff
    ``u < sigmoid(2 f / T)``), with ``f = local_field(x)`` and ``u = uniform01(key, flat site index)``.
    """
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)
    masks = checkerboard_masks(model.shape)

    def update(x, field, u):
        if algorithm == "heat_bath":
            return jnp.where(u < jax.nn.sigmoid(2.0 * beta * field), 1, -1).astype(x.dtype)
        de = 2.0 * x.astype(jnp.float32) * field
        return jnp.where(u < jnp.exp(-beta * de), -x, x)

    def init(key, x):
        del key
        x = jnp.asarray(x).astype(jnp.int8)
        return _MaskedState(x, model.energy(x))

    def step(key, state):
        u = hashing.uniform01(key, jnp.arange(model.n, dtype=jnp.uint32).reshape(model.shape))
        x, energy = state.x, state.energy
        flipped = jnp.zeros((), jnp.int32)
        for mask in masks:
            field = model.local_field(x)
            new = jnp.where(mask, update(x, field, u), x)
            changed = new != x
            energy = energy + jnp.sum(jnp.where(changed, 2.0 * x.astype(jnp.float32) * field, 0.0))
            flipped = flipped + jnp.sum(changed, dtype=jnp.int32)
            x = new
        return _MaskedState(x, energy), LatticeInfo(flipped.astype(jnp.float32) / model.n, jnp.isfinite(energy))

    return Kernel(init, step)


def _advance(kern: Kernel, model, sweeps: int, compile_with=physics.jit):
    """A blocking call running ``sweeps`` sweeps in one compiled ``run`` (the energy read once, at the end),
    compiled as the engine compiles its sweeps (``physics.jit``) or with ``compile_with=jax.jit``."""
    key = jax.random.key(0)
    state = kern.init(key, model.random_state(key))
    advance = compile_with(lambda s: run(kern, key, s, sweeps, every=sweeps))
    jax.block_until_ready(advance(state))  # compile
    return lambda: jax.block_until_ready(advance(state))


def _interleaved_rates(calls, sites: int, rounds: int) -> list[float]:
    """Site updates per ns of each call: best of ``rounds`` rounds that time every call in turn, so that a shared
    machine's load falls on the engine and on its baseline alike."""
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            best[i] = min(best[i], timeit(call, min_time=0.1, repeats=1))
    return [sites / t / 1e9 for t in best]


def _cases(quick: bool):
    key = jax.random.key(1)
    side3, side2 = (16, 128) if quick else (32, 256)
    return [
        ("3D Ising", lattice.Ising((side3,) * 3), 4.5, "metropolis"),
        ("2D EA gaussian", lattice.EdwardsAnderson.random(key, (side2, side2), "gaussian"), 1.0, "heat_bath"),
        ("3D EA gaussian", lattice.EdwardsAnderson.random(key, (side3,) * 3, "gaussian"), 1.0, "metropolis"),
    ]


def bench(quick: bool = False) -> list[Row]:
    rows = []
    for name, model, temperature, algorithm in _cases(quick):
        sweeps = 10 if quick else max(2, int(np.ceil(2e6 / model.n)))
        engine_kernel, masked = getattr(kernels, algorithm)(model, temperature), masked_kernel(model, temperature,
                                                                                              algorithm)
        calls = [_advance(engine_kernel, model, sweeps), _advance(masked, model, sweeps, jax.jit),
                 _advance(masked, model, sweeps), _advance(engine_kernel, model, sweeps, jax.jit)]
        engine, base, base_wide, engine_plain = _interleaved_rates(calls, model.n * sweeps, 2 if quick else 6)
        figure = f"{name} {'×'.join(str(s) for s in model.shape)} {algorithm.replace('_', ' ')} T={temperature}"
        rows += [Row(figure, engine, "site updates/ns", "masked full-lattice sweep, jax.jit (the replaced kernel as it "
                     "ran, same run)", base, "the issue's comparison"),
                 Row(figure, engine, "site updates/ns", "masked sweep compiled by physics.jit too (same run)",
                     base_wide, "what the packed sublattices alone give"),
                 Row(figure, engine, "site updates/ns", "the same packed kernel under jax.jit (same run)",
                     engine_plain, "what physics.jit's 512-bit vectors give")]
    return rows
