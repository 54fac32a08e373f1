"""Sharded runs: every job kind on 4 CPU devices gives the datasets of the 1-device run (and a lattice split in row
slabs over 4 devices those of the unsplit lattice); the mesh is recorded; a run checkpointed on 4 devices resumes on
1; batches that do not split evenly are refused with the figures."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from runs import config, pipeline, sharding
from runs.config import ConfigError
from tests.devices import run_on_cpu_devices
from tests.runs import sharded_worker

# Every dataset is bitwise, the networks' losses included: XLA:CPU rounds a fused log(Σ exp) or mean differently by
# how many networks share one program (test_fused_reductions_round_by_shape), so the train job trains each device's
# networks in vmapped groups of a fixed size (runs/jobs/train.py, NETWORKS_PER_PROGRAM) whatever the device count.
# The tiny config uses sgd; adam on 1, 2 and 4 devices is tests/runs/test_train_meshes.py (it needs XLA's CSE pass off,
# runs/jobs/train.py explains why).


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """One fresh interpreter with 4 CPU devices runs every tiny config on 1 and on 4 devices."""
    return run_on_cpu_devices(["-m", "tests.runs.sharded_worker"], tmp_path_factory.mktemp("sharded") / "report.json",
                              timeout=900)


@pytest.mark.parametrize("kind", list(sharded_worker.TINY))
def test_four_devices_give_the_one_device_datasets(sharded, kind):
    report = sharded[kind]
    assert not report["differences"], f"{kind}: datasets differ between 1 and 4 devices: {report['differences']}"
    mesh = report["mesh"]
    assert mesh["global_devices"] == 4 and mesh["process_count"] == 1
    if kind in ("rem", "funnel"):  # exact enumeration: no batch of chains in the state, one device computes
        assert mesh["batch_shape"] == [] and mesh["devices_used"] == 1
    elif kind in ("ising_split", "compare"):  # rows of one lattice / units of work spread over every device
        axis = "rows" if kind == "ising_split" else "units"
        assert mesh["axis_names"] == [axis] and mesh["axis_sizes"] == [4] and mesh["devices_used"] == 4
    else:
        assert mesh["devices_used"] == 4 and int(np.prod(mesh["axis_sizes"])) == 4
        assert all(b % d == 0 for b, d in zip(mesh["batch_shape"], mesh["axis_sizes"], strict=True))


@pytest.mark.parametrize("kind", sharded_worker.RESUME_ACROSS_MESHES)
def test_checkpoint_from_four_devices_resumes_on_one(sharded, kind):
    diff = sharded[kind]["resumed_differences"]
    assert not diff, diff


def test_fused_reductions_round_by_shape():
    """Why the train job trains networks in fixed-size groups (runs/jobs/train.py): the same rows of log Σ exp,
    computed in one jitted call with 4 rows' worth of networks or with 1, round differently on XLA:CPU (exp alone and
    Σ alone do not)."""
    x = 3.0 * jax.random.normal(jax.random.key(1), (4, 1437, 10))

    def by_blocks(fn):
        f = jax.jit(fn)
        return np.asarray(f(x)), np.concatenate([np.asarray(f(x[i:i + 1])) for i in range(4)])

    for fn in (jnp_exp, jnp_sum):
        whole, blocks = by_blocks(fn)
        np.testing.assert_array_equal(whole, blocks)
    whole, blocks = by_blocks(jnp_logsumexp)
    assert np.any(whole != blocks)  # if XLA stops doing this, the fixed-size groups are no longer needed
    np.testing.assert_array_max_ulp(whole, blocks, maxulp=4)


def jnp_exp(a):
    return jax.numpy.exp(a)


def jnp_sum(a):
    return jax.numpy.sum(a, axis=-1)


def jnp_logsumexp(a):
    return jax.numpy.log(jax.numpy.sum(jax.numpy.exp(a), axis=-1))


def test_partition_splits_batch_axes_in_order():
    assert sharding.partition((2, 2), 4) == (2, 2)
    assert sharding.partition((1, 9, 4), 4) == (1, 1, 4)
    assert sharding.partition((6, 4), 8) == (2, 4)
    assert sharding.partition((3,), 1) == (1,)


def test_a_batch_that_does_not_split_is_refused_with_the_counts_that_would():
    with pytest.raises(ConfigError, match=r"run.devices: the batch 1 × 9 cannot be split evenly over 4 devices"
                                          r".*\(1, 3, 9\)"):
        sharding.partition((1, 9), 4)


def test_device_count_is_validated():
    with pytest.raises(ConfigError, match=r"run.devices = 2: only 1 device\(s\) are available"):
        sharding.select_devices(2)
    with pytest.raises(ConfigError, match=r"run.devices = 0: must be"):
        sharding.select_devices(0)
    with pytest.raises(ConfigError, match=r"run.devices = 'some'"):
        config.loads('[run]\nkind = "rem"\ndevices = "some"\n')


def test_mesh_is_recorded_and_dry_run_shows_it(tmp_path, capsys):
    text = sharded_worker.TINY["ising"]
    path = pipeline.execute(config.loads(text), tmp_path / "run", progress=False)
    import h5py

    with h5py.File(path, "r") as f:
        mesh = json.loads(f.attrs["mesh"])
    assert mesh == {"axis_names": ["batch0", "batch1"], "axis_sizes": [1, 1], "batch_shape": [2, 2],
                    "devices_requested": 1, "devices_used": 1, "platform": "cpu", "device_kind": "cpu",
                    "process_count": 1, "process_index": 0, "local_devices": 1, "global_devices": 1}
    plan = pipeline.format_plan(pipeline.plan(config.loads(text)), "tiny.toml")
    assert "mesh:      batch0 1 × batch1 1 over the batch 2 × 2" in plan and "per device" in plan


def test_a_job_over_the_memory_of_its_devices_is_refused_with_the_figures():
    gib = 2**30
    pipeline.check_memory("ising", 60 * gib, 4, "gpu", 80 * gib)  # 15 GiB per device: fits
    with pytest.raises(ConfigError, match=r"ising: the job needs about 75.00 GiB per device on 4 gpu device\(s\) "
                                          r"\(300.00 GiB in all\), more than 90% of the 80.00 GiB one device holds; "
                                          r"use more devices \(run.devices\)"):
        pipeline.check_memory("ising", 300 * gib, 4, "gpu", 80 * gib)
    # CPU devices share the host's memory: the whole job counts, however many devices it is split over
    with pytest.raises(ConfigError, match=r"more than 80% of the 10.00 GiB available"):
        pipeline.check_memory("ising", 9 * gib, 4, "cpu", 10 * gib)
    pipeline.check_memory("ising", 300 * gib, 4, "tpu", 0)  # the runtime does not say: nothing to check


def test_split_rows_is_validated_with_the_device_counts_that_work(monkeypatch):
    base = sharded_worker.TINY["ising_split"]
    with pytest.raises(ConfigError, match=r"ising.split = 'rows': .*kernel = 'wolff' has no split version"):
        config.loads(base.replace('split = "rows"', 'split = "rows"\nkernel = "wolff"'))
    cfg = config.loads(base.replace("shape = [16, 16]", "shape = [6, 16]"))
    assert pipeline.plan(cfg)["mesh"] == {"rows": 1}  # 6 rows on 1 device: fine
    # on 4 devices 6 rows do not split into slabs of an even number of rows
    monkeypatch.setattr(sharding, "select_devices", lambda devices: jax.devices()[:1] * 4)
    with pytest.raises(ConfigError, match=r"ising.shape = \[6, 16\]: split = 'rows' over 4 device\(s\) needs the "
                                          r"rows divisible by 2 × 4; device counts that split 6 rows: \[1, 3\]"):
        pipeline.plan(cfg)
