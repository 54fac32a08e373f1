"""The one step loop of the engine.

``run`` drives any kernel ``(init, step)`` with ``lax.scan``. It is the only place in the code base where steps are
looped over, so chunking, checkpoints (``start``) and what is kept (``observe``) are written once.

Per-step keys are ``jax.random.fold_in(key, start + t)``: the random stream depends only on the run key and the
global step index, so a run split into chunks (or interrupted and resumed) draws exactly the numbers an
uninterrupted run draws.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["run", "default_observe"]


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
