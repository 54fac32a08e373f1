"""The scan driver: chunked runs equal one run, `every` keeps the right records, bad arguments are refused."""
import jax
import numpy as np
import pytest

from physics import kernels, lattice, run


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
