"""nets.train: accuracy on digits, vmapped = sequential, chunked = uninterrupted, divergence, HDF5 snapshots."""
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nets import data, io, mlp, train


@pytest.fixture(scope="module")
def digits():
    return data.digits()


def _leaves_close(a, b, **kw):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def test_small_mlp_reaches_95_percent_on_digits(digits):
    net = mlp.init(jax.random.key(0), (64, 64, 10))
    net, hist = train.fit(jax.random.key(1), net, digits, learning_rate=3e-3, num_steps=1000, eval_every=250)
    assert hist.test_accuracy.shape == (4,) and list(hist.step) == [250, 500, 750, 1000]
    assert hist.test_accuracy[-1] >= 0.95, hist.test_accuracy
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.diverged_step == -1 and train.outcome(hist) == "stable"
    # the returned network is the one the last record measured
    logits = mlp.apply(net, digits.test.x)
    acc = float(jnp.mean((jnp.argmax(logits, 1) == digits.test.y).astype(jnp.float32)))
    assert acc == pytest.approx(float(hist.test_accuracy[-1]), abs=1e-6)


def test_vmapped_equals_sequential_across_seeds_and_hyperparameters(digits):
    n = 4
    keys = jax.random.split(jax.random.key(0), n)
    nets = jax.vmap(lambda k: mlp.init(k, (64, 24, 10)))(jax.random.split(jax.random.key(1), n))
    lr = jnp.array([1e-3, 3e-3, 1e-2, 3e-2], jnp.float32)
    wd = jnp.array([0.0, 1e-4, 1e-3, 1e-2], jnp.float32)
    kw = dict(num_steps=120, eval_every=40, batch_size=16, optimizer="rmsprop", dropout=0.1, label_noise=0.1,
              clip_norm=5.0, schedule="cosine", warmup_steps=20)
    many_p, many = train.fit_many(keys, nets, digits, learning_rate=lr, weight_decay=wd, **kw)
    assert many.test_accuracy.shape == (n, 3)
    np.testing.assert_allclose(many.temperature, lr / 16)
    for i in range(n):
        net_i = jax.tree_util.tree_map(lambda a: a[i], nets)
        p, h = train.fit(keys[i], net_i, digits, learning_rate=float(lr[i]), weight_decay=float(wd[i]), **kw)
        for name in train.RECORDS:
            np.testing.assert_allclose(h[name], many[name][i], rtol=2e-5, atol=2e-6, err_msg=name)
        _leaves_close(p, jax.tree_util.tree_map(lambda a: a[i], many_p), rtol=2e-5, atol=2e-6)
    # different hyperparameters really gave different runs
    assert not np.allclose(many.train_loss[0], many.train_loss[3])


def test_chunked_run_equals_uninterrupted_run(digits):
    cfg = train.TrainConfig(optimizer="momentum", num_steps=120, eval_every=30, batch_size=8, dropout=0.2,
                            snapshot_steps=(30, 120))
    tr = train.Trainer(digits, cfg)
    key = jax.random.key(3)
    arrays = tr.arrays(key)
    net = mlp.init(jax.random.key(4), (64, 16, 10))
    run = jax.jit(tr.run, static_argnums=4)
    whole, rec = run(key, tr.init(net, 0.05, 1e-4), arrays, 0, 4)
    s1, r1 = run(key, tr.init(net, 0.05, 1e-4), arrays, 0, 2)
    s2, r2 = run(key, s1, arrays, 60, 2)
    for name in train.RECORDS:
        np.testing.assert_array_equal(np.concatenate([r1[name], r2[name]]), rec[name], err_msg=name)
    _leaves_close(s2, whole, rtol=0, atol=0)


@pytest.mark.slow
def test_infinite_digits_stream_trains_and_vmaps(digits):
    sample = lambda k, b: data.infinite_digits(k, b, source=digits.train)  # noqa: E731
    stream = train.Stream(sample=sample, test=digits.test, eval_size=256)
    keys = jax.random.split(jax.random.key(0), 2)
    nets = jax.vmap(lambda k: mlp.init(k, (64, 64, 10)))(keys)
    kw = dict(num_steps=300, eval_every=150, batch_size=32)
    many_p, many = train.fit_many(keys, nets, stream, learning_rate=3e-3, **kw)
    p, h = train.fit(keys[1], jax.tree_util.tree_map(lambda a: a[1], nets), stream, learning_rate=3e-3, **kw)
    np.testing.assert_allclose(h.test_accuracy, many.test_accuracy[1], atol=1e-6)
    np.testing.assert_allclose(h.train_loss, many.train_loss[1], rtol=2e-5)
    # trained only on deformed digits, it recognizes the clean test digits: the deformations keep the labels
    assert np.all(many.test_accuracy[:, -1] > 0.85), many.test_accuracy


def test_divergence_detector_flags_unstable_runs_and_not_stable_ones(digits):
    net = mlp.init(jax.random.key(0), (64, 64, 64, 10))
    kw = dict(num_steps=800, eval_every=50, batch_size=32, optimizer="momentum")
    # stable: a moderate learning rate
    _, stable = train.fit(jax.random.key(1), net, digits, learning_rate=0.02, **kw)
    assert stable.diverged_step == -1 and stable.divergence_reason == train.NOT_DIVERGED
    assert stable.test_accuracy[-1] > 0.9
    # collapse: the learning rate ramps up to 1.0; accuracy peaks during the warmup, then falls (finite loss)
    _, collapse = train.fit(jax.random.key(1), net, digits, learning_rate=1.0, warmup_steps=600, **kw)
    assert collapse.divergence_reason == train.COLLAPSE, collapse.train_accuracy
    assert collapse.train_accuracy.max() > 0.8 and collapse.train_accuracy[-1] < 0.5
    step = int(collapse.diverged_step)
    at = list(collapse.step).index(step + 1)
    assert collapse.train_accuracy[at] < collapse.train_accuracy[:at].max() - 0.3
    assert train.outcome(collapse) == "diverged"
    # ... but only after the warmup: the detector is not armed while the learning rate still ramps up, so the same
    # fall seen entirely within a 600-step warmup is not (yet) a collapse
    assert step + 1 > 600 and collapse.train_accuracy[:12].max() - collapse.train_accuracy[11] > 0.3
    _, ramp = train.fit(jax.random.key(1), net, digits, learning_rate=1.0, warmup_steps=600, **dict(kw, num_steps=600))
    assert ramp.diverged_step == -1 and ramp.train_accuracy.max() - ramp.train_accuracy[-1] > 0.3
    # non-finite: plain SGD at a huge learning rate on a deep linear network overflows within a few steps
    linear = mlp.init(jax.random.key(0), (64, 64, 64, 10), activation="linear")
    kw_nan = dict(kw, optimizer="sgd", num_steps=100)
    p, nan = train.fit(jax.random.key(1), linear, digits, learning_rate=10.0, **kw_nan)
    assert nan.divergence_reason == train.NONFINITE and 0 <= nan.diverged_step < 50
    assert not np.isfinite(nan.train_loss[-1])
    # ... and with stop_on_divergence the parameters stay the last finite ones
    p, stop = train.fit(jax.random.key(1), linear, digits, learning_rate=10.0, stop_on_divergence=True, **kw_nan)
    assert stop.diverged_step == nan.diverged_step
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(p))


def test_snapshots_round_trip_through_hdf5(digits, tmp_path):
    net = mlp.init(jax.random.key(0), (64, 16, 16, 10), block="fractal", columns=2)
    final, hist = train.fit(jax.random.key(1), net, digits, learning_rate=1e-2, num_steps=60, eval_every=20,
                            snapshot_steps=(0, 40, 60))
    _leaves_close(jax.tree_util.tree_map(lambda s: s[0], hist.snapshots), net, rtol=0, atol=0)
    _leaves_close(jax.tree_util.tree_map(lambda s: s[2], hist.snapshots), final, rtol=0, atol=0)
    path = tmp_path / "h.h5"
    with h5py.File(path, "w") as f:
        io.save_history(f.create_group("run"), hist)
        io.save_params(f.create_group("final"), final)
    with h5py.File(path, "r") as f:
        back = io.load_history(f["run"])
        net_back = io.load_params(f["final"])
        net_tmpl = io.load_params(f["final"], template=net)
    assert back.snapshot_steps == (0, 40, 60)
    for name in (*train.RECORDS, "diverged_step", "divergence_reason", "temperature"):
        np.testing.assert_array_equal(back[name], hist[name], err_msg=name)
    _leaves_close(back.snapshots, hist.snapshots, rtol=0, atol=0)
    assert jax.tree_util.tree_structure(net_back) == jax.tree_util.tree_structure(final)
    _leaves_close(net_back, final, rtol=0, atol=0)
    _leaves_close(net_tmpl, final, rtol=0, atol=0)


@pytest.mark.parametrize(
    "options, word",
    [
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(schedule="exp"), "schedule"),
        (dict(num_steps=150, eval_every=100), "num_steps"),
        (dict(dropout=1.0), "dropout"),
        (dict(decay=1.0), "decay"),
        (dict(eps=0.0), "eps"),
        (dict(snapshot_steps=(50,), eval_every=100), "snapshot_steps"),
    ],
)
def test_train_config_validates(options, word):
    with pytest.raises(ValueError, match=word):
        train.TrainConfig(**options)


def test_fit_validates_hyperparameters(digits):
    net = mlp.init(jax.random.key(0), (64, 4, 10))
    with pytest.raises(ValueError, match="learning_rate"):
        train.fit(jax.random.key(1), net, digits, learning_rate=0.0)
    with pytest.raises(ValueError, match="weight_decay"):
        train.fit(jax.random.key(1), net, digits, weight_decay=-1.0)


def _optimizer_steps(cfg, params, grads, learning_rate, weight_decay):
    """Apply ``make_optimizer(cfg)`` to the gradients in turn: the list of updates and the parameters they give."""
    opt = train.make_optimizer(cfg, jnp.float32(learning_rate), jnp.float32(weight_decay))
    # optax multiplies Python floats with int32 step counts; the suite's strict promotion would refuse that
    with jax.numpy_dtype_promotion("standard"):
        state = opt.init(params)
        update = jax.jit(opt.update)
        updates = []
        for g in grads:
            u, state = update(g, state, params)
            updates.append(u)
            params = jax.tree_util.tree_map(lambda p, d: p + d, params, u)
    return updates, params


def test_adam_matches_the_bias_corrected_update_written_out():
    # Kingma & Ba 2015 (arXiv:1412.6980), Algorithm 1 with optax's defaults β1 = 0.9, β2 = 0.999, ε = 1e-8, on the
    # gradient plus the weight-decay term λθ. Three steps, so the bias corrections 1 − β^t differ from step one's.
    eta, lam, b1, b2, eps = 1e-2, 0.05, 0.9, 0.999, 1e-8
    net = mlp.init(jax.random.key(0), (3, 4, 2), bias_std=0.5)
    keys = jax.random.split(jax.random.key(1), 3)
    grads = [jax.tree_util.tree_map(lambda a, k=k: jax.random.normal(k, a.shape, jnp.float32), net) for k in keys]
    updates, _ = _optimizer_steps(train.TrainConfig(optimizer="adam"), net, grads, eta, lam)

    theta = [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(net)]
    m = [np.zeros_like(a) for a in theta]
    v = [np.zeros_like(a) for a in theta]
    for t, (g, u) in enumerate(zip(grads, updates), start=1):
        for i, (gi, ui) in enumerate(zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(u))):
            gd = np.asarray(gi, np.float64) + lam * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * gd
            v[i] = b2 * v[i] + (1 - b2) * gd**2
            step = -eta * (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
            # Every Adam step is O(η). optax computes in float32, where β2 = 0.999 rounds to 0.99900001: 1 − β2^t is
            # off by 1.3e-5 relative, the step by 6.4e-6; float32 moments with cancelling gradients add a few e-6
            # (measured worst: 1.0e-5 η). Hence |Δ| ≤ 2e-5 η.
            np.testing.assert_allclose(np.asarray(ui, np.float64), step, rtol=0, atol=2e-5 * eta, err_msg=f"step {t}")
            theta[i] = theta[i] + np.asarray(ui, np.float64)


@pytest.mark.parametrize("warmup", [0, 20])
def test_linear_schedule_scales_the_learning_rate_as_written(warmup):
    # s(t) = t/W during a warm-up of W steps, then 1 − (t − W)/(T − W) down to 0 at t = T (T = num_steps);
    # with SGD on a unit gradient the update of step t (counted from 0) is exactly −η s(t).
    eta, total = 0.1, 100
    cfg = train.TrainConfig(optimizer="sgd", schedule="linear", num_steps=total, eval_every=10, warmup_steps=warmup)
    params = {"w": jnp.zeros((2,), jnp.float32)}
    grads = [{"w": jnp.ones((2,), jnp.float32)}] * 101
    updates, _ = _optimizer_steps(cfg, params, grads, eta, 0.0)

    def expected(t):
        if t < warmup:
            return t / warmup
        return max(0.0, 1.0 - (t - warmup) / (total - warmup))

    # float32 products of two O(1) numbers: a few ulps (1e-6 relative is 16 of them); at s = 0 the update is 0
    for t in (0, 1, 7, 19, 20, 21, 50, 99, 100):
        np.testing.assert_allclose(np.asarray(updates[t]["w"]), -eta * expected(t), rtol=1e-6, atol=1e-8,
                                   err_msg=f"step {t}")


def test_fit_records_the_scheduled_learning_rate(digits):
    # The record after `step` steps reports η·s(step), the rate the next step would use.
    net = mlp.init(jax.random.key(0), (64, 4, 10))
    _, hist = train.fit(jax.random.key(1), net, digits, learning_rate=0.02, optimizer="sgd", schedule="linear",
                        num_steps=40, eval_every=10, warmup_steps=10, batch_size=8)
    steps = np.asarray(hist.step, np.float64)
    expected = 0.02 * np.where(steps < 10, steps / 10, 1.0 - (steps - 10) / 30)
    np.testing.assert_allclose(hist.learning_rate, expected, rtol=1e-6, atol=1e-9)
