"""Counter-based random numbers: a keyed integer hash of (key, counter).

Drawing acceptance tests with ``jax.random`` (threefry) costs more than a whole Metropolis update on a CPU. Here a
uniform 32-bit word for counter ``c`` is two keyed rounds of a ``lowbias32``-style integer finalizer
(C. Wellons, "Prospecting for hash functions", 2018, and his hash-prospector)::

    h = mix(mix(c ^ k0) ^ k1),   mix(x) = x ^ x>>16; x *= 0x21f0aaad; x ^= x>>15; x *= 0x735a2d97; x ^= x>>15

where ``(k0, k1)`` are the two 32-bit words of a threefry key (already well mixed by ``fold_in``; a raw
``jax.random.key(seed)`` has ``k0 = 0``). The prospector publishes these shifts with the multipliers
``0x21f0aaad, 0xd35a2d97`` (exact avalanche bias 0.1076); 0x735a2d97 is a widely copied variant, whose bias
measured below is the same within its error. Counters must be unique within one key: callers use site indices,
offset by a distinct multiple of the system size for each use within one step.

Why two rounds (``tests/physics/test_hashing.py``; one round means ``mix(c ^ k0) ^ k1``; 2^20 words a test).
Bit balance, the 32×32 bit-pair correlations between counters c and c + 1, c + 2, c + 256 and between step keys
t and t + 1, and the mean, variance and Kolmogorov–Smirnov test of ``uniform01`` pass for both (p ≥ 0.11 for one
round, ≥ 0.08 for two); so do ``tests/physics/test_lattice.py`` and ``test_kernels_discrete.py`` with one round
patched in (53 passed), although DESIGN §5 reports energies off by 4–6σ with one round in multi-spin code. Two
tests separate them:

- The arithmetic difference ``h(c + lag) − h(c) mod 2³²``: its top 10 bits are uniform for two rounds (χ² p ≥ 0.05
  at lags 1, 2 and 256 for each of eight step keys) and not for one (p between 2·10⁻³ and 10⁻⁸⁴ at lag 1,
  depending on the key; below 10⁻⁵¹ at lag 256 for every key). Neighbouring counters differ in a few low bits,
  and one round does not spread so small an input difference over the joint law of the two outputs, which is
  what comparing neighbouring uniforms sees and a bit-pair correlation (a degree-2 statistic) does not. This is
  in the default test run. Between step keys (inputs that differ in about 16 random bits) one round is not
  rejected at 2^20 words (p = 0.11).
- Strict avalanche (flipping one input bit flips each output bit with probability 1/2): over 2^26 random
  counters one round gives χ²/1024 = 1.82 and 1.78 for two seeds (max|z| 6.5), an RMS deviation from 1/2 of
  5.5·10⁻⁵, i.e. a prospector bias of 0.109 ± 0.003; two rounds give 0.94 (max|z| 2.8). At 2^22 counters the
  two cannot be told apart (one round 1.09 and 1.05, two rounds 1.10). A slow test runs it at 2^25.
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
