"""bridges.data_rem: pooling against block means, ground states / overlap profiles / thermodynamics against brute-force
NumPy enumeration, the pair correlation of the REM and the p = 2 Ising p-spin against their exact values (each the
negative control of the other), Gardner's exact correlation against enumeration of patterns, and T_f, T_g against
closed forms and brute-force Boltzmann weights."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from bridges import data_rem as dr
from nets import data as nets_data
from physics import rem


def _all_states(n):
    k = np.arange(2**n)[:, None]
    return np.where((k >> np.arange(n)) & 1, 1, -1).astype(np.float64)


def _errors(model):
    """Brute-force error counts (κ = 0, ties are errors) of every state, in float64."""
    fields = _all_states(model.n) @ np.asarray(model.patterns, np.float64).T * np.asarray(model.labels, np.float64)
    return np.sum(fields <= 0, axis=1).astype(np.float64)


def test_pool_binarize_against_block_means():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(9, 64))
    img = x.reshape(9, 8, 8)
    # 4×4: plain 2×2 block means
    feats, thr = dr.pool_binarize(x, (4, 4))
    blocks = img.reshape(9, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(9, 16)
    np.testing.assert_allclose(thr, blocks.mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(feats, np.where(blocks > blocks.mean(axis=0), 1, -1))
    # 4×5: columns cut at multiples of 1.6 pixels; independently, repeat each pixel 5× (40 sub-columns, 8 per cell)
    feats, thr = dr.pool_binarize(img, (4, 5))
    fine = np.repeat(img, 5, axis=2).reshape(9, 4, 2, 5, 8).mean(axis=(2, 4)).reshape(9, 20)
    np.testing.assert_allclose(thr, fine.mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(feats, np.where(fine > fine.mean(axis=0), 1, -1))
    assert feats.dtype == np.int8 and feats.shape == (9, 20)
    # 8×8 with given thresholds: the pixels themselves
    feats, _ = dr.pool_binarize(x, (8, 8), thresholds=np.full(64, 0.5))
    np.testing.assert_array_equal(feats, np.where(x > 0.5, 1, -1))
    for bad, match in (({"shape": (0, 3)}, "shape"), ({"shape": (9, 1)}, "shape"), ({"thresholds": np.zeros(3)},
                                                                                     "thresholds")):
        with pytest.raises(ValueError, match=match):
            dr.pool_binarize(x, **{"shape": (4, 5), **bad})
    with pytest.raises(ValueError, match="images"):
        dr.pool_binarize(np.zeros((3, 63)))


def test_digits_perceptron_is_the_two_pooled_classes():
    model = dr.digits_perceptron((3, 5), (4, 5))
    (x, y), (xt, yt) = nets_data.digits()
    keep = (y == 3) | (y == 5)
    feats, thr = dr.pool_binarize(x[keep], (4, 5))
    assert model.n == 20 and model.num_patterns == keep.sum()
    np.testing.assert_array_equal(np.asarray(model.patterns), feats)
    np.testing.assert_array_equal(np.asarray(model.labels), np.where(y[keep] == 3, 1.0, -1.0))
    test = dr.digits_perceptron((3, 5), (4, 5), split="test")
    keep_t = (yt == 3) | (yt == 5)
    np.testing.assert_array_equal(np.asarray(test.patterns), dr.pool_binarize(xt[keep_t], (4, 5), thresholds=thr)[0])
    for classes, split in (((3, 3), "train"), ((3, 5), "valid")):
        with pytest.raises(ValueError):
            dr.digits_perceptron(classes, split=split)


def test_ground_states_of_a_teacher_problem():
    """n = 12 streamed in 16 chunks: minimum 0 errors, degeneracy and the first ground states equal the brute-force
    zeros, in index order; the teacher is one of them."""
    n = 12
    key = jax.random.key(12)
    model = rem.Perceptron.teacher(key, n, 8)
    e = _errors(model)
    zeros = np.flatnonzero(e == 0)
    gs = dr.ground_states(model, max_states=4, chunk_bits=8)
    assert gs.energy == 0.0 and gs.degeneracy == zeros.size > 4
    np.testing.assert_array_equal(gs.indices, zeros[:4])
    np.testing.assert_array_equal(gs.states, _all_states(n)[zeros[:4]])
    tau = np.asarray(rem.Perceptron.teacher_weights(key, n))
    assert int(np.sum((tau > 0) << np.arange(n))) in zeros
    everything = dr.ground_states(model, max_states=4096, chunk_bits=8)
    np.testing.assert_array_equal(everything.indices, zeros)


def _shells(energies, agree, n):
    return [energies[agree == m] for m in range(n + 1)]


def test_energy_vs_overlap_falls_toward_the_native_state():
    """A power funnel on a REM (n = 10) against NumPy shells: count C(n, m), mean, min, max (float32 energies summed
    in float64: 1e-5 relative). With the native state as reference the mean falls strictly over Q ≥ 0 (slope
    n·depth·ΔQ = 2 per shell against base-energy noise ≤ √5·0.2/√C(n, m) ≲ 0.5); negative control: against a random
    other state the same check fails (the funnel looks like a REM from there)."""
    n = 10
    base = rem.REM.random(jax.random.key(20), n)
    native = base.random_state(jax.random.key(21))
    funnel = rem.Funnel(base, native, 1.0, 1.0, "power")
    x = _all_states(n)
    agree = np.sum(x == np.asarray(native), axis=1)
    g = np.maximum(2.0 * agree / n - 1.0, 0.0)
    e = (1.0 - g) * np.asarray(base.all_energies(), np.float64) - n * 1.0 * g
    prof = dr.energy_vs_overlap(funnel, native, chunk_bits=6)
    shells = _shells(e, agree, n)
    np.testing.assert_array_equal(prof.count, [math.comb(n, m) for m in range(n + 1)])
    np.testing.assert_allclose(prof.q, 2.0 * np.arange(n + 1) / n - 1.0)
    np.testing.assert_allclose(prof.mean, [s.mean() for s in shells], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(prof.minimum, [s.min() for s in shells], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(prof.maximum, [s.max() for s in shells], rtol=1e-5, atol=1e-5)
    half = prof.mean[n // 2:]
    assert np.all(np.diff(half) < 0), half
    other = dr.energy_vs_overlap(funnel, -native.at[0].multiply(-1), chunk_bits=6)
    assert not np.all(np.diff(other.mean[n // 2:]) < 0), other.mean
    # the perceptron's integer energies: exact shell statistics around its first ground state
    model = rem.Perceptron.teacher(jax.random.key(12), 12, 8)
    e = _errors(model)
    ref = _all_states(12)[np.argmin(e)]
    prof = dr.energy_vs_overlap(model, ref)
    shells = _shells(e, np.sum(_all_states(12) == ref, axis=1), 12)
    np.testing.assert_array_equal(prof.mean, [s.mean() for s in shells])
    np.testing.assert_array_equal(prof.minimum, [s.min() for s in shells])


def _chi2_pvalue(corr, theory):
    """χ² over the sampled shells (independent keys per shell): Σ ((ρ − theory)/stderr)², df = number of shells.

    Shells where ρ is exact have stderr 0 and are checked separately: q = 1, and q = −1 for an even p."""
    sampled = corr.stderr > 0.0
    z = (corr.rho[sampled] - theory[sampled]) / corr.stderr[sampled]
    return float(stats.chi2.sf(np.sum(z * z), df=z.size))


def test_energy_correlation_rem_and_pspin_each_the_control_of_the_other():
    """n = 14, 2000 pairs per shell. REM: ρ = 0 for q < 1 (within one sample the shell average deviates from 0 by
    ~(2^n C(n,k))^-1/2 ≤ 0.002, ten times below the stderr ~0.022). Ising p = 2 with uniform σ: exactly
    ρ = e_2(σ∘τ)/C(n, 2) = ((nq)² − n)/(n(n − 1)) for any couplings (→ q²). Each data set passes its own theory
    (χ² p > 1e-3) and fails the other's (p < 1e-6)."""
    n = 14
    rem_model = rem.REM.random(jax.random.key(30), n)
    p2 = rem.IsingPSpin.random(jax.random.key(31), n, 2)
    c_rem = dr.energy_correlation(jax.random.key(32), rem_model, 2000)
    c_p2 = dr.energy_correlation(jax.random.key(33), p2, 2000)
    q = c_rem.q
    np.testing.assert_allclose(q, 2.0 * np.arange(n + 1) / n - 1.0)
    theory_rem = (q == 1.0).astype(np.float64)
    theory_p2 = ((n * q) ** 2 - n) / (n * (n - 1))
    assert np.flatnonzero(c_rem.stderr == 0).tolist() == [n] and c_rem.rho[n] == pytest.approx(1.0)
    assert np.flatnonzero(c_p2.stderr == 0).tolist() == [0, n]  # H(−σ) = H(σ) for p = 2
    np.testing.assert_allclose(c_p2.rho[[0, n]], 1.0)
    p_rem, p_p2 = _chi2_pvalue(c_rem, theory_rem), _chi2_pvalue(c_p2, theory_p2)
    assert p_rem > 1e-3 and p_p2 > 1e-3, (p_rem, p_p2)
    cross_rem, cross_p2 = _chi2_pvalue(c_rem, theory_p2), _chi2_pvalue(c_p2, theory_rem)
    assert cross_rem < 1e-6 and cross_p2 < 1e-6, (cross_rem, cross_p2)


def test_gardner_correlation_against_enumerated_patterns():
    """Exact: for n = 9 and 10, enumerate all 2^n patterns (σ = 1 and the label absorbed by symmetry), flip the first
    k weights, count errors (ties are errors): Cov/Var per pattern to 1e-12. Limit: |ρ − (2/π) arcsin q| falls like
    the O(1/√n) lattice correction of a sum of ±1, from n = 201 to 2001 (odd n, no ties) by more than 3 (√10)."""
    for n in (9, 10):
        xi = _all_states(n)
        u = xi.sum(axis=1)
        p = np.mean(u <= 0)
        want = []
        for k in range(n, -1, -1):  # ascending q = 1 − 2k/n
            v = u - 2.0 * xi[:, :k].sum(axis=1)
            want.append((np.mean((u <= 0) & (v <= 0)) - p * p) / (p - p * p))
        q, rho = dr.gardner_correlation(n)
        np.testing.assert_allclose(q, 2.0 * np.arange(n + 1) / n - 1.0)
        np.testing.assert_allclose(rho, want, atol=1e-12)
    dev = []
    for n in (201, 2001):
        q, rho = dr.gardner_correlation(n)
        dev.append(np.max(np.abs(rho - 2.0 / np.pi * np.arcsin(q))))
    assert dev[1] < 0.01 and dev[0] / dev[1] > 3.0, dev


def _boltzmann_root(energies, native_mask, lo, hi):
    """T where the brute-force weight of the native states is ½ (brentq)."""
    def excess(t):
        w = -energies / t
        return np.exp(np.logaddexp.reduce(w[native_mask]) - np.logaddexp.reduce(w)) - 0.5
    return optimize.brentq(excess, lo, hi, xtol=1e-10)


def _heat_capacity_peak(energies, lo, hi):
    """Peak of C(T) = Var_T(E)/T² of a brute-force ensemble (bounded scalar minimization)."""
    def minus_c(t):
        w = np.exp(-(energies - energies.min()) / t)
        w /= w.sum()
        mean = np.sum(w * energies)
        return -np.sum(w * (energies - mean) ** 2) / t**2
    return optimize.minimize_scalar(minus_c, bounds=(lo, hi), method="bounded", options={"xatol": 1e-8}).x


def test_funnel_temperatures_against_closed_forms_and_brute_force():
    """Unfrustrated funnel (independent spins, n = 10): T_f = 1/ln(1/(2^{1/n} − 1)) exactly; the job's estimate
    interpolates p_N linearly on a 0.01 grid (error ≤ h² max|p''|/(8|p'|) ~ 1e-4 here, so 1e-3). T_g against the
    brute-force peak of Var(E)/T² of the states E ≥ 1, within one grid step 0.01 (central differences and a
    parabola through the three grid points around the maximum). REM (n = 10) plus a native state at gap ratio
    δE_s/ΔE = 8: T_f against the brute-force root, T_f/T_g > 1 (folds before it glasses); negative control at
    gap ratio 2: the native state is not the ground state, and the ratio is < 1."""
    n = 10
    ft = dr.funnel_temperatures(dr.unfrustrated(n))
    e = np.sum(_all_states(n) < 0, axis=1).astype(np.float64)
    assert ft.ground_energy == 0.0 and ft.degeneracy == 1
    assert ft.folding == pytest.approx(1.0 / math.log(1.0 / (2.0 ** (1.0 / n) - 1.0)), abs=1e-3)
    assert ft.glass == pytest.approx(_heat_capacity_peak(e[e >= 1], 0.1, 3.0), abs=0.01)
    base = rem.REM.random(jax.random.key(40), n)
    native = base.random_state(jax.random.key(41))
    x = _all_states(n)
    is_native = np.all(x == np.asarray(native), axis=1)
    base_e = np.asarray(base.all_energies(), np.float64)
    ratios = []
    for gap in (8.0, 2.0):
        depth = gap * math.sqrt(n / 2.0) / n
        e = np.where(is_native, -n * depth, base_e)
        ground = e == e.min()
        ft = dr.funnel_temperatures(rem.Funnel(base, native, depth))
        assert ft.folding == pytest.approx(_boltzmann_root(e, ground, 0.05, 3.0), abs=1e-3)
        assert ft.glass == pytest.approx(_heat_capacity_peak(e[~ground], 0.1, 3.0), abs=0.01)
        ratios.append(ft.ratio)
    assert ratios[0] > 1.0 > ratios[1], ratios


def test_landscape_collects_the_exact_and_sampled_statistics():
    model = rem.Perceptron.teacher(jax.random.key(12), 12, 8)
    temps = [0.3, 1.0]
    out = dr.landscape(model, temps, key=jax.random.key(50), num_pairs=64)
    e = _errors(model)
    np.testing.assert_allclose(out["log_z"], [np.logaddexp.reduce(-e / t) for t in temps], rtol=1e-6)
    levels, counts = np.unique(e, return_counts=True)
    np.testing.assert_array_equal(out["dos_energy"], levels)
    np.testing.assert_array_equal(out["dos_count"], counts)
    assert out["ground_energy"] == 0.0 and out["ground_degeneracy"] == np.sum(e == 0)
    assert out["energy_overlap_mean"][-1] == 0.0 and out["energy_overlap_count"].sum() == 2**12
    np.testing.assert_allclose(out["correlation_gardner"], dr.gardner_correlation(12)[1])
    np.testing.assert_array_equal(out["correlation_rem"], (out["correlation_q"] == 1.0).astype(float))
    assert out["correlation"][-1] == pytest.approx(1.0)
    assert 0 < out["tf_over_tg"] and 0 < out["tf_over_tg_unfrustrated"] < 1
    # a Funnel's enumeration is resolved by its native state: the landscape sums that resolution away
    base = rem.REM.random(jax.random.key(20), 10)
    funnel = rem.Funnel(base, base.random_state(jax.random.key(21)), 1.0, 1.0, "power")
    plain = dr.landscape(funnel, temps)
    assert "correlation" not in plain and plain["dos_count"].sum() == 2**10
    assert plain["ground_energy"] == pytest.approx(-10.0) and plain["ground_degeneracy"] == 1
    assert set(itertools.chain(out)) >= {"folding_temperature", "glass_temperature", "native_occupancy"}
    with pytest.raises(ValueError, match="num_pairs"):
        dr.energy_correlation(jax.random.key(0), model, 1)
    assert jnp.asarray(out["ground_state"]).shape == (12,)
