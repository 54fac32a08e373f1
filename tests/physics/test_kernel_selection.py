"""Automatic selection of the multi-spin kernels by ``kernels.metropolis(model, T, replicas=R)`` (``physics.kernels``).

* The packed path is taken exactly when the model allows it (Ising with h = 0, ±J Edwards–Anderson with h = 0,
  2D/3D, even sides, a multiple of 32 chains, Metropolis) — the state's type is the marker.
* ``packing="plain"`` is ``kernels.batched(kernels.metropolis(model, T), R)`` bit for bit.
* Through the packed path the configurations come back in chain order and every energy equals ``model.energy`` of
  its configuration exactly (±1 bonds: integer sums, exact in float32); the physics of the kernels themselves is
  tested against exact enumeration and Kaufman in ``test_multispin.py``, and through the ``ising`` job in
  ``tests/runs/test_ising_job.py``.
* Requests that cannot be honoured raise a ``ValueError`` that says why.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import kernels, lattice

SHAPE_2D, SHAPE_3D = (6, 8), (4, 4, 4)


def _pm1(seed, shape, samples=None):
    """±J couplings (±1 with probability ½), ``(d, *shape)`` or ``(samples, d, *shape)`` (NumPy: no compile)."""
    lead = () if samples is None else (samples,)
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.choice(np.array([-1.0, 1.0], np.float32), size=(*lead, len(shape), *shape)))


def _ea(seed, shape, samples=None, h=0.0):
    return lattice.EdwardsAnderson(shape, _pm1(seed, shape, samples), h)


def _gaussian_batch(seed, shape, samples):
    rng = np.random.default_rng(seed)
    return lattice.EdwardsAnderson(shape, jnp.asarray(rng.standard_normal((samples, len(shape), *shape)), jnp.float32))


def _starts(model, chains, seed=0):
    """Random configurations ``(*chains, *shape)`` int8."""
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.choice(np.array([-1, 1], np.int8), size=(*chains, *model.shape)))


def _is_packed(kernel, model, chains):
    state = jax.eval_shape(kernel.init, jax.random.key(0), _starts(model, chains))
    return isinstance(state, kernels.MultispinBatchState)


# (name, model factory, kernel, replicas, chains, packed); factories: no JAX array is made at import
SELECTION = [
    ("ising2d_32", lambda: lattice.Ising(SHAPE_2D), "metropolis", 32, (32,), True),
    ("ising2d_96_three_words", lambda: lattice.Ising(SHAPE_2D, J=-0.7), "metropolis", 96, (96,), True),
    ("ising3d_64", lambda: lattice.Ising(SHAPE_3D), "metropolis", 64, (64,), True),
    ("ising2d_48_not_words", lambda: lattice.Ising(SHAPE_2D), "metropolis", 48, (48,), False),
    ("ising2d_field", lambda: lattice.Ising(SHAPE_2D, h=0.1), "metropolis", 32, (32,), False),
    ("ising2d_heat_bath", lambda: lattice.Ising(SHAPE_2D), "heat_bath", 32, (32,), True),
    ("ising2d_heat_bath_field", lambda: lattice.Ising(SHAPE_2D, h=0.1), "heat_bath", 32, (32,), False),
    ("ea2d_pm1_32", lambda: _ea(1, SHAPE_2D), "metropolis", 32, (32,), True),
    ("ea3d_pm1_2_samples_x_16", lambda: _ea(2, SHAPE_3D, samples=2), "metropolis", 16, (2, 16), True),
    ("ea3d_pm1_3_samples_x_8", lambda: _ea(2, SHAPE_3D, samples=3), "metropolis", 8, (3, 8), False),
    ("ea2d_pm1_field", lambda: _ea(1, SHAPE_2D, h=0.5), "metropolis", 32, (32,), False),
    ("ea2d_gaussian", lambda: lattice.EdwardsAnderson(SHAPE_2D, _gaussian_batch(3, SHAPE_2D, 1).couplings[0]),
     "metropolis", 32, (32,), False),
    ("ea2d_gaussian_samples", lambda: _gaussian_batch(4, SHAPE_2D, 2), "metropolis", 16, (2, 16), False),
    ("ea3d_pm1_heat_bath", lambda: _ea(2, SHAPE_3D, samples=2), "heat_bath", 16, (2, 16), True),
    ("ea2d_gaussian_heat_bath", lambda: _gaussian_batch(4, SHAPE_2D, 2), "heat_bath", 16, (2, 16), False),
]


@pytest.mark.parametrize("name, model, kernel, replicas, chains, packed", SELECTION, ids=[c[0] for c in SELECTION])
def test_multispin_is_selected_exactly_when_the_model_allows_it(name, model, kernel, replicas, chains, packed):
    model = model()
    builder = getattr(kernels, kernel)
    assert _is_packed(builder(model, 1.5, replicas=replicas), model, chains) == packed
    # the plain path whatever the model
    assert not _is_packed(builder(model, 1.5, replicas=replicas, packing="plain"), model, chains)
    # the plain batch's interface: .x (*chains, *shape) int8 and .energy (*chains,)
    init = builder(model, 1.5, replicas=replicas).init
    x, energy = jax.eval_shape(lambda k, xs: (lambda s: (s.x, s.energy))(init(k, xs)), jax.random.key(0),
                               _starts(model, chains))
    assert x.shape == (*chains, *model.shape) and x.dtype == jnp.int8
    assert energy.shape == chains


def test_traced_field_or_couplings_take_the_plain_path_unless_promised():
    """Under ``jit`` h = 0 and ±1 bonds cannot be checked: "auto" runs the plain kernel, "multispin" trusts."""
    xs = _starts(lattice.Ising(SHAPE_2D), (32,))

    def state_type(h, couplings, packing):
        def init(h, couplings):
            model = lattice.EdwardsAnderson(SHAPE_2D, couplings, h)
            return kernels.metropolis(model, 1.5, replicas=32, packing=packing).init(jax.random.key(0), xs)

        return type(jax.eval_shape(init, h, couplings))

    couplings = _pm1(5, SHAPE_2D)
    assert state_type(0.0, couplings, "auto") is not kernels.MultispinBatchState
    assert state_type(0.0, couplings, "multispin") is kernels.MultispinBatchState


STEPS = 5


def _run(kernel, xs, seed=11):
    """``STEPS`` sweeps from ``xs`` (step t with key ``fold_in(key, t)``), one compiled program; the final state."""
    key = jax.random.key(seed)

    def sweeps(xs):
        state = kernel.init(key, xs)
        return jax.lax.fori_loop(0, STEPS, lambda t, s: kernel.step(jax.random.fold_in(key, t), s)[0], state)

    return jax.jit(sweeps)(xs)


@pytest.mark.parametrize("model", [lambda: lattice.Ising(SHAPE_2D), lambda: _ea(6, SHAPE_3D)],
                         ids=["ising2d", "ea3d_pm1"])
def test_forced_plain_path_is_the_batched_kernel_bitwise(model):
    model = model()
    xs = _starts(model, (32,), seed=7)
    forced = _run(kernels.metropolis(model, 1.7, replicas=32, packing="plain"), xs)
    batched = _run(kernels.batched(kernels.metropolis(model, 1.7), 32), xs)
    assert type(forced) is type(batched)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(forced), jax.tree.leaves(batched)))


def test_forced_plain_path_of_a_sample_batch_is_one_batch_per_sample():
    """S samples × R replicas, plain: sample s is ``batched(metropolis(sample s), R)`` with the s-th split key."""
    model = _gaussian_batch(8, SHAPE_2D, 2)
    xs = _starts(model, (2, 4), seed=9)
    whole = _run(kernels.metropolis(model, 1.2, replicas=4, packing="plain"), xs, seed=3)

    @jax.jit
    def by_hand(couplings, xs, s):
        kernel = kernels.batched(kernels.metropolis(dataclasses.replace(model, couplings=couplings), 1.2), 4)
        key = jax.random.key(3)
        state = kernel.init(jax.random.split(key, 2)[s], xs)
        return jax.lax.fori_loop(
            0, STEPS, lambda t, st: kernel.step(jax.random.split(jax.random.fold_in(key, t), 2)[s], st)[0], state)

    for s in range(2):
        state = by_hand(model.couplings[s], xs[s], s)
        assert np.array_equal(whole.x[s], state.x) and np.array_equal(whole.energy[s], state.energy)


@pytest.mark.parametrize("model, chains, replicas", [
    (lambda: lattice.Ising(SHAPE_2D, J=-1.0), (64,), 64),
    (lambda: _ea(12, SHAPE_3D, samples=2), (2, 32), 32),
], ids=["ising2d_2_words", "ea3d_pm1_2_samples"])
def test_packed_states_are_the_chains_configurations_and_energies(model, chains, replicas):
    model = model()
    kernel = kernels.metropolis(model, 3.0, replicas=replicas)
    xs = _starts(model, chains, seed=13)
    start = kernel.init(jax.random.key(0), xs)
    assert isinstance(start, kernels.MultispinBatchState)
    assert np.array_equal(start.x, xs)  # chain order survives the word layout
    x, energy = jax.jit(lambda xs: (lambda s: (s.x, s.energy))(_run(kernel, xs)))(xs)
    x = np.asarray(x)
    assert energy.dtype == jnp.float32 and x.dtype == np.int8
    if isinstance(model, lattice.Ising):
        exact = jax.vmap(model.energy)(x)
    else:
        exact = jax.vmap(lambda c, xr: jax.vmap(dataclasses.replace(model, couplings=c).energy)(xr))(
            model.couplings, x)
    # ±1 bonds (J = -1: the antiferromagnetic bond words): every energy is an integer sum, exact in float32 on both
    # sides, so they agree bit for bit
    np.testing.assert_array_equal(energy, exact)
    # the chains moved, and not in lockstep: all distinct configurations after a few sweeps at T = 3 (above T_c:
    # at low T the antiferromagnet's chains would legitimately reach its two Néel states)
    flat = x.reshape(-1, x[(0,) * len(chains)].size)
    assert not np.array_equal(x, np.asarray(xs))
    assert len({row.tobytes() for row in flat}) == flat.shape[0]


@pytest.mark.parametrize("call, message", [
    (lambda: kernels.metropolis(lattice.Ising(SHAPE_2D), 1.0, replicas=32, packing="fast"),
     r"packing='fast': must be one of 'auto', 'plain', 'multispin'"),
    (lambda: kernels.heat_bath(lattice.Ising(SHAPE_2D, h=0.2), 1.0, replicas=32, packing="multispin"),
     r"packing='multispin': h=0.2: multi-spin coding needs h = 0"),
    (lambda: kernels.metropolis(lattice.Ising(SHAPE_2D, h=0.2), 1.0, replicas=32, packing="multispin"),
     r"packing='multispin': h=0.2: multi-spin coding needs h = 0"),
    (lambda: kernels.metropolis(_gaussian_batch(1, SHAPE_2D, 2), 1.0, replicas=16, packing="multispin"),
     r"packing='multispin': couplings: multi-spin coding needs ±1 bonds"),
    (lambda: kernels.metropolis(_ea(1, SHAPE_3D, samples=3), 1.0, replicas=8, packing="multispin"),
     r"packing='multispin': 3 × 8 = 24 chains: multi-spin coding needs a multiple of 32"),
    (lambda: kernels.metropolis(lattice.Ising(SHAPE_2D), 1.0, packing="multispin"),
     r"packing='multispin': packs a batch of chains; give replicas"),
    (lambda: kernels.metropolis(_ea(1, SHAPE_2D, samples=2), 1.0),
     r"a batch of samples needs replicas"),
    (lambda: kernels.metropolis(lattice.Ising(SHAPE_2D), 1.0, replicas=0), r"replicas=0: must be an integer ≥ 1"),
    (lambda: kernels.metropolis(lattice.Ising(SHAPE_2D), -1.0, replicas=32), r"temperature=-1.0"),
    (lambda: kernels.metropolis(lattice.Ising(SHAPE_2D), 1.0, replicas=32).init(
        jax.random.key(0), jnp.ones((16, *SHAPE_2D), jnp.int8)), r"xs.shape=\(16, 6, 8\): expected \(32, 6, 8\)"),
])
def test_bad_arguments_say_why(call, message):
    with pytest.raises(ValueError, match=message):
        call()
