"""bridges.compare (statistics, verdicts, claims), bridges.compare_panels (the measurements) and
bridges.compare_summary (the results schema), against closed forms, independent computations and published numbers.
Statistical checks use fixed seeds; each has a negative control that the same check rejects."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from bridges import compare as cmp
from bridges import compare_panels as cp
from bridges import compare_summary, information
from nets import data as nets_data
from nets import mlp
from physics import rem, theory

E0_P3, ETH_P3 = -1.171675, -1.154701  # REFERENCES.md, CS units (independently computed there)


# --- normalizations -----------------------------------------------------------------------------------------------


def test_normalized_energies_against_published_constants():
    assert cmp.glass_normalized_energy(theory.pspin_ground_state_energy(3), 3) == pytest.approx(0.0, abs=1e-12)
    assert cmp.glass_normalized_energy(0.0, 3) == 1.0
    # the threshold on the ε scale from the published E_0, E_th (6 digits each: 1e-5)
    assert cmp.glass_threshold_normalized(3) == pytest.approx(1 - ETH_P3 / E0_P3, abs=1e-5)
    np.testing.assert_allclose(cmp.network_normalized_energy([0.0, 1.0, 3.0], 2.0), [0.0, 0.5, 1.5])
    with pytest.raises(ValueError, match="initial_loss"):
        cmp.network_normalized_energy([1.0], 0.0)
    with pytest.raises(ValueError, match="p="):
        cmp.glass_normalized_energy(-1.0, {3: 1.0})


# --- spread, slopes, correlation ----------------------------------------------------------------------------------


def test_spread_matches_numpy_and_the_normal_theory():
    x = np.array([[1.0, 2.0, np.nan, 4.0], [3.0, np.nan, np.nan, np.nan]])
    np.testing.assert_allclose(cmp.nanmean(x, axis=1), [7.0 / 3.0, 3.0])
    assert np.isnan(cmp.nanmean([np.nan, np.inf]))  # no finite entry: NaN, and no warning (warnings are errors)
    sd, err = cmp.spread(x)
    assert sd[0] == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1)) and np.isnan(sd[1])
    assert err[0] == pytest.approx(sd[0] / math.sqrt(4.0))
    # the exact sd of the sample sd of N normal draws: σ√(1 − c4²), c4 = √(2/(N−1)) Γ(N/2)/Γ((N−1)/2)
    n = 10
    c4 = math.sqrt(2 / (n - 1)) * math.exp(special.gammaln(n / 2) - special.gammaln((n - 1) / 2))
    exact = math.sqrt(1 - c4 * c4)
    assert 1 / math.sqrt(2 * (n - 1)) == pytest.approx(exact, rel=0.02)  # the module's delta-method stderr
    trials = np.random.default_rng(0).normal(size=(4000, n))
    sds, errs = cmp.spread(trials)
    spread_of_sd = np.std(sds, ddof=1)
    tol = 3 * exact / math.sqrt(2 * 3999)  # 3 standard errors of an sd from 4000 draws
    assert abs(spread_of_sd - exact) < tol
    assert abs(np.mean(errs) - spread_of_sd) < tol + 0.02 * exact  # + the 2% delta-method bias
    # negative control: the same check rejects the naive sd/√N as the error of an sd
    assert abs(1 / math.sqrt(n) - spread_of_sd) > 10 * tol


def test_slope_exact_weighted_and_ordinary():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    s = cmp.slope(x, 3.0 - 0.5 * x, np.ones(4))
    assert s.value == pytest.approx(-0.5, abs=1e-12) and s.num_points == 4
    err = np.array([0.1, 0.2, 0.3, 0.4])
    w = 1 / err**2
    design = np.stack([np.ones(4), x], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))  # independent: the normal equations' covariance
    assert cmp.slope(x, 3.0 - 0.5 * x, err).stderr == pytest.approx(math.sqrt(cov[1, 1]), rel=1e-12)
    y = np.array([0.3, 1.9, 4.2, 8.4])
    ref = stats.linregress(x, y)
    ols = cmp.slope(x, y)
    assert ols.value == pytest.approx(ref.slope, rel=1e-12) and ols.stderr == pytest.approx(ref.stderr, rel=1e-12)
    power = cmp.log_slope([16, 32, 64], 3.0 * np.array([16, 32, 64]) ** -0.5, [0.1, 0.05, 0.02])
    assert power.value == pytest.approx(-0.5, abs=1e-12)
    assert math.isnan(cmp.slope([1.0], [2.0], [1.0]).value)  # too few points


def test_slope_error_bars_cover_the_truth():
    rng = np.random.default_rng(1)
    x = np.linspace(0.0, 1.0, 6)
    sigma = np.array([0.1, 0.1, 0.2, 0.2, 0.3, 0.3])

    def z_scores(noise_scale):
        z = []
        for _ in range(500):
            y = 1.0 + 2.0 * x + noise_scale * sigma * rng.normal(size=6)
            s = cmp.slope(x, y, sigma)
            z.append((s.value - 2.0) / s.stderr)
        return np.std(z, ddof=1)

    tol = 3 / math.sqrt(2 * 499)  # 3 standard errors of an sd of 500 unit normals
    assert abs(z_scores(1.0) - 1.0) < tol
    assert abs(z_scores(2.0) - 1.0) > tol  # negative control: understated errors are caught


def test_correlation_matches_numpy_and_fisher():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=50), rng.normal(size=50)
    c = cmp.correlation(x, y)
    assert c.r == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-12)
    assert c.z == pytest.approx(math.atanh(c.r)) and c.z_stderr == pytest.approx(1 / math.sqrt(47))
    rho, n = 0.5, 40
    cov = [[1.0, rho], [rho, 1.0]]
    zs = np.array([cmp.correlation(*rng.multivariate_normal([0, 0], cov, size=n).T).z for _ in range(2000)])
    se = 1 / math.sqrt(n - 3)
    assert abs(np.std(zs, ddof=1) - se) < 3 * se / math.sqrt(2 * 1999)
    # Fisher: E z = atanh ρ + ρ/(2(n−1)) to O(n^-2)
    assert abs(np.mean(zs) - (math.atanh(rho) + rho / (2 * (n - 1)))) < 3 * se / math.sqrt(2000)
    # negative control: uncorrelated data are not read as a positive correlation
    null = cmp.correlation(rng.normal(size=n), rng.normal(size=n))
    assert cmp.verdict(null.z, null.z_stderr) != cmp.SUPPORTED


# --- minimal frustration ------------------------------------------------------------------------------------------


def test_frustration_score_exact_example_against_bryngelson_wolynes():
    f = cmp.frustration_score([3.0, 0.0, 2.0, 1.0], num_bootstrap=10)
    s0 = math.log(3)
    assert f.native == 0.0 and f.mean == 2.0 and f.ruggedness == pytest.approx(1.0) and f.entropy == s0
    assert f.g == pytest.approx(2.0 / math.sqrt(2 * s0))
    tg, tf = theory.bryngelson_wolynes(s0, 1.0, 2.0)
    assert f.tf_over_tg == pytest.approx(float(tf / tg), rel=1e-12)
    low = cmp.frustration_score([0.0, 0.5, 2.0, 3.5, 1.0])
    assert low.g < 1 and math.isnan(low.tf_over_tg)
    assert math.isnan(cmp.frustration_score([1.0, 2.0, np.nan]).g)  # fewer than 4 minima


def test_frustration_score_tells_a_funnel_from_a_golf_course():
    rng = np.random.default_rng(3)
    m = 101
    gap = 3.0 * math.sqrt(2 * math.log(m - 1))  # native 3 REM gaps below the mean of N(0, 1) misfolded states

    def funnel():
        return np.concatenate([[-gap], rng.normal(size=m - 1)])

    f = cmp.frustration_score(funnel())
    assert abs(f.g - 3.0) < 3 * f.g_stderr and cmp.verdict(f.g - 1.0, f.g_stderr) == cmp.SUPPORTED
    # the bootstrap error against the spread over independent realizations (100: the sd is known to ±7%; the
    # bootstrap's own O(1/M) bias is smaller) — within ±25%
    scores = [cmp.frustration_score(funnel(), num_bootstrap=100, seed=i) for i in range(100)]
    ratio = np.mean([s.g_stderr for s in scores]) / np.std([s.g for s in scores], ddof=1)
    assert 0.75 < ratio < 1.25
    # negative control: the best of m draws from one distribution is not a funnel
    golf = cmp.frustration_score(rng.normal(size=m))
    assert golf.g < 1 and cmp.verdict(golf.g - 1.0, golf.g_stderr) != cmp.SUPPORTED


# --- verdicts and claims ------------------------------------------------------------------------------------------


def test_verdict_rules():
    assert cmp.verdict(3.0, 1.0) == cmp.SUPPORTED and cmp.verdict(-3.0, 1.0) == cmp.NOT_SUPPORTED
    assert cmp.verdict(1.0, 1.0) == cmp.INCONCLUSIVE and cmp.verdict(np.nan, 1.0) == cmp.INCONCLUSIVE
    assert cmp.verdict(0.2, 0.0) == cmp.SUPPORTED and cmp.verdict(0.0, 0.0) == cmp.INCONCLUSIVE
    assert cmp.aic_verdict(11) == cmp.SUPPORTED and cmp.aic_verdict(-11) == cmp.NOT_SUPPORTED
    assert cmp.aic_verdict(5) == cmp.INCONCLUSIVE
    S, N, I, M = cmp.SUPPORTED, cmp.NOT_SUPPORTED, cmp.INCONCLUSIVE, cmp.NOT_MEASURED  # noqa: E741
    assert cmp.combine([S, S, M]) == S and cmp.combine([N, N]) == N and cmp.combine([S, N]) == I
    assert cmp.combine([M, M]) == M and cmp.combine([S, I]) == I
    assert cmp.difference(3.0, 0.3, 1.0, 0.4) == (2.0, pytest.approx(0.5))
    assert cmp.format_value(1.2345, 0.01) == "1.23 ± 0.01" and cmp.format_value(np.nan) == "n/a"
    assert cmp.format_value(9e15) == "∞"


def test_claim_verdicts_flip_when_the_numbers_flip():
    """Negative controls of the table: each rule gives the opposite verdict on the opposite numbers."""
    S, N, I = cmp.SUPPORTED, cmp.NOT_SUPPORTED, cmp.INCONCLUSIVE  # noqa: E741
    shrink, grow = cmp.Slope(-0.5, 0.1, 3), cmp.Slope(0.5, 0.1, 3)
    assert cmp.claim_spread(network=shrink, glass=shrink).verdict == S
    assert cmp.claim_spread(network=grow, glass=shrink).verdict == N
    assert cmp.claim_spread(network=cmp.Slope(-0.1, 0.1, 3)).verdict == I
    funnel = {"digits": (1.5, 0.1), "shuffled": (0.8, 0.1), "random": (0.7, 0.1)}
    glass = {"digits": (0.7, 0.1), "shuffled": (1.5, 0.1), "random": (0.8, 0.1)}
    assert cmp.claim_funnel(perceptron=funnel, network_g=(2.0, 0.2)).verdict == S
    assert cmp.claim_funnel(perceptron=glass, network_g=(0.5, 0.2)).verdict == N
    assert cmp.claim_funnel(perceptron=funnel, network_g=(0.5, 0.2)).verdict == I
    assert cmp.claim_funnel().verdict == cmp.NOT_MEASURED
    # a teacher's labels are a planted funnel, the positive reference: never a control the digits must beat
    assert cmp.claim_funnel(perceptron={**funnel, "teacher": (3.0, 0.1)}, network_g=(2.0, 0.2)).verdict == S
    assert cmp.claim_funnel(perceptron={"digits": (1.5, 0.1), "teacher": (0.1, 0.1)}).verdict == cmp.NOT_MEASURED
    up, down = cmp.Slope(0.3, 0.05, 9), cmp.Slope(-0.3, 0.05, 9)
    assert cmp.claim_temperature(learning_rate=up, weight_decay=up, glass=up).verdict == S
    assert cmp.claim_temperature(learning_rate=down, weight_decay=down, glass=up).verdict == N
    assert cmp.claim_order_chaos(critical=(0.9, 0.02), ordered=(0.1, 0.01)).verdict == S
    assert cmp.claim_order_chaos(critical=(0.1, 0.02), ordered=(0.9, 0.01)).verdict == N
    pos, neg = cmp.Correlation(0.8, 1.1, 0.1, 100), cmp.Correlation(-0.8, -1.1, 0.1, 100)
    assert cmp.claim_low_index(network=pos).verdict == S and cmp.claim_low_index(network=neg).verdict == N
    assert cmp.claim_long_range(digits=("power_law", 20.0)).verdict == S
    assert cmp.claim_long_range(digits=("exponential", 20.0)).verdict == N
    assert cmp.claim_long_range(digits=("power_law", 2.0)).verdict == I
    assert cmp.claim_rg().verdict == cmp.NOT_MEASURED
    assert [c for c, _ in cmp.CLAIMS] == ["funnel", "temperature", "rg", "order_chaos", "spread", "low_index",
                                         "long_range"]


# --- measurements -------------------------------------------------------------------------------------------------


def test_stage_steps():
    assert cp.stage_steps(800, 4) == (0, 200, 400, 800) and cp.stage_steps(40, 2) == (0, 40)
    with pytest.raises(ValueError, match="2\\^\\(stages-2\\)"):
        cp.stage_steps(30, 4)


def _longest_path(layer) -> int:
    if isinstance(layer, mlp.Dense):
        return 1
    return max(_longest_path(layer.first) + _longest_path(layer.second), _longest_path(layer.short))


def _hidden_params(net) -> int:
    return mlp.param_count(net.layers[1:-1])


@pytest.mark.parametrize("columns", [2, 3])
def test_depth_architecture_matches_depth_and_parameter_count(columns):
    width, depth = 24, 8
    nets = {b: mlp.init(jax.random.key(0), cp.depth_architecture(b, depth, width, columns), activation="tanh",
                        block=b, columns=columns) for b in ("plain", "residual", "fractal")}
    for b, net in nets.items():
        assert sum(_longest_path(layer) for layer in net.layers[1:-1]) == depth, b  # hidden-to-hidden, longest path
    plain, fractal = _hidden_params(nets["plain"]), _hidden_params(nets["fractal"])
    assert plain == _hidden_params(nets["residual"]) == depth * (width * width + width)
    wf = cp.depth_architecture("fractal", depth, width, columns)[1]
    # equal to rounding of the width: |Δw| ≤ 1/2 changes w² + w by at most (w + 1)·(1/2)·2 / (w² + w) = 1/w
    assert abs(fractal - plain) / plain <= 1.0 / wf + 1e-12
    with pytest.raises(ValueError, match="divisible"):
        cp.depth_architecture("fractal", 6, width, 3)


def test_glass_minima_lie_in_the_band_of_the_pure_3_spin():
    """Converged descents at n = 64 end at minima (index 0) with energies in [E_0 − 0.1, E_th + 0.23].

    Lower edge: no state is below its sample's ground state, whose extensive energy fluctuates by O(1) about
    n·E_0 (Subag & Zeitouni 2017), i.e. by O(1/n) = 0.016 per spin here; 0.1 is six such units. Upper edge: at a
    minimum the tangent Hessian ∇²H − p e ≥ 0, its GOE part (radius r = √(2p(p−1))) has its lowest eigenvalue at
    −r(1 + n^(−2/3) χ/2) with χ Tracy–Widom (mean −1.21, sd 1.27), so e ≤ E_th − (r/2p) n^(−2/3) χ; χ ≥ −6.29
    (4 sd below its mean) gives E_th + 0.227.
    """
    n, p = 64, 3
    g = cp.glass_minima(jax.random.key(3), n, p, samples=2, replicas=8, stages=(0, 500, 2000), step_size=0.1,
                        tolerance=1e-5)
    conv = g.converged
    assert conv.mean() >= 0.75  # enough minima for the check to mean something
    e_final = g.energy[..., -1][conv]
    r = math.sqrt(2 * p * (p - 1))
    upper = ETH_P3 - (r / (2 * p)) * n ** (-2 / 3) * (-1.21 - 4 * 1.27)
    assert upper == pytest.approx(ETH_P3 + 0.227, abs=1e-3)
    assert np.all(g.index[..., -1][conv] == 0.0)
    assert np.all((e_final >= E0_P3 - 0.1) & (e_final <= upper))
    # negative control: the random starts (stage 0) are far outside the band — energy per spin ≈ 0 with
    # sd √(ξ(1)/n) = √(1/(2n)) = 0.088: their mean within 4 standard errors of 0
    start = g.energy[..., 0]
    assert np.all(start > upper)
    assert abs(start.mean()) < 4 * math.sqrt(1 / (2 * n)) / math.sqrt(start.size)
    np.testing.assert_allclose(np.diagonal(g.overlap, axis1=-2, axis2=-1), 1.0, atol=1e-5)  # |s|² = n


def test_network_loss_and_slq_index_against_dense_computations():
    digits = nets_data.digits()  # a small net (43 parameters) on 8 pixels and 4 classes keeps the dense Hessian cheap
    x, y = jnp.asarray(digits.train.x[:32, 20:28]), jnp.asarray(digits.train.y[:32] % 4)
    stack = jax.vmap(lambda k: mlp.init(k, (8, 3, 4), activation="tanh", bias_std=0.3))(
        jax.random.split(jax.random.key(0), 2))
    # the loss, by hand in NumPy (float64): mean of logsumexp(z) − z_y
    losses = np.asarray(cp._losses(stack, x, y))
    for i in range(2):
        w1, b1, w2, b2 = (np.asarray(a[i], np.float64) for a in (stack.layers[0].w, stack.layers[0].b,
                                                                  stack.layers[1].w, stack.layers[1].b))
        z = np.tanh(np.asarray(x, np.float64) @ w1 + b1) @ w2 + b2
        want = np.mean(special.logsumexp(z, axis=1) - z[np.arange(32), np.asarray(y)])
        assert losses[i] == pytest.approx(want, rel=1e-5)  # float32 forward pass
    # the index: fraction of eigenvalues below −τ λ_max of the dense Hessian (jax.hessian, eigvalsh)
    net = jax.tree_util.tree_map(lambda a: a[0], stack)
    flat, unravel = mlp.flatten(net)
    dense = np.asarray(jax.hessian(lambda v: cp.hessian.mlp_loss(net, x, y)(unravel(v)))(flat), np.float64)
    ev = np.linalg.eigvalsh(0.5 * (dense + dense.T))
    tau = 1e-3
    exact = np.mean(ev < -tau * ev.max())
    wrong = np.mean(ev < 0.2 * ev.max())
    one = jax.tree_util.tree_map(lambda a: a[:1], stack)
    mean, err = cp._slq_index(one, jax.random.split(jax.random.key(1), 1), x, y, jnp.float32(tau), num_probes=64,
                              num_steps=flat.size)  # m = dim: each probe's quadrature is exact
    mean, err = float(mean[0]), float(err[0])
    assert abs(mean - exact) < 3 * err + 1e-6
    assert abs(mean - wrong) > 3 * err  # negative control: a different threshold is told apart


def test_perceptron_landscapes():
    key = jax.random.key(5)
    digits = cp.perceptron_landscape(key, "digits", (0, 1), (2, 3))
    shuffled = cp.perceptron_landscape(key, "shuffled", (0, 1), (2, 3))
    random = cp.perceptron_landscape(key, "random", (0, 1), (2, 3))
    teacher = cp.perceptron_landscape(key, "teacher", (0, 1), (2, 3))
    np.testing.assert_array_equal(shuffled.patterns, digits.patterns)
    np.testing.assert_array_equal(np.sort(shuffled.labels), np.sort(digits.labels))
    assert not np.array_equal(shuffled.labels, digits.labels)
    np.testing.assert_array_equal(random.labels, digits.labels)
    assert set(np.unique(random.patterns)) == {-1.0, 1.0} and random.patterns.shape == digits.patterns.shape
    assert float(teacher.all_energies().min()) == 0.0  # the teacher classifies every pattern
    f = cp.perceptron_funnel(digits)
    assert f.overlap_min[-1] == f.ground_energy == float(digits.all_energies().min())
    with pytest.raises(ValueError, match="dataset"):
        cp.perceptron_landscape(key, "mnist")


def test_exact_gap_ratio_against_brute_force():
    model = rem.Perceptron.gardner(jax.random.key(2), 10, 8)
    e = np.asarray(model.all_energies(), np.float64)
    native = e.min()
    rest = e[e != native]
    want = (rest.mean() - native) / (rest.std() * math.sqrt(2 * math.log(rest.size)))
    assert cp.exact_gap_ratio(rem.density_of_states(model)) == pytest.approx(want, rel=1e-9)


def test_pixel_distances_and_sequences():
    grid = np.array(sorted({math.hypot(a, b) for a in range(8) for b in range(8)} - {0.0}))
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(cp.pixel_distances(rng.integers(0, 2, (200, 64))), grid)
    binary = (nets_data.digits().train.x > 0.5).astype(np.int8)
    d = cp.pixel_distances(binary)
    information.pixel_mutual_information(binary, d)  # every distance has pairs of varying pixels (no ValueError)
    a = cp.sequences(jax.random.key(0), "markov", length=64, num_sequences=400, alphabet=3, concentration=1e6)
    b = cp.sequences(jax.random.key(0), "markov", length=64, num_sequences=400, alphabet=3, concentration=1e6)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (400, 64) and a.min() >= 0 and a.max() <= 2
    # concentration → ∞: every row of the transition matrix is uniform, so each symbol has frequency 1/3; the
    # sequences' first symbols are independent draws: within 4 binomial standard errors
    freq = np.bincount(a[:, 0], minlength=3) / 400
    assert np.all(np.abs(freq - 1 / 3) < 4 * math.sqrt((1 / 3) * (2 / 3) / 400))
    with pytest.raises(ValueError, match="power-of-2"):
        cp.sequences(jax.random.key(0), "pcfg", length=48)


# --- summary ------------------------------------------------------------------------------------------------------


def test_failure_depth():
    assert compare_summary.failure_depth([4, 8, 16], [0.9, 0.4, 0.1], 0.5) == 8.0
    assert math.isnan(compare_summary.failure_depth([4, 8], [0.9, 0.8], 0.5))


SUMMARY_CONFIG = """
[run]
kind = "compare"
seed = 0
[compare]
panels = ["minima", "index", "funnel"]
widths = [8, 16, 32]
seeds = 4
steps = 4
stages = 2
sizes = [8, 16, 32, 64]
samples = 2
replicas = 4
descent_steps = 4
funnel_datasets = ["digits", "random"]
funnel_pairs = [[0, 1], [2, 3]]
funnel_shape = [2, 3]
"""


@pytest.mark.parametrize("exponent", [-2.0, 2.0])
def test_summary_schema_and_planted_numbers(exponent):
    """A carry with planted numbers: the datasets equal their independent computation, every dataset's dims match
    its shape, and the spread claim follows the planted exponent (negative control: +2 is not supported; with 4
    seeds the spread is known to ±41%, so over widths 8…32 the exponent to ±0.42: ±2 is 4.8σ away from 0)."""
    from runs import config
    from runs.jobs.compare import CompareJob

    job = CompareJob(config.loads(SUMMARY_CONFIG))
    carry = job.init(None)
    o = job.options
    z = np.array([-1.5, -0.5, 0.5, 1.5])
    z = z / np.std(z, ddof=1)  # sd exactly 1
    e0 = theory.pspin_ground_state_energy(3)
    for i, n in enumerate(o.sizes):
        eps = 0.1 + 0.05 * n**-0.5 * np.tile(z, 2)  # M·R = 8 minima, spread 0.05 n^-1/2 · sd(tile)
        carry["glass_energy"][i, :, :, -1] = (e0 * (1 - eps)).reshape(2, 4)
        carry["glass_energy"][i, :, :, 0] = 0.0
        carry["glass_index"][i] = 0.0
        carry["glass_overlap"][i] = np.eye(4)
    for i, w in enumerate(o.widths):
        carry["net_loss"][i, :, 0] = 2.0
        carry["net_loss"][i, :, -1] = 2.0 * (0.05 + 0.01 * float(w) ** exponent * z)
        carry["net_overlap"][i] = np.eye(4)
    out = job.summarize_final({}, carry)
    for name, (dims, values) in out.items():
        assert len(dims) == np.ndim(values), name
        for axis, dim in enumerate(dims):
            if dim in out:
                assert np.shape(values)[axis] == len(out[dim][1]), (name, dim)
    eps_glass = out["minimum_energy"][1][1]
    want = cmp.glass_normalized_energy(carry["glass_energy"][..., -1].astype(np.float64), 3).reshape(4, 8)
    np.testing.assert_allclose(eps_glass[:, :8], want, rtol=1e-6)
    assert np.all(np.isnan(eps_glass[:, 8:]))  # NaN-padded past M·R
    assert np.isnan(out["minimum_energy"][1][0, 3]).all()  # the network side has 3 sizes, not 4
    # float32 carry: the planted spreads are exact to ~1e-6 relative, so the fitted exponents to 1e-4
    assert out["spread_exponent"][1][1] == pytest.approx(-0.5, abs=1e-4)
    assert out["spread_exponent"][1][0] == pytest.approx(exponent, abs=1e-4)
    table = dict(zip(out["claim"][1], out["claim_verdict"][1], strict=True))
    assert len(table) == 7 and table["rg"] == cmp.NOT_MEASURED and table["temperature"] == cmp.NOT_MEASURED
    assert table["spread"] == (cmp.SUPPORTED if exponent < 0 else cmp.NOT_SUPPORTED)
