"""A property of checkerboard Metropolis that users must know: states in which every spin has zero local field.

With ``min(1, e^{-βΔE})`` a move with ΔE = 0 is always accepted. In a state where every site's field is zero
(h = 0), a half-sweep flips its whole sublattice, which leaves every field zero, so one sweep maps x → −x at every
temperature: the chain alternates between two states for ever. The set of such states is closed, and since the
Boltzmann distribution is stationary for the sweep, no chain started outside it ever enters it; a chain *started*
inside never equilibrates. On the 4×4 torus there are 36 of them among 65,536 states (a uniformly random start lands
there with probability 5.5e-4); their share falls exponentially with the lattice size. Heat bath (flip probability
½ at zero field) has no such set. Remedy: start from an ordered state, or run a few heat-bath sweeps first.
These tests pin the property on every Metropolis path of the 2D Ising model, so a change of the acceptance rule
shows up here.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from physics import kernels, lattice, run


def _zero_field_states() -> np.ndarray:
    """All 4×4 ±1 states in which every site has zero local field (nearest neighbours, periodic)."""
    idx = np.arange(2**16)
    x = (1 - 2 * ((idx[:, None] >> np.arange(16)) & 1)).reshape(-1, 4, 4).astype(np.int8)
    s = x.astype(np.int32)
    field = np.roll(s, 1, 1) + np.roll(s, -1, 1) + np.roll(s, 1, 2) + np.roll(s, -1, 2)
    return x[(field == 0).all(axis=(1, 2))]


def test_zero_field_states_of_the_4x4_torus():
    states = _zero_field_states()
    assert len(states) == 36
    energies = {float(lattice.Ising((4, 4)).energy(jnp.asarray(x))) for x in states}
    assert energies == {0.0}


def _after_sweeps(kernel, x0: np.ndarray, sweeps: int) -> np.ndarray:
    batch = kernels.batched(kernel, len(x0))
    key = jax.random.key(3)
    state = batch.init(key, jnp.asarray(x0))
    state, _ = run(batch, key, state, sweeps)
    return np.asarray(state.x)


def test_metropolis_alternates_in_a_zero_field_state_at_any_temperature():
    states = _zero_field_states()
    for temperature in (0.5, 2.269, 10.0):
        for kernel in (kernels.metropolis(lattice.Ising((4, 4)), temperature),
                       kernels.metropolis(lattice.EdwardsAnderson((4, 4), jnp.ones((2, 4, 4), jnp.float32)),
                                          temperature)):
            np.testing.assert_array_equal(_after_sweeps(kernel, states, 1), -states)
            np.testing.assert_array_equal(_after_sweeps(kernel, states, 8), states)


def test_multispin_metropolis_alternates_too():
    states = _zero_field_states()[:32]
    kernel = kernels.multispin_metropolis(lattice.Ising((4, 4)), 2.269)
    key = jax.random.key(5)
    state = kernel.init(key, jnp.asarray(states))
    state, _ = run(kernel, key, state, 3)
    np.testing.assert_array_equal(np.asarray(state.x), -states)


def test_heat_bath_leaves_zero_field_states():
    """The control: heat bath at zero field flips each spin with probability ½, so the states do not persist."""
    states = _zero_field_states()
    out = _after_sweeps(kernels.heat_bath(lattice.Ising((4, 4)), 2.269), states, 1)
    assert np.mean(np.all(out == -states, axis=(1, 2))) < 0.1
