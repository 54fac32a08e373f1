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
    with pytest.raises(config.ConfigError, match="snapshot_steps"):
        config.loads(TINY + "snapshot_steps = [75]\n")
    with pytest.raises(config.ConfigError, match="optimizer"):
        config.loads(TINY.replace('"sgd"', '"lbfgs"'))


SNAP = TINY.replace("widths = [8, 16]", "widths = [8]").replace("learning_rates = [0.05, 10.0]",
                                                                 "learning_rates = [0.05]") + \
    "snapshot_steps = [0, 150, 300]\n"


def test_train_job_snapshots_round_trip_and_equal_fit(tmp_path):
    """Parameter snapshots written by the job (snapshots/step_<s>) are those ``nets.train.fit`` keeps for the same
    network keys, and they rebuild the network through ``nets.mlp.unflatten``."""
    import jax

    from nets import data, mlp, train

    cfg = config.loads(SNAP)
    path = pipeline.execute(cfg, tmp_path / "snap", progress=False)
    with h5py.File(path, "r") as f:
        labels = sorted(f["snapshots"])
        snaps = {k: f["snapshots"][k]["width_8"][...] for k in labels}
        spec = f["snapshots/step_00000000/spec_width_8"][()].decode()
        final_acc = f["test_accuracy"][0, 0, 0, :, -1]
    assert labels == ["step_00000000", "step_00000150", "step_00000300"]
    init_key, run_key = jax.random.fold_in(jax.random.key(2), 0), jax.random.fold_in(jax.random.key(2), 1)
    o = cfg.job
    for s in range(o.seeds):
        k = lambda base: jax.random.fold_in(jax.random.fold_in(base, 0), s)  # noqa: E731 (width index 0)
        net = mlp.init(k(init_key), (64, 8, 8, 10), activation="linear")
        _, hist = train.fit(k(run_key), net, data.digits(), learning_rate=o.learning_rates[0],
                            optimizer="sgd", batch_size=o.batch_size, num_steps=o.steps,
                            eval_every=o.record_every, snapshot_steps=(0, 150, 300))
        for i, label in enumerate(labels):
            want = np.asarray(mlp.flatten(jax.tree_util.tree_map(lambda a: a[i], hist.snapshots))[0])
            got = snaps[label][0, 0, s]
            # equal up to float32 rounding: vmapped/jitted vs single program (the init differs by ~1 ulp already)
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=f"seed {s}, {label}")
        net_back = mlp.unflatten(mlp.from_spec(spec), snaps[labels[-1]][0, 0, s])
        acc = np.mean(np.argmax(np.asarray(mlp.apply(net_back, data.digits().test.x)), 1) == data.digits().test.y)
        assert acc == pytest.approx(final_acc[s], abs=1e-6)
        # accuracies on the 445 test digits step by 1/445 ≈ 2.2e-3: abs=2e-3 means the same count of correct digits
        assert acc == pytest.approx(hist.test_accuracy[-1], abs=2e-3)


# The default dataset — the infinite stream of deformed digits that mlp_divergence.toml trains on — at a small size.
# No `dataset` key: the job's default is what runs. lr = 1e-7 is the negative control: over 300 Adam steps the weights
# move by ≲ 3e-5, so those networks stay at their random initialization.
STREAM = """
[run]
kind = "train"
seed = 5

[train]
hidden = [32]
activation = "relu"
optimizer = "adam"
learning_rates = [3e-3, 1e-7]
weight_decays = [0.0]
seeds = 2
batch_size = 64
steps = 300
record_every = 100
eval_size = 250
min_accuracy = 0.8
"""

# A network counts as trained when it classifies more than 85% of the clean held-out digits (chance: 10%, whose
# binomial standard error over the 450 test digits is 1.4%, so 85% is ≈ 50 of those above chance). Measured (seed 5,
# 300 steps of batch 64 deformed digits): 0.939 and 0.939 at lr = 3e-3; 0.067 and 0.101 at lr = 1e-7.
TRAINED_ACCURACY = 0.85


def _trained(test_accuracy):
    """The harness: which networks classify more than TRAINED_ACCURACY of the held-out digits."""
    return np.asarray(test_accuracy) > TRAINED_ACCURACY


def test_train_job_on_the_default_infinite_digits_stream(tmp_path):
    """The default dataset through the job: every record present and finite, the training accuracy measured on the
    fixed evaluation batch of the stream (multiples of 1/eval_size, not of 1/1347 as on the finite split), and
    networks trained on deformed digits only classifying the clean test digits far above chance; negative
    control: the same harness rejects the networks at lr = 1e-7 (left at their initialization, near chance)."""
    from nets import data

    cfg = config.loads(STREAM)
    assert cfg.job.dataset == "infinite_digits"
    a, attrs = _datasets(pipeline.execute(cfg, tmp_path / "stream", progress=False))
    assert attrs["status"] == "complete"
    assert list(a["time"]) == [100, 200, 300]
    for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "weight_norm", "grad_norm",
                 "batch_loss"):
        assert a[name].shape == (1, 2, 1, 2, 3), name  # width, lr, wd, seed, time
        assert np.all(np.isfinite(a[name])), name
    assert not np.any(a["diverged"]) and np.all(a["diverged_step"] == -1)
    # float32 accuracies: count·(1/250) within rounding
    counts = a["train_accuracy"] * cfg.job.eval_size
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    assert np.all((counts[:, 0] > 0) & (counts[:, 0] < cfg.job.eval_size))  # not 0 or 1: those fit both splits
    test_counts = a["test_accuracy"] * len(data.digits().test.y)
    np.testing.assert_allclose(test_counts, np.round(test_counts), atol=1e-3)
    final = a["final_test_accuracy"][0, :, 0]  # (lr, seed)
    assert np.all(_trained(final[0])), final
    assert np.all(a["train_loss"][:, 0, ..., -1] < a["train_loss"][:, 0, ..., 0])  # the fit improves on the stream
    # negative control: the same harness on the networks left at their initialization
    assert not np.any(_trained(final[1])), final
    np.testing.assert_array_equal(a["network_outcome"][0, :, 0], [[0, 0], [2, 2]])  # stable / under-trained
