"""Lattice spin models on periodic hypercubic lattices (2D and 3D).

Normalizations (REFERENCES.md, "2D Ising"):

* ``Ising(shape, J, h)``:  ``H(s) = -J Σ_<ij> s_i s_j - h Σ_i s_i``, each nearest-neighbour bond counted once
  (an L×L torus has 2N bonds).
* ``EdwardsAnderson``:     ``H(s) = -Σ_<ij> J_ij s_i s_j - h Σ_i s_i`` with ``J_ij ~ N(0, 1)`` ("gaussian") or
  ``±1`` with equal probability ("pm1"); Edwards & Anderson, J. Phys. F 5:965 (1975).

Spins are ``int8`` arrays of ±1 with the lattice shape; energies are extensive float32. Bonds are stored as an array
``couplings[mu, *site]`` for the bond between ``site`` and ``site + e_mu`` (periodic), so the local field is
``f_i = Σ_mu J_mu(i) s_{i+e_mu} + J_mu(i-e_mu) s_{i-e_mu}`` and flipping ``s_i`` changes the energy by
``ΔE_i = 2 s_i (f_i + h)``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Ising", "EdwardsAnderson", "random_spins", "local_field", "bond_energy_terms"]

SPIN_DTYPE = jnp.int8


def _check_shape(shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"shape={shape!r}: must be a tuple of 2 or 3 side lengths") from None
    if len(shape) not in (2, 3):
        raise ValueError(f"shape={shape!r}: must have 2 or 3 dimensions")
    if any(s < 2 for s in shape):
        raise ValueError(f"shape={shape!r}: every side length must be ≥ 2")
    return shape


def random_spins(key, shape: Sequence[int]) -> jax.Array:
    """Independent uniform ±1 spins (int8)."""
    return jnp.where(jax.random.bernoulli(key, 0.5, tuple(shape)), 1, -1).astype(SPIN_DTYPE)


def local_field(couplings: jax.Array, x: jax.Array) -> jax.Array:
    """``f_i = Σ_mu J_mu(i) s_{i+e_mu} + J_mu(i-e_mu) s_{i-e_mu}`` for bonds ``couplings[mu, *site]`` (float32).

    ``couplings`` may be a scalar (uniform ferromagnet) or an array of shape ``(d, *x.shape)``.
    """
    s = x.astype(jnp.float32)
    d = x.ndim
    c = jnp.broadcast_to(jnp.asarray(couplings, jnp.float32), (d, *x.shape))
    f = jnp.zeros(x.shape, jnp.float32)
    for mu in range(d):
        f = f + c[mu] * jnp.roll(s, -1, axis=mu) + jnp.roll(c[mu] * s, 1, axis=mu)
    return f


def bond_energy_terms(couplings, x: jax.Array) -> jax.Array:
    """``Σ_mu J_mu(i) s_i s_{i+e_mu}`` per site (the bond sum, each bond once)."""
    s = x.astype(jnp.float32)
    d = x.ndim
    c = jnp.broadcast_to(jnp.asarray(couplings, jnp.float32), (d, *x.shape))
    return sum(c[mu] * s * jnp.roll(s, -1, axis=mu) for mu in range(d))


def _energy(couplings, h, x) -> jax.Array:
    return -jnp.sum(bond_energy_terms(couplings, x)) - h * jnp.sum(x.astype(jnp.float32))


@dataclasses.dataclass(frozen=True)
class Ising:
    """Uniform nearest-neighbour Ising ferromagnet (or antiferromagnet, J < 0) in a uniform field h.

    Args:
      shape: lattice side lengths, 2 or 3 of them, each ≥ 2 (periodic boundaries).
      J: coupling (a traced number: a model with another J has the same compiled kernel).
      h: uniform field.

    Example:
      >>> model = Ising((16, 16))
      >>> model.energy(model.random_state(jax.random.key(0)))
    """

    shape: tuple[int, ...]
    J: jax.Array | float = 1.0
    h: jax.Array | float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "shape", _check_shape(self.shape))

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))

    @property
    def couplings(self):
        return jnp.asarray(self.J, jnp.float32)

    def energy(self, x: jax.Array) -> jax.Array:
        """Extensive energy ``-J Σ_<ij> s_i s_j - h Σ s_i``."""
        return _energy(self.couplings, jnp.asarray(self.h, jnp.float32), x)

    def random_state(self, key) -> jax.Array:
        return random_spins(key, self.shape)

    def local_field(self, x: jax.Array) -> jax.Array:
        """``J Σ_{j∼i} s_j + h``: flipping s_i costs ``2 s_i · local_field``."""
        return local_field(self.couplings, x) + jnp.asarray(self.h, jnp.float32)


@dataclasses.dataclass(frozen=True)
class EdwardsAnderson:
    """Edwards–Anderson spin glass: random nearest-neighbour couplings ``couplings[mu, *site]``.

    Build one with :meth:`random`; the couplings are an array leaf, so ``jax.vmap`` over disorder samples works.
    """

    shape: tuple[int, ...]
    couplings: jax.Array
    h: jax.Array | float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "shape", _check_shape(self.shape))

    @classmethod
    def random(cls, key, shape, disorder: str = "gaussian", h: float = 0.0) -> EdwardsAnderson:
        """Draw couplings: ``"gaussian"`` (N(0,1)) or ``"pm1"`` (±1 with probability ½)."""
        shape = _check_shape(shape)
        full = (len(shape), *shape)
        if disorder == "gaussian":
            j = jax.random.normal(key, full, jnp.float32)
        elif disorder == "pm1":
            j = jnp.where(jax.random.bernoulli(key, 0.5, full), 1.0, -1.0).astype(jnp.float32)
        else:
            raise ValueError(f"disorder={disorder!r}: must be 'gaussian' or 'pm1'")
        return cls(shape, j, h)

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))

    def energy(self, x: jax.Array) -> jax.Array:
        """Extensive energy ``-Σ_<ij> J_ij s_i s_j - h Σ s_i``."""
        return _energy(self.couplings, jnp.asarray(self.h, jnp.float32), x)

    def random_state(self, key) -> jax.Array:
        return random_spins(key, self.shape)

    def local_field(self, x: jax.Array) -> jax.Array:
        return local_field(self.couplings, x) + jnp.asarray(self.h, jnp.float32)


jax.tree_util.register_dataclass(Ising, data_fields=["J", "h"], meta_fields=["shape"])
jax.tree_util.register_dataclass(EdwardsAnderson, data_fields=["couplings", "h"], meta_fields=["shape"])
