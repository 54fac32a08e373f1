"""The binary perceptron's training landscape as a correlated REM: energy = training errors of weights σ ∈ {±1}^n.

Data: P patterns ξ^μ ∈ R^n (rows of ``patterns``) with labels y^μ ∈ {−1, +1}; weights σ ∈ {−1, +1}^n. The
stability of pattern μ is ``Δ^μ(σ) = y^μ σ·ξ^μ / √n`` and, with a margin κ ≥ 0 (default 0),

* ``loss="errors"``: ``H(σ) = Σ_μ Θ(κ − Δ^μ)`` with ``Θ(0) = 1`` — the number of patterns with ``Δ^μ ≤ κ``. At
  κ = 0 a pattern on the decision boundary (σ·ξ^μ = 0, possible for ±1 patterns and even n) counts as an error,
  so a state of energy 0 classifies every pattern strictly correctly. Energies are integers: the enumeration's
  density of states holds them exactly (``physics.rem.enumerate``).
* ``loss="hinge"``: ``H(σ) = Σ_μ max(0, κ − Δ^μ)`` — the perceptron criterion at κ = 0 (Rosenblatt), the SVM
  hinge at κ = 1; zero exactly on the states with every ``Δ^μ ≥ κ``.

Unlike the Gaussian models of ``physics.rem.models`` the energy is neither centred nor of variance n/2: for P
random ±1 patterns and labels (Gardner's problem) a random σ makes ``P/2`` errors on average for odd n
(``P(1 + C(n, n/2) 2^−n)/2`` for even n, where ties count). Over random patterns
``Cov(Θ(−Δ^μ(σ)), Θ(−Δ^μ(τ))) → arcsin(q)/(2π)`` for n → ∞ (Sheppard's orthant formula, q = σ·τ/n), so the
landscape is a correlated REM with ``ρ(q) = (2/π) arcsin q`` — a mixture of every odd p, p = 1 included (exact
finite-n values: ``bridges.data_rem.gardner_correlation``).

Constructors: ``Perceptron.gardner`` (random ±1 patterns and labels: Gardner 1988, J. Phys. A 21:257; Gardner &
Derrida 1988, J. Phys. A 21:271; capacity α_c = P/n ≈ 0.833 for binary weights, Krauth & Mézard 1989, J. Phys.
France 50:3057), ``Perceptron.teacher`` (labels from a random ±1 teacher, which has zero errors: the
teacher–student problem of Györgyi 1990, Phys. Rev. A 41:7097), and
``Perceptron(patterns, labels)`` for any data set (``bridges.data_rem.digits_perceptron`` for binarized digits).
"""
from __future__ import annotations

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .models import _check_n, _SpinModel, _tree, spins_from_index

__all__ = ["Perceptron"]

_LOSSES = ("errors", "hinge")


def _concrete(value) -> bool:
    """True for a concrete array; False while JAX rebuilds the pytree from tracers or placeholder objects."""
    return isinstance(value, (np.ndarray, jax.Array)) and not isinstance(value, jax.core.Tracer)


def _random_signs(key, shape) -> jax.Array:
    return 2.0 * jax.random.bernoulli(key, 0.5, shape).astype(jnp.float32) - 1.0


@partial(_tree, data=["patterns", "labels", "margin"], meta=["loss"])
@dataclasses.dataclass(frozen=True)
class Perceptron(_SpinModel):
    """Training errors (or hinge loss) of a binary perceptron with weights σ on fixed data: ``H(σ) = Σ_μ ℓ(Δ^μ)``.

    ``Δ^μ = y^μ σ·ξ^μ/√n``; ``ℓ = Θ(κ − Δ)`` (``Θ(0) = 1``) for ``loss="errors"``, ``max(0, κ − Δ)`` for
    ``loss="hinge"`` (module docstring). The patterns, labels and margin are data leaves (a stack of samples vmaps);
    the loss is static, ``n`` is the number of pattern components (1 ≤ n ≤ 64; exact enumeration up to 36).

    Args:
      patterns: a ``(P, n)`` array of real numbers (±1 for Gardner's problem), stored float32.
      labels: a ``(P,)`` array of ±1.
      margin: κ ≥ 0.
      loss: "errors" or "hinge".

    Example:
      >>> model = Perceptron.gardner(jax.random.key(0), 20, 10)
      >>> model.energy(model.random_state(jax.random.key(1)))  # errors of a random weight vector, ≈ 5
    """

    patterns: jax.Array
    labels: jax.Array
    margin: jax.Array = 0.0
    loss: str = "errors"

    def __post_init__(self):
        # Only user input is checked: pytree unflattening inside jit/vmap passes tracers or placeholder objects.
        if not _concrete(self.patterns):
            return
        pat = np.asarray(self.patterns)  # leading axes allowed: a stack of samples built under vmap
        if pat.ndim < 2 or pat.shape[-2] < 1 or not np.issubdtype(pat.dtype, np.number):
            raise ValueError(f"patterns: must be a numeric (P, n) array with P ≥ 1, got shape {pat.shape}")
        _check_n(pat.shape[-1])
        if not np.all(np.isfinite(pat)):
            raise ValueError("patterns: must be finite numbers")
        lab = np.asarray(self.labels)
        if lab.shape != pat.shape[:-1] or not np.all(np.abs(lab) == 1):
            raise ValueError(f"labels: must be ±1, one per pattern (shape {pat.shape[:-1]}), got shape {lab.shape}")
        margin = np.asarray(self.margin, np.float64)
        if margin.shape != pat.shape[:-2] or not np.all((margin >= 0) & np.isfinite(margin)):
            raise ValueError(f"margin={self.margin!r}: must be a finite number ≥ 0")
        if self.loss not in _LOSSES:
            raise ValueError(f"loss={self.loss!r}: must be one of {_LOSSES}")
        object.__setattr__(self, "patterns", jnp.asarray(pat, jnp.float32))
        object.__setattr__(self, "labels", jnp.asarray(lab, jnp.float32))
        object.__setattr__(self, "margin", jnp.asarray(self.margin, jnp.float32))

    @property
    def n(self) -> int:
        return self.patterns.shape[-1]

    @property
    def num_patterns(self) -> int:
        return self.patterns.shape[-2]

    @classmethod
    def gardner(cls, key, n: int, num_patterns: int, *, margin: float = 0.0, loss: str = "errors") -> Perceptron:
        """Gardner's problem: ``num_patterns`` random ±1 patterns of n components, random ±1 labels."""
        n, num = _check_n(n), _check_count(num_patterns)
        k_pat, k_lab = jax.random.split(key)
        return cls(_random_signs(k_pat, (num, n)), _random_signs(k_lab, (num,)), margin, loss)

    @staticmethod
    def teacher_weights(key, n: int) -> jax.Array:
        """The teacher (int8 ±1, shape (n,)) that :meth:`teacher` draws from the same ``key``."""
        return _random_signs(jax.random.fold_in(key, 0), (_check_n(n),)).astype(jnp.int8)

    @classmethod
    def teacher(cls, key, n: int, num_patterns: int, *, margin: float = 0.0, loss: str = "errors") -> Perceptron:
        """Random ±1 patterns labelled by a random ±1 teacher τ (:meth:`teacher_weights`): ``y = sign(τ·ξ)``.

        Patterns with ``τ·ξ = 0`` (even n) are redrawn, so the patterns are uniform given no tie and the teacher
        classifies every pattern strictly correctly: it has zero errors at κ = 0. The redraw loop runs on concrete
        arrays: call it outside ``jit``/``vmap`` (``gardner`` has no such loop and vmaps over keys).
        """
        n, num = _check_n(n), _check_count(num_patterns)
        tau = cls.teacher_weights(key, n).astype(jnp.float32)
        k_pat = jax.random.fold_in(key, 1)
        patterns = _random_signs(jax.random.fold_in(k_pat, 0), (num, n))
        attempt = 0
        while True:  # a tie has probability C(n, n/2)/2^n ≤ ½: a few redraws, on concrete arrays
            tie = np.asarray(patterns @ tau) == 0.0
            if not tie.any():
                break
            attempt += 1
            fresh = _random_signs(jax.random.fold_in(k_pat, attempt), (num, n))
            patterns = jnp.where(jnp.asarray(tie)[:, None], fresh, patterns)
        return cls(patterns, jnp.sign(patterns @ tau), margin, loss)

    def fields(self, x) -> jax.Array:
        """``y^μ σ·ξ^μ`` (= √n Δ^μ) for configurations x (±1, shape (..., n)): shape (..., P), one matmul."""
        weighted = self.patterns * self.labels[..., None]
        return jnp.asarray(x).astype(jnp.float32) @ weighted.T

    def _loss(self, fields) -> jax.Array:
        root_n = jnp.float32(math.sqrt(self.n))
        threshold = self.margin * root_n  # compare y σ·ξ with κ√n: exact for integer fields at κ = 0
        if self.loss == "errors":
            return jnp.sum(fields <= threshold, axis=-1, dtype=jnp.int32).astype(jnp.float32)
        return jnp.sum(jnp.maximum(threshold - fields, jnp.float32(0.0)), axis=-1) / root_n

    def energy(self, x) -> jax.Array:
        """Extensive energy of one configuration x (±1, shape (n,)): errors or hinge loss over the P patterns."""
        return self._loss(self.fields(x))

    def energies_from_index(self, lo, hi) -> jax.Array:
        """Energies of the states with index words ``(lo, hi)``: the ±1 states (batch × n) times the patterns."""
        x = spins_from_index(lo, hi, self.n).reshape(-1, self.n)
        return self._loss(self.fields(x)).reshape(jnp.shape(lo))


def _check_count(num_patterns) -> int:
    if isinstance(num_patterns, bool) or int(num_patterns) != num_patterns or int(num_patterns) < 1:
        raise ValueError(f"num_patterns={num_patterns!r}: must be an integer ≥ 1")
    return int(num_patterns)
