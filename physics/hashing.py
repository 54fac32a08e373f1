"""Counter-based random numbers: a keyed integer hash of (key, counter).

Drawing acceptance tests with ``jax.random`` (threefry) costs more than a whole Metropolis update on a CPU. Here a
uniform 32-bit word for counter ``c`` is two keyed rounds of the ``lowbias32`` integer finalizer
(C. Wellons, "Prospecting for hash functions", 2018)::

    h = mix(mix(c ^ k0) ^ k1),   mix(x) = x ^ x>>16; x *= 0x21f0aaad; x ^= x>>15; x *= 0x735a2d97; x ^= x>>15

where ``(k0, k1)`` are the two 32-bit words of a threefry key (already well mixed by ``fold_in``). One round is
statistically detectable in lattice Monte Carlo (DESIGN §5); two keyed rounds pass the exact χ² and Kaufman tests
in ``tests/physics``. Counters must be unique within one key: callers use site indices, offset by a distinct
multiple of the system size for each use within one step.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["key_words", "mix32", "hash32", "uniform01", "normal"]

_M1 = 0x21F0AAAD
_M2 = 0x735A2D97


def key_words(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The two uint32 words of a (typed or raw) threefry key."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    data = data.reshape(-1).astype(jnp.uint32)
    return data[0], data[-1]


def mix32(x: jax.Array) -> jax.Array:
    """The lowbias32 finalizer: a bijection of uint32 with full avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(_M1)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(_M2)
    return x ^ (x >> 15)


def hash32(key: jax.Array, counter: jax.Array) -> jax.Array:
    """Uniform uint32 words for an array of counters: two keyed rounds of ``mix32``."""
    k0, k1 = key_words(key)
    c = counter.astype(jnp.uint32)
    return mix32(mix32(c ^ k0) ^ k1)


def uniform01(key: jax.Array, counter: jax.Array, dtype=jnp.float32) -> jax.Array:
    """Uniform numbers in [0, 1) with 24 random bits (exactly representable in float32)."""
    return (hash32(key, counter) >> 8).astype(dtype) * dtype(2.0**-24)


def normal(key: jax.Array, counter: jax.Array, dtype=jnp.float32) -> jax.Array:
    """Standard normal numbers by Box–Muller from two hashed uniforms (counters 2c and 2c+1)."""
    c = counter.astype(jnp.uint32) * jnp.uint32(2)
    u1 = 1.0 - uniform01(key, c, dtype)  # (0, 1]
    u2 = uniform01(key, c + jnp.uint32(1), dtype)
    return jnp.sqrt(-2.0 * jnp.log(u1)) * jnp.cos(dtype(2.0 * jnp.pi) * u2)
