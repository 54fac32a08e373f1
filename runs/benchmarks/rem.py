"""``deepglass bench rem``: hashed REM enumeration throughput (energies + exact density-of-states moments).

Figure 1: states per second of the enumeration's chunk programs at n = 26 (every state's hashed energy — one
Box–Muller pair per two states — then its 3 local moments scattered into the histogram of width 2^-11), against a
vectorized NumPy implementation of the same hash, the same pairs and the same histogram (``np.bincount``), timed
on the same chunks in the same process. The NumPy baseline uses ``np.cos``/``np.sin`` (its fastest way to the same
numbers); the JAX path a polynomial sincos (XLA's cos/sin cost 5× the hash on a CPU).
Figures 2–5: ln Z, U, S and Y = Σp² at 8 temperatures over all 2^26 states (``quick``: 2^22), by
``exact_thermodynamics``'s streaming path and by its histogram path, each against a NumPy implementation of the
streaming algorithm (same hash; per chunk of 2^20, float32 ``np.exp`` weights relative to the chunk minimum, their
sum and two blocked BLAS dots, the same float64 fold), timed interleaved in the same run; then the two halves of a
chunk (energies; sums at 8 T).
Figure 6: wall time of the whole n = 30 enumeration (2^30 states) with ln Z, U, S, Y at 8 temperatures, streaming
against the histogram path in the same run (``quick``: n = 24).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from physics import rem
from physics.rem import enumerate as rem_enum

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


def _numpy_boltzmann(e, betas32, block=2**13):
    """One chunk's ``(m, count, sums (3, T))`` as ``physics.rem``'s ``_chunk_boltzmann``, in NumPy float32.

    The dots run per block of 8192 states (a batched BLAS sdot, summed in float64): one sdot over 2^20 float32
    products is off by ~3·10^-5, the blocks by ~10^-8, at the same speed.
    """
    m = e.min()
    d = e - m
    count = int(np.count_nonzero(d == 0))
    d[d == 0] = f32(2.0**100)  # the states at the minimum are counted, not summed (weight exactly 0)
    w = np.empty_like(d)
    rows, cols = (-1, 1, block), (-1, block, 1)
    sums = np.empty((3, betas32.size))
    for i, b in enumerate(betas32):
        np.multiply(d, -b, out=w)
        np.exp(w, out=w)
        sums[0, i] = w.sum()
        sums[1, i] = np.matmul(w.reshape(rows), d.reshape(cols)).sum(dtype=np.float64)
        sums[2, i] = np.matmul(w.reshape(rows), w.reshape(cols)).sum(dtype=np.float64)
    return float(m), count, sums


def _numpy_thermodynamics(words, n, scale, temps, size=2**20):
    """ln Z, U, S, Y of the n-spin hashed REM (n ≤ 32) at ``temps``: the streaming algorithm in NumPy."""
    betas = 1.0 / np.asarray(temps, np.float64)
    acc, pending = None, []
    for start in range(0, 2**n, size):
        pending.append(_numpy_boltzmann(_numpy_energies(words, start, size, scale), betas.astype(f32)))
        if len(pending) == 32 or start + size == 2**n:
            m, count, sums = (np.array(x) for x in zip(*pending, strict=True))
            acc, pending = rem_enum._fold(acc, m, count, sums, betas), []
    log_rel = np.log(acc.count) + np.log1p(acc.z / acc.count)
    gap = acc.n / (acc.count + acc.z)
    return log_rel - betas * acc.m, acc.m + gap, log_rel + betas * gap, (acc.count + acc.q) / (acc.count + acc.z) ** 2


def _interleaved(fns, rounds):
    """Best wall time of each of ``fns`` (no arguments, blocking), run in turn ``rounds`` times after a warm-up."""
    for f in fns:
        f()
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


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
    if quick:  # 2^22 states: a few seconds for the three interleaved enumerations
        model, n = rem.REM.random(jax.random.key(0), 22), 22
        words = np.asarray(model.words)
    rows += _thermodynamics_rows(model, words, n, quick)
    n_full = 24 if quick else 30
    big = rem.REM.random(jax.random.key(1), n_full)
    temps = np.linspace(0.3, 2.0, 8)
    walls = {}
    for method in ("stream", "histogram"):
        t0 = time.perf_counter()
        ex = rem.exact_thermodynamics(big, temps, method=method)
        walls[method] = time.perf_counter() - t0
    rows.append(Row(f"exact enumeration n={n_full} (2^{n_full} states), ln Z, U, S, Y at 8 T: streaming",
                    2**n_full / walls["stream"], "states/s", "histogram path, same run",
                    2**n_full / walls["histogram"],
                    f"{walls['stream']:.3g} s vs {walls['histogram']:.3g} s; ground energy/n = "
                    f"{ex.ground_energy / n_full:.4f}"))
    return rows


def _thermodynamics_rows(model, words, n, quick):
    """Figures 2–5: ln Z, U, S, Y at 8 T over all 2^n states, JAX (both paths) vs NumPy, interleaved."""
    temps = np.linspace(0.3, 2.0, 8)
    out = {}

    def stream():
        out["stream"] = rem.exact_thermodynamics(model, temps, method="stream")

    def histogram():
        out["histogram"] = rem.exact_thermodynamics(model, temps, method="histogram")

    def numpy():
        out["numpy"] = _numpy_thermodynamics(words, n, model.scale, temps)

    t_stream, t_hist, t_np = _interleaved([stream, histogram, numpy], 2 if quick else 3)
    st, hi = out["stream"], out["histogram"]
    diff_h = max(float(np.max(np.abs(a - b))) for a, b in zip(
        (st.log_z, st.energy, st.entropy), (hi.log_z, hi.energy, hi.entropy), strict=True))
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(
        (st.log_z, st.energy, st.entropy), out["numpy"][:3], strict=True))
    states = 2**n
    rows = [
        Row(f"exact ln Z, U, S, Y at 8 T, n={n}: streaming path", states / t_stream, "states/s",
            "NumPy, same algorithm and hash", states / t_np,
            f"{t_stream:.3g} s vs {t_np:.3g} s; max |Δ| of ln Z, U, S vs the histogram path {diff_h:.1g}, vs "
            f"NumPy {diff:.1g} (its np.cos/np.sin energies differ by ≤ 7e-6)"),
        Row(f"exact ln Z, U, S, Y at 8 T, n={n}: histogram path", states / t_hist, "states/s",
            "NumPy streaming, same quantities", states / t_np, f"{t_hist:.3g} s"),
    ]
    # where the time goes: one chunk of 2^20 states, the energies and the sums at 8 T separately
    size = 2**20
    lw = jnp.asarray(-1.0 / temps / np.log(2.0), jnp.float32)
    b32 = (1.0 / temps).astype(f32)
    e_jax = rem._chunk_energies(model, np.uint32(0), np.uint32(0), size, False)[0]
    e_np = _numpy_energies(words, 0, size, model.scale)
    t = _interleaved([
        lambda: jax.block_until_ready(rem._chunk_energies(model, np.uint32(0), np.uint32(0), size, False)),
        lambda: _numpy_energies(words, 0, size, model.scale),
        lambda: jax.block_until_ready(rem_enum._chunk_boltzmann(e_jax, lw, rem_enum._BLOCK)),
        lambda: _numpy_boltzmann(e_np, b32),  # it leaves e_np as it is (d = e − m is new)
    ], 5 if quick else 10)
    rows.append(Row("  of which: hashed energies, one chunk of 2^20", size / t[0], "states/s",
                    "NumPy, same hash", size / t[1], f"{t[0] * 1e3:.3g} ms vs {t[1] * 1e3:.3g} ms"))
    rows.append(Row("  of which: Boltzmann sums at 8 T, one chunk of 2^20", size / t[2], "states/s",
                    "NumPy float32 exp + sum + 2 blocked dots", size / t[3],
                    f"{t[2] * 1e3:.3g} ms vs {t[3] * 1e3:.3g} ms"))
    return rows
