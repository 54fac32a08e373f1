"""Multi-spin heat bath (``physics.kernels.multispin``, ``multispin_heat_bath`` / ``multispin_ea_heat_bath``).

χ² against exact enumeration with the harnesses of ``tests/physics/test_multispin.py`` (one replica or sample per
independent chain): 2D Ising 4×4 (J = ±1), 3D Ising 2×2×4 (J = ±1) and 8 ±J Edwards–Anderson samples of a word on
4×4 and 2×2×4, each against its own enumeration, each with a 1.05·T negative control. The heat-bath rule itself:
from a fixed configuration the first half-sweep's flip frequency of every count class c against
``p_c = 1 / (1 + e^{4β|J|(d - c)})``, rejecting Metropolis's probabilities and a 1.05·T sample. Exact energies,
the selection by ``kernels.heat_bath(..., replicas=R, packing=...)``, and the samples' bitwise independence.

Heat bath has no zero-field trap (``tests/physics/test_metropolis_trap.py``), so every chain here starts from random
spins, the 2D Ising ones included (the Metropolis harness must start ordered).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import tests.physics.test_multispin as metropolis_tests
from physics import kernels, lattice, run, theory
from physics.kernels.multispin import (
    REPLICAS,
    multispin_ea_heat_bath,
    multispin_heat_bath,
    multispin_metropolis,
)
from tests.physics.test_lattice import ACCEPT, SHAPE_2D, SHAPE_3D, WRONG, _chi2_pvalues
from tests.physics.test_multispin import (
    BURN,
    CHAINS,
    EA_CASES,
    GAP,
    KAUFMAN_SIZE,
    KAUFMAN_T,
    KBURN,
    RUNS,
    SAMPLES,
    STEPS,
    _ea_couplings,
    _pooled_samples_pvalues,
)
from tests.stats import assert_within

# --- χ² against exact enumeration: 2D and 3D Ising ---------------------------------------------------------------
# The temperatures of the Metropolis harness: 4×4 near T_c (J = 1) and ordered (J = -1), 2×2×4 near the bulk
# T_c ≈ 4.51 (J = 1) and ordered (J = -1).
ISING_CASES = {"2d_J1": (SHAPE_2D, 1.0, 2.5), "2d_J-1": (SHAPE_2D, -1.0, 2.0),
               "3d_J1": (SHAPE_3D, 1.0, 4.5), "3d_J-1": (SHAPE_3D, -1.0, 3.0)}


@functools.cache
def _ising_sampler(shape):
    def one_chain(key, replica, temperature, J):  # J traced: both signs share one compilation per shape
        ka, kb = jax.random.split(key)
        kern = multispin_heat_bath(lattice.Ising(shape, J=J), temperature)
        state = kern.init(ka, lattice.random_spins(ka, (REPLICAS, *shape)))
        state, _ = run(kern, kb, state, BURN)
        _, x = run(kern, jax.random.fold_in(kb, 1), state, GAP * SAMPLES, observe=lambda s, i: s.x, every=GAP)
        return x[:, replica]  # one replica per chain: chain i gives replica i mod 32, so every bit is tested

    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))


def _ising_pvalues(case, sampled_temperature):
    """The Ising χ² harness: 3 seeds × 1024 chains × 4 configurations binned in the exact (energy,
    magnetization) cells at the case's T (``test_lattice._chi2_pvalues``), sampled at ``sampled_temperature``."""
    shape, J, temperature = ISING_CASES[case]

    def draw(seed, t):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 5), CHAINS)
        replica = jnp.arange(CHAINS, dtype=jnp.int32) % REPLICAS
        return np.asarray(_ising_sampler(shape)(keys, replica, jnp.float32(t), jnp.float32(J)))

    return _chi2_pvalues(draw, lattice.Ising(shape, J=J), temperature, sampled_temperature)


@pytest.mark.parametrize("case", ISING_CASES)
def test_ising_chi2_exact(case):
    p, per_seed = _ising_pvalues(case, ISING_CASES[case][2])
    assert p > ACCEPT, (p, per_seed)


@pytest.mark.parametrize("case", ISING_CASES)
def test_ising_chi2_rejects_wrong_temperature(case):
    """Negative control: the same harness, fed samples drawn at 1.05·T, rejects them."""
    p, per_seed = _ising_pvalues(case, WRONG * ISING_CASES[case][2])
    assert p < ACCEPT, (p, per_seed)


# --- χ² against exact enumeration: ±J Edwards–Anderson samples -----------------------------------------------------
# Longer chains than the Metropolis harness's (burn 60, gap 15): heat bath takes the ±J glass's many zero-energy
# moves (c = d) with probability ½ where Metropolis takes them always, so it decorrelates more slowly at these low
# temperatures. Checked over 12 seed triples on the 4×4 case: with 60/15 the 96 per-sample p-values were not uniform
# (Kolmogorov–Smirnov p = 0.012, pooled p down to 0.004), with 200/40 they were (KS p = 0.54).
EA_BURN, EA_GAP = 200, 40


@functools.cache
def _ea_heat_bath_sampler(shape):
    def one_chain(key, sample, temperature, couplings):
        ka, kb = jax.random.split(key)
        kern = multispin_ea_heat_bath(couplings, temperature)
        state = kern.init(ka, lattice.random_spins(ka, (REPLICAS, *shape)))
        state, _ = run(kern, kb, state, EA_BURN)
        _, x = run(kern, jax.random.fold_in(kb, 1), state, EA_GAP * SAMPLES, observe=lambda s, i: s.x, every=EA_GAP)
        return x[:, sample]

    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))


def _ea_pvalues(monkeypatch, case, sampled_temperature):
    """``test_multispin._pooled_samples_pvalues`` (8 samples of a word, each binned against its own enumeration,
    one pooled χ²) run on the heat-bath sampler: the harness reads its sampler from the module's global."""
    monkeypatch.setattr(metropolis_tests, "_ea_sampler", _ea_heat_bath_sampler)
    return _pooled_samples_pvalues(case, sampled_temperature)


@pytest.mark.parametrize("case", EA_CASES)
def test_ea_samples_chi2_exact(monkeypatch, case):
    p, per_sample = _ea_pvalues(monkeypatch, case, EA_CASES[case][2])
    assert p > ACCEPT, (p, per_sample)


@pytest.mark.parametrize("case", EA_CASES)
def test_ea_samples_chi2_rejects_wrong_temperature(monkeypatch, case):
    """Negative control: the same harness, fed samples drawn at 1.05·T, rejects them."""
    p, per_sample = _ea_pvalues(monkeypatch, case, WRONG * EA_CASES[case][2])
    assert p < ACCEPT, (p, per_sample)


# --- the flip probability of every count class ---------------------------------------------------------------------
# From one fixed random configuration of 32 ±J samples, one sweep with each of KEYS keys. The black sublattice (even
# coordinate sum) is updated first, from the fixed configuration alone, so a black site with c unsatisfied bonds
# flips with probability p_c, independently across keys; the white half-sweep is ignored. Per class, the flip count
# k_c of n_c trials gives z_c = (k_c - n_c p_c) / √(n_c p_c (1 - p_c)) and Σ z_c² is χ² with 2d + 1 degrees of
# freedom (the kernel's rounding of p_c, < 2^-24, is far below these error bars: n_c ≤ 2·10⁶).
CLASS_CASES = {"3d": ((8, 8, 8), 3.0), "2d": ((16, 16), 2.0)}
KEYS = 256


def _unsatisfied_counts(couplings, x):
    """``(32, *shape)`` count of unsatisfied bonds ``J_ij s_i s_j < 0`` at every site, from the bonds directly."""
    d = x.ndim - 1
    s = x.astype(np.int64)
    count = np.zeros(s.shape, np.int64)
    for mu in range(d):
        bond = couplings[:, mu] * s * np.roll(s, -1, axis=mu + 1)  # the bond from each site to site + e_mu
        unsatisfied = (bond < 0).astype(np.int64)
        count += unsatisfied + np.roll(unsatisfied, 1, axis=mu + 1)  # counted at both of its ends
    return count


@functools.cache
def _class_flips(case, sampled_temperature):
    """Per count class c = 0 … 2d: (trials n_c, flips k_c) of the first half-sweep over KEYS keys."""
    shape, _ = CLASS_CASES[case]
    couplings = _ea_couplings(31, shape)
    x0 = lattice.random_spins(jax.random.key(32), (REPLICAS, *shape))

    @jax.jit
    def flipped(keys):
        kern = multispin_ea_heat_bath(couplings, sampled_temperature)
        state = kern.init(None, x0)
        return jax.vmap(lambda k: kern.step(k, state)[0].x != x0)(keys)  # (KEYS, 32, *shape)

    flips = np.asarray(flipped(jax.random.split(jax.random.key(33), KEYS))).sum(axis=0)
    classes = _unsatisfied_counts(np.asarray(couplings), np.asarray(x0))
    black = np.broadcast_to(np.indices(shape).sum(axis=0) % 2 == 0, classes.shape)
    d = len(shape)
    trials = np.bincount(classes[black], minlength=2 * d + 1) * KEYS
    return trials, np.bincount(classes[black], weights=flips[black], minlength=2 * d + 1)


def _class_test(case, sampled_temperature, probability):
    """The per-class harness: ``(p, z)``, z the per-class z-scores against ``probability(c)`` and p the χ²
    p-value of Σ z². A class whose predicted probability is 0 or 1 and is contradicted gives z = ±inf."""
    trials, flips = _class_flips(case, sampled_temperature)
    p_c = np.array([probability(c) for c in range(len(trials))])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (flips - trials * p_c) / np.sqrt(trials * p_c * (1 - p_c))
    z = np.where(flips == trials * p_c, 0.0, z)  # a certain event observed as predicted
    return stats.chi2.sf(np.sum(z**2), len(trials)), z


def _heat_bath_probability(d, temperature):
    return lambda c: 1.0 / (1.0 + np.exp(4.0 * (d - c) / temperature))


@pytest.mark.parametrize("case", CLASS_CASES)
def test_flip_probability_per_class(case):
    shape, temperature = CLASS_CASES[case]
    trials, _ = _class_flips(case, temperature)
    assert np.all(trials > 0)  # every class c = 0 … 2d occurs in the configuration
    p, z = _class_test(case, temperature, _heat_bath_probability(len(shape), temperature))
    assert p > ACCEPT, (p, z)


@pytest.mark.parametrize("case", CLASS_CASES)
def test_flip_probability_rejects_metropolis_and_wrong_temperature(case):
    """Negative controls of the same harness: Metropolis's ``min(1, e^{-4β(d - c)})`` is rejected (its classes
    c ≥ d would flip always), and so are samples drawn at 1.05·T tested against the heat bath's p_c at T."""
    shape, temperature = CLASS_CASES[case]
    d = len(shape)
    p, z = _class_test(case, temperature, lambda c: min(1.0, np.exp(-4.0 * (d - c) / temperature)))
    assert p < ACCEPT and np.all(np.abs(z[d:]) > 10), (p, z)
    p, z = _class_test(case, WRONG * temperature, _heat_bath_probability(d, temperature))
    assert p < ACCEPT, (p, z)


# --- Kaufman's exact finite-size energy -----------------------------------------------------------------------------
@functools.cache
def _kaufman_sampler():
    model = lattice.Ising((KAUFMAN_SIZE, KAUFMAN_SIZE))

    def one_run(key, temperature):
        ka, kb = jax.random.split(key)
        kern = multispin_heat_bath(model, temperature)
        state = kern.init(ka, lattice.random_spins(ka, (REPLICAS, KAUFMAN_SIZE, KAUFMAN_SIZE)))
        state, _ = run(kern, kb, state, KBURN)
        _, e = run(kern, jax.random.fold_in(kb, 1), state, STEPS)
        return jnp.mean(e) / model.n  # one run's energy per spin, over its 32 replicas and STEPS sweeps

    return jax.jit(jax.vmap(one_run, in_axes=(0, None)))


def _kaufman_deviation(sampled_temperature):
    """The Kaufman harness: (mean - exact u(L = 16, T_c)) and its standard error over RUNS independent runs (the
    spread of the runs' means, valid whatever the correlation of the 32 replicas of a word)."""
    keys = jax.random.split(jax.random.key(12), RUNS)
    run_means = np.asarray(_kaufman_sampler()(keys, jnp.float32(sampled_temperature)), np.float64)
    exact = theory.kaufman_energy(KAUFMAN_SIZE, KAUFMAN_T)
    return run_means.mean() - exact, run_means.std(ddof=1) / np.sqrt(RUNS)


def test_energy_matches_kaufman_L16():
    """Mean energy per spin of 32 runs × 32 replicas at T = 2.269 against Kaufman's exact L = 16 value."""
    deviation, err = _kaufman_deviation(KAUFMAN_T)
    assert_within(deviation, 0.0, err, k=3.5, what="multispin heat bath u(L=16) - exact")


def test_kaufman_rejects_wrong_temperature():
    """Negative control: runs at 1.05·T are more than 4 standard errors from the exact u(T)."""
    deviation, err = _kaufman_deviation(WRONG * KAUFMAN_T)
    assert abs(deviation) > 4 * err, (deviation, err)


# --- exact energies, inputs, selection -----------------------------------------------------------------------------
# (the exact energy tracking of the heat-bath words: tests/physics/test_multispin.py::test_energy_tracking_is_exact)


def test_bad_inputs_name_the_heat_bath():
    with pytest.raises(ValueError, match="multispin_heat_bath needs h = 0.*kernels.heat_bath"):
        multispin_heat_bath(lattice.Ising((4, 4), h=0.1), 1.0)
    with pytest.raises(ValueError, match="multispin_heat_bath needs a 2D or 3D lattice.Ising"):
        multispin_heat_bath(lattice.EdwardsAnderson.random(jax.random.key(0), (4, 4), "pm1"), 1.0)
    with pytest.raises(ValueError, match="even"):
        multispin_heat_bath(lattice.Ising((4, 5)), 1.0)
    with pytest.raises(ValueError, match="multispin_ea_heat_bath needs ±1 bonds"):
        multispin_ea_heat_bath(0.5 * _ea_couplings(0, (4, 4)), 1.0)
    # odd sides: the plain heat bath refuses them too, so only the reason of the packed path is checked here
    with pytest.raises(ValueError, match="packing='multispin'.*even sides"):
        kernels.heat_bath(lattice.Ising((4, 5)), 1.0, replicas=REPLICAS, packing="multispin")


def _ea(shape, disorder, samples=None, h=0.0):
    key = jax.random.key(40)
    if samples is None:
        return lattice.EdwardsAnderson.random(key, shape, disorder, h=h)
    couplings = jax.vmap(lambda k: lattice.EdwardsAnderson.random(k, shape, disorder).couplings)(
        jax.random.split(key, samples))
    return lattice.EdwardsAnderson(shape, couplings, h=h)


def _initial_state(model, replicas, packing):
    kern = kernels.heat_bath(model, 1.5, replicas=replicas, packing=packing)
    chains = (model.couplings.shape[0], replicas) if model.couplings.ndim == len(model.shape) + 2 else (replicas,)
    return kern.init(jax.random.key(1), lattice.random_spins(jax.random.key(2), (*chains, *model.shape)))


PACKED = {"ising_2d": lambda: lattice.Ising((4, 6)), "ising_3d_afm": lambda: lattice.Ising((4, 4, 6), J=-1.0),
          "ea_pm1_2d": lambda: _ea((4, 6), "pm1"), "ea_pm1_3d_2_samples": lambda: _ea((4, 4, 4), "pm1", samples=2)}


@pytest.mark.parametrize("name", PACKED)
def test_auto_packs_where_metropolis_packs(name):
    model = PACKED[name]()
    replicas = 16 if name.endswith("2_samples") else 32  # 2 samples × 16 replicas fill one word
    state = _initial_state(model, replicas, "auto")
    assert isinstance(state, kernels.MultispinBatchState)
    plain = _initial_state(model, replicas, "plain")
    assert not isinstance(plain, kernels.MultispinBatchState)
    assert np.array_equal(state.x, plain.x) and np.allclose(state.energy, plain.energy, atol=1e-4)


UNPACKED = {  # model, replicas, the reason packing="multispin" must name
    "gaussian": (lambda: _ea((4, 6), "gaussian"), 32, "±1 bonds"),
    "field": (lambda: lattice.Ising((4, 6), h=0.3), 32, "h = 0"),
    "ea_field": (lambda: _ea((4, 6), "pm1", h=0.3), 32, "h = 0"),
    "odd_chains": (lambda: lattice.Ising((4, 6)), 30, "multiple of 32"),
}


@pytest.mark.parametrize("name", UNPACKED)
def test_auto_runs_plain_and_multispin_says_why(name):
    make, replicas, reason = UNPACKED[name]
    model = make()
    assert not isinstance(_initial_state(model, replicas, "auto"), kernels.MultispinBatchState)
    with pytest.raises(ValueError, match=f"packing='multispin'.*{reason}"):
        kernels.heat_bath(model, 1.5, replicas=replicas, packing="multispin")


def test_packed_batch_is_the_multispin_heat_bath():
    """``kernels.heat_bath(Ising, T, replicas=32)`` steps exactly as ``multispin_heat_bath`` on its one word (chain c
    in bit c, the word's key the batch's key split once), and not as the multi-spin Metropolis."""
    model = lattice.Ising((4, 6))
    x0 = lattice.random_spins(jax.random.key(2), (REPLICAS, 4, 6))
    batch = kernels.heat_bath(model, 1.5, replicas=REPLICAS, packing="multispin")
    key = jax.random.key(3)
    stepped = np.asarray(batch.step(key, batch.init(jax.random.key(0), x0))[0].x)
    word_key = jax.random.split(key, 1)[0]
    for builder, same in ((multispin_heat_bath, True), (multispin_metropolis, False)):
        kern = builder(model, 1.5)
        assert np.array_equal(np.asarray(kern.step(word_key, kern.init(None, x0))[0].x), stepped) == same


# (the samples of a word are independent, bitwise: tests/physics/test_multispin.py::
# test_sample_depends_only_on_its_own_bonds[heat_bath-…])
