"""Loss along paths between networks, 2-D loss surfaces, mode-connecting curves and overlaps between solutions.

A network is a pytree of parameters θ (a :class:`nets.mlp.MLP` or any pytree of float arrays) and ``loss_fn(θ)`` a
scalar. Every probe below evaluates ``loss_fn`` at many points of parameter space as one ``jax.vmap`` batch
(optionally cut into chunks of ``batch_size`` points by ``jax.lax.map``, so memory stays bounded).

**Linear path** (Goodfellow, Vinyals & Saxe 2015, arXiv:1412.6544):

    θ(α) = (1 - α) θ_a + α θ_b,        α ∈ ℝ (default grid -0.5 … 1.5, so the path extends past both ends).

**Loss surface** (Li et al. 2018, arXiv:1712.09913, §3–4): ``L(θ + x δ + y η)`` on a square grid, with δ, η
filter-normalized Gaussian directions. A leaf of ≥ 2 dimensions is a weight whose last axis indexes output units
(a dense ``w`` of shape ``(fan_in, fan_out)``); the "filter" of output unit j is the slice ``w[..., j]`` and

    d[..., j] ← d[..., j] · ‖w[..., j]‖ / ‖d[..., j]‖,

while biases and every other 1-D (or scalar) parameter get a zero direction, as the paper does for biases and
batch-norm parameters. A step then moves each unit in proportion to the size of its own weights, so networks whose
units differ only in scale (a ReLU unit's incoming weights ×c, its outgoing ÷c: the same function) get comparable
surfaces.

**Mode connectivity** (Garipov et al. 2018, arXiv:1802.10026, §3): the quadratic Bézier curve

    φ(t) = (1 - t)² θ_a + 2 t (1 - t) θ_c + t² θ_b,        t ∈ [0, 1],

whose control point θ_c minimizes ``E_{t ~ U(0,1)} L(φ(t))``, estimated at each optimizer step from fresh uniform
draws of t. With θ_c at the midpoint (θ_a + θ_b)/2 the curve *is* the straight segment (same parametrization).
The barrier of a path sampled at t_0 = 0 < … < t_K = 1 is

    B = max_k L(φ(t_k)) - max(L(θ_a), L(θ_b)).

**Overlaps** (the replica overlap of spin glasses, for networks): the cosine of the flattened parameter vectors

    q_ab = ⟨θ_a, θ_b⟩ / (‖θ_a‖ ‖θ_b‖),

and the permutation-aligned overlap ``max_π ⟨θ_a, π θ_b⟩ / (‖θ_a‖ ‖θ_b‖)`` where π permutes the hidden units of
network b — columns of ``W^l`` and entries of ``b^l``, and the rows of ``W^{l+1}`` by the same permutation — which
leaves its function unchanged (Entezari et al. 2022, arXiv:2110.06296; Ainsworth, Hayase & Srinivasa 2023,
arXiv:2209.04836, "weight matching", Algorithm 1). Norms are permutation invariant, so maximizing the aligned
overlap is maximizing ``Σ_l Σ_ij W_a^l[i, j] W_b^l[σ_{l-1}(i), σ_l(j)] + Σ_j b_a^l[j] b_b^l[σ_l(j)]`` (σ_l the
permutation of layer l's units, the identity on inputs and outputs): each σ_l, the others held fixed, is
a linear assignment problem (``scipy.optimize.linear_sum_assignment``) on incoming plus outgoing weights; we sweep
the layers until no assignment improves the sum (coordinate ascent, exact for one hidden layer), starting from both
the identity and a forward pass matching incoming weights only, and keep the better. The histogram of q over pairs is
P(q), stored with the glass's layout (``q_bin`` centres, ``overlap_distribution`` density, as ``runs/jobs/pspin.py``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nets import mlp

from ._validate import check_int as _check_int
from ._validate import float_leaves as _float_leaves

__all__ = [
    "Interpolation",
    "Surface",
    "BezierCurve",
    "Overlaps",
    "OverlapDistribution",
    "OPTIMIZERS",
    "interpolate",
    "filter_normalized_direction",
    "plane",
    "bezier_point",
    "bezier_curve",
    "barrier",
    "align",
    "overlaps",
    "overlap_distribution",
    "pq_dataset",
]

OPTIMIZERS = ("sgd", "momentum", "adam")


class Interpolation(NamedTuple):
    """Loss (and metrics) along θ(α) = (1-α)θ_a + αθ_b: arrays of shape ``(num,)``."""

    alpha: np.ndarray
    loss: np.ndarray
    metrics: dict[str, np.ndarray]


class Surface(NamedTuple):
    """Loss on the plane θ + x δ + y η: ``loss[j, i]`` is at ``(x[i], y[j])`` (``matplotlib.contour(x, y, loss)``)."""

    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray


class BezierCurve(NamedTuple):
    """A trained quadratic Bézier curve between two networks and its comparison with the straight segment.

    ``control`` is θ_c (a pytree like the endpoints); ``loss`` and ``line_loss`` are L along the curve and along
    the segment at the same ``t``; ``train_loss`` is the sampled objective at each optimizer step.
    """

    control: Any
    t: np.ndarray
    loss: np.ndarray
    line_loss: np.ndarray
    barrier: float
    line_barrier: float
    train_loss: np.ndarray


# ----------------------------------------------------------------------------------------------------------------
# validation and small tree helpers
# ----------------------------------------------------------------------------------------------------------------


def _check_callable(fn, name: str):
    if not callable(fn):
        raise ValueError(f"{name}={fn!r}: must be a callable params -> scalar")


def _check_batch_size(batch_size):
    return None if batch_size is None else _check_int(batch_size, "batch_size", 1)


def _check_like(reference, other, ref_name: str, name: str):
    _float_leaves(other, name)
    ref_def, other_def = jax.tree_util.tree_structure(reference), jax.tree_util.tree_structure(other)
    if ref_def != other_def:
        raise ValueError(f"{name}: its tree structure {other_def} differs from {ref_name}'s {ref_def}")
    for x, y in zip(jax.tree_util.tree_leaves(reference), jax.tree_util.tree_leaves(other), strict=True):
        if jnp.shape(x) != jnp.shape(y):
            raise ValueError(f"{name}: a leaf of shape {jnp.shape(y)} where {ref_name} has {jnp.shape(x)}")


def _dtype(params):
    return jnp.result_type(*jax.tree_util.tree_leaves(params))


def _check_scalar_fn(fn, params, name: str):
    out = jax.eval_shape(fn, params)
    if not hasattr(out, "shape") or out.shape != ():
        raise ValueError(f"{name}: returned {out!r}; must return a scalar")


def _map_points(fn, points, batch_size):
    """``fn`` over the leading axis of ``points``: one vmap, or chunks of ``batch_size`` (bounded memory)."""
    if batch_size is None:
        return jax.vmap(fn)(points)
    return jax.lax.map(fn, points, batch_size=batch_size)


def _lerp(params_a, params_b, alpha):
    # (1-α)a + αb, not a + α(b-a): α = 0 and α = 1 give the endpoints exactly.
    return jax.tree_util.tree_map(lambda a, b: (1 - alpha.astype(a.dtype)) * a + alpha.astype(a.dtype) * b,
                                  params_a, params_b)


def _symmetric_grid(lo: float, hi: float, num: int) -> np.ndarray:
    # lo + (hi - lo)·i/(num-1), computed as one correctly rounded division so grid points that are integers or
    # halves (0, 1, the centre) come out exact.
    i = np.arange(num, dtype=np.float64)
    return (lo * (num - 1 - i) + hi * i) / (num - 1)


# ----------------------------------------------------------------------------------------------------------------
# linear interpolation
# ----------------------------------------------------------------------------------------------------------------


def interpolate(
    loss_fn: Callable[[Any], jax.Array],
    params_a,
    params_b,
    num: int | None = None,
    *,
    alphas=None,
    metrics: Mapping[str, Callable[[Any], jax.Array]] | None = None,
    batch_size: int | None = None,
) -> Interpolation:
    """Loss (and metrics) along the line θ(α) = (1 - α) θ_a + α θ_b, all α in one vmapped batch.

    Args:
      loss_fn: ``params -> scalar``.
      params_a, params_b: two pytrees of the same structure (θ_a at α = 0, θ_b at α = 1).
      num: number of grid points of the default grid, ``α = -0.5 … 1.5`` (41 when neither ``num`` nor ``alphas`` is
        given; 0 and 1 fall on the grid exactly when ``num - 1`` is a multiple of 4).
      alphas: explicit 1-D α values instead of the grid (``num``, if also given, must equal their count).
      metrics: ``{name: params -> scalar}`` evaluated at the same points, e.g. ``{"accuracy": acc_fn}``.
      batch_size: evaluate the points in chunks of this many (bounds memory for large networks).

    Returns:
      ``Interpolation(alpha, loss, metrics)`` of NumPy arrays of shape ``(num,)``.

    Reference: Goodfellow, Vinyals & Saxe 2015 (arXiv:1412.6544).

    Example:
      >>> path = interpolate(lambda p: loss(p, data), net_init, net_trained, 41)
      >>> path.loss[[10, 30]]            # α = 0 and α = 1
    """
    _check_callable(loss_fn, "loss_fn")
    _float_leaves(params_a, "params_a")
    _check_like(params_a, params_b, "params_a", "params_b")
    metrics = {} if metrics is None else metrics
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics={metrics!r}: must be a mapping {{name: params -> scalar}}")
    for name, fn in metrics.items():
        _check_callable(fn, f"metrics[{name!r}]")
    batch_size = _check_batch_size(batch_size)
    if alphas is None:
        num = 41 if num is None else _check_int(num, "num", 2)
        alpha = _symmetric_grid(-0.5, 1.5, num)
    else:
        alpha = np.asarray(alphas, dtype=np.float64)
        if alpha.ndim != 1 or alpha.size == 0 or not np.all(np.isfinite(alpha)):
            raise ValueError(f"alphas={alphas!r}: must be a non-empty 1-D array of finite numbers")
        if num is not None and num != alpha.size:
            raise ValueError(f"num={num!r}: must be None or the number of alphas ({alpha.size})")
    _check_scalar_fn(loss_fn, params_a, "loss_fn")
    for name, fn in metrics.items():
        _check_scalar_fn(fn, params_a, f"metrics[{name!r}]")
    alpha = alpha.astype(_dtype(params_a))
    names = tuple(metrics)

    def path(pa, pb, al):
        def at(one):
            theta = _lerp(pa, pb, one)
            return loss_fn(theta), tuple(metrics[n](theta) for n in names)

        return _map_points(at, al, batch_size)

    # parameters enter as arguments, not as constants folded into the compiled program
    loss, values = jax.jit(path)(params_a, params_b, jnp.asarray(alpha))
    values = {n: np.asarray(v) for n, v in zip(names, values, strict=True)}
    return Interpolation(alpha=alpha, loss=np.asarray(loss), metrics=values)


# ----------------------------------------------------------------------------------------------------------------
# filter-normalized directions and the 2-D surface
# ----------------------------------------------------------------------------------------------------------------


def _filter_normalize(d, w):
    if w.ndim < 2:
        return jnp.zeros_like(w)
    axes = tuple(range(w.ndim - 1))
    w_norm = jnp.sqrt(jnp.sum(jnp.square(w), axis=axes, keepdims=True))
    d_norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=True))
    # A Gaussian column has zero norm with probability 0 (only a float32 underflow): give it zero direction then.
    return d * jnp.where(d_norm > 0, w_norm / jnp.where(d_norm > 0, d_norm, 1), 0)


@jax.jit
def _directions(key, params):
    # One Gaussian draw for the whole network, cut into the leaves (one generator call keeps the program small).
    flat, unravel = mlp.flatten(params)
    noise = unravel(jax.random.normal(key, flat.shape, flat.dtype))
    return jax.tree_util.tree_map(_filter_normalize, noise, params)


def filter_normalized_direction(key: jax.Array, params):
    """A Gaussian direction in parameter space, rescaled filter by filter to the norms of the weights.

    For every leaf of ≥ 2 dimensions (a weight whose last axis indexes output units, e.g. a dense ``w`` of shape
    ``(fan_in, fan_out)``): ``d[..., j] ~ N(0, 1)`` entrywise, then ``d[..., j] ← d[..., j] ‖w[..., j]‖ / ‖d[..., j]‖``.
    Biases and every other 1-D or scalar leaf get a zero direction.

    Reference: Li et al. 2018 (arXiv:1712.09913), §4 (filter-wise normalization; biases get zero direction).

    Example:
      >>> d = filter_normalized_direction(jax.random.key(0), net)     # same pytree structure as net
    """
    _float_leaves(params, "params")
    return _directions(key, params)


def plane(
    loss_fn: Callable[[Any], jax.Array],
    params,
    *,
    key: jax.Array | None = None,
    num: int = 21,
    span: float = 1.0,
    directions=None,
    batch_size: int | None = None,
) -> Surface:
    """The loss on the plane ``θ + x δ + y η``, ``x, y ∈ [-span, span]``, ``num × num`` points in one vmapped batch.

    Args:
      loss_fn: ``params -> scalar``.
      params: the centre θ.
      key: PRNG key for the two filter-normalized directions (:func:`filter_normalized_direction`); unused when
        ``directions`` is given.
      num: grid points per axis (odd puts the centre θ itself on the grid, at index ``num // 2``).
      span: half-width of the grid in units of the directions.
      directions: ``(δ, η)``, two pytrees shaped like ``params``, instead of random ones.
      batch_size: evaluate the points in chunks of this many.

    Returns:
      ``Surface(x, y, loss)`` with ``loss[j, i] = L(θ + x[i] δ + y[j] η)``.

    Reference: Li et al. 2018 (arXiv:1712.09913), §3–4.
    """
    _check_callable(loss_fn, "loss_fn")
    _float_leaves(params, "params")
    num = _check_int(num, "num", 2)
    span = float(span)
    if not (np.isfinite(span) and span > 0):
        raise ValueError(f"span={span!r}: must be a finite number > 0")
    batch_size = _check_batch_size(batch_size)
    if directions is None:
        if key is None:
            raise ValueError("key=None: a PRNG key is needed to draw the directions (or pass directions=(δ, η))")
        k_x, k_y = jax.random.split(key)
        directions = (filter_normalized_direction(k_x, params), filter_normalized_direction(k_y, params))
    if not (isinstance(directions, (tuple, list)) and len(directions) == 2):
        raise ValueError(f"directions: got {type(directions).__name__}; must be a pair (δ, η) of pytrees like params")
    for i, d in enumerate(directions):
        _check_like(params, d, "params", f"directions[{i}]")
    _check_scalar_fn(loss_fn, params, "loss_fn")
    dtype = _dtype(params)
    coords = (span * _symmetric_grid(-1.0, 1.0, num)).astype(dtype)
    gx, gy = np.meshgrid(coords, coords)  # "xy" indexing: gx[j, i] = x[i], gy[j, i] = y[j]
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)

    def surface(centre, d_x, d_y, pts):
        def at(xy):
            theta = jax.tree_util.tree_map(lambda p, u, v: p + xy[0] * u.astype(p.dtype) + xy[1] * v.astype(p.dtype),
                                           centre, d_x, d_y)
            return loss_fn(theta)

        return _map_points(at, pts, batch_size)

    loss = jax.jit(surface)(params, directions[0], directions[1], jnp.asarray(points))
    return Surface(x=coords, y=coords.copy(), loss=np.asarray(loss).reshape(num, num))


# ----------------------------------------------------------------------------------------------------------------
# Bézier curves (mode connectivity) and barriers
# ----------------------------------------------------------------------------------------------------------------


def bezier_point(params_a, control, params_b, t):
    """φ(t) = (1 - t)² θ_a + 2 t (1 - t) θ_c + t² θ_b for a scalar ``t`` (traceable; t = 0, 1 give the ends exactly).

    Reference: Garipov et al. 2018 (arXiv:1802.10026), §3, the quadratic Bézier curve.
    """
    t = jnp.asarray(t)

    def one(a, c, b):
        s = t.astype(a.dtype)
        return jnp.square(1 - s) * a + (2 * s * (1 - s)) * c + jnp.square(s) * b

    return jax.tree_util.tree_map(one, params_a, control, params_b)


def barrier(losses_along_path) -> float:
    """``max_k L_k - max(L_0, L_K)``: the height of a path's highest point above its higher endpoint.

    ``losses_along_path`` is the loss at ``t_0 = 0 < … < t_K = 1`` (first and last entries are the endpoints).
    It is ≥ 0, and 0 for a path never above its ends. Reference: Garipov et al. 2018 (arXiv:1802.10026).
    """
    losses = np.asarray(losses_along_path, dtype=np.float64)
    if losses.ndim != 1 or losses.size < 2:
        raise ValueError(f"losses_along_path: shape {losses.shape}; must be 1-D with at least 2 entries (the ends)")
    return float(np.max(losses) - max(losses[0], losses[-1]))


def _make_optimizer(optimizer: str, learning_rate) -> optax.GradientTransformation:
    if optimizer == "sgd":
        return optax.sgd(learning_rate)
    if optimizer == "momentum":
        return optax.sgd(learning_rate, momentum=0.9)
    return optax.adam(learning_rate)


def bezier_curve(
    loss_fn: Callable[[Any], jax.Array],
    params_a,
    params_b,
    *,
    key: jax.Array,
    num_steps: int,
    learning_rate,
    optimizer: str = "adam",
    samples_per_step: int = 1,
    num_eval: int = 65,
    init_noise: float = 0.0,
    batch_size: int | None = None,
) -> BezierCurve:
    """Train the control point θ_c of a quadratic Bézier curve between two networks to minimize E_t L(φ(t)).

    θ_c starts at the midpoint (θ_a + θ_b)/2, where the curve is the straight segment; ``num_steps`` optimizer
    steps (one ``lax.scan``) follow, step k drawing ``samples_per_step`` values ``t ~ U(0, 1)`` from
    ``fold_in(key, k)`` and descending the mean of ``L(φ(t))`` over them. Then curve and segment are evaluated at
    ``num_eval`` equally spaced t (odd includes t = 1/2) and their barriers compared.

    Args:
      loss_fn: ``params -> scalar`` (differentiable).
      params_a, params_b: the two endpoints (pytrees of the same structure), held fixed.
      key: PRNG key (the draws of t, and the initial perturbation when ``init_noise > 0``).
      num_steps: optimizer steps (0 returns the untrained midpoint curve, i.e. the segment).
      learning_rate: a number > 0 or an optax schedule ``step -> rate``.
      optimizer: ``"sgd"``, ``"momentum"`` (0.9) or ``"adam"``.
      samples_per_step: values of t averaged per step.
      num_eval: points of t at which curve and segment are evaluated (≥ 2).
      init_noise: add to the midpoint a random vector of length ``init_noise · ‖θ_b - θ_a‖``. The midpoint is a
        stationary point of E_t L(φ(t)) whenever the loss is symmetric under a reflection that swaps θ_a and θ_b
        (a toy valley, or two networks related by a symmetry); a small ``init_noise`` breaks that tie.
      batch_size: evaluate the ``num_eval`` points in chunks of this many.

    Returns:
      ``BezierCurve(control, t, loss, line_loss, barrier, line_barrier, train_loss)``.

    Reference: Garipov et al. 2018 (arXiv:1802.10026), §3.
    """
    _check_callable(loss_fn, "loss_fn")
    _float_leaves(params_a, "params_a")
    _check_like(params_a, params_b, "params_a", "params_b")
    num_steps = _check_int(num_steps, "num_steps", 0)
    samples_per_step = _check_int(samples_per_step, "samples_per_step", 1)
    num_eval = _check_int(num_eval, "num_eval", 2)
    batch_size = _check_batch_size(batch_size)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}: must be one of {', '.join(map(repr, OPTIMIZERS))}")
    if not callable(learning_rate):
        lr = float(learning_rate)
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"learning_rate={learning_rate!r}: must be a finite number > 0 or an optax schedule")
        learning_rate = lr
    init_noise = float(init_noise)
    if not (np.isfinite(init_noise) and init_noise >= 0):
        raise ValueError(f"init_noise={init_noise!r}: must be a finite number ≥ 0")
    _check_scalar_fn(loss_fn, params_a, "loss_fn")

    dtype = _dtype(params_a)
    k_init, k_train = jax.random.split(key)
    opt = _make_optimizer(optimizer, learning_rate)

    # The endpoints enter the compiled programs as arguments, not as constants folded into them.
    def start(pa, pb):
        control = jax.tree_util.tree_map(lambda a, b: 0.5 * a + 0.5 * b, pa, pb)
        if init_noise == 0:
            return control
        flat_a, unravel = mlp.flatten(pa)
        flat_b, _ = mlp.flatten(pb)
        g = jax.random.normal(k_init, flat_a.shape, flat_a.dtype)
        kick = g * (init_noise * jnp.linalg.norm(flat_b - flat_a) / jnp.linalg.norm(g))
        return jax.tree_util.tree_map(jnp.add, control, unravel(kick))

    def train(pa, pb):
        def objective(c, ts):
            return jnp.mean(jax.vmap(lambda t: loss_fn(bezier_point(pa, c, pb, t)))(ts))

        def step(carry, k):
            c, state = carry
            ts = jax.random.uniform(jax.random.fold_in(k_train, k), (samples_per_step,), dtype)
            value, grad = jax.value_and_grad(objective)(c, ts)
            # optax mixes Python floats with int32 step counts: its arithmetic runs under the standard promotion.
            with jax.numpy_dtype_promotion("standard"):
                updates, state = opt.update(grad, state, c)
                c = optax.apply_updates(c, updates)
            return (c, state), value

        c = start(pa, pb)
        with jax.numpy_dtype_promotion("standard"):
            state = opt.init(c)
        (c, _), values = jax.lax.scan(step, (c, state), jnp.arange(num_steps))
        return c, values

    def evaluate(pa, c, pb, ts):
        def both(s):
            return loss_fn(bezier_point(pa, c, pb, s)), loss_fn(_lerp(pa, pb, s))

        return _map_points(both, ts, batch_size)

    control, train_loss = jax.jit(train)(params_a, params_b)
    t = _symmetric_grid(0.0, 1.0, num_eval).astype(dtype)
    curve, line = jax.jit(evaluate)(params_a, control, params_b, jnp.asarray(t))
    curve, line = np.asarray(curve), np.asarray(line)
    return BezierCurve(control=control, t=t, loss=curve, line_loss=line, barrier=barrier(curve),
                       line_barrier=barrier(line), train_loss=np.asarray(train_loss))


# Alignment, overlaps and P(q) live in bridges.overlaps; re-exported here (bridges.paths.overlaps is public).
from .overlaps import (  # noqa: E402
    OverlapDistribution,
    Overlaps,
    align,
    overlap_distribution,
    overlaps,
    pq_dataset,
)
