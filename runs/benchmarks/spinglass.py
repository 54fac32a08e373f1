"""``deepglass bench spinglass``: multi-spin coded ±J Edwards–Anderson and 3D Ising Metropolis, and ±J heat bath.

Engine: ``kernels.multispin.multispin_ea_metropolis`` (32 ±J disorder samples as the bits of uint32 words) and
``multispin_metropolis`` on a 3D ``lattice.Ising`` (32 replicas), ``W`` words vmapped in one program (W = 1 on a CPU,
where one L = 32 lattice already holds 16,384 words per sublattice); one sweep = 32·W·N updates. Baseline, same
process: the current generic checkerboard kernel, ``kernels.metropolis`` on ``EdwardsAnderson`` (resp. the 3D ``Ising``)
with R independent samples vmapped, the best rate over R; and, because that kernel is being rewritten (issue 14
§2), the masked full-lattice checkerboard sweep it was when the 30× target was set (commit 7b3941c:
``lattice.local_field`` of the whole lattice, a hashed float uniform per site, ``jnp.where`` on each sublattice's
mask, energy tracked in the step), rebuilt here as :func:`masked_sweep_metropolis`. The figure is sample-site (or
replica-site) updates per ns (``quick``: the 3D ±J case alone, at L = 16); the issue's target is the ratio to the
masked sweep (3D ±J EA at L = 32: ≥ 30×), measured with 32 samples per word (the multispin module docstring says
why not 64). Not quick: parallel tempering too, ``kernels.multispin_parallel_tempering`` (3D ±J, L = 16, 8 rungs)
against ``kernels.parallel_tempering`` over ``kernels.metropolis`` on one sample, sample-site updates per ns.

Heat bath: ``multispin_ea_heat_bath`` (the same packing and comparison chain on d + 1 folded count classes) against
``kernels.heat_bath`` on ``EdwardsAnderson`` with R samples vmapped, best R, in the same run: 3D ±J at L = 32 and 2D
±J at L = 256 (``quick``: the 3D case at L = 16 alone).

Not quick, also 3D ±J at L = 16 and 24 (multi-spin against ``kernels.metropolis``): the per-update rate of the
multi-spin sweep depends on the line length W = L/2 words, and L = 18–30 run on padded lines (multispin docstring).

Compilation: the engine's kernels (multi-spin and today's generic ones) as the library compiles sweeps,
``physics.jit`` (512-bit vectors on a CPU); the masked sweep of 7b3941c as it ran then, under ``jax.jit``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

import physics
from physics import hashing, kernels, lattice, run
from physics.kernels.base import Kernel
from physics.kernels.lattice import LatticeState, checkerboard_masks
from physics.kernels.multispin import REPLICAS, multispin_ea_heat_bath, multispin_ea_metropolis, multispin_metropolis

from . import Row, timeit

__all__ = ["bench", "masked_sweep_metropolis"]


def masked_sweep_metropolis(model, temperature) -> Kernel:
    """The generic lattice Metropolis as of commit 7b3941c (the baseline of issue 14's targets): per sublattice, the
    whole lattice's local field, ``u < e^{-βΔE}`` with one hashed 24-bit uniform per site and sweep, the flips kept
    on the sublattice's mask, the energy updated by the flips' ΔE."""
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)
    masks = checkerboard_masks(model.shape)
    counter = jnp.arange(model.n, dtype=jnp.uint32).reshape(model.shape)

    def init(key, x):
        x = jnp.asarray(x).astype(jnp.int8)
        return LatticeState(x, model.energy(x))

    def step(key, state):
        u = hashing.uniform01(key, counter)
        x, energy = state.x, state.energy
        for mask in masks:
            de = 2.0 * x.astype(jnp.float32) * model.local_field(x)
            flip = mask & (u < jnp.exp(-beta * de))
            energy = energy + jnp.sum(jnp.where(flip, de, 0.0))
            x = jnp.where(flip, -x, x)
        return LatticeState(x, energy), None

    return Kernel(init, step)

# ±J EA temperatures near the glass transitions (3D T_g ≈ 1.1; 2D has T_g = 0, T = 1 is typical of simulations);
# 3D Ising at its critical point T_c ≈ 4.5115. Multi-spin cost does not depend on T; the generic kernel's hardly.
T_EA_3D, T_EA_2D, T_ISING_3D = 1.1, 1.0, 4.5115


def _ea_couplings(key, shape, count):
    return jax.vmap(lambda k: lattice.EdwardsAnderson.random(k, shape, "pm1").couplings)(jax.random.split(key, count))


def _rate(kern_of, inputs, updates_per_sweep: int, sweeps: int, compile_with=physics.jit) -> float:
    """Updates per ns of ``sweeps`` sweeps of ``kern_of(input)`` vmapped over the leading axis of ``inputs`` (a
    batch of one runs unbatched: on XLA:CPU a size-1 vmap axis changed the sweep's fusion and cost up to 2×),
    compiled as the library compiles sweeps (``physics.jit``) or, for the replaced kernel as it ran, ``jax.jit``."""
    key = jax.random.key(0)
    count = jax.tree.leaves(inputs)[0].shape[0]

    def start(inp, k):
        return kern_of(inp).init(k, inp[1])

    def advance(inp, state, k):
        return run(kern_of(inp), k, state, sweeps, every=sweeps)[0]

    if count == 1:
        inputs = jax.tree.map(lambda a: a[0], inputs)
        keys = key
        states = jax.jit(start)(inputs, keys)
        compiled = compile_with(advance)
    else:
        keys = jax.random.split(key, count)
        states = jax.jit(jax.vmap(start))(inputs, keys)
        compiled = compile_with(jax.vmap(advance))

    def go():
        jax.block_until_ready(compiled(inputs, states, keys))

    return updates_per_sweep * sweeps / timeit(go) / 1e9


def _multispin_ea_rate(shape, temperature, words: int, sweeps: int, builder=multispin_ea_metropolis) -> float:
    couplings = _ea_couplings(jax.random.key(1), shape, words * REPLICAS).reshape(words, REPLICAS, len(shape), *shape)
    spins = lattice.random_spins(jax.random.key(2), (words, REPLICAS, *shape))
    n = couplings[0, 0, 0].size
    return _rate(lambda inp: builder(inp[0], temperature), (couplings, spins), words * REPLICAS * n, sweeps)


def _generic_ea_rate(shape, temperature, samples: int, sweeps: int, kernel=kernels.metropolis,
                     compile_with=physics.jit) -> float:
    couplings = _ea_couplings(jax.random.key(1), shape, samples)
    spins = lattice.random_spins(jax.random.key(2), (samples, *shape))
    n = couplings[0, 0].size
    return _rate(lambda inp: kernel(lattice.EdwardsAnderson(shape, inp[0]), temperature),
                 (couplings, spins), samples * n, sweeps, compile_with)


def _multispin_ising_rate(shape, temperature, words: int, sweeps: int) -> float:
    model = lattice.Ising(shape)
    spins = lattice.random_spins(jax.random.key(2), (words, REPLICAS, *shape))
    dummy = jnp.zeros((words,), jnp.float32)
    return _rate(lambda inp: multispin_metropolis(model, temperature), (dummy, spins),
                 words * REPLICAS * model.n, sweeps)


def _generic_ising_rate(shape, temperature, replicas: int, sweeps: int, kernel=kernels.metropolis,
                        compile_with=physics.jit) -> float:
    model = lattice.Ising(shape)
    spins = lattice.random_spins(jax.random.key(2), (replicas, *shape))
    dummy = jnp.zeros((replicas,), jnp.float32)
    return _rate(lambda inp: kernel(model, temperature), (dummy, spins), replicas * model.n, sweeps, compile_with)


PT_SIDE, PT_LADDER = 16, tuple(float(t) for t in np.geomspace(0.8, 2.0, 8))


def _pt_rates(sweeps: int) -> tuple[float, float]:
    """(multi-spin PT, plain PT) sample-site updates per ns on 3D ±J EA at L = PT_SIDE over PT_LADDER."""
    shape, ladder, rungs = (PT_SIDE,) * 3, jnp.asarray(PT_LADDER, jnp.float32), len(PT_LADDER)
    couplings = _ea_couplings(jax.random.key(1), shape, REPLICAS)
    n = couplings[0, 0].size
    packed = _rate(lambda inp: kernels.multispin_parallel_tempering(inp[0], ladder),
                   (couplings[None], lattice.random_spins(jax.random.key(2), (1, rungs, REPLICAS, *shape))),
                   rungs * REPLICAS * n, sweeps)

    def plain_pt(inp):
        return kernels.parallel_tempering(lambda t: kernels.metropolis(lattice.EdwardsAnderson(shape, inp[0]), t),
                                          ladder)

    plain = _rate(plain_pt, (couplings[:1], lattice.random_spins(jax.random.key(2), (1, rungs, *shape))),
                  rungs * n, sweeps)
    return packed, plain


def bench(quick: bool = False) -> list[Row]:
    accelerator = jax.default_backend() != "cpu"
    l3 = 16 if quick else 32
    l2 = 64 if quick else 256
    sweeps = 2 if quick else (50 if accelerator else 10)
    # words / baseline batch: enough to fill the device, little more (a CPU is full with one L = 32 lattice)
    words = (lambda n: max(1, 2**21 // n)) if accelerator and not quick else (lambda n: 1)
    batches = (1,) if quick else ((1, 8) if not accelerator else (1, max(1, 2**24 // l3**3)))
    rows = []
    cases = [
        (f"3D ±J EA L={l3}", (l3,) * 3, T_EA_3D, _multispin_ea_rate, _generic_ea_rate, "sample-site updates"),
        (f"2D ±J EA L={l2}", (l2,) * 2, T_EA_2D, _multispin_ea_rate, _generic_ea_rate, "sample-site updates"),
        (f"3D Ising L={l3}", (l3,) * 3, T_ISING_3D, _multispin_ising_rate, _generic_ising_rate,
         "replica-site updates"),
    ]
    for name, shape, temperature, multispin_rate, generic_rate, what in cases[:1] if quick else cases:
        n = math.prod(shape)
        base = {r: generic_rate(shape, temperature, r, sweeps) for r in batches}
        best = max(base, key=base.get)
        masked = {r: generic_rate(shape, temperature, r, sweeps, masked_sweep_metropolis, jax.jit) for r in batches}
        best_masked = max(masked, key=masked.get)
        w = words(n * REPLICAS)
        rate = multispin_rate(shape, temperature, w, sweeps)
        figure = f"Multi-spin Metropolis {name}, {REPLICAS} per uint32 word × {w} words, T={temperature}"
        note = f"{what}; {REPLICAS} per word share each site's hash word"
        rows.append(Row(figure, rate, "updates/ns", f"kernels.metropolis R={best} (best R, same run)", base[best],
                        note))
        rows.append(Row(figure, rate, "updates/ns",
                        f"masked-sweep generic kernel of 7b3941c R={best_masked} (best R, same run)",
                        masked[best_masked], note))
    heat_bath_cases = [(name, shape, temperature) for name, shape, temperature, *_ in cases[:1 if quick else 2]]
    for name, shape, temperature in heat_bath_cases:
        n = math.prod(shape)
        base = {r: _generic_ea_rate(shape, temperature, r, sweeps, kernels.heat_bath) for r in batches}
        best = max(base, key=base.get)
        w = words(n * REPLICAS)
        rate = _multispin_ea_rate(shape, temperature, w, sweeps, multispin_ea_heat_bath)
        rows.append(Row(f"Multi-spin heat bath {name}, {REPLICAS} per uint32 word × {w} words, T={temperature}", rate,
                        "updates/ns", f"kernels.heat_bath R={best} (best R, same run)", base[best],
                        f"sample-site updates; {REPLICAS} per word share each site's hash word"))
    if not quick:  # sizes spin-glass studies use below L = 32; L = 24 runs on padded lines
        for side in (16, 24):
            shape = (side,) * 3
            base = {r: _generic_ea_rate(shape, T_EA_3D, r, sweeps) for r in batches}
            best = max(base, key=base.get)
            rows.append(Row(f"Multi-spin Metropolis 3D ±J EA L={side}, {REPLICAS} per uint32 word × 1 words, "
                            f"T={T_EA_3D}", _multispin_ea_rate(shape, T_EA_3D, 1, sweeps), "updates/ns",
                            f"kernels.metropolis R={best} (best R, same run)", base[best],
                            "L = 18–30: lines stored padded to a multiple of 8 words (multispin docstring)"))
        packed, plain = _pt_rates(sweeps)
        rows.append(Row(f"Multi-spin parallel tempering 3D ±J EA L={PT_SIDE}, {len(PT_LADDER)} rungs, 32 samples "
                        "per word", packed, "updates/ns", "kernels.parallel_tempering over kernels.metropolis, one "
                        "sample (same run)", plain, "sample-site updates; swaps per sample every step"))
    return rows
