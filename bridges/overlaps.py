"""Overlaps between solutions: permutation alignment of hidden units (weight matching), overlap matrices, P(q).

The replica overlap of spin glasses, for networks: the cosine of the flattened parameter vectors
``q_ab = ⟨θ_a, θ_b⟩ / (‖θ_a‖ ‖θ_b‖)``, and the permutation-aligned overlap (see :func:`align`); the histogram of q
over pairs is P(q), stored with the glass's layout (``q_bin`` centres, ``overlap_distribution`` density, as
``runs/jobs/pspin.py``). ``bridges.paths`` re-exports every public name here. Method and references: the module
docstring of ``bridges.paths`` (Entezari et al. 2022, arXiv:2110.06296; Ainsworth, Hayase & Srinivasa 2023,
arXiv:2209.04836, Algorithm 1).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from nets import mlp

from ._validate import check_int as _check_int
from ._validate import float_leaves as _float_leaves

__all__ = ["Overlaps", "OverlapDistribution", "align", "overlaps", "overlap_distribution", "pq_dataset"]

# Bins of the glass's P(q) in runs/jobs/pspin.py: 41 equal bins on [-1, 1].
_PQ_BINS = 41


class OverlapDistribution(NamedTuple):
    """P(q): bin centres ``q_bin`` and the normalized ``density`` (∫ P(q) dq = 1 over the bins)."""

    q_bin: np.ndarray
    density: np.ndarray


class Overlaps(NamedTuple):
    """``raw[a, b]`` = cosine of the flattened parameters; ``aligned[a, b]`` after matching hidden units (or None)."""

    raw: np.ndarray
    aligned: np.ndarray | None


# ----------------------------------------------------------------------------------------------------------------
# permutation alignment (weight matching) and overlaps
# ----------------------------------------------------------------------------------------------------------------


def _check_plain_mlp(params, name: str):
    if not isinstance(params, mlp.MLP):
        raise ValueError(f"{name}: a {type(params).__name__}; alignment needs a nets.mlp.MLP")
    if params.block != "plain" or not all(isinstance(layer, mlp.Dense) for layer in params.layers):
        # A residual stream ties the permutations of every layer it joins (P_in = P_out), which makes the matching
        # quadratic in P rather than a linear assignment; fractal joins tie them across columns likewise.
        raise ValueError(f"{name}.block={params.block!r}: only plain MLPs (Dense layers, block='plain') can be "
                         "aligned; residual and fractal blocks tie the permutations of several layers together")
    for layer in params.layers:
        if np.ndim(layer.w) != 2:
            raise ValueError(f"{name}: a layer weight of shape {np.shape(layer.w)}; align takes one network, "
                             "not a stack")


def _assignment(similarity: np.ndarray) -> np.ndarray:
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return cols[np.argsort(rows)]


def _permuted(layers, perms):
    """Hidden unit j of layer h becomes b's unit ``perms[h][j]``: columns of w^h and b^h, rows of w^{h+1}."""
    out = []
    for h, (w, b) in enumerate(layers):
        if h > 0:
            w = w[perms[h - 1], :]
        if h < len(perms):
            w, b = w[:, perms[h]], b[perms[h]]
        out.append((w, b))
    return out


def _inner(layers_a, layers_b) -> float:
    return float(sum(np.sum(wa * wb) + np.dot(ba, bb) for (wa, ba), (wb, bb) in zip(layers_a, layers_b,
                                                                                       strict=True)))


def _coordinate_ascent(la, lb, perms, max_sweeps: int):
    """Re-solve each hidden layer's assignment, the others fixed, until a sweep no longer increases ⟨θ_a, πθ_b⟩."""
    perms = list(perms)
    best = _inner(la, _permuted(lb, perms))
    for _ in range(max_sweeps):
        for h in range(len(perms)):
            (wa, ba), (wa_next, _) = la[h], la[h + 1]
            (wb, bb), (wb_next, _) = lb[h], lb[h + 1]
            rows = perms[h - 1] if h > 0 else slice(None)
            outs = perms[h + 1] if h + 1 < len(perms) else slice(None)
            # S[j, k]: gain of putting b's unit k in a's slot j — incoming weights and bias of layer h, outgoing
            # weights of layer h+1 (its columns already permuted by σ_{h+1}).
            perms[h] = _assignment(wa.T @ wb[rows] + np.outer(ba, bb) + wa_next @ wb_next[:, outs].T)
        value = _inner(la, _permuted(lb, perms))
        # Each assignment is optimal given the others, so the sum never decreases; stop once it stalls (a relative
        # gain at float64 rounding level is a tie, not progress).
        if value <= best + 1e-12 * max(abs(best), 1.0):
            return perms, max(value, best)
        best = value
    return perms, best


def _match(la, lb, max_sweeps: int = 100) -> list[np.ndarray]:
    """Permutations of b's hidden units maximizing ⟨θ_a, πθ_b⟩ (float64 layer lists ``[(w, b), ...]``)."""
    hidden = len(la) - 1
    # Start 1: forward pass on incoming weights and biases only (recovers an exactly permuted copy at once).
    greedy = []
    for h in range(hidden):
        rows = greedy[h - 1] if h > 0 else slice(None)
        (wa, ba), (wb, bb) = la[h], lb[h]
        greedy.append(_assignment(wa.T @ wb[rows] + np.outer(ba, bb)))
    # Start 2: the identity, so the result is never below the unaligned overlap.
    identity = [np.arange(w.shape[1]) for w, _ in la[:-1]]
    runs = [_coordinate_ascent(la, lb, start, max_sweeps) for start in (greedy, identity)]
    return max(runs, key=lambda run: run[1])[0]


def _layers64(params: mlp.MLP):
    return [(np.asarray(layer.w, np.float64), np.asarray(layer.b, np.float64)) for layer in params.layers]


def _flat(layers) -> np.ndarray:
    # the order of nets.mlp.flatten (leaves in tree order: w then b, layer by layer)
    return np.concatenate([np.concatenate([w.ravel(), b.ravel()]) for w, b in layers])


def _check_pair(params_a, params_b):
    _check_plain_mlp(params_a, "params_a")
    _check_plain_mlp(params_b, "params_b")
    if mlp.widths(params_a) != mlp.widths(params_b):
        raise ValueError(f"params_b: widths {mlp.widths(params_b)} differ from params_a's {mlp.widths(params_a)}; "
                         "alignment needs networks of the same shape")


def align(params_a: mlp.MLP, params_b: mlp.MLP) -> mlp.MLP:
    """Network b with its hidden units permuted to best match network a (the same function as b).

    Maximizes ``⟨θ_a, π θ_b⟩`` over permutations π of each hidden layer's units — applied to the columns of that
    layer's ``w``, its ``b`` and the rows of the next layer's ``w`` — by weight matching (coordinate ascent over
    layers of linear assignment problems, from two starts; exact for one hidden layer, a local maximum beyond).
    Inputs and outputs are not permuted; the returned arrays are b's, reordered (same dtype, no arithmetic).

    Only plain MLPs (``block="plain"``, Dense layers) of equal widths are accepted.

    References: Ainsworth, Hayase & Srinivasa 2023 (arXiv:2209.04836), weight matching, Algorithm 1; Entezari et
    al. 2022 (arXiv:2110.06296).

    Example:
      >>> b_aligned = align(net_a, net_b)
      >>> jnp.allclose(mlp.apply(b_aligned, x), mlp.apply(net_b, x))
    """
    _check_pair(params_a, params_b)
    perms = _match(_layers64(params_a), _layers64(params_b))
    original = [(np.asarray(layer.w), np.asarray(layer.b)) for layer in params_b.layers]
    layers = tuple(mlp.Dense(w=jnp.asarray(w), b=jnp.asarray(b)) for w, b in _permuted(original, perms))
    return mlp.MLP(layers=layers, activation=params_b.activation, block=params_b.block)


def _unstack(params_stack, name: str) -> list:
    leaves = _float_leaves(params_stack, name)
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"{name}: leaves with leading sizes {sorted(map(str, sizes))}; must be a stack of networks "
                         "(every leaf with the same leading axis, as nets.train.fit_many returns)")
    count = sizes.pop()
    if count < 2:
        raise ValueError(f"{name}: a stack of {count} network(s); overlaps need at least 2")
    host, treedef = jax.tree_util.tree_flatten(jax.tree_util.tree_map(np.asarray, params_stack))
    return [jax.tree_util.tree_unflatten(treedef, [leaf[i] for leaf in host]) for i in range(count)]


def _cosine_matrix(vectors: np.ndarray, norms: np.ndarray) -> np.ndarray:
    return (vectors @ vectors.T) / np.outer(norms, norms)


def overlaps(params_stack, *, align: bool = True, reference: int | None = None) -> Overlaps:
    """Overlap matrices ``q_ab`` (cosines of the flattened parameters, weights and biases) of a stack of networks.

    Args:
      params_stack: K ≥ 2 networks stacked on a leading axis (e.g. from ``nets.train.fit_many``).
      align: also compute the permutation-aligned overlaps (plain MLPs only, see :func:`align`).
      reference: None aligns every pair (b onto a for a < b; K(K-1)/2 matchings); an index r aligns every network
        onto network r (K - 1 matchings, one common frame) and takes the cosines between the aligned networks.

    Returns:
      ``Overlaps(raw, aligned)``: symmetric ``(K, K)`` float64 arrays (``aligned`` is None when ``align=False``).
      Every matching starts from the identity among others, so pairwise ``aligned ≥ raw`` entry by entry.

    References: Ainsworth, Hayase & Srinivasa 2023 (arXiv:2209.04836); the replica overlap of spin glasses.
    """
    nets = _unstack(params_stack, "params_stack")
    count = len(nets)
    if reference is not None:
        if isinstance(reference, bool) or not isinstance(reference, (int, np.integer)) or not 0 <= reference < count:
            raise ValueError(f"reference={reference!r}: must be None or an index in 0..{count - 1}")
    host = [[np.asarray(leaf, np.float64).ravel() for leaf in jax.tree_util.tree_leaves(n)] for n in nets]
    vectors = np.stack([np.concatenate(leaves) for leaves in host])
    norms = np.linalg.norm(vectors, axis=1)
    raw = _cosine_matrix(vectors, norms)
    if not align:
        return Overlaps(raw=raw, aligned=None)
    for i, n in enumerate(nets):
        _check_plain_mlp(n, f"params_stack[{i}]")
    layers = [_layers64(n) for n in nets]

    def aligned_vector(a, b):
        return _flat(_permuted(layers[b], _match(layers[a], layers[b])))

    if reference is not None:
        frame = np.stack([vectors[i] if i == reference else aligned_vector(reference, i) for i in range(count)])
        return Overlaps(raw=raw, aligned=_cosine_matrix(frame, norms))
    aligned = raw.copy()
    for a in range(count):
        for b in range(a + 1, count):
            aligned[a, b] = aligned[b, a] = float(vectors[a] @ aligned_vector(a, b)) / (norms[a] * norms[b])
    return Overlaps(raw=raw, aligned=aligned)


# ----------------------------------------------------------------------------------------------------------------
# P(q) in the glass's layout
# ----------------------------------------------------------------------------------------------------------------


def _pair_values(q_values) -> np.ndarray:
    q = np.asarray(q_values, dtype=np.float64)
    if q.ndim == 2 and q.shape[0] == q.shape[1]:
        q = q[np.triu_indices(q.shape[0], k=1)]
    if q.ndim != 1 or q.size == 0:
        raise ValueError(f"q_values: shape {np.shape(q_values)}; must be 1-D pair overlaps or a square (K, K) matrix")
    if not np.all(np.isfinite(q)) or np.any(np.abs(q) > 1 + 1e-6):
        raise ValueError(f"q_values: range [{q.min():g}, {q.max():g}]; overlaps are cosines, finite and in [-1, 1]")
    # |q| can exceed 1 by rounding only (checked above); clip so such a pair is counted in the end bin.
    return np.clip(q, -1.0, 1.0)


def _edges(bins) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        return np.linspace(-1.0, 1.0, _check_int(bins, "bins", 1) + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"bins={bins!r}: must be a number of bins on [-1, 1] or increasing bin edges")
    return edges


def overlap_distribution(q_values, bins=_PQ_BINS) -> OverlapDistribution:
    """P(q): the normalized histogram of pair overlaps, as the glass's replica-overlap distribution.

    Args:
      q_values: 1-D pair overlaps, or a square ``(K, K)`` overlap matrix (its pairs a < b are used).
      bins: number of equal bins on [-1, 1] (default 41, the glass's P(q) in ``runs/jobs/pspin.py``) or the edges.

    Returns:
      ``OverlapDistribution(q_bin, density)``: bin centres and ``density`` with ``Σ density · width = 1`` over the
      pairs that fall inside the edges.
    """
    q = _pair_values(q_values)
    edges = _edges(bins)
    density, _ = np.histogram(q, bins=edges, density=True)
    return OverlapDistribution(q_bin=0.5 * (edges[1:] + edges[:-1]), density=density)


def pq_dataset(q_values, *, bins=_PQ_BINS) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """P(q) and the pair overlaps as ``{name: (dims, array)}``, the schema of a job's summary (``runs.store``).

    Names match the glass's (``runs/jobs/pspin.py``): ``q_bin`` (coordinate, bin centres), ``overlap_distribution``
    (dims ``("q_bin",)``), and ``overlap`` with its coordinate ``pair`` (dims ``("pair",)``), one entry per pair.
    """
    q = _pair_values(q_values)
    dist = overlap_distribution(q, bins)
    return {
        "q_bin": (("q_bin",), dist.q_bin),
        "overlap_distribution": (("q_bin",), dist.density),
        "pair": (("pair",), np.arange(q.size)),
        "overlap": (("pair",), q),
    }
