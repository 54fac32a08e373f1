"""Kernels refuse a concrete temperature that is not a finite positive number (traced ones pass unchecked)."""
import jax
import jax.numpy as jnp
import pytest

from physics import kernels, lattice, rem, spherical

BAD = [0.0, -1.0, float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("temperature", BAD)
@pytest.mark.parametrize("name", ["metropolis", "heat_bath", "wolff"])
def test_lattice_kernels_refuse_bad_temperatures(name, temperature):
    with pytest.raises(ValueError, match=r"temperature=.*must be a finite number > 0"):
        getattr(kernels, name)(lattice.Ising((4, 4)), temperature)


@pytest.mark.parametrize("temperature", BAD)
def test_rem_family_and_tempering_refuse_bad_temperatures(temperature):
    model = rem.REM.random(jax.random.key(0), 6)
    with pytest.raises(ValueError, match="temperature"):
        kernels.metropolis(model, temperature)
    with pytest.raises(ValueError, match="temperatures"):
        kernels.parallel_tempering(lambda t: kernels.metropolis(model, t), [1.0, temperature])


@pytest.mark.parametrize("temperature", [-0.5, float("nan"), float("inf")])
def test_sphere_kernels_refuse_negative_or_non_finite_temperatures(temperature):
    model = spherical.PSpin.random(jax.random.key(0), 8, 3)
    with pytest.raises(ValueError, match="temperature"):
        kernels.langevin(model, temperature, 0.01)
    with pytest.raises(ValueError, match="temperature"):
        kernels.metropolis(model, temperature, 0.1)


def test_zero_temperature_is_defined_on_the_sphere_and_traced_values_pass():
    model = spherical.PSpin.random(jax.random.key(0), 8, 3)
    kernels.langevin(model, 0.0, 0.01)  # gradient flow
    kernels.metropolis(model, 0.0, 0.1)  # downhill moves only
    ising = lattice.Ising((4, 4))
    x = ising.random_state(jax.random.key(1))
    energies = jax.vmap(lambda t: kernels.metropolis(ising, t).init(jax.random.key(0), x).energy)(
        jnp.array([1.0, 2.0], jnp.float32))
    assert energies.shape == (2,)
