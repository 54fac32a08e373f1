"""Single-spin-flip Metropolis and heat bath for the REM family (``physics.rem``: REM, GREM, IsingPSpin, Funnel,
Perceptron).

One ``step`` is one sweep: spins i = 0 … n−1 in order, each proposed for a flip σ_i → −σ_i with energy change
``ΔE = H(σ^{(i)}) − H(σ)`` (the new energy is evaluated exactly from the model, so no error accumulates), accepted
with probability ``min(1, e^{−βΔE})`` (Metropolis et al. 1953) or ``1/(1 + e^{βΔE})`` (heat bath / Glauber 1963).
Each single-site update satisfies detailed balance with respect to ``e^{−βH}``, so the sequential sweep leaves it
invariant; the χ² tests against exact enumeration (tests/physics/test_kernels_discrete.py) check both rules.

Random numbers: one ``physics.hashing.uniform01`` per site per sweep, counter = site index, under the step key
the driver derives with ``fold_in``. ``temperature`` may be traced (vmap over temperatures compiles once).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .. import hashing
from ..rem import GREM, REM, Funnel, IsingPSpin, Perceptron
from .base import Kernel, register

__all__ = ["FlipState", "FlipInfo"]


class FlipState(NamedTuple):
    """A configuration (int8 ±1, shape (n,)) and its extensive energy."""

    x: jax.Array
    energy: jax.Array


class FlipInfo(NamedTuple):
    """Fraction of proposed flips accepted in the sweep, and whether the energy is finite."""

    acceptance: jax.Array
    is_finite: jax.Array


def _metropolis_accept(u, beta, de):
    return u < jnp.exp(jnp.minimum(-beta * de, 0.0))


def _heat_bath_accept(u, beta, de):
    return u < jax.nn.sigmoid(-beta * de)


def _single_flip(model, temperature, accept_rule) -> Kernel:
    n = model.n
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)

    def init(key, x):
        del key
        x = jnp.asarray(x).astype(jnp.int8)
        return FlipState(x, model.energy(x))

    def step(key, state):
        u = hashing.uniform01(key, jnp.arange(n, dtype=jnp.uint32))

        def body(i, carry):
            x, e, count = carry
            xf = x.at[i].multiply(jnp.int8(-1))
            ef = model.energy(xf)
            ok = accept_rule(u[i], beta, ef - e)
            return jnp.where(ok, xf, x), jnp.where(ok, ef, e), count + ok.astype(jnp.int32)

        x, e, count = jax.lax.fori_loop(0, n, body, (state.x, state.energy, jnp.zeros((), jnp.int32)))
        info = FlipInfo(count.astype(jnp.float32) / jnp.float32(n), jnp.isfinite(e))
        return FlipState(x, e), info

    return Kernel(init, step)


def metropolis(model, temperature) -> Kernel:
    """Single-spin-flip Metropolis sweeps for a REM-family model at ``temperature``."""
    return _single_flip(model, temperature, _metropolis_accept)


def heat_bath(model, temperature) -> Kernel:
    """Single-spin-flip heat-bath (Glauber) sweeps for a REM-family model at ``temperature``."""
    return _single_flip(model, temperature, _heat_bath_accept)


for _cls in (REM, GREM, IsingPSpin, Funnel, Perceptron):
    register("metropolis", _cls)(metropolis)
    register("heat_bath", _cls)(heat_bath)
