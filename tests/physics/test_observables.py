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
