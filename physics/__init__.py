"""Physics: models (couplings + energy), kernels, the scan driver, observables and exact theory.

Public modules: ``lattice``, ``spherical``, ``rem``, ``rg``, ``kernels``, ``observables``, ``theory``,
``hashing``, ``pairwise`` (Ising models with given couplings: SK, Hopfield); the driver ``run``.
"""
from . import hashing, kernels, lattice, observables, pairwise, rem, rg, spherical, theory
from .driver import run

__all__ = ["run", "hashing", "lattice", "kernels", "observables", "theory", "spherical", "rem", "rg", "pairwise"]
