"""``deepglass bench rem``: hashed REM enumeration throughput (energies + exact density-of-states moments).

Figure 1: states per second of ``physics.rem.density_of_states`` at n = 26 (every state's hashed energy, then its
7 local moments scattered into the histogram), against a vectorized NumPy implementation of the same hash and the
same histogram (``np.bincount``) timed on the same chunks in the same process.
Figure 2: wall time of the whole n = 30 enumeration (2^30 states) with f(T) at 8 temperatures (skipped with
``quick``; n = 24 instead).
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
    x = x * _M1
    x = x ^ (x >> np.uint32(15))
    x = x * _M2
    return x ^ (x >> np.uint32(15))


def _numpy_energies(words, lo, hi, scale):
    """The same hash and Box–Muller as ``physics.rem._hashed_normal``, in NumPy (the baseline)."""
    c = [np.uint32(v) for v in rem._C]
    k0, k1 = np.uint32(words[0]), np.uint32(words[1])
    with np.errstate(over="ignore"):
        x = _mix(lo ^ k0)
        y = _mix(x ^ _mix(hi ^ k1))
        z = _mix(x ^ _mix(hi ^ k0 ^ c[0]) ^ c[1])
        w1, w2, w3 = _mix(y ^ c[2]), _mix(z ^ c[3]), _mix(y ^ z ^ c[4])
    f = np.float32
    u1 = (w1 >> 8).astype(f) * f(2.0**-24) + (w2 >> 8).astype(f) * f(2.0**-48) + f(2.0**-49)
    u2 = (w3 >> 8).astype(f) * f(2.0**-24)
    return f(scale) * np.sqrt(-2.0 * np.log(np.minimum(u1, f(1.0)))) * np.cos(f(2 * np.pi) * u2)


def _numpy_chunk(words, start, size, scale):
    lo = np.arange(start, start + size, dtype=np.uint32)
    e = _numpy_energies(words, lo, np.zeros_like(lo), scale)
    b = np.floor(e * 64.0).astype(np.int64)
    d = (e - (b + 0.5) / 64.0).astype(np.float64)
    b -= b.min()
    p = np.ones_like(d)
    out = []
    for _ in range(7):
        out.append(np.bincount(b, weights=p))
        p = p * d
    return out


def bench(quick: bool = False) -> list[Row]:
    n = 26
    model = rem.REM.random(jax.random.key(0), n)
    words = np.asarray(model.words)
    size = 2**18
    # JAX: the enumeration's own chunk programs (energies, then histogram), over `chunks` chunks of 2^18
    chunks = 4 if quick else 16

    def jax_run():
        for c in range(chunks):
            e, m = rem._chunk_energies(model, np.uint32(c * size), np.uint32(0), size, False)
            out = rem._chunk_histogram(e, m, 4096, 0)
        jax.block_until_ready(out)

    def numpy_run():
        for c in range(chunks):
            _numpy_chunk(words, c * size, size, model.scale)

    # same numbers: the baseline is the same computation
    e_jax = np.asarray(rem._chunk_energies(model, np.uint32(0), np.uint32(0), 4096, False)[0])
    e_np = _numpy_energies(words, np.arange(4096, dtype=np.uint32), np.zeros(4096, np.uint32), model.scale)
    agree = float(np.max(np.abs(e_jax - e_np)))
    t_jax = timeit(jax_run, min_time=0.5 if quick else 2.0, repeats=2)
    t_np = timeit(numpy_run, min_time=0.5 if quick else 2.0, repeats=2)
    rate_jax = chunks * size / t_jax
    rate_np = chunks * size / t_np
    rows = [Row(f"hashed REM enumeration n={n}: energies + DOS moments", rate_jax, "states/s",
                "vectorized NumPy, same hash and histogram", rate_np, f"max |ΔE| jax vs numpy = {agree:.2g}")]
    n_full = 24 if quick else 30
    big = rem.REM.random(jax.random.key(1), n_full)
    t0 = time.perf_counter()
    ex = rem.exact_thermodynamics(big, np.linspace(0.3, 2.0, 8))
    wall = time.perf_counter() - t0
    rows.append(Row(f"exact enumeration n={n_full} (2^{n_full} states), f(T) at 8 T", wall, "s",
                    note=f"{2**n_full / wall:.3g} states/s; ground energy/n = {ex.ground_energy / n_full:.4f}"))
    return rows
