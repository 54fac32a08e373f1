"""The scan driver: chunked runs equal one run, `every` keeps the right records, bad arguments are refused."""
import jax
import numpy as np
import pytest

import physics
from physics import kernels, lattice, run
from physics.kernels.multispin import REPLICAS, multispin_ea_metropolis


def _kernel():
    model = lattice.EdwardsAnderson.random(jax.random.key(0), (4, 6), "gaussian")
    return model, kernels.heat_bath(model, 0.9)


def test_chunks_reproduce_one_run():
    model, kern = _kernel()
    key = jax.random.key(3)
    s0 = kern.init(key, model.random_state(key))
    full_state, full = run(kern, key, s0, 60, every=5)
    s, a = run(kern, key, s0, 20, every=5)
    s, b = run(kern, key, s, 40, every=5, start=20)
    assert np.array_equal(np.concatenate([a, b]), full)
    assert np.array_equal(s.x, full_state.x)


def test_every_keeps_the_state_after_each_block():
    model, kern = _kernel()
    key = jax.random.key(4)
    s0 = kern.init(key, model.random_state(key))
    _, every1 = run(kern, key, s0, 12, observe=lambda s, i: s.energy)
    _, every4 = run(kern, key, s0, 12, observe=lambda s, i: s.energy, every=4)
    assert np.array_equal(every1[3::4], every4)


def test_observe_sees_the_info_of_the_step():
    model, kern = _kernel()
    key = jax.random.key(5)
    s0 = kern.init(key, model.random_state(key))
    _, (acc, xs) = run(kern, key, s0, 10, observe=lambda s, i: (i.acceptance, s.x))
    xs = np.concatenate([np.asarray(s0.x)[None], np.asarray(xs)])
    changed = (xs[1:] != xs[:-1]).mean(axis=(1, 2))
    assert acc.shape == (10,) and np.allclose(acc, changed)


@pytest.mark.parametrize("num_steps,every", [(10, 0), (10, 3), (-1, 1)])
def test_bad_arguments(num_steps, every):
    model, kern = _kernel()
    with pytest.raises(ValueError):
        run(kern, jax.random.key(0), kern.init(jax.random.key(0), model.random_state(jax.random.key(0))),
            num_steps, every=every)



def _wide_case(case):
    """(kernel, state, Gaussian couplings or None) of one sweep kind, from fixed seeds."""
    key = jax.random.key(0)
    if case == "multi-spin 3D ±J":
        couplings = jax.vmap(lambda k: lattice.EdwardsAnderson.random(k, (8, 8, 16), "pm1").couplings)(
            jax.random.split(key, REPLICAS))
        kern = multispin_ea_metropolis(couplings, 1.1)
        return kern, kern.init(key, lattice.random_spins(key, (REPLICAS, 8, 8, 16))), None
    if case == "2D Gaussian EA heat bath":
        model = lattice.EdwardsAnderson.random(key, (32, 64), "gaussian")
        kern = kernels.heat_bath(model, 1.3)
        return kern, kern.init(key, model.random_state(key)), np.asarray(model.couplings)
    model = lattice.Ising((64, 64) if case == "packed 2D Ising" else (8, 8, 16))
    kern = kernels.metropolis(model, 2.5)
    return kern, kern.init(key, model.random_state(key)), None


@pytest.mark.parametrize("case", ["packed 2D Ising", "3D Ising", "2D Gaussian EA heat bath", "multi-spin 3D ±J"])
def test_wide_vectors_give_the_plain_configurations(case):
    """``physics.jit`` (512-bit vectors on this CPU) changes how fast a sweep runs, not what it computes: the same
    configurations as ``jax.jit``, bitwise. Energies: with ±1 couplings every partial sum is an integer below 2^24,
    exact in float32 in any order, so they are equal; with Gaussian couplings a reduction may be reassociated over
    more lanes, and each program's float32 sum of m bond terms is within (m - 1)·ε·Σ|J_b| of the exact one, so the
    two differ by at most twice that (measured here: 0)."""
    kern, state, gaussian = _wide_case(case)
    key = jax.random.key(3)
    plain, wide = (jit(lambda s: run(kern, key, s, 6))(state) for jit in (jax.jit, physics.jit))
    assert np.array_equal(plain[0].x, wide[0].x)
    if gaussian is None:
        np.testing.assert_array_equal(plain[1], wide[1])
    else:
        bound = 2 * (gaussian.size - 1) * np.finfo(np.float32).eps * np.abs(gaussian).sum()
        np.testing.assert_allclose(plain[1], wide[1], rtol=0, atol=bound)


def test_jit_forms_and_refusal():
    def f(x, n):
        return x * n

    assert physics.jit(f, static_argnames="n")(2.0, 3) == 6.0
    assert physics.jit(static_argnames="n")(f)(2.0, 3) == 6.0
    assert physics.jit(f, static_argnames="n").lower(2.0, 3).compile()(2.0) == 6.0
    with pytest.raises(ValueError, match="compiler_options"):
        physics.jit(f, compiler_options={"xla_cpu_prefer_vector_width": 256})
