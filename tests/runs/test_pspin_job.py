"""End-to-end ``pspin`` runs through the pipeline: layout, aging snapshots, resume, summaries, plots, validation."""
import h5py
import numpy as np
import pytest

from runs import config, pipeline
from runs.config import ConfigError
from runs.jobs import job_kinds

TINY = """
[run]
kind = "pspin"
seed = 3
chunk_steps = 60
[pspin]
n = 16
p = 3
dynamics = "langevin"
temperatures = [0.5, 1.0]
step_size = 0.02
replicas = 2
disorder_samples = 2
steps = 180
equilibration = 60
record_every = 10
waiting_times = [0, 50]
hessian = true
"""


def test_pspin_job_end_to_end_and_resume(tmp_path):
    cfg = config.loads(TINY)
    path = pipeline.execute(cfg, tmp_path / "run", progress=False)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        assert f["energy_per_spin"].shape == (2, 2, 2, 18)
        time = f["time"][...]
        c = f["correlation"][...]
        # C(t, t_w) is NaN before t_w, exactly 1 at t = t_w (the snapshot is the state), and ≤ 1 after
        w = 1
        assert np.all(np.isnan(c[..., w, time < 50]))
        np.testing.assert_allclose(c[..., w, time == 50], 1.0, atol=1e-5)
        assert np.all(c[..., w, time > 50] < 1.0)
        assert np.all(np.isfinite(c[..., 0, :])) and np.all(c[..., 0, :] < 1.0)  # t_w = 0: the random start
        # P(q) is a normalized density per temperature
        q, pq = f["q_bin"][...], f["overlap_distribution"][...]
        np.testing.assert_allclose(pq.sum(axis=1) * (q[1] - q[0]), 1.0, rtol=1e-6)
        ev = f["hessian_eigenvalues"][...]
        assert ev.shape == (2, 2, 2, 15) and np.all(np.diff(ev, axis=-1) >= 0)
        assert f["theory_threshold_energy"][()] == pytest.approx(-1.1547005, abs=1e-6)
        final = {k: f[k][...] for k in ("energy_per_spin", "correlation")}
    job = job_kinds()["pspin"](cfg)
    with h5py.File(path, "r") as f:
        paths = job.plot(f, tmp_path / "plots")
    assert len(paths) == 4 and all(p.exists() for p in paths)
    # an interrupted run (snapshots in the checkpointed carry) resumes to the same numbers
    pipeline.execute(cfg, tmp_path / "part", progress=False, max_chunks=1)
    resumed = pipeline.resume(tmp_path / "part", progress=False)
    with h5py.File(resumed, "r") as f:
        for k, v in final.items():
            np.testing.assert_array_equal(f[k][...], v)


@pytest.mark.parametrize("dynamics, extra", [("parallel_tempering", "swap_acceptance"),
                                             ("gradient_descent", "grad_norm"), ("metropolis", "overlap")])
def test_pspin_job_other_dynamics(tmp_path, dynamics, extra):
    text = TINY.replace('"langevin"', f'"{dynamics}"').replace("hessian = true", "hessian = false")
    if dynamics == "parallel_tempering":
        text = text.replace('dynamics = "parallel_tempering"', 'dynamics = "parallel_tempering"\nstep_size = 0.3')
        text = text.replace("step_size = 0.02\n", "")
    path = pipeline.execute(config.loads(text), tmp_path / dynamics, progress=False)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        assert extra in f and np.all(np.isfinite(f[extra][...]))
        assert np.all(np.isfinite(f["energy_per_spin_mean"][...]))
        if dynamics == "gradient_descent":  # descent lowers the energy at every record
            e = f["energy_per_spin"][...]
            assert np.all(np.diff(e, axis=-1) <= 1e-6)


@pytest.mark.parametrize(
    "line, new, message",
    [("waiting_times = [0, 50]", "waiting_times = [0, 55]", "waiting_times"),
     ("steps = 180", "steps = 185", "steps"),
     ('dynamics = "langevin"', 'dynamics = "metropolis"\nmixture = {"3" = 1.0, "x" = 2.0}', "mixture"),
     ("temperatures = [0.5, 1.0]", "temperatures = [0.0, 1.0]\ndynamics = \"metropolis\"", "T > 0")],
)
def test_pspin_config_validation(line, new, message):
    text = TINY.replace(line, new)
    if 'dynamics = "metropolis"' in new and "temperatures" in new:
        text = text.replace('dynamics = "langevin"\n', "")
    with pytest.raises(ConfigError, match=message):
        config.loads(text)


def test_pspin_dense_that_cannot_fit_is_refused():
    text = TINY.replace("n = 16", "n = 20000").replace("hessian = true", "hessian = false")
    with pytest.raises(ConfigError, match="hashed"):
        job_kinds()["pspin"](config.loads(text))
