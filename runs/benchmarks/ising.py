"""``deepglass bench ising``: 2D Ising Metropolis spin-flip attempts per nanosecond at T_c.

Engine: ``kernels.metropolis`` on ``lattice.Ising`` (packed checkerboard, hashed 24-bit acceptance) — R lattices
vmapped in one program, one sweep = N attempts each, compiled by ``physics.jit`` (512-bit vectors on a CPU).
Baseline, same process: a plain vectorized NumPy checkerboard (``np.roll`` neighbour sums, a table of
``exp(-βΔE)``, ``Generator.random`` uniforms) on one lattice.

Multi-spin rows: ``kernels.multispin.multispin_metropolis`` (32 replicas as the bits of uint32 words), counted as
replica-site updates per ns, against the best packed-kernel rate (over R) at the same L measured in the same run,
and against the numba peer (``runs/benchmarks/_numba_ising.py``: a parallel checkerboard on one lattice, the faster
of 1 thread and all cores; needs the ``bench`` extra, otherwise a row says it was skipped). On an accelerator the
full bench adds L = 4096 and, against the packed kernel alone, L = 8192 and 16384.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import physics
from physics import kernels, lattice, run, theory
from physics.kernels.multispin import REPLICAS, multispin_metropolis

from . import Row, timeit
from . import _numba_ising as numba_ising

__all__ = ["bench", "numpy_checkerboard_sweeps"]

_ACCELERATOR_ONLY_SIZES = (8192, 16384)  # 16384: 2^28 sites, 1 GiB of words for the 32 replicas


def numpy_checkerboard_sweeps(x: np.ndarray, beta: float, sweeps: int, rng: np.random.Generator) -> np.ndarray:
    """The baseline: ``sweeps`` Metropolis sweeps of a ±1 int8 lattice, vectorized over each sublattice."""
    parity = np.indices(x.shape).sum(axis=0) % 2
    masks = [parity == 0, parity == 1]
    table = np.minimum(1.0, np.exp(-beta * np.arange(-8, 9, 4))).astype(np.float32)  # ΔE = -8, -4, 0, 4, 8
    for _ in range(sweeps):
        for mask in masks:
            nsum = np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 1)
            de = 2 * x * nsum
            accept = rng.random(x.shape, dtype=np.float32) < table[(de + 8) // 4]
            x = np.where(mask & accept, -x, x).astype(np.int8)
    return x


def _engine_rate(size: int, replicas: int, sweeps: int) -> float:
    model = lattice.Ising((size, size))
    kern = kernels.batched(kernels.metropolis(model, theory.ising_critical_temperature()), replicas)
    key = jax.random.key(0)
    xs = jax.vmap(model.random_state)(jax.random.split(key, replicas))
    state = kern.init(key, xs)
    advance = physics.jit(lambda s: run(kern, key, s, sweeps, every=sweeps)[0])

    def go():
        jax.block_until_ready(advance(state))

    return size * size * replicas * sweeps / timeit(go) / 1e9


def _multispin_rate(size: int, sweeps: int, compile_with=physics.jit) -> float:
    model = lattice.Ising((size, size))
    kern = multispin_metropolis(model, theory.ising_critical_temperature())
    key = jax.random.key(0)
    # 32 random replicas drawn as random words: the (32, L, L) spins and the packing's per-bit intermediate would
    # take 8 and 32 GiB at L = 16384
    state = jax.jit(kern.init)(key, jnp.ones((size, size), jnp.int8))
    black, white = (jax.random.bits(k, state.black.shape, jnp.uint32) for k in jax.random.split(key))
    state = state._replace(black=black, white=white)
    advance = compile_with(lambda s: run(kern, key, s, sweeps, every=sweeps)[0])

    def go():
        jax.block_until_ready(advance(state))

    return size * size * REPLICAS * sweeps / timeit(go) / 1e9


def _numpy_rate(size: int, sweeps: int) -> float:
    rng = np.random.default_rng(0)
    x = np.where(rng.random((size, size)) < 0.5, 1, -1).astype(np.int8)
    beta = 1.0 / theory.ising_critical_temperature()
    return size * size * sweeps / timeit(lambda: numpy_checkerboard_sweeps(x, beta, sweeps, rng)) / 1e9


def _numba_rate(size: int, sweeps: int) -> float:
    rng = np.random.default_rng(0)
    x = np.where(rng.random((size, size)) < 0.5, 1, -1).astype(np.int8)
    beta = 1.0 / theory.ising_critical_temperature()
    best = 0.0
    for threads in numba_ising.thread_counts():  # the peer's best thread count on this machine
        numba_ising.set_threads(threads)
        best = max(best, size * size * sweeps / timeit(lambda: numba_ising.checkerboard_sweeps(x, beta, sweeps)) / 1e9)
    return best


def bench(quick: bool = False) -> list[Row]:
    accelerator = jax.default_backend() != "cpu"
    rows = []
    sizes = (256, 1024, 4096) if accelerator and not quick else (256, 1024)
    for size in sizes:
        sweeps = 2 if quick else max(2, 20 * 256**2 // size**2) if not accelerator else 50
        base = _numpy_rate(size, 1 if size > 1024 else max(1, min(sweeps // 2, 4)))
        if quick:
            replica_counts = (1,)
        elif accelerator:
            replica_counts = (1, max(1, 2**26 // size**2))
        else:
            replica_counts = (1, 8 if size == 256 else 2)
        packed = {}
        for replicas in replica_counts:
            rate = packed[replicas] = _engine_rate(size, replicas, sweeps)
            rows.append(Row(f"Metropolis L={size} R={replicas} at T_c", rate, "flips/ns",
                            "numpy checkerboard (1 lattice, CPU)", base))
        multispin = _multispin_rate(size, sweeps)
        rows.append(Row(f"Multi-spin Metropolis L={size} R={REPLICAS} (uint32 bits) at T_c", multispin, "flips/ns",
                        f"packed kernel L={size} R={max(packed, key=packed.get)} (best R, same run)",
                        max(packed.values()), "replica-site updates; the 32 replicas share each site's hash word"))
        if not quick:
            rows.append(Row(f"Multi-spin Metropolis L={size} R={REPLICAS} (uint32 bits) at T_c", multispin, "flips/ns",
                            "the same kernel under jax.jit (same run)", _multispin_rate(size, sweeps, jax.jit),
                            "what physics.jit's 512-bit vectors give on a CPU (the same program elsewhere)"))
        if numba_ising.available():
            rows.append(Row(f"Multi-spin Metropolis L={size} R={REPLICAS} (uint32 bits) at T_c", multispin,
                            "flips/ns", "numba parallel checkerboard (1 lattice, best thread count, same run)",
                            _numba_rate(size, max(sweeps, 4)), "the issue's target: ≥ 25× numba at L = 1024"))
        else:
            rows.append(Row(f"numba parallel checkerboard L={size}", float("nan"), "flips/ns",
                            note="numba not installed (pip install deepglass[bench]): peer baseline skipped"))
    if accelerator and not quick:
        # the issue 14 target on one GPU: ≥ 1000 flips/ns at L ≥ 4096; larger lattices against the packed kernel
        # alone (the NumPy and numba peers would take minutes at these sizes)
        for size in _ACCELERATOR_ONLY_SIZES:
            rows.append(Row(f"Multi-spin Metropolis L={size} R={REPLICAS} (uint32 bits) at T_c",
                            _multispin_rate(size, 50), "flips/ns", f"packed kernel L={size} R=1 (same run)",
                            _engine_rate(size, 1, 50), "the issue's GPU target: ≥ 1000 flips/ns at L ≥ 4096"))
    return rows
