"""``deepglass bench spectra``: the batched WeightWatcher against its baselines, in the same process.

Figure 1: ``bridges.spectra.fit_power_law`` (every xmin candidate at once, jitted) against ``powerlaw.Fit`` (one
distribution object per candidate) on the same ESD — a heavy-tailed 1000×500 matrix (Pareto μ = 2.5 entries,
``quick``: 400×200), fitted both ways: ``max_alpha=3.0`` against ``powerlaw.Fit(ev)`` (the package defaults) and the
plain CSN fit against ``parameter_ranges={"alpha": [0, None]}``. α agreement in the note; target ratio ≥ 20×.
Figure 2: ``analyze`` of 64 stacked MLPs (64-128-128-10, one vmapped call per layer shape) against 64 separate
``analyze`` calls on the same networks (compiled once beforehand), with and without ``rand_distance``; target ≥ 5×.
Batching removes the per-call dispatch and host transfers only: on a CPU the eigenvalue work is the same either way
(LAPACK runs matrix by matrix), so the ratio is bounded by (overhead + compute) / compute.
Figure 3: parameters per second of ``analyze_path`` reading and analysing a synthetic ``.safetensors`` checkpoint
(16 tensors of 512×512, ``quick``: 8 of 256×256), compiled once beforehand, ``rand_distance`` included.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import jax
import numpy as np

from bridges import spectra
from nets import mlp

from . import Row, timeit

__all__ = ["bench"]


def _powerlaw_rows(quick):
    n, m = (400, 200) if quick else (1000, 500)
    rng = np.random.default_rng(0)
    w = (rng.pareto(2.5, (n, m)) * rng.choice([-1.0, 1.0], (n, m))).astype(np.float32)
    ev = np.asarray(spectra.esd(w))
    figure = f"power-law fit of a {n}x{m} heavy-tailed ESD ({m} eigenvalues, every xmin)"
    try:
        import powerlaw
    except ImportError:
        t = timeit(lambda: jax.block_until_ready(spectra.fit_power_law(ev)), min_time=0.3)
        return [Row(figure, t * 1e3, "ms", note="powerlaw package not installed: no baseline")]

    def package(kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return powerlaw.Fit(ev.astype(np.float64), verbose=False, **kw)

    rows = []
    for label, max_alpha, kw in (("powerlaw defaults, alpha<3", 3.0, {}),
                                 ("plain CSN", None, {"parameter_ranges": {"alpha": [0, None]}})):
        ours = spectra.fit_power_law(ev, max_alpha=max_alpha)
        ref = package(kw)
        t_ours = timeit(lambda ma=max_alpha: jax.block_until_ready(spectra.fit_power_law(ev, max_alpha=ma)),
                        min_time=0.3)
        t_ref = timeit(lambda kw=kw: package(kw), min_time=1.0, repeats=2)
        note = (f"alpha {float(ours.alpha):.5f} vs {ref.alpha:.5f}, xmin {float(ours.xmin):.6g} vs {ref.xmin:.6g}, "
                f"D {float(ours.ks_distance):.5f} vs {ref.D:.5f}")
        # rates both ways, so the ratio column is the speed-up
        rows.append(Row(f"{figure}: {label}", 1.0 / t_ours, "fits/s", "powerlaw.Fit, same eigenvalues",
                        1.0 / t_ref, note))
    return rows


def _stack_rows(quick):
    count = 16 if quick else 64
    keys = jax.random.split(jax.random.key(0), count)
    stack = jax.vmap(lambda k: mlp.init(k, (64, 128, 128, 10)))(keys)
    singles = [jax.tree_util.tree_map(lambda a, i=i: a[i], stack) for i in range(count)]
    rows = []
    for key, label in ((jax.random.key(1), "rand_distance on"), (None, "rand_distance off")):
        spectra.analyze(singles[0], key=key)  # compile the single-network programs once
        t_stack = timeit(lambda k=key: spectra.analyze(stack, key=k), min_time=1.0, repeats=3)
        t_loop = timeit(lambda k=key: [spectra.analyze(s, key=k) for s in singles], min_time=1.0, repeats=3)
        rows.append(Row(f"analyze {count} stacked MLPs 64-128-128-10 (3 layers each, {label})", count / t_stack,
                        "networks/s", f"{count} separate analyze calls", count / t_loop,
                        f"{t_stack / count * 1e3:.2f} ms of compute per network when stacked"))
    return rows


def _safetensors_rows(quick):
    from safetensors.numpy import save_file

    count, size = (8, 256) if quick else (16, 512)
    rng = np.random.default_rng(2)
    tensors = {f"layer{i}.weight": rng.standard_normal((size, size)).astype(np.float32) for i in range(count)}
    tensors.update({f"layer{i}.bias": np.zeros(size, np.float32) for i in range(count)})
    params = count * size * (size + 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file(tensors, str(path))
        key = jax.random.key(3)
        spectra.analyze_path(path, key=key, progress=False)  # compile once
        t0 = time.perf_counter()
        table = spectra.analyze_path(path, key=key, progress=False)
        wall = time.perf_counter() - t0
    return [Row(f"read + analyse a safetensors checkpoint ({count} x {size}x{size} + biases)", params / wall,
                "params/s", note=f"{len(table)} layers in {wall:.2f} s, eigendecomposition x2 per layer")]


def bench(quick: bool = False) -> list[Row]:
    return _powerlaw_rows(quick) + _stack_rows(quick) + _safetensors_rows(quick)
