"""Dynamics and samplers on the sphere ``Σ s_i² = n`` for ``physics.spherical.PSpin`` (or any model with
``energy_and_grad`` and ``n``).

* :func:`langevin` — overdamped Langevin ``ds = -P∇H dt + √(2T) P dW``, Euler–Maruyama in the tangent space then
  the retraction ``s ↦ √n s/|s|`` (which supplies the Itô drift of the sphere). Stationary law ``∝ e^{-H/T}`` on
  the sphere up to O(step_size); T = 0 is plain gradient flow.
* :func:`gradient_descent` — Riemannian descent ``s ← R(s - η P∇H)`` that freezes once the Riemannian gradient
  RMS ``|P∇H|/√n`` is below ``tolerance``.
* ``kernels.metropolis(model, T, step_size)`` (registered for ``PSpin``) — random-walk Metropolis with the
  proposal ``s' = R(s + h Pξ)``, ``ξ ~ N(0, I_n)``: a uniformly random tangent direction and an angle
  ``arctan(h|Pξ|/√n)`` whose law does not depend on s. The proposal density is therefore a function of the angle
  between s and s' only (rotation invariance of N(0, I) and of the sphere), hence symmetric, ``q(s→s') =
  q(s'→s)``, and accepting with ``min(1, e^{-ΔH/T})`` satisfies detailed balance for ``e^{-H/T}`` on the sphere.
  One step is one proposal of a move of all n coordinates (one energy evaluation), not a sweep of n local moves.

Numbers (temperature, step size, tolerance) may be traced: a sweep over them vmaps one compiled program.
References: Cugliandolo & Kurchan, PRL 71:173 (1993) for Langevin dynamics of the spherical p-spin; Absil, Mahony,
Sepulchre (2008) §4 for retractions; Metropolis et al. (1953), Hastings (1970).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..spherical import PSpin, project, retract
from .base import Kernel, check_temperature, register

__all__ = ["langevin", "gradient_descent", "SphereState", "SphereInfo", "DescentState", "DescentInfo",
           "MetropolisState", "MetropolisInfo"]


class SphereState(NamedTuple):
    """Langevin state: configuration, its extensive energy and Euclidean gradient (cached for the next step)."""

    x: jax.Array
    energy: jax.Array
    grad: jax.Array


class SphereInfo(NamedTuple):
    """Per-step report: Riemannian gradient RMS ``|P∇H|/√n`` before the step, and whether the state is finite."""

    grad_norm: jax.Array
    is_finite: jax.Array


class DescentState(NamedTuple):
    """Gradient-descent state; ``converged`` freezes it, ``steps`` counts the steps actually taken."""

    x: jax.Array
    energy: jax.Array
    grad: jax.Array
    grad_norm: jax.Array
    converged: jax.Array
    steps: jax.Array


class DescentInfo(NamedTuple):
    grad_norm: jax.Array
    converged: jax.Array
    is_finite: jax.Array


class MetropolisState(NamedTuple):
    x: jax.Array
    energy: jax.Array


class MetropolisInfo(NamedTuple):
    """``accepted`` this step (0/1 as float, average it for the acceptance rate)."""

    accepted: jax.Array
    is_finite: jax.Array


def _grad_rms(x, g):
    return jnp.linalg.norm(project(x, g)) / jnp.sqrt(jnp.asarray(x.shape[-1], x.dtype))


def _as_float(v, dtype=jnp.float32):
    return jnp.asarray(v, dtype)


def langevin(model, temperature, step_size) -> Kernel:
    """Overdamped Langevin dynamics on the sphere at ``temperature`` with time step ``step_size``.

    ``s' = √n y/|y|``, ``y = s - η P∇H(s) + √(2Tη) Pξ``, ``ξ ~ N(0, I_n)``, ``P = I - s sᵀ/n``. One step advances
    time by η (the time of Cugliandolo–Kurchan's equations, ``∂_t s = -∇H - μ s + noise``). T = 0 allowed.

    Example:
      >>> k = langevin(model, 1.0, 0.01); state = k.init(key, model.random_state(key))
    """
    check_temperature(temperature, allow_zero=True)
    eta = _as_float(step_size)
    temp = _as_float(temperature)

    def init(key, x):
        del key
        e, g = model.energy_and_grad(x)
        return SphereState(x, e, g)

    def step(key, state):
        x, g = state.x, state.grad
        noise = jax.random.normal(key, x.shape, x.dtype)
        y = x - eta * project(x, g) + jnp.sqrt(2.0 * temp * eta) * project(x, noise)
        x_new = retract(y)
        e, g_new = model.energy_and_grad(x_new)
        info = SphereInfo(_grad_rms(x, g), jnp.isfinite(e))
        return SphereState(x_new, e, g_new), info

    return Kernel(init, step)


def gradient_descent(model, step_size, tolerance=1e-4) -> Kernel:
    """Riemannian gradient descent to a local minimum: ``s' = R(s - η P∇H)`` until ``|P∇H|/√n < tolerance``.

    Once converged the state is frozen (the step returns it unchanged), so a fixed number of scan steps is a
    safe upper bound; ``DescentState.steps`` records when it stopped and ``DescentInfo.converged`` the flag.
    Stable for η below 2/λ_max of the Hessian (λ_max ≈ -p e + √(2p(p-1)) ≈ 7 at the p = 3 threshold).
    """
    eta = _as_float(step_size)
    tol = _as_float(tolerance)

    def init(key, x):
        del key
        e, g = model.energy_and_grad(x)
        gn = _grad_rms(x, g)
        return DescentState(x, e, g, gn, gn < tol, jnp.zeros((), jnp.int32))

    def step(key, state):
        del key
        x_new = retract(state.x - eta * project(state.x, state.grad))
        e, g = model.energy_and_grad(x_new)
        gn = _grad_rms(x_new, g)
        moved = DescentState(x_new, e, g, gn, gn < tol, state.steps + 1)
        new = jax.tree_util.tree_map(lambda old, nw: jnp.where(state.converged, old, nw), state, moved)
        return new, DescentInfo(new.grad_norm, new.converged, jnp.isfinite(new.energy))

    return Kernel(init, step)


@register("metropolis", PSpin)
def metropolis_sphere(model, temperature, step_size=None) -> Kernel:
    """Random-walk Metropolis on the sphere (module docstring): proposal ``R(s + h Pξ)``, accept ``e^{-ΔH/T}``.

    ``step_size`` h is the displacement per coordinate (default ``1/√n``: an O(1) energy change, acceptance
    roughly one half at T ≈ 1). At T = 0 only moves with ΔH ≤ 0 are accepted.
    """
    h = _as_float(1.0 / jnp.sqrt(model.n) if step_size is None else step_size)
    temp = _as_float(temperature)

    def init(key, x):
        del key
        return MetropolisState(x, model.energy(x))

    def step(key, state):
        k_move, k_acc = jax.random.split(key)
        x = state.x
        proposal = retract(x + h * project(x, jax.random.normal(k_move, x.shape, x.dtype)))
        e_new = model.energy(proposal)
        delta = e_new - state.energy
        log_ratio = jnp.where(temp > 0, -delta / jnp.where(temp > 0, temp, 1.0),
                              jnp.where(delta <= 0, 0.0, -jnp.inf))
        accept = jnp.log(jax.random.uniform(k_acc, (), x.dtype)) < log_ratio
        accept = accept & jnp.isfinite(e_new)
        new = MetropolisState(jnp.where(accept, proposal, x), jnp.where(accept, e_new, state.energy))
        return new, MetropolisInfo(accept.astype(x.dtype), jnp.isfinite(new.energy))

    return Kernel(init, step)


metropolis_sphere.zero_temperature = True  # T = 0 is defined: only downhill moves are accepted
