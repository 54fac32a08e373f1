"""The measurements behind the compare job: one function per unit of work, each a fixed function of its key.

Networks (``nets``) and glasses (``physics``) go through the same probes, so a number on one side means what the
same number means on the other:

* :func:`network_minima` — S networks of one architecture trained from random starts (one vmapped
  ``nets.train.fit_many``), kept at the stages ``stage_steps`` (step 0 = the initialization): the training loss
  on the whole training set at each stage, the Hessian index at each stage (stochastic Lanczos quadrature,
  ``bridges.hessian``), the test accuracy, the permutation-aligned overlaps between the final networks
  (``bridges.paths.overlaps``) and each network's distance to the order-to-chaos line (``bridges.chaos``).
* :func:`glass_minima` — R replicas of Riemannian gradient descent on each of M spherical p-spin samples
  (``physics.kernels.gradient_descent`` driven by ``physics.run``), kept at the same kind of stages: energy per
  spin, the exact Hessian index on the tangent space (``physics.spherical.tangent_eigenvalues``) and the replica
  overlaps ``q = s·s'/n``.
* The **index** is the same on both sides: the fraction of Hessian eigenvalues below ``-τ λ_max``, τ the
  ``index_tolerance`` and λ_max the largest eigenvalue at that point (a relative threshold: rounding and the
  finite resolution of the quadrature never count as descent directions).
* :func:`glass_langevin` — the glass at temperature T: Langevin dynamics, energy per spin (averaged over the
  second half of the run) and the overlap of replica pairs, next to :func:`regularization_sweep` — networks over a
  (learning rate, weight decay) grid, their final losses, divergences and heavy-tailed α (``bridges.spectra``).
* :func:`depth_trainability` — plain, residual and fractal networks of growing depth at (nearly) equal parameter
  count (:func:`depth_architecture`), initialized at several σ_w (ordered phase, critical line).
* :func:`perceptron_landscape`, :func:`perceptron_funnel` — the binary perceptron's exact error landscape on
  digits, on the same digits with shuffled labels, on random inputs with the digits' labels, or on a teacher's
  labels (``physics.rem.Perceptron``, ``bridges.data_rem``): T_f, T_g, T_f/T_g and energy vs overlap with the
  ground state.
* :func:`pixel_distances`, :func:`sequences` — the inputs of the mutual-information panel (``bridges.information``).

Compiled programs depend only on shapes and static settings, so a job's units of the same shape compile once.
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nets import data as nets_data
from nets import mlp
from nets import train as nets_train
from physics import kernels, rem, run, spherical

from . import chaos, data_rem, hessian, paths, spectra

__all__ = [
    "PERCEPTRON_DATASETS",
    "SEQUENCE_KINDS",
    "NetworkMinima",
    "GlassMinima",
    "GlassLangevin",
    "RegularizationSweep",
    "DepthRun",
    "PerceptronFunnel",
    "stage_steps",
    "network_minima",
    "glass_minima",
    "glass_langevin",
    "regularization_sweep",
    "depth_architecture",
    "depth_trainability",
    "perceptron_landscape",
    "exact_gap_ratio",
    "perceptron_funnel",
    "pixel_distances",
    "sequences",
]

PERCEPTRON_DATASETS = ("digits", "shuffled", "random", "teacher")
SEQUENCE_KINDS = ("markov", "pcfg")


class NetworkMinima(NamedTuple):
    """S networks at K stages (stage 0: initialization). Arrays: ``stage_loss``, ``index``, ``index_stderr``
    ``(S, K)``; ``test_accuracy``, ``distance`` ``(S,)``; ``overlap`` ``(S, S)`` (aligned; NaN when not asked)."""

    stage_loss: np.ndarray
    index: np.ndarray
    index_stderr: np.ndarray
    test_accuracy: np.ndarray
    overlap: np.ndarray
    distance: np.ndarray


class GlassMinima(NamedTuple):
    """M samples × R replicas at K stages: ``energy`` (per spin) and ``index`` ``(M, R, K)``; ``overlap``
    ``(M, R, R)`` of the final states; ``converged`` ``(M, R)`` (the descent met its tolerance)."""

    energy: np.ndarray
    index: np.ndarray
    overlap: np.ndarray
    converged: np.ndarray


class GlassLangevin(NamedTuple):
    """``energy`` ``(M, T, R)`` per spin, averaged over the second half of the run; ``overlap`` ``(M, T, R//2)``
    of replica pairs (2k, 2k+1) at the end."""

    energy: np.ndarray
    overlap: np.ndarray


class RegularizationSweep(NamedTuple):
    """Over the grid (learning rate, weight decay, seed): final ``train_loss``, ``test_loss``, ``diverged`` (bool),
    ``alpha`` ``(..., layers)`` (power-law exponent of each weight matrix's ESD); ``initial_loss`` the mean training
    loss of the S initial networks."""

    train_loss: np.ndarray
    test_loss: np.ndarray
    diverged: np.ndarray
    alpha: np.ndarray
    initial_loss: float


class DepthRun(NamedTuple):
    """One (block, depth): final ``train_accuracy`` and ``train_loss`` ``(inits, S)``, the architecture's
    ``widths`` and ``param_count``."""

    train_accuracy: np.ndarray
    train_loss: np.ndarray
    widths: tuple
    param_count: int


class PerceptronFunnel(NamedTuple):
    """Exact landscape numbers of one perceptron (``bridges.data_rem``): T_f, T_g, T_f/T_g, the exact gap ratio
    ``gap_ratio`` (:func:`exact_gap_ratio`), the ground energy and degeneracy, and the mean and minimum energy over
    each overlap shell with the first ground state (n + 1)."""

    folding: float
    glass: float
    ratio: float
    gap_ratio: float
    ground_energy: float
    degeneracy: int
    overlap_mean: np.ndarray
    overlap_min: np.ndarray


# --- stages -------------------------------------------------------------------------------------------------------


def stage_steps(total: int, stages: int) -> tuple[int, ...]:
    """``(0, total/2^(K-2), …, total/2, total)``: K stages, the initialization and K - 1 halvings up to ``total``.

    ``total`` must be divisible by ``2^(K-2)`` (K ≥ 2).
    """
    total, stages = int(total), int(stages)
    if stages < 2:
        raise ValueError(f"stages={stages!r}: must be ≥ 2 (the start and the end)")
    div = 2 ** (stages - 2)
    if total < div or total % div:
        raise ValueError(f"total={total!r}: must be a positive multiple of 2^(stages-2) = {div}")
    return (0, *(total // 2 ** (stages - 1 - k) for k in range(1, stages)))


# --- networks -------------------------------------------------------------------------------------------------------


def _template(stack):
    return jax.tree_util.tree_map(lambda a: a[0], stack)


@jax.jit
def _losses(stack, x, y):
    """Training loss (``nets.train``'s: mean cross-entropy, no weight decay) of every network of a stack."""
    loss_fn = hessian.mlp_loss(_template(stack), x, y)
    return jax.vmap(loss_fn)(stack)


@jax.jit
def _accuracies(stack, x, y):
    return jax.vmap(lambda p: jnp.mean((jnp.argmax(mlp.apply(p, x), axis=-1) == y).astype(jnp.float32)))(stack)


@partial(jax.jit, static_argnames=("num_probes", "num_steps"))
def _slq_index(stack, keys, x, y, tau, *, num_probes, num_steps):
    """Per network: the SLQ index (fraction of eigenvalues below -τ λ_max) ± stderr over probes."""
    loss_fn = hessian.mlp_loss(_template(stack), x, y)

    def one(args):
        params, key = args
        spectrum = hessian.density(loss_fn, params, key=key, num_probes=num_probes, num_steps=num_steps)
        est = hessian.index(spectrum, tau * jnp.max(spectrum.nodes))
        return est.mean, est.stderr

    return jax.lax.map(one, (stack, keys))  # one network at a time: Lanczos holds num_steps vectors per probe


def _flat_stages(snapshots):
    """``(S, K, ...)`` leaves → ``(S·K, ...)``."""
    return jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:]), snapshots)


def network_minima(key, digits, architecture, *, activation: str = "relu", seeds: int = 8, optimizer: str = "adam",
                   learning_rate: float = 1e-3, batch_size: int = 64, stages: tuple[int, ...] = (0, 500, 1000),
                   hessian_probes: int = 4, hessian_steps: int = 24, hessian_examples: int = 256,
                   index_tolerance: float = 1e-3, with_hessian: bool = True,
                   with_overlaps: bool = True) -> NetworkMinima:
    """Train ``seeds`` networks of ``architecture`` on ``digits`` and probe them at every stage (module docstring).

    Keys: ``fold_in(key, 0)`` the initial weights (split per seed), ``fold_in(key, 1)`` the training runs,
    ``fold_in(key, 2)`` the Hessian probes, ``fold_in(key, 3)`` the subset of ``hessian_examples`` training examples
    on which the Hessian is taken (the loss and accuracy use every example). ``stages`` from :func:`stage_steps`.
    """
    stages = tuple(int(s) for s in stages)
    if len(stages) < 2 or stages[0] != 0 or any(b <= a for a, b in zip(stages, stages[1:], strict=False)):
        raise ValueError(f"stages={stages!r}: must start at 0 and increase (see stage_steps)")
    train_set, test_set = digits
    k_init, k_run, k_hess, k_sub = (jax.random.fold_in(key, i) for i in range(4))
    init_keys = jax.random.split(k_init, seeds)
    nets = jax.vmap(lambda k: mlp.init(k, architecture, activation=activation))(init_keys)
    cfg = nets_train.TrainConfig(optimizer=optimizer, batch_size=batch_size, num_steps=stages[-1],
                                 eval_every=stages[1], snapshot_steps=stages, collapse_drop=0.0)
    final, hist = nets_train.fit_many(jax.random.split(k_run, seeds), nets, digits, learning_rate=learning_rate,
                                      config=cfg)
    flat = _flat_stages(hist.snapshots)
    x, y = jnp.asarray(train_set.x, jnp.float32), jnp.asarray(train_set.y)
    stage_loss = np.asarray(_losses(flat, x, y), np.float64).reshape(seeds, len(stages))
    index = np.full((seeds, len(stages)), np.nan)
    index_err = np.full((seeds, len(stages)), np.nan)
    if with_hessian:
        pick = np.asarray(jax.random.permutation(k_sub, x.shape[0]))[: min(int(hessian_examples), x.shape[0])]
        keys = jax.random.split(k_hess, seeds * len(stages))
        mean, err = _slq_index(flat, keys, x[pick], y[pick], jnp.float32(index_tolerance),
                               num_probes=int(hessian_probes), num_steps=int(hessian_steps))
        index = np.asarray(mean, np.float64).reshape(seeds, len(stages))
        index_err = np.asarray(err, np.float64).reshape(seeds, len(stages))
    acc = np.asarray(_accuracies(final, jnp.asarray(test_set.x, jnp.float32), jnp.asarray(test_set.y)), np.float64)
    finite = all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree_util.tree_leaves(final))
    overlap = np.full((seeds, seeds), np.nan)
    if with_overlaps and seeds >= 2 and finite:
        overlap = paths.overlaps(final, align=True).aligned
    distance = np.full(seeds, np.nan)
    if finite:
        position = chaos.network_position(final)
        hidden = position.distance[:, :-1] if position.distance.shape[-1] > 1 else position.distance
        distance = np.where(np.isfinite(hidden), hidden, 0.0).sum(-1) / np.maximum(np.isfinite(hidden).sum(-1), 1)
        distance = np.where(np.isfinite(hidden).any(-1), distance, np.nan)  # NaN where σ_b has no critical σ_w
    return NetworkMinima(stage_loss, index, index_err, acc, overlap, np.asarray(distance, np.float64))


# --- glasses --------------------------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("n", "p", "samples", "replicas", "stages", "with_hessian"))
def _glass_minima(key, step_size, tolerance, tau, *, n, p, samples, replicas, stages, with_hessian):
    def one(k):
        k_model, k_start = jax.random.split(k)
        model = spherical.PSpin.random(k_model, n, p)
        starts = jax.vmap(model.random_state)(jax.random.split(k_start, replicas))
        kernel = kernels.gradient_descent(model, step_size, tolerance)
        state = jax.vmap(lambda x: kernel.init(k_model, x))(starts)
        kept, done = [], 0
        for s in stages:
            if s > done:
                state, _ = jax.vmap(lambda st, s=s, done=done: run(kernel, k_model, st, s - done, every=s - done,
                                                                    start=done))(state)
            kept.append(state.x)
            done = s
        xs = jnp.stack(kept, axis=1)  # (R, K, n)
        energy = jax.vmap(jax.vmap(model.energy))(xs) / n
        if with_hessian:
            ev = jax.vmap(jax.vmap(lambda x: spherical.tangent_eigenvalues(model, x)))(xs)  # (R, K, n - 1)
            index = jnp.mean((ev < -tau * jnp.max(ev, axis=-1, keepdims=True)).astype(jnp.float32), axis=-1)
        else:
            index = jnp.full(energy.shape, jnp.nan, jnp.float32)
        last = xs[:, -1]
        return energy, index, last @ last.T / n, state.converged

    return jax.vmap(one)(jax.random.split(key, samples))


def glass_minima(key, n: int, p: int = 3, *, samples: int = 4, replicas: int = 8, stages=(0, 500, 1000),
                 step_size: float = 0.1, tolerance: float = 1e-5, index_tolerance: float = 1e-3,
                 with_hessian: bool = True) -> GlassMinima:
    """Gradient descent from R uniform random starts on each of M p-spin samples, kept at ``stages`` (steps).

    Sample m is ``PSpin.random(split(key, M)[m] → first half of its split, n, p)`` (dense couplings); its replicas
    start from uniform points on the sphere. The index is exact (every tangent eigenvalue).
    """
    stages = tuple(int(s) for s in stages)
    if len(stages) < 2 or stages[0] != 0 or any(b <= a for a, b in zip(stages, stages[1:], strict=False)):
        raise ValueError(f"stages={stages!r}: must start at 0 and increase (see stage_steps)")
    out = _glass_minima(key, jnp.float32(step_size), jnp.float32(tolerance), jnp.float32(index_tolerance), n=int(n),
                        p=int(p), samples=int(samples), replicas=int(replicas), stages=stages,
                        with_hessian=bool(with_hessian))
    energy, index, overlap, converged = (np.asarray(a) for a in out)
    return GlassMinima(energy.astype(np.float64), index.astype(np.float64), overlap.astype(np.float64),
                       converged.astype(bool))


@partial(jax.jit, static_argnames=("n", "p", "samples", "replicas", "steps", "record"))
def _glass_langevin(key, temperatures, step_size, *, n, p, samples, replicas, steps, record):
    def one(k):
        k_model, k_start, k_run = jax.random.split(k, 3)
        model = spherical.PSpin.random(k_model, n, p)
        starts = jax.vmap(model.random_state)(jax.random.split(k_start, replicas))

        def chain(temperature, x, kk):
            kernel = kernels.langevin(model, temperature, step_size)
            state, trace = run(kernel, kk, kernel.init(kk, x), steps, every=record)
            half = trace.shape[0] // 2
            return jnp.mean(trace[half:]) / n, state.x

        def at(temperature, kt):
            return jax.vmap(lambda x, kk: chain(temperature, x, kk))(starts, jax.random.split(kt, replicas))

        energy, xs = jax.vmap(at)(temperatures, jax.random.split(k_run, temperatures.shape[0]))  # (T, R), (T, R, n)
        pairs = replicas // 2 * 2
        overlap = jnp.sum(xs[:, 0:pairs:2] * xs[:, 1:pairs:2], axis=-1) / n
        return energy, overlap

    return jax.vmap(one)(jax.random.split(key, samples))


def glass_langevin(key, n: int, temperatures, p: int = 3, *, samples: int = 4, replicas: int = 4,
                   steps: int = 2000, step_size: float = 0.01, record: int = 10) -> GlassLangevin:
    """Langevin dynamics at each temperature from uniform random starts: energy per spin (mean over the records of
    the second half of the run) and the end overlaps of replica pairs. ``steps`` a multiple of ``record``."""
    if int(steps) % int(record) or int(steps) // int(record) < 2:
        raise ValueError(f"steps={steps!r}: must be a multiple of record={record!r}, at least twice it")
    temps = jnp.asarray(np.asarray(temperatures, np.float32))
    energy, overlap = _glass_langevin(key, temps, jnp.float32(step_size), n=int(n), p=int(p), samples=int(samples),
                                      replicas=int(replicas), steps=int(steps), record=int(record))
    return GlassLangevin(np.asarray(energy, np.float64), np.asarray(overlap, np.float64))


# --- regularization -------------------------------------------------------------------------------------------------


def regularization_sweep(key, digits, architecture, *, learning_rates, weight_decays, seeds: int = 4,
                         activation: str = "relu", optimizer: str = "adam", batch_size: int = 64,
                         steps: int = 1000) -> RegularizationSweep:
    """Networks over the (learning rate, weight decay) grid, ``seeds`` each, trained in one ``fit_many`` call.

    Seed s starts from the same weights (``split(fold_in(key, 0), S)[s]``) and sees the same minibatches
    (``split(fold_in(key, 1), S)[s]``) in every cell: common random numbers, the cells differ only by their
    hyperparameters. Divergence (a non-finite loss, or the accuracy collapsing 0.3 below its running best) is
    recorded, not raised; α is NaN for a diverged network.
    """
    lrs = np.asarray(learning_rates, np.float32)
    wds = np.asarray(weight_decays, np.float32)
    grid = tuple(g.ravel() for g in np.meshgrid(lrs, wds, np.arange(seeds), indexing="ij"))
    init_keys = jax.random.split(jax.random.fold_in(key, 0), seeds)
    run_keys = jax.random.split(jax.random.fold_in(key, 1), seeds)
    seed_nets = jax.vmap(lambda k: mlp.init(k, architecture, activation=activation))(init_keys)
    index = jnp.asarray(grid[2].astype(np.int32))
    nets = jax.tree_util.tree_map(lambda a: a[index], seed_nets)
    cfg = nets_train.TrainConfig(optimizer=optimizer, batch_size=batch_size, num_steps=int(steps),
                                 eval_every=int(steps), collapse_drop=0.3)
    final, hist = nets_train.fit_many(run_keys[index], nets, digits, learning_rate=jnp.asarray(grid[0]),
                                      weight_decay=jnp.asarray(grid[1]), config=cfg)
    shape = (lrs.size, wds.size, int(seeds))
    table = spectra.analyze(final)
    layers = len(table) // len(grid[0])
    alpha = np.asarray(table["alpha"], np.float64).reshape(*shape, layers)
    train_set = digits[0]
    initial = float(np.mean(np.asarray(_losses(seed_nets, jnp.asarray(train_set.x, jnp.float32),
                                                       jnp.asarray(train_set.y)), np.float64)))
    return RegularizationSweep(
        train_loss=np.asarray(hist.train_loss[:, -1], np.float64).reshape(shape),
        test_loss=np.asarray(hist.test_loss[:, -1], np.float64).reshape(shape),
        diverged=np.asarray(hist.diverged, bool).reshape(shape),
        alpha=alpha,
        initial_loss=initial,
    )


# --- depth ----------------------------------------------------------------------------------------------------------


def depth_architecture(block: str, depth: int, width: int, columns: int = 3) -> tuple[int, ...]:
    """Widths of a digits network (64 inputs, 10 outputs) whose longest path has ``depth`` hidden-to-hidden layers.

    ``plain``/``residual``: ``(64, width × (depth + 1), 10)``. ``fractal`` with C columns: ``depth / 2^(C-1)``
    blocks (each has ``2^C - 1`` dense layers, ``2^(C-1)`` on its longest path) of width
    ``round(width √(2^(C-1)/(2^C - 1)))``, so the hidden-to-hidden parameters match the plain stack's to rounding.
    """
    if block not in mlp.BLOCKS:
        raise ValueError(f"block={block!r}: must be one of {', '.join(map(repr, mlp.BLOCKS))}")
    depth, width, columns = int(depth), int(width), int(columns)
    if depth < 1 or width < 1:
        raise ValueError(f"depth={depth!r}, width={width!r}: must be ≥ 1")
    if block != "fractal":
        return (64, *(width,) * (depth + 1), 10)
    path = 2 ** (columns - 1)
    if columns < 2 or depth % path:
        raise ValueError(f"depth={depth!r}: a fractal network of {columns} columns needs a depth divisible by "
                         f"2^(columns-1) = {path} (and columns ≥ 2)")
    fractal_width = max(1, round(width * math.sqrt(path / (2**columns - 1))))
    return (64, *(fractal_width,) * (depth // path + 1), 10)


def depth_trainability(key, digits, *, block: str, depth: int, width: int, weight_stds, bias_std: float = 0.3,
                       columns: int = 3, seeds: int = 2, optimizer: str = "sgd", learning_rate: float = 0.05,
                       batch_size: int = 64, steps: int = 300) -> DepthRun:
    """Train tanh networks of :func:`depth_architecture` initialized at each σ_w in ``weight_stds`` (same seeds:
    ``split(fold_in(key, 0), S)`` for the weights, ``split(fold_in(key, 1), S)`` for the minibatches) and return
    their final training accuracy and loss (one ``fit_many`` over inits × seeds)."""
    widths = depth_architecture(block, depth, width, columns)
    init_keys = jax.random.split(jax.random.fold_in(key, 0), seeds)
    stacks = [jax.vmap(lambda k, s=float(s): mlp.init(k, widths, activation="tanh", weight_std=s, bias_std=bias_std,
                                                      block=block, columns=columns))(init_keys)
              for s in weight_stds]
    nets = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *stacks)
    run_keys = jnp.tile(jax.random.split(jax.random.fold_in(key, 1), seeds), len(stacks))
    cfg = nets_train.TrainConfig(optimizer=optimizer, batch_size=batch_size, num_steps=int(steps),
                                 eval_every=int(steps), collapse_drop=0.0)
    _, hist = nets_train.fit_many(run_keys, nets, digits, learning_rate=learning_rate, config=cfg)
    shape = (len(stacks), int(seeds))
    count = mlp.param_count(_template(stacks[0]))
    return DepthRun(np.asarray(hist.train_accuracy[:, -1], np.float64).reshape(shape),
                    np.asarray(hist.train_loss[:, -1], np.float64).reshape(shape), widths, count)


# --- perceptron landscapes ------------------------------------------------------------------------------------------


def perceptron_landscape(key, dataset: str, pair=(0, 1), shape=(3, 4)) -> rem.Perceptron:
    """The binary perceptron of ``n = rows·cols`` pooled, binarized pixels on digit classes ``pair`` (+1, -1).

    ``"digits"``: ``bridges.data_rem.digits_perceptron``; ``"shuffled"``: its labels permuted
    (``jax.random.permutation(key, P)``); ``"random"``: random ±1 patterns of the same shape with the digits'
    labels; ``"teacher"``: ``physics.rem.Perceptron.teacher(key, n, P)`` (random patterns, a teacher's labels).
    """
    if dataset not in PERCEPTRON_DATASETS:
        raise ValueError(f"dataset={dataset!r}: must be one of {', '.join(map(repr, PERCEPTRON_DATASETS))}")
    model = data_rem.digits_perceptron(tuple(pair), tuple(shape))
    num, n = model.patterns.shape
    if dataset == "digits":
        return model
    if dataset == "shuffled":
        return rem.Perceptron(model.patterns, model.labels[jax.random.permutation(key, num)])
    if dataset == "random":
        patterns = 2.0 * jax.random.bernoulli(key, 0.5, (num, n)).astype(jnp.float32) - 1.0
        return rem.Perceptron(patterns, model.labels)
    return rem.Perceptron.teacher(key, n, num)


def exact_gap_ratio(dos: rem.DensityOfStates) -> float:
    """Bryngelson–Wolynes gap ratio of an enumerated landscape: ``g = δE / (ΔE √(2 S_0))`` with the native state the
    ground level (the states in the bin of the minimum energy), the misfolded ensemble every other state —
    ``S_0 = ln(#misfolded)``, Ē and ΔE their exact mean and standard deviation, ``δE = Ē - E_ground`` — the same
    score as ``bridges.compare.frustration_score`` computes from sampled minima. ``dos`` from
    ``physics.rem.density_of_states`` (no overlap resolution)."""
    centers = np.asarray(dos.centers, np.float64)
    m = np.asarray(dos.moments, np.float64)
    if m.ndim != 2:
        raise ValueError(f"dos: moments of shape {m.shape}; need a density of states without overlap resolution")
    ground = int(np.flatnonzero(m[:, 0] > 0)[0])
    rest = m.copy()
    rest[ground] = 0.0
    count = rest[:, 0].sum()
    if not count > 1:
        return math.nan
    mean = (centers * rest[:, 0] + rest[:, 1]).sum() / count
    d = centers - mean
    var = (d * d * rest[:, 0] + 2.0 * d * rest[:, 1] + rest[:, 2]).sum() / count
    if not var > 0:
        return math.nan
    return float((mean - dos.ground_energy) / math.sqrt(var * 2.0 * math.log(count)))


def perceptron_funnel(model, *, chunk_bits: int = 16) -> PerceptronFunnel:
    """T_f, T_g (``bridges.data_rem.funnel_temperatures``), the exact gap ratio and energy vs overlap with the first
    ground state: three streaming passes over the 2^n states (``chunk_bits`` bounds the memory: a chunk holds
    ``2^chunk_bits × P`` fields)."""
    dos = rem.density_of_states(model, chunk_bits=chunk_bits)
    temps = data_rem.funnel_temperatures(dos)
    ground = data_rem.ground_states(model, max_states=1, chunk_bits=chunk_bits)
    profile = data_rem.energy_vs_overlap(model, ground.states[0], chunk_bits=chunk_bits)
    return PerceptronFunnel(float(temps.folding), float(temps.glass), float(temps.ratio), exact_gap_ratio(dos),
                            float(ground.energy), int(ground.degeneracy), np.asarray(profile.mean, np.float64),
                            np.asarray(profile.minimum, np.float64))


# --- data for the mutual-information panel --------------------------------------------------------------------------


def pixel_distances(images, max_distance: float = math.inf) -> np.ndarray:
    """The distinct Euclidean distances (≤ ``max_distance``) between pixels that vary across binary 8×8 images —
    the separations at which ``bridges.information.pixel_mutual_information`` has pairs."""
    x = np.asarray(images)
    side = math.isqrt(x.shape[-1])
    varying = np.flatnonzero(x.min(axis=0) != x.max(axis=0))
    rows, cols = np.divmod(varying, side)
    sep = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
    sep = sep[np.triu_indices(len(varying), k=1)]
    return np.unique(np.round(sep[sep <= max_distance], 9))


def sequences(key, kind: str, *, length: int = 1024, num_sequences: int = 64, alphabet: int = 4,
              concentration: float = 0.5) -> np.ndarray:
    """Symbol sequences ``(num_sequences, length)``: a random Markov chain (``nets.data.markov_chain``) or a random
    binary PCFG (``nets.data.pcfg``, ``length`` a power of 2).

    The rules — each row of the transition matrix, each child's rewriting distribution — are Dirichlet
    (``concentration``) draws of a NumPy generator seeded by the key data of ``fold_in(key, 0)`` (as
    ``nets.data.random_transition`` / ``random_grammar`` draw them, without compiling a gamma sampler); the symbols
    are drawn by the jitted generators from ``fold_in(key, 1)``.
    """
    if kind not in SEQUENCE_KINDS:
        raise ValueError(f"kind={kind!r}: must be one of {', '.join(map(repr, SEQUENCE_KINDS))}")
    words = np.asarray(jax.random.key_data(jax.random.fold_in(key, 0)), np.uint32).ravel()
    rng = np.random.default_rng([int(w) for w in words])
    alpha = np.full(int(alphabet), float(concentration))
    k_draw = jax.random.fold_in(key, 1)
    if kind == "markov":
        transition = jnp.asarray(rng.dirichlet(alpha, size=int(alphabet)), jnp.float32)
        return np.asarray(_markov(k_draw, transition, length=int(length), num_sequences=int(num_sequences)))
    depth = int(round(math.log2(length)))
    if 2**depth != length:
        raise ValueError(f"length={length!r}: a binary PCFG's strings have a power-of-2 length")
    rules = jnp.asarray(rng.dirichlet(alpha, size=(2, int(alphabet))), jnp.float32)
    return np.asarray(_pcfg(k_draw, rules, depth=depth, num_sequences=int(num_sequences)))


# One compiled program per shape (called eagerly, the generators would compile every small op of every level).
_markov = jax.jit(nets_data.markov_chain, static_argnames=("length", "num_sequences"))
_pcfg = jax.jit(nets_data.pcfg, static_argnames=("depth", "num_sequences"))
