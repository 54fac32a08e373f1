"""The ``train`` job with Adam gives bitwise the same datasets on 1, 2 and 4 CPU devices.

Adam's update divides by the bias corrections 1 - β^t; how XLA's algebraic simplifier rewrites those divisions
depends on whether common-subexpression elimination has merged them first, which only the SPMD partitioning of a
multi-device program does. The job compiles its training program with CSE off (runs/jobs/train.py,
``_SAME_PROGRAM_ON_EVERY_MESH``) so every mesh gets the same per-device program; sgd and the other optimizers are
covered by test_sharding.py."""
from __future__ import annotations

import pytest

from tests.devices import run_on_cpu_devices

WORKER = ["-m", "tests.runs.adam_mesh_worker"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One fresh interpreter with 4 CPU devices runs the Adam config of ``adam_mesh_worker`` on 1, 2 and 4 devices."""
    return run_on_cpu_devices(WORKER, tmp_path_factory.mktemp("adam_meshes") / "report.json")


@pytest.mark.parametrize("devices", ["2", "4"])
def test_adam_on_several_devices_gives_the_one_device_datasets(report, devices):
    assert report["differences"][devices] == {}, report["differences"][devices]
    mesh = report["meshes"][devices]
    assert mesh["devices_used"] == int(devices) and mesh["axis_sizes"] == [int(devices)]


def test_the_compared_runs_trained(report):
    """Equal datasets mean something only if the networks moved: ``log 10`` ≈ 2.303 is the loss of a uniform guess
    over the 10 digits; after 20 Adam steps the mean training loss is below its first record."""
    first, last = report["loss_first_last"]
    assert report["meshes"]["1"]["devices_used"] == 1
    assert 0.0 < last < first < 2.5, (first, last)


@pytest.mark.slow
def test_with_xla_default_passes_one_and_two_devices_differ(tmp_path):
    """Control: the same comparison, the training program compiled with XLA's default passes, finds the ~1 ulp
    differences (losses, gradient and weight norms) the job's compiler options remove. If XLA stops compiling the
    two programs differently, this fails and the option may be dropped."""
    control = run_on_cpu_devices([*WORKER, "--control"], tmp_path / "control.json")["control"]
    assert "train_loss" in control and "weight_norm" in control, control
    # about one float32 ulp of values of order 1 (2^-23 ≈ 1.2e-7), a few after 20 steps: nothing like a bug
    assert all(v is not None and 0.0 < v < 1e-5 for v in control.values()), control
