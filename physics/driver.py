"""The one step loop of the engine, and how its programs are compiled.

``run`` drives any kernel ``(init, step)`` with ``lax.scan``. It is the only place in the code base where steps are
looped over, so chunking, checkpoints (``start``) and what is kept (``observe``) are written once. ``jit`` is
``jax.jit`` with the compiler options the engine's sweeps want (512-bit vectors on a CPU).

Per-step keys are ``jax.random.fold_in(key, start + t)``: the random stream depends only on the run key and the
global step index, so a run split into chunks (or interrupted and resumed) draws exactly the numbers an
uninterrupted run draws.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["run", "default_observe", "jit", "CPU_COMPILER_OPTIONS"]

CPU_COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


def jit(fn: Callable | None = None, **jit_kwargs):
    """``jax.jit(fn, **jit_kwargs)`` that, when it runs on a CPU backend, asks XLA for 512-bit vectors.

    Why: XLA:CPU lets LLVM vectorize its loop fusions for 256-bit registers by default (``xla_cpu_prefer_vector_width
    = 256``), which leaves half of an AVX-512 unit idle in the engine's elementwise and bitwise sweeps. On this
    project's 2-core AMD EPYC (AVX-512), same run against ``jax.jit`` (BENCHMARKS.md, 2026-12-01): multi-spin 2D
    Ising 1.45–1.54×, the packed generic 3D Ising sweep 1.36×, hashed p-spin couplings 1.37×, the REM chunk
    energies 1.8×; the float-exp-bound Gaussian EA sweeps 0.98–1.05× (no gain), and no surveyed size more than
    5 % slower. Integer and select arithmetic is unchanged by the vector width, and the configurations are bitwise
    those of ``jax.jit`` (tests/physics/test_driver.py); a float reduction may be reassociated over more lanes, so
    a sum can differ in its last bits from the plain ``jax.jit`` program (never between two runs of this one). On a
    CPU without AVX-512 LLVM falls back to what the machine has. Other backends get plain ``jax.jit``.

    The backend is read when the function is first called, not at import (importing must not start a backend).
    Usable as ``physics.jit(f, static_argnames=...)`` or as a decorator ``@physics.jit(static_argnames=...)``;
    ``.lower(*args)`` lowers the program the call would run.
    """
    if fn is None:
        return functools.partial(jit, **jit_kwargs)
    if "compiler_options" in jit_kwargs:
        raise ValueError("compiler_options: physics.jit sets them itself on a CPU; use jax.jit for other options")
    plain = jax.jit(fn, **jit_kwargs)
    wide = jax.jit(fn, compiler_options=CPU_COMPILER_OPTIONS, **jit_kwargs)

    def chosen():
        return wide if jax.default_backend() == "cpu" else plain

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return chosen()(*args, **kwargs)

    call.lower = lambda *args, **kwargs: chosen().lower(*args, **kwargs)
    return call


def default_observe(state: Any, info: Any) -> jax.Array:
    """Keep the (extensive) energy of the state."""
    del info
    return state.energy


def run(
    kernel,
    key: jax.Array,
    state: Any,
    num_steps: int,
    *,
    observe: Callable[[Any, Any], Any] | None = None,
    every: int = 1,
    start: int | jax.Array = 0,
):
    """Run ``num_steps`` steps of ``kernel`` from ``state``.

    Args:
      kernel: an object with ``step(key, state) -> (state, info)``.
      key: the run's PRNG key. Step ``t`` (global index ``start + t``) uses ``fold_in(key, start + t)``.
      state: the kernel state to start from (``kernel.init(key, x)``).
      num_steps: number of steps, a Python int; must be a multiple of ``every``.
      observe: ``observe(state, info) -> pytree`` evaluated after every ``every``-th step and stacked along a
        new leading axis. Defaults to the state's energy.
      every: keep one observation per ``every`` steps (the others are computed and dropped, so histories never
        fill memory by accident).
      start: global index of the first step (for chunked or resumed runs).

    Returns:
      ``(final_state, trace)`` with ``trace`` the stacked observations, leading axis ``num_steps // every``.

    Example:
      >>> state, energies = run(kernel, key, kernel.init(key, x0), 1000, every=10)
    """
    num_steps = int(num_steps)
    every = int(every)
    if every < 1:
        raise ValueError(f"every={every!r}: must be a positive integer")
    if num_steps < 0 or num_steps % every:
        raise ValueError(f"num_steps={num_steps!r}: must be a non-negative multiple of every={every}")
    observe = default_observe if observe is None else observe
    start = jnp.asarray(start, dtype=jnp.uint32)
    if num_steps == 0:
        return state, None

    # The carry holds the last Info so that `observe` sees the info of the step it follows.
    info_shape = jax.eval_shape(kernel.step, key, state)[1]
    info = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), info_shape)

    def one_step(carry, t):
        state, _ = carry
        return kernel.step(jax.random.fold_in(key, start + t), state), None

    def one_record(carry, r):
        steps = r * every + jnp.arange(every, dtype=jnp.uint32)
        carry, _ = jax.lax.scan(one_step, carry, steps)
        return carry, observe(*carry)

    (state, _), trace = jax.lax.scan(
        one_record, (state, info), jnp.arange(num_steps // every, dtype=jnp.uint32)
    )
    return state, trace
