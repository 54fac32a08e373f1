"""End-to-end run of a tiny ``rbm_rg`` config through the pipeline (Ising samples → RBM stack → measurements), and
the job's samples and layer-1 effective coupling against the exact torus correlations and ``physics.rg.rg_flow``."""
import h5py
import jax
import numpy as np
import pytest

from physics import rg
from runs import config, pipeline
from runs.config import ConfigError
from tests.stats import assert_within

TINY = """
[run]
kind = "rbm_rg"
seed = 1
[rbm_rg]
L = 8
K = 0.408
hidden = [16, 4]
replicas = 4
equilibration = 20
measurement = 400
record_every = 2
train_steps = 400
batch_size = 50
learning_rate = 0.01
l1 = 1e-3
num_chains = 50
"""


def test_rbm_rg_job_end_to_end(tmp_path):
    cfg = config.loads(TINY)
    path = pipeline.execute(cfg, tmp_path / "run", progress=False)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        assert f["spins"].shape[-1] == 210 and f["spins"].shape[0] == 4
        assert list(f["block_size"][...]) == [2, 4]
        assert f["weights_1"].shape == (64, 16) and f["weights_2"].shape == (16, 4)
        np.testing.assert_allclose(f["receptive_field_2"][...].sum(axis=0), 1.0, rtol=1e-9)
        radius = f["receptive_field_radius"][...]
        # every radius lies between a point (0) and a field spread over the whole 8×8 torus (√(2·63/12))
        assert np.all((radius > 0) & (radius < np.sqrt(2 * 63 / 12) + 1e-9)), radius
        # hidden units of a trained RBM track block spins of their scale far above chance: for unrelated units the
        # largest of 16 |corr| over 4 × 200 samples would be ≈ 2.4/√800 ≈ 0.09 (independent samples)
        corr, err = f["max_block_correlation"][...], f["max_block_correlation_err"][...]
        assert np.all(corr > 0.3), (corr, err)
        assert np.all(np.isfinite(f["effective_coupling"][...]))
    from runs.jobs import job_kinds

    job = job_kinds()["rbm_rg"](cfg)
    with h5py.File(path, "r") as f:
        paths = job.plot(f, tmp_path / "plots")
    assert paths and all(p.exists() for p in paths)


def test_rbm_rg_config_validation():
    with pytest.raises(ConfigError, match="hidden"):
        config.loads(TINY.replace("hidden = [16, 4]", "hidden = [15, 4]"))
    with pytest.raises(ConfigError, match="K"):
        config.loads(TINY.replace("K = 0.408", "K = -1.0"))


# ------------------------------------------------------------------------------------ physics of the recorded values
# Metropolis sweeps (not Wolff): at K = 0.3 a Wolff step flips a cluster of a few sites, so a few hundred steps from a
# random start are not equilibrated (K^(0) came out 5σ low at L = 16); 100 sweeps are ≫ the autocorrelation time of
# an 8×8 lattice at K ≤ 0.408. Errors are over the 8 independent chains.
COUPLING = """
[run]
kind = "rbm_rg"
seed = 1
[rbm_rg]
L = 8
K = {K}
hidden = [16, 4]
replicas = 8
kernel = "metropolis"
equilibration = 100
measurement = 400
record_every = 2
train_steps = 2000
batch_size = 50
learning_rate = 0.01
l1 = 1e-2
num_chains = 50
"""
K_TRUE = 0.408
K_NEAR = 0.392  # 4% below K_TRUE: resolved by the sampling check, not by the (approximate) RBM coupling
K_FAR = 0.3  # 26% below K_TRUE: what the RBM coupling check can tell apart (see COUPLING_ALLOWANCE)

# The RBM is not a majority-rule decimation: the job reads a layer as a coarse lattice by giving each 2×2 block its
# own hidden unit (the one-to-one assignment of maximal total |corr|, ``nets.rbm.block_assignment``) and samples it
# stochastically, so its K_eff is only close to rg_flow's K′ on the same samples. Measured at this configuration over
# 8 seeds × K ∈ {0.3, 0.408} (seeds 1–8): K_eff − K′ from −0.024 to +0.015 (mean −0.001); the allowance 0.03 covers
# these. (The per-block argmax used before let one unit serve two blocks — 13–16 distinct units of 16 — and read
# +0.007 to +0.052, mean +0.021: the copies' bonds read σσ = 1.) K′ moves by ≈ 0.18 between K = 0.3 and 0.408
# (≈ 1.7 per unit K), so the check resolves K to ≈ ±0.02. Not a size-independent agreement: at L = 16 (64 hidden
# units, 4 seeds × 2 K) the one-to-one reading gives −0.086 to −0.117 — that trained layer does not hold one unit
# per block, so some blocks get weakly correlated units and K_eff reads low; the check is made at L = 8 only.
# Layer 2 (4 units) is not checked: its coarse lattice is the 2×2 torus, where each site's two neighbours along an
# axis are one site.
COUPLING_K = 3.0
COUPLING_ALLOWANCE = 0.03


@pytest.fixture(scope="module")
def coupling_runs(tmp_path_factory):
    """``{K: (K_eff per layer, rg_flow of the recorded samples)}`` for one job run at each K (same seed)."""
    out = {}
    for K in (K_TRUE, K_NEAR, K_FAR):
        cfg = config.loads(COUPLING.format(K=K))
        path = pipeline.execute(cfg, tmp_path_factory.mktemp(f"rbm_rg_K{K}") / "run", progress=False)
        with h5py.File(path, "r") as f:
            measured = f["time"][...] > cfg.job.equilibration
            spins = f["spins"][..., measured]  # (replica, site, time)
            k_eff = f["effective_coupling"][...]
        L = cfg.job.L
        samples = np.moveaxis(spins, -1, 1).reshape(cfg.job.replicas, -1, L, L)
        out[K] = (k_eff, rg.rg_flow(samples, 2, levels=1, key=jax.random.key(7)))
    return out


def _sampling_z(flow, K):
    """z of K^(0) — the coupling whose exact 8×8 torus nn correlation matches the samples' — against K."""
    return (flow.couplings[0] - K) / flow.couplings_err[0]


def _coupling_excess(k_eff, flow):
    """(Δ, excess): layer-1 K_eff minus rg_flow's K′ after one b = 2 majority blocking, and
    |Δ| / (COUPLING_K·stderr(K′) + COUPLING_ALLOWANCE), which is ≤ 1 when the check accepts."""
    delta = k_eff[0] - flow.couplings[1]
    return delta, abs(delta) / (COUPLING_K * flow.couplings_err[1] + COUPLING_ALLOWANCE)


def test_rbm_rg_samples_are_ising_at_their_K(coupling_runs):
    """The job's recorded spins reproduce the exact nn correlation of the 8×8 torus at their K (3σ over 8 chains);
    negative control: the samples at K_NEAR (4% off) are rejected as samples at K_TRUE and vice versa.

    Measured (seed 1): z = +0.34, +0.16, −1.17 at K = 0.408, 0.392, 0.3; controls z = −5.71 and +7.17."""
    for K, (_, flow) in coupling_runs.items():
        assert_within(flow.couplings[0], K, flow.couplings_err[0], what=f"K^(0) of the samples at K = {K}")
    for sampled, claimed in ((K_NEAR, K_TRUE), (K_TRUE, K_NEAR)):
        z = _sampling_z(coupling_runs[sampled][1], claimed)
        assert abs(z) > 3.0, (sampled, claimed, z)


def test_rbm_rg_effective_coupling_follows_rg_flow(coupling_runs):
    """Layer-1 K_eff against rg_flow's K′ (b = 2, majority rule) of the same samples, within 3 standard errors of
    K′ plus COUPLING_ALLOWANCE; negative control: K_eff of the run at K_FAR against K′ of the samples at K_TRUE,
    and the reverse, are rejected.

    Measured (seed 1): Δ = +0.008, +0.008, +0.005 at K = 0.408, 0.392, 0.3; controls Δ = −0.172 and +0.185."""
    for K, (k_eff, flow) in coupling_runs.items():
        delta, excess = _coupling_excess(k_eff, flow)
        assert excess <= 1.0, (K, k_eff, flow.couplings, flow.couplings_err, delta)
    for trained, sampled in ((K_FAR, K_TRUE), (K_TRUE, K_FAR)):
        delta, excess = _coupling_excess(coupling_runs[trained][0], coupling_runs[sampled][1])
        assert excess > 1.0, (trained, sampled, delta)
