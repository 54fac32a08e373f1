"""``bridges.spectra``: ESD, the CSN power-law fit (against the ``powerlaw`` package), the Marchenko–Pastur fit
(edges, BBP spikes), heavy tails (α ≈ 1 + μ/2), norms against NumPy, phases, batched == per-network, and the CLI."""
import argparse
import csv
import math
import warnings

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy.spatial.distance import jensenshannon

from bridges import spectra
from nets import mlp
from runs import spectra_cmd

N, M = 400, 200  # every statistical matrix has this shape: one compiled program serves them all
C = M / N
EPS32 = float(np.finfo(np.float32).eps)


def _tw_scale(n, m, sigma2=1.0, lower=False):
    """Tracy–Widom scale of λ_max (λ_min with ``lower``) of WᵀW/N (Johnstone 2001; Ma 2012 for the lower edge)."""
    if lower:
        return sigma2 * (math.sqrt(n) - math.sqrt(m)) * (m ** -0.5 - n ** -0.5) ** (1 / 3) / n
    return sigma2 * (math.sqrt(n) + math.sqrt(m)) * (n ** -0.5 + m ** -0.5) ** (1 / 3) / n


def _bbp_outlier(theta, c):
    """Outlier eigenvalue of (G + √N θ a bᵀ)ᵀ(...)/N, G iid N(0,1), above θ_c = c^{1/4} (Benaych-Georges &
    Nadakuditi 2012, rectangular additive case)."""
    return (1 + theta ** 2) * (c + theta ** 2) / theta ** 2


@pytest.fixture(scope="module")
def zoo():
    """Matrices of shape (400, 200) with known spectra, analysed in ONE call (normalize=True, with a key)."""
    mats = {}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        g = rng.standard_normal((N, M))
        a = rng.standard_normal(N)
        b = rng.standard_normal(M)
        a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
        mats[f"gauss{seed}"] = g
        mats[f"spike{seed}"] = g + math.sqrt(N) * 2.0 * np.outer(a, b)  # θ = 2 > θ_c = 0.84
        if seed < 2:
            mats[f"weak{seed}"] = g + math.sqrt(N) * 0.5 * np.outer(a, b)  # θ = 0.5 < θ_c: no outlier
        if seed < 3:
            mats[f"pareto{seed}"] = rng.pareto(1.0, (N, M)) * rng.choice([-1.0, 1.0], (N, M))  # μ = 1
    rng = np.random.default_rng(10)
    mats["rank5"] = rng.standard_normal((N, 5)) @ rng.standard_normal((5, M))
    mats["lowrank"] = rng.standard_normal((N, 10)) @ rng.standard_normal((10, M)) + 0.05 * rng.standard_normal((N, M))
    mats = {k: v.astype(np.float32) for k, v in mats.items()}
    table = spectra.analyze(mats, normalize=True, key=jax.random.key(7))
    return mats, {r["layer"]: r for r in table}, dict(zip(table["layer"], table.eigenvalues, strict=True))


# --- ESD and the power-law fit ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(30, 20), (20, 30)])
def test_esd_is_the_squared_singular_values(shape):
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    s2 = np.sort(np.linalg.svd(w.astype(np.float64), compute_uv=False) ** 2)
    ev = np.asarray(spectra.esd(w))
    # float32 Gram eigenvalues: absolute error a few ε·λ_max; 1e-5·λ_max is ≈ 80 ε
    np.testing.assert_allclose(ev, s2, atol=1e-5 * s2[-1])
    np.testing.assert_allclose(np.asarray(spectra.esd(w, normalize=True)), s2 / 30, atol=1e-5 * s2[-1] / 30)


def _samples():
    rng = np.random.default_rng(1)
    out = []
    for kind in ("gauss", "pareto", "student", "ties"):
        w = {"gauss": rng.standard_normal, "student": lambda s: rng.standard_t(3, s),
             "pareto": lambda s: rng.pareto(1.5, s) * rng.choice([-1.0, 1.0], s),
             "ties": rng.standard_normal}[kind]((200, 100))
        ev = np.linalg.eigvalsh(w.T @ w).astype(np.float32)
        out.append(np.round(ev, 0) if kind == "ties" else ev)  # rounding makes repeated values
    return out


def test_fit_power_law_equals_the_powerlaw_package():
    powerlaw = pytest.importorskip("powerlaw")
    for ev in _samples():
        for max_alpha, kwargs in ((3.0, {}), (None, {"parameter_ranges": {"alpha": [0, None]}})):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the package warns about integer-valued data and near-1 fits
                ref = powerlaw.Fit(ev.astype(np.float64), verbose=False, **kwargs)
            ours = spectra.fit_power_law(ev, max_alpha=max_alpha)
            # 1e-3: the brief's agreement target; float32 sums of ≤ 100 logs are good to ~1e-6 relative
            assert abs(float(ours.alpha) - ref.alpha) < 1e-3
            assert abs(float(ours.ks_distance) - ref.D) < 1e-3
            assert float(ours.xmin) == pytest.approx(ref.xmin, rel=1e-6)  # the same float32 value chosen
            assert int(ours.num_tail) == int(ref.n_tail)


def _pure_power_law(alpha, n, seed):
    u = np.random.default_rng(seed).random(n)
    return ((1.0 - u) ** (-1.0 / (alpha - 1.0))).astype(np.float32)  # inverse CDF, xmin = 1


def test_fit_power_law_recovers_the_exponent_and_rejects_a_wrong_one():
    fit = spectra.fit_power_law(_pure_power_law(2.5, 2000, 3))
    sigma = float(fit.alpha_stderr)  # (α-1)/√n_tail, the MLE's standard error
    assert sigma < 0.1 and abs(float(fit.alpha) - 2.5) < 3 * sigma
    # negative control: data with α = 3.5 fail the same 3σ check against 2.5
    other = spectra.fit_power_law(_pure_power_law(3.5, 2000, 4))
    assert abs(float(other.alpha) - 2.5) > 3 * float(other.alpha_stderr)


def test_fit_power_law_jits_vmaps_and_gives_up_like_powerlaw():
    batch = np.stack(_samples()[:3])
    many = jax.jit(jax.vmap(spectra.fit_power_law))(batch)
    for i, ev in enumerate(batch):
        one = spectra.fit_power_law(ev)
        for a, b in zip(many, one, strict=True):
            np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-6)
    # fewer than four distinct positive values leave powerlaw < 2 xmin candidates: NaN
    for x in ([1.0, 2.0, 3.0], [0.0, 0.0, 5.0, 5.0, 6.0, 7.0]):
        fit = spectra.fit_power_law(np.array(x, np.float32))
        assert np.isnan(float(fit.alpha)) and int(fit.num_tail) == 0
    with pytest.raises(ValueError, match="max_alpha"):
        spectra.fit_power_law(batch[0], max_alpha=0.5)


# --- Marchenko–Pastur -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q,sigma2", [(2.0, 1.7), (4.0, 0.3)])
def test_marchenko_pastur_density_is_normalized_with_mean_sigma2(q, sigma2):
    lo, hi = sigma2 * (1 - q ** -0.5) ** 2, sigma2 * (1 + q ** -0.5) ** 2
    with jax.enable_x64(True):
        def rho(x):
            return float(spectra.marchenko_pastur_density(jnp.float64(x), sigma2, q))

        mass = integrate.quad(rho, lo, hi, limit=200)[0]
        mean = integrate.quad(lambda x: x * rho(x), lo, hi, limit=200)[0]
    assert mass == pytest.approx(1.0, abs=1e-6) and mean == pytest.approx(sigma2, rel=1e-6)


def test_marchenko_pastur_fit_of_gaussian_matrices(zoo):
    mats, rec, eigs = zoo
    for seed in range(4):
        r, w, ev = rec[f"gauss{seed}"], mats[f"gauss{seed}"].astype(np.float64), eigs[f"gauss{seed}"]
        # no spike removed, so σ² is the mean eigenvalue = Σ w²/(NM), whose sampling sd is √(2/(NM))
        assert r["mp_sigma2"] == pytest.approx(np.mean(w ** 2), rel=1e-5)
        assert abs(r["mp_sigma2"] - 1.0) < 4 * math.sqrt(2 / (N * M))
        assert r["lambda_plus"] == pytest.approx(r["mp_sigma2"] * (1 + math.sqrt(C)) ** 2, rel=1e-6)
        assert r["lambda_minus"] == pytest.approx(r["mp_sigma2"] * (1 - math.sqrt(C)) ** 2, rel=1e-6)
        # edges fluctuate on the Tracy–Widom scale; 6 scales: P(|TW1| > 6) < 1e-4
        assert abs(r["lambda_max"] - r["lambda_plus"]) < 6 * _tw_scale(N, M)
        assert abs(ev[0] - r["lambda_minus"]) < 6 * _tw_scale(N, M, lower=True)
        assert r["num_spikes"] == 0 and r["phase"] == "random-like"


def test_spike_above_bbp_threshold_is_found_and_one_below_is_not(zoo):
    _, rec, _ = zoo
    tops = np.array([rec[f"spike{s}"]["lambda_max"] for s in range(4)])
    for s in range(4):
        assert rec[f"spike{s}"]["num_spikes"] == 1 and rec[f"spike{s}"]["phase"] == "bulk+spikes"
    for s in range(2):
        assert rec[f"weak{s}"]["num_spikes"] == 0 and rec[f"weak{s}"]["phase"] == "random-like"  # control
    # outlier location: O(N^-1/2) Gaussian fluctuations; 4 standard errors from the 4 seeds
    se = tops.std(ddof=1) / 2
    assert abs(tops.mean() - _bbp_outlier(2.0, C)) < 4 * se
    assert abs(tops.mean() - (1 + math.sqrt(C)) ** 2) > 4 * se  # the same check rejects "just the edge"


# --- heavy tails, norms, distances, phases --------------------------------------------------------------------
def test_pareto_entries_give_alpha_one_plus_mu_over_two(zoo):
    _, rec, _ = zoo
    alphas = np.array([rec[f"pareto{s}"]["alpha"] for s in range(3)])
    # Martin & Mahoney: μ = 1 → α ≈ 1 + μ/2 = 1.5, to within 0.15. Measured over 20 seeds at this shape: mean
    # 1.49, sd 0.07 per matrix, so the mean of 3 has a standard error ≈ 0.04 and 0.15 is > 3.5 of them.
    assert abs(alphas.mean() - 1.5) < 0.15
    for s in range(3):
        # the phase needs the small eigenvalues resolved: 4 of 20 seeds put λ_max/λ beyond 1/(√M ε) of a float32
        # Gram matrix (then the label is rank-collapse); these three do not
        r = rec[f"pareto{s}"]
        assert r["rank_loss"] <= 1 and r["phase"] == "heavy-tailed" and r["warning"] == "over-trained"
    for s in range(4):  # control: Gaussian entries fail the same check and are labelled random-like
        assert abs(rec[f"gauss{s}"]["alpha"] - 1.5) > 0.15 and rec[f"gauss{s}"]["phase"] == "random-like"


@pytest.mark.parametrize("name", ["gauss0", "spike1", "pareto0"])
def test_norms_entropy_and_ranks_against_numpy(zoo, name):
    mats, rec, _ = zoo
    r = rec[name]
    lam = np.sort(np.linalg.svd(mats[name].astype(np.float64), compute_uv=False) ** 2) / N
    top, alpha = lam[-1], r["alpha"]
    # float32 Gram: λ_max and sums good to ~1e-6 relative; 1e-5 leaves an order of magnitude
    assert r["lambda_max"] == pytest.approx(top, rel=1e-5)
    assert r["log_spectral_norm"] == pytest.approx(np.log10(top), abs=1e-5)
    assert r["log_frobenius_norm"] == pytest.approx(np.log10(np.sum(mats[name].astype(np.float64) ** 2) / N),
                                                    abs=1e-5)
    assert r["stable_rank"] == pytest.approx(lam.sum() / top, rel=1e-5)
    assert r["alpha_weighted"] == pytest.approx(alpha * np.log10(top), rel=1e-5)
    assert r["log_alpha_norm"] == pytest.approx(np.log10(np.sum(lam ** alpha)), abs=1e-4)
    assert r["mp_softrank"] == pytest.approx(r["lambda_plus"] / top, rel=1e-5)
    p = lam / lam.sum()
    rank = np.sum(lam > math.sqrt(M) * EPS32 * top)
    assert r["entropy"] == pytest.approx(-np.sum(p * np.log(p)) / np.log(rank), abs=1e-4)
    assert r["rank_loss"] == M - rank and r["N"] == N and r["M"] == M and r["Q"] == 2.0


def test_rank_collapse_is_labelled(zoo):
    _, rec, _ = zoo
    assert rec["rank5"]["rank_loss"] == M - 5 and rec["rank5"]["phase"] == "rank-collapse"


def test_rand_distance_small_for_iid_entries_large_for_structure(zoo):
    _, rec, _ = zoo
    # iid entries: permuting them changes only the sample; for 200 iid draws in ⌈√200⌉ = 15 bins the expected
    # JS distance is about √((B-1)/(4 n ln 2)) ≈ 0.16, and eigenvalue rigidity makes ESD histograms steadier still
    for s in range(4):
        assert rec[f"gauss{s}"]["rand_distance"] < 0.2
    assert rec["lowrank"]["rand_distance"] > 0.5  # control: rank-10 structure is destroyed by the permutation


def test_shuffle_entries_is_a_bijection_mixing_like_a_uniform_permutation():
    w = np.arange(N * M, dtype=np.float32).reshape(N, M)  # each entry's value is its source position
    out = np.asarray(spectra.shuffle_entries(jax.random.key(0), w)).astype(np.int64)
    np.testing.assert_array_equal(np.sort(out.ravel()), np.arange(N * M))  # every entry exactly once
    rows, cols = np.divmod(out, M)
    # under a uniform permutation each entry keeps its row with probability 1/N (count ~ Binomial(NM, 1/N):
    # mean M = 200, sd ≈ 14) and its column with probability 1/M (mean N = 400, sd ≈ 20); 5 sd bands
    same_row = int(np.sum(rows == np.arange(N)[:, None]))
    same_col = int(np.sum(cols == np.arange(M)[None, :]))
    assert abs(same_row - M) < 5 * math.sqrt(M) and abs(same_col - N) < 5 * math.sqrt(N)
    # negative control: rolling every row (a permutation that never leaves the row) fails the same check
    rolled = np.roll(w.astype(np.int64), 7, axis=1)
    assert abs(int(np.sum(rolled // M == np.arange(N)[:, None])) - M) > 5 * math.sqrt(M)
    # spectra: shuffles of a rank-2 matrix look like uniform shuffles (iid bound ≈ 0.16, as for rand_distance)
    rng = np.random.default_rng(0)
    uniform = spectra.esd(rng.permutation(w.ravel()).reshape(N, M))
    for k in range(2):
        ours = spectra.esd(spectra.shuffle_entries(jax.random.key(k + 1), w))
        assert float(spectra.jensen_shannon_distance(ours, uniform)) < 0.2
    assert float(spectra.jensen_shannon_distance(spectra.esd(w), uniform)) > 0.5  # control: unshuffled


def test_jensen_shannon_distance_against_scipy():
    rng = np.random.default_rng(5)
    a = rng.lognormal(0.0, 1.0, 300).astype(np.float32)
    b = rng.lognormal(0.3, 1.2, 300).astype(np.float32)
    la, lb = np.log10(a.astype(np.float64)), np.log10(b.astype(np.float64))
    edges = np.linspace(min(la.min(), lb.min()), max(la.max(), lb.max()), 21)  # nothing below the floor here
    p, q = np.histogram(la, edges)[0], np.histogram(lb, edges)[0]
    expected = jensenshannon(p / p.sum(), q / q.sum(), base=2)
    assert float(spectra.jensen_shannon_distance(a, b, num_bins=20)) == pytest.approx(expected, abs=1e-5)
    assert float(spectra.jensen_shannon_distance(a, a, num_bins=20)) == pytest.approx(0.0, abs=1e-6)
    assert float(spectra.jensen_shannon_distance(a, a * 1e4, num_bins=20)) == pytest.approx(1.0, abs=1e-6)


def test_phase_rules_and_warnings():
    base = dict(m=100, lambda_max=10.0, lambda_plus=5.0, alpha=3.0, rank_loss=0)
    assert spectra.classify_phase(num_spikes=0, **base) == "random-like"
    assert spectra.classify_phase(num_spikes=3, **base) == "bulk+spikes"  # 10 ≥ 1.5 × 5
    assert spectra.classify_phase(num_spikes=3, **{**base, "lambda_max": 6.0}) == "bleeding-out"
    assert spectra.classify_phase(num_spikes=30, **base) == "heavy-tailed"
    assert spectra.classify_phase(num_spikes=30, **{**base, "alpha": 4.5}) == "bulk-decay"
    assert spectra.classify_phase(num_spikes=30, **{**base, "alpha": float("nan")}) == "undetermined"
    assert spectra.classify_phase(num_spikes=0, **{**base, "rank_loss": 11}) == "rank-collapse"
    assert spectra.classify_phase(num_spikes=-1, **{**base, "lambda_max": float("nan")}) == "non-finite"
    assert [spectra.training_warning(a) for a in (1.9, 2.0, 6.0, 6.1, float("nan"))] == \
        ["over-trained", "", "", "under-trained", ""]


# --- stacks of networks -----------------------------------------------------------------------------------------
def test_batched_analysis_equals_per_network_and_records_divergence():
    keys = jax.random.split(jax.random.key(0), 3)
    stack = jax.vmap(lambda k: mlp.init(k, (16, 16, 16), block="fractal", columns=2))(keys)
    table = spectra.analyze(stack)
    names = ["layers/0/first/w", "layers/0/second/w", "layers/0/short/w", "layers/1/w"]
    assert list(table["layer"]) == names * 3 and list(table["network"]) == [0] * 4 + [1] * 4 + [2] * 4
    numeric = [c for c in spectra.COLUMNS if c not in ("layer", "phase", "warning", "shape")]
    for i in range(3):
        single = spectra.analyze(jax.tree_util.tree_map(lambda a, i=i: a[i], stack))
        rows = slice(4 * i, 4 * i + 4)
        for c in numeric:
            if c == "network":
                continue
            np.testing.assert_allclose(table[c][rows], single[c], rtol=2e-5, atol=1e-6, err_msg=c)
        np.testing.assert_allclose(np.stack(table.eigenvalues[rows]), np.stack(single.eigenvalues), rtol=2e-5,
                                   atol=1e-5)
        assert list(table["phase"][rows]) == list(single["phase"])
    assert np.isnan(table["rand_distance"]).all()  # no key: not computed
    # a diverged network in the stack is a result: NaN metrics, labelled, the others untouched
    bad = jax.tree_util.tree_map(lambda a: a.at[1].set(jnp.nan), stack)
    hurt = spectra.analyze(bad)
    assert set(hurt["phase"][4:8]) == {"non-finite"} and set(hurt["warning"][4:8]) == {"diverged"}
    assert np.isnan(hurt["alpha"][4:8]).all()
    np.testing.assert_array_equal(hurt["alpha"][:4], table["alpha"][:4])


def test_analyze_rejects_bad_mappings():
    w = np.ones((8, 6), np.float32)
    with pytest.raises(spectra.WeightsError, match="'conv'.*shape \\(2, 3, 4\\)"):
        spectra.analyze({"fc": w, "conv": np.ones((2, 3, 4))})
    with pytest.raises(spectra.WeightsError, match="'fc'.*NaN"):
        spectra.analyze({"fc": np.full((8, 6), np.nan)})
    with pytest.raises(ValueError, match="weights=list"):
        spectra.analyze([w])


# --- the CLI ----------------------------------------------------------------------------------------------------
def _parse(argv):
    parser = argparse.ArgumentParser()
    spectra_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["spectra", *argv])


def test_cli_writes_h5_csv_png_and_returns_2_on_a_bad_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "w.npz"
    np.savez(path, fc1=rng.standard_normal((24, 16)).astype(np.float32),
             fc2=rng.standard_normal((24, 16)).astype(np.float32), bias=np.zeros(16, np.float32))
    out = tmp_path / "out"
    assert spectra_cmd.main(_parse([str(path), "--out", str(out), "--quiet"])) == 0
    printed = capsys.readouterr().out
    assert "fc1" in printed and "fc2" in printed and "alpha" in printed
    with h5py.File(out / "spectra.h5", "r") as f:
        assert set(spectra.COLUMNS) <= set(f)
        assert list(f["alpha"].attrs["dims"]) == ["layer"] and list(f["shape"].attrs["dims"]) == ["layer", "axis"]
        assert [s.decode() for s in f["layer"][()]] == ["fc1", "fc2"]
        assert f["shape"][()].tolist() == [[24, 16], [24, 16]] and f["alpha"].shape == (2,)
        ref = spectra.analyze_path(path, key=jax.random.key(0), progress=False)
        np.testing.assert_array_equal(f["alpha"][()], ref["alpha"])
    with open(out / "spectra.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["layer"] for r in rows] == ["fc1", "fc2"] and rows[0]["shape"] == "24x16"
    assert float(rows[1]["alpha"]) == pytest.approx(ref["alpha"][1], rel=1e-12)
    png = (out / "figures" / "esd.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    bad = tmp_path / "bad.npz"
    bad.write_bytes(path.read_bytes()[:100])
    assert spectra_cmd.main(_parse([str(bad), "--quiet"])) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "truncated" in err
