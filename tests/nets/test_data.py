"""nets.data: the digits split, the deformation generator, teacher–student, Markov chains and PCFGs."""
import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nets import data, mlp, train
from tests.stats import assert_within, chi2_pvalue


def test_digits_split_is_fixed_stratified_and_scaled():
    (xtr, ytr), (xte, yte) = data.digits()
    assert xtr.shape == (1352, 64) and xte.shape == (445, 64)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int32
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0 and xtr.max() == 1.0
    # every class is in both halves in the ratio 3:1 (within one image, from the every-4th rule)
    ctr, cte = np.bincount(ytr, minlength=10), np.bincount(yte, minlength=10)
    assert np.all(np.abs(ctr - 3 * cte) <= 3)
    again = data.digits()
    np.testing.assert_array_equal(again.test.x, xte)


def test_digits_data_dir_override_and_missing_file(tmp_path, monkeypatch):
    shutil.copy(data.data_dir() / "optdigits.csv.gz", tmp_path / "optdigits.csv.gz")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.data_dir() == tmp_path
    np.testing.assert_array_equal(data.digits().train.y, data.digits(data_dir=tmp_path).train.y)
    with pytest.raises(FileNotFoundError, match="data_dir"):
        data.digits(data_dir=tmp_path / "nowhere")


def test_infinite_digits_is_deterministic_jittable_and_fresh():
    f = jax.jit(data.infinite_digits, static_argnums=1)
    x1, y1 = f(jax.random.key(3), 64)
    x2, y2 = f(jax.random.key(3), 64)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = data.infinite_digits(jax.random.key(3), 64)  # eager = jitted
    np.testing.assert_allclose(x3, x1, atol=1e-6)
    x4, _ = f(jax.random.key(4), 64)
    assert not np.allclose(x4, x1)
    assert x1.shape == (64, 64) and x1.dtype == jnp.float32 and y1.dtype == jnp.int32
    assert float(x1.min()) >= 0.0 and float(x1.max()) <= 1.0


def test_deformation_moves_pixels_but_preserves_the_label():
    (xtr, ytr), (xte, yte) = data.digits()
    deformed = data.deform(jax.random.key(5), xte)
    change = float(jnp.mean(jnp.abs(deformed - xte)))
    assert change > 0.05, f"deformation barely changes the images (mean |Δ| = {change:.3f})"
    # A network trained on clean digits only recognizes the deformed test digits far above chance (10%).
    net = mlp.init(jax.random.key(0), (64, 64, 10))
    net, hist = train.fit(jax.random.key(1), net, data.digits(), learning_rate=3e-3, num_steps=600, eval_every=600)
    clean = float(hist.test_accuracy[-1])
    acc = float(jnp.mean((jnp.argmax(mlp.apply(net, deformed), axis=1) == yte).astype(jnp.float32)))
    assert clean > 0.9
    assert acc > 0.6, f"accuracy on deformed digits {acc:.3f} (clean {clean:.3f})"


def test_perceptron_teacher_labels_are_balanced_and_regression_noise_has_its_variance():
    teacher = data.make_teacher(jax.random.key(0), 30)
    x, y = data.teacher_student(jax.random.key(1), teacher, 4000)
    assert x.shape == (4000, 30) and y.dtype == jnp.int32
    # f*(-x) = -f*(x) for a bias-free odd teacher, so P(y=1) = 1/2 exactly
    assert_within(float(jnp.mean(y.astype(jnp.float32))), 0.5, 0.5 / math.sqrt(4000), what="P(y=1)")
    x2, y2 = data.teacher_student(jax.random.key(1), teacher, 4000)
    np.testing.assert_array_equal(y, y2)
    reg = data.make_teacher(jax.random.key(2), 10, hidden=(20,), task="regression")
    xr, clean = data.teacher_student(jax.random.key(3), reg, 5000)
    _, noisy = data.teacher_student(jax.random.key(3), reg, 5000, noise_std=0.5)
    r = np.asarray(noisy - clean, np.float64)
    assert_within(r.var(), 0.25, 0.25 * math.sqrt(2 / r.size), what="noise variance")
    three = data.make_teacher(jax.random.key(4), 10, num_classes=3)
    _, y3 = data.teacher_student(jax.random.key(5), three, 300)
    assert set(np.unique(y3)) <= {0, 1, 2}


def test_markov_chain_transitions_match_the_matrix():
    p = data.random_transition(jax.random.key(0), 4)
    np.testing.assert_allclose(jnp.sum(p, axis=1), 1.0, atol=1e-5)
    pi = data.stationary_distribution(p)
    assert np.all(np.isfinite(pi)) and abs(float(jnp.sum(pi)) - 1.0) < 1e-5
    np.testing.assert_allclose(pi @ p, pi, atol=1e-5)
    seqs = np.asarray(data.markov_chain(jax.random.key(1), p, 200, num_sequences=50))
    assert seqs.shape == (50, 200)
    a, b = seqs[:, :-1].ravel(), seqs[:, 1:].ravel()
    pvals = []
    for s in range(4):
        counts = np.bincount(b[a == s], minlength=4)
        pvals.append(chi2_pvalue(counts, np.asarray(p[s], np.float64)))
    assert min(pvals) > 1e-3, pvals
    # x_0 is drawn from the stationary law
    assert chi2_pvalue(np.bincount(seqs[:, 0], minlength=4), np.asarray(pi, np.float64)) > 1e-3


def test_pcfg_children_follow_the_rules():
    rules = jnp.array([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]],
                       [[0.05, 0.15, 0.8], [0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]], jnp.float32)
    random_rules = data.random_grammar(jax.random.key(0), 4, branching=2)
    assert random_rules.shape == (2, 4, 4)
    np.testing.assert_allclose(jnp.sum(random_rules, axis=-1), 1.0, atol=1e-5)
    s = np.asarray(data.pcfg(jax.random.key(1), rules, 1, num_sequences=6000, root=jnp.array([1.0, 0.0, 0.0])))
    assert s.shape == (6000, 2)
    for c in range(2):  # root symbol 0: child c ~ rules[c, 0]
        assert chi2_pvalue(np.bincount(s[:, c], minlength=3), np.asarray(rules[c, 0], np.float64)) > 1e-3
    deep = data.pcfg(jax.random.key(2), rules, 3, num_sequences=2)
    assert deep.shape == (2, 8)
    np.testing.assert_array_equal(deep, data.pcfg(jax.random.key(2), rules, 3, num_sequences=2))


def test_bilinear_reader_equals_map_coordinates():
    imgs = jax.random.uniform(jax.random.key(0), (3, 8, 8))
    rows = jax.random.uniform(jax.random.key(1), (3, 8, 8), minval=-1.5, maxval=8.5)
    cols = jax.random.uniform(jax.random.key(2), (3, 8, 8), minval=-1.5, maxval=8.5)
    ref = jax.vmap(lambda i, r, c: jax.scipy.ndimage.map_coordinates(i, [r, c], order=1, mode="constant"))(
        imgs, rows, cols)
    np.testing.assert_allclose(data._bilinear(imgs, rows, cols), ref, atol=1e-6)


def test_ising_configurations_have_the_yang_magnetization_below_tc_and_none_above():
    from physics import theory

    temps = (1.6, 5.0)
    x, y = data.ising_configurations(jax.random.key(0), (16, 16), temps, 64, burn_in=200)
    assert x.shape == (128, 256) and y.shape == (128,) and set(np.unique(np.asarray(x))) == {-1.0, 1.0}
    m = np.asarray(jnp.mean(x, axis=1), np.float64)
    cold, hot = np.abs(m[np.asarray(y) == 0]), m[np.asarray(y) == 1]
    # deep in the ordered phase a 16² torus has |m| = Yang's m∞ up to exponentially small corrections
    assert_within(cold.mean(), theory.yang_magnetization(1.6), cold.std(ddof=1) / 8, what="<|m|>(T=1.6)")
    assert_within(hot.mean(), 0.0, hot.std(ddof=1) / 8, what="<m>(T=5)")
    # the random global sign: both ordered states appear
    assert (m[np.asarray(y) == 0] > 0).any() and (m[np.asarray(y) == 0] < 0).any()
