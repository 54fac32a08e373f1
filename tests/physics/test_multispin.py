"""Multi-spin Metropolis (``physics.kernels.multispin``): packing and the 3D sublattices, exact energies, χ² against
exact enumeration — 2D Ising 4×4 (J = ±1), 3D Ising 2×2×4 (J = ±1) and 8 of the 32 ±J Edwards–Anderson samples of a
word on 4×4 and 2×2×4, each against its own enumeration — every harness with a 1.05·T negative control, Kaufman's
L = 16 energy with its control, the independence of the 32 replicas of one word, and the independence of the ±J
samples (changing sample j leaves every other sample's trajectory bitwise unchanged).

The 32 replicas of one word share each site's hash word (module docstring), so they are not proven independent: the
χ² harnesses take one replica (or sample) per independent chain (chain i contributes replica i mod 32, so every bit
position is tested), and the Kaufman error bars come from independent runs only. The independence test then
measures what pooling the replicas would cost.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from physics import lattice, run, theory
from physics.kernels import multispin
from physics.kernels.multispin import (
    REPLICAS,
    multispin_ea_heat_bath,
    multispin_ea_metropolis,
    multispin_heat_bath,
    multispin_metropolis,
    pack_replicas,
    unpack_replicas,
)
from tests.physics.test_lattice import (
    ACCEPT,
    SEEDS,
    SHAPE_2D,
    SHAPE_3D,
    WRONG,
    _all_states,
    _chi2_pvalues,
    _exact_cells,
    _reference_energy,
    _state_index,
)
from tests.stats import assert_within, boltzmann, chi2_pvalue


def test_pack_round_trip_and_energy():
    x = lattice.random_spins(jax.random.key(4), (REPLICAS, 6, 10))
    words = pack_replicas(x)
    assert words.dtype == jnp.uint32 and words.shape == (6, 10)
    assert np.array_equal(unpack_replicas(words), x)
    # bit k of a word is replica k, set where the spin is down
    assert np.array_equal((np.asarray(words) >> 5) & 1, (np.asarray(x[5]) < 0).astype(np.uint32))
    for J in (1.3, -0.7):
        model = lattice.Ising((6, 10), J=J)
        state = multispin_metropolis(model, 1.7).init(None, x)
        assert state.x.shape == (REPLICAS, 6, 10) and state.x.dtype == jnp.int8
        assert np.array_equal(state.x, x)
        np.testing.assert_allclose(state.energy, jax.vmap(model.energy)(x), atol=1e-4)


def _ea_couplings(seed, shape):
    """32 independent ±1 disorder samples ``(32, d, *shape)`` from ``EdwardsAnderson.random``."""
    keys = jax.random.split(jax.random.key(seed), REPLICAS)
    return jax.vmap(lambda k: lattice.EdwardsAnderson.random(k, shape, "pm1").couplings)(keys)


def _ea_energies(couplings, x):
    """Each sample's energy from its own EdwardsAnderson model (the library's float energy)."""
    shape = x.shape[1:]
    return jax.vmap(lambda c, s: lattice.EdwardsAnderson(shape, c).energy(s))(couplings, x)


TRACKING_CASES = {
    "ising_2d_J1.3": ((6, 10), 1.3), "ising_2d_J-0.7": ((6, 10), -0.7), "ising_3d_J-1.1": ((4, 6, 8), -1.1),
    "ea_2d": ((6, 10), None), "ea_3d": ((4, 6, 8), None),
}


@pytest.mark.parametrize("case, rule", [(case, "metropolis") for case in TRACKING_CASES]
                         + [("ising_2d_J-0.7", "heat_bath"), ("ea_3d", "heat_bath")])
def test_energy_tracking_is_exact(case, rule):
    """After 40 sweeps the energies read from the words equal the models' own energies of the unpacked spins."""
    shape, J = TRACKING_CASES[case]
    x0 = lattice.random_spins(jax.random.key(0), (REPLICAS, *shape))
    ising_kernel, ea_kernel = ((multispin_metropolis, multispin_ea_metropolis) if rule == "metropolis"
                               else (multispin_heat_bath, multispin_ea_heat_bath))
    if J is None:
        couplings = _ea_couplings(3, shape)
        kern = ea_kernel(couplings, 3.0)

        def energies(x):
            return _ea_energies(couplings, x)
    else:
        model = lattice.Ising(shape, J=J)
        kern = ising_kernel(model, 4.0 * len(shape) / 2)  # disordered phase: distinct configurations

        def energies(x):
            return jax.vmap(model.energy)(x)
    state = kern.init(None, x0)
    np.testing.assert_allclose(state.energy, energies(x0), atol=1e-3)
    state, e = jax.jit(lambda s: run(kern, jax.random.key(1), s, 40))(state)
    assert e.shape == (40, REPLICAS) and state.x.shape == (REPLICAS, *shape) and state.x.dtype == jnp.int8
    np.testing.assert_allclose(state.energy, energies(state.x), atol=1e-3)
    assert len({tuple(np.asarray(r).ravel()) for r in state.x}) == REPLICAS  # the replicas have not coalesced


def test_bad_inputs():
    with pytest.raises(ValueError, match="h="):
        multispin_metropolis(lattice.Ising((4, 4), h=0.1), 1.0)
    with pytest.raises(ValueError, match="lattice.Ising"):
        multispin_metropolis(lattice.EdwardsAnderson.random(jax.random.key(0), (4, 4), "pm1"), 1.0)
    with pytest.raises(ValueError, match="even"):
        multispin_metropolis(lattice.Ising((6, 5)), 1.0)
    with pytest.raises(ValueError, match="even"):
        multispin_metropolis(lattice.Ising((4, 4, 3)), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        multispin_metropolis(lattice.Ising((4, 4)), -1.0)
    with pytest.raises(ValueError, match="bits"):
        multispin_metropolis(lattice.Ising((4, 4)), 1.0, bits=25)
    couplings = _ea_couplings(0, (4, 4))
    with pytest.raises(ValueError, match="±1"):
        multispin_ea_metropolis(0.5 * couplings, 1.0)
    with pytest.raises(ValueError, match="couplings.shape"):
        multispin_ea_metropolis(couplings[:16], 1.0)
    with pytest.raises(ValueError, match="h="):
        multispin_ea_metropolis(lattice.EdwardsAnderson((4, 4), couplings, h=0.2), 1.0)
    with pytest.raises(ValueError, match="even"):
        multispin_ea_metropolis(_ea_couplings(0, (4, 6, 3)), 1.0)
    with pytest.raises(ValueError, match="x.shape"):
        multispin_ea_metropolis(couplings, 1.0).init(None, jnp.ones((8, 4, 4), jnp.int8))


def test_ea_accepts_models():
    """A batched EdwardsAnderson and a list of 32 models give the kernel the array of couplings gives."""
    couplings = _ea_couplings(2, (4, 6))
    x = lattice.random_spins(jax.random.key(3), (REPLICAS, 4, 6))
    models = [lattice.EdwardsAnderson((4, 6), c) for c in couplings]
    states = [multispin_ea_metropolis(c, 1.0).init(None, x)
              for c in (couplings, lattice.EdwardsAnderson((4, 6), couplings), models)]
    for state in states[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(state, states[0]))


# --- χ² against exact enumeration of the 4×4 torus ----------------------------------------------------------------
# _TRAP_NOTE. Checkerboard Metropolis (this kernel and kernels.metropolis alike) is not ergodic on the 4×4 torus:
# 36 states of energy 0 in which every spin has ΔE = 0 flip deterministically every half-sweep and never leave that
# closed cycle. Propagating the exact sweep operator from the uniform distribution converges to ⟨E⟩ = -22.0541 at
# T = 2.5 instead of the Boltzmann -22.0659 (trapped mass 5.3e-4); the χ² of 12,288 samples cannot see it, the
# pooled mean below can. Chains here start from the ordered state (all up; for J < 0 its gauge image, Néel), which
# lies in the ergodic class.
CHAINS, BURN, GAP, SAMPLES = 1024, 60, 15, 4


def _make_sampler(J):
    model = lattice.Ising(SHAPE_2D, J=J)

    def one_chain(key, replica, temperature):
        ka, kb = jax.random.split(key)
        kern = multispin_metropolis(model, temperature)
        state = kern.init(ka, jnp.ones((REPLICAS, *SHAPE_2D), jnp.int8))  # ordered start: see _TRAP_NOTE
        state, _ = run(kern, kb, state, BURN)
        _, x = run(kern, jax.random.fold_in(kb, 1), state, GAP * SAMPLES, observe=lambda s, i: s.x, every=GAP)
        return x[:, replica], x  # one replica of this chain; and all of them (for the independence test)

    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None)))


_sampler = functools.cache(_make_sampler)


def _draw(J, seed, temperature, all_replicas=False, sampler=None):
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 2), CHAINS)
    replica = jnp.arange(CHAINS, dtype=jnp.int32) % REPLICAS
    one, every = (sampler or _sampler(J))(keys, replica, jnp.float32(temperature))
    return np.asarray(every if all_replicas else one)


CHI2_CASES = [(1.0, 2.5), (-1.0, 2.0)]


def _pvalues(J, temperature, sampled_temperature):
    return _chi2_pvalues(lambda seed, t: _draw(J, seed, t), lattice.Ising(SHAPE_2D, J=J), temperature,
                         sampled_temperature)


@pytest.mark.parametrize("J,temperature", CHI2_CASES)
def test_chi2_exact(J, temperature):
    """12,288 configurations (3 seeds × 1024 chains × 4, one replica per chain) against exact enumeration."""
    p, per_seed = _pvalues(J, temperature, temperature)
    assert p > ACCEPT, (p, per_seed)


@pytest.mark.parametrize("J,temperature", CHI2_CASES)
def test_chi2_rejects_wrong_temperature(J, temperature):
    """Negative control: the same harness, fed samples drawn at 1.05·T, rejects them."""
    p, per_seed = _pvalues(J, temperature, WRONG * temperature)
    assert p < ACCEPT, (p, per_seed)


def _replica_correlation(sampler=None, seeds=(5, 6, 7, 8), temperature=2.27):
    """The independence harness: the mean Pearson correlation of the energies of two replicas of one chain at equal
    times (4×4, J = 1, near T_c where correlations are longest), over 4 seeds × 1024 chains × 4 samples × 496
    pairs; its standard error from the spread of the independent chains' values."""
    per_chain = []
    for seed in seeds:
        x = _draw(1.0, seed, temperature, all_replicas=True, sampler=sampler)  # (chains, 4, 32, 4, 4)
        s = x.astype(np.float64)
        e = -(s * np.roll(s, -1, -1)).sum((-2, -1)) - (s * np.roll(s, -1, -2)).sum((-2, -1))  # (chains, 4, 32)
        z = (e - e.mean()) / e.std()
        total = z.sum(-1)  # (Σ_k z_k)² = Σ_k z_k² + Σ_{j≠k} z_j z_k
        per_chain.append(((total**2 - (z**2).sum(-1)) / (REPLICAS * (REPLICAS - 1))).mean(axis=1))
    per_chain = np.concatenate(per_chain)
    return per_chain.mean(), per_chain.std(ddof=1) / np.sqrt(len(per_chain))


def test_replicas_of_one_word_are_uncorrelated():
    rho, err = _replica_correlation()
    assert abs(rho) < 4 * err, (rho, err)


def test_replica_correlation_rejects_shared_random_numbers(monkeypatch):
    """Negative control: with the replica offsets set to zero (one shared uniform per site) the harness sees the
    replicas' synchronous coupling."""

    def zero_offsets(key, sublattice, sub_shape, bits, n, real):
        rows, width = sub_shape
        return jnp.full((bits, rows, 1), 0xFFFFFFFF, jnp.uint32), jnp.zeros((1, width), jnp.uint32)

    monkeypatch.setattr(multispin, "_replica_offsets", zero_offsets)
    rho, err = _replica_correlation(_make_sampler(1.0), seeds=(5,))
    assert rho > 4 * err + 0.1, (rho, err)


@functools.cache
def _energy_sampler(ordered: bool):
    model = lattice.Ising(SHAPE_2D)

    def one_chain(key, temperature):
        ka, kb = jax.random.split(key)
        kern = multispin_metropolis(model, temperature)
        x0 = jnp.ones((REPLICAS, *SHAPE_2D), jnp.int8) if ordered else lattice.random_spins(ka, (REPLICAS, *SHAPE_2D))
        state, _ = run(kern, kb, kern.init(ka, x0), BURN)
        _, e = run(kern, jax.random.fold_in(kb, 1), state, 200, every=5)
        return jnp.mean(e)  # over 40 samples × 32 replicas

    return jax.jit(jax.vmap(one_chain, in_axes=(0, None)))


def _pooled_mean_energy(temperature, ordered=True, chains=16384):
    """⟨E⟩ of the 4×4 torus (J = 1) over all 32 replicas × 40 samples of each of ``chains`` independent chains; the
    error bar from the spread of the chains' means, valid whatever the replicas' correlation."""
    keys = jax.random.split(jax.random.key(30), chains)
    per_chain = np.asarray(_energy_sampler(ordered)(keys, jnp.float32(temperature)), np.float64)
    return per_chain.mean(), per_chain.std(ddof=1) / np.sqrt(chains)


def _exact_mean_energy(temperature):
    states = _all_states(SHAPE_2D)
    energies = _reference_energy(1.0, 0.0, states)
    return float(np.sum(boltzmann(energies, temperature) * energies))


def test_pooled_mean_energy_exact():
    """21 million replica configurations (correlated within chains) against the exact ⟨E⟩ at T = 2.5: standard error
    0.002, five times smaller than the bias a random start's trapped mass gives (_TRAP_NOTE)."""
    mean, err = _pooled_mean_energy(2.5)
    assert_within(mean, _exact_mean_energy(2.5), err, k=4, what="4×4 ⟨E⟩")


def test_pooled_mean_energy_rejects_wrong_temperature():
    mean, err = _pooled_mean_energy(2.5 * 1.01)
    assert abs(mean - _exact_mean_energy(2.5)) > 4 * err, (mean, err)


def _exact_checkerboard_limit(temperature, sweeps=100):
    """⟨E⟩ after ``sweeps`` exact checkerboard Metropolis sweeps of the 4×4 torus (J = 1) from uniformly random
    spins: the distribution over all 65,536 states propagated site by site (converged to 1e-12 by 60 sweeps)."""
    states = _all_states(SHAPE_2D).reshape(-1, 16).astype(np.int64)
    energies = _reference_energy(1.0, 0.0, states.reshape(-1, *SHAPE_2D))
    index = np.arange(len(states))
    colour = [(site // 4 + site % 4) % 2 for site in range(16)]
    accept = []
    for site in range(16):
        i, j = divmod(site, 4)
        neighbours = [((i + 1) % 4) * 4 + j, ((i - 1) % 4) * 4 + j, i * 4 + (j + 1) % 4, i * 4 + (j - 1) % 4]
        field = states[:, neighbours].sum(axis=1)
        accept.append(np.minimum(1.0, np.exp(-2.0 * states[:, site] * field / temperature)))
    p = np.full(len(states), 1.0 / len(states))
    for _ in range(sweeps):
        for c in (0, 1):
            for site in (k for k in range(16) if colour[k] == c):
                partner = index ^ (1 << site)  # the state with spin `site` flipped
                p = p * (1 - accept[site]) + (p * accept[site])[partner]
    return float(np.sum(p * energies))


def test_random_start_matches_exact_trapped_limit():
    """From random spins the chains reach the exact non-Boltzmann limit of checkerboard Metropolis (_TRAP_NOTE):
    the pooled ⟨E⟩ agrees with it and not with the Boltzmann value (expected 5.7σ away)."""
    mean, err = _pooled_mean_energy(2.5, ordered=False)
    limit = _exact_checkerboard_limit(2.5)
    assert abs(limit - _exact_mean_energy(2.5)) > 0.01
    assert_within(mean, limit, err, k=4, what="4×4 ⟨E⟩ from random starts")


# --- 3D Ising and ±J Edwards–Anderson samples: χ² against exact enumeration ----------------------------------------
# 3D Ising on the 2×2×4 torus (65,536 states) near the bulk T_c ≈ 4.51 and, for J = -1, in the ordered phase; one
# replica per chain (chain i gives replica i mod 32), as in the 2D harness. Random starts: the generic kernel's 3D
# χ² tests (tests/physics/test_lattice.py) pass from random starts on the same torus.
ISING_3D_CASES = [(1.0, 4.5), (-1.0, 3.0)]


@functools.cache
def _ising_3d_sampler():
    def one_chain(key, replica, temperature, J):  # J traced: both cases share one compilation
        ka, kb = jax.random.split(key)
        kern = multispin_metropolis(lattice.Ising(SHAPE_3D, J=J), temperature)
        state = kern.init(ka, lattice.random_spins(ka, (REPLICAS, *SHAPE_3D)))
        state, _ = run(kern, kb, state, BURN)
        _, x = run(kern, jax.random.fold_in(kb, 1), state, GAP * SAMPLES, observe=lambda s, i: s.x, every=GAP)
        return x[:, replica]

    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))


def _ising_3d_pvalues(J, temperature, sampled_temperature):
    def draw(seed, t):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 3), CHAINS)
        replica = jnp.arange(CHAINS, dtype=jnp.int32) % REPLICAS
        return np.asarray(_ising_3d_sampler()(keys, replica, jnp.float32(t), jnp.float32(J)))

    return _chi2_pvalues(draw, lattice.Ising(SHAPE_3D, J=J), temperature, sampled_temperature)


@pytest.mark.parametrize("J,temperature", ISING_3D_CASES)
def test_3d_ising_chi2_exact(J, temperature):
    """12,288 configurations of the 2×2×4 torus (3 seeds × 1024 chains × 4) against exact enumeration."""
    p, per_seed = _ising_3d_pvalues(J, temperature, temperature)
    assert p > ACCEPT, (p, per_seed)


@pytest.mark.parametrize("J,temperature", ISING_3D_CASES)
def test_3d_ising_chi2_rejects_wrong_temperature(J, temperature):
    """Negative control: the same harness, fed samples drawn at 1.05·T, rejects them."""
    p, per_seed = _ising_3d_pvalues(J, temperature, WRONG * temperature)
    assert p < ACCEPT, (p, per_seed)


# ±J EA: the 32 bits of a word are 32 disorder samples; TESTED of them are checked, each against the enumeration of
# its own couplings. Chain i contributes sample TESTED[i mod 8] only, so the pooled counts come from independent
# chains whatever the correlation between the bits of one word. 4×4 at T = 1 and 2×2×4 at T = 1.5: the
# temperatures of the generic kernel's ±J tests, where the weight is spread over several energy levels.
TESTED = (0, 5, 9, 14, 18, 23, 27, 31)
EA_CHAINS = 1024
EA_CASES = {"2d": (SHAPE_2D, 21, 1.0), "3d": (SHAPE_3D, 22, 1.5)}


@functools.cache
def _ea_sampler(shape):
    def one_chain(key, sample, temperature, couplings):
        ka, kb = jax.random.split(key)
        kern = multispin_ea_metropolis(couplings, temperature)
        state = kern.init(ka, lattice.random_spins(ka, (REPLICAS, *shape)))
        state, _ = run(kern, kb, state, BURN)
        _, x = run(kern, jax.random.fold_in(kb, 1), state, GAP * SAMPLES, observe=lambda s, i: s.x, every=GAP)
        return x[:, sample]

    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))


def _pooled_samples_pvalues(case, sampled_temperature):
    """The multi-sample χ² harness: for each seed, EA_CHAINS chains at ``sampled_temperature``; the configurations of
    each tested sample are binned in the exact (energy, magnetization) cells of its own couplings at the case's T,
    and one Pearson χ² runs over the cells of all samples together (expected counts n_s·p_s, n_s equal: the
    probabilities of each sample scaled by 1/8). Its degrees of freedom are counted as cells - 1 rather than
    cells - 8, which makes the test slightly conservative. Returns the pooled p and each sample's own p."""
    shape, seed, temperature = EA_CASES[case]
    couplings = _ea_couplings(seed, shape)
    which = jnp.asarray(np.resize(TESTED, EA_CHAINS), jnp.int32)
    exact = {k: _exact_cells(lattice.EdwardsAnderson(shape, couplings[k]), temperature) for k in TESTED}
    counts = {k: 0 for k in TESTED}
    for s in SEEDS:
        keys = jax.random.split(jax.random.fold_in(jax.random.key(s), 4), EA_CHAINS)
        x = np.asarray(_ea_sampler(shape)(keys, which, jnp.float32(sampled_temperature), couplings))
        for k, (cell_of_state, probs) in exact.items():
            configs = x[np.asarray(which) == k]
            counts[k] = counts[k] + np.bincount(cell_of_state[_state_index(configs, shape)], minlength=probs.size)
    observed, expected, per_sample = [], [], []
    for k, (_, probs) in exact.items():
        possible = probs > 0
        assert counts[k][~possible].sum() == 0  # a state of impossible (energy, magnetization) is an outright failure
        observed.append(counts[k][possible])
        expected.append(probs[possible] / len(TESTED))
        per_sample.append(chi2_pvalue(counts[k][possible], probs[possible]))
    return chi2_pvalue(np.concatenate(observed), np.concatenate(expected)), per_sample


@pytest.mark.parametrize("case", EA_CASES)
def test_ea_samples_chi2_exact(case):
    """8 of the 32 ±J samples of a word, 3 × 1024 / 8 × 4 = 1536 configurations each, against their own exact laws."""
    p, per_sample = _pooled_samples_pvalues(case, EA_CASES[case][2])
    assert p > ACCEPT, (p, per_sample)


@pytest.mark.parametrize("case", EA_CASES)
def test_ea_samples_chi2_rejects_wrong_temperature(case):
    """Negative control: the same harness, fed samples drawn at 1.05·T, rejects them."""
    p, per_sample = _pooled_samples_pvalues(case, WRONG * EA_CASES[case][2])
    assert p < ACCEPT, (p, per_sample)


TRAJECTORY_T = 1.3


@functools.cache
def _trajectory_runner(shape, builder=multispin_ea_metropolis):
    def trajectory(couplings, x0):
        kern = builder(couplings, TRAJECTORY_T)
        _, x = run(kern, jax.random.key(9), kern.init(None, x0), 30, observe=lambda s, i: s.x)
        return x  # (30, 32, *shape)

    return jax.jit(trajectory)


@pytest.mark.parametrize("builder", [multispin_ea_metropolis, multispin_ea_heat_bath], ids=["metropolis", "heat_bath"])
@pytest.mark.parametrize("shape", [(6, 8), (4, 4, 6)])
def test_sample_depends_only_on_its_own_bonds(shape, builder):
    """Changing sample j's couplings, or its initial spins, leaves every other sample's 30-sweep trajectory bitwise
    unchanged (bit k of the update reads only bit k of the words and sample k's uniform) and changes sample j's."""
    couplings = _ea_couplings(6, shape)
    x0 = lattice.random_spins(jax.random.key(7), (REPLICAS, *shape))
    j = 13
    base = np.asarray(_trajectory_runner(shape, builder)(couplings, x0))
    keep = np.arange(REPLICAS) != j
    for c, x in ((couplings.at[j].set(_ea_couplings(8, shape)[j]), x0), (couplings, x0.at[j].set(-x0[j]))):
        changed = np.asarray(_trajectory_runner(shape, builder)(c, x))
        assert np.array_equal(changed[:, keep], base[:, keep])
        assert not np.array_equal(changed[:, j], base[:, j])


def test_uniform_ferromagnet_is_the_ising_kernel():
    """All-ferromagnetic bond words (every sample's couplings +1) give, sweep for sweep, the Ising kernel's replicas."""
    shape = (4, 4, 6)
    x0 = lattice.random_spins(jax.random.key(7), (REPLICAS, *shape))
    ea = np.asarray(_trajectory_runner(shape)(jnp.ones((REPLICAS, 3, *shape), jnp.float32), x0))
    kern = multispin_metropolis(lattice.Ising(shape), TRAJECTORY_T)
    _, ising = jax.jit(lambda s: run(kern, jax.random.key(9), s, 30, observe=lambda t, i: t.x))(kern.init(None, x0))
    assert np.array_equal(ea, np.asarray(ising))


# --- padded lines ----------------------------------------------------------------------------------------------
# W = 12 words per line, stored as 16: the smallest 3D shape the padding applies to (W > 8, not a multiple of 8)
PADDED_SHAPE, PADDED_STORED = (4, 2, 24), 16


def _padded_run(builder, model_or_couplings, temperature, x0):
    """Final ``.x``, the energy and acceptance of every sweep, and the stored line length, over 20 sweeps."""
    kern = builder(model_or_couplings, temperature)
    state = kern.init(None, x0)
    final, (energies, acceptance) = jax.jit(lambda s: run(kern, jax.random.key(11), s, 20,
                                                          observe=lambda t, i: (t.energy, i.acceptance)))(state)
    return np.asarray(final.x), np.asarray(energies), np.asarray(acceptance), state.black.shape[-1]


@pytest.mark.parametrize("rule", multispin.RULES)
def test_padded_lines_are_bitwise_the_unpadded_kernel(monkeypatch, rule):
    """3D lines of W = 12 words are stored padded to 16 words (``multispin._PAD_LINES``): for the Ising (J = -1.1)
    and the ±J kernel, 20 sweeps give bitwise the configurations, per-sweep exact energies and acceptances of the
    same kernel with the padding switched off (the random numbers are those of the unpadded sites, the wrap is at
    W), and the padded energies equal each replica's / sample's model energy of ``.x``."""
    x0 = lattice.random_spins(jax.random.key(12), (REPLICAS, *PADDED_SHAPE))
    couplings = _ea_couplings(13, PADDED_SHAPE)
    ising = lattice.Ising(PADDED_SHAPE, J=-1.1)
    cases = {"ising": ({"metropolis": multispin_metropolis, "heat_bath": multispin_heat_bath}[rule], ising, 3.4),
             "ea": ({"metropolis": multispin_ea_metropolis, "heat_bath": multispin_ea_heat_bath}[rule], couplings,
                    1.3)}
    for name, (builder, model, temperature) in cases.items():
        x, energies, acceptance, stored = _padded_run(builder, model, temperature, x0)
        assert stored == PADDED_STORED, name
        monkeypatch.setattr(multispin, "_PAD_LINES", False)
        *plain, plain_stored = _padded_run(builder, model, temperature, x0)
        monkeypatch.setattr(multispin, "_PAD_LINES", True)
        assert plain_stored == PADDED_SHAPE[-1] // 2, name
        for padded_value, plain_value in zip((x, energies, acceptance), plain):
            np.testing.assert_array_equal(padded_value, plain_value, err_msg=name)
        assert 0.0 < acceptance.mean() < 1.0, name  # the sweeps moved: the comparison is not of frozen states
        expected = jax.vmap(ising.energy)(jnp.asarray(x)) if name == "ising" else _ea_energies(couplings, x)
        # both sides are sums of at most 3·192 terms ±|J| in float32: equal to well below 1e-3
        np.testing.assert_allclose(energies[-1], expected, atol=1e-3, err_msg=name)


# --- Kaufman's exact finite-size energy ------------------------------------------------------------------------
KAUFMAN_SIZE, KAUFMAN_T, RUNS, STEPS, KBURN = 16, 2.269, 32, 2000, 400


@functools.cache
def _kaufman_sampler():
    model = lattice.Ising((KAUFMAN_SIZE, KAUFMAN_SIZE))

    def one_run(key, temperature):
        ka, kb = jax.random.split(key)
        kern = multispin_metropolis(model, temperature)
        state = kern.init(ka, lattice.random_spins(ka, (REPLICAS, KAUFMAN_SIZE, KAUFMAN_SIZE)))
        state, _ = run(kern, kb, state, KBURN)
        _, e = run(kern, jax.random.fold_in(kb, 1), state, STEPS)
        return jnp.mean(e, axis=0) / model.n  # (32,) time-averaged energy per spin of each replica

    return jax.jit(jax.vmap(one_run, in_axes=(0, None)))


def _kaufman(sampled_temperature):
    keys = jax.random.split(jax.random.key(11), RUNS)
    return np.asarray(_kaufman_sampler()(keys, jnp.float32(sampled_temperature)), np.float64)  # (runs, 32)


def test_energy_matches_kaufman_L16():
    """Mean energy per spin at T = 2.269 vs Kaufman's exact L = 16 value; the error bar comes from the spread of
    32 independent runs' means (each the mean of its 32 replicas), valid whatever the replicas' correlation.

    The same data test the replicas' independence: if they are independent, the variance of a run's mean is the
    within-run replica variance / 32, so their ratio follows F(RUNS-1, RUNS·31).
    """
    means = _kaufman(KAUFMAN_T)
    run_means = means.mean(axis=1)
    err = run_means.std(ddof=1) / np.sqrt(RUNS)
    assert_within(run_means.mean(), theory.kaufman_energy(KAUFMAN_SIZE, KAUFMAN_T), err, k=3.5,
                  what="multispin u(L=16)")
    within = means.var(axis=1, ddof=1).mean()
    ratio = run_means.var(ddof=1) / (within / REPLICAS)
    p = 2 * min(stats.f.sf(ratio, RUNS - 1, RUNS * (REPLICAS - 1)), stats.f.cdf(ratio, RUNS - 1, RUNS * (REPLICAS - 1)))
    assert p > ACCEPT, (ratio, p)


def test_kaufman_rejects_wrong_temperature():
    """Negative control: runs at 1.05·T are more than 4 standard errors from the exact u(T)."""
    run_means = _kaufman(WRONG * KAUFMAN_T).mean(axis=1)
    err = run_means.std(ddof=1) / np.sqrt(RUNS)
    assert abs(run_means.mean() - theory.kaufman_energy(KAUFMAN_SIZE, KAUFMAN_T)) > 4 * err
