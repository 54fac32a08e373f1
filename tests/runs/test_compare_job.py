"""The ``compare`` job end to end at toy size: every panel's datasets with their dims, report.md with one row per claim,
a killed and resumed run bitwise identical to an uninterrupted one, bad input refused with exit status 2."""
import h5py
import numpy as np
import pytest

from bridges import compare as cmp
from runs import cli, config, pipeline, plots

# Far smaller than compare_small: one width, one size, one depth, a few steps (8 units of work, 3 chunks).
TINY = """
[run]
kind = "compare"
seed = 1

[compare]
widths = [8]
hidden_layers = 1
seeds = 4
steps = 8
stages = 2
hessian_probes = 2
hessian_steps = 4
hessian_examples = 32
sizes = [8]
samples = 2
replicas = 4
descent_steps = 8
funnel_datasets = ["digits", "shuffled"]
funnel_pairs = [[0, 1], [3, 8]]
funnel_shape = [2, 3]
regularization_width = 8
learning_rates = [1e-3, 1e-2]
weight_decays = [0.0]
regularization_seeds = 2
regularization_steps = 8
temperatures = [0.5, 1.0]
langevin_size = 8
langevin_steps = 20
blocks = ["plain"]
depths = [2]
depth_width = 8
depth_seeds = 2
depth_steps = 8
information_datasets = ["digits", "markov"]
sequence_length = 64
num_sequences = 8
lags = 4
"""

# The datasets each panel writes (a selection: the shared-schema ones and those the claims read).
PANEL_DATASETS = {
    "minima": ["minimum_energy", "minimum_energy_raw", "minimum_spread", "minimum_spread_stderr", "spread_exponent",
               "size_value", "glass_threshold_normalized"],
    "index": ["stage_energy", "hessian_index", "hessian_index_stderr", "theory_hessian_index", "stage_step",
              "index_energy_correlation"],
    "overlaps": ["overlap", "overlap_distribution", "q_bin", "overlap_mean", "overlap_mean_stderr"],
    "funnel": ["best_overlap", "funnel_correlation", "frustration_gap", "frustration_gap_stderr",
               "perceptron_tf_over_tg", "perceptron_gap_ratio", "perceptron_energy_overlap_mean",
               "perceptron_tf_over_tg_unfrustrated", "class_pair"],
    "regularization": ["regularization_train_loss", "regularization_alpha", "regularization_diverged",
                       "temperature_energy", "control_value", "glass_temperature_energy_mean",
                       "theory_temperature_energy", "loss_slope_learning_rate", "glass_energy_slope"],
    "chaos": ["depth_train_accuracy", "depth_param_count", "init_weight_std", "init_xi_c", "failure_depth",
              "network_distance", "network_test_accuracy"],
    "information": ["pixel_mi", "pixel_mi_stderr", "sequence_mi", "decay_winner", "decay_delta_aic"],
}


def _datasets(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in f if isinstance(f[k], h5py.Dataset)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    cfg = config.loads(TINY)
    full = pipeline.execute(cfg, base / "full", progress=False)
    plots.plot_run(base / "full")
    pipeline.execute(cfg, base / "part", progress=False, max_chunks=1)  # killed after its first chunk
    with h5py.File(base / "part" / "results.h5", "r") as f:
        assert f.attrs["status"] == "running" and f.attrs["steps_done"] == 3
    resumed = pipeline.resume(base / "part", progress=False)
    return base, full, resumed


def test_every_panel_writes_its_datasets_with_dims_and_the_report_has_one_row_per_claim(runs):
    base, full, _ = runs
    with h5py.File(full, "r") as f:
        assert f.attrs["status"] == "complete"
        assert f["unit_value"].shape == (8,) and list(f["time"][...]) == list(range(1, 9))
        for panel, names in PANEL_DATASETS.items():
            for name in names:
                assert name in f, (panel, name)
                dims = list(f[name].attrs["dims"])
                assert len(dims) == f[name].ndim, (panel, name, dims)
        for name, ds in f.items():  # every dataset, not only the listed ones, names its axes
            if isinstance(ds, h5py.Dataset):
                assert len(ds.attrs["dims"]) == ds.ndim, name
        assert [s.decode() for s in f["system"][...]] == ["network", "glass"]
        assert f["minimum_energy"].attrs["dims"].tolist() == ["system", "size", "sample"]
    figures = sorted(p.name for p in (base / "full" / "figures").glob("*.png"))
    assert figures == sorted([f"{p}.png" for p in PANEL_DATASETS] + ["time_series.png"])
    report = (base / "full" / "report.md").read_text()
    lines = report.strip().splitlines()
    header = max(i for i, line in enumerate(lines) if line.startswith("| claim |"))
    rows = lines[header + 2:]
    assert len(rows) == len(cmp.CLAIMS) and all(r.startswith("| ") and r.count(" | ") == 4 for r in rows)
    for (_, text), row in zip(cmp.CLAIMS, rows, strict=True):
        assert row.startswith(f"| {text} |")
        assert row.rstrip(" |").rsplit("| ", 1)[-1] in (cmp.SUPPORTED, cmp.NOT_SUPPORTED, cmp.INCONCLUSIVE,
                                                         cmp.NOT_MEASURED)
    assert "layers act as RG steps" in rows[2] and rows[2].endswith("| not measured |")


def test_a_killed_run_resumed_is_bitwise_identical(runs):
    _, full, resumed = runs
    a, b = _datasets(full), _datasets(resumed)
    assert sorted(a) == sorted(b)
    for name in a:
        if a[name].dtype.kind == "f":
            assert np.array_equal(a[name], b[name], equal_nan=True), name
        else:
            assert np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("edit, key", [
    ('widths = [8]', 'panels = ["minima", "rg"]\nwidths = [8]'),
    ('widths = [8]', 'widths = [16, 8]'),
    ('sizes = [8]', 'sizes = [8, 8]'),
    ('funnel_datasets = ["digits", "shuffled"]', 'funnel_datasets = ["digits", "mnist"]'),
    ('information_datasets = ["digits", "markov"]', 'information_datasets = ["text"]'),
])
def test_bad_input_exits_2_naming_the_key(tmp_path, capsys, edit, key):
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace(edit, key))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    name = key.split(" = ")[0].splitlines()[0]
    assert f"compare.{name} = " in err
    assert not (tmp_path / "out").exists()  # nothing that looks like a run is left
    if "rg" in key:
        assert "rbm_rg" in err
