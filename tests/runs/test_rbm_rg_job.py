"""End-to-end run of a tiny ``rbm_rg`` config through the pipeline (Ising samples → RBM stack → measurements)."""
import h5py
import numpy as np
import pytest

from runs import config, pipeline
from runs.config import ConfigError

TINY = """
[run]
kind = "rbm_rg"
seed = 1
[rbm_rg]
L = 8
K = 0.408
hidden = [16, 4]
replicas = 4
equilibration = 20
measurement = 400
record_every = 2
train_steps = 400
batch_size = 50
learning_rate = 0.01
l1 = 1e-3
num_chains = 50
"""


def test_rbm_rg_job_end_to_end(tmp_path):
    cfg = config.loads(TINY)
    path = pipeline.execute(cfg, tmp_path / "run", progress=False)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        assert f["spins"].shape[-1] == 210 and f["spins"].shape[0] == 4
        assert list(f["block_size"][...]) == [2, 4]
        assert f["weights_1"].shape == (64, 16) and f["weights_2"].shape == (16, 4)
        np.testing.assert_allclose(f["receptive_field_2"][...].sum(axis=0), 1.0, rtol=1e-9)
        radius = f["receptive_field_radius"][...]
        # every radius lies between a point (0) and a field spread over the whole 8×8 torus (√(2·63/12))
        assert np.all((radius > 0) & (radius < np.sqrt(2 * 63 / 12) + 1e-9)), radius
        # hidden units of a trained RBM track block spins of their scale far above chance: for unrelated units the
        # largest of 16 |corr| over 4 × 200 samples would be ≈ 2.4/√800 ≈ 0.09 (independent samples)
        corr, err = f["max_block_correlation"][...], f["max_block_correlation_err"][...]
        assert np.all(corr > 0.3), (corr, err)
        assert np.all(np.isfinite(f["effective_coupling"][...]))
    from runs.jobs import job_kinds

    job = job_kinds()["rbm_rg"](cfg)
    with h5py.File(path, "r") as f:
        paths = job.plot(f, tmp_path / "plots")
    assert paths and all(p.exists() for p in paths)


def test_rbm_rg_config_validation():
    with pytest.raises(ConfigError, match="hidden"):
        config.loads(TINY.replace("hidden = [16, 4]", "hidden = [15, 4]"))
    with pytest.raises(ConfigError, match="K"):
        config.loads(TINY.replace("K = 0.408", "K = -1.0"))
