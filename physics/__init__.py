"""Physics: models (couplings + energy), kernels, the scan driver, observables and exact theory.

Public modules: ``lattice``, ``spherical``, ``rem``, ``rg``, ``kernels``, ``observables``, ``theory``,
``hashing``; the driver ``run``.
"""
from .driver import run
from . import hashing, lattice, kernels, observables, theory, spherical, rem, rg

__all__ = ["run", "hashing", "lattice", "kernels", "observables", "theory", "spherical", "rem", "rg"]
