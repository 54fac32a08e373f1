"""Hessian spectra of losses and of glass landscapes: Lanczos extremes, SLQ density, Hutchinson trace.

Everything here acts on a symmetric linear operator ``A`` on a subspace of ``R^n``, given only through its
products ``v ↦ A v`` (an :class:`Operator`). Two sources build one:

- a loss ``L(θ)`` of a parameter pytree (a network): the Hessian-vector product is forward-over-reverse
  differentiation, ``H v = ∂_ε ∇L(θ + ε v)|_{ε=0}`` (``jax.jvp`` of ``jax.grad``; Pearlmutter 1994, Neural
  Comput. 6:147), exact and at the cost of a few gradients, on ``θ`` flattened by ``ravel_pytree``. A ``block``
  restricts ``L`` to some leaves (one layer): the operator is then the diagonal block ``H_BB`` of the Hessian;
- any ``hvp(v) -> A v`` on flat vectors (:func:`operator`), e.g. the Riemannian Hessian of the spherical p-spin
  glass (:func:`pspin_operator`), which lives on the tangent space ``{v : v·s = 0}`` of dimension ``n - 1``: its
  operator carries the projection ``P = I - s sᵀ/|s|²`` and every start, probe and Lanczos vector is projected, so
  the normal direction (eigenvalue 0 of the n×n matrix) never enters a spectrum.

Estimators (all of one ``Operator``; network and glass spectra come from the same code):

- **Lanczos with full reorthogonalization** (Lanczos 1950; Golub & Van Loan, *Matrix Computations*, 4th ed.,
  §10.1): an orthonormal basis ``V = (v_1 … v_m)`` of the Krylov space of a start vector with
  ``Vᵀ A V = T`` tridiagonal (``α_j = v_jᵀ A v_j`` on the diagonal, ``β_j = |r_j|`` beside it). Each new
  residual is orthogonalized against all previous ``v`` twice (classical Gram–Schmidt twice is enough: Giraud,
  Langou & Rozložník 2005, Numer. Math. 101:87), so no ghost eigenvalues appear and ``m = dim`` gives the whole
  spectrum. If the Krylov space is invariant (``β_j ≈ 0``, e.g. a degenerate spectrum) the next vector is a fresh
  random one orthogonal to ``V`` and ``β_j = 0``. The eigenvalues of ``T`` (Ritz values) approach the extreme
  eigenvalues of ``A`` first; ``V y`` are the Ritz vectors.
- **Stochastic Lanczos quadrature** (Ubaru, Chen & Saad 2017, SIAM J. Matrix Anal. Appl. 38:1075; Ghorbani,
  Krishnan & Xiao 2019, arXiv:1901.10159, §2–3): for a unit probe ``v`` with ``E[v vᵀ] = I/d`` (``d`` the dimension)
  and ``T = Y diag(θ) Yᵀ`` from ``m`` Lanczos steps started at ``v``,
  ``(1/d) tr f(A) = E[vᵀ f(A) v] ≈ E[Σ_i τ_i f(θ_i)]``, ``τ_i = Y_{1i}²`` (Gauss quadrature, exact for
  polynomials of degree ≤ 2m - 1). The density is ``ρ(t) ≈ (1/P) Σ_probes Σ_i τ_i g_σ(t - θ_i)``, ``g_σ`` a
  Gaussian of width σ. Probes: Rademacher ``z/√n`` (``|z|² = n`` exactly) or, on a projected subspace, a
  Gaussian projected and normalized (uniform on the subspace's unit sphere; a projected Rademacher vector is not
  isotropic there).
- **Hutchinson's trace** (Hutchinson 1990, Commun. Stat. Simul. Comput. 19:433): ``tr A = E[zᵀ A z]`` for
  ``E[z zᵀ] = I`` (on a subspace, ``z → P z``), averaged over probes with the standard error of the mean;
  for Rademacher ``z`` one probe has variance ``2(‖A‖_F² - Σ_i A_ii²)`` (Avron & Toledo 2011, J. ACM 58:8).

Probes run as one vmapped batch (``probe_batch`` of them at a time bounds the memory: Lanczos keeps ``m + 1``
vectors of size ``n`` per probe). A dataset loss sums ``lax.scan`` chunks under ``jax.checkpoint``, so a
Hessian-vector product holds one chunk's activations at a time. PyHessian (Yao et al. 2020, arXiv:1912.07145)
offers the same three estimators for PyTorch, with probes one after another and power iteration for the top
eigenvalues.

Every function is jit-able (sizes are static; ``jax.jit(lambda p: top_eigenvalues(loss, p, 3))``). An
:class:`Operator` holds Python functions, so build it inside the jitted function rather than passing it in.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from nets import mlp
from physics import spherical

__all__ = [
    "Operator",
    "Estimate",
    "Spectrum",
    "Eigenpairs",
    "dataset_loss",
    "mlp_loss",
    "hvp",
    "parameter_paths",
    "hessian_operator",
    "operator",
    "pspin_operator",
    "top_eigenvalues",
    "density",
    "spectral_average",
    "index",
    "near_zero_fraction",
    "trace",
]

_WHICH = ("largest", "smallest", "both")
_PROBES = ("rademacher", "gaussian")


class Operator(NamedTuple):
    """A symmetric linear operator given by its products, on a ``dim``-dimensional subspace of ``R^n``.

    Fields: ``matvec`` maps a flat ``(n,)`` vector of ``dtype`` to ``A v``; ``project`` maps ``R^n`` onto the
    subspace (``None``: the subspace is ``R^n``); ``to_pytree`` turns a flat vector into the user's structure
    (a parameter pytree for a loss, the identity otherwise).
    """

    matvec: Callable[[jax.Array], jax.Array]
    n: int
    dim: int
    dtype: Any
    project: Callable[[jax.Array], jax.Array] | None = None
    to_pytree: Callable[[jax.Array], Any] = lambda v: v


class Estimate(NamedTuple):
    """A stochastic estimate: the mean over probes and its standard error (sample std / √probes)."""

    mean: jax.Array
    stderr: jax.Array


class Spectrum(NamedTuple):
    """SLQ output: per-probe Ritz ``nodes`` and quadrature ``weights`` (probes × steps, each row sums to 1), and
    the Gaussian-broadened ``density`` on ``grid`` (integrates to 1)."""

    nodes: jax.Array
    weights: jax.Array
    grid: jax.Array
    density: jax.Array


class Eigenpairs(NamedTuple):
    """Ritz values and Ritz vectors (a pytree whose leaves have the values' shape as leading axes)."""

    values: jax.Array
    vectors: Any


# --- losses ------------------------------------------------------------------------------------------------------


def dataset_loss(example_loss: Callable, x, y, *, chunk: int | None = None) -> Callable[[Any], jax.Array]:
    """``loss_fn(params) = (1/N) Σ_i ℓ(params, x_i, y_i)`` over a whole data set, evaluated in chunks.

    Args:
      example_loss: ``ℓ(params, x_i, y_i) -> scalar`` for ONE example (vmapped over a chunk here).
      x, y: arrays with the examples on their leading axis (the full training set or a fixed batch).
      chunk: examples per chunk (``None``: all at once). The chunks are a ``lax.scan`` whose body is
        rematerialized (``jax.checkpoint``), so gradients and Hessian-vector products hold one chunk's
        activations; a last partial chunk is padded with copies of the first example and masked out.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < 1:
        raise ValueError(f"x.shape={x.shape}, y.shape={y.shape}: need the same positive number of examples "
                         "on the leading axis")
    num = x.shape[0]
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"chunk={chunk!r}: must be a positive int or None")
    per_example = jax.vmap(example_loss, (None, 0, 0))
    if chunk is None or chunk >= num:
        return lambda params: jnp.mean(per_example(params, x, y))

    num_chunks = -(-num // chunk)
    pad = num_chunks * chunk - num

    def padded(a):
        filler = jnp.broadcast_to(a[:1], (pad, *a.shape[1:]))  # real examples: the loss stays finite
        return jnp.concatenate([a, filler]).reshape(num_chunks, chunk, *a.shape[1:])

    xs, ys = padded(x), padded(y)
    mask = (jnp.arange(num_chunks * chunk) < num).reshape(num_chunks, chunk)

    def loss_fn(params):
        @jax.checkpoint
        def body(total, batch):
            xc, yc, mc = batch
            losses = per_example(params, xc, yc)
            return total + jnp.sum(jnp.where(mc, losses, jnp.zeros_like(losses))), None

        one = (jax.ShapeDtypeStruct(x.shape[1:], x.dtype), jax.ShapeDtypeStruct(y.shape[1:], y.dtype))
        zero = jnp.zeros((), jax.eval_shape(example_loss, params, *one).dtype)
        total, _ = jax.lax.scan(body, zero, (xs, ys, mask))
        return total / num

    return loss_fn


def mlp_loss(net_template: mlp.MLP, x, y, *, chunk: int | None = None) -> Callable[[mlp.MLP], jax.Array]:
    """The training loss of ``nets.train`` for networks shaped like ``net_template``, over all of ``(x, y)``.

    Integer labels: mean softmax cross-entropy ``logsumexp(f(x)) - f(x)_y``; float targets: mean squared error of
    the first output ``(f(x)_0 - y)²`` (as ``nets.train``). No weight decay. ``chunk`` as in :func:`dataset_loss`.
    """
    if not isinstance(net_template, mlp.MLP):
        raise ValueError(f"net_template: a {type(net_template).__name__}; must be a nets.mlp.MLP")
    x, y = jnp.asarray(x), jnp.asarray(y)
    sizes = mlp.widths(net_template)
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise ValueError(f"x.shape={x.shape}: must be (N, {sizes[0]}), the network's input width")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y.shape={y.shape}: must be ({x.shape[0]},), one label or target per example")
    structure = jax.tree_util.tree_structure(net_template)

    if jnp.issubdtype(y.dtype, jnp.integer):
        if not isinstance(y, jax.core.Tracer) and not bool(jnp.all((y >= 0) & (y < sizes[-1]))):
            raise ValueError(f"y: labels must lie in 0..{sizes[-1] - 1} (the network's output width)")

        def example_loss(params, xi, yi):
            logits = mlp.apply(params, xi)
            return jax.nn.logsumexp(logits) - logits[yi]
    else:
        def example_loss(params, xi, yi):
            out = mlp.apply(params, xi)[0]
            return jnp.square(out - yi.astype(out.dtype))

    inner = dataset_loss(example_loss, x, y, chunk=chunk)

    def loss_fn(params):
        if jax.tree_util.tree_structure(params) != structure:
            raise ValueError("params: not shaped like net_template (layers, blocks or activation differ)")
        return inner(params)

    return loss_fn


def hvp(loss_fn: Callable, params, tangent):
    """Hessian-vector product ``∇²L(θ)·t`` on pytrees: ``jax.jvp`` of ``jax.grad`` (forward over reverse)."""
    return jax.jvp(jax.grad(loss_fn), (params,), (tangent,))[1]


# --- blocks of the parameter pytree ------------------------------------------------------------------------------


def _key_name(entry) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _leaf_paths(params) -> list[str]:
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    return ["/".join(_key_name(k) for k in path) for path, _ in flat]


def parameter_paths(params, depth: int | None = None) -> list[str]:
    """Names of the parameter leaves (``"layers/0/w"``), or their distinct prefixes of ``depth`` components
    (``depth=2`` on an MLP gives one name per layer: ``["layers/0", "layers/1", …]``), in pytree order."""
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth={depth!r}: must be a positive int or None")
    out: list[str] = []
    for path in _leaf_paths(params):
        name = path if depth is None else "/".join(path.split("/")[:depth])
        if name not in out:
            out.append(name)
    return out


def _selected(params, block) -> list[bool]:
    """Which leaves a block selector picks: a path or paths (a leaf is picked by its name or any prefix of it), a
    predicate ``(path, leaf) -> bool`` (of the name and shape: under jit the leaf is traced), or a pytree of bools
    shaped like ``params`` (as ``optax.masked`` takes)."""
    leaves = jax.tree_util.tree_leaves(params)
    paths = _leaf_paths(params)
    if isinstance(block, str) or (isinstance(block, Sequence) and block and all(isinstance(b, str) for b in block)):
        names = [block] if isinstance(block, str) else list(block)
        chosen = [any(p == b or p.startswith(b.rstrip("/") + "/") for b in names) for p in paths]
    elif callable(block):
        chosen = [bool(block(p, leaf)) for p, leaf in zip(paths, leaves, strict=True)]
    elif jax.tree_util.tree_structure(block) == jax.tree_util.tree_structure(params):
        chosen = [bool(b) for b in jax.tree_util.tree_leaves(block)]
    else:
        raise ValueError(f"block={block!r}: must be a path such as 'layers/0' (or a list of them), a predicate "
                         "(path, leaf) -> bool, or a pytree of bools shaped like params")
    if not any(chosen):
        shown = ", ".join(parameter_paths(params)[:24])
        raise ValueError(f"block={block!r}: selects no parameter; the leaves are: {shown}")
    return chosen


def hessian_operator(loss_fn: Callable, params, *, block=None) -> Operator:
    """The Hessian of ``loss_fn`` at ``params`` (any pytree) as an :class:`Operator` on the flattened parameters.

    With ``block`` (see :func:`parameter_paths`) only the chosen leaves vary: the operator is the diagonal block
    ``H_BB`` (the other parameters held at their values), its ``to_pytree`` embeds a block vector into a full
    parameter pytree with zeros elsewhere.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    chosen = [True] * len(leaves) if block is None else _selected(params, block)
    sub = [leaf for leaf, c in zip(leaves, chosen, strict=True) if c]
    theta, unravel = ravel_pytree(sub)

    def merge(sub_leaves):
        it = iter(sub_leaves)
        return treedef.unflatten([next(it) if c else leaf for leaf, c in zip(leaves, chosen, strict=True)])

    def flat_loss(t):
        return loss_fn(merge(unravel(t)))

    grad = jax.grad(flat_loss)

    def matvec(v):
        return jax.jvp(grad, (theta,), (v,))[1]

    def to_pytree(v):
        it = iter(unravel(v))
        full = [next(it) if c else jnp.zeros_like(leaf) for leaf, c in zip(leaves, chosen, strict=True)]
        return treedef.unflatten(full)

    return Operator(matvec=matvec, n=theta.size, dim=theta.size, dtype=theta.dtype, to_pytree=to_pytree)


def operator(hvp_fn: Callable[[jax.Array], jax.Array], n: int, *, dtype=jnp.float32,
             project: Callable[[jax.Array], jax.Array] | None = None, dim: int | None = None) -> Operator:
    """An :class:`Operator` from a plain ``hvp_fn(v) -> A v`` on flat vectors of size ``n``.

    For an operator on a subspace give ``project`` (onto it) and its dimension ``dim`` (so Lanczos stops there).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r}: must be a positive int")
    if project is None:
        dim = n if dim is None else dim
    elif dim is None:
        raise ValueError("dim=None: give the dimension of the subspace that `project` maps onto")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= n:
        raise ValueError(f"dim={dim!r}: must be an int in 1..n={n}")
    return Operator(matvec=hvp_fn, n=n, dim=dim, dtype=jnp.dtype(dtype), project=project)


def pspin_operator(model: spherical.PSpin, s: jax.Array) -> Operator:
    """The Riemannian Hessian of a spherical p-spin at ``s`` on its ``n - 1``-dimensional tangent space.

    ``A v = P(∇²H v - (s·∇H/n) v)`` for tangent ``v`` (``PSpin.riemannian_hvp``, with the radial term computed
    once), ``P = I - s sᵀ/|s|²``. The operator's ``project`` is ``P``: probes and Lanczos vectors stay tangent, so
    its spectrum is ``physics.spherical.tangent_eigenvalues(model, s)`` with no spurious zero for the normal ``s``.
    """
    s = jnp.asarray(s)
    if s.shape != (model.n,):
        raise ValueError(f"s.shape={s.shape}: must be ({model.n},)")
    radial = jnp.dot(s, model.grad(s)) / model.n

    def project(v):
        return spherical.project(s, v)

    def matvec(v):
        pv = project(v)
        return project(model.hvp(s, pv) - radial * pv)

    return Operator(matvec=matvec, n=model.n, dim=model.n - 1, dtype=s.dtype, project=project)


class _Size(NamedTuple):
    n: int
    dim: int
    dtype: Any
    projected: bool


def _size(fn, params, block) -> _Size:
    """The operator's sizes, read from shapes only (validation at the boundary, before anything is traced)."""
    if isinstance(fn, Operator):
        if params is not None or block is not None:
            raise ValueError("params/block: must be None when an Operator is given (restrict the loss instead)")
        return _Size(fn.n, fn.dim, jnp.dtype(fn.dtype), fn.project is not None)
    if not callable(fn):
        raise ValueError(f"loss_fn={fn!r}: must be a loss function of params or an Operator")
    if params is None:
        raise ValueError("params=None: a loss function needs the parameters at which to take the Hessian")
    leaves = jax.tree_util.tree_leaves(params)
    chosen = [True] * len(leaves) if block is None else _selected(params, block)
    sub = [leaf for leaf, c in zip(leaves, chosen, strict=True) if c]
    n = int(sum(math.prod(jnp.shape(leaf)) for leaf in sub))
    return _Size(n, n, jnp.result_type(*sub), False)


def _compiled(fn, params, block, compute: Callable, *args):
    """``compute(operator, *args)`` as one compiled program; a loss's parameters enter as arguments, so they are
    traced rather than baked into the program as constants (an :class:`Operator`'s arrays are its constants)."""
    if isinstance(fn, Operator):
        return jax.jit(lambda *a: compute(fn, *a))(*args)
    return jax.jit(lambda p, *a: compute(hessian_operator(fn, p, block=block), *a))(params, *args)


# --- Lanczos ------------------------------------------------------------------------------------------------------


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"in {low}..{high}" if high is not None else f"≥ {low}"
        raise ValueError(f"{name}={value!r}: must be an int {allowed}")
    return value


def _normalized(v: jax.Array) -> jax.Array:
    norm = jnp.linalg.norm(v)
    return v / jnp.where(norm > 0, norm, jnp.ones_like(norm))


def _lanczos(op: Operator, start: jax.Array, spare: jax.Array, num_steps: int):
    """``num_steps`` Lanczos steps from ``start`` with full reorthogonalization (CGS2).

    Returns ``(alphas, betas, basis)``: ``T = tridiag(betas[:-1], alphas, betas[:-1])`` equals ``Vᵀ A V`` for the
    orthonormal rows ``V = basis[:num_steps]``. On breakdown (the residual vanishes) the next row is a fresh
    direction orthogonalized against the basis and ``β_j = 0``, so ``T`` splits into blocks. The fresh direction
    at step j is the Gaussian vector ``spare`` cyclically shifted by j: the n shifts of a Gaussian vector are
    linearly independent with probability 1, and no random numbers are drawn inside the loop.
    """
    project = op.project if op.project is not None else (lambda v: v)
    both = jax.vmap(project)
    dtype, n = op.dtype, op.n
    eps = jnp.finfo(dtype).eps

    def reorthogonalize(w, basis):
        for _ in range(2):  # classical Gram–Schmidt, twice: orthogonal to working precision
            w = w - (w @ basis.T) @ basis
        return w

    basis = jnp.zeros((num_steps + 1, n), dtype).at[0].set(_normalized(project(start.astype(dtype))))

    def step(j, carry):
        basis, alphas, betas, scale = carry
        v = basis[j]
        w = project(op.matvec(v))
        alpha = jnp.dot(v, w)
        # the restart candidate rides along with the residual: one pass over the basis serves both; projecting
        # again after the subtraction keeps a small residual's rounding out of the normal direction
        fresh = jnp.roll(spare, j)
        pair = both(reorthogonalize(both(jnp.stack([w, fresh])), basis))
        beta = jnp.linalg.norm(pair[0])
        scale = jnp.maximum(scale, jnp.maximum(jnp.abs(alpha), beta))
        broken = beta <= eps * scale
        nxt = jnp.where(broken, _normalized(pair[1]), pair[0] / jnp.where(broken, jnp.ones_like(beta), beta))
        beta = jnp.where(broken, jnp.zeros_like(beta), beta)
        return basis.at[j + 1].set(nxt), alphas.at[j].set(alpha), betas.at[j].set(beta), scale

    zeros = jnp.zeros((num_steps,), dtype)
    basis, alphas, betas, _ = jax.lax.fori_loop(0, num_steps, step, (basis, zeros, zeros, jnp.zeros((), dtype)))
    return alphas, betas, basis


def _ritz(alphas, betas):
    """Eigen-decomposition of the Lanczos tridiagonal: ascending Ritz values and the eigenvectors of T."""
    off = betas[:-1]
    t = jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return jnp.linalg.eigh(t)


def top_eigenvalues(loss_fn, params=None, k: int = 1, *, key: jax.Array | None = None, num_iter: int | None = None,
                    eigenvectors: bool = False, which: str = "largest", block=None):
    """The ``k`` extreme eigenvalues of a Hessian by Lanczos with full reorthogonalization.

    Args:
      loss_fn: a loss ``L(params)``, or an :class:`Operator` (then ``params`` and ``block`` are None).
      params: the pytree at which the Hessian is taken.
      k: how many eigenvalues (``1 ≤ k ≤ dim``).
      key: PRNG key of the random start vector (default ``jax.random.key(0)``: a fixed random start; a constant
        start vector could be orthogonal to whole symmetry classes of eigenvectors).
      num_iter: Lanczos steps m (default ``min(dim, 4k + 40)``); ``m = dim`` gives every eigenvalue exactly.
      eigenvectors: also return the Ritz vectors (as pytrees shaped like ``params``, or flat for an Operator).
      which: ``"largest"`` (descending), ``"smallest"`` (ascending: the most negative first) or ``"both"`` (shape
        ``(2, k)``: row 0 the largest, row 1 the smallest, from the same Krylov space).
      block: restrict to a block of the parameters (:func:`hessian_operator`).

    Returns:
      The eigenvalues, or :class:`Eigenpairs` ``(values, vectors)`` with ``eigenvectors=True`` (vector leaves
      carry the values' shape as leading axes; unit norm in the flat parameters).
    """
    size = _size(loss_fn, params, block)
    k = _check_int("k", k, 1, size.dim)
    if which not in _WHICH:
        raise ValueError(f"which={which!r}: must be one of {', '.join(map(repr, _WHICH))}")
    m = min(size.dim, 4 * k + 40) if num_iter is None else _check_int("num_iter", num_iter, k, size.dim)
    top, bottom = list(range(m - 1, m - 1 - k, -1)), list(range(k))
    pick = {"largest": top, "smallest": bottom, "both": [top, bottom]}[which]

    def compute(op, key):
        start, spare = jax.random.normal(key, (2, op.n), op.dtype)
        alphas, betas, basis = _lanczos(op, start, spare, m)
        theta, y = _ritz(alphas, betas)
        index_ = jnp.asarray(pick)
        if not eigenvectors:
            return theta[index_]
        flat = jnp.tensordot(y[:, index_], basis[:m], axes=([0], [0]))  # (…, n): the Ritz vectors V y
        to_tree = op.to_pytree
        for _ in range(index_.ndim):
            to_tree = jax.vmap(to_tree)
        return Eigenpairs(values=theta[index_], vectors=to_tree(flat))

    return _compiled(loss_fn, params, block, compute, jax.random.key(0) if key is None else key)


# --- stochastic estimators ----------------------------------------------------------------------------------------


def _probe(op: Operator, key: jax.Array, kind: str) -> tuple[jax.Array, jax.Array]:
    """A probe vector (projected when the operator has a subspace) and a spare Gaussian for Lanczos restarts, from
    one generator call: a Rademacher probe is the signs of Gaussians (±1 with probability ½ each)."""
    z, spare = jax.random.normal(key, (2, op.n), op.dtype)
    if kind == "rademacher":
        z = jnp.where(z >= 0, jnp.ones_like(z), -jnp.ones_like(z))
    return (z if op.project is None else op.project(z)), spare


def _over_probes(fn, keys, probe_batch):
    if probe_batch is None:
        return jax.vmap(fn)(keys)
    return jax.lax.map(fn, keys, batch_size=probe_batch)


def _probe_kind(size: _Size, probes: str | None, *, isotropic: bool) -> str:
    if probes is None:
        return "gaussian" if size.projected else "rademacher"
    if probes not in _PROBES:
        raise ValueError(f"probes={probes!r}: must be one of {', '.join(map(repr, _PROBES))}")
    if isotropic and probes == "rademacher" and size.projected:
        raise ValueError("probes='rademacher': a projected Rademacher vector is not isotropic in the subspace, "
                         "so its normalized SLQ moments are biased; use probes='gaussian'")
    return probes


def _check_probes(num_probes, probe_batch):
    _check_int("num_probes", num_probes, 2)
    if probe_batch is not None:
        _check_int("probe_batch", probe_batch, 1, num_probes)


def density(loss_fn, params=None, *, key: jax.Array, num_probes: int = 16, num_steps: int = 64, grid=None,
            sigma=None, num_points: int = 512, probes: str | None = None, probe_batch: int | None = None,
            block=None) -> Spectrum:
    """Spectral density of a Hessian by stochastic Lanczos quadrature (module docstring).

    Args:
      loss_fn, params, block: as in :func:`top_eigenvalues` (or an :class:`Operator`).
      key: PRNG key of the probes (and of Lanczos restarts).
      num_probes: probe vectors P ≥ 2 (vmapped; ``probe_batch`` at a time to bound memory).
      num_steps: Lanczos steps m per probe (``min(m, dim)`` is used); quadrature exact to degree 2m - 1.
      grid: points where the broadened density is evaluated (default ``num_points`` spanning the Ritz values
        ± 5σ).
      sigma: Gaussian broadening (default 1% of the Ritz-value range).
      probes: ``"rademacher"`` (default) or ``"gaussian"``; an operator on a subspace uses projected Gaussians.

    Returns:
      :class:`Spectrum` ``(nodes, weights, grid, density)``; :func:`spectral_average`, :func:`index` and
      :func:`near_zero_fraction` read it.
    """
    size = _size(loss_fn, params, block)
    _check_probes(num_probes, probe_batch)
    m = min(_check_int("num_steps", num_steps, 1), size.dim)
    _check_int("num_points", num_points, 2)
    kind = _probe_kind(size, probes, isotropic=True)

    def compute(op, key, grid, sigma):
        def one(k):
            alphas, betas, _ = _lanczos(op, *_probe(op, k, kind), m)
            theta, y = _ritz(alphas, betas)
            return theta, jnp.square(y[0])

        nodes, weights = _over_probes(one, jax.random.split(key, num_probes), probe_batch)
        lo, hi = jnp.min(nodes), jnp.max(nodes)
        if sigma is None:
            spread = hi - lo
            sigma = 0.01 * jnp.where(spread > 0, spread, jnp.maximum(jnp.abs(hi), jnp.ones_like(hi)))
        sigma = jnp.asarray(sigma, op.dtype)
        if grid is None:
            grid = jnp.linspace(lo - 5 * sigma, hi + 5 * sigma, num_points, dtype=op.dtype)
        grid = jnp.asarray(grid, op.dtype)
        # ρ(t) = (1/P) Σ_probes Σ_i τ_i g_σ(t - θ_i), a sum of unit-mass Gaussians weighted by τ (Σ_i τ_i = 1)
        gauss = jnp.exp(-0.5 * jnp.square((grid[:, None, None] - nodes[None]) / sigma))
        norm = jnp.asarray(math.sqrt(2 * math.pi) * num_probes, op.dtype) * sigma
        return Spectrum(nodes, weights, grid, jnp.sum(gauss * weights[None], axis=(1, 2)) / norm)

    return _compiled(loss_fn, params, block, compute, key, grid, sigma)


def _mean_and_stderr(samples: jax.Array) -> Estimate:
    count = samples.shape[0]
    return Estimate(mean=jnp.mean(samples), stderr=jnp.std(samples, ddof=1) / math.sqrt(count))


def spectral_average(spectrum: Spectrum, f: Callable[[jax.Array], jax.Array]) -> Estimate:
    """``(1/dim) tr f(A) ≈ (1/P) Σ_probes Σ_i τ_i f(θ_i)`` with its standard error over probes.

    Exact per probe (``= vᵀ f(A) v``) for polynomials of degree ≤ 2m - 1, and for any ``f`` when m = dim.
    """
    per_probe = jnp.sum(spectrum.weights * f(spectrum.nodes).astype(spectrum.weights.dtype), axis=1)
    return _mean_and_stderr(per_probe)


def index(spectrum: Spectrum, threshold=0.0) -> Estimate:
    """Fraction of eigenvalues below ``-threshold`` (the normalized index), from the SLQ quadrature.

    Read from the nodes and weights rather than the broadened curve, whose tails would carry mass across the
    threshold; a step is not a polynomial, so at m < dim the quadrature resolves it only to about the node
    spacing (exact, per probe, at m = dim). Exact zero modes (symmetries: a softmax output is flat along a common
    shift of its logits) have Ritz values of either sign at rounding level, so give a threshold above rounding.
    """
    return spectral_average(spectrum, lambda t: t < -jnp.asarray(threshold, t.dtype))


def near_zero_fraction(spectrum: Spectrum, tol) -> Estimate:
    """Fraction of eigenvalues with ``|λ| ≤ tol`` (flat directions), from the SLQ quadrature as :func:`index`."""
    return spectral_average(spectrum, lambda t: jnp.abs(t) <= jnp.asarray(tol, t.dtype))


def trace(loss_fn, params=None, *, key: jax.Array, num_probes: int = 64, probes: str = "rademacher",
          probe_batch: int | None = None, block=None) -> Estimate:
    """Hutchinson estimate of ``tr H`` (on the operator's subspace): mean of ``zᵀ H z`` over probes ± stderr.

    ``z`` Rademacher (default, the smaller variance) or Gaussian, projected onto the subspace of an operator
    that has one (``E[P z zᵀ P] = P``: unbiased either way).
    """
    size = _size(loss_fn, params, block)
    _check_probes(num_probes, probe_batch)
    kind = _probe_kind(size, probes, isotropic=False)

    def compute(op, key):
        def one(k):
            z, _ = _probe(op, k, kind)
            return jnp.dot(z, op.matvec(z))

        return _mean_and_stderr(_over_probes(one, jax.random.split(key, num_probes), probe_batch))

    return _compiled(loss_fn, params, block, compute, key)
