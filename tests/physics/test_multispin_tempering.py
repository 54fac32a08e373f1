"""Parallel tempering over the multi-spin kernels (``physics.kernels.multispin_tempering``): χ² of the coldest and a
middle rung against exact enumeration of each tested ±J sample's own 4×4 couplings, the swap acceptance of every
pair and every sample against its exact value, each harness with a negative control (the whole ladder 5% hot), the
bitwise independence of the 32 samples, exact energy tracking and the Ising (uniform J) ladder; the tree-reduction
energy read against a NumPy bit count, ``MultispinState.energy`` and the byte-lane read it replaced, and the PT
trajectory bitwise unchanged by the replacement. The χ², swap, independence and Ising-ladder tests run with both sweep
rules (``rule="metropolis"``, the default, and ``"heat_bath"``).

As in ``test_multispin.py``, the 32 bits of a word share each site's hash word and are not proven jointly
independent, so the χ² harness takes one sample per independent chain (chain i contributes sample TESTED[i mod 8]),
and the swap-acceptance error bars come from the spread over independent chains, one sample and pair at a time.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from physics import lattice, run
from physics.kernels import multispin, multispin_tempering
from physics.kernels.lattice import unpack_sublattices
from physics.kernels.multispin import (
    REPLICAS,
    RULES,
    _even_rows,
    _neighbour_words,
    multispin_ea_metropolis,
    multispin_metropolis,
)
from physics.kernels.multispin_tempering import multispin_parallel_tempering
from tests.physics.test_lattice import (
    ACCEPT,
    SEEDS,
    SHAPE_2D,
    WRONG,
    _all_states,
    _exact_cells,
    _reference_energy,
    _state_index,
)
from tests.stats import boltzmann, chi2_pvalue


def _ea_couplings(seed, shape):
    """32 independent ±1 disorder samples ``(32, d, *shape)``."""
    keys = jax.random.split(jax.random.key(seed), REPLICAS)
    return jax.vmap(lambda k: lattice.EdwardsAnderson.random(k, shape, "pm1").couplings)(keys)


def _model_energies(couplings, x):
    """``(M, 32, *shape)`` configurations to ``(M, 32)`` energies from each sample's own EdwardsAnderson model."""
    shape = x.shape[2:]
    per_rung = jax.vmap(lambda c, s: lattice.EdwardsAnderson(shape, c).energy(s))
    return jax.vmap(lambda xr: per_rung(couplings, xr))(x)


# --- χ² at the rungs and swap acceptance, from one set of runs ------------------------------------------------------
# The coldest rung is set by the negative control's power: at T = 0.5 the tested 4×4 ±J samples sit in their ground
# states with a probability a 5% shift of T barely moves, and the χ² non-centrality of 12,288 samples against
# 1.05·T is ≈ 0; at 0.75 with 24,576 configurations per rung it is 116 on 80 cells (power 0.9993 at p < 1e-3,
# computed from the enumeration); 0.75 is below T = 1, the single-temperature multi-spin ±J test's temperature
# (test_multispin.py). Rungs 0 and 1 are tested by χ²; every pair and every one of the 32 samples by the swap harness.
LADDER = (0.75, 1.0, 1.4, 2.0)
TESTED_RUNGS = (0, 1)
TESTED = (0, 5, 9, 14, 18, 23, 27, 31)
COUPLING_SEED = 21
# Both sweep rules (multispin.RULES) run the same schedule. The single-temperature heat-bath harness needed burn 200,
# gap 40 on ±J samples (test_multispin_heat_bath.py: the zero-energy moves are taken with probability ½), but the
# swaps with the hot rungs decorrelate the ladder: over 12 seed triples with heat bath and burn 60, gap 15, the 192
# per-sample χ² p-values of the two tested rungs were uniform (Kolmogorov–Smirnov p = 0.96; pooled p ≥ 0.11) and the
# swap harness's 24 p-values ≥ 0.035 (max |z| 3.9 of 96), while the 5%-hot ladder gave pooled p < 1e-37 on each of 6
# triples.
CHAINS, BURN, GAP, SAMPLES = 2048, 60, 15, 4


@functools.cache
def _sampler(rule):
    def one_chain(key, sample, temps, couplings):
        ka, kb = jax.random.split(key)
        kern = multispin_parallel_tempering(couplings, temps, rule=rule)
        state = kern.init(ka, lattice.random_spins(ka, (temps.shape[0], REPLICAS, *SHAPE_2D)))

        def observe(s, info):  # the tested sample's bit of the words (cheap), and every sample's swaps
            attempted = info.swap_attempted[:, None]
            spins = [((w >> sample.astype(jnp.uint32)) & jnp.uint32(1)).astype(jnp.uint8)
                     for w in (s.base.black, s.base.white)]
            return (spins, attempted, jnp.where(attempted, info.swap_accepted, False),
                    jnp.where(attempted, info.swap_probability, 0.0))

        # one scan through burn-in and measurement (one compiled copy of the step), the burn-in observations dropped
        _, trace = run(kern, kb, state, BURN + GAP * SAMPLES, observe=observe)
        spins, attempted, accepted, probability = jax.tree_util.tree_map(lambda a: a[BURN:], trace)
        tries = jnp.sum(attempted, axis=0).astype(jnp.float32)  # (M-1, 1): the same for every sample
        return ([w[GAP - 1::GAP] for w in spins], jnp.sum(accepted, axis=0).astype(jnp.float32) / tries,
                jnp.sum(probability, axis=0) / tries)

    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))


@functools.cache
def _runs(ladder, rule):
    """Per seed, with the sweep ``rule`` at every rung: the tested sample's configurations ``(chains, SAMPLES, M,
    *shape)``, the sample each chain tested, and each chain's swap acceptance fraction and mean swap probability per
    pair and sample ``(chains, M-1, 32)``."""
    couplings = _ea_couplings(COUPLING_SEED, SHAPE_2D)
    which = jnp.asarray(np.resize(TESTED, CHAINS), jnp.int32)
    out = []
    for seed in SEEDS:
        keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 5), CHAINS)
        (black, white), accepted, probability = _sampler(rule)(keys, which, jnp.asarray(ladder, jnp.float32), couplings)
        x = 1 - 2 * np.asarray(unpack_sublattices(black, white, len(SHAPE_2D)), np.int8)  # bit 1 = spin down
        out.append((x, np.asarray(which), np.asarray(accepted, np.float64),
                    np.asarray(probability, np.float64)))
    return out


def _rung_pvalues(ladder, rule):
    """The χ² harness: per tested rung, samples drawn with ``ladder`` (sweep ``rule``) binned in the exact (energy,
    magnetization) cells of each tested sample's own couplings at the rung's LADDER temperature, one Pearson χ² over
    the cells of all 8 samples (expected counts n·p_s/8; degrees of freedom cells - 1 rather than cells - 8, slightly
    conservative). Returns ``{rung: (pooled p, [each sample's p])}``."""
    couplings = np.asarray(_ea_couplings(COUPLING_SEED, SHAPE_2D))
    runs = _runs(tuple(ladder), rule)
    results = {}
    for rung in TESTED_RUNGS:
        observed, expected, per_sample = [], [], []
        for k in TESTED:
            cell_of_state, probs = _exact_cells(lattice.EdwardsAnderson(SHAPE_2D, couplings[k]), LADDER[rung])
            counts = 0
            for x, which, _, _ in runs:
                configs = x[which == k][:, :, rung]
                counts = counts + np.bincount(cell_of_state[_state_index(configs, SHAPE_2D)], minlength=probs.size)
            possible = probs > 0
            assert counts[~possible].sum() == 0  # a state of impossible (energy, magnetization) is an outright failure
            observed.append(counts[possible])
            expected.append(probs[possible] / len(TESTED))
            per_sample.append(chi2_pvalue(counts[possible], probs[possible]))
        results[rung] = (chi2_pvalue(np.concatenate(observed), np.concatenate(expected)), per_sample)
    return results


@pytest.mark.parametrize("rule", RULES)
def test_coldest_rungs_chi2_exact(rule):
    """3 seeds × 2048 chains × 4 = 24,576 configurations per rung (3072 per sample) against the exact laws."""
    for rung, (p, per_sample) in _rung_pvalues(LADDER, rule).items():
        assert p > ACCEPT, (rung, p, per_sample)


@pytest.mark.parametrize("rule", RULES)
def test_rungs_chi2_reject_hot_ladder(rule):
    """Negative control: the whole ladder 5% hot; both tested rungs are rejected."""
    for rung, (p, per_sample) in _rung_pvalues([WRONG * t for t in LADDER], rule).items():
        assert p < ACCEPT, (rung, p, per_sample)


@functools.cache
def _exact_swap_acceptance(coupling_seed, ladder):
    """``(M-1, 32)``: E[min(1, e^{(β_i - β_{i+1})(E - E')})] with E, E' independent draws from sample k's exact
    Boltzmann laws at ``ladder[i]`` and ``ladder[i+1]`` (from the enumerated energy levels)."""
    couplings = np.asarray(_ea_couplings(coupling_seed, SHAPE_2D))
    states = _all_states(SHAPE_2D)
    out = np.empty((len(ladder) - 1, REPLICAS))
    for k in range(REPLICAS):
        levels, degeneracy = np.unique(_reference_energy(couplings[k], 0.0, states), return_counts=True)
        laws = [boltzmann(levels, t) * degeneracy for t in ladder]
        laws = [p / p.sum() for p in laws]
        for i in range(len(ladder) - 1):
            log_ratio = (1 / ladder[i] - 1 / ladder[i + 1]) * (levels[:, None] - levels[None, :])
            out[i, k] = laws[i] @ np.exp(np.minimum(log_ratio, 0.0)) @ laws[i + 1]
    return out


def _swap_zscores(ladder, rule, statistic):
    """The swap harness: per pair and sample, the mean over 6144 independent chains of each chain's acceptance
    (``statistic`` 2: the fraction of its 30 proposals accepted; 3: the mean acceptance probability) drawn with
    ``ladder`` and sweep ``rule``, against the exact acceptance at LADDER; z = (mean - exact)/stderr, the stderr from
    the spread over chains. Returns the z-scores ``(M-1, 32)`` and the p-value of Σz² under χ²((M-1)·32)."""
    exact = _exact_swap_acceptance(COUPLING_SEED, LADDER)
    per_chain = np.concatenate([r[statistic] for r in _runs(tuple(ladder), rule)])  # (chains, M-1, 32)
    mean = per_chain.mean(axis=0)
    err = per_chain.std(axis=0, ddof=1) / np.sqrt(len(per_chain))
    z = (mean - exact) / err
    return z, float(stats.chi2.sf(np.sum(z**2), z.size))


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("statistic", [2, 3], ids=["accepted", "probability"])
def test_swap_acceptance_exact(statistic, rule):
    """Every pair's acceptance, for each of the 32 samples (96 values), within its error bar of the exact value: the
    z-scores' Σz² is χ²(96) (the chains are independent and 6144 of them make each mean Gaussian), and no |z| > 4.5
    (expected max of 96 |z|s ≈ 2.8; P(any > 4.5) ≈ 7e-4)."""
    z, p = _swap_zscores(LADDER, rule, statistic)
    assert p > ACCEPT and np.abs(z).max() < 4.5, (p, np.abs(z).max())


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("statistic", [2, 3], ids=["accepted", "probability"])
def test_swap_acceptance_rejects_hot_ladder(statistic, rule):
    """Negative control: the same harness, fed the 5% hot ladder's swaps, rejects them."""
    z, p = _swap_zscores([WRONG * t for t in LADDER], rule, statistic)
    assert p < ACCEPT, (p, np.abs(z).max())


# --- independence of the samples, exact energies, the Ising ladder ------------------------------------------------
TRAJECTORY_LADDER = (0.6, 1.0, 1.6, 2.6)
TRAJECTORY_STEPS = 30


@functools.cache
def _trajectory_runner(shape, rule="metropolis"):
    def trajectory(couplings, x0):
        kern = multispin_parallel_tempering(couplings, jnp.asarray(TRAJECTORY_LADDER, jnp.float32), rule=rule)
        final, x = run(kern, jax.random.key(9), kern.init(None, x0), TRAJECTORY_STEPS,
                       observe=lambda s, i: (s.base.black, s.base.white, s.labels, i.swap_accepted))
        return final, x

    return jax.jit(trajectory)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("shape", [(6, 8), (4, 4, 6)])
def test_sample_depends_only_on_its_own_bonds(shape, rule):
    """With either sweep rule, changing sample j's couplings, or its initial spins, leaves every other sample's
    30-step trajectory (the configurations at every rung, the walker labels and the swap decisions) bitwise unchanged
    and changes sample j's; the energies the state carries are each sample's model energy at every rung."""
    couplings = _ea_couplings(6, shape)
    x0 = lattice.random_spins(jax.random.key(7), (len(TRAJECTORY_LADDER), REPLICAS, *shape))
    j = 13
    final, base = _trajectory_runner(shape, rule)(couplings, x0)
    np.testing.assert_array_equal(final.energy, _model_energies(couplings, final.x))
    assert 0.05 < np.asarray(base[3]).mean()  # swaps do happen
    assert np.all(np.sort(np.asarray(final.labels), axis=0) == np.arange(len(TRAJECTORY_LADDER))[:, None])
    others = np.uint32(0xFFFFFFFF ^ (1 << j))
    keep = np.arange(REPLICAS) != j
    for c, x in ((couplings.at[j].set(_ea_couplings(8, shape)[j]), x0), (couplings, x0.at[:, j].set(-x0[:, j]))):
        _, changed = _trajectory_runner(shape, rule)(c, x)
        for a, b in zip(changed[:2], base[:2]):  # the words of every rung and step, all bits but j
            assert np.array_equal(np.asarray(a) & others, np.asarray(b) & others)
            assert not np.array_equal(np.asarray(a) & ~others, np.asarray(b) & ~others)
        for a, b in zip(changed[2:], base[2:]):  # labels and swap decisions: (step, rung or pair, sample)
            assert np.array_equal(np.asarray(a)[:, :, keep], np.asarray(b)[:, :, keep])


@pytest.mark.parametrize("rule", RULES)
def test_ising_ladder_tracks_energy_and_rejects_bad_inputs(rule):
    """Uniform couplings: 32 replicas of one Ising model per rung; energies stay the model's exact energies."""
    model = lattice.Ising((4, 4, 4), J=-1.0)
    kern = multispin_parallel_tempering(model, [3.0, 4.0, 5.0], rule=rule)
    state = kern.init(None, jnp.ones((3, 4, 4, 4), jnp.int8))
    final, _ = jax.jit(lambda s: run(kern, jax.random.key(1), s, 20))(state)
    x = final.x
    assert x.shape == (3, REPLICAS, 4, 4, 4) and x.dtype == jnp.int8
    np.testing.assert_array_equal(final.energy, jax.vmap(jax.vmap(model.energy))(x))
    with pytest.raises(ValueError, match="temperatures"):
        multispin_parallel_tempering(model, [2.0])
    with pytest.raises(ValueError, match="h="):
        multispin_parallel_tempering(lattice.Ising((4, 4), h=0.1), [2.0, 3.0])
    with pytest.raises(ValueError, match="xs.shape"):
        kern.init(None, jnp.ones((2, 4, 4, 4), jnp.int8))
    with pytest.raises(ValueError, match="rule='glauber': must be one of 'metropolis', 'heat_bath'"):
        multispin_parallel_tempering(model, [3.0, 4.0], rule="glauber")


# --- the energy read: exact integers, the same as before -------------------------------------------------------------
def _byte_lane_counts(words):
    """The per-bit count the tree reduction replaced (kept here as the reference): byte lanes of up to 255 words,
    ``(w >> j) & 0x01010101`` for the 8 offsets j, the bytes of the chunk sums added in int32."""
    flat = words.reshape(-1)
    rows = min(255, flat.shape[0])
    chunks = jnp.concatenate([flat, jnp.zeros((-flat.shape[0]) % rows, jnp.uint32)]).reshape(rows, -1)
    per_offset = []
    for j in range(8):
        lanes = jnp.sum((chunks >> jnp.uint32(j)) & jnp.uint32(0x01010101), axis=0, dtype=jnp.uint32)
        per_offset.append(jnp.sum(((lanes[:, None] >> jnp.asarray([0, 8, 16, 24], jnp.uint32)) & jnp.uint32(0xFF))
                                  .astype(jnp.int32), axis=0))
    return jnp.stack(per_offset, axis=1).reshape(REPLICAS)


def _byte_lane_energies(base):
    """The energy read the tree reduction replaced: per site a ripple adder of the 2d unsatisfied-bond words into 3
    planes (padded neighbour words of the sweep), each plane counted by :func:`_byte_lane_counts`."""
    d = base.black.ndim
    neighbours = _neighbour_words(base.white, _even_rows((*base.black.shape[:-1], 2 * base.black.shape[-1])))
    planes = []
    for n, m in zip(neighbours, base.bonds_black):
        carry = jnp.broadcast_to(base.black ^ n ^ m, base.black.shape)
        for b, plane in enumerate(planes):
            planes[b], carry = plane ^ carry, plane & carry
        if len(planes) < (2 * d).bit_length():
            planes.append(carry)
    unsatisfied = sum(_byte_lane_counts(plane) * (1 << b) for b, plane in enumerate(planes))
    return -base.scale * (d * 2 * base.black.size - 2 * unsatisfied).astype(jnp.float32)


def test_per_bit_sums_match_numpy_bit_count():
    """Random words of 1–3 planes, word counts below, at and above the 32 where folding stops, odd ones (a zero word
    appended at some levels) and 6145: Σ_j Σ_b 2^b (bit k of plane b of word j) equals NumPy's count of the
    unpacked bits."""
    rng = np.random.default_rng(1)
    for planes, n in ((1, 1), (3, 32), (2, 33), (3, 1000), (2, 6145)):
        words = rng.integers(0, 2**32, size=(planes, n), dtype=np.uint32)
        bits = (words[..., None] >> np.arange(REPLICAS, dtype=np.uint32)) & 1  # (planes, n, 32)
        expected = np.einsum("bnk,b->k", bits.astype(np.int64), 2 ** np.arange(planes))
        counts = jax.jit(multispin._per_bit_sums)(jnp.asarray(words))
        np.testing.assert_array_equal(counts, expected, err_msg=f"{planes} planes, {n} words")


# 2D and 3D, sides that are powers of two and sides that are not, square and not
ENERGY_SHAPES = [(4, 6), (14, 22), (4, 4, 6), (6, 10, 12)]


@pytest.mark.parametrize("shape", ENERGY_SHAPES)
def test_energies_match_state_energy_and_byte_lane_read(shape):
    """Random spins and 32 random ±J samples: the energies equal ``MultispinState.energy`` (every bit spread into
    its own lane) and the byte-lane read, exactly, also with the white words at the black sites (the rolled
    neighbour words equal the sweep's padded ones) and for the Ising kernel's broadcast bond words; and each
    sample's ``EdwardsAnderson`` energy."""
    couplings = _ea_couplings(3, shape)
    spins = lattice.random_spins(jax.random.key(4), (REPLICAS, *shape))
    state = multispin_ea_metropolis(couplings, 1.0).init(None, spins)
    ising = multispin_metropolis(lattice.Ising(shape, J=-1.0), 3.0).init(None, spins)
    swapped = state._replace(black=state.white, white=state.black)
    read, reference = jax.jit(multispin_tempering._energies), jax.jit(_byte_lane_energies)
    for base in (state, swapped, ising):
        new = read(base)
        np.testing.assert_array_equal(new, base.energy)
        np.testing.assert_array_equal(new, reference(base))
    np.testing.assert_array_equal(read(state), _model_energies(couplings, spins[None])[0])


def test_trajectory_bitwise_unchanged_by_the_energy_read(monkeypatch):
    """The 30-step 3D trajectory of the independence test (both swap parities, swaps accepted) with the
    tree-reduction read and with the byte-lane read it replaced: bitwise the same words at every rung and step,
    walker labels and swap decisions, and the same final state (energies included)."""
    shape = (4, 4, 6)
    couplings = _ea_couplings(6, shape)
    x0 = lattice.random_spins(jax.random.key(7), (len(TRAJECTORY_LADDER), REPLICAS, *shape))
    new = _trajectory_runner(shape)(couplings, x0)  # compiled once, shared with the independence test
    monkeypatch.setattr(multispin_tempering, "_energies", _byte_lane_energies)
    old = _trajectory_runner.__wrapped__(shape)(couplings, x0)  # a fresh trace that reads the patched function
    assert np.asarray(new[1][3]).mean() > 0.05  # swaps happen, so the energies decide something
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(old)):
        np.testing.assert_array_equal(a, b)
