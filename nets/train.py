"""Minibatch training with optax: one ``lax.scan`` step loop, many networks at once, divergence as an outcome.

A training step draws a minibatch ``B`` (from a finite training set, with replacement, or from a generator such as
``nets.data.infinite_digits``), optionally replaces a fraction of its labels by uniform ones (label noise),
computes the loss with dropout, and applies the optimizer:

    L(θ) = (1/|B|) Σ_{(x,y)∈B} ℓ(f_θ(x), y),        θ ← θ + u_t(∇L(θ) + λ θ)

with ``ℓ`` the softmax cross-entropy (integer labels) or the squared error (float targets), ``λ`` the weight decay
as an L2 term added to the gradient (a Gaussian prior, i.e. ``L + λ‖θ‖²/2``), ``u_t`` the optimizer (sgd,
momentum, adam, rmsprop) with learning rate ``η · s(t)`` for a schedule ``s``. The minibatch noise temperature of
SGD is reported as ``T = η / |B|`` (Jastrzębski et al. 2017, arXiv:1711.04623, eq. 9; Mandt, Hoffman & Blei 2017).

Learning rate and weight decay are optax hyperparameters injected into the optimizer state
(``optax.inject_hyperparams``), so they are traced numbers: ``jax.vmap`` over keys, initial parameters, learning
rates and weight decays trains many networks in one compiled program (:func:`fit_many`).

Step ``t`` (global index) uses the key ``fold_in(key, t)``, so a run cut into chunks (:class:`Trainer`) draws the
same batches as an uninterrupted one. Every ``eval_every`` steps a record is kept: the loss and accuracy on the
training set (for a generator: on a fixed batch drawn from it) and on the test set, the weight norm, the mean
gradient norm and minibatch loss of the interval, and the current learning rate.

Divergence (a result, not a crash): a non-finite loss or parameter, or an accuracy collapse — the training accuracy
falling more than ``collapse_drop`` below its running best, checked only at records after ``warmup_steps`` (a
dip during the warm-up that recovers is not one) — sets ``diverged_step`` (the first step it was seen)
and ``divergence_reason`` (1 non-finite, 2 collapse). With ``stop_on_divergence`` the parameters are frozen from
then on; otherwise training continues and the records show what follows.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import mlp
from .data import Labelled

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "RECORDS",
    "NOT_DIVERGED",
    "NONFINITE",
    "COLLAPSE",
    "Stream",
    "TrainConfig",
    "TrainState",
    "History",
    "Trainer",
    "make_optimizer",
    "fit",
    "fit_many",
    "outcome",
]

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear")
RECORDS = ("step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "weight_norm", "grad_norm",
           "batch_loss", "learning_rate")
NOT_DIVERGED, NONFINITE, COLLAPSE = 0, 1, 2


class Stream(NamedTuple):
    """An infinite training set: ``sample(key, batch_size) -> (x, y)``, a fixed ``test`` set, and the size of the
    fixed batch drawn once from ``sample`` on which the training loss/accuracy are measured."""

    sample: Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]
    test: Labelled
    eval_size: int = 1024


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The structure of a training run (static: changing it recompiles). Numbers that vary across vmapped runs —
    learning rate and weight decay — are arguments of :func:`fit` / :func:`fit_many` instead."""

    optimizer: str = "adam"
    momentum: float = 0.9
    decay: float = 0.9  # rmsprop: decay of the squared-gradient average (optax ``decay``, Keras ``rho``)
    eps: float = 1e-7  # rmsprop: ε in the denominator ``√ν + ε``
    batch_size: int = 64
    num_steps: int = 1000
    eval_every: int = 100
    dropout: float = 0.0
    label_noise: float = 0.0
    clip_norm: float = 0.0  # 0: no clipping; else clip the global gradient norm to this
    schedule: str = "constant"
    warmup_steps: int = 0
    snapshot_steps: tuple[int, ...] = ()
    collapse_drop: float = 0.3  # 0 turns the accuracy-collapse detector off
    stop_on_divergence: bool = False

    def __post_init__(self):
        object.__setattr__(self, "snapshot_steps", tuple(int(s) for s in self.snapshot_steps))
        checks = [
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {', '.join(map(repr, OPTIMIZERS))}"),
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(map(repr, SCHEDULES))}"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("decay", 0 <= self.decay < 1, "in [0, 1)"),
            ("eps", self.eps > 0, "> 0"),
            ("batch_size", int(self.batch_size) >= 1, "a positive integer"),
            ("eval_every", int(self.eval_every) >= 1, "a positive integer"),
            ("num_steps", int(self.num_steps) >= 0 and int(self.num_steps) % int(self.eval_every) == 0,
             f"a non-negative multiple of eval_every={self.eval_every}"),
            ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
            ("label_noise", 0 <= self.label_noise <= 1, "in [0, 1]"),
            ("clip_norm", self.clip_norm >= 0, "≥ 0 (0: no clipping)"),
            ("warmup_steps", 0 <= int(self.warmup_steps) <= int(self.num_steps), "in [0, num_steps]"),
            ("collapse_drop", 0 <= self.collapse_drop <= 1, "in [0, 1] (0: off)"),
            ("snapshot_steps",
             all(0 <= s <= self.num_steps and s % self.eval_every == 0 for s in self.snapshot_steps)
             and len(set(self.snapshot_steps)) == len(self.snapshot_steps),
             f"distinct multiples of eval_every={self.eval_every} in [0, num_steps={self.num_steps}]"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be {allowed}")

    @property
    def num_records(self) -> int:
        return int(self.num_steps) // int(self.eval_every)


class TrainState(NamedTuple):
    """Everything a checkpoint must hold (besides the run key): a pytree of arrays."""

    params: Any
    opt_state: Any
    best_accuracy: jax.Array  # running best training accuracy (collapse detector)
    diverged_step: jax.Array  # int32, -1 while not diverged
    divergence_reason: jax.Array  # int32: NOT_DIVERGED, NONFINITE or COLLAPSE
    snapshots: Any  # params stacked along a leading axis of len(snapshot_steps) (None when there are none)


@dataclasses.dataclass(frozen=True)
class History:
    """Records of a training run (numpy arrays; leading axes of a :func:`fit_many` run come first, records last).

    Fields: ``step`` (global step after which each record was taken), ``train_loss``, ``train_accuracy``,
    ``test_loss``, ``test_accuracy``, ``weight_norm``, ``grad_norm``, ``batch_loss``, ``learning_rate``;
    ``diverged_step`` (-1 if never), ``divergence_reason``; ``snapshots`` (stacked params or None) at
    ``snapshot_steps``; ``temperature`` = learning rate / batch size. ``history["train_accuracy"]`` also works.
    """

    step: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    weight_norm: np.ndarray
    grad_norm: np.ndarray
    batch_loss: np.ndarray
    learning_rate: np.ndarray
    diverged_step: np.ndarray
    divergence_reason: np.ndarray
    temperature: np.ndarray
    snapshot_steps: tuple[int, ...] = ()
    snapshots: Any = None

    def __getitem__(self, name: str):
        return getattr(self, name)

    @property
    def diverged(self) -> np.ndarray:
        return np.asarray(self.diverged_step) >= 0

    def records(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in RECORDS}


# ----------------------------------------------------------------------------------------------------------------
# optimizer
# ----------------------------------------------------------------------------------------------------------------


def _schedule(cfg: TrainConfig) -> Callable[[jax.Array], jax.Array]:
    total = max(int(cfg.num_steps) - int(cfg.warmup_steps), 1)
    if cfg.schedule == "cosine":
        main = optax.cosine_decay_schedule(1.0, total)
    elif cfg.schedule == "linear":
        main = optax.linear_schedule(1.0, 0.0, total)
    else:
        main = optax.constant_schedule(1.0)
    if cfg.warmup_steps:
        return optax.join_schedules([optax.linear_schedule(0.0, 1.0, int(cfg.warmup_steps)), main],
                                    [int(cfg.warmup_steps)])
    return main


def _OPTAX_PROMOTION():
    # optax mixes Python floats with int32 step counts (``decay ** count``); the project runs JAX with strict dtype
    # promotion in tests, so optax's own arithmetic is traced under the standard rules.
    return jax.numpy_dtype_promotion("standard")


def _schedule_value(schedule, count) -> jax.Array:
    with _OPTAX_PROMOTION():
        return jnp.asarray(schedule(count), jnp.float32)


def make_optimizer(cfg: TrainConfig, learning_rate, weight_decay) -> optax.GradientTransformation:
    """``clip → + λθ → optimizer(η) → × s(t)`` with ``η`` and ``λ`` injected hyperparameters (traced numbers)."""
    schedule = _schedule(cfg)

    def build(learning_rate, weight_decay):
        parts = []
        if cfg.clip_norm > 0:
            parts.append(optax.clip_by_global_norm(cfg.clip_norm))
        parts.append(optax.add_decayed_weights(weight_decay))
        if cfg.optimizer == "sgd":
            parts.append(optax.sgd(learning_rate))
        elif cfg.optimizer == "momentum":
            parts.append(optax.sgd(learning_rate, momentum=cfg.momentum))
        elif cfg.optimizer == "adam":
            parts.append(optax.adam(learning_rate))
        else:
            parts.append(optax.rmsprop(learning_rate, decay=cfg.decay, eps=cfg.eps))
        parts.append(optax.scale_by_schedule(schedule))
        return optax.chain(*parts)

    return optax.inject_hyperparams(build)(learning_rate=learning_rate, weight_decay=weight_decay)


# ----------------------------------------------------------------------------------------------------------------
# the trainer: init + run(chunk), pure and vmappable
# ----------------------------------------------------------------------------------------------------------------


def _loss_and_accuracy(classification: bool, logits, y):
    if classification:
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
        acc = jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(jnp.float32))
        return loss, acc
    return jnp.mean(jnp.square(logits[..., 0] - y)), jnp.asarray(jnp.nan, jnp.float32)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]))


def _select(pred, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


class Trainer:
    """A training run's compiled structure: ``init`` the state, ``run`` a chunk of records (both pure, vmappable).

    ``arrays(key)`` gives the data arrays the run reads (the training set, or the fixed evaluation batch of a
    stream, and the test set); pass them to ``run`` (they are arguments, not captured constants, so one program
    serves every chunk).

    Example (chunked, as the run pipeline does):
      >>> tr = Trainer(data, TrainConfig(num_steps=1000, eval_every=100))
      >>> arrays = tr.arrays(key)
      >>> state = tr.init(params, 1e-3, 0.0)
      >>> state, rec = tr.run(key, state, arrays, 0, 5)       # steps 0..499
      >>> state, rec = tr.run(key, state, arrays, 500, 5)     # steps 500..999, identical to one 10-record run
    """

    def __init__(self, data, config: TrainConfig | None = None):
        self.config = TrainConfig() if config is None else config
        if isinstance(data, Stream):
            self._sample = data.sample
            self._test = data.test
            self._eval_size = int(data.eval_size)
            self.finite = False
            y_kind = np.asarray(data.test.y)
        else:
            train, test = data
            self._sample = None
            self._test = test
            self._eval_size = 0
            self.finite = True
            self._train = train
            y_kind = np.asarray(train.y)
        self.classification = np.issubdtype(y_kind.dtype, np.integer)
        if self.classification:
            labels = np.asarray(self._test.y)
            if self.finite:
                labels = np.concatenate([labels, np.asarray(self._train.y)])
            self.num_classes = int(labels.max()) + 1
        else:
            self.num_classes = 0

    # -- data --------------------------------------------------------------------------------------------------
    def arrays(self, key: jax.Array) -> dict[str, jax.Array]:
        """The arrays ``run`` reads; ``key`` draws the fixed evaluation batch of a stream (unused otherwise)."""
        if self.finite:
            tx, ty = self._train
        else:
            tx, ty = self._sample(jax.random.fold_in(key, 0x7FFFFFFF), self._eval_size)
        return {
            "train_x": jnp.asarray(tx, jnp.float32),
            "train_y": jnp.asarray(ty),
            "test_x": jnp.asarray(self._test.x, jnp.float32),
            "test_y": jnp.asarray(self._test.y),
        }

    def _batch(self, key, arrays):
        b = int(self.config.batch_size)
        if self.finite:
            idx = jax.random.randint(key, (b,), 0, arrays["train_x"].shape[0])
            return arrays["train_x"][idx], arrays["train_y"][idx]
        x, y = self._sample(key, b)
        return jnp.asarray(x, jnp.float32), y

    # -- state -------------------------------------------------------------------------------------------------
    def init(self, params, learning_rate, weight_decay) -> TrainState:
        """The initial state (``learning_rate`` and ``weight_decay`` may be traced, e.g. under ``vmap``)."""
        opt = make_optimizer(self.config, jnp.asarray(learning_rate, jnp.float32),
                             jnp.asarray(weight_decay, jnp.float32))
        snaps = None
        if self.config.snapshot_steps:
            n = len(self.config.snapshot_steps)
            snaps = jax.tree_util.tree_map(lambda p: jnp.broadcast_to(p, (n, *p.shape)) * jnp.nan, params)
            if 0 in self.config.snapshot_steps:
                i = self.config.snapshot_steps.index(0)
                snaps = jax.tree_util.tree_map(lambda s, p: s.at[i].set(p), snaps, params)
        with _OPTAX_PROMOTION():
            opt_state = opt.init(params)
        return TrainState(
            params=params,
            opt_state=opt_state,
            best_accuracy=jnp.zeros((), jnp.float32),
            diverged_step=jnp.full((), -1, jnp.int32),
            divergence_reason=jnp.zeros((), jnp.int32),
            snapshots=snaps,
        )

    def _optimizer(self):
        # The hyperparameters live in the state; the values given here only fix the structure.
        return make_optimizer(self.config, 0.0, 0.0)

    # -- one step and one record ------------------------------------------------------------------------------
    def _step(self, key, state: TrainState, t, arrays):
        cfg = self.config
        k_batch, k_noise, k_flip, k_drop = jax.random.split(key, 4)
        x, y = self._batch(k_batch, arrays)
        if cfg.label_noise > 0 and self.classification:
            flip = jax.random.bernoulli(k_flip, cfg.label_noise, y.shape)
            y = jnp.where(flip, jax.random.randint(k_noise, y.shape, 0, self.num_classes, y.dtype), y)

        def loss_fn(params):
            logits = mlp.apply(params, x, key=k_drop if cfg.dropout > 0 else None, dropout=cfg.dropout)
            return _loss_and_accuracy(self.classification, logits, y)[0]

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        with _OPTAX_PROMOTION():
            updates, opt_state = self._optimizer().update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(loss) & _all_finite(params)
        first = (state.diverged_step < 0) & ~finite
        diverged_step = jnp.where(first, t.astype(jnp.int32), state.diverged_step)
        reason = jnp.where(first, jnp.int32(NONFINITE), state.divergence_reason)
        if cfg.stop_on_divergence:
            keep_old = diverged_step >= 0
            params = _select(keep_old, state.params, params)
            opt_state = _select(keep_old, state.opt_state, opt_state)
        new = state._replace(params=params, opt_state=opt_state, diverged_step=diverged_step,
                             divergence_reason=reason)
        return new, (loss, optax.global_norm(grads))

    def _evaluate(self, params, arrays):
        tr = _loss_and_accuracy(self.classification, mlp.apply(params, arrays["train_x"]), arrays["train_y"])
        te = _loss_and_accuracy(self.classification, mlp.apply(params, arrays["test_x"]), arrays["test_y"])
        return tr, te

    def run(self, key, state: TrainState, arrays, start, num_records: int):
        """Run ``num_records · eval_every`` steps from global step ``start``: ``(state, records)``.

        ``records`` is a dict of arrays with a trailing axis of ``num_records`` (see :data:`RECORDS`).
        """
        cfg = self.config
        every = int(cfg.eval_every)
        start = jnp.asarray(start, jnp.int32)
        snap_steps = jnp.asarray(cfg.snapshot_steps or (-1,), jnp.int32)
        schedule = _schedule(cfg)

        def one_step(state, t):
            return self._step(jax.random.fold_in(key, t), state, t, arrays)

        def one_record(state, r):
            steps = start + r * every + jnp.arange(every, dtype=jnp.int32)
            state, (losses, gnorms) = jax.lax.scan(one_step, state, steps)
            done = start + (r + 1) * every  # number of steps taken after this record
            (train_loss, train_acc), (test_loss, test_acc) = self._evaluate(state.params, arrays)
            # The collapse detector fires only after the warm-up ramp: while the learning rate still rises the
            # accuracy may dip and recover, which is transient, not a collapse. The best is tracked throughout,
            # so a peak reached during the warm-up and lost for good after it is still a collapse.
            armed = done > int(cfg.warmup_steps)
            best = jnp.fmax(state.best_accuracy, train_acc)
            reason, dstep = state.divergence_reason, state.diverged_step
            if cfg.collapse_drop > 0 and self.classification:
                collapse = armed & (dstep < 0) & (train_acc < best - cfg.collapse_drop)
                dstep = jnp.where(collapse, done - 1, dstep)
                reason = jnp.where(collapse, jnp.int32(COLLAPSE), reason)
            state = state._replace(best_accuracy=best, diverged_step=dstep, divergence_reason=reason)
            if state.snapshots is not None:
                hit = snap_steps == done
                i = jnp.argmax(hit)
                state = state._replace(snapshots=jax.tree_util.tree_map(
                    lambda s, p: s.at[i].set(jnp.where(jnp.any(hit), p, s[i])), state.snapshots, state.params))
            hyper = state.opt_state.hyperparams
            rec = {
                "step": done,
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                "test_loss": test_loss,
                "test_accuracy": test_acc,
                "weight_norm": mlp.weight_norm(state.params),
                "grad_norm": jnp.mean(gnorms),
                "batch_loss": jnp.mean(losses),
                "learning_rate": hyper["learning_rate"] * _schedule_value(schedule, done),
            }
            return state, rec

        state, recs = jax.lax.scan(one_record, state, jnp.arange(int(num_records), dtype=jnp.int32))
        return state, {k: jnp.moveaxis(v, 0, -1) for k, v in recs.items()}


# ----------------------------------------------------------------------------------------------------------------
# fit: one network; fit_many: a vmapped batch of networks
# ----------------------------------------------------------------------------------------------------------------


def _config(config: TrainConfig | None, overrides: dict) -> TrainConfig:
    if config is None:
        return TrainConfig(**overrides)
    return dataclasses.replace(config, **overrides) if overrides else config


def _first_dense(layer):
    while not isinstance(layer, mlp.Dense):
        layer = layer.first
    return layer


def _check_data(trainer: Trainer, params, arrays: dict[str, jax.Array]):
    """Refuse data the network cannot train on, naming the array: non-finite inputs or targets, an input width
    that is not the network's, labels outside ``[0, outputs)`` (they would surface later as a "diverged" run or a
    raw shape error inside the compiled step)."""
    names = {"train_x": "the training inputs", "train_y": "the training labels",
             "test_x": "the test inputs", "test_y": "the test labels"}
    if not trainer.finite:
        names.update(train_x="the stream's evaluation inputs", train_y="the stream's evaluation labels")
    n_in = n_out = None
    if isinstance(params, mlp.MLP):
        n_in = int(_first_dense(params.layers[0]).w.shape[-2])
        last = params.layers[-1]
        n_out = int(last.w.shape[-1]) if isinstance(last, mlp.Dense) else None
    for key, what in names.items():
        a = np.asarray(arrays[key])
        if key.endswith("_x"):
            if a.ndim != 2:
                raise ValueError(f"data: {what} ({key}) have shape {a.shape}; must be (examples, features)")
            if n_in is not None and a.shape[1] != n_in:
                raise ValueError(f"data: {what} ({key}) have {a.shape[1]} features per example but the network's "
                                 f"input width is {n_in}")
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))
            raise ValueError(f"data: {what} ({key}) hold {len(bad)} non-finite value(s) (NaN or inf), the first at "
                             f"index {tuple(int(i) for i in bad[0])}")
        if key.endswith("_y") and trainer.classification and n_out is not None:
            outside = (a < 0) | (a >= n_out)
            if np.any(outside):
                first = int(a[outside].reshape(-1)[0])
                raise ValueError(f"data: {what} ({key}) hold label {first} outside [0, {n_out}): the network has "
                                 f"{n_out} outputs")


def _history(cfg: TrainConfig, state: TrainState, recs, learning_rate) -> History:
    recs = {k: np.asarray(v) for k, v in recs.items()}
    recs["step"] = recs["step"].astype(np.int64)
    return History(
        **recs,
        diverged_step=np.asarray(state.diverged_step),
        divergence_reason=np.asarray(state.divergence_reason),
        temperature=np.asarray(learning_rate, np.float32) / np.float32(cfg.batch_size),
        snapshot_steps=cfg.snapshot_steps,
        snapshots=None if state.snapshots is None else jax.tree_util.tree_map(np.asarray, state.snapshots),
    )


_COMPILED: dict = {}


def _compiled(trainer: Trainer, *, vmapped: bool, arrays_axes=None):
    """One jitted ``init + run`` per training structure, shared by every call with that structure (so repeated
    ``fit`` calls that differ only in numbers — key, parameters, learning rate, weight decay — compile once)."""
    signature = (trainer.config, trainer.finite, trainer.classification, trainer.num_classes, trainer._sample,
                 trainer._eval_size, vmapped, arrays_axes)
    if signature not in _COMPILED:
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        num = trainer.config.num_records

        def one(k, p, a, lr, wd):
            return trainer.run(k, trainer.init(p, lr, wd), a, 0, num)

        fn = jax.vmap(one, in_axes=(0, 0, arrays_axes, 0, 0)) if vmapped else one
        _COMPILED[signature] = jax.jit(fn)
    return _COMPILED[signature]


def fit(
    key: jax.Array,
    params,
    data,
    *,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    config: TrainConfig | None = None,
    **options,
) -> tuple[Any, History]:
    """Train one network: ``(trained_params, history)``.

    Args:
      key: PRNG key of the run (minibatches, dropout, label noise, and a stream's evaluation batch).
      params: the initial network (``nets.mlp.init``).
      data: ``(train, test)`` of ``Labelled`` arrays (e.g. ``nets.data.digits()``) or a :class:`Stream`.
      learning_rate: η (base learning rate, multiplied by the schedule).
      weight_decay: λ, the L2 coefficient added to the gradient.
      config: a :class:`TrainConfig`; keyword ``options`` override its fields (``optimizer="rmsprop"``,
        ``batch_size=128``, ``num_steps=2000``, ``eval_every=100``, ``dropout``, ``label_noise``, ``clip_norm``,
        ``schedule``, ``warmup_steps``, ``snapshot_steps``, ``collapse_drop``, ``stop_on_divergence``).

    Returns:
      The final parameters and a :class:`History` (``history.test_accuracy[-1]`` is the final test accuracy).

    Example:
      >>> net = nets.mlp.init(k1, (64, 128, 10))
      >>> net, hist = nets.train.fit(k2, net, nets.data.digits(), num_steps=2000, eval_every=200)
    """
    cfg = _config(config, options)
    if not learning_rate > 0:
        raise ValueError(f"learning_rate={learning_rate!r}: must be > 0")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay={weight_decay!r}: must be ≥ 0")
    trainer = Trainer(data, cfg)
    k_data, k_run = jax.random.split(key)
    arrays = trainer.arrays(k_data)
    _check_data(trainer, params, arrays)
    go = _compiled(trainer, vmapped=False)
    state, recs = go(k_run, params, arrays, jnp.float32(learning_rate), jnp.float32(weight_decay))
    return state.params, _history(cfg, state, recs, learning_rate)


def fit_many(
    keys: jax.Array,
    params,
    data,
    *,
    learning_rate=1e-3,
    weight_decay=0.0,
    config: TrainConfig | None = None,
    **options,
) -> tuple[Any, History]:
    """Train ``n`` networks in one compiled, vmapped program: network ``i`` is exactly ``fit(keys[i], params[i],
    data, learning_rate=lr[i], weight_decay=wd[i], ...)``.

    ``keys`` has shape ``(n,)``; every leaf of ``params`` a leading axis ``n`` (e.g.
    ``jax.vmap(lambda k: mlp.init(k, widths))(init_keys)``); ``learning_rate`` / ``weight_decay`` scalars or arrays
    of shape ``(n,)``. The history's arrays get the leading axis ``n``.
    """
    cfg = _config(config, options)
    n = keys.shape[0]
    lr = jnp.broadcast_to(jnp.asarray(learning_rate, jnp.float32), (n,))
    wd = jnp.broadcast_to(jnp.asarray(weight_decay, jnp.float32), (n,))
    if not bool(jnp.all(lr > 0)):
        raise ValueError(f"learning_rate={learning_rate!r}: every value must be > 0")
    if not bool(jnp.all(wd >= 0)):
        raise ValueError(f"weight_decay={weight_decay!r}: every value must be ≥ 0")
    trainer = Trainer(data, cfg)
    split = jax.vmap(jax.random.split)(keys)
    k_data, k_run = split[:, 0], split[:, 1]

    if trainer.finite:
        arrays = trainer.arrays(k_data[0])
        arrays_axes = None
    else:  # each network's evaluation batch comes from its own key, as in fit
        arrays = jax.vmap(trainer.arrays)(k_data)
        arrays_axes = 0
    _check_data(trainer, params, arrays if trainer.finite else jax.tree_util.tree_map(lambda a: a[0], arrays))

    go = _compiled(trainer, vmapped=True, arrays_axes=arrays_axes)
    state, recs = go(k_run, params, arrays, lr, wd)
    return state.params, _history(cfg, state, recs, lr)


def outcome(history: History, *, min_accuracy: float = 0.9) -> np.ndarray:
    """Classify each run: ``"diverged"`` (divergence detected), ``"under-trained"`` (final test accuracy below
    ``min_accuracy``) or ``"stable"``; an array of strings shaped like ``history.diverged_step``."""
    final = np.asarray(history.test_accuracy)[..., -1]
    return np.where(history.diverged, "diverged", np.where(final < min_accuracy, "under-trained", "stable"))
