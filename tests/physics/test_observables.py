"""Error bars and estimators against processes whose answers are known in closed form."""
import numpy as np
import pytest

from physics import observables as ob


def _ar1(rng, rho, n, chains):
    x = np.zeros((chains, n))
    noise = rng.normal(size=(chains, n)) * np.sqrt(1 - rho**2)
    x[:, 0] = rng.normal(size=chains)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x


def test_integrated_autocorr_time_of_ar1():
    # For x_t = ρ x_{t-1} + noise, τ_int = 1/2 + Σ ρ^t = (1 + ρ) / (2 (1 - ρ)).
    rng = np.random.default_rng(0)
    for rho in (0.0, 0.5, 0.8):
        x = _ar1(rng, rho, 20000, 8)
        expected = (1 + rho) / (2 * (1 - rho))
        # Sokal's window estimator has a relative error ≈ sqrt(2(2M+1)/n) ~ 3% here (M ≈ 5τ, n = 1.6e5 samples).
        assert ob.integrated_autocorr_time(x) == pytest.approx(expected, rel=0.1)


def test_binned_error_matches_autocorrelation():
    # The binning error of a correlated series approaches sqrt(2 τ σ² / n); compare over 200 independent chains.
    rng = np.random.default_rng(1)
    rho = 0.7
    x = _ar1(rng, rho, 4000, 200)
    tau = (1 + rho) / (2 * (1 - rho))
    expected = np.sqrt(2 * tau / x.shape[1])
    _, errs = ob.binned_stderr(x, num_bins=20)
    actual_spread = x.mean(axis=1).std(ddof=1)
    # mean of 200 error estimates has ~2% relative error; 20 bins bias the estimate by O(τ/block) ≈ 1%
    assert errs.mean() == pytest.approx(expected, rel=0.08)
    assert actual_spread == pytest.approx(expected, rel=0.15)  # std of 200 means: ±5% (1σ)


def test_mean_stderr_and_jackknife_agree_for_the_mean():
    rng = np.random.default_rng(2)
    x = rng.normal(size=50)
    m, e = ob.mean_stderr(x)
    jm, je = ob.jackknife(lambda s: s.mean(), x)
    assert jm == pytest.approx(m) and je == pytest.approx(e)
    with pytest.raises(ValueError):
        ob.mean_stderr(np.ones(1))


def test_binder_cumulant_limits():
    rng = np.random.default_rng(3)
    gauss = rng.normal(size=400000)
    assert ob.binder_cumulant(gauss) == pytest.approx(0.0, abs=0.01)  # Gaussian: <m⁴> = 3<m²>²
    ordered = rng.choice([-0.8, 0.8], size=1000)
    assert ob.binder_cumulant(ordered) == pytest.approx(2.0 / 3.0)


def test_fluctuation_formulas():
    e = np.array([-10.0, -12.0, -10.0, -12.0])
    assert ob.specific_heat(e, n=4, temperature=2.0) == pytest.approx(1.0 / (4 * 4))
    m = np.array([0.5, -0.5, 0.5, -0.5])
    assert ob.susceptibility(m, n=16, temperature=1.0) == pytest.approx(0.0)
    x = np.ones((2, 4, 4), np.int8)
    x[1] *= -1
    assert np.allclose(ob.magnetization(x), [1.0, -1.0])


def test_replica_estimate_by_hand():
    # fn = the mean of one replica's series: replica values 2 and 5, so 3.5 ± std([2, 5], ddof=1)/√2 = 1.5 exactly
    samples = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mean, err = ob.replica_estimate(np.mean, samples)
    assert mean == pytest.approx(3.5) and err == pytest.approx(1.5)
    # replicas on another axis, a vector-valued fn: per replica (max, last), here (3, 3) and (6, 6) → 4.5 ± 1.5 each
    mean, err = ob.replica_estimate(lambda s: np.array([s.max(), s[-1]]), samples.T, replica_axis=1)
    np.testing.assert_allclose(mean, [4.5, 4.5])
    np.testing.assert_allclose(err, [1.5, 1.5])
    with pytest.raises(ValueError):
        ob.replica_estimate(np.mean, samples[:1])  # one replica: no error bar


def test_replica_estimate_of_a_nonlinear_estimator_is_the_spread_over_replicas():
    # Binder cumulant per replica (nonlinear: not a mean of per-sample values), replicas on axis 1 of a
    # (time, replica, component) array: against a loop computing mean and std(ddof=1)/√R directly
    rng = np.random.default_rng(4)
    samples = rng.normal(size=(500, 7, 2)) + np.array([0.0, 0.8])
    mean, err = ob.replica_estimate(lambda s: ob.binder_cumulant(s, axis=0), samples, replica_axis=1)
    values = np.array([[ob.binder_cumulant(samples[:, r, c]) for c in range(2)] for r in range(7)])
    np.testing.assert_allclose(mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(err, values.std(axis=0, ddof=1) / np.sqrt(7), rtol=1e-12)
    assert mean.shape == err.shape == (2,)
