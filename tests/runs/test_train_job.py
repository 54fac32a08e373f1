"""The ``train`` job kind through the run pipeline: resume is bitwise, divergence and outcomes are summarized."""
import h5py
import numpy as np
import pytest

from runs import config, pipeline

TINY = """
[run]
kind = "train"
seed = 2
chunk_steps = 100

[train]
dataset = "digits"
hidden = [16, 16]
widths = [8, 16]
activation = "linear"
optimizer = "sgd"
learning_rates = [0.05, 10.0]
weight_decays = [0.0]
seeds = 2
batch_size = 16
steps = 300
record_every = 50
min_accuracy = 0.8
"""


def _datasets(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in f if isinstance(f[k], h5py.Dataset)}, dict(f.attrs)


def test_train_job_resumes_bitwise_and_records_outcomes(tmp_path):
    cfg = config.loads(TINY)
    full = pipeline.execute(cfg, tmp_path / "full", progress=False)
    pipeline.execute(cfg, tmp_path / "part", progress=False, max_chunks=1)
    pipeline.resume(tmp_path / "part", progress=False)
    a, attrs = _datasets(full)
    b, _ = _datasets(tmp_path / "part" / "results.h5")
    assert attrs["status"] == "complete" and sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name
    assert a["train_accuracy"].shape == (2, 2, 1, 2, 6)  # width, lr, wd, seed, time
    assert list(a["time"]) == [50, 100, 150, 200, 250, 300]
    outcome = a["network_outcome"]
    # lr = 10 on a deep linear network overflows: every seed and width diverged, and it is recorded, not raised
    assert np.all(outcome[:, 1] == 1) and np.all(a["diverged_step"][:, 1] > 0)
    assert np.all(a["diverged"][:, 1, ..., -1] == 1)
    # lr = 0.05 trains: stable, above the min_accuracy threshold on the held-out digits
    assert np.all(outcome[:, 0] == 0) and np.all(a["final_test_accuracy"][:, 0] > 0.8)
    np.testing.assert_allclose(a["outcome_fraction"][:, 0, 0], [[1, 0, 0]] * 2)
    assert [s.decode() for s in a["outcome"]] == ["stable", "diverged", "under-trained"]


def test_train_config_is_validated():
    with pytest.raises(config.ConfigError, match="steps"):
        config.loads(TINY.replace("steps = 300", "steps = 310"))
    with pytest.raises(config.ConfigError, match="optimizer"):
        config.loads(TINY.replace('"sgd"', '"lbfgs"'))
