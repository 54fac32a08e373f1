"""nets.train refuses data the network cannot train on, at the boundary, naming the array."""
import jax
import numpy as np
import pytest

from nets import data, mlp, train


def _data(n_features=6, labels=3, bad=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, n_features)).astype(np.float32)
    y = rng.integers(0, labels, size=40).astype(np.int32)
    xt, yt = x[:10].copy(), y[:10].copy()
    if bad == "nan":
        x[3, 2] = np.nan
    elif bad == "inf_test":
        xt[1, 0] = np.inf
    elif bad == "label":
        y[5] = labels + 2
    elif bad == "negative_label":
        yt[0] = -1
    return data.Labelled(x, y), data.Labelled(xt, yt)


NET = mlp.init(jax.random.key(0), (6, 8, 3))


@pytest.mark.parametrize("bad,message", [
    ("nan", r"the training inputs \(train_x\) hold 1 non-finite value\(s\) \(NaN or inf\), the first at index "
            r"\(3, 2\)"),
    ("inf_test", r"the test inputs \(test_x\) hold 1 non-finite"),
    ("label", r"the training labels \(train_y\) hold label 5 outside \[0, 3\)"),
    ("negative_label", r"the test labels \(test_y\) hold label -1 outside \[0, 3\)"),
])
def test_fit_refuses_bad_data(bad, message):
    with pytest.raises(ValueError, match=message):
        train.fit(jax.random.key(1), NET, _data(bad=bad), num_steps=10, eval_every=10)


def test_fit_many_refuses_bad_data_and_width_mismatch():
    nets = jax.vmap(lambda k: mlp.init(k, (6, 8, 3)))(jax.random.split(jax.random.key(0), 2))
    with pytest.raises(ValueError, match="non-finite"):
        train.fit_many(jax.random.split(jax.random.key(1), 2), nets, _data(bad="nan"), num_steps=10, eval_every=10)
    with pytest.raises(ValueError, match="have 5 features per example but the network's input width is 6"):
        train.fit_many(jax.random.split(jax.random.key(1), 2), nets, _data(n_features=5), num_steps=10,
                       eval_every=10)


def test_input_width_mismatch_names_both_widths():
    with pytest.raises(ValueError, match="have 64 features per example but the network's input width is 6"):
        train.fit(jax.random.key(1), NET, data.digits(), num_steps=10, eval_every=10)


def test_good_data_still_trains():
    net, hist = train.fit(jax.random.key(1), NET, _data(), num_steps=20, eval_every=10)
    assert np.all(np.isfinite(hist.train_loss))
