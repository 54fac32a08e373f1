"""Restricted Boltzmann machines with ±1 units, trained by persistent contrastive divergence: variational RG.

Energy of visible spins ``v ∈ {±1}^{n_v}`` and hidden spins ``h ∈ {±1}^{n_h}``::

    E(v, h) = -vᵀ W h - aᵀ v - cᵀ h,         p(v, h) = e^{-E} / Z
    F(v)    = -aᵀ v - Σ_j ln 2cosh(c_j + (vᵀ W)_j)      (free energy, p(v) = e^{-F(v)} / Z)
    P(h_j = +1 | v) = σ(2 (c_j + (vᵀW)_j)),  E[h_j | v] = tanh(c_j + (vᵀW)_j)   (and v given h likewise)

Units are Ising spins (±1), not 0/1 bits, so a trained RBM reads directly as an Ising model: marginalizing the
hidden layer gives an effective visible Hamiltonian, which is the variational RG of Mehta & Schwab
(arXiv:1410.3831, Eqs. 11–14). 0/1 units are the affine map ``n = (s+1)/2`` of the same family.

Training maximizes the log-likelihood; its gradient is ``<∂E>_data - <∂E>_model`` where the model average comes
from persistent Gibbs chains (Tieleman, ICML 2008), optimized with optax; an optional L1 penalty ``λ Σ|W|``
localizes receptive fields (as in Mehta–Schwab). A fixed connectivity ``mask`` restricts W.

Lives in ``nets/`` (not ``physics/``): an RBM is a trainable network with optax state; it *becomes* a physics
model only through the comparisons here (receptive fields, block-spin correlations, effective couplings).
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "RBM",
    "init",
    "free_energy",
    "energy",
    "hidden_mean",
    "visible_mean",
    "sample_hidden",
    "sample_visible",
    "gibbs",
    "log_partition",
    "log_likelihood",
    "TrainResult",
    "train",
    "fit",
    "train_stack",
    "propagate",
    "receptive_fields",
    "receptive_field_size",
    "block_correlation",
    "block_assignment",
    "effective_coupling",
]


class RBM(NamedTuple):
    """Parameters: weights ``W`` (n_v, n_h), visible biases ``a`` (n_v,), hidden biases ``c`` (n_h,)."""

    W: jax.Array
    a: jax.Array
    c: jax.Array


def init(key, n_visible: int, n_hidden: int, *, scale: float = 0.01) -> RBM:
    """Small Gaussian weights ``N(0, scale²)``, zero biases."""
    for name, v in (("n_visible", n_visible), ("n_hidden", n_hidden)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name}={v!r}: must be a positive integer")
    W = scale * jax.random.normal(key, (int(n_visible), int(n_hidden)), jnp.float32)
    return RBM(W, jnp.zeros(int(n_visible), jnp.float32), jnp.zeros(int(n_hidden), jnp.float32))


def _f32(v):
    return jnp.asarray(v).astype(jnp.float32)


def energy(params: RBM, v, h):
    """``E(v, h) = -vᵀWh - aᵀv - cᵀh`` of one (or a batch of) configuration(s)."""
    v, h = _f32(v), _f32(h)
    return -jnp.einsum("...i,ij,...j->...", v, params.W, h) - v @ params.a - h @ params.c


def _log2cosh(x):
    ax = jnp.abs(x)
    return ax + jnp.log1p(jnp.exp(-2.0 * ax))


def free_energy(params: RBM, v):
    """``F(v) = -aᵀv - Σ_j ln 2cosh(c_j + (vᵀW)_j)`` (hidden layer summed out)."""
    v = _f32(v)
    return -v @ params.a - jnp.sum(_log2cosh(v @ params.W + params.c), axis=-1)


def hidden_mean(params: RBM, v):
    """``E[h | v] = tanh(c + vᵀW)``."""
    return jnp.tanh(_f32(v) @ params.W + params.c)


def visible_mean(params: RBM, h):
    """``E[v | h] = tanh(a + W h)``."""
    return jnp.tanh(_f32(h) @ params.W.T + params.a)


def _spins(key, field):
    return jnp.where(jax.random.uniform(key, field.shape) < jax.nn.sigmoid(2.0 * field), 1.0, -1.0)


def sample_hidden(key, params: RBM, v):
    """Draw ``h ~ p(h | v)`` (±1 float32)."""
    return _spins(key, _f32(v) @ params.W + params.c)


def sample_visible(key, params: RBM, h):
    """Draw ``v ~ p(v | h)`` (±1 float32)."""
    return _spins(key, _f32(h) @ params.W.T + params.a)


def gibbs(key, params: RBM, v, k: int = 1):
    """``k`` block-Gibbs steps v → h → v (k static)."""

    def one(v, kk):
        k1, k2 = jax.random.split(kk)
        return sample_visible(k2, params, sample_hidden(k1, params, v)), None

    v, _ = jax.lax.scan(one, _f32(v), jax.random.split(key, k))
    return v


def _all_spins(n):
    return jnp.asarray(np.array(list(itertools.product((-1.0, 1.0), repeat=n)), np.float32))


def log_partition(params: RBM):
    """Exact ``ln Z`` by enumerating the smaller layer (≤ 20 units): ``ln Σ_h e^{cᵀh} Π_i 2cosh(a_i + (Wh)_i)``."""
    n_v, n_h = params.W.shape
    if min(n_v, n_h) > 20:
        raise ValueError(f"RBM {n_v}×{n_h}: exact ln Z enumerates 2^{min(n_v, n_h)} states; only ≤ 20 allowed")
    if n_h <= n_v:
        h = _all_spins(n_h)
        terms = h @ params.c + jnp.sum(_log2cosh(h @ params.W.T + params.a), axis=-1)
    else:
        terms = -free_energy(params, _all_spins(n_v))
    return jax.scipy.special.logsumexp(terms)


def log_likelihood(params: RBM, data):
    """Exact mean log-likelihood ``<-F(v)>_data - ln Z`` (tiny RBMs only)."""
    return jnp.mean(-free_energy(params, data)) - log_partition(params)


# --------------------------------------------------------------------------------------------- training
class TrainResult(NamedTuple):
    """Trained parameters, final persistent chains and per-step history (reconstruction error, |W| mean)."""

    params: RBM
    chains: jax.Array
    reconstruction_error: jax.Array
    mean_abs_weight: jax.Array


def train(key, data, n_hidden: int, *, steps: int, batch_size: int = 64, learning_rate: float = 1e-2,
          decay: bool = True, k: int = 1, l1: float = 0.0, num_chains: int = 64, mask=None,
          optimizer: str = "adam", params: RBM | None = None, init_scale: float = 0.01) -> TrainResult:
    """Train an RBM on ±1 ``data`` (n_samples, n_visible) by persistent contrastive divergence.

    Loss per step: ``<F(v)>_batch - <F(v')>_chains + l1 Σ|W ⊙ mask|`` whose gradient is the log-likelihood
    gradient with the model average from ``num_chains`` persistent chains advanced ``k`` Gibbs steps per update
    (Tieleman 2008). ``mask`` (n_v, n_h) of 0/1 fixes absent connections to zero. ``decay`` lowers the learning
    rate linearly to 5% of its start (the PCD noise floor shrinks with it). The loop is one ``lax.scan``, compiled
    once per shape and settings; minibatches are drawn with replacement from ``fold_in(key, t)``.
    """
    data = _f32(data)
    if data.ndim != 2:
        raise ValueError(f"data shape {data.shape}: must be (n_samples, n_visible)")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps={steps!r}: must be a positive integer")
    if l1 < 0:
        raise ValueError(f"l1={l1!r}: must be ≥ 0")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}: must be one of {sorted(_OPTIMIZERS)}")
    n, n_v = data.shape
    k_init, k_chain, k_loop = jax.random.split(key, 3)
    params = init(k_init, n_v, n_hidden, scale=init_scale) if params is None else params
    m = jnp.ones((n_v, n_hidden), jnp.float32) if mask is None else _f32(mask)
    if m.shape != (n_v, n_hidden):
        raise ValueError(f"mask shape {m.shape}: must be (n_visible, n_hidden) = {(n_v, n_hidden)}")
    chains = data[jax.random.randint(k_chain, (int(num_chains),), 0, n)]
    return fit(k_loop, params, chains, data, m, jnp.float32(l1), steps=int(steps), batch_size=int(batch_size),
               k=int(k), optimizer=optimizer, learning_rate=float(learning_rate), decay=bool(decay))


_OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd}


@functools.partial(jax.jit, static_argnames=("steps", "batch_size", "k", "optimizer", "learning_rate", "decay"))
def fit(key, params: RBM, chains, data, mask, l1, *, steps, batch_size, k, optimizer, learning_rate, decay):
    """The jit-compiled PCD loop behind :func:`train` (pure; vmap it over keys/data for independent replicas)."""
    # written out (not optax.linear_schedule) so it runs under strict dtype promotion
    def lr(count):
        frac = jnp.minimum(count.astype(jnp.float32) / jnp.float32(steps), jnp.float32(1.0))
        return jnp.float32(learning_rate) * (jnp.float32(1.0) - jnp.float32(0.95 * decay) * frac)

    opt = _OPTIMIZERS[optimizer](lr)
    params = params._replace(W=params.W * mask)

    def loss(p, batch, neg):
        p = p._replace(W=p.W * mask)
        return jnp.mean(free_energy(p, batch)) - jnp.mean(free_energy(p, neg)) + l1 * jnp.sum(jnp.abs(p.W))

    def step(carry, t):
        params, opt_state, chains = carry
        kb, kg, kr = jax.random.split(jax.random.fold_in(key, t), 3)
        batch = data[jax.random.randint(kb, (batch_size,), 0, data.shape[0])]
        chains = gibbs(kg, params, chains, k)
        grads = jax.grad(loss)(params, batch, jax.lax.stop_gradient(chains))
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        params = params._replace(W=params.W * mask)
        recon = visible_mean(params, sample_hidden(kr, params, batch))
        err = jnp.mean((recon - batch) ** 2)
        return (params, opt_state, chains), (err, jnp.mean(jnp.abs(params.W)))

    # optax's Adam bias correction computes `float ** int32`, refused under strict promotion (the test setting)
    with jax.numpy_dtype_promotion("standard"):
        (params, _, chains), (err, mw) = jax.lax.scan(
            step, (params, opt.init(params), chains), jnp.arange(steps, dtype=jnp.uint32))
    return TrainResult(params, chains, err, mw)


def train_stack(key, data, hidden_sizes: Sequence[int], **kwargs) -> list[TrainResult]:
    """Greedy layer-wise stack: layer l is trained on hidden samples ``h ~ p(h|v)`` of layer l-1's data."""
    out = []
    for l, n_h in enumerate(hidden_sizes):
        k_train, k_up = jax.random.split(jax.random.fold_in(key, l))
        res = train(k_train, data, int(n_h), **kwargs)
        out.append(res)
        data = sample_hidden(k_up, res.params, data)
    return out


def propagate(stack: Sequence[RBM], v, *, key=None):
    """Activities of every layer for visible data: means ``tanh`` (key=None) or samples; list, layer 1 first."""
    out, x = [], _f32(v)
    for l, p in enumerate(stack):
        x = hidden_mean(p, x) if key is None else sample_hidden(jax.random.fold_in(key, l), p, x)
        out.append(x)
    return out


# --------------------------------------------------------------------------------------------- measurements
def receptive_fields(stack: Sequence[RBM]):
    """Effective receptive fields on the visible layer, ``R_l = |W_1| |W_2| … |W_l|`` (n_v, n_h^l), columns summing
    to 1 (Mehta & Schwab 2014, Fig. 4: products of weight magnitudes)."""
    out, r = [], None
    for p in stack:
        w = np.abs(np.asarray(p.W, np.float64))
        r = w if r is None else r @ w
        out.append(r / np.maximum(r.sum(axis=0, keepdims=True), 1e-300))
    return out


def receptive_field_size(field, shape: Sequence[int], *, background: str | None = "median"):
    """RMS radius of each hidden unit's receptive field on the periodic lattice ``shape`` (per unit).

    Centroid by the circular mean along each axis, distances by the minimum image: ``r² = Σ_i w_i |x_i - x̄|²``
    with ``w`` the normalized field. A uniform b×b patch gives ``√(d (b²-1)/12)``.

    ``background="median"`` (default) first subtracts each unit's median weight and clips at 0: the |W| of a
    trained RBM is a localized bump on a floor of small weights spread over the whole lattice, and that floor alone
    would pull every radius toward the uniform value ``√(d (L²-1)/12)`` (6.5 on 16×16). A patch covering less than
    half the lattice (median 0) is unchanged. ``background=None`` keeps the raw field.
    """
    if background not in ("median", None):
        raise ValueError(f"background={background!r}: must be 'median' or None")
    field = np.asarray(field, np.float64)
    if background == "median":
        field = np.maximum(field - np.median(field, axis=0, keepdims=True), 0.0)
        field = np.where(field.sum(axis=0, keepdims=True) > 0, field, 1.0)  # a flat field: uniform
    shape = tuple(int(s) for s in shape)
    w = field / field.sum(axis=0, keepdims=True)  # (n_v, n_h)
    coords = np.indices(shape).reshape(len(shape), -1)  # (d, n_v)
    r2 = 0.0
    for axis, L in enumerate(shape):
        theta = 2 * np.pi * coords[axis] / L
        z = (np.exp(1j * theta)[:, None] * w).sum(axis=0)
        centre = (np.angle(z) % (2 * np.pi)) * L / (2 * np.pi)
        d = (coords[axis][:, None] - centre[None, :] + L / 2) % L - L / 2
        r2 = r2 + (w * d**2).sum(axis=0)
    return np.sqrt(r2)


def block_correlation(hidden, visible, shape: Sequence[int], *, key):
    """Correlations ``corr(h_j, B_k)`` between hidden activities (n_samples, n_h) and the majority-rule block spins
    ``B_k`` of the visible configurations, blocks of side ``b = L / √n_h`` (2D, square). Returns the matrix
    (n_h, n_blocks) and the block side."""
    from physics import rg

    hidden = np.asarray(hidden, np.float64)
    L = int(shape[0])
    side = int(round(np.sqrt(hidden.shape[1])))
    if side * side != hidden.shape[1] or L % side:
        raise ValueError(f"n_hidden={hidden.shape[1]}: must be a square number whose root divides L={L}")
    b = L // side
    v = jnp.asarray(visible).reshape(-1, *shape)
    blocks = v if b == 1 else rg.block_spin(v.astype(jnp.int8), b, key=key)
    B = np.asarray(blocks, np.float64).reshape(len(hidden), -1)
    hz = (hidden - hidden.mean(0)) / np.maximum(hidden.std(0), 1e-12)
    bz = (B - B.mean(0)) / np.maximum(B.std(0), 1e-12)
    return hz.T @ bz / len(hidden), b


def block_assignment(corr):
    """One hidden unit per block, no unit used twice: the assignment ``π`` maximising ``Σ_k |corr(h_π(k), B_k)|``.

    ``corr`` is the (n_hidden, n_blocks) matrix of :func:`block_correlation`. The maximum over injective maps
    ``π: blocks → units`` is a linear assignment problem (Hungarian algorithm, ``scipy.optimize.
    linear_sum_assignment`` on ``-|corr|``); it needs ``n_hidden ≥ n_blocks``. Returns ``(units, signs)``, one
    entry per block: the unit assigned to block k and ``sign corr(h_π(k), B_k)`` (a unit anticorrelated with its
    block is read flipped).
    """
    from scipy.optimize import linear_sum_assignment

    corr = np.asarray(corr, np.float64)
    if corr.ndim != 2 or corr.shape[0] < corr.shape[1]:
        raise ValueError(f"corr shape {corr.shape}: must be (n_hidden, n_blocks) with n_hidden ≥ n_blocks, so that "
                         "each block gets a unit of its own")
    blocks, units = linear_sum_assignment(-np.abs(corr.T))  # rows of corr.T are blocks: `blocks` is 0..n_blocks-1
    signs = np.sign(corr[units, blocks])
    return units, np.where(signs == 0, 1.0, signs)


def effective_coupling(hidden, corr):
    """Effective nearest-neighbour coupling of a layer read as a coarse Ising lattice.

    Block k (of the ``√n_blocks × √n_blocks`` grid) is read off hidden unit ``π(k)`` as
    ``σ_k = sign(h_π(k) · sign corr(h_π(k), B_k))``, with ``π`` the one-to-one assignment of
    :func:`block_assignment` (maximal total |corr|). One-to-one matters: if two blocks took the same unit (the
    per-block argmax allows it), the two sites would hold copies of one spin, their bond would read
    ``σσ = 1`` in every sample and the nearest-neighbour correlation — hence K_eff — would be biased upward.
    The coarse correlation ``c = ½ <σ_x σ_{x+e₁} + σ_x σ_{x+e₂}>`` (periodic) is matched to the exact value on the
    same-size torus (``physics.rg.match_coupling_2d``: ``c = -u_Kaufman(√n_blocks, 1/K)/2``). Returns
    ``(K_eff, c)``; the layer's temperature is 1/K_eff. ``ValueError`` if ``hidden`` (n_samples, n_hidden) and
    ``corr`` (n_hidden, n_blocks) do not match or n_hidden < n_blocks.
    """
    from physics import rg

    hidden = np.asarray(hidden, np.float64)
    corr = np.asarray(corr, np.float64)
    if hidden.ndim != 2 or corr.ndim != 2 or hidden.shape[1] != corr.shape[0] or corr.shape[0] < corr.shape[1]:
        raise ValueError(f"hidden shape {hidden.shape}, corr shape {corr.shape}: need hidden (n_samples, n_hidden) "
                         "and corr (n_hidden, n_blocks) with n_hidden ≥ n_blocks (one unit per block)")
    side = int(round(np.sqrt(corr.shape[1])))
    if side * side != corr.shape[1]:
        raise ValueError(f"corr shape {corr.shape}: n_blocks = {corr.shape[1]} must be a square number")
    units, signs = block_assignment(corr)
    coarse = np.sign(hidden[:, units] * signs)
    coarse[coarse == 0] = 1
    coarse = coarse.reshape(-1, side, side)
    c = 0.5 * np.mean(coarse * np.roll(coarse, -1, 1) + coarse * np.roll(coarse, -1, 2))
    return float(rg.match_coupling_2d(c, side)), float(c)
