"""``deepglass bench train``: many networks in one vmapped program against the same networks one at a time.

Figure 1: wall time of training 64 MLPs (64-128-128-10, RMSProp, batch 64, on the digits) as one
``nets.train.fit_many`` call, against 64 sequential ``nets.train.fit`` calls of the same (already compiled)
program in the same process; the ratio is the speed-up of batching (the issue's target: ≥ 10× on this CPU).
Figure 2: examples per second (network · example forward + backward) of both, the same numbers as a rate.
Figure 3: the same on an infinite-digit stream (deformation of every batch included).
Figure 4: small networks (64-16-10, batch 16), where per-step overhead rather than arithmetic dominates.
Compilation is excluded from every figure (one warm-up call each).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from nets import data, mlp, train

from . import Row

__all__ = ["bench"]


def _time(fn) -> float:
    fn()  # compile and warm up
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _pair(n: int, steps: int, dataset, label: str, widths=(64, 128, 128, 10), batch: int = 64) -> list[Row]:
    keys = jax.random.split(jax.random.key(0), n)
    nets = jax.vmap(lambda k: mlp.init(k, widths))(keys)
    lrs = jnp.geomspace(1e-4, 1e-2, n).astype(jnp.float32)
    kw = dict(optimizer="rmsprop", batch_size=batch, num_steps=steps, eval_every=steps)

    def many():
        p, h = train.fit_many(keys, nets, dataset, learning_rate=lrs, **kw)
        jax.block_until_ready(p)

    one_nets = [jax.tree_util.tree_map(lambda a, i=i: a[i], nets) for i in range(n)]

    def sequential():
        for i in range(n):
            p, h = train.fit(keys[i], one_nets[i], dataset, learning_rate=float(lrs[i]), **kw)
        jax.block_until_ready(p)

    t_many, t_seq = _time(many), _time(sequential)
    examples = n * steps * batch
    return [
        Row(f"{n} networks × {steps} steps, {label}: vmapped", t_seq / t_many, "× faster",
            f"{n} sequential fits: {t_seq:.3g} s", 1.0, f"vmapped {t_many:.3g} s"),
        Row(f"{label}: vmapped throughput", examples / t_many, "examples/s", "sequential throughput",
            examples / t_seq),
    ]


def bench(quick: bool = False) -> list[Row]:
    digits = data.digits()
    n, steps = (16, 50) if quick else (64, 200)
    rows = _pair(n, steps, digits, "digits")
    rows += _pair(n, steps, digits, "digits, small nets 64-16-10 batch 16", widths=(64, 16, 10), batch=16)
    stream = train.Stream(sample=lambda k, b: data.infinite_digits(k, b, source=digits.train), test=digits.test,
                          eval_size=256)
    rows += _pair(n, steps // 2, stream, "infinite digits")
    return rows
