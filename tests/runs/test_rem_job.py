"""End-to-end runs of tiny ``rem`` and ``funnel`` configs through ``runs.pipeline.execute`` (config → results.h5 →
summaries → plots), their values against the REM / Bryngelson–Wolynes theory, and config validation."""
import h5py
import numpy as np
import pytest
from scipy.optimize import brentq

from physics import theory as th
from runs import config, pipeline
from runs.config import ConfigError
from runs.jobs import job_kinds

REM_TINY = """
[run]
kind = "rem"
seed = 3
[rem]
sizes = [8, 12]
samples = 6
temperatures = [0.3, 2.0]
chunk_bits = 8
"""

FUNNEL_TINY = """
[run]
kind = "funnel"
seed = 4
[funnel]
n = 8
samples = 16
gap_ratios = [4.5, 4.68, 6.0]
temperatures = [0.8, 1.1, 1.4, 1.7]
profile_temperatures = [1.0]
fold_temperatures = [0.2, 1.5]
starts = 8
max_sweeps = 60
"""


def _run_and_plot(text, tmp_path):
    cfg = config.loads(text)
    path = pipeline.execute(cfg, tmp_path / "run", progress=False)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        paths = job_kinds()[cfg.run.kind](cfg).plot(f, tmp_path / "plots")
    assert paths and all(p.exists() for p in paths)
    return path


def test_rem_job_end_to_end(tmp_path):
    """f(T) above √2·T_c within 3 standard errors (6 samples) plus the finite-n allowance T·Var Z/(EZ)²/n of
    tests/physics/test_rem.py; the frozen phase at T = 0.3: entropy O(1) (S/n < 3/n, E S = 1.38 for n → ∞),
    participation far above its annealed value e^{n(β²/2 − ln 2)} at T = 2."""
    path = _run_and_plot(REM_TINY, tmp_path)
    with h5py.File(path, "r") as f:
        assert f["log_z_per_spin"].shape == (2, 12)
        np.testing.assert_array_equal(f["n"][...], [8, 12])
        fm, fe = f["free_energy_per_spin_mean"][...], f["free_energy_per_spin_stderr"][...]
        s, y = f["entropy_per_spin_mean"][...], f["participation_mean"][...]
        theory_f = f["theory_free_energy_per_spin"][...]
    assert theory_f[1] == pytest.approx(th.rem_free_energy(2.0))
    for i, n in enumerate((8, 12)):
        allowance = 2.0 * np.expm1(n / (2 * 2.0**2)) / 2**n / n
        assert abs(fm[i, 1] - th.rem_free_energy(2.0)) < 3 * fe[i, 1] + allowance, (n, fm[i, 1], fe[i, 1])
        assert s[i, 0] < 3.0 / n
        assert y[i, 0] > 10 * np.exp(n * (0.5 / 2.0**2 - np.log(2)))


# T_f harness. The job's T_f of one sample is the highest T where that sample's native occupancy p_N(T) = ½; the
# exact finite-n theory gives E p_N(T) (physics.theory.rem_native_occupancy), whose root E p_N = ½ differs from the
# mean of the per-sample roots only at second order in their spread. Measured by an independent enumeration (numpy
# Gaussian energies, 2^8 − 1 per sample, per-sample roots by brentq, 8000 samples at n = 8): mean root − root of the
# mean = −0.0020 ± 0.0006 (δE_s/ΔE = 4.5), −0.0028 ± 0.0005 (4.68), −0.0002 ± 0.0004 (6.0); the allowance covers
# the largest of these by 4 of its standard errors.
TF_K = 3.0
TF_ALLOWANCE = 0.005


def _exact_folding_temperature(ratio, n):
    """Root of the exact finite-n E p_N(T) = ½ for the BW model with stability gap δE_s = ratio·ΔE, ΔE = √(n/2)."""
    gap_per_spin = ratio * np.sqrt(n / 2.0) / n
    return brentq(lambda t: th.rem_native_occupancy(t, gap_per_spin, n) - 0.5, 0.3, 3.0, xtol=1e-6)


def _folding_temperature_check(per_sample_tf, exact):
    """(z, excess): the mean per-sample T_f against ``exact`` — z in standard errors over the samples, and
    |Δ| / (TF_K·stderr + TF_ALLOWANCE), which is ≤ 1 when the harness accepts."""
    tf = np.asarray(per_sample_tf, np.float64)
    mean, err = tf.mean(), tf.std(ddof=1) / np.sqrt(tf.size)
    return (mean - exact) / err, abs(mean - exact) / (TF_K * err + TF_ALLOWANCE)


def test_funnel_job_end_to_end(tmp_path):
    """Native occupancy ⟨p_N⟩(T) against the exact finite-n theory (3 standard errors over 16 samples, at the
    temperatures where the theory lies in (0.1, 0.9) — at the ends p_N is set by rare samples and its standard
    error by 16 samples is unreliable); T_f per gap against the exact finite-n value (harness above), and the same
    harness rejecting samples whose gap is 4% off; T_f/T_g > 1 for the largest gap; every start folds at T = 1.5.

    Measured (seed 4): z = −1.40, −1.48, −1.88 at δE_s/ΔE = 4.5, 4.68, 6.0 (accepted); the samples at 4.68 against
    the exact T_f at 4.5 z = +4.66, those at 4.5 against 4.68 z = −6.34 (rejected)."""
    path = _run_and_plot(FUNNEL_TINY, tmp_path)
    with h5py.File(path, "r") as f:
        occ, err = f["native_occupancy_mean"][...], f["native_occupancy_stderr"][...]
        theory_occ = f["native_occupancy_theory"][...]
        tf_samples = f["folding_temperature"][...]  # (gap_ratio, sample)
        tf_mean, tf_exact_job = f["folding_temperature_mean"][...], f["folding_temperature_exact"][...]
        ratios = f["gap_ratio"][...]
        ratio = f["tf_over_tg_mean"][...]
        folded = f["folded_fraction"][...]
        prof = f["free_energy_profile_mean"][...]
        assert f["folding_time"].shape == (2, 8, 16)
        assert f["phase"].shape == (3, 4)
    checked = 0
    for g in range(3):
        for j in range(4):
            if 0.1 < theory_occ[g, j] < 0.9:
                assert abs(occ[g, j] - theory_occ[g, j]) < 3 * err[g, j], (g, j, occ[g, j], err[g, j])
                checked += 1
    assert checked >= 2
    assert tf_samples.shape == (3, 16) and np.all(np.isfinite(tf_samples))
    np.testing.assert_allclose(tf_mean, tf_samples.mean(axis=1), rtol=1e-12)
    exact = np.array([_exact_folding_temperature(r, 8) for r in ratios])
    np.testing.assert_allclose(tf_exact_job, exact, atol=2e-3)  # the job's own root finder stops at xtol = 1e-3
    for g in range(3):
        z, excess = _folding_temperature_check(tf_samples[g], exact[g])
        assert excess <= 1.0, (ratios[g], tf_samples[g].mean(), exact[g], z)
    # negative control: samples drawn with the stability gap 4% off (4.68 vs 4.5) fed to the same harness
    for sampled, claimed in ((1, 0), (0, 1)):
        z, excess = _folding_temperature_check(tf_samples[sampled], exact[claimed])
        assert excess > 1.0, (ratios[sampled], ratios[claimed], z)
    assert ratio[2] > 1
    assert folded[1] == 1.0
    assert prof.shape == (1, 9) and np.all(np.isfinite(prof))


@pytest.mark.parametrize("text,old,new,key", [
    (REM_TINY, "sizes = [8, 12]", "sizes = [8, 40]", r"rem\.sizes\[1\]"),
    (REM_TINY, "temperatures = [0.3, 2.0]", "temperatures = [0.01]", r"rem\.temperatures\[0\]"),
    (REM_TINY, "samples = 6", "samples = 6\nsample = 2", r"rem\.sample"),
    (FUNNEL_TINY, "gap_ratios = [4.5, 4.68, 6.0]", "gap_ratios = [6.0, 4.5]", r"funnel\.gap_ratios"),
    (FUNNEL_TINY, "n = 8", "n = 30", r"funnel\.n"),
])
def test_bad_config_names_the_key(text, old, new, key):
    with pytest.raises(ConfigError, match=key):
        config.loads(text.replace(old, new))
