"""Physics: models (couplings + energy), kernels, the scan driver, observables and exact theory.

Public modules: ``lattice``, ``spherical``, ``rem``, ``rg``, ``kernels``, ``observables``, ``theory``,
``hashing``, ``pairwise`` (Ising models with given couplings: SK, Hopfield); the driver ``run`` and ``jit`` (``jax.jit``
with the engine's CPU compiler options — compile Monte Carlo programs with it).
"""
from . import hashing, kernels, lattice, observables, pairwise, rem, rg, spherical, theory
from .driver import jit, run

__all__ = ["run", "jit", "hashing", "lattice", "kernels", "observables", "theory", "spherical", "rem", "rg", "pairwise"]
