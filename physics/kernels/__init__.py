"""Samplers and dynamics, each a ``Kernel(init, step)`` (see ``physics.kernels.base``).

``metropolis``, ``heat_bath`` and ``wolff`` pick their algorithm from the model's type (checkerboard sweeps for
lattice models, single-spin flips for the REM family, a constrained random walk on the sphere for the spherical
p-spin). ``parallel_tempering`` composes a replica-exchange move with any of them.
"""
from . import discrete as _discrete  # noqa: F401  (registers the REM-family kernels)
from . import lattice as _lattice  # noqa: F401  (registers the lattice kernels)
from . import sphere as _sphere  # noqa: F401  (registers the spherical kernels)
from .base import Kernel, batched, check_temperature, dispatch, register
from .multispin import multispin_ea_metropolis, multispin_metropolis
from .sphere import *  # noqa: F401,F403
from .sphere import __all__ as _sphere_all
from .split import SplitIsingState, split_metropolis
from .tempering import PTInfo, PTState, parallel_tempering


def metropolis(model, temperature, *args, **kwargs) -> Kernel:
    """Metropolis kernel for ``model`` at ``temperature``.

    One step is one sweep of n attempted single-spin moves on lattices and REM-family models, and one global
    constrained move (``step_size`` required) on the sphere.

    A concrete temperature must be a finite number > 0 (≥ 0 on the sphere, where T = 0 accepts only downhill
    moves); ``ValueError`` names it otherwise. Traced temperatures (inside ``jit``/``vmap``) are not checked.
    """
    builder = dispatch("metropolis", model)
    check_temperature(temperature, allow_zero=getattr(builder, "zero_temperature", False))
    return builder(model, temperature, *args, **kwargs)


def heat_bath(model, temperature, *args, **kwargs) -> Kernel:
    """Heat-bath (Glauber) kernel for ``model`` at ``temperature`` (one step = one sweep).

    A concrete temperature must be a finite number > 0 (``ValueError`` otherwise); traced ones are not checked.
    """
    builder = dispatch("heat_bath", model)
    check_temperature(temperature, allow_zero=getattr(builder, "zero_temperature", False))
    return builder(model, temperature, *args, **kwargs)


def wolff(model, temperature, *args, **kwargs) -> Kernel:
    """Wolff single-cluster kernel for a ferromagnetic Ising model (one step = one cluster flip)."""
    builder = dispatch("wolff", model)
    check_temperature(temperature, allow_zero=getattr(builder, "zero_temperature", False))
    return builder(model, temperature, *args, **kwargs)


__all__ = [
    "Kernel",
    "batched",
    "register",
    "check_temperature",
    "dispatch",
    "metropolis",
    "heat_bath",
    "wolff",
    "parallel_tempering",
    "PTState",
    "PTInfo",
    "split_metropolis",
    "multispin_metropolis",
    "multispin_ea_metropolis",
    "SplitIsingState",
    *_sphere_all,
]
