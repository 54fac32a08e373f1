"""Job kind ``train``: MLPs trained with optax over a grid of widths × learning rates × weight decays × seeds.

For each width (a Python loop: shapes differ), the whole (learning rate, weight decay, seed) grid is one jitted
``nets.train.Trainer`` program, laid on the run's devices, each device training its networks in vmapped groups of
``NETWORKS_PER_PROGRAM`` (so a network's numbers do not depend on the device count); learning rate and weight
decay are injected optax hyperparameters, so the grid compiles once per width. Network ``(w, ·, ·, s)`` with the
run keys ``init_key, run_key`` of the pipeline is
``nets.train.fit(fold_in(fold_in(run_key, w), s), mlp.init(fold_in(fold_in(init_key, w), s), ...), ...)``.
Network ``seed`` s starts from the same initial weights and sees the same minibatches
in every (learning rate, weight decay) cell (common random numbers: the cells differ only by their
hyperparameters).

Series (dims ``width, learning_rate, weight_decay, seed, time``), one record per ``record_every`` steps:
``train_loss``, ``train_accuracy`` (on the training set, or a fixed batch of the infinite stream), ``test_loss``,
``test_accuracy`` (the held-out digits), ``weight_norm``, ``grad_norm``, ``batch_loss``, ``diverged`` (1 once a
divergence was detected: non-finite loss or accuracy collapse, see ``nets.train``).

Snapshots (``snapshot_steps``): every network's flattened parameters at those steps, in the HDF5 group
``snapshots/step_<s>`` (see :meth:`TrainJob.snapshots`).

Summaries: per network the final losses/accuracies, the best test accuracy, the step divergence was first recorded
(-1 never) and ``network_outcome`` (0 stable, 1 diverged, 2 under-trained: final test accuracy below ``min_accuracy``);
per (width, learning rate, weight decay) cell the fraction of seeds in each outcome (the phase diagram, with the
coordinate ``outcome`` naming them) and the mean and spread (standard deviation over seeds) of the final training
loss (the Choromanska comparison).
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nets import data as nets_data
from nets import mlp
from nets import train as nets_train

from ..config import ConfigError, option
from .base import Job, Series

__all__ = ["TrainJob", "TrainJobConfig"]

OUTCOMES = ("stable", "diverged", "under-trained")
_COMPILED: dict = {}
# Networks per compiled group on a device (``TrainJob._run_networks``): the same on every mesh, so a network's
# numbers do not depend on how many share its device. 8 keeps the padding of a device holding few networks small
# while a group is wide enough for the per-step overhead to stay that of a vmapped batch.
NETWORKS_PER_PROGRAM = 8
_SERIES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "weight_norm", "grad_norm", "batch_loss")
# XLA options of the training program: common-subexpression elimination off. A program over several devices goes
# through XLA's SPMD partitioner, whose clean-up merges equal subexpressions before the algebraic simplifier first
# runs; a one-device program skips it (shard_map lowers a one-device mesh without a manual computation), so the
# simplifier meets a different graph and rewrites the same arithmetic differently. Adam shows it: optax computes the
# bias corrections 1 - β^t once per parameter leaf; one use each (one device), the simplifier turns m / (1 - β₁^t)
# into m · (1 / (1 - β₁^t)); merged into one value with many uses (several devices), it leaves the division and later
# folds the quotient m̂ / (√v̂ + ε) into m / ((1 - β₁^t)(√v̂ + ε)), about 1 ulp apart. Without CSE at any stage both
# reach the main pipeline as the same per-device program.
_SAME_PROGRAM_ON_EVERY_MESH = {"xla_disable_hlo_passes": "cse"}


@dataclasses.dataclass(frozen=True)
class TrainJobConfig:
    """The ``[train]`` table."""

    dataset: Literal["digits", "infinite_digits"] = option("infinite_digits", help="finite split or deformations")
    hidden: tuple[int, ...] = option((512, 256, 128, 64), ge=1, min_len=1, help="hidden widths (64-…-10)")
    widths: tuple[int, ...] = option((), ge=1, distinct=True, help="if given: sweep, every hidden layer this width")
    activation: Literal["relu", "tanh", "gelu", "linear"] = option("relu")
    block: Literal["plain", "residual", "fractal"] = option("plain")
    weight_std: float = option(0.0, ge=0.0, help="σ_w (0: the activation's default)")
    bias_std: float = option(0.0, ge=0.0, help="σ_b")
    optimizer: Literal["sgd", "momentum", "adam", "rmsprop"] = option("rmsprop")
    learning_rates: tuple[float, ...] = option((1e-3,), gt=0.0, min_len=1, distinct=True)
    weight_decays: tuple[float, ...] = option((0.0,), ge=0.0, min_len=1, distinct=True)
    seeds: int = option(4, ge=1, help="independent networks per cell")
    batch_size: int = option(125, ge=1)
    steps: int = option(4000, ge=1)
    record_every: int = option(100, ge=1)
    schedule: Literal["constant", "cosine", "linear"] = option("constant")
    warmup_steps: int = option(0, ge=0)
    dropout: float = option(0.0, ge=0.0, lt=1.0)
    label_noise: float = option(0.0, ge=0.0, le=1.0)
    clip_norm: float = option(0.0, ge=0.0, help="0: no clipping")
    collapse_drop: float = option(0.2, ge=0.0, le=1.0, help="accuracy drop below the running best = divergence")
    stop_on_divergence: bool = option(False)
    eval_size: int = option(1024, ge=1, help="fixed stream batch for the training accuracy")
    min_accuracy: float = option(0.9, ge=0.0, le=1.0, help="final test accuracy below: under-trained")
    rmsprop_decay: float = option(0.9, ge=0.0, lt=1.0, help="rmsprop: decay of the squared-gradient average")
    eps: float = option(1e-7, gt=0.0, help="rmsprop: ε in √ν + ε")
    snapshot_steps: tuple[int, ...] = option((), ge=0, help="steps (multiples of record_every) to keep params at")

    def validate(self, prefix: str):
        if self.steps % self.record_every:
            raise ConfigError(f"{prefix}.steps = {self.steps}: must be a multiple of record_every "
                              f"= {self.record_every}")
        if self.warmup_steps > self.steps:
            raise ConfigError(f"{prefix}.warmup_steps = {self.warmup_steps}: must be ≤ steps = {self.steps}")
        bad = [s for s in self.snapshot_steps if s > self.steps or s % self.record_every]
        if bad or len(set(self.snapshot_steps)) != len(self.snapshot_steps):
            raise ConfigError(f"{prefix}.snapshot_steps = {list(self.snapshot_steps)}: must be distinct multiples of "
                              f"record_every = {self.record_every} in [0, steps = {self.steps}]")


def _mesh_of(carry) -> Mesh:
    """The mesh the pipeline laid the carry on (a one-device mesh for a carry that was never placed)."""
    leaf = jax.tree.leaves(carry)[0]
    if isinstance(leaf.sharding, NamedSharding):
        return leaf.sharding.mesh
    return Mesh(np.asarray(list(leaf.devices()), dtype=object), ("batch0",))


def _split_groups(tree, groups: int):
    """Leading axis ``groups · NETWORKS_PER_PROGRAM`` → ``(groups, NETWORKS_PER_PROGRAM)``."""
    return jax.tree.map(lambda a: a.reshape((groups, NETWORKS_PER_PROGRAM) + a.shape[1:]), tree)


def _each_group(fn, groups, num_groups):
    """``lax.map(fn, groups)`` as a loop whose trip count is a run-time number (``num_groups``, equal to the leading
    size of ``groups``): XLA inlines a loop it knows runs once, and fuses its body with what surrounds it, so one
    group would be compiled otherwise than each of several."""
    first = jax.tree.map(lambda a: a[0], groups)
    shapes = jax.eval_shape(fn, first)
    size = jax.tree.leaves(groups)[0].shape[0]
    out = jax.tree.map(lambda s: jnp.zeros((size,) + s.shape, s.dtype), shapes)

    def body(g, out):
        result = fn(jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, g, keepdims=False), groups))
        return jax.tree.map(lambda o, r: jax.lax.dynamic_update_index_in_dim(o, r, g, 0), out, result)

    return jax.lax.fori_loop(0, num_groups, body, out)


class TrainJob(Job):
    kind = "train"
    Config = TrainJobConfig

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        self.digits = nets_data.digits()
        self.width_values = tuple(o.widths) if o.widths else (o.hidden[0],)
        self.architectures = [
            (64, *((w,) * len(o.hidden) if o.widths else o.hidden), 10) for w in self.width_values
        ]
        grid = np.meshgrid(np.asarray(o.learning_rates, np.float32), np.asarray(o.weight_decays, np.float32),
                           np.arange(o.seeds), indexing="ij")
        self.grid_shape = grid[0].shape
        self.lr, self.wd, self.seed_index = (g.ravel() for g in grid)
        cfg = nets_train.TrainConfig(
            optimizer=o.optimizer, batch_size=o.batch_size, num_steps=o.steps, eval_every=o.record_every,
            dropout=o.dropout, label_noise=o.label_noise, clip_norm=o.clip_norm, schedule=o.schedule,
            warmup_steps=o.warmup_steps, collapse_drop=o.collapse_drop, stop_on_divergence=o.stop_on_divergence,
            decay=o.rmsprop_decay, eps=o.eps, snapshot_steps=tuple(sorted(o.snapshot_steps)),
        )
        if o.dataset == "digits":
            dataset = self.digits
        else:
            train_split = self.digits.train
            dataset = nets_train.Stream(
                sample=lambda k, b: nets_data.infinite_digits(k, b, source=train_split),
                test=self.digits.test, eval_size=o.eval_size)
        cached = _COMPILED.get(o)
        if cached is None:  # one compiled program per configuration, shared by run, resume and repeated jobs
            self.trainer = nets_train.Trainer(dataset, cfg)
            self._advance = jax.jit(self._advance_impl, static_argnames=("num", "mesh"),
                                    compiler_options=_SAME_PROGRAM_ON_EVERY_MESH)
            self._init = jax.jit(self._init_impl)
            if len(_COMPILED) > 16:
                _COMPILED.clear()
            _COMPILED[o] = (self.trainer, self._advance, self._init)
        else:
            self.trainer, self._advance, self._init = cached

    # --- sizes ------------------------------------------------------------------------------------------
    @property
    def total_steps(self):
        return self.options.steps

    @property
    def record_every(self):
        return self.options.record_every

    @property
    def batch_ndim(self):
        return 1  # every network stack is (learning rate × weight decay × seed, …)

    @property
    def default_chunk_steps(self):
        o = self.options
        return max(o.record_every, (o.steps // 10) // o.record_every * o.record_every)

    @property
    def num_networks(self) -> int:
        return len(self.lr)

    def estimate_bytes(self):
        o = self.options
        params = sum(sum(a * b + b for a, b in zip(w[:-1], w[1:])) for w in self.architectures)
        activations = max(o.batch_size, o.eval_size, len(self.digits.train.y)) * 4 * sum(
            max(w) for w in self.architectures)
        # params, grads, two optimizer moments, the update: ~5 copies per network, float32
        return self.num_networks * (params * 5 * 4 + activations)

    # --- layout -----------------------------------------------------------------------------------------
    def layout(self):
        dims = ("width", "learning_rate", "weight_decay", "seed", "time")
        out = {name: Series(dims) for name in _SERIES}
        out["diverged"] = Series(dims, np.int8)
        return out

    def coords(self):
        o = self.options
        return {
            "width": np.asarray(self.width_values, np.int64),
            "learning_rate": np.asarray(o.learning_rates, np.float64),
            "weight_decay": np.asarray(o.weight_decays, np.float64),
            "seed": np.arange(o.seeds),
        }

    # --- state ------------------------------------------------------------------------------------------
    def _network_keys(self, key, w_index, seeds):
        """Per network ``(data_key, run_key)``: ``split(fold_in(fold_in(key, w_index), seed))``, the split
        ``nets.train.fit`` makes, so network (w, ·, ·, s) is exactly ``fit(fold_in(fold_in(key, w), s), ...)``."""
        keys = jax.vmap(lambda s: jax.random.split(jax.random.fold_in(jax.random.fold_in(key, w_index), s)))(seeds)
        return keys[:, 0], keys[:, 1]

    def init(self, key):
        return self._init(key)

    def _init_impl(self, key):
        o = self.options
        states = []
        for w_index, arch in enumerate(self.architectures):
            def one(seed, lr, wd, arch=arch, w_index=w_index):
                k = jax.random.fold_in(jax.random.fold_in(key, w_index), seed)
                net = mlp.init(k, arch, activation=o.activation, block=o.block,
                               weight_std=o.weight_std or None, bias_std=o.bias_std)
                return self.trainer.init(net, lr, wd)

            states.append(jax.vmap(one)(jnp.asarray(self.seed_index, jnp.uint32), jnp.asarray(self.lr),
                                        jnp.asarray(self.wd)))
        return tuple(states)

    def _advance_impl(self, carry, key, start, seeds, num_groups, num, mesh):
        records = num // self.options.record_every
        spec = PartitionSpec(mesh.axis_names)

        def on_device(carry, key, start, seeds, num_groups):
            new_states, per_width = [], []
            for w_index, state in enumerate(carry):
                state, rec = self._run_networks(state, key, w_index, seeds, start, records, num_groups)
                rec = {name: rec[name] for name in _SERIES}
                # diverged by the time of each record: the divergence step is recorded in the state
                rec_steps = start + self.options.record_every * jnp.arange(1, records + 1, dtype=jnp.int32)
                d = state.diverged_step[:, None]
                rec["diverged"] = ((d >= 0) & (d < rec_steps[None, :])).astype(jnp.int8)
                new_states.append(state)
                per_width.append(rec)
            return tuple(new_states), tuple(per_width)

        # check_vma off: _each_group's zero-filled output buffers are the same on every device, what fills them
        # is not; shard_map's type check would want them cast to device-varying first (same numbers).
        new_states, per_width = jax.shard_map(on_device, mesh=mesh, in_specs=(spec, PartitionSpec(), PartitionSpec(),
                                                                             spec, PartitionSpec()), out_specs=spec,
                                                check_vma=False)(
            carry, key, start, seeds, num_groups)
        series = {k: jnp.stack([p[k].reshape(*self.grid_shape, records) for p in per_width]) for k in per_width[0]}
        return new_states, series

    def _run_networks(self, state, key, w_index, seeds, start, records, num_groups):
        """This device's networks of one width, ``NETWORKS_PER_PROGRAM`` at a time (the last group padded with copies
        of the first network, whose results are dropped).

        A vmapped program's rounding depends on how many networks it holds: XLA:CPU lowers the reductions of the
        step (log Σ exp over the classes, means over the examples) and the batched matrix products differently for
        different leading sizes, so a network sharing a device with 3 others would get other numbers than alone
        (measured: losses, gradient norms and, after a few hundred steps, parameters). Within a program of fixed
        size a network's numbers do not depend on its slot or on its neighbours, so every device running groups
        of the same size computes every network as every other mesh does.
        Measured (12–24 networks, 64-32-32-10, 100 steps, finite digits and the stream): sgd, momentum, rmsprop and
        adam bitwise on 1, 2 and 4 CPU devices; adam needs the program compiled without CSE
        (``_SAME_PROGRAM_ON_EVERY_MESH``), else the 1-device run is ~1 ulp off from the first step.
        """
        data_keys, run_keys = self._network_keys(key, w_index, seeds)
        count = seeds.shape[0]
        padded = -(-count // NETWORKS_PER_PROGRAM) * NETWORKS_PER_PROGRAM
        slot = jnp.where(jnp.arange(padded) < count, jnp.arange(padded), 0)
        state_in = jax.tree.map(lambda a: a[slot], state)
        if self.trainer.finite:
            # A finite dataset is shared, yet broadcast to one copy per network of the group: vmapped over a shared
            # input, XLA would merge the group's evaluation products into one matrix product; with the batch axis on
            # both operands each network's product is its own, as in nets.train.fit.
            shared = self.trainer.arrays(data_keys[0])

            def group(args):
                k, st = args
                arrays = jax.tree.map(lambda a: jnp.broadcast_to(a, (k.shape[0],) + a.shape), shared)
                return jax.vmap(lambda k1, s1, a1: self.trainer.run(k1, s1, a1, start, records))(k, st, arrays)

            groups = (run_keys[slot], state_in)
        else:
            def group(args):
                k, st, dk = args
                arrays = jax.vmap(self.trainer.arrays)(dk)
                return jax.vmap(lambda k1, s1, a1: self.trainer.run(k1, s1, a1, start, records))(k, st, arrays)

            groups = (run_keys[slot], state_in, data_keys[slot])
        out_state, rec = _each_group(group, _split_groups(groups, padded // NETWORKS_PER_PROGRAM), num_groups)
        out_state, rec = jax.tree.map(lambda a: a.reshape((padded,) + a.shape[2:])[:count], (out_state, rec))
        return out_state, rec

    def advance(self, carry, key, start, num):
        mesh = _mesh_of(carry)
        # laid out like the networks (every process supplies the same global array and keeps its part)
        host = np.asarray(self.seed_index, np.uint32)
        seeds = jax.make_array_from_callback(host.shape, NamedSharding(mesh, PartitionSpec(mesh.axis_names)),
                                             lambda index: host[index])
        per_device = len(host) // mesh.devices.size
        num_groups = jnp.asarray(-(-per_device // NETWORKS_PER_PROGRAM), jnp.int32)
        return self._advance(carry, key, jnp.asarray(start, jnp.int32), seeds, num_groups, num, mesh)

    def snapshots(self, carry, start, end):
        """Parameters at the ``snapshot_steps`` that fall in this chunk (step 0 with the first chunk).

        ``{"step_<s>": {"width_<w>": (learning_rate, weight_decay, seed, P) float32, "spec_width_<w>": JSON}}``:
        every network's parameters flattened by ``nets.mlp.flatten`` (the order of ``jax.tree_util`` leaves);
        ``nets.mlp.unflatten(nets.mlp.from_spec(spec), row)`` rebuilds one network.
        """
        steps = self.trainer.config.snapshot_steps
        due = [(i, s) for i, s in enumerate(steps) if start < s <= end or (s == 0 and start == 0)]
        out = {}
        for i, s in due:
            arrays = {}
            for w, state in zip(self.width_values, carry):
                snap = jax.tree_util.tree_map(lambda a, i=i: a[:, i], state.snapshots)
                flat = jax.vmap(lambda p: mlp.flatten(p)[0])(snap)
                arrays[f"width_{w}"] = np.asarray(flat).reshape(*self.grid_shape, flat.shape[-1])
                one = jax.tree_util.tree_map(lambda a: a[0], snap)
                arrays[f"spec_width_{w}"] = np.asarray(mlp.spec(one).encode())
            out[f"step_{s:08d}"] = arrays
        return out

    # --- summaries and plots ----------------------------------------------------------------------------
    def summarize(self, series):
        o = self.options
        dims = ("width", "learning_rate", "weight_decay", "seed")
        cell = ("width", "learning_rate", "weight_decay")
        diverged = series["diverged"].astype(bool)
        any_div = diverged.any(axis=-1)
        first = np.where(any_div, np.argmax(diverged, axis=-1), -1)
        div_step = np.where(any_div, (first + 1) * o.record_every, -1)
        final_test = series["test_accuracy"][..., -1].astype(np.float64)
        outcome = np.where(any_div, 1, np.where(~(final_test >= o.min_accuracy), 2, 0)).astype(np.int8)
        final_loss = series["train_loss"][..., -1].astype(np.float64)
        finite = np.isfinite(final_loss)
        with np.errstate(invalid="ignore", divide="ignore"):
            n_fin = finite.sum(axis=-1)
            loss_mean = np.where(n_fin > 0, np.nansum(np.where(finite, final_loss, 0.0), axis=-1)
                                 / np.maximum(n_fin, 1), np.nan)
            dev = np.where(finite, final_loss - loss_mean[..., None], 0.0)
            loss_std = np.where(n_fin > 1, np.sqrt(np.sum(dev**2, axis=-1) / np.maximum(n_fin - 1, 1)), np.nan)
        fractions = np.stack([(outcome == i).mean(axis=-1) for i in range(len(OUTCOMES))], axis=-1)
        return {
            "final_train_loss": (dims, final_loss),
            "final_test_loss": (dims, series["test_loss"][..., -1].astype(np.float64)),
            "final_train_accuracy": (dims, series["train_accuracy"][..., -1].astype(np.float64)),
            "final_test_accuracy": (dims, final_test),
            "best_test_accuracy": (dims, np.nanmax(series["test_accuracy"], axis=-1).astype(np.float64)),
            "diverged_step": (dims, div_step.astype(np.int64)),
            "network_outcome": (dims, outcome),
            "outcome": (("outcome",), np.asarray(OUTCOMES)),
            "outcome_fraction": ((*cell, "outcome"), fractions),
            "final_train_loss_mean": (cell, loss_mean),
            "final_train_loss_std": (cell, loss_std),
        }

    def plot(self, h5, outdir):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        o = self.options
        paths = []
        time = h5["time"][...]
        lrs, wds, widths = h5["learning_rate"][...], h5["weight_decay"][...], h5["width"][...]
        # 1. accuracy curves: one panel per (learning rate, weight decay) cell of the first width
        nl, nw = len(lrs), len(wds)
        fig, axes = plt.subplots(nw, nl, figsize=(3.4 * nl, 2.8 * nw), squeeze=False, sharey=True)
        for i in range(nl):
            for j in range(nw):
                ax = axes[j][i]
                for s in range(h5["test_accuracy"].shape[3]):
                    ax.plot(time, h5["train_accuracy"][0, i, j, s], lw=0.8, color="C0", alpha=0.7,
                            label="train" if s == 0 else None)
                    ax.plot(time, h5["test_accuracy"][0, i, j, s], lw=0.8, color="C3", alpha=0.7,
                            label="test" if s == 0 else None)
                ax.set_title(f"lr={lrs[i]:g}, wd={wds[j]:g}", fontsize=8)
                ax.set_ylim(0, 1.02)
                ax.grid(alpha=0.3)
                ax.set_xlabel("step")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"accuracy, {o.optimizer}, width {widths[0]}, {o.dataset}", fontsize=10)
        fig.tight_layout()
        p = outdir / "accuracy_curves.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
        # 2. phase diagram: fraction of seeds in each outcome per (lr, wd), first width
        if "outcome_fraction" in h5:
            frac = h5["outcome_fraction"][0]  # (lr, wd, outcome)
            fig, ax = plt.subplots(figsize=(1.2 + 1.1 * nl, 1.0 + 0.9 * nw))
            colors = np.array([[0.2, 0.6, 0.2], [0.8, 0.15, 0.15], [0.6, 0.6, 0.6]])
            img = np.einsum("lwo,oc->wlc", frac, colors)
            ax.imshow(img, origin="lower", aspect="auto")
            for i in range(nl):
                for j in range(nw):
                    ax.text(i, j, "/".join(f"{v:.0%}" for v in frac[i, j]), ha="center", va="center", fontsize=6)
            ax.set_xticks(range(nl), [f"{v:g}" for v in lrs], fontsize=7)
            ax.set_yticks(range(nw), [f"{v:g}" for v in wds], fontsize=7)
            ax.set_xlabel("learning rate")
            ax.set_ylabel("weight decay")
            ax.set_title("stable / diverged / under-trained (green / red / grey)", fontsize=8)
            fig.tight_layout()
            p = outdir / "phase_diagram.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)
        # 3. final-loss distributions by width
        if "final_train_loss" in h5 and len(widths) > 1:
            loss = h5["final_train_loss"][...]  # (width, lr, wd, seed)
            fig, ax = plt.subplots(figsize=(5, 3.4))
            vals = [loss[k, 0, 0][np.isfinite(loss[k, 0, 0])] for k in range(len(widths))]
            ax.boxplot(vals)
            ax.set_xticks(range(1, len(widths) + 1), [str(w) for w in widths])
            ax.set_yscale("log")
            ax.set_xlabel("hidden width")
            ax.set_ylabel("final training loss")
            ax.set_title(f"spread of final losses over {loss.shape[-1]} seeds", fontsize=9)
            fig.tight_layout()
            p = outdir / "loss_by_width.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)
        return paths
