"""Shipped configs run and their physics holds through the job: the quickstart sweep against Kaufman's exact L = 16
energy, from the job's own means and jackknife errors over independent replicas."""
from pathlib import Path

import h5py
import numpy as np

from runs import config, pipeline

CONFIGS = Path(pipeline.__file__).parent / "configs"


def test_quickstart_runs_end_to_end_and_matches_kaufman(tmp_path):
    cfg = config.load(CONFIGS / "quickstart.toml")
    path = pipeline.execute(cfg, tmp_path / "quickstart", progress=False)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        mean = f["energy_per_spin_mean"][0]
        err = f["energy_per_spin_stderr"][0]
        exact = f["exact_energy_per_spin"][...]
        temps = f["temperature"][...]
    z = np.abs(mean - exact) / err
    # 9 temperatures, jackknife over 16 replicas (Student t, 15 dof): a correct sampler exceeds 4σ at one of them
    # with probability ≈ 9 × 1.2e-3 ≈ 1%; the seed is fixed, so the test is deterministic.
    assert np.all(z < 4.0), dict(zip(temps.round(3).tolist(), z.round(2).tolist()))
    # negative control: the same means against Kaufman at temperatures 3% off are rejected somewhere
    from physics import theory

    wrong = np.array([theory.kaufman_energy(16, 1.03 * t) for t in temps])
    assert np.max(np.abs(mean - wrong) / err) > 4.0
