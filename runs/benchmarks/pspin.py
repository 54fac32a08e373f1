"""``deepglass bench pspin``: energy+gradient throughput of the spherical p = 3 glass, R = 64 replicas.

Work count: a vmapped dense gradient is one GEMM ``(R, n)·(n, n²)`` (``2 n³ R`` flops) plus an O(n² R)
contraction, so the roofline is the BLAS GEMM of that shape, timed here in the same process (XLA ``jnp.dot``), and
the baseline is NumPy float32 doing the same GEMM plus contraction (``T.reshape(n², n) @ S``). Hashed couplings
regenerate the n³/6 nondecreasing tuples per evaluation; their figure is couplings generated (and used by every
replica) per second. On an accelerator the full bench adds n = 16384 and 32768 with R = 64, the sizes of the issue
14 target (one evaluation each, compiled ahead of time).
"""
from __future__ import annotations

import time

import jax
import numpy as np

import physics
from physics import spherical

from . import Row, timeit

__all__ = ["bench"]

_ONE_CALL_FROM = 8192  # from this n on, one evaluation is timed once (seconds to minutes each on one GPU)


def _dense_rows(n: int, replicas: int, min_time: float) -> list[Row]:
    key = jax.random.key(n)
    model = spherical.PSpin.random(key, n, 3)
    s = jax.vmap(spherical.random_state, (0, None))(jax.random.split(jax.random.key(1), replicas), n)
    f = physics.jit(jax.vmap(model.energy_and_grad))  # as the pspin job compiles it
    t_model = timeit(lambda: jax.block_until_ready(f(s)), min_time=min_time)

    t2 = model.tensors[0].reshape(n * n, n)
    gemm = jax.jit(lambda a, b: a @ b)
    st = s.T
    # the same GEMM in both orientations, (n², n)·(n, R) and (R, n)·(n, n²); the faster one is the roofline
    t_gemm = min(timeit(lambda: jax.block_until_ready(gemm(t2, st)), min_time=min_time),
                 timeit(lambda: jax.block_until_ready(gemm(s, t2.T)), min_time=min_time))

    t_np, s_np = np.asarray(t2), np.asarray(st)

    def numpy_eval():
        a = (t_np @ s_np).reshape(n, n, replicas)  # A_r = S·s_r for every replica: one GEMM
        g = -3.0 * np.einsum("ijr,jr->ir", a, s_np)
        return np.einsum("ir,ir->r", g, s_np) / 3.0, g

    t_numpy = timeit(numpy_eval, min_time=min_time)
    flops = 2.0 * n**3 * replicas + 4.0 * n**2 * replicas
    evals = replicas / t_model
    return [
        Row(f"dense n={n}: energy+grad evaluations/s (R={replicas})", evals, "eval/s",
            "numpy float32 GEMM + contraction", replicas / t_numpy),
        Row(f"dense n={n}: achieved GFLOP/s", flops / t_model / 1e9, "GFLOP/s",
            f"XLA GEMM ({n * n}×{n})·({n}×{replicas}), best orientation", 2.0 * n**3 * replicas / t_gemm / 1e9,
            note="target ratio ≥ 0.7"),
    ]


def _one_call_seconds(f, s) -> float:
    """Wall time of one call of ``f(s)``, compiled ahead of time: at the largest sizes one evaluation takes
    minutes, so the warm-up call of :func:`timeit` would double the cost."""
    compiled = f.lower(s).compile()
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(s))
    return time.perf_counter() - t0


def _hashed_rows(n: int, replicas: int, min_time: float, note: str = "") -> list[Row]:
    model = spherical.PSpin.random(jax.random.key(n), n, 3, couplings="hashed")
    s = jax.vmap(spherical.random_state, (0, None))(jax.random.split(jax.random.key(1), replicas), n)
    f = physics.jit(jax.vmap(model.energy_and_grad))  # as the pspin job compiles it
    if n >= _ONE_CALL_FROM:
        t = _one_call_seconds(f, s)
    else:
        t = timeit(lambda: jax.block_until_ready(f(s)), min_time=min_time, repeats=1)
    couplings = n * (n + 1) * (n + 2) / 6
    rows = [Row(f"hashed n={n}: couplings generated/s (R={replicas})", couplings / t, "coupling/s",
                note=f"{t:.3g} s per batched evaluation; memory O(n + b³), b={model.block}" + note)]
    if n <= 512:
        dense = spherical.PSpin.random(jax.random.key(n), n, 3)
        fd = jax.jit(jax.vmap(dense.energy_and_grad))
        t_d = timeit(lambda: jax.block_until_ready(fd(s)), min_time=min_time)
        rows.append(Row(f"hashed n={n}: energy+grad evaluations/s (R={replicas})", replicas / t, "eval/s",
                        "dense couplings, same n and R", replicas / t_d))
    return rows


def bench(quick: bool = False) -> list[Row]:
    """Dense p = 3 at n ∈ {128, 256, 512} (quick: 128, 256) with R = 64; hashed at the largest n that runs."""
    replicas = 64
    sizes = (128, 256) if quick else (128, 256, 512)
    min_time = 0.3 if quick else 1.0
    rows = []
    for n in sizes:
        rows.extend(_dense_rows(n, replicas, min_time))
    rows.extend(_hashed_rows(256 if quick else 512, replicas, min_time))
    if not quick:
        accelerator = jax.default_backend() != "cpu"
        rows.extend(_hashed_rows(2048, replicas if accelerator else 1, min_time))
        if accelerator:  # issue 14 §4: the recorded H100 figures, 9.7 s at n = 16384 and 77 s at n = 32768 (R = 64)
            rows.extend(_hashed_rows(16384, replicas, min_time, "; 9.7 s on an H100 before issue 14"))
            rows.extend(_hashed_rows(32768, replicas, min_time,
                                     "; issue 14 target ≤ 15.4 s (5× the 77 s recorded on an H100)"))
    return rows
