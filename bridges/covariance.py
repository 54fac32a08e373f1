"""A loss as a random field on the sphere: its covariance function, the mixed p-spin with the same ξ, and theory.

A loss ``L(w)`` restricted to the sphere ``|w|² = n`` is compared with an isotropic Gaussian field whose covariance
is ``Cov(L(w), L(w')) = n ξ(q)``, ``q = w·w'/n``, ``ξ(q) = Σ_p c_p² q^p / 2`` — the mixed spherical p-spin of
``physics.spherical.PSpin.random(key, n, {p: c_p})`` (CS units, ``../shared/REFERENCES.md``).

**Estimate.** For each overlap q, M independent pairs: w uniform on the sphere, ``w' = q w + √(1 − q²) u`` with u
uniform on the unit sphere of the tangent space at w (a Gaussian projected orthogonally to w, scaled to √n), so
``w·w' = n q`` exactly and both points are uniform. With μ the mean of every evaluated L,

    Ĉ(q) = (1/M) Σ_k (L(w_k) − μ)(L(w'_k) − μ),    stderr = std_k(…)/√M

(pairs are independent across q, so the estimates are independent). For one fixed function this is the
*spatial* covariance about the sphere mean; for a Gaussian field of covariance n ξ it averages over the disorder
to ``n Σ_p a_p (q^p − m_p)/2`` with ``a_p = c_p²`` and ``m_p = E[q^p]`` the moments of the overlap of two uniform
points (0 for odd p, e.g. m_2 = 1/n): subtracting the mean removes the variance of the sphere average. A single
sample fluctuates about this by ~ the inverse square root of its number of independent couplings.

**Fit.** ``a_p ≥ 0`` by non-negative least squares (Lawson & Hanson 1974, ``scipy.optimize.nnls``) of
``Ĉ(q)/n = Σ_p a_p (q^p − m_p)/2`` weighted by 1/stderr. Standard errors: a parametric bootstrap of the NNLS
estimator (refits of Ĉ + N(0, stderr²)) — the monomials are nearly collinear on [−1, 1], so the unconstrained
least-squares errors (used without a key) are several times larger than the constrained estimator's spread. The
fitted ``{p: c_p}`` (degrees 2..8; a degree-1 term is a random external field, which ``PSpin`` does not hold, but
the theory does) gives the model. The fit's χ² / dof says whether a polynomial ξ describes the loss at all, and
:func:`xi_chi2` tests a fixed ξ against another estimate.

**Isotropy.** An isotropic field has the same C(q) in every subspace. The pairs of ``num_subspaces`` groups are
drawn inside random coordinate subspaces (``subspace_dim`` coordinates drawn for each group; by rotation
invariance a coordinate subspace is as good as any for an isotropic field, it costs O(n) per point, and it probes
the anisotropy a network has: layers, input pixels); at each q the groups' estimates are compared with their
weighted mean, ``χ² = Σ_{q,g} (Ĉ_g(q) − C̄(q))² / se_g(q)²`` with ``#q (G − 1)`` degrees of freedom.
``spread_ratio`` is the rms of the group deviations in units of their standard errors (≈ 1 when isotropic). One
fixed sample of an isotropic field is itself slightly anisotropic (its restriction to k coordinates has a
covariance that fluctuates by ~ the inverse square root of the number of couplings among them): the default
k = n/2 keeps that below the noise of practical pair counts, while a small k, or very many pairs, would flag it.

**Theory.** For the fitted ξ: threshold ``E_th``, the 1RSB ground state (exact or a bound) and the annealed
complexity of minima (``physics.theory.mixed_*``, Auffinger & Ben Arous, Ann. Probab. 41:4214, 2013), per spin in
CS units; measured minima ``L_min`` enter as ``e = (L_min − μ)/n``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from scipy.optimize import nnls

from physics import spherical, theory

__all__ = [
    "CovarianceEstimate",
    "XiFit",
    "Isotropy",
    "CovarianceMatch",
    "DEFAULT_OVERLAPS",
    "sphere_pair",
    "estimate_covariance",
    "overlap_moment",
    "fit_xi",
    "xi_chi2",
    "isotropy",
    "match_covariance",
]

DEFAULT_OVERLAPS = tuple(float(q) for q in np.linspace(-1.0, 1.0, 17))
_DENSE_MODEL_BYTES = 1 << 28  # the fitted PSpin stores its tensors up to 256 MiB, else hashes its couplings


class CovarianceEstimate(NamedTuple):
    """``covariance`` Ĉ(q) and ``stderr`` at each of ``overlaps``; ``mean`` μ of every evaluated loss; ``n``;
    ``num_pairs`` M per overlap."""

    overlaps: np.ndarray
    covariance: np.ndarray
    stderr: np.ndarray
    mean: float
    n: int
    num_pairs: int


class XiFit(NamedTuple):
    """``ξ(q) = Σ_p coefficients[p] q^p / 2`` fitted to Ĉ(q)/n: ``coefficients`` a_p = c_p² (≥ 0) and their
    ``stderr``; ``weights`` {p: c_p} for p with a_p > 0; ``chi2`` and ``dof`` of the weighted fit; ``n``; the
    bootstrap ``samples`` of a (B, #degrees) when the errors were bootstrapped (to propagate into derived numbers)."""

    degrees: tuple
    coefficients: np.ndarray
    stderr: np.ndarray
    weights: dict
    chi2: float
    dof: int
    n: int
    samples: np.ndarray | None = None

    def xi(self, q):
        """The fitted ξ(q) = Σ a_p q^p / 2."""
        q = np.asarray(q, np.float64)
        return sum(0.5 * a * q**p for p, a in zip(self.degrees, self.coefficients, strict=True))

    def spatial(self, q):
        """The covariance about the sphere mean that ξ predicts, per n: ``Σ a_p (q^p − m_p)/2``."""
        q = np.asarray(q, np.float64)
        pairs = zip(self.degrees, self.coefficients, strict=True)
        return sum(0.5 * a * (q**p - overlap_moment(p, self.n)) for p, a in pairs)


class Isotropy(NamedTuple):
    """Group-to-group consistency of Ĉ(q) across random subspaces: ``chi2``, ``dof``, ``pvalue``, ``spread_ratio``
    (rms deviation / stderr), and the per-group ``covariance`` (G, #q) and ``stderr``."""

    chi2: float
    dof: int
    pvalue: float
    spread_ratio: float
    covariance: np.ndarray
    stderr: np.ndarray


class CovarianceMatch(NamedTuple):
    """Everything :func:`match_covariance` measures: the estimate, the fit, the mixed ``PSpin`` (None without a
    degree ≥ 2 term, or where PSpin cannot hold the mixture at this n), the isotropy report and the theory of the
    fitted ξ (per spin, CS units; None when the fit has no degree ≥ 2 term): ``threshold_energy`` and its
    bootstrap ``threshold_stderr``, ``ground_state_energy`` (1RSB), ``ground_state_exact``; the same as losses
    ``μ + n e``; and for the measured minima their energies per spin and the annealed complexity of minima there
    (> 0: exponentially many such minima are expected; < 0: none)."""

    estimate: CovarianceEstimate
    fit: XiFit
    model: spherical.PSpin | None
    isotropy: Isotropy
    threshold_energy: float | None
    threshold_stderr: float | None
    ground_state_energy: float | None
    ground_state_exact: bool | None
    threshold_loss: float | None
    ground_state_loss: float | None
    minima_energy: np.ndarray | None
    minima_complexity: np.ndarray | None


# --- sampling --------------------------------------------------------------------------------------------------


def sphere_pair(key: jax.Array, n: int, q, mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """One pair ``(w, w')`` on the sphere ``|w|² = n`` with ``w·w' = n q`` exactly (vmappable over key and q).

    w is uniform; u is uniform on the unit sphere of the tangent space at w (scaled to √n); ``w' = q w + √(1−q²) u``.
    With a 0/1 ``mask`` both points live on the masked coordinates (a coordinate subspace, still |w|² = n).
    """
    k_w, k_u = jax.random.split(key)
    z = jax.random.normal(k_w, (n,), jnp.float32)
    g = jax.random.normal(k_u, (n,), jnp.float32)
    if mask is not None:
        z, g = z * mask, g * mask
    root_n = jnp.sqrt(jnp.float32(n))
    w = z * (root_n / jnp.linalg.norm(z))
    g = g - (jnp.dot(g, w) / jnp.float32(n)) * w
    u = g * (root_n / jnp.linalg.norm(g))
    q = jnp.asarray(q, jnp.float32)
    return w, q * w + jnp.sqrt(jnp.maximum(1.0 - q * q, 0.0)) * u


def _check(n, num_pairs, overlaps, batch_size):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n={n!r}: must be an integer ≥ 2")
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, (int, np.integer)) or num_pairs < 2:
        raise ValueError(f"num_pairs={num_pairs!r}: must be an integer ≥ 2")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be an integer ≥ 1")
    qs = np.asarray(overlaps, np.float64)
    if qs.ndim != 1 or qs.size < 1 or np.any(~np.isfinite(qs)) or np.any(np.abs(qs) > 1):
        raise ValueError(f"overlaps={overlaps!r}: must be a list of numbers in [-1, 1]")
    return int(n), int(num_pairs), qs


def _subspace_masks(key, n, num_subspaces, subspace_dim) -> jax.Array:
    """Row 0: every coordinate; rows 1..G: ``subspace_dim`` coordinates drawn at random for each group."""
    if isinstance(num_subspaces, bool) or not isinstance(num_subspaces, (int, np.integer)) or num_subspaces < 2:
        raise ValueError(f"num_subspaces={num_subspaces!r}: must be an integer ≥ 2")
    k = max(n // 2, 2) if subspace_dim is None else subspace_dim
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= n:
        raise ValueError(f"subspace_dim={subspace_dim!r}: must be an integer in 2..n={n}")
    ranks = jax.vmap(lambda kk: jnp.argsort(jax.random.uniform(kk, (n,))))(jax.random.split(key, num_subspaces))
    masks = (jnp.argsort(ranks, axis=1) < k).astype(jnp.float32)  # the k coordinates of smallest random rank
    return jnp.concatenate([jnp.ones((1, n), jnp.float32), masks])


def _layout(key, qs, num_pairs, groups):
    """Per-pair keys, overlaps and group indices for ``num_pairs`` pairs per overlap and per group."""
    total = len(groups) * qs.size * num_pairs
    q_of = np.tile(np.repeat(qs, num_pairs), len(groups))
    g_of = np.repeat(np.asarray(groups), qs.size * num_pairs)
    return jax.random.split(key, total), jnp.asarray(q_of, jnp.float32), jnp.asarray(g_of, jnp.int32)


def _pair_values(loss_fn, n, layouts, masks, batch_size, shapes) -> list[np.ndarray]:
    """L at both points of every pair of every layout, one compiled program; each result shaped (G, #q, M, 2).

    Points are generated inside the compiled loop, ``batch_size`` pairs at a time, so memory is O(batch · n)
    whatever the number of pairs.
    """
    keys, q_of, g_of = (jnp.concatenate([lay[i] for lay in layouts]) for i in range(3))
    total = keys.shape[0]
    size = min(total, int(batch_size))
    pad = (-total) % size
    if pad:
        keys, q_of, g_of = (jnp.concatenate([a, a[:pad]]) for a in (keys, q_of, g_of))

    def one(k, q, g):
        w, w2 = sphere_pair(k, n, q, masks[g])
        return jnp.stack([loss_fn(w), loss_fn(w2)])

    def run_all(ks, qq, gg):
        return jax.lax.map(lambda args: jax.vmap(one)(*args), (ks, qq, gg))

    batched = [a.reshape(-1, size, *a.shape[1:]) for a in (keys, q_of, g_of)]
    values = np.asarray(jax.jit(run_all)(*batched), np.float64).reshape(-1, 2)[:total]
    if not np.all(np.isfinite(values)):
        raise ValueError("loss_fn: returned a non-finite value on the sphere")
    sizes = [lay[0].shape[0] for lay in layouts]
    parts = np.split(values, np.cumsum(sizes)[:-1])
    return [part.reshape(*shape, 2) for part, shape in zip(parts, shapes, strict=True)]


def _summarize(values, mean):
    """Ĉ(q) and its standard error from the losses at the pairs (array (#q, M, 2))."""
    prod = (values[..., 0] - mean) * (values[..., 1] - mean)
    return prod.mean(axis=-1), prod.std(axis=-1, ddof=1) / math.sqrt(values.shape[-2])


def _isotropy_report(values, mean) -> Isotropy:
    covs, ses = _summarize(values, mean)  # (G, #q)
    # a group whose loss does not vary at all has stderr 0: floor it so that the others' spread still counts
    ses = np.maximum(ses, 1e-12 * max(float(np.max(ses)), 1e-300))
    wts = 1.0 / ses**2
    centre = np.sum(covs * wts, axis=0) / np.sum(wts, axis=0)
    chi2 = float(np.sum(((covs - centre) / ses) ** 2))
    dof = int(covs.shape[1] * (covs.shape[0] - 1))
    return Isotropy(chi2, dof, float(stats.chi2.sf(chi2, dof)), float(math.sqrt(chi2 / dof)), covs, ses)


def estimate_covariance(key: jax.Array, loss_fn: Callable, n: int, *, num_pairs: int = 1024,
                        overlaps: Sequence[float] = DEFAULT_OVERLAPS, batch_size: int = 256) -> CovarianceEstimate:
    """Ĉ(q) of ``loss_fn`` (one configuration w of shape (n,) → a scalar) on the sphere ``|w|² = n``."""
    n, num_pairs, qs = _check(n, num_pairs, overlaps, batch_size)
    values = _pair_values(loss_fn, n, [_layout(key, qs, num_pairs, [0])], jnp.ones((1, n), jnp.float32),
                          batch_size, [(qs.size, num_pairs)])[0]
    mean = float(values.mean())
    cov, se = _summarize(values, mean)
    return CovarianceEstimate(qs, cov, se, mean, n, num_pairs)


# --- fitting ---------------------------------------------------------------------------------------------------


def overlap_moment(p: int, n: int) -> float:
    """``E[q^p]`` for the overlap ``q = w·w'/n`` of two independent uniform points on the sphere in R^n.

    0 for odd p; ``(p−1)!! / (n (n+2) ⋯ (n+p−2))`` for even p (q² ~ Beta(1/2, (n−1)/2)).
    """
    if p % 2:
        return 0.0
    out = 1.0
    for j in range(p // 2):
        out *= (2 * j + 1) / (n + 2 * j)
    return out


def fit_xi(overlaps, covariance, stderr, n: int, degrees: Sequence[int] = (1, 2, 3, 4, 5, 6), *,
           key: jax.Array | None = None, num_bootstrap: int = 200) -> XiFit:
    """Non-negative weighted least squares of ``covariance/n`` on ``Σ_p a_p (q^p − m_p)/2`` (module docstring).

    ``m_p = E[q^p]`` (:func:`overlap_moment`) is the part of the covariance that subtracting the sphere mean
    removes: a field with covariance n ξ has a spatial mean of variance ``n Σ a_p m_p / 2``, so its covariance
    about that mean averages to ``n Σ a_p (q^p − m_p)/2`` (O(1/n) for even degrees, 0 for odd). Standard errors: with
    ``key``, a parametric bootstrap of the NNLS estimator (``num_bootstrap`` refits of Ĉ + N(0, stderr²)); without,
    the unconstrained weighted-least-squares errors (conservative: the monomials are nearly collinear on [−1, 1]).
    """
    degs = tuple(int(d) for d in degrees)
    if not degs or any(d < 1 for d in degs) or len(set(degs)) != len(degs):
        raise ValueError(f"degrees={degrees!r}: must be distinct integers ≥ 1")
    qs = np.asarray(overlaps, np.float64)
    c = np.asarray(covariance, np.float64) / n
    se = np.asarray(stderr, np.float64) / n
    if not (qs.shape == c.shape == se.shape) or np.any(~(se > 0)):
        raise ValueError("overlaps, covariance, stderr: must have one shape and stderr > 0")
    if qs.size <= len(degs):
        raise ValueError(f"overlaps: {qs.size} points cannot fit {len(degs)} degrees; give more overlaps")
    design = np.stack([0.5 * (qs**d - overlap_moment(d, n)) for d in degs], axis=1) / se[:, None]
    a, _ = nnls(design, c / se)
    resid = c / se - design @ a
    boot = None
    if key is None:
        err = np.sqrt(np.diag(np.linalg.pinv(design.T @ design)))
    else:
        noise = np.asarray(jax.random.normal(key, (int(num_bootstrap), qs.size), jnp.float32), np.float64)
        boot = np.array([nnls(design, c / se + z)[0] for z in noise])
        err = boot.std(axis=0, ddof=1)
    active = int(np.sum(a > 0))
    weights = {d: math.sqrt(x) for d, x in zip(degs, a, strict=True) if x > 0}
    return XiFit(degs, a, err, weights, float(resid @ resid), int(qs.size - active), int(n), boot)


def xi_chi2(fit: XiFit, estimate: CovarianceEstimate) -> tuple[float, int, float]:
    """``(χ², dof, p-value)`` of an estimate Ĉ(q) against a fitted ξ fixed in advance (no parameters fitted, so
    dof = #q): does this ξ describe that loss? A wrong ξ must be rejected."""
    r = (estimate.covariance / estimate.n - fit.spatial(estimate.overlaps)) / (estimate.stderr / estimate.n)
    chi2 = float(r @ r)
    return chi2, int(r.size), float(stats.chi2.sf(chi2, r.size))


# --- isotropy --------------------------------------------------------------------------------------------------


def isotropy(key: jax.Array, loss_fn: Callable, n: int, *, num_pairs: int = 256, num_subspaces: int = 8,
             subspace_dim: int | None = None, overlaps: Sequence[float] = DEFAULT_OVERLAPS,
             batch_size: int = 256) -> Isotropy:
    """Compare Ĉ(q) estimated inside ``num_subspaces`` random coordinate subspaces (module docstring), with
    ``num_pairs`` pairs per overlap in each."""
    n, num_pairs, qs = _check(n, num_pairs, overlaps, batch_size)
    k_masks, k_pairs = jax.random.split(key)
    masks = _subspace_masks(k_masks, n, num_subspaces, subspace_dim)
    groups = list(range(1, masks.shape[0]))
    values = _pair_values(loss_fn, n, [_layout(k_pairs, qs, num_pairs, groups)], masks, batch_size,
                          [(len(groups), qs.size, num_pairs)])[0]
    return _isotropy_report(values, float(values.mean()))


# --- everything at once ----------------------------------------------------------------------------------------


def match_covariance(loss_fn: Callable, n: int, key: jax.Array, *, num_pairs: int = 1024,
                     overlaps: Sequence[float] = DEFAULT_OVERLAPS, degrees: Sequence[int] = (1, 2, 3, 4, 5, 6),
                     num_subspaces: int = 8, subspace_dim: int | None = None, minima=None,
                     batch_size: int = 256) -> CovarianceMatch:
    """The training loss as a random field on ``|w|² = n``: Ĉ(q), the fitted mixed p-spin, isotropy and theory.

    Args:
      loss_fn: ``w (n,) → scalar`` on the sphere of radius √n (for a network: ``loss(unflatten(scale · w))`` with
        the scale that puts typical weights on the sphere); vmapped and jitted here.
      n: the dimension.
      key: PRNG key (split for the pairs, the isotropy subspaces, the bootstrap and the model's disorder).
      num_pairs: M pairs per overlap (the isotropy groups use M // num_subspaces each).
      overlaps: the q values (include negative q: they separate odd and even degrees).
      degrees: the degrees p fitted (a_p = c_p² ≥ 0).
      num_subspaces, subspace_dim: the isotropy probe (default 8 subspaces of dimension n // 2).
      minima: optional losses of minima found by training, compared with the theory of the fitted ξ.
      batch_size: pairs evaluated per vmapped batch (memory ~ batch_size × the loss's memory per point).

    Example:
      >>> glass = PSpin.random(jax.random.key(0), 64, 3)
      >>> match = match_covariance(glass.energy, 64, jax.random.key(1))
      >>> match.fit.weights                                   # ≈ {3: 1.0}
    """
    n, num_pairs, qs = _check(n, num_pairs, overlaps, batch_size)
    k_masks, k_pairs, k_iso, k_model, k_boot = jax.random.split(key, 5)
    masks = _subspace_masks(k_masks, n, num_subspaces, subspace_dim)
    group_pairs = max(num_pairs // int(num_subspaces), 2)
    subspaces = list(range(1, masks.shape[0]))
    main, groups = _pair_values(  # one compiled program for every evaluation
        loss_fn, n, [_layout(k_pairs, qs, num_pairs, [0]), _layout(k_iso, qs, group_pairs, subspaces)], masks,
        batch_size, [(qs.size, num_pairs), (len(subspaces), qs.size, group_pairs)])
    mean = float((main.sum() + groups.sum()) / (main.size + groups.size))
    cov, se = _summarize(main, mean)
    estimate = CovarianceEstimate(qs, cov, se, mean, n, num_pairs)
    fit = fit_xi(qs, cov, se, n, degrees, key=k_boot)
    iso = _isotropy_report(groups, mean)
    glass = {p: c for p, c in fit.weights.items() if 2 <= p <= 8}
    if not glass:
        return CovarianceMatch(estimate, fit, None, iso, None, None, None, None, None, None, None, None)
    # dense tensors while they are small (n^p floats); otherwise the same couplings generated on the fly; None
    # where PSpin cannot hold the mixture at this n (its coupling hash needs n^(p−2) < 2^31)
    dense = spherical.estimate_bytes(n, glass, "dense") <= _DENSE_MODEL_BYTES
    try:
        model = spherical.PSpin.random(k_model, n, glass, couplings="dense" if dense else "hashed")
    except ValueError:
        model = None
    mixture = dict(fit.weights)
    e_th = theory.mixed_threshold_energy(mixture)
    boot_th = [theory.mixed_threshold_energy({p: math.sqrt(a) for p, a in zip(fit.degrees, row, strict=True)})
               for row in fit.samples if any(a > 0 and p >= 2 for p, a in zip(fit.degrees, row, strict=True))]
    th_err = float(np.std(boot_th, ddof=1)) if len(boot_th) > 1 else None
    gs = theory.mixed_ground_state(mixture)
    mu, nn = estimate.mean, estimate.n
    e_min = c_min = None
    if minima is not None:
        e_min = (np.atleast_1d(np.asarray(minima, np.float64)) - mu) / nn
        c_min = np.atleast_1d(theory.mixed_complexity(e_min, mixture, index=0))
    return CovarianceMatch(estimate, fit, model, iso, e_th, th_err, gs.energy, gs.rsb1_exact, mu + nn * e_th,
                           mu + nn * gs.energy, e_min, c_min)
