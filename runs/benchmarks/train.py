"""``deepglass bench train``: many networks in one vmapped program against the same networks one at a time.

Figure 1: wall time of training 64 MLPs (64-128-128-10, RMSProp, batch 64, on the digits) as one
``nets.train.fit_many`` call, against 64 sequential ``nets.train.fit`` calls of the same (already compiled)
program in the same process; the ratio is the speed-up of batching (the issue's target: ≥ 10× on this CPU).
Figure 2: examples per second (network · example forward + backward) of both, the same numbers as a rate.
Figure 3: the same on an infinite-digit stream (deformation of every batch included).
Figure 4: small networks (64-16-10, batch 16), where per-step overhead rather than arithmetic dominates.
Figure 5 (a second, differently based row — not the headline): the same vmapped program against what a typical
user writes, a Python loop over networks and steps calling one jitted ``(params, opt_state, x, y) -> …`` RMSProp
step, the minibatch indexed in the loop (no records). Its per-step dispatch cost is what batching also removes.
Compilation is excluded from every figure (one warm-up call each).

Why the headline ratio is small on a CPU: a compiled sequential run already executes its steps inside one
``lax.scan``, so per-step overhead is small, and the 64 vmapped networks do the same arithmetic as 64 separate
networks — the vmapped matrix products are batched ``dot_general`` ops (one batch dimension, the network),
which XLA:CPU runs as a loop of small GEMMs of the same shapes as the sequential ones. Batching pays only where
per-op overhead dominates (small networks: figure 4) and through larger fused elementwise ops.
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


def _python_loop(n: int, steps: int, digits, widths=(64, 128, 128, 10), batch: int = 64) -> list[Row]:
    """Figure 5: ``fit_many`` against a Python loop of a jitted RMSProp step (a typical hand-written loop)."""
    import numpy as np
    import optax

    keys = jax.random.split(jax.random.key(0), n)
    nets = jax.vmap(lambda k: mlp.init(k, widths))(keys)
    lrs = np.geomspace(1e-4, 1e-2, n).astype(np.float32)
    tx, ty = np.asarray(digits.train.x, np.float32), np.asarray(digits.train.y)

    def many():
        p, _ = train.fit_many(keys, nets, digits, learning_rate=jnp.asarray(lrs), optimizer="rmsprop",
                              batch_size=batch, num_steps=steps, eval_every=steps)
        jax.block_until_ready(p)

    # one compiled step for every network: the learning rate lives in the optimizer state
    opt = optax.inject_hyperparams(optax.rmsprop)(learning_rate=1e-3, decay=0.9, eps=1e-7)

    @jax.jit
    def step(params, state, x, y):
        def loss(p):
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(mlp.apply(p, x), y))

        g = jax.grad(loss)(params)
        u, state = opt.update(g, state, params)
        return optax.apply_updates(params, u), state

    one_nets = [jax.tree_util.tree_map(lambda a, i=i: a[i], nets) for i in range(n)]
    rng = np.random.default_rng(0)

    def loop():
        for i in range(n):
            p, st = one_nets[i], opt.init(one_nets[i])
            st.hyperparams["learning_rate"] = jnp.asarray(lrs[i])
            for _ in range(steps):
                idx = rng.integers(0, len(ty), batch)
                p, st = step(p, st, tx[idx], ty[idx])
        jax.block_until_ready(p)

    t_many, t_loop = _time(many), _time(loop)
    return [Row(f"{n} networks × {steps} steps, digits: vmapped vs Python loop of jitted steps (2nd baseline)",
                t_loop / t_many, "× faster", f"Python loop: {t_loop:.3g} s", 1.0, f"vmapped {t_many:.3g} s")]


def bench(quick: bool = False) -> list[Row]:
    digits = data.digits()
    n, steps = (16, 50) if quick else (64, 200)
    rows = _pair(n, steps, digits, "digits")
    rows += _pair(n, steps, digits, "digits, small nets 64-16-10 batch 16", widths=(64, 16, 10), batch=16)
    stream = train.Stream(sample=lambda k, b: data.infinite_digits(k, b, source=digits.train), test=digits.test,
                          eval_size=256)
    rows += _pair(n, steps // 2, stream, "infinite digits")
    rows += _python_loop(n, steps, digits)
    return rows
