"""Datasets and seeded generators: digits, infinite deformed digits, teacher–student, sequences, Ising samples.

Every generator is a pure function of its key (same key, same numbers) and jit-able with its sizes static.
Nothing is downloaded: the digits are read from the project's ``data/`` folder.

Shapes and types: images are flat float32 vectors in [0, 1] (``(N, 64)`` for 8×8 digits), labels int32 class
indices, regression targets float32.
"""
from __future__ import annotations

import gzip
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import mlp

__all__ = [
    "Labelled",
    "Digits",
    "DATA_ENV",
    "data_dir",
    "digits",
    "deform",
    "infinite_digits",
    "Teacher",
    "make_teacher",
    "teacher_student",
    "random_transition",
    "stationary_distribution",
    "markov_chain",
    "random_grammar",
    "pcfg",
    "ising_configurations",
]

DATA_ENV = "DEEPGLASS_DATA"
_DIGITS_FILE = "optdigits.csv.gz"
_SIDE = 8
_TEST_EVERY = 4  # the 4th, 8th, … image of each class (in file order) is a test image


class Labelled(NamedTuple):
    """Inputs ``x`` of shape ``(N, d)`` and labels ``y`` of shape ``(N,)``."""

    x: np.ndarray
    y: np.ndarray


class Digits(NamedTuple):
    """A fixed train/test split; unpack as ``(x_train, y_train), (x_test, y_test) = digits()``."""

    train: Labelled
    test: Labelled


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data folder: ``path`` if given, else ``$DEEPGLASS_DATA``, else ``data/`` of this repository."""
    if path is None:
        path = os.environ.get(DATA_ENV) or Path(__file__).resolve().parent.parent / "data"
    return Path(path)


@lru_cache(maxsize=4)
def _read_digits(folder: str) -> tuple[np.ndarray, np.ndarray]:
    file = Path(folder) / _DIGITS_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"data_dir={folder!r}: no {_DIGITS_FILE} there; pass data_dir= or set ${DATA_ENV} to the folder that "
            "holds it (the repository ships it in data/)"
        )
    with gzip.open(file, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != _SIDE * _SIDE + 1:
        raise ValueError(f"{file}: expected rows of 65 integers (64 pixels + label), got shape {table.shape}")
    return table[:, :-1], table[:, -1]


def digits(*, data_dir: str | os.PathLike | None = None) -> Digits:
    """The 8×8 handwritten digits (UCI optdigits test set, 1,797 images) with a fixed train/test split.

    The split is stratified and needs no RNG: within each class, in file order, every 4th image (the 4th, 8th, …)
    is a test image — 1,347 train and 450 test images.

    Returns:
      ``Digits(train=Labelled(x, y), test=Labelled(x, y))`` of numpy arrays: ``x`` float32 ``(N, 64)`` in [0, 1]
      (pixel counts 0..16 divided by 16, row-major 8×8), ``y`` int32 ``(N,)`` in 0..9. Unpack as
      ``(x_train, y_train), (x_test, y_test) = digits()``.

    Reference: E. Alpaydin and C. Kaynak (1998), UCI Machine Learning Repository (see ``data/README.md``).
    """
    folder = globals()["data_dir"](data_dir)
    pixels, labels = _read_digits(str(folder))
    rank = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    test = (rank % _TEST_EVERY) == _TEST_EVERY - 1
    x = (pixels / 16.0).astype(np.float32)
    y = labels.astype(np.int32)
    return Digits(train=Labelled(x[~test], y[~test]), test=Labelled(x[test], y[test]))


# ----------------------------------------------------------------------------------------------------------------
# Infinite digits: elastic deformation + small affine maps, a fresh batch from every key (the InfiMNIST idea).
# ----------------------------------------------------------------------------------------------------------------


def _smoothing_matrix(side: int, sigma: float) -> jax.Array:
    i = jnp.arange(side, dtype=jnp.float32)
    g = jnp.exp(-jnp.square(i[:, None] - i[None, :]) / (2.0 * sigma * sigma))
    return g


def _bilinear(images: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Read ``images (B, s, s)`` at real positions ``(rows, cols)`` of shape ``(B, s, s)``, zero outside."""
    b, side = images.shape[0], images.shape[1]
    flat = images.reshape(b, side * side)
    r0, c0 = jnp.floor(rows), jnp.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
    out = jnp.zeros_like(rows)
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            r, c = r0 + dr, c0 + dc
            inside = (r >= 0) & (r < side) & (c >= 0) & (c < side)
            idx = jnp.clip(r, 0, side - 1) * side + jnp.clip(c, 0, side - 1)
            v = jnp.take_along_axis(flat, idx.reshape(b, -1), axis=1).reshape(rows.shape)
            out = out + jnp.where(inside, v, 0.0) * wr * wc
    return out


def deform(
    key: jax.Array,
    images: jax.Array,
    *,
    alpha: float = 0.35,
    sigma: float = 1.2,
    max_rotation: float = 10.0,
    max_scale: float = 0.08,
    max_shear: float = 0.1,
    max_shift: float = 0.3,
) -> jax.Array:
    """Elastically deform and affinely transform a batch of square images ``(B, s, s)`` (or flat ``(B, s²)``).

    Each image gets its own displacement field and affine map. The sampled position of output pixel ``p`` is

        q = c + A (p - c) + t + α · u(p),      u = G ξ Gᵀ / ‖rows‖,  ξ_ij ~ N(0, 1) independently per axis,

    with ``G`` a Gaussian smoothing matrix of width ``sigma`` pixels (normalized so each component of ``u`` has unit
    variance at the centre, hence ``alpha`` is the r.m.s. displacement in pixels), ``A`` = rotation (uniform in
    ±max_rotation degrees) · scale (1 ± max_scale) · shear (± max_shear), ``t`` a shift (± max_shift pixels), and
    ``c`` the image centre. The image is read at ``q`` by bilinear interpolation with zero outside.

    The defaults are Simard's elastic setting (α = 34, σ = 4 on 28×28 with a uniform field, an r.m.s.
    displacement of ≈ 1.4 px) scaled to 8×8 pixels, plus InfiMNIST-like small affine maps. A network trained on
    clean digits only still classifies ≈ 80% of deformed test digits correctly (see tests/nets/test_data.py).

    Reference: Simard, Steinkraus & Platt 2003 (ICDAR), §2 (elastic distortions); Loosli, Canu & Bottou 2007
    (InfiMNIST) for the infinite-dataset use.
    """
    images = jnp.asarray(images, jnp.float32)
    flat = images.ndim == 2
    if flat:
        side = math.isqrt(images.shape[1])
        images = images.reshape(images.shape[0], side, side)
    b, side = images.shape[0], images.shape[1]
    k_field, k_rot, k_scale, k_shear, k_shift = jax.random.split(key, 5)

    g = _smoothing_matrix(side, sigma)
    centre = side // 2
    norm = jnp.sqrt(jnp.sum(jnp.square(g[centre])) ** 2)  # std of (G ξ Gᵀ)_cc for unit white noise
    xi = jax.random.normal(k_field, (b, 2, side, side), jnp.float32)
    field = jnp.einsum("ij,bajk,lk->bail", g, xi, g) / norm * alpha  # (B, 2, s, s)

    theta = jnp.deg2rad(jax.random.uniform(k_rot, (b,), jnp.float32, -max_rotation, max_rotation))
    scale = 1.0 + jax.random.uniform(k_scale, (b,), jnp.float32, -max_scale, max_scale)
    shear = jax.random.uniform(k_shear, (b,), jnp.float32, -max_shear, max_shear)
    shift = jax.random.uniform(k_shift, (b, 2), jnp.float32, -max_shift, max_shift)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    # A = R(θ) · diag(scale) · [[1, shear], [0, 1]] acting on (row, col) offsets.
    a00, a01 = cos * scale, (cos * shear - sin) * scale
    a10, a11 = sin * scale, (sin * shear + cos) * scale

    c = (side - 1) / 2.0
    r, col = jnp.meshgrid(jnp.arange(side, dtype=jnp.float32) - c, jnp.arange(side, dtype=jnp.float32) - c,
                          indexing="ij")
    rows = c + a00[:, None, None] * r + a01[:, None, None] * col + shift[:, 0, None, None] + field[:, 0]
    cols = c + a10[:, None, None] * r + a11[:, None, None] * col + shift[:, 1, None, None] + field[:, 1]

    out = jnp.clip(_bilinear(images, rows, cols), 0.0, 1.0)
    return out.reshape(b, side * side) if flat else out


def infinite_digits(
    key: jax.Array,
    batch_size: int,
    *,
    source: Labelled | None = None,
    **deformation,
) -> tuple[jax.Array, jax.Array]:
    """A fresh batch of deformed digits: ``(x, y)`` with ``x`` float32 ``(batch_size, 64)``, ``y`` int32.

    Source images are drawn uniformly (with replacement) from ``source`` (default: the training split of
    :func:`digits`, so the test split stays unseen), then passed through :func:`deform` (keyword arguments are
    forwarded). Labels are the source labels: the deformations are small enough to preserve the class. No two
    keys give the same batch, so a training loop that folds the step into the key never sees an epoch twice.

    Jit-able with ``batch_size`` static: ``jax.jit(infinite_digits, static_argnums=1)``.

    Reference: Loosli, Canu & Bottou 2007, "Training invariant SVMs using selective sampling" (InfiMNIST).
    """
    if source is None:
        source = digits().train
    k_pick, k_deform = jax.random.split(key)
    x = jnp.asarray(source.x, jnp.float32)
    y = jnp.asarray(source.y, jnp.int32)
    idx = jax.random.randint(k_pick, (int(batch_size),), 0, x.shape[0])
    return deform(k_deform, x[idx], **deformation), y[idx]


# ----------------------------------------------------------------------------------------------------------------
# Teacher–student
# ----------------------------------------------------------------------------------------------------------------


class Teacher(NamedTuple):
    """A random teacher network and the task it defines (``"classification"`` or ``"regression"``)."""

    net: mlp.MLP
    task: str


def make_teacher(
    key: jax.Array,
    input_dim: int,
    *,
    hidden: tuple[int, ...] = (),
    num_classes: int = 2,
    task: str = "classification",
    activation: str = "tanh",
) -> Teacher:
    """A random teacher ``f*: R^d → R^k`` (an MLP with ``W ~ N(0, 1/fan_in)``).

    ``hidden=()`` gives the perceptron teacher of Gardner & Derrida 1989 (J. Phys. A 22:1983) / Seung, Sompolinsky
    & Tishby 1992 (Phys. Rev. A 45:6056); classification labels are ``argmax f*(x)`` (``num_classes ≥ 2``; for two
    classes the sign of the single output), regression targets ``f*(x)`` (one output).
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task={task!r}: must be 'classification' or 'regression'")
    if int(input_dim) < 1:
        raise ValueError(f"input_dim={input_dim!r}: must be a positive integer")
    if task == "classification" and int(num_classes) < 2:
        raise ValueError(f"num_classes={num_classes!r}: must be ≥ 2 for classification")
    out = 1 if task == "regression" or int(num_classes) == 2 else int(num_classes)
    net = mlp.init(key, (int(input_dim), *hidden, out), activation=activation, weight_std=1.0, bias_std=0.0)
    return Teacher(net=net, task=task)


def teacher_student(
    key: jax.Array, teacher: Teacher, num_examples: int, *, noise_std: float = 0.0
) -> tuple[jax.Array, jax.Array]:
    """``num_examples`` Gaussian inputs ``x ~ N(0, I_d)`` labelled by ``teacher``.

    Classification: ``y = argmax(f*(x) + ε)`` (two classes: ``y = [f*(x) + ε > 0]``), int32.
    Regression: ``y = f*(x) + ε`` float32. ``ε ~ N(0, noise_std²)`` is label/output noise.
    Jit-able with ``num_examples`` static; a new key gives a new sample from the same teacher.
    """
    kx, kn = jax.random.split(key)
    d = mlp.widths(teacher.net)[0]
    x = jax.random.normal(kx, (int(num_examples), d), jnp.float32)
    out = mlp.apply(teacher.net, x)
    out = out + noise_std * jax.random.normal(kn, out.shape, jnp.float32)
    if teacher.task == "regression":
        return x, out[:, 0]
    if out.shape[1] == 1:
        return x, (out[:, 0] > 0).astype(jnp.int32)
    return x, jnp.argmax(out, axis=1).astype(jnp.int32)


# ----------------------------------------------------------------------------------------------------------------
# Sequences: Markov chains and probabilistic context-free grammars
# ----------------------------------------------------------------------------------------------------------------


def random_transition(key: jax.Array, num_states: int, *, concentration: float = 1.0) -> jax.Array:
    """A random row-stochastic matrix ``P_ij = Pr(next = j | now = i)``, rows ~ Dirichlet(concentration)."""
    if int(num_states) < 1:
        raise ValueError(f"num_states={num_states!r}: must be a positive integer")
    if not concentration > 0:
        raise ValueError(f"concentration={concentration!r}: must be > 0")
    alpha = jnp.full((int(num_states),), concentration, jnp.float32)
    return jax.random.dirichlet(key, alpha, (int(num_states),))


def stationary_distribution(transition: jax.Array, *, squarings: int = 40) -> jax.Array:
    """The stationary distribution ``π = π P`` of an ergodic chain, by repeated squaring ``P^(2^k)`` (jit-able).

    Rows are renormalized after each squaring: float32 rounding would otherwise grow as ``(1 + ε)^(2^k)``.
    """

    def square(_, m):
        m = m @ m
        return m / jnp.sum(m, axis=1, keepdims=True)

    p = jnp.asarray(transition, jnp.float32)
    p = jax.lax.fori_loop(0, squarings, square, p)
    pi = jnp.mean(p, axis=0)
    return pi / jnp.sum(pi)


def markov_chain(
    key: jax.Array,
    transition: jax.Array,
    length: int,
    *,
    num_sequences: int = 1,
    initial: jax.Array | None = None,
) -> jax.Array:
    """Sequences of a Markov chain: int32 ``(num_sequences, length)``.

    ``x_0 ~ initial`` (default the stationary distribution, so the sequences are stationary), ``x_{t+1} ~ P[x_t]``.
    The mutual information between symbols at distance d decays as ``λ_2^{2d}`` (Lin & Tegmark 2017, Entropy
    19:299, §III), with ``λ_2`` the second eigenvalue of ``P``.
    """
    p = jnp.asarray(transition, jnp.float32)
    initial = stationary_distribution(p) if initial is None else jnp.asarray(initial, jnp.float32)
    logp = jnp.log(p)
    k0, kt = jax.random.split(key)
    x0 = jax.random.categorical(k0, jnp.log(initial), shape=(int(num_sequences),)).astype(jnp.int32)

    def step(x, k):
        nxt = jax.random.categorical(k, logp[x]).astype(jnp.int32)
        return nxt, nxt

    _, rest = jax.lax.scan(step, x0, jax.random.split(kt, int(length) - 1))
    return jnp.concatenate([x0[None], rest], axis=0).T


def random_grammar(key: jax.Array, num_symbols: int, *, branching: int = 2, concentration: float = 1.0) -> jax.Array:
    """Random rewriting probabilities ``R[c, a, b] = Pr(child c of a is b)``, shape ``(branching, q, q)``."""
    if int(branching) < 2:
        raise ValueError(f"branching={branching!r}: must be ≥ 2")
    keys = jax.random.split(key, int(branching))
    return jnp.stack([random_transition(k, num_symbols, concentration=concentration) for k in keys])


def pcfg(
    key: jax.Array,
    rules: jax.Array,
    depth: int,
    *,
    num_sequences: int = 1,
    root: jax.Array | None = None,
) -> jax.Array:
    """Strings of a fixed-branching probabilistic context-free grammar: int32 ``(num_sequences, branching**depth)``.

    Every symbol ``a`` rewrites into ``branching`` symbols, child ``c`` drawn from ``rules[c, a]`` independently;
    after ``depth`` rewritings the leaves, read left to right, are the string. This is the recursive generative
    grammar of Lin & Tegmark 2017 (Entropy 19:299, §IV): the mutual information between leaves at distance d
    decays as a power law in d, unlike a Markov chain's exponential decay. The root is drawn from ``root``
    (default uniform over the symbols).
    """
    rules = jnp.asarray(rules, jnp.float32)
    q = rules.shape[1]
    root = jnp.full((q,), 1.0 / q, jnp.float32) if root is None else jnp.asarray(root, jnp.float32)
    logr = jnp.log(rules)
    keys = jax.random.split(key, int(depth) + 1)
    x = jax.random.categorical(keys[0], jnp.log(root), shape=(int(num_sequences), 1)).astype(jnp.int32)
    for level in range(int(depth)):
        # children: (B, L, branching), child c of symbol a drawn from rules[c, a]
        logits = jnp.moveaxis(logr[:, x], 0, 2)  # (B, L, branching, q)
        x = jax.random.categorical(keys[level + 1], logits).astype(jnp.int32).reshape(x.shape[0], -1)
    return x


# ----------------------------------------------------------------------------------------------------------------
# Ising configurations from the physics engine
# ----------------------------------------------------------------------------------------------------------------


def ising_configurations(
    key: jax.Array,
    shape: tuple[int, ...],
    temperatures,
    num_samples: int,
    *,
    burn_in: int = 500,
    J: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Equilibrium Ising configurations as a labelled dataset (the physics engine as a data source).

    For each temperature, ``num_samples`` independent checkerboard-Metropolis chains (``physics.kernels.metropolis``
    on ``physics.lattice.Ising(shape, J)``, driven by ``physics.run``) start from the all-up state and run
    ``burn_in`` sweeps; each contributes its last configuration, multiplied by a random global sign (the exact
    ``s → -s`` symmetry of ``H = -J Σ s_i s_j``), so both ordered states appear below ``T_c`` without waiting for
    tunnelling between them. Temperatures are traced: one compiled program serves them all.

    Returns:
      ``(x, y)``: ``x`` float32 ``(len(temperatures) · num_samples, prod(shape))`` of ±1, temperature-major;
      ``y`` int32 the index of the temperature of each sample. The phase label is
      ``temperatures[y] < physics.theory.ising_critical_temperature(J)``.

    Reference: Carrasquilla & Melko 2017 (Nature Physics 13:431), who learn the phase from such samples.
    """
    from physics import kernels, lattice, run  # late import: the rest of nets does not need physics

    temps = jnp.asarray(temperatures, jnp.float32).reshape(-1)
    if int(num_samples) < 1:
        raise ValueError(f"num_samples={num_samples!r}: must be a positive integer")
    if int(burn_in) < 1:
        raise ValueError(f"burn_in={burn_in!r}: must be a positive integer")
    model = lattice.Ising(tuple(int(s) for s in shape), J=J)
    num, sweeps = int(num_samples), int(burn_in)

    def one(k, temperature):
        k_init, k_run, k_sign = jax.random.split(k, 3)
        kernel = kernels.metropolis(model, temperature)
        state = kernel.init(k_init, jnp.ones(model.shape, jnp.int8))
        state, _ = run(kernel, k_run, state, sweeps, observe=lambda s, i: s.energy, every=sweeps)
        sign = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0).astype(jnp.float32)
        return sign * state.x.astype(jnp.float32).reshape(-1)

    keys = jax.random.split(key, temps.shape[0] * num).reshape(temps.shape[0], num)
    x = jax.jit(jax.vmap(lambda ks, t: jax.vmap(lambda k: one(k, t))(ks)))(keys, temps)
    y = jnp.repeat(jnp.arange(temps.shape[0], dtype=jnp.int32), num)
    return x.reshape(temps.shape[0] * num, -1), y
