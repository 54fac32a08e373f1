"""Ising models with arbitrary pairwise couplings, and their fast local-field single-flip kernels.

Normalization: configurations ``σ ∈ {−1, +1}^n`` (int8) and

    H(σ) = −½ Σ_{i≠j} J_ij σ_i σ_j − Σ_i h_i σ_i = −Σ_{i<j} J_ij σ_i σ_j − h·σ,

with J symmetric and zero on the diagonal (a diagonal would only add the constant −½ Σ J_ii). Hopfield's Hebb
couplings ``J = Σ_μ ξ^μ ξ^μᵀ / n`` (``bridges.hopfield``) and the Sherrington–Kirkpatrick glass
(:meth:`Pairwise.random`: ``J_ij ~ N(0, 1/n)``, so ``Var H = (n − 1)/2``, the CS variance of the Ising 2-spin,
``../shared/REFERENCES.md``; Sherrington & Kirkpatrick, PRL 35:1792, 1975) are instances.

Kernels (registered for ``physics.kernels.metropolis`` / ``heat_bath``): one step is one sweep over i = 0 … n−1;
the state caches the local fields ``f = J σ + h``, so a flip costs O(n):

    ΔE_i = 2 σ_i f_i,     on acceptance  σ_i → −σ_i,  f → f − 2 σ_i^{old} J_{·i},

accepted with ``min(1, e^{−βΔE})`` (Metropolis et al. 1953) or ``1/(1 + e^{βΔE})`` (Glauber 1963). Each site update
satisfies detailed balance for ``e^{−βH}``; the χ² test against exact enumeration is in
``tests/physics/test_pairwise.py``. The fields and the energy are recomputed from σ at the end of every sweep
(O(n²), the cost of the sweep itself), so float32 rounding never accumulates across sweeps. Random numbers: one
``physics.hashing.uniform01`` per site per sweep under the driver's step key, as in ``kernels.discrete``.

State indexing (``all_energies``) follows ``physics.rem``: index k ↔ ``σ_i = +1`` where bit i of k is 1.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import hashing
from .kernels.base import Kernel, register
from .kernels.discrete import FlipInfo, _heat_bath_accept, _metropolis_accept
from .rem import spins_from_index

__all__ = ["Pairwise", "PairState", "metropolis", "heat_bath"]

_MAX_TABLE_N = 22  # all_energies stores 2^n float32 numbers (16 MiB at n = 22)
_CHUNK = 1 << 12


@dataclasses.dataclass(frozen=True)
class Pairwise:
    """``H(σ) = −½ σᵀJσ − h·σ`` on ``σ ∈ {±1}^n`` (module docstring).

    Fields: ``couplings`` J (n, n) float32, symmetric, zero diagonal; ``field`` h (n,) float32; static ``n``.
    Build with :meth:`from_couplings` (validated) or :meth:`random` (SK).

    Example:
      >>> model = Pairwise.from_couplings(np.array([[0.0, 1.0], [1.0, 0.0]]))
      >>> model.energy(jnp.array([1, 1], jnp.int8))   # −1
    """

    couplings: jax.Array
    field: jax.Array
    n: int

    @classmethod
    def from_couplings(cls, couplings, field=None) -> Pairwise:
        """A model with the given J (symmetric, finite, zero diagonal; checked to 1e-6 relative) and h (default 0)."""
        j = np.asarray(couplings, dtype=np.float64)
        if j.ndim != 2 or j.shape[0] != j.shape[1] or j.shape[0] < 1:
            raise ValueError(f"couplings.shape={j.shape}: must be a square (n, n) matrix with n ≥ 1")
        n = j.shape[0]
        scale = max(float(np.max(np.abs(j))), 1e-30)
        if not np.all(np.isfinite(j)):
            raise ValueError("couplings: must be finite")
        if np.max(np.abs(j - j.T)) > 1e-6 * scale:
            raise ValueError(f"couplings: must be symmetric (max |J - Jᵀ| = {np.max(np.abs(j - j.T)):.3g})")
        if np.max(np.abs(np.diag(j))) > 1e-6 * scale:
            raise ValueError("couplings: the diagonal must be zero (J_ii only adds a constant; drop it)")
        h = np.zeros(n) if field is None else np.asarray(field, dtype=np.float64)
        if h.shape != (n,) or not np.all(np.isfinite(h)):
            raise ValueError(f"field.shape={h.shape}: must be ({n},) and finite")
        return cls(jnp.asarray(j, jnp.float32), jnp.asarray(h, jnp.float32), int(n))

    @classmethod
    def random(cls, key: jax.Array, n: int) -> Pairwise:
        """The Sherrington–Kirkpatrick glass: ``J_ij = J_ji ~ N(0, 1/n)`` (i < j), no field; ``Var H = (n−1)/2``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n={n!r}: must be an integer ≥ 2")
        g = jax.random.normal(key, (n, n), jnp.float32) / jnp.sqrt(jnp.float32(n))
        upper = jnp.triu(g, 1)
        return cls(upper + upper.T, jnp.zeros((n,), jnp.float32), int(n))

    def random_state(self, key: jax.Array) -> jax.Array:
        """A uniformly random configuration (int8 ±1, shape (n,))."""
        return (2 * jax.random.bernoulli(key, 0.5, (self.n,)).astype(jnp.int8) - 1).astype(jnp.int8)

    def local_field(self, x: jax.Array) -> jax.Array:
        """``f = J σ + h`` (the energy falls by 2|f_i| when σ_i is aligned with f_i)."""
        return self.couplings @ jnp.asarray(x).astype(jnp.float32) + self.field

    def energy(self, x: jax.Array) -> jax.Array:
        """The extensive energy ``−½ σᵀJσ − h·σ`` of one configuration (±1, shape (n,))."""
        xf = jnp.asarray(x).astype(jnp.float32)
        return -0.5 * jnp.dot(xf, self.couplings @ xf) - jnp.dot(self.field, xf)

    def energies_from_index(self, lo, hi) -> jax.Array:
        """Energies of the configurations with index words ``(lo, hi)`` (``physics.rem`` indexing)."""
        x = spins_from_index(lo, hi, self.n)
        return jax.vmap(self.energy)(x.reshape(-1, self.n)).reshape(jnp.shape(lo))

    def all_energies(self) -> jax.Array:
        """All 2^n energies, entry k ↔ σ_i = +1 where bit i of k is 1 (n ≤ 22)."""
        if self.n > _MAX_TABLE_N:
            raise ValueError(f"n={self.n}: all_energies stores 2^n numbers and allows n ≤ {_MAX_TABLE_N}")
        total = 2**self.n
        size = min(total, _CHUNK)
        starts = jnp.arange(0, total, size, dtype=jnp.uint32)

        def chunk(start):
            lo = start + jnp.arange(size, dtype=jnp.uint32)
            return self.energies_from_index(lo, jnp.zeros_like(lo))

        return jax.jit(lambda s: jax.lax.map(chunk, s).reshape(-1))(starts)


jax.tree_util.register_dataclass(Pairwise, data_fields=["couplings", "field"], meta_fields=["n"])


# --- kernels ---------------------------------------------------------------------------------------------------


class PairState(NamedTuple):
    """A configuration (int8 ±1, (n,)), its extensive energy, and the local fields ``J σ + h`` (float32, (n,))."""

    x: jax.Array
    energy: jax.Array
    local_field: jax.Array


def _local_field_sweeps(model: Pairwise, temperature, accept_rule) -> Kernel:
    n = model.n
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)

    def init(key, x):
        del key
        x = jnp.asarray(x).astype(jnp.int8)
        return PairState(x, model.energy(x), model.local_field(x))

    def step(key, state):
        u = hashing.uniform01(key, jnp.arange(n, dtype=jnp.uint32))

        def body(i, carry):
            x, f, count = carry
            s = x[i].astype(jnp.float32)
            ok = accept_rule(u[i], beta, 2.0 * s * f[i])
            x = x.at[i].set(jnp.where(ok, -x[i], x[i]))
            f = f - jnp.where(ok, 2.0 * s, 0.0) * model.couplings[:, i]  # J symmetric: column i = row i
            return x, f, count + ok.astype(jnp.int32)

        x, _, count = jax.lax.fori_loop(0, n, body, (state.x, state.local_field, jnp.zeros((), jnp.int32)))
        energy = model.energy(x)  # exact, from σ: no drift across sweeps
        info = FlipInfo(count.astype(jnp.float32) / jnp.float32(n), jnp.isfinite(energy))
        return PairState(x, energy, model.local_field(x)), info

    return Kernel(init, step)


def metropolis(model: Pairwise, temperature) -> Kernel:
    """Single-flip Metropolis sweeps with cached local fields (O(n) per flip) at ``temperature``."""
    return _local_field_sweeps(model, temperature, _metropolis_accept)


def heat_bath(model: Pairwise, temperature) -> Kernel:
    """Single-flip heat-bath (Glauber) sweeps with cached local fields (O(n) per flip) at ``temperature``."""
    return _local_field_sweeps(model, temperature, _heat_bath_accept)


register("metropolis", Pairwise)(metropolis)
register("heat_bath", Pairwise)(heat_bath)
