"""Argument checks shared by the bridges probes (``ValueError`` naming the argument, its value and what is allowed)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def check_int(value, name: str, lo: int):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name}={value!r}: must be an integer ≥ {lo}")
    return int(value)


def float_leaves(params, name: str):
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError(f"{name}: has no array leaves; must be a pytree of floating-point parameters")
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise ValueError(f"{name}: has a leaf of dtype {jnp.result_type(leaf)}; parameters must be floating point")
    return leaves
