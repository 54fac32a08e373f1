"""Pairwise glasses built from data: the Hopfield network of stored patterns and the linear-regression landscape.

**Hopfield** (Hopfield, PNAS 79:2554, 1982; Amit, Gutfreund & Sompolinsky "AGS", PRL 55:1530, 1985 and Ann. Phys.
173:30, 1987). P patterns ``ξ^μ ∈ {±1}^n`` are stored with Hebb's rule,

    J_ij = (1/n) Σ_μ ξ^μ_i ξ^μ_j  (i ≠ j),  J_ii = 0,     H(σ) = −½ Σ_{i≠j} J_ij σ_i σ_j   (``physics.pairwise``),

and recalled by single-spin dynamics started at a pattern. The overlaps ``m_μ = ξ^μ·σ/n`` measure recall. At
T → 0 the patterns are stable (m ≈ 1 − O(e^{−1/(2α)})) up to the load ``α = P/n = α_c ≈ 0.138``; above it the
retrieval states are gone and the dynamics falls into spin-glass states of small overlap (AGS 1987). Finite n
smears the transition over a width ~ n^{−1/2}.

**Linear regression** on the sphere. For data ``X`` (N, d) and targets y, the mean squared error is

    L(w) = |Xw − y|² / (2N) = ½ wᵀ C w − b·w + |y|²/(2N),     C = XᵀX/N,  b = Xᵀy/N,

so on the sphere ``|w|² = d`` the quadratic part is the spherical 2-spin ``H_2(w) = −½ wᵀ J w`` with couplings
``J = −C`` (a ``physics.spherical.PSpin`` of degree 2 with the tensor ``S = J/2``; its disorder is the data, not
a Gaussian ensemble) and b is an external field. Its ground state is the top eigenvector of J (the direction of
least data variance) scaled to length √d, with energy ``−½ d λ_max(J)``; at T > 0 the spherical 2-spin condenses on
that eigenvector below its transition (Kosterlitz, Thouless & Jones, PRL 36:1217, 1976). Gaussian inputs give
a Marchenko–Pastur spectrum of C with edges ``(1 ± √(d/N))²`` (Marchenko & Pastur 1967); images have zero modes
(pixels that never light: a degenerate, flat ground space) and a large top eigenvalue (the mean image).
With the field, the minimum on the sphere solves the trust-region equations ``(C + λI) w = b``, ``|w|² = d``,
``C + λI ⪰ 0`` (Moré & Sorensen, SIAM J. Sci. Stat. Comput. 4:553, 1983).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import brentq

from physics import run, spherical
from physics.kernels import metropolis
from physics.pairwise import Pairwise

__all__ = [
    "hopfield",
    "pattern_overlaps",
    "Retrieval",
    "retrieval",
    "RegressionLandscape",
    "regression_landscape",
    "regression_minimum",
]


# --- Hopfield --------------------------------------------------------------------------------------------------


def _check_patterns(patterns) -> np.ndarray:
    xi = np.asarray(patterns)
    if xi.ndim != 2 or xi.shape[0] < 1 or xi.shape[1] < 2:
        raise ValueError(f"patterns.shape={xi.shape}: must be (P, n) with P ≥ 1 patterns of n ≥ 2 spins")
    if not np.all(np.abs(xi) == 1):
        raise ValueError("patterns: entries must be ±1")
    return xi.astype(np.float64)


def hopfield(patterns) -> Pairwise:
    """The Hopfield network storing ``patterns`` (P, n) of ±1: Hebb couplings ``J = ξᵀξ/n``, zero diagonal, h = 0."""
    xi = _check_patterns(patterns)
    n = xi.shape[1]
    j = xi.T @ xi / n
    np.fill_diagonal(j, 0.0)
    return Pairwise.from_couplings(j)


def pattern_overlaps(patterns, x) -> jax.Array:
    """``m_μ = ξ^μ·σ/n`` for every stored pattern (shape (P,) for one configuration σ of shape (n,))."""
    xi = jnp.asarray(patterns, jnp.float32)
    return xi @ jnp.asarray(x).astype(jnp.float32) / jnp.float32(xi.shape[-1])


class Retrieval(NamedTuple):
    """Final overlaps of recall runs: ``overlap`` (T, S) with the pattern each of S runs started at, per temperature;
    ``mean`` and ``stderr`` over the S runs (the patterns are one sample of the disorder)."""

    temperatures: np.ndarray
    overlap: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray


def retrieval(key: jax.Array, patterns, temperatures, sweeps: int, *, starts: int | None = None) -> Retrieval:
    """Start Metropolis sweeps at each of the first ``starts`` patterns (default all) at every temperature and
    measure the overlap with the starting pattern after ``sweeps`` sweeps.

    One compiled program serves all temperatures and starts (vmapped; the temperature is traced).
    """
    xi = _check_patterns(patterns)
    temps = np.atleast_1d(np.asarray(temperatures, np.float64))
    if temps.ndim != 1 or not np.all(np.isfinite(temps)) or np.any(temps <= 0):
        raise ValueError(f"temperatures={temperatures!r}: must be finite numbers > 0")
    if isinstance(sweeps, bool) or not isinstance(sweeps, (int, np.integer)) or sweeps < 1:
        raise ValueError(f"sweeps={sweeps!r}: must be an integer ≥ 1")
    num = xi.shape[0] if starts is None else int(starts)
    if not 1 <= num <= xi.shape[0]:
        raise ValueError(f"starts={starts!r}: must be in 1..P={xi.shape[0]}")
    model = hopfield(xi)
    stored = jnp.asarray(xi, jnp.float32)
    x0 = jnp.asarray(xi[:num], jnp.int8)

    def one(t, k, x, target):
        kernel = metropolis(model, t)
        k_init, k_run = jax.random.split(k)
        state, _ = run(kernel, k_run, kernel.init(k_init, x), int(sweeps), every=int(sweeps))
        return jnp.dot(target, state.x.astype(jnp.float32)) / jnp.float32(model.n)

    keys = jax.random.split(key, temps.size * num).reshape(temps.size, num)
    over_starts = jax.vmap(one, in_axes=(None, 0, 0, 0))
    m = jax.jit(jax.vmap(over_starts, in_axes=(0, 0, None, None)))(
        jnp.asarray(temps, jnp.float32), keys, x0, stored[:num]
    )
    m = np.asarray(m, np.float64)
    stderr = m.std(axis=1, ddof=1) / math.sqrt(num) if num > 1 else np.full(temps.size, np.nan)
    return Retrieval(temps, m, m.mean(axis=1), stderr)


# --- linear regression -----------------------------------------------------------------------------------------


class RegressionLandscape(NamedTuple):
    """``L(w) = offset + model.energy(w) − field·w`` (module docstring), with the spectrum of the 2-spin part.

    ``model``: the degree-2 ``PSpin`` (dense, tensor ``J/2``); ``couplings`` J = −C; ``field`` b = Xᵀy/N;
    ``offset`` |y|²/(2N); ``eigenvalues`` of J, descending, and ``eigenvectors`` (columns, same order);
    ``ground_state``: the top eigenvector of J with |w|² = d (the 2-spin ground state; sign: largest entry > 0);
    ``ground_state_energy`` ``−½ d λ_max(J)``; ``degeneracy``: eigenvalues of J within 1e-9·max|λ| of the top
    (a degenerate ground space when > 1).
    """

    model: spherical.PSpin
    couplings: np.ndarray
    field: np.ndarray
    offset: float
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    ground_state: np.ndarray
    ground_state_energy: float
    degeneracy: int


def regression_landscape(x, y=None, *, center: bool = False) -> RegressionLandscape:
    """The mean-squared-error landscape of linear regression on the sphere ``|w|² = d`` as a spherical 2-spin.

    Args:
      x: inputs (N, d), d ≥ 2.
      y: targets (N,) (default zeros: the pure 2-spin, no field).
      center: subtract the means of x and y first (regression with an intercept, eliminated).

    Returns:
      A :class:`RegressionLandscape`; ``C = XᵀX/N`` is the loss Hessian.
    """
    xs = np.asarray(x, np.float64)
    if xs.ndim != 2 or xs.shape[0] < 1 or xs.shape[1] < 2 or not np.all(np.isfinite(xs)):
        raise ValueError(f"x.shape={xs.shape}: must be a finite (N, d) array with d ≥ 2")
    num, d = xs.shape
    ys = np.zeros(num) if y is None else np.asarray(y, np.float64)
    if ys.shape != (num,) or not np.all(np.isfinite(ys)):
        raise ValueError(f"y.shape={ys.shape}: must be ({num},) and finite")
    if center:
        xs = xs - xs.mean(axis=0)
        ys = ys - ys.mean()
    c = xs.T @ xs / num
    c = 0.5 * (c + c.T)
    j = -c
    vals, vecs = np.linalg.eigh(j)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    top = vecs[:, 0] * math.sqrt(d)
    top = top if top[np.argmax(np.abs(top))] > 0 else -top
    tol = 1e-9 * max(float(np.max(np.abs(vals))), 1e-300)  # float64 eigh resolves ~1e-15 of the scale
    model = spherical.PSpin(
        tensors=(jnp.asarray(0.5 * j, jnp.float32),),
        seeds=jnp.zeros((1, 2), jnp.uint32),
        n=d,
        degrees=(2,),
        weights=(_equivalent_weight(0.5 * j),),
        couplings="dense",
        block=d,
    )
    return RegressionLandscape(
        model=model,
        couplings=j,
        field=xs.T @ ys / num,
        offset=float(ys @ ys / (2 * num)),
        eigenvalues=vals,
        eigenvectors=vecs,
        ground_state=top,
        ground_state_energy=-0.5 * d * float(vals[0]),
        degeneracy=int(np.sum(vals >= vals[0] - tol)),
    )


def _equivalent_weight(s: np.ndarray) -> float:
    """``c`` of the random degree-2 PSpin whose tensor has the same mean square as ``s`` (ordered entries).

    For ``PSpin.random``, ``E Σ_{ij} S_ij² = c² (n+1)/4`` (n(n+1)/2 sorted pairs, each of variance c²/(2n) after the
    multiplicity weights), so ``c = 2 |S|_F / √(n+1)``. Only a scale: the data couplings are not Gaussian.
    """
    n = s.shape[0]
    return float(2.0 * np.linalg.norm(s) / math.sqrt(n + 1))


def regression_minimum(landscape: RegressionLandscape) -> tuple[np.ndarray, float]:
    """The minimum ``(w, L(w))`` of the full loss (2-spin plus field) on the sphere ``|w|² = d``.

    Trust-region solution (Moré & Sorensen 1983): in the eigenbasis of ``C = −J`` (eigenvalues c_i ascending),
    ``w_i = b_i/(c_i + λ)`` with λ > −c_min solving ``Σ b_i²/(c_i + λ)² = d``; in the "hard case" (b orthogonal to
    the bottom eigenspace and too short there) λ = −c_min and the bottom eigenvector makes up the length.
    Without a field this is the ground state of the 2-spin.
    """
    vals = -landscape.eigenvalues  # eigenvalues of C, ascending (J's were descending)
    vecs = landscape.eigenvectors
    d = vecs.shape[0]
    bt = vecs.T @ landscape.field
    cmin = vals[0]
    scale = max(float(np.max(np.abs(vals))), 1e-300)
    bottom = vals <= cmin + 1e-9 * scale
    if np.all(np.abs(bt[bottom]) <= 1e-12 * max(float(np.linalg.norm(bt)), 1e-300)):
        rest = ~bottom
        w_rest = np.where(rest, bt / np.where(rest, vals - cmin, 1.0), 0.0)
        extra = d - float(w_rest @ w_rest)
        if extra >= 0:  # hard case
            w_t = w_rest.copy()
            w_t[np.argmax(bottom)] = math.sqrt(extra)
            w = vecs @ w_t
            return w, _loss(landscape, w)

    def excess(lam):
        return float(np.sum((bt / (vals + lam)) ** 2)) - d

    step = max(float(np.linalg.norm(bt)) / math.sqrt(d), 1e-12)
    hi = -cmin + step
    while excess(hi) > 0:
        hi = -cmin + 2.0 * (hi + cmin)
    lo = -cmin + step
    while excess(lo) < 0:
        lo = -cmin + 0.5 * (lo + cmin)
    lam = brentq(excess, lo, hi, xtol=1e-15, rtol=1e-15)
    w = vecs @ (bt / (vals + lam))
    return w, _loss(landscape, w)


def _loss(landscape: RegressionLandscape, w: np.ndarray) -> float:
    return float(landscape.offset - 0.5 * w @ landscape.couplings @ w - landscape.field @ w)
