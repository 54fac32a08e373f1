"""Choromanska et al.'s map of a ReLU network's loss to the H-spin spherical glass, made explicit and checkable.

Choromanska, Henaff, Mathieu, Ben Arous & LeCun, "The loss surfaces of multilayer networks", AISTATS 2015
(arXiv:1412.0233), §3. A network of depth H (H − 1 ReLU hidden layers of widths n_1 … n_{H−1}, no biases, one
linear output) computes, for an input x ∈ R^{n_0},

    Y(x) = Σ_π x_{i(π)} A_π(x) Π_{k=1}^{H} w_π^{(k)},

a sum over the ``n_0 n_1 ⋯ n_{H−1}`` input-to-output paths π, with ``w_π^{(k)}`` the weight of π in layer k,
``i(π)`` its input and ``A_π(x) ∈ {0, 1}`` whether every unit on π is active (exact for ReLU: the network is
piecewise linear). Their assumptions, and what this module does with each:

* **A1p** — every ``A_π`` is Bernoulli(ρ), the same ρ for all paths; **A2p** — the A's are independent of the
  inputs (and of each other). Then ``E_A[Y(x)] = ρ Σ_π x_{i(π)} Π_k w_π^{(k)}`` exactly: ρ times the output of
  the *linear* network with the same weights. ρ is given, or estimated as the mean fraction of active paths over
  the data, ``ρ̂ = mean_t Π_{l<H} (#active units of layer l at x_t)/n_l`` (every path through active units is
  active, and the network is fully connected).
* The **loss** is the hinge loss with labels y_t = ±1 in its linear region, ``L = (1/N) Σ_t (1 − y_t Y(x_t))``
  (equal to ``max(0, 1 − yY)`` whenever no margin exceeds 1, the regime of their reduction), so
  ``E_A[L](w) = 1 − ρ Σ_π X_{i(π)} Π_k w_π^{(k)}`` with ``X_i = (1/N) Σ_t y_t x_{t,i}`` (one logit of a
  classifier: one-vs-rest labels).
* **A3p** (redundancy): Λ distinct weights, every H-tuple of them equally often on a path. Here the Λ distinct
  weights are the network's own weights (hidden layers and the chosen output column); the path tuples are the
  nonzero entries of the coupling tensor — no uniform redundancy is assumed, so the map is exact, and
  ``path_fraction`` (#paths / Λ^H) says how far the support is from their uniform tuples.
* **A4** (spherical constraint): ``Σ w² = Λ C²``; the spins are ``s = √Λ w/|w|`` (|s|² = Λ) and the radius enters
  ``weight_scale = |w|/√Λ``.
* **A5u/A6u**: the couplings ``X_{i1…iH}`` are i.i.d. N(0, 1). This is what makes the glass *random*; it is not
  checkable on one data set. The couplings are normalized as if it held: ``X_i / x_rms`` (x_rms the rms of X over
  inputs), with Choromanska's ``Λ^{−(H−1)/2}`` (ABC units), then divided by √2 for CS units.

Result: the mapped CS energy ``H(s) = −κ Σ_π X_{i(π)} Π_k s_π^{(k)}``, ``κ = 1/(√2 x_rms Λ^{(H−1)/2})``, and

    E_A[L](w) = loss_offset + loss_scale · H(s),    loss_offset = 1,  loss_scale = ρ (|w|/√Λ)^H / κ.

``model`` is that H as a ``physics.spherical.PSpin`` of degree H with the dense symmetric tensor
``S = sym(κ X_{i(π)} at the path tuples)`` (built when Λ^H floats fit ``max_tensor_bytes``); :func:`path_energy`
evaluates the same H at any size as a product of the weight matrices. ``coupling_strength`` is the c_H of
``PSpin.random`` with the same tensor norm (what A5u/A6u would make the couplings). ``network_loss`` is the
linearized hinge loss of the actual ReLU network: its gap to ``loss_offset + loss_scale·H(s)`` is the cost of
A1p/A2p on these data.

What the map cannot claim: the landscape statistics of the random H-spin glass (complexity, threshold, the band of
minima) apply to the network only through A5u/A6u and uniform redundancy, which real data and architectures
violate (the couplings here take only n_0 distinct values and live on a vanishing fraction of tuples).
"""
from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nets import mlp
from physics import spherical

__all__ = ["ChoromanskaMap", "choromanska", "path_energy", "expected_loss", "activation_rate"]

_DEFAULT_TENSOR_BYTES = 1 << 26  # 64 MiB: the dense tensor is Λ^H float32 numbers


class ChoromanskaMap(NamedTuple):
    """The mapped H-spin glass and its bookkeeping (module docstring).

    ``model``: ``PSpin`` (CS units) or None when Λ^H is too large; ``spins``: the network's weights on the sphere
    |s|² = Λ (hidden layers row-major, then the output column); ``inputs``: X (n_0,); ``shapes``: the (fan_in,
    fan_out) of each layer in ``spins`` (the last is (n_{H−1}, 1)); ``rho``; ``num_weights`` Λ; ``depth`` H;
    ``weight_scale`` |w|/√Λ; ``input_scale`` x_rms; ``coupling`` κ; ``loss_offset``, ``loss_scale``;
    ``coupling_strength`` c_H; ``path_fraction``; ``network_loss``; ``bias_norm`` (of dropped biases, else 0).
    """

    model: spherical.PSpin | None
    spins: jax.Array
    inputs: np.ndarray
    shapes: tuple
    rho: float
    num_weights: int
    depth: int
    weight_scale: float
    input_scale: float
    coupling: float
    loss_offset: float
    loss_scale: float
    coupling_strength: float
    path_fraction: float
    network_loss: float
    bias_norm: float


def _layers(params) -> list[mlp.Dense]:
    if not isinstance(params, mlp.MLP):
        raise ValueError(f"params={type(params).__name__}: must be a nets.mlp.MLP")
    if params.activation != "relu":
        raise ValueError(f"params.activation={params.activation!r}: the path expansion needs 'relu'")
    if not all(isinstance(layer, mlp.Dense) for layer in params.layers) or params.block != "plain":
        raise ValueError(f"params.block={params.block!r}: must be 'plain' (dense layers only)")
    if np.ndim(params.layers[0].w) != 2:
        raise ValueError("params: one network, not a stack (map each member of a stack separately)")
    depth = len(params.layers)
    if not 2 <= depth <= 8:
        raise ValueError(f"params: depth H = {depth} layers; the map needs 2 ≤ H ≤ 8 (H − 1 hidden layers)")
    return list(params.layers)


def _targets(y, output, num_out) -> tuple[np.ndarray, int]:
    y = np.asarray(y)
    if output is None:
        if num_out != 1:
            raise ValueError(f"output=None: the network has {num_out} outputs; pick one logit with output=k")
        if not np.all(np.isin(y, (-1, 1))):
            raise ValueError("data: labels must be ±1 for a network with one output (or pass output=k)")
        return y.astype(np.float64), 0
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)) or not 0 <= output < num_out:
        raise ValueError(f"output={output!r}: must be an integer in 0..{num_out - 1}")
    return np.where(y == output, 1.0, -1.0), int(output)


def activation_rate(params, x) -> float:
    """ρ̂: the fraction of active input-to-output paths of the bias-free network, averaged over ``x`` (N, n_0).

    A path is active when every hidden unit on it is, so the fraction at x is ``Π_l (#active in layer l)/n_l``
    (the same for every output).
    """
    mats = [np.asarray(layer.w, np.float64) for layer in _layers(params)]
    hidden = _forward(mats, np.asarray(x, np.float64))[:-1]
    rate = np.ones(np.shape(x)[0])
    for h in hidden:
        rate = rate * np.mean(h > 0, axis=1)
    return float(np.mean(rate))


def _matrices(spins: jax.Array, shapes) -> list[jax.Array]:
    out, start = [], 0
    for a, b in shapes:
        out.append(spins[start:start + a * b].reshape(a, b))
        start += a * b
    return out


def path_energy(record: ChoromanskaMap, s: jax.Array) -> jax.Array:
    """``H(s) = −κ Σ_π X_{i(π)} Π_k s_π^{(k)} = −κ Xᵀ S_1 S_2 ⋯ S_H`` for spins s of shape (Λ,): O(Λ) work."""
    v = jnp.asarray(record.inputs, jnp.float32)
    for m in _matrices(jnp.asarray(s), record.shapes):
        v = v @ m
    return -jnp.float32(record.coupling) * v[0]


def expected_loss(record: ChoromanskaMap, s: jax.Array) -> jax.Array:
    """``loss_offset + loss_scale · H(s)`` at spins s on the sphere |s|² = Λ: the loss averaged over activation
    patterns (A1p/A2p) of the network whose weights are ``weight_scale · s``; ``s = record.spins`` is the
    network itself."""
    return jnp.float32(record.loss_offset) + jnp.float32(record.loss_scale) * path_energy(record, s)


def _dense_tensor(inputs, shapes, kappa, num_weights, depth) -> np.ndarray:
    """The symmetric tensor S with ``Σ_{ordered} S s^H = κ Σ_π X_{i(π)} Π s``: each path's coefficient spread
    evenly over the H! orderings of its weight indices (distinct: one weight per layer)."""
    offsets = np.cumsum([0] + [a * b for a, b in shapes])[:-1]
    units = np.meshgrid(*[np.arange(shapes[0][0])] + [np.arange(b) for _, b in shapes[:-1]], indexing="ij")
    idx = [offsets[k] + units[k] * shapes[k][1] + units[k + 1] for k in range(depth - 1)]
    idx = [i.ravel() for i in idx] + [(offsets[-1] + units[-1]).ravel()]  # the weight of layer k on each path
    coef = kappa * inputs[units[0].ravel()] / math.factorial(depth)
    tensor = np.zeros((num_weights,) * depth, np.float64)
    for perm in itertools.permutations(range(depth)):
        tensor[tuple(idx[k] for k in perm)] += coef  # one ordering: every path hits a different entry
    return tensor


def choromanska(params, data, *, rho: float | None = None, output: int | None = None, drop_biases: bool = False,
                max_tensor_bytes: int = _DEFAULT_TENSOR_BYTES) -> ChoromanskaMap:
    """Map a ReLU MLP and a labelled data set to the H-spin spherical glass of Choromanska et al. (module doc).

    Args:
      params: a ``nets.mlp.MLP`` with ``activation="relu"``, ``block="plain"``, 2 ≤ H ≤ 8 layers, zero biases.
      data: ``(x, y)`` (a ``nets.data.Labelled``): inputs (N, n_0); labels ±1 for a one-output network, or class
        indices with ``output=k`` (one-vs-rest: y = +1 for class k).
      rho: the path activation probability of A1p (default: :func:`activation_rate` on x).
      output: which logit to map (required when the network has several outputs).
      drop_biases: ignore nonzero biases (their norm is recorded) instead of refusing the network.
      max_tensor_bytes: build the dense ``PSpin`` only if its Λ^H float32 tensor fits (else ``model=None``).

    Returns:
      A :class:`ChoromanskaMap`; ``record.model.energy(record.spins)`` (or :func:`path_energy`) is H(s), and
      ``loss_offset + loss_scale · H`` the expected loss under A1p/A2p.

    Example:
      >>> net = mlp.init(jax.random.key(0), (4, 3, 3, 1))
      >>> record = choromanska(net, (x, y))
      >>> record.loss_offset + record.loss_scale * record.model.energy(record.spins)
    """
    layers = _layers(params)
    depth = len(layers)
    x = np.asarray(data[0], np.float64)
    n0 = layers[0].w.shape[0]
    if x.ndim != 2 or x.shape[1] != n0 or x.shape[0] < 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"data: x.shape={x.shape} must be (N, {n0}) and finite")
    y, col = _targets(data[1], output, layers[-1].w.shape[1])
    if y.shape != (x.shape[0],):
        raise ValueError(f"data: y.shape={y.shape} must be ({x.shape[0]},)")
    biases = [np.asarray(layer.b, np.float64) for layer in layers[:-1]] + [np.asarray(layers[-1].b)[col:col + 1]]
    bias_norm = float(math.sqrt(sum(float(np.sum(b * b)) for b in biases)))
    if bias_norm > 0 and not drop_biases:
        raise ValueError(f"params: biases of norm {bias_norm:.3g}; the path expansion has none — train without "
                         "biases, or pass drop_biases=True to ignore them")
    if rho is None:
        rho = activation_rate(params, x)
    if not (isinstance(rho, (int, float, np.floating)) and 0 < float(rho) <= 1):
        raise ValueError(f"rho={rho!r}: must be a number in (0, 1]")
    rho = float(rho)
    mats = [np.asarray(layer.w, np.float64) for layer in layers[:-1]] + [np.asarray(layers[-1].w)[:, col:col + 1]]
    shapes = tuple(m.shape for m in mats)
    flat = np.concatenate([m.reshape(-1) for m in mats])
    lam = int(flat.size)
    norm = float(np.linalg.norm(flat))
    if norm == 0:
        raise ValueError("params: all weights are zero")
    inputs = (y[:, None] * x).mean(axis=0)
    x_rms = float(np.sqrt(np.mean(inputs**2)))
    if x_rms == 0:
        raise ValueError("data: the label-weighted input mean X = mean(y x) is zero; the mapped glass vanishes")
    kappa = 1.0 / (math.sqrt(2.0) * x_rms * lam ** ((depth - 1) / 2))
    weight_scale = norm / math.sqrt(lam)
    num_paths = math.prod(m.shape[0] for m in mats)
    # |S|_F² = Σ_π (κ X)² / H! (the H! orderings of a path are distinct tuples); PSpin.random has
    # E|S|_F² = c² C(Λ+H−1, H) / (2 Λ^{H−1})
    frob2 = kappa**2 * float(np.sum(inputs**2)) * (num_paths // n0) / math.factorial(depth)
    strength = math.sqrt(2.0 * lam ** (depth - 1) * frob2 / math.comb(lam + depth - 1, depth))
    spins = jnp.asarray(flat * (math.sqrt(lam) / norm), jnp.float32)
    model = None
    if 4 * lam**depth <= max_tensor_bytes:
        tensor = _dense_tensor(inputs, shapes, kappa, lam, depth)
        model = spherical.PSpin(tensors=(jnp.asarray(tensor, jnp.float32),), seeds=jnp.zeros((1, 2), jnp.uint32),
                                n=lam, degrees=(depth,), weights=(strength,), couplings="dense", block=lam)
    logits = _forward(mats, x)[-1][:, 0]
    return ChoromanskaMap(
        model=model,
        spins=spins,
        inputs=inputs,
        shapes=shapes,
        rho=rho,
        num_weights=lam,
        depth=depth,
        weight_scale=weight_scale,
        input_scale=x_rms,
        coupling=kappa,
        loss_offset=1.0,
        loss_scale=rho * weight_scale**depth / kappa,
        coupling_strength=strength,
        path_fraction=num_paths / float(lam) ** depth,
        network_loss=float(np.mean(1.0 - y * logits)),
        bias_norm=bias_norm,
    )


def _forward(mats, x) -> list[np.ndarray]:
    """Hidden activations and output of the bias-free ReLU network (what the path expansion describes)."""
    out, h = [], x
    for m in mats[:-1]:
        h = np.maximum(h @ m, 0.0)
        out.append(h)
    out.append(h @ mats[-1])
    return out
