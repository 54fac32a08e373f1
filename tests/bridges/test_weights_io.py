"""``bridges.weights_io`` (through ``bridges.spectra``): every format round-trips, nothing is unpickled, every bad
input raises ``WeightsError`` naming the file and the tensor, run snapshots rebuild the trained networks."""
import json

import h5py
import jax
import numpy as np
import pytest

from bridges import spectra, weights_io
from bridges.spectra import WeightsError
from nets import mlp

SHAPE = (24, 16)  # every analysed tensor has this shape: one compiled program


def _tensors(seed=0):
    rng = np.random.default_rng(seed)
    return {"enc.weight": rng.standard_normal(SHAPE).astype(np.float32),
            "enc.bias": rng.standard_normal(16).astype(np.float32),
            "dec.weight": rng.standard_normal(SHAPE).astype(np.float32)}


def _expect(loaded, tensors, ordered=True):
    """``loaded``: the (name, array) pairs read back; the 2-D tensors must come back exactly (in file order, or, for
    safetensors, whose header lists names sorted, in sorted order)."""
    want = [(k, v) for k, v in tensors.items() if v.ndim == 2]
    if not ordered:
        want = sorted(want, key=lambda kv: kv[0])
    assert [k for k, _ in loaded] == [k for k, _ in want]
    for (_, got), (_, ref) in zip(loaded, want, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, ref)


def _save_safetensors(path, tensors):
    from safetensors.numpy import save_file

    save_file(tensors, str(path))


# --- round trips ------------------------------------------------------------------------------------------------
def test_npz_and_npy_round_trip(tmp_path):
    t = _tensors()
    np.savez(tmp_path / "w.npz", **t)
    _expect(list(spectra.load_weights(tmp_path / "w.npz")), t)
    assert weights_io.tensor_shapes(tmp_path / "w.npz") == {k: v.shape for k, v in t.items()}
    np.save(tmp_path / "dec.npy", t["dec.weight"])
    _expect(list(spectra.load_weights(tmp_path / "dec.npy")), {"dec": t["dec.weight"]})


def test_h5_round_trip_finds_matrices_recursively(tmp_path):
    t = _tensors()
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_dataset("model/encoder/kernel", data=t["enc.weight"])
        f.create_dataset("model/encoder/bias", data=t["enc.bias"])
        f.create_dataset("model/decoder/deep/kernel", data=t["dec.weight"].astype(np.float64))
        f.attrs["note"] = "attributes are not tensors"
    loaded = dict(spectra.load_weights(tmp_path / "w.h5"))
    assert sorted(loaded) == ["model/decoder/deep/kernel", "model/encoder/kernel"]
    np.testing.assert_array_equal(loaded["model/encoder/kernel"], t["enc.weight"])
    np.testing.assert_array_equal(loaded["model/decoder/deep/kernel"], t["dec.weight"])


def test_safetensors_round_trip_including_bfloat16(tmp_path):
    import ml_dtypes

    t = _tensors()
    _save_safetensors(tmp_path / "model.safetensors", t)
    _expect(list(spectra.load_weights(tmp_path / "model.safetensors")), t, ordered=False)
    _expect(list(spectra.load_weights(tmp_path)), t, ordered=False)  # a directory holding model.safetensors
    # NumPy has no bfloat16: those tensors are read from their byte range with ml_dtypes
    half = {"a": t["enc.weight"].astype(ml_dtypes.bfloat16), "b": t["dec.weight"]}
    _save_safetensors(tmp_path / "half.safetensors", half)
    loaded = dict(spectra.load_weights(tmp_path / "half.safetensors"))
    np.testing.assert_array_equal(loaded["a"], half["a"].astype(np.float32))
    np.testing.assert_array_equal(loaded["b"], t["dec.weight"])


def _sharded(tmp_path, t):
    names = list(t)
    _save_safetensors(tmp_path / "model-00001-of-00002.safetensors", {n: t[n] for n in names[:2]})
    _save_safetensors(tmp_path / "model-00002-of-00002.safetensors", {n: t[n] for n in names[2:]})
    index = {"metadata": {"total_size": 0},
             "weight_map": {n: f"model-0000{1 + (i >= 2)}-of-00002.safetensors" for i, n in enumerate(names)}}
    (tmp_path / weights_io.INDEX_NAME).write_text(json.dumps(index))
    return tmp_path / weights_io.INDEX_NAME


def test_sharded_safetensors_round_trip_and_missing_shard(tmp_path):
    t = _tensors()
    index = _sharded(tmp_path, t)
    _expect(list(spectra.load_weights(index)), t)
    _expect(list(spectra.load_weights(tmp_path)), t)
    assert weights_io.tensor_shapes(tmp_path) == {k: v.shape for k, v in t.items()}
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(WeightsError, match="'dec.weight'.*model-00002-of-00002.safetensors.*missing"):
        list(spectra.load_weights(index))


def test_file_by_file_analysis_equals_the_batched_mapping(tmp_path, capsys):
    t = _tensors()
    _save_safetensors(tmp_path / "model.safetensors", t)
    streamed = spectra.analyze_path(tmp_path / "model.safetensors", progress=True)
    assert "tensors" in capsys.readouterr().err  # the tqdm bar goes to stderr
    assert list(streamed["layer"]) == ["dec.weight", "enc.weight"]  # the header's (sorted) order
    batched = spectra.analyze({k: t[k] for k in ("dec.weight", "enc.weight")})
    for c in ("alpha", "xmin", "lambda_max", "entropy", "mp_sigma2", "num_spikes", "stable_rank"):
        np.testing.assert_allclose(streamed[c], batched[c], rtol=2e-5, err_msg=c)
    spectra.analyze_path(tmp_path / "model.safetensors", progress=False)
    assert capsys.readouterr().err == ""


# --- run directories -----------------------------------------------------------------------------------------------
def _write_run(run, snapshots, written):
    """A ``results.h5`` laid out as the train job writes it: ``snapshots/step_XXXXXXXX/{width_w, spec_width_w}``."""
    run.mkdir()
    with h5py.File(run / "results.h5", "w") as f:
        f.attrs["status"] = "running"
        for step, (flat, spec) in snapshots.items():
            g = f.create_group(f"snapshots/step_{step:08d}")
            g.attrs["written"] = np.int8(step in written)
            g.create_dataset("width_16", data=flat if step in written else np.full_like(flat, np.nan))
            g.create_dataset("spec_width_16", data=np.asarray(spec.encode()))


def test_run_directory_last_written_snapshot_rebuilds_the_networks(tmp_path):
    grid = (2, 1, 2)  # (learning_rate, weight_decay, seed)
    keys = jax.random.split(jax.random.key(3), 4)
    stack = jax.vmap(lambda k: mlp.init(k, (24, 16, 16)))(keys)
    flat = np.asarray(jax.vmap(lambda p: mlp.flatten(p)[0])(stack)).reshape(*grid, -1)
    spec = mlp.spec(jax.tree_util.tree_map(lambda a: a[0], stack))
    run = tmp_path / "run"
    _write_run(run, {0: (flat * 0.5, spec), 100: (flat, spec), 200: (flat, spec)}, written={0, 100})
    snap = weights_io.load_run_snapshot(run)
    assert snap.step == 100 and snap.grid_shape == {"width_16": grid}  # step 200 is declared, not yet written
    leaves = jax.tree_util.tree_leaves(snap.networks["width_16"]), jax.tree_util.tree_leaves(stack)
    for got, ref in zip(*leaves, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
    table = spectra.analyze_path(run, progress=False)
    direct = spectra.analyze(stack)
    assert list(table["layer"]) == [f"width_16/{n}" for n in direct["layer"]]
    np.testing.assert_array_equal(table["alpha"], direct["alpha"])
    np.testing.assert_array_equal(table["network"], direct["network"])
    first = dict(spectra.load_weights(run, step=0))
    np.testing.assert_array_equal(first["width_16/network_3/layers/1/w"], 0.5 * np.asarray(stack.layers[1].w[3]))
    with pytest.raises(WeightsError, match="step=200.*available: \\[0, 100\\]"):
        weights_io.load_run_snapshot(run / "results.h5", step=200)
    early = tmp_path / "early"  # a live run whose only snapshot slot is declared but not yet written
    _write_run(early, {0: (flat, spec)}, written=set())
    with pytest.raises(WeightsError, match="results.h5: no written snapshot"):
        spectra.analyze_path(early / "results.h5", progress=False)


# --- errors -------------------------------------------------------------------------------------------------------
def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_files_raise_naming_the_file(tmp_path):
    t = _tensors()
    np.savez(tmp_path / "w.npz", **t)
    _save_safetensors(tmp_path / "w.safetensors", t)
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_dataset("kernel", data=t["enc.weight"])
    for name in ("w.npz", "w.safetensors", "w.h5"):
        _truncate(tmp_path / name)
        with pytest.raises(WeightsError, match=f"{name}.*(truncated|corrupt)"):
            list(spectra.load_weights(tmp_path / name))


def test_pickled_member_is_refused_not_unpickled(tmp_path):
    np.savez(tmp_path / "p.npz", fc=np.ones(SHAPE, np.float32), evil=np.array([{"x": 1}], dtype=object))
    with pytest.raises(WeightsError, match="p.npz.*'evil'.*unpickling"):
        list(spectra.load_weights(tmp_path / "p.npz"))
    np.save(tmp_path / "o.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(WeightsError, match="o.npy.*'o'.*unpickling"):
        list(spectra.load_weights(tmp_path / "o.npy"))


def test_bad_tensors_raise_naming_file_and_tensor(tmp_path):
    w = np.ones(SHAPE, np.float32)
    cases = {
        "nan.npz": ({"fc": w, "head": np.where(np.eye(*SHAPE) > 0, np.nan, w)}, "'head' has 16 NaN/Inf"),
        "inf.npz": ({"head": np.full(SHAPE, np.inf, np.float32)}, "'head' has 384 NaN/Inf"),
        "cube.npz": ({"block": np.ones((2, 3, 4), np.float32)}, "'block' has shape \\(2, 3, 4\\): only 2-D"),
        "conv.npz": ({"conv": np.ones((3, 3, 8, 16), np.float32)}, "'conv' has shape .*convolution kernel"),
        "text.npz": ({"names": np.array([["a", "b"], ["c", "d"]])}, "'names' has dtype <U1"),
    }
    for fname, (arrays, message) in cases.items():
        np.savez(tmp_path / fname, **arrays)
        with pytest.raises(WeightsError, match=f"{fname}: tensor {message}"):
            list(spectra.load_weights(tmp_path / fname))
        with pytest.raises(WeightsError, match=fname):
            spectra.analyze_path(tmp_path / fname, progress=False)


def test_unusable_paths_raise(tmp_path):
    with pytest.raises(WeightsError, match="missing.npz: no such file"):
        list(spectra.load_weights(tmp_path / "missing.npz"))
    (tmp_path / "w.pt").write_bytes(b"\x80\x04")
    with pytest.raises(WeightsError, match="w.pt: suffix '.pt' is not a weights format"):
        list(spectra.load_weights(tmp_path / "w.pt"))
    (tmp_path / "idx.json").write_text('{"metadata": {}}')
    with pytest.raises(WeightsError, match="idx.json: not a safetensors index with a weight_map"):
        list(spectra.load_weights(tmp_path / "idx.json"))
    np.savez(tmp_path / "biases.npz", b=np.zeros(4))
    with pytest.raises(WeightsError, match="biases.npz: holds no 2-D weight matrix"):
        spectra.analyze_path(tmp_path / "biases.npz", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="empty: directory holds none of"):
        spectra.analyze_path(tmp_path / "empty", progress=False)
