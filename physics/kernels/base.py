"""The kernel contract shared by every sampler and dynamics in ``physics.kernels``.

A kernel is a pair of pure functions (BlackJAX's contract, ``blackjax/base.py``)::

    init(key, x) -> State            # State has .x (configuration) and .energy (extensive energy)
    step(key, state) -> (State, Info)

Structure (model, proposal rule, sizes) is fixed when the kernel is built; numbers (temperature, step size, field)
are closed over as possibly traced values, so ``jax.vmap`` over temperatures compiles one program.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Kernel", "register", "dispatch", "batched", "check_temperature"]


class Kernel(NamedTuple):
    """A sampler or a dynamics: ``init(key, x) -> State`` and ``step(key, state) -> (State, Info)``."""

    init: Callable[[Any, Any], Any]
    step: Callable[[Any, Any], tuple[Any, Any]]


_REGISTRY: dict[tuple[str, type], Callable[..., Kernel]] = {}


def register(name: str, model_type: type):
    """Register ``builder(model, *args, **kwargs) -> Kernel`` as kernel ``name`` for models of ``model_type``.

    ``kernels.metropolis(model, T)`` is one public name for several algorithms (checkerboard sweeps on a lattice,
    single-spin flips on an REM, a random walk on the sphere); the model's type picks the implementation.
    """

    def deco(builder):
        _REGISTRY[(name, model_type)] = builder
        return builder

    return deco


def dispatch(name: str, model) -> Callable[..., Kernel]:
    """The builder registered for kernel ``name`` and this model's type (or a base class of it)."""
    for cls in type(model).__mro__:
        if (name, cls) in _REGISTRY:
            return _REGISTRY[(name, cls)]
    known = sorted({c.__name__ for (n, c) in _REGISTRY if n == name})
    raise ValueError(
        f"model={type(model).__name__}: kernel {name!r} is not defined for this model; "
        f"it is defined for {known or 'no model yet'}"
    )


def check_temperature(temperature, *, allow_zero: bool = False, name: str = "temperature"):
    """Refuse a concrete temperature that is not a finite number > 0 (≥ 0 where ``allow_zero``).

    Traced values (inside ``jit``/``vmap``) pass unchecked: a compiled program has no Python checks (DESIGN §3.7).
    """
    import jax
    import numpy as np

    if isinstance(temperature, jax.core.Tracer):
        return
    try:
        values = np.asarray(temperature, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={temperature!r}: must be a number") from None
    bad = ~np.isfinite(values) | ((values < 0) if allow_zero else (values <= 0))
    if np.any(bad):
        first = values.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        allowed = "a finite number ≥ 0 (T = 0: zero-temperature dynamics)" if allow_zero else "a finite number > 0"
        raise ValueError(f"{name}={float(first)!r}: must be {allowed}")


def batched(kernel: Kernel, size: int) -> Kernel:
    """``size`` independent chains of ``kernel`` as one kernel (leading axis), each with its own split key.

    Running a batch through ``physics.run`` lets ``observe`` see all chains at once (replica overlaps).
    """
    import jax

    def init(key, xs):
        return jax.vmap(kernel.init)(jax.random.split(key, size), xs)

    def step(key, states):
        return jax.vmap(kernel.step)(jax.random.split(key, size), states)

    return Kernel(init, step)
