"""``deepglass bench rem``: hashed REM enumeration throughput (energies + exact density-of-states moments).

Figure 1: states per second of the enumeration's chunk programs at n = 26 (every state's hashed energy — one
Box–Muller pair per two states — then its 3 local moments scattered into the histogram of width 2^-11), against a
vectorized NumPy implementation of the same hash, the same pairs and the same histogram (``np.bincount``), timed
on the same chunks in the same process. The NumPy baseline uses ``np.cos``/``np.sin`` (its fastest way to the same
numbers); the JAX path a polynomial sincos (XLA's cos/sin cost 5× the hash on a CPU).
Figure 2: wall time of the whole n = 30 enumeration (2^30 states) with f(T) at 8 temperatures (``quick``: n = 24).
"""
from __future__ import annotations

import time

import jax
import numpy as np

from physics import rem

from . import Row, timeit

__all__ = ["bench"]

_M1, _M2 = np.uint32(0x21F0AAAD), np.uint32(0x735A2D97)


def _mix(x):
    x = x ^ (x >> np.uint32(16))
    x *= _M1
    x ^= x >> np.uint32(15)
    x *= _M2
    return x ^ (x >> np.uint32(15))


def _numpy_energies(words, start, size, scale):
    """Energies of states ``start … start + size − 1`` (hi word 0, start even): ``physics.rem``'s pair hash."""
    c = [np.uint32(v) for v in rem._C]
    k0, k1 = np.uint32(words[0]), np.uint32(words[1])
    with np.errstate(over="ignore"):
        a = _mix(np.uint32(0) ^ k1)
        b = _mix(np.uint32(0) ^ k0 ^ c[0]) ^ c[1]
        j = np.arange(start // 2, (start + size) // 2, dtype=np.uint32)
        x = _mix(j ^ k0)
        y, z = _mix(x ^ a), _mix(x ^ b)
        w1, w2, w3 = _mix(y ^ c[2]), _mix(z ^ c[3]), _mix(y ^ z ^ c[4])
    f = np.float32
    u1 = (w1 >> 8).astype(f) * f(2.0**-24) + (w2 >> 8).astype(f) * f(2.0**-48) + f(2.0**-49)
    r = f(scale) * np.sqrt(f(-2.0) * np.log(np.minimum(u1, f(1.0))))
    q = (w3 >> 30).astype(f)
    theta = (q + ((w3 >> 6) & np.uint32(0xFFFFFF)).astype(f) * f(2.0**-24) - f(0.5)) * f(np.pi / 2)
    e = np.empty(size, f)
    e[0::2] = r * np.cos(theta)
    e[1::2] = r * np.sin(theta)
    return e


def _numpy_chunk(words, start, size, scale):
    e = _numpy_energies(words, start, size, scale)
    b = np.floor(e * f32(1 / rem._H)).astype(np.int32)
    d = e - (b + f32(0.5)) * f32(rem._H)
    b -= b.min()
    return [np.bincount(b, weights=w) for w in (None, d, d * d)]


f32 = np.float32


def bench(quick: bool = False) -> list[Row]:
    n = 26
    model = rem.REM.random(jax.random.key(0), n)
    words = np.asarray(model.words)
    size = 2**20
    chunks = 2 if quick else 8  # JAX: the enumeration's own chunk programs (energies, then histogram)

    def jax_run():
        for c in range(chunks):
            e, m = rem._chunk_energies(model, np.uint32(c * size), np.uint32(0), size, False)
            out = rem._chunk_histogram(e, m, 2**16, 0)
        jax.block_until_ready(out)

    def numpy_run():
        for c in range(chunks):
            _numpy_chunk(words, c * size, size, model.scale)

    # same numbers: the baseline is the same computation
    e_jax = np.asarray(rem._chunk_energies(model, np.uint32(0), np.uint32(0), 4096, False)[0])
    e_np = _numpy_energies(words, 0, 4096, model.scale)
    agree = float(np.max(np.abs(e_jax - e_np)))
    t_jax = timeit(jax_run, min_time=0.5 if quick else 2.0, repeats=2)
    t_np = timeit(numpy_run, min_time=0.5 if quick else 2.0, repeats=2)
    rate_jax = chunks * size / t_jax
    rate_np = chunks * size / t_np
    rows = [Row(f"hashed REM enumeration n={n}: energies + DOS moments", rate_jax, "states/s",
                "vectorized NumPy, same hash, pairs and histogram", rate_np, f"max |ΔE| jax vs numpy = {agree:.2g}")]
    n_full = 24 if quick else 30
    big = rem.REM.random(jax.random.key(1), n_full)
    t0 = time.perf_counter()
    ex = rem.exact_thermodynamics(big, np.linspace(0.3, 2.0, 8))
    wall = time.perf_counter() - t0
    rows.append(Row(f"exact enumeration n={n_full} (2^{n_full} states), f(T) at 8 T", wall, "s",
                    note=f"{2**n_full / wall:.3g} states/s; ground energy/n = {ex.ground_energy / n_full:.4f}"))
    return rows
