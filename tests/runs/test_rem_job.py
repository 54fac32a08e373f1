"""End-to-end runs of tiny ``rem`` and ``funnel`` configs through ``runs.pipeline.execute`` (config → results.h5 →
summaries → plots), their values against the REM / Bryngelson–Wolynes theory, and config validation."""
import h5py
import numpy as np
import pytest

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
samples = 8
gap_ratios = [4.5, 6.0]
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


def test_funnel_job_end_to_end(tmp_path):
    """Native occupancy ⟨p_N⟩(T) against the exact finite-n theory (3 standard errors over 8 samples, at the
    temperatures where the theory lies in (0.1, 0.9) — at the ends p_N is set by rare samples and its standard
    error by 8 samples is unreliable); T_f rises with the gap and lies within 10% of Bryngelson–Wolynes (finite n,
    see tests/physics/test_rem.py::test_folding_temperature_trend); T_f/T_g > 1 for the larger gap; every start
    folds at T = 1.5."""
    path = _run_and_plot(FUNNEL_TINY, tmp_path)
    with h5py.File(path, "r") as f:
        occ, err = f["native_occupancy_mean"][...], f["native_occupancy_stderr"][...]
        theory_occ = f["native_occupancy_theory"][...]
        tf, tf_bw = f["folding_temperature_mean"][...], f["folding_temperature_bw"][...]
        ratio = f["tf_over_tg_mean"][...]
        folded = f["folded_fraction"][...]
        prof = f["free_energy_profile_mean"][...]
        assert f["folding_time"].shape == (2, 8, 8)
        assert f["phase"].shape == (2, 4)
    checked = 0
    for g in range(2):
        for j in range(4):
            if 0.1 < theory_occ[g, j] < 0.9:
                assert abs(occ[g, j] - theory_occ[g, j]) < 3 * err[g, j], (g, j, occ[g, j], err[g, j])
                checked += 1
    assert checked >= 2
    assert tf[1] > tf[0]
    np.testing.assert_allclose(tf, tf_bw, rtol=0.1)
    assert ratio[1] > 1
    assert folded[1] == 1.0
    assert prof.shape == (1, 9) and np.all(np.isfinite(prof))


@pytest.mark.parametrize("text,old,new,key", [
    (REM_TINY, "sizes = [8, 12]", "sizes = [8, 40]", r"rem\.sizes\[1\]"),
    (REM_TINY, "temperatures = [0.3, 2.0]", "temperatures = [0.01]", r"rem\.temperatures\[0\]"),
    (REM_TINY, "samples = 6", "samples = 6\nsample = 2", r"rem\.sample"),
    (FUNNEL_TINY, "gap_ratios = [4.5, 6.0]", "gap_ratios = [6.0, 4.5]", r"funnel\.gap_ratios"),
    (FUNNEL_TINY, "n = 8", "n = 30", r"funnel\.n"),
])
def test_bad_config_names_the_key(text, old, new, key):
    with pytest.raises(ConfigError, match=key):
        config.loads(text.replace(old, new))
