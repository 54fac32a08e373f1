"""Multilayer perceptrons as immutable pytrees with pure ``init`` / ``apply``.

A network of widths ``(n_0, n_1, …, n_L)`` computes, for an input ``h^0 = x``,

    z^l = h^{l-1} W^l + b^l,      h^l = φ(z^l)      (l = 1 … L-1),      output = z^L (logits, no φ),

with the mean-field initialization of Poole et al. 2016 (arXiv:1606.05340, eq. 1):
``W^l_ij ~ N(0, σ_w² / n_{l-1})``, ``b^l_i ~ N(0, σ_b²)``.

Blocks (``block=``) change the hidden layers whose input and output widths are equal:

- ``"plain"``: the layer above.
- ``"residual"``: ``h^l = h^{l-1} + φ(z^l)`` (He et al. 2016, arXiv:1512.03385, eq. 1, without normalization).
- ``"fractal"``: a FractalNet block with ``columns = C`` (Larsson et al. 2017, arXiv:1605.07648, eq. 1):
  ``f_1(h) = φ(h W + b)``, ``f_{C+1}(h) = join(f_C ∘ f_C (h), f_1(h))`` with ``join`` the element-wise mean; a block
  holds ``2^C - 1`` dense layers and its deepest path has ``2^{C-1}`` of them.

The network is a frozen dataclass registered as a pytree: the weights are leaves, the activation and block kind are
static metadata, so optax, ``jax.vmap`` (many seeds at once) and ``jax.jit`` see only arrays. ``apply`` accepts one
example ``(n_0,)`` or a batch ``(B, n_0)``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = [
    "Dense",
    "Fractal",
    "MLP",
    "ACTIVATIONS",
    "BLOCKS",
    "init",
    "apply",
    "hidden_activations",
    "param_count",
    "flatten",
    "unflatten",
    "widths",
    "spec",
    "from_spec",
    "weight_norm",
]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "linear": lambda z: z,
}
BLOCKS = ("plain", "residual", "fractal")
# Default σ_w: He (√2) for the rectifiers, 1 (the edge of chaos at σ_b = 0 for tanh) otherwise.
_DEFAULT_WEIGHT_STD = {"relu": math.sqrt(2.0), "gelu": math.sqrt(2.0), "tanh": 1.0, "linear": 1.0}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Dense:
    """One affine layer: ``w`` of shape ``(fan_in, fan_out)``, ``b`` of shape ``(fan_out,)``."""

    w: jax.Array
    b: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Fractal:
    """A FractalNet block of ``C ≥ 2`` columns: ``mean(second(first(h)), short(h))``.

    ``first`` and ``second`` are blocks of ``C - 1`` columns (a :class:`Dense` when ``C - 1 == 1``), ``short`` is
    a :class:`Dense`.
    """

    first: Any
    second: Any
    short: Dense


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MLP:
    """A multilayer perceptron: a tuple of layers (``Dense`` or ``Fractal``) and static metadata."""

    layers: tuple
    activation: str = dataclasses.field(default="relu", metadata=dict(static=True))
    block: str = dataclasses.field(default="plain", metadata=dict(static=True))


def _dense(key, fan_in: int, fan_out: int, weight_std: float, bias_std: float) -> Dense:
    kw, kb = jax.random.split(key)
    w = jax.random.normal(kw, (fan_in, fan_out), jnp.float32) * (weight_std / math.sqrt(fan_in))
    b = jax.random.normal(kb, (fan_out,), jnp.float32) * bias_std
    return Dense(w=w, b=b)


def _fractal(key, width: int, columns: int, weight_std: float, bias_std: float):
    if columns == 1:
        return _dense(key, width, width, weight_std, bias_std)
    k1, k2, k3 = jax.random.split(key, 3)
    return Fractal(
        first=_fractal(k1, width, columns - 1, weight_std, bias_std),
        second=_fractal(k2, width, columns - 1, weight_std, bias_std),
        short=_dense(k3, width, width, weight_std, bias_std),
    )


def init(
    key: jax.Array,
    widths,
    *,
    activation: str = "relu",
    weight_std: float | None = None,
    bias_std: float = 0.0,
    block: str = "plain",
    columns: int = 3,
) -> MLP:
    """Random MLP of ``widths = (n_in, n_1, …, n_out)``: ``W_ij ~ N(0, σ_w²/fan_in)``, ``b_i ~ N(0, σ_b²)``.

    Args:
      key: PRNG key (one layer key is split off per layer).
      widths: the layer widths, at least two (input and output).
      activation: ``"relu"``, ``"tanh"``, ``"gelu"`` or ``"linear"`` (the last layer is always linear).
      weight_std: σ_w (default √2 for relu/gelu, 1 for tanh/linear).
      bias_std: σ_b.
      block: ``"plain"``, ``"residual"`` or ``"fractal"``; residual and fractal blocks replace the hidden layers
        whose input and output widths are equal.
      columns: FractalNet columns C for ``block="fractal"`` (``2^C - 1`` dense layers per block).

    Reference: Poole et al. 2016 (arXiv:1606.05340), eq. 1, for the initialization.

    Example:
      >>> net = init(jax.random.key(0), (64, 128, 128, 10), activation="tanh", weight_std=1.5, bias_std=0.05)
      >>> logits = apply(net, jnp.zeros((32, 64)))      # (32, 10)
    """
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ValueError(f"widths={widths!r}: must be at least two positive integers (input, ..., output)")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}: must be one of {', '.join(map(repr, ACTIVATIONS))}")
    if block not in BLOCKS:
        raise ValueError(f"block={block!r}: must be one of {', '.join(map(repr, BLOCKS))}")
    if int(columns) < 1 or int(columns) > 8:
        raise ValueError(f"columns={columns!r}: must be an integer in 1..8")
    weight_std = _DEFAULT_WEIGHT_STD[activation] if weight_std is None else float(weight_std)
    if not weight_std > 0:
        raise ValueError(f"weight_std={weight_std!r}: must be > 0")
    if not float(bias_std) >= 0:
        raise ValueError(f"bias_std={bias_std!r}: must be ≥ 0")
    keys = jax.random.split(key, len(widths) - 1)
    layers = []
    for i, (k, a, b) in enumerate(zip(keys, widths[:-1], widths[1:])):
        hidden = i < len(widths) - 2
        if block == "fractal" and hidden and a == b and columns > 1:
            layers.append(_fractal(k, a, int(columns), weight_std, float(bias_std)))
        else:
            layers.append(_dense(k, a, b, weight_std, float(bias_std)))
    return MLP(layers=tuple(layers), activation=activation, block=block)


def _dropout(key, h, rate):
    keep = jax.random.bernoulli(key, 1.0 - rate, h.shape)
    return jnp.where(keep, h / (1.0 - rate), jnp.zeros_like(h))


def _block(layer, h, phi):
    if isinstance(layer, Dense):
        return phi(h @ layer.w + layer.b)
    deep = _block(layer.second, _block(layer.first, h, phi), phi)
    return 0.5 * (deep + _block(layer.short, h, phi))


def _forward(params: MLP, x, *, key=None, dropout=0.0, keep_hidden=False):
    phi = ACTIVATIONS[params.activation]
    h = jnp.asarray(x, jnp.float32)
    hidden = []
    last = len(params.layers) - 1
    keys = None if key is None else jax.random.split(key, max(last, 1))
    for i, layer in enumerate(params.layers):
        if i == last:
            return h @ layer.w + layer.b, hidden
        out = _block(layer, h, phi)
        if params.block == "residual" and out.shape == h.shape:
            out = h + out
        if keys is not None:
            out = _dropout(keys[i], out, dropout)
        h = out
        if keep_hidden:
            hidden.append(h)
    raise AssertionError("unreachable")


def apply(params: MLP, x: jax.Array, *, key: jax.Array | None = None, dropout: float | jax.Array = 0.0) -> jax.Array:
    """The network's output (logits) for one example ``(n_in,)`` or a batch ``(B, n_in)``.

    With ``key`` given, inverted dropout of rate ``dropout`` is applied to every hidden layer's output
    (Srivastava et al. 2014, JMLR 15:1929): ``h → m ⊙ h / (1 - p)``, ``m_i ~ Bernoulli(1 - p)``.
    """
    return _forward(params, x, key=key, dropout=dropout)[0]


def hidden_activations(params: MLP, x: jax.Array) -> list[jax.Array]:
    """The post-activation outputs ``h^1 … h^{L-1}`` of every hidden layer (for signal-propagation studies)."""
    return _forward(params, x, keep_hidden=True)[1]


def param_count(params) -> int:
    """Number of scalar parameters (a Python int)."""
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))


def flatten(params) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """``(vector, unflatten_fn)``: all parameters as one 1-D array and the function that rebuilds the pytree."""
    return ravel_pytree(params)


def unflatten(template, vector: jax.Array):
    """Rebuild a pytree shaped like ``template`` from a 1-D ``vector`` of :func:`param_count` entries."""
    size = param_count(template)
    if vector.shape != (size,):
        raise ValueError(f"vector.shape={vector.shape!r}: must be ({size},), the parameter count of the template")
    return ravel_pytree(template)[1](vector)


def weight_norm(params) -> jax.Array:
    """Global Euclidean norm of all parameters ``‖θ‖₂``."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(params)))


def _layer_columns(layer) -> int:
    return 1 if isinstance(layer, Dense) else 1 + _layer_columns(layer.first)


def _layer_shape(layer) -> tuple[int, int]:
    while not isinstance(layer, Dense):
        layer = layer.short
    return tuple(layer.w.shape)


def widths(params: MLP) -> tuple[int, ...]:
    """The layer widths ``(n_in, …, n_out)`` of a network."""
    shapes = [_layer_shape(layer) for layer in params.layers]
    return (shapes[0][0], *[s[1] for s in shapes])


def spec(params: MLP) -> str:
    """A JSON string describing the network's structure (widths, activation, block, columns) — no weights."""
    cols = max((_layer_columns(layer) for layer in params.layers), default=1)
    return json.dumps(
        {"widths": list(widths(params)), "activation": params.activation, "block": params.block, "columns": cols}
    )


def from_spec(text: str) -> MLP:
    """A network with the structure described by :func:`spec` (weights drawn from a fixed key; fill them in)."""
    s = json.loads(text)
    return init(jax.random.key(0), s["widths"], activation=s["activation"], block=s["block"],
                columns=max(int(s.get("columns", 1)), 1) if s["block"] == "fractal" else 3)
