"""First-passage (folding) times of a funnel under single-spin-flip dynamics.

Kept apart from the models: it builds kernels, and ``physics.kernels`` imports the models to register its
single-flip kernels for them, so the kernels are imported inside the function (no import circle).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .models import Funnel

__all__ = ["folding_time"]



def folding_time(key, funnel: Funnel, temperature, *, num_starts: int = 32, max_sweeps: int = 1000,
                 q_fold: float = 1.0, kernel: str = "metropolis"):
    """First-passage times (in sweeps) from random starts to ``Q ≥ q_fold`` under single-spin-flip dynamics.

    Returns ``(times, folded)``: int32 times of shape (num_starts,) — the first sweep after which Q ≥ q_fold, or
    ``max_sweeps`` where it never happened (``folded`` False: a censored time, so means over them are lower
    bounds). ``temperature`` may be traced; ``kernel`` is "metropolis" or "heat_bath".
    """
    from .. import kernels  # kernels import the models (physics.rem): imported here, not at the top
    from ..driver import run

    if kernel not in ("metropolis", "heat_bath"):
        raise ValueError(f"kernel={kernel!r}: must be 'metropolis' or 'heat_bath'")
    if int(num_starts) < 1 or int(max_sweeps) < 1:
        raise ValueError(f"num_starts={num_starts!r}, max_sweeps={max_sweeps!r}: must be ≥ 1")
    k = getattr(kernels, kernel)(funnel, temperature)
    key_x, key_init, key_run = jax.random.split(key, 3)
    xs = jax.vmap(funnel.random_state)(jax.random.split(key_x, num_starts))
    need = int(math.ceil((float(q_fold) + 1.0) * funnel.n / 2.0 - 1e-9))

    def one(k_init, k_run, x):
        state = k.init(k_init, x)
        _, agree = run(k, k_run, state, int(max_sweeps), observe=lambda s, i: funnel.agreement(s.x))
        hit = agree >= need
        first = jnp.argmax(hit)
        return jnp.where(jnp.any(hit), first + 1, max_sweeps).astype(jnp.int32), jnp.any(hit)

    return jax.vmap(one)(jax.random.split(key_init, num_starts), jax.random.split(key_run, num_starts), xs)
