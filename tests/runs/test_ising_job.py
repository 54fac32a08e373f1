"""Physics through the ``ising`` job: the job's own means and errors against exact values.

* 2D ferromagnet: energy and specific heat per spin against Kaufman's exact finite-L values, which the job
  records beside its means (``exact_*``).
* Edwards–Anderson in 2D (Gaussian bonds, 4×4) and 3D (±J bonds, 2×2×4): 16 spins, so every disorder sample the job
  drew is solved by enumerating its 2^16 states. Energy, ⟨q²⟩ and the spin-glass Binder parameter of the replica
  overlaps are compared with those exact values per disorder sample and temperature.
* Parallel tempering on the multi-spin path (2D ±J, 4×4): the same per-sample enumeration at every rung, and each
  neighbour pair's swap acceptance against its exact stationary value.
* The multi-spin path's checks (Kaufman, enumeration, tempering, bitwise resume) run with both base kernels,
  Metropolis and heat bath (``kernel``, resp. ``pt_base``).

Each harness returns z-scores; the positive test asserts them small and its negative control feeds the very same
recorded numbers to the harness with the theory evaluated at temperatures 5% off, which must be rejected.
"""
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import observables, theory
from runs import config, pipeline
from runs.jobs import job_kinds

# |z| bound for a correct sampler. Errors come from ≥ 16 independent chains or chain pairs (Student t, ≥ 15 dof):
# P(|t_15| > 4) ≈ 1.2e-3 per number, so the dozen numbers of a test exceed it with probability ≈ 1.5%; the
# seeds are fixed, so each test is deterministic.
Z_MAX = 4.0
# The negative controls: theory at T·(1 + WRONG) instead of T.
WRONG = 0.05

FERRO = """
[run]
kind = "ising"
seed = 4
[ising]
model = "ising"
shape = [8, 8]
temperatures = [2.0, 2.269, 2.6]
replicas = 16
kernel = "metropolis"
equilibration = 500
measurement = 4000
record_every = 10
"""

SPIN_GLASS = """
[run]
kind = "ising"
seed = 3
[ising]
model = "edwards_anderson"
disorder = "{disorder}"
shape = {shape}
temperatures = [1.0, 2.0]
replicas = 32
disorder_samples = 2
kernel = "metropolis"
equilibration = 500
measurement = 4000
record_every = 10
"""


def _run(text, tmp_path):
    cfg = config.loads(text)
    path = pipeline.execute(cfg, tmp_path / "run", progress=False)
    return cfg, path


# --- 2D ferromagnet against Kaufman ---------------------------------------------------------------------------


def _kaufman_z(results, size, temperatures):
    """z-scores of the job's energy and specific heat per spin against Kaufman's L = ``size`` values at
    ``temperatures`` (the job's own temperatures, or wrong ones for the control)."""
    energy = theory.kaufman_energy(size, temperatures)
    heat = theory.kaufman_specific_heat(size, temperatures)
    return {
        "energy": (results["energy_per_spin_mean"][0] - energy) / results["energy_per_spin_stderr"][0],
        "specific_heat": (results["specific_heat_mean"][0] - heat) / results["specific_heat_stderr"][0],
    }


def _assert_kaufman_with_control(results, size, temps):
    """Energy and specific heat within Z_MAX of Kaufman at every temperature; the negative control: the same numbers
    against Kaufman 5% off in temperature are rejected at every temperature for the energy (its slope, the specific
    heat, is ≥ 0.7 here) and somewhere for the specific heat."""
    z = _kaufman_z(results, size, temps)
    for name, values in z.items():
        assert np.all(np.abs(values) < Z_MAX), (name, dict(zip(temps.round(3).tolist(), values.round(2).tolist())))
    wrong = _kaufman_z(results, size, temps * (1 + WRONG))
    assert np.all(np.abs(wrong["energy"]) > Z_MAX), wrong["energy"].round(2)
    assert np.max(np.abs(wrong["specific_heat"])) > Z_MAX, wrong["specific_heat"].round(2)


def test_ising_job_ferromagnet_matches_kaufman(tmp_path):
    cfg, path = _run(FERRO, tmp_path)
    names = ("energy_per_spin_mean", "energy_per_spin_stderr", "specific_heat_mean", "specific_heat_stderr",
             "exact_energy_per_spin", "exact_specific_heat", "temperature")
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        results = {k: f[k][...] for k in names}
    temps = results["temperature"].astype(np.float64)
    size = cfg.job.shape[0]
    # the job records Kaufman's values for its own size and temperatures
    np.testing.assert_allclose(results["exact_energy_per_spin"], theory.kaufman_energy(size, temps), rtol=1e-6)
    np.testing.assert_allclose(results["exact_specific_heat"], theory.kaufman_specific_heat(size, temps), rtol=1e-6)
    _assert_kaufman_with_control(results, size, temps)


# --- Edwards–Anderson against enumeration ---------------------------------------------------------------------


def _all_spins(n):
    """The 2^n configurations as rows of ±1 (float64); bit k of the row index is site k (C order)."""
    index = np.arange(2**n, dtype=np.int64)
    return 1.0 - 2.0 * ((index[:, None] >> np.arange(n)) & 1)


def _enumerated_energies(couplings, shape):
    """H(s) = -Σ_mu Σ_i J_mu(i) s_i s_{i+e_mu} (periodic) for every configuration; ``couplings[mu, *site]``."""
    n = int(np.prod(shape))
    spins = _all_spins(n)
    site = np.arange(n).reshape(shape)
    energy = np.zeros(len(spins))
    for mu in range(len(shape)):
        neighbour = np.roll(site, -1, axis=mu).ravel()  # the site i + e_mu of each i
        energy -= (spins * couplings[mu].ravel() * spins[:, neighbour]).sum(axis=1)
    return energy


def _walsh_hadamard(values):
    """Unnormalized Walsh–Hadamard transform of a length-2^n vector (its own inverse up to 2^n)."""
    bits = int(np.log2(values.size))
    a = values.reshape((2,) * bits)
    for axis in range(bits):
        a0, a1 = np.take(a, 0, axis=axis), np.take(a, 1, axis=axis)
        a = np.stack([a0 + a1, a0 - a1], axis=axis)
    return a.ravel()


def _exact_spin_glass(energies, n, temperature):
    """Exact ⟨E⟩/n, ⟨q²⟩ and ⟨q⁴⟩ of two independent replicas at ``temperature``.

    The overlap of configurations a and b is q = 1 - 2 popcount(a XOR b)/n, so the law of a XOR b for two
    independent Boltzmann draws is the XOR-convolution r(x) = Σ_a p(a) p(a XOR x), which the Walsh–Hadamard
    transform W diagonalizes: r = W[(W p)²] / 2^n.
    """
    weights = np.exp(-(energies - energies.min()) / temperature)
    p = weights / weights.sum()
    r = _walsh_hadamard(_walsh_hadamard(p) ** 2) / p.size
    differing = _all_spins(n) < 0  # bit k of x set: site k differs between the two configurations
    q = 1.0 - 2.0 * differing.sum(axis=1) / n
    return (p @ energies) / n, r @ q**2, r @ q**4


def _binder(q):
    """The job's spin-glass Binder parameter g = (3 - ⟨q⁴⟩/⟨q²⟩²)/2 of overlaps pooled over pairs and time."""
    return 0.5 * (3.0 - np.mean(q**4) / np.mean(q**2) ** 2)


def _spin_glass_z(results, couplings, shape, temperatures):
    """z-scores, per disorder sample and temperature, of the job's energy, ⟨q²⟩ and spin-glass Binder parameter
    against enumeration at ``temperatures``. Errors: the job's jackknife over replicas for the energy; over the
    independent replica pairs (each pair's time average) for ⟨q²⟩ and, by jackknife, for g (the job records
    neither error)."""
    n = int(np.prod(shape))
    q = results["overlap"]  # (disorder, temperature, pair, time) in the measurement window
    z = {"energy": [], "q2": [], "binder": []}
    for d in range(couplings.shape[0]):
        energies = _enumerated_energies(couplings[d], shape)
        for i, t in enumerate(temperatures):
            e, q2, q4 = _exact_spin_glass(energies, n, t)
            z["energy"].append((results["energy_per_spin_mean"][d, i] - e) / results["energy_per_spin_stderr"][d, i])
            q2_err = observables.mean_stderr((q[d, i] ** 2).mean(axis=-1))[1]
            z["q2"].append((results["overlap_squared"][d, i] - q2) / q2_err)
            g_err = observables.jackknife(_binder, q[d, i], axis=0)[1]
            z["binder"].append((results["spin_glass_binder"][d, i] - 0.5 * (3.0 - q4 / q2**2)) / g_err)
    return {k: np.array(v) for k, v in z.items()}


@pytest.mark.parametrize("shape, disorder", [([4, 4], "gaussian"), ([2, 2, 4], "pm1")], ids=["2d", "3d"])
def test_ising_job_edwards_anderson_matches_enumeration(tmp_path, shape, disorder):
    cfg, path = _run(SPIN_GLASS.format(shape=shape, disorder=disorder), tmp_path)
    # the couplings the run drew: the job derives them from run.seed alone
    couplings = np.asarray(job_kinds()["ising"](cfg).couplings, np.float64)
    results, temps = _spin_glass_results(path, cfg)
    # the job's ⟨q²⟩ is the mean of the recorded overlaps over the measurement window
    np.testing.assert_allclose(results["overlap_squared"], (results["overlap"] ** 2).mean(axis=(-2, -1)),
                               rtol=1e-6)
    z = _spin_glass_z(results, couplings, tuple(shape), temps)
    for name, values in z.items():
        assert np.all(np.abs(values) < Z_MAX), (name, values.round(2))
    # negative control: the same records against the exact values at temperatures 5% off
    wrong = _spin_glass_z(results, couplings, tuple(shape), temps * (1 + WRONG))
    for name, values in wrong.items():
        assert np.max(np.abs(values)) > Z_MAX, (name, values.round(2))


# --- one lattice split in row slabs over devices (split = "rows") ---------------------------------------------

# The datasets computed from energies: with Gaussian bonds the split run's per-slab sums round differently
# (physics.kernels.split_generic); everything computed from the configurations alone stays bitwise.
ENERGY_DATASETS = {"energy_per_spin", "energy_per_spin_mean", "energy_per_spin_stderr", "specific_heat_mean",
                   "specific_heat_stderr"}


def _split_jobs(tmp_path_factory, *names):
    """A fresh interpreter with 4 CPU devices runs the named EA configs of ``split_generic_worker.JOBS`` split in
    rows over 4 devices and unsplit on 1, and plans a 64³ run."""
    from tests.devices import run_on_cpu_devices

    return run_on_cpu_devices(["-m", "tests.physics.split_generic_worker", "--job", *names],
                              tmp_path_factory.mktemp("split_jobs") / "report.json")


@pytest.fixture(scope="module")
def split_jobs(tmp_path_factory):
    return _split_jobs(tmp_path_factory, "ea3d_pm1_metropolis")


def test_split_pm1_job_on_4_devices_gives_the_unsplit_datasets_bitwise(split_jobs):
    """3D ±J EA, Metropolis: every dataset (energies included: integer bonds make every float32 sum exact) and
    the final configurations equal the 1-device unsplit run's."""
    report = split_jobs["ea3d_pm1_metropolis"]
    assert report["differences"] == {}, report["differences"]
    assert report["configuration_mismatches"] == 0 and report["configurations"] == 2 * 2 * 2 * 128
    mesh = report["mesh"]
    assert mesh["axis_names"] == ["rows"] and mesh["axis_sizes"] == [4] and mesh["devices_used"] == 4


@pytest.mark.slow
def test_split_gaussian_job_on_4_devices_differs_only_by_energy_rounding(tmp_path_factory):
    """2D Gaussian EA, heat bath: configurations, magnetizations and overlaps bitwise; the recorded energies per
    spin within the rigorous float32 rounding bound of the two summation orders (``_job_energy_bound_per_spin``),
    and only the energy datasets differ. (Slow: its own 4-device interpreter; the kernel-level Gaussian cases of
    test_split_generic.py run by default.)"""
    report = _split_jobs(tmp_path_factory, "ea2d_gaussian_heat_bath")["ea2d_gaussian_heat_bath"]
    assert report["configuration_mismatches"] == 0 and report["configurations"] == 2 * 2 * 2 * 128
    differences = report["differences"]
    assert set(differences) <= ENERGY_DATASETS, differences
    assert all(value is not None for value in differences.values()), differences
    bound = report["energy_bound_per_spin"]
    # the mean over records of energies each within the bound is within it too (float64 mean: no extra rounding
    # at this size)
    for name in ("energy_per_spin", "energy_per_spin_mean"):
        assert differences.get(name, 0.0) <= bound, (name, differences, bound)


def test_split_memory_estimate_is_per_device(split_jobs):
    """A 64³ lattice split over 4 devices: each holds 16 + 4 halo slices of the 64 + 4 one device holds (spins,
    sweep temporaries and couplings all scale with the slab; the few recorded scalars are negligible)."""
    plans = split_jobs["plans"]
    ratio = plans["split_4"]["memory_per_device_bytes"] / plans["split_1"]["memory_per_device_bytes"]
    assert abs(ratio - 20 / 68) < 1e-3, plans
    assert plans["split_4"]["memory_bytes"] == 4 * plans["split_4"]["memory_per_device_bytes"], plans


@pytest.mark.parametrize("model, shape, kernel", [
    ("ising", [4, 4, 4], "heat_bath"), ("ising", [4, 4, 4], "metropolis"), ("ising", [4, 4], "heat_bath"),
    ("edwards_anderson", [4, 4], "metropolis"), ("edwards_anderson", [4, 4, 4], "heat_bath"),
])
def test_split_rows_is_accepted_for_checkerboard_kernels(model, shape, kernel):
    cfg = config.loads(f'[run]\nkind = "ising"\n[ising]\nmodel = "{model}"\nshape = {shape}\nkernel = "{kernel}"\n'
                       'split = "rows"\n')
    assert cfg.job.split == "rows"


@pytest.mark.parametrize("kernel, reason", [
    ("wolff", "a cluster can span the whole lattice"),
    ("parallel_tempering", "it exchanges whole configurations between temperatures"),
])
def test_split_rows_refuses_cluster_and_tempering_kernels_with_the_reason(kernel, reason):
    text = (f'[run]\nkind = "ising"\n[ising]\nshape = [8, 8]\ntemperatures = [2.0, 2.5]\nkernel = "{kernel}"\n'
            'split = "rows"\n')
    with pytest.raises(config.ConfigError, match=rf"ising.split = 'rows': .*kernel = '{kernel}' has no split "
                                                 rf"version \({reason}"):
        config.loads(text)


# --- the multi-spin path (packing = "auto"): 32 chains per word ------------------------------------------------
# The physics checks above repeated where the job packs its chains (kernels.metropolis / kernels.heat_bath(...,
# replicas=R) select physics.kernels.multispin): Metropolis or heat bath, h = 0, ising or ±J EA, replicas × disorder
# samples a multiple of 32. SPIN_GLASS's 3D ±J case above (2 samples × 32 replicas) already runs packed; these add the
# 2D ferromagnet and 2D ±J, each with both kernels.

PACKED = "multispin_metropolis"
BASES = ("metropolis", "heat_bath")  # the kernels with a multi-spin version (physics.kernels.multispin.RULES)


def _multispin_words(path):
    """The words of 32 chains per temperature a finished run recorded (0: the plain kernel ran)."""
    with h5py.File(path, "r") as f:
        return int(f.attrs["multispin_words"])


def test_packing_is_chosen_from_the_config():
    def chosen(text):
        return job_kinds()["ising"](config.loads(text)).sweep_kernel

    packed_ferro = FERRO.replace("replicas = 16", "replicas = 32")
    assert chosen(packed_ferro) == PACKED
    assert chosen(SPIN_GLASS.format(shape=[2, 2, 4], disorder="pm1")) == PACKED  # the 3D test above
    assert chosen(FERRO) == "metropolis"  # 16 chains per temperature do not fill a word
    assert chosen(SPIN_GLASS.format(shape=[4, 4], disorder="gaussian")) == "metropolis"
    assert chosen(packed_ferro.replace("[ising]\n", "[ising]\nfield = 0.1\n")) == "metropolis"
    packed_heat_bath = packed_ferro.replace('"metropolis"', '"heat_bath"')
    assert chosen(packed_heat_bath) == "multispin_heat_bath"
    assert chosen(packed_heat_bath.replace("[ising]\n", "[ising]\nfield = 0.1\n")) == "heat_bath"
    assert chosen(packed_heat_bath.replace("[ising]\n", '[ising]\npacking = "plain"\n')) == "heat_bath"
    assert chosen(packed_ferro.replace("[ising]\n", '[ising]\npacking = "plain"\n')) == "metropolis"
    assert chosen(packed_ferro.replace('"metropolis"', '"wolff"')) == "wolff"  # no multi-spin cluster kernel
    with pytest.raises(config.ConfigError, match=r"ising.packing = 'multispin': must be one of"):
        config.loads(packed_ferro.replace("[ising]\n", '[ising]\npacking = "multispin"\n'))


@pytest.mark.parametrize("kernel", BASES)
def test_multispin_job_ferromagnet_matches_kaufman(tmp_path, kernel):
    """FERRO with 32 replicas (one word per temperature): Kaufman's energy and specific heat, with the control."""
    text = FERRO.replace("replicas = 16", "replicas = 32").replace('"metropolis"', f'"{kernel}"')
    cfg, path = _run(text, tmp_path)
    assert _multispin_words(path) == 1
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["sweep_kernel"] == f"multispin_{kernel}"
        results = {k: f[k][...] for k in ("energy_per_spin_mean", "energy_per_spin_stderr", "specific_heat_mean",
                                          "specific_heat_stderr")}
        temps = f["temperature"][...].astype(np.float64)
    size = cfg.job.shape[0]
    _assert_kaufman_with_control(results, size, temps)


def _spin_glass_results(path, cfg):
    first = cfg.job.equilibration // cfg.job.record_every
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        results = {k: f[k][...] for k in ("energy_per_spin_mean", "energy_per_spin_stderr", "overlap_squared",
                                          "spin_glass_binder")}
        results["overlap"] = f["overlap"][..., first:].astype(np.float64)
        temps = f["temperature"][...].astype(np.float64)
    return results, temps


PACKED_PM1_2D = SPIN_GLASS.format(shape=[4, 4], disorder="pm1")


@pytest.fixture(scope="module", params=BASES)
def packed_pm1_2d(request, tmp_path_factory):
    """The 2D ±J run on the multi-spin path with each kernel, shared by its physics test and its resume test (one
    compile)."""
    text = PACKED_PM1_2D.replace('"metropolis"', f'"{request.param}"')
    return _run(text, tmp_path_factory.mktemp(f"packed_pm1_2d_{request.param}"))


def test_multispin_job_pm1_edwards_anderson_2d_matches_enumeration(packed_pm1_2d):
    """2D ±J 4×4, 2 samples × 32 replicas (two words per temperature, each pair's replicas in different words):
    energy, ⟨q²⟩ and g of each sample against its enumeration, and the 5%-off control."""
    cfg, path = packed_pm1_2d
    assert _multispin_words(path) == 2
    with h5py.File(path, "r") as f:
        assert f.attrs["sweep_kernel"] == f"multispin_{cfg.job.kernel}"
    couplings = np.asarray(job_kinds()["ising"](cfg).couplings, np.float64)
    results, temps = _spin_glass_results(path, cfg)
    z = _spin_glass_z(results, couplings, (4, 4), temps)
    for name, values in z.items():
        assert np.all(np.abs(values) < Z_MAX), (name, values.round(2))
    wrong = _spin_glass_z(results, couplings, (4, 4), temps * (1 + WRONG))
    for name, values in wrong.items():
        assert np.max(np.abs(values)) > Z_MAX, (name, values.round(2))


def test_multispin_job_resumes_bitwise_from_plain_configurations(packed_pm1_2d, tmp_path):
    """Killed after its first chunk (of 10) and resumed: every dataset equals the uninterrupted run's, and the
    checkpoint holds the plain configurations ``(disorder, temperature, replica, *shape)`` int8 (the split job's
    format), which the resumed run packs again."""
    from runs.store import CHECKPOINT
    from tests.runs.sharded_worker import datasets, differences

    cfg, whole = packed_pm1_2d
    killed = tmp_path / "killed"
    pipeline.execute(config.loads(cfg.text), killed, progress=False, max_chunks=1)
    with np.load(killed / CHECKPOINT) as saved:
        leaves = [k for k in saved.files if k.startswith("leaf_")]
        assert leaves == ["leaf_00000"], saved.files
        spins = saved["leaf_00000"]
    assert spins.dtype == np.int8 and spins.shape == (2, 2, 32, 4, 4)
    assert set(np.unique(spins).tolist()) == {-1, 1}
    resumed = pipeline.resume(killed, progress=False)
    assert differences(datasets(whole), datasets(resumed)) == {}


# one word per temperature (2 samples × 16 replicas), 60 steps
SMALL_PACKED = """
[run]
kind = "ising"
seed = 8
[ising]
model = "edwards_anderson"
disorder = "pm1"
shape = [4, 4]
temperatures = [1.0, 2.0]
replicas = 16
disorder_samples = 2
kernel = "metropolis"
equilibration = 20
measurement = 40
record_every = 10
"""


def test_plain_packing_runs_one_batched_kernel_per_chain(tmp_path):
    """packing = "plain" on a config that would pack: the job's series are those of
    ``kernels.batched(kernels.metropolis(EdwardsAnderson(sample d), T_i), R)`` run by ``physics.run`` with the key
    ``fold_in(key, d·n_T + i)`` — the program the job ran before packing existed, rebuilt from public pieces."""
    from physics import kernels, lattice, run

    text = SMALL_PACKED.replace("[ising]\n", '[ising]\npacking = "plain"\n')
    job = job_kinds()["ising"](config.loads(text))
    assert job.sweep_kernel == "metropolis"
    carry = job.init(jax.random.key(1))
    key, steps = jax.random.key(2), job.total_steps
    _, series = job.advance(carry, key, 0, steps)
    o = job.options
    n_t = len(o.temperatures)

    @jax.jit
    def by_hand(couplings, temperature, state, index):
        model = lattice.EdwardsAnderson(tuple(o.shape), couplings, 0.0)
        kernel = kernels.batched(kernels.metropolis(model, temperature), o.replicas)
        return run(kernel, jax.random.fold_in(key, index), state, steps, every=o.record_every)[1]

    for d in range(job.couplings.shape[0]):
        for i, temperature in enumerate(job.temps):
            state = jax.tree.map(lambda a: a[d, i], carry)
            energies = by_hand(job.couplings[d], temperature, state, jnp.uint32(d * n_t + i))  # (time, replica)
            assert np.array_equal(np.asarray(series["energy_per_spin"][d, i]), np.asarray(energies.T) / job.n)


# --- parallel tempering on the multi-spin path ------------------------------------------------------------------
# kernel = "parallel_tempering" with pt_base = "metropolis" packs under the conditions above: each word is one
# kernels.multispin_parallel_tempering ladder of 32 chains (swaps decided per chain).

PACKED_PT = "multispin_parallel_tempering"

# 2D ±J 4×4, 2 samples × 32 replicas (two words), four rungs. record_every is odd so that the records alternate
# between steps proposing even and odd pairs: every pair's swaps are recorded.
PT_PM1_2D = """
[run]
kind = "ising"
seed = 5
[ising]
model = "edwards_anderson"
disorder = "pm1"
shape = [4, 4]
temperatures = [1.0, 1.3, 1.7, 2.2]
replicas = 32
disorder_samples = 2
kernel = "parallel_tempering"
pt_base = "metropolis"
equilibration = 500
measurement = 4000
record_every = 5
"""


@pytest.fixture(scope="module", params=BASES)
def packed_pt_2d(request, tmp_path_factory):
    """The ±J PT run on the multi-spin path with each base kernel, shared by its physics test and its resume
    test."""
    text = PT_PM1_2D.replace('pt_base = "metropolis"', f'pt_base = "{request.param}"')
    return _run(text, tmp_path_factory.mktemp(f"packed_pt_2d_{request.param}"))


def _exact_swap_acceptance(energies, t_low, t_high):
    """min(1, e^{(β_low - β_high)(E_low - E_high)}) averaged over independent Boltzmann draws at the two rungs:
    the stationary acceptance of a proposed swap (the configurations before it are distributed as the product)."""
    levels, degeneracy = np.unique(energies, return_counts=True)

    def law(t):
        w = degeneracy * np.exp(-(levels - levels.min()) / t)
        return w / w.sum()

    log_ratio = (1.0 / t_low - 1.0 / t_high) * (levels[:, None] - levels[None, :])
    return law(t_low) @ np.exp(np.minimum(log_ratio, 0.0)) @ law(t_high)


def _swap_acceptance_z(swaps, couplings, shape, temperatures, first, every):
    """z-scores, per disorder sample and neighbour pair, of the recorded swap acceptance against enumeration.

    ``swaps`` ``(disorder, replica, pair, record)`` holds the swaps of the recorded steps from record ``first`` on;
    record r follows global step ``(r + 1)·every - 1``, whose parity decides the pairs it proposed (the step
    starting at 0 proposes the even pairs). Each replica's rate over its proposed records is one independent
    number; the error is the stderr of their mean."""
    records = np.arange(first, first + swaps.shape[-1])
    step_parity = ((records + 1) * every - 1) % 2
    z = []
    for d in range(couplings.shape[0]):
        energies = _enumerated_energies(couplings[d], shape)
        for i in range(len(temperatures) - 1):
            proposed = step_parity == i % 2
            rate, err = observables.mean_stderr(swaps[d, :, i][:, proposed].mean(axis=-1))
            z.append((rate - _exact_swap_acceptance(energies, temperatures[i], temperatures[i + 1])) / err)
    return np.array(z)


def test_multispin_pt_job_pm1_2d_matches_enumeration(packed_pt_2d):
    """Energy, ⟨q²⟩ and g of each sample at every rung against its enumeration, the swap acceptance of every
    neighbour pair against its exact stationary value, and the 5%-off controls of both."""
    cfg, path = packed_pt_2d
    with h5py.File(path, "r") as f:
        assert f.attrs["sweep_kernel"] == PACKED_PT and int(f.attrs["multispin_words"]) == 2
        assert f.attrs["pt_base"] == cfg.job.pt_base
        first = cfg.job.equilibration // cfg.job.record_every
        swaps = f["swap_acceptance"][..., first:].astype(np.float64)
        # the plain PT path's layout
        assert [str(v) for v in f["swap_acceptance"].attrs["dims"]] == ["disorder", "replica",
                                                                        "pair_of_temperatures", "time"]
        assert [str(v) for v in f["overlap"].attrs["dims"]] == ["disorder", "temperature", "pair", "time"]
    couplings = np.asarray(job_kinds()["ising"](cfg).couplings, np.float64)
    results, temps = _spin_glass_results(path, cfg)
    assert swaps.shape[:3] == (2, 32, len(temps) - 1)
    z = _spin_glass_z(results, couplings, (4, 4), temps)
    z["swap"] = _swap_acceptance_z(swaps, couplings, (4, 4), temps, first, cfg.job.record_every)
    for name, values in z.items():
        assert np.all(np.abs(values) < Z_MAX), (name, values.round(2))
    wrong = _spin_glass_z(results, couplings, (4, 4), temps * (1 + WRONG))
    wrong["swap"] = _swap_acceptance_z(swaps, couplings, (4, 4), temps * (1 + WRONG), first, cfg.job.record_every)
    for name, values in wrong.items():
        assert np.max(np.abs(values)) > Z_MAX, (name, values.round(2))


def test_multispin_pt_job_resumes_bitwise(packed_pt_2d, tmp_path):
    """Killed after its first chunk (of 10) and resumed: every dataset and the final checkpoint (configurations,
    walker labels, directions, round trips, parity) equal the uninterrupted run's. The checkpoint holds the plain
    configurations in the plain PT layout ``(disorder, replica, temperature, *shape)`` int8."""
    from runs.store import CHECKPOINT
    from tests.runs.sharded_worker import datasets, differences

    cfg, whole = packed_pt_2d
    killed = tmp_path / "killed"
    pipeline.execute(config.loads(cfg.text), killed, progress=False, max_chunks=1)
    with np.load(killed / CHECKPOINT) as saved:
        leaves = sorted(k for k in saved.files if k.startswith("leaf_"))
        spins, labels, parity = saved["leaf_00000"], saved["leaf_00001"], saved["leaf_00004"]
    assert len(leaves) == 5, leaves
    n_t = len(cfg.job.temperatures)
    assert spins.dtype == np.int8 and spins.shape == (2, 32, n_t, 4, 4)
    assert set(np.unique(spins).tolist()) == {-1, 1}
    # every chain's ladder holds each walker once; 450 steps: the next step proposes the even pairs
    assert np.array_equal(np.sort(labels, axis=-1), np.broadcast_to(np.arange(n_t), labels.shape))
    assert parity.shape == () and int(parity) == 0
    resumed = pipeline.resume(killed, progress=False)
    assert differences(datasets(whole), datasets(resumed)) == {}
    with np.load(whole.parent / CHECKPOINT) as a, np.load(resumed.parent / CHECKPOINT) as b:
        for name in leaves + ["__step__"]:
            assert np.array_equal(a[name], b[name]), name


# one word (2 samples × 16 replicas), three rungs, 60 steps
SMALL_PT = SMALL_PACKED.replace("temperatures = [1.0, 2.0]", "temperatures = [1.0, 1.5, 2.0]").replace(
    'kernel = "metropolis"', 'kernel = "parallel_tempering"\npt_base = "metropolis"').replace(
    "record_every = 10", "record_every = 5")


def test_multispin_pt_is_chosen_from_the_config():
    def chosen(text):
        return job_kinds()["ising"](config.loads(text)).sweep_kernel

    assert chosen(SMALL_PT) == PACKED_PT
    assert chosen(SMALL_PT.replace('pt_base = "metropolis"', 'pt_base = "heat_bath"')) == PACKED_PT
    assert chosen(SMALL_PT.replace("replicas = 16", "replicas = 8")) == "parallel_tempering"  # 16 chains
    assert chosen(SMALL_PT.replace("[ising]\n", '[ising]\npacking = "plain"\n')) == "parallel_tempering"
    assert chosen(SMALL_PT.replace('disorder = "pm1"', 'disorder = "gaussian"')) == "parallel_tempering"


def test_plain_packing_runs_one_tempering_ladder_per_chain(tmp_path):
    """packing = "plain" with parallel tempering on a config that would pack (whose packed run starts from the same
    configurations): the job's series are those of
    ``kernels.batched(kernels.parallel_tempering(lambda T: kernels.metropolis(EdwardsAnderson(sample d), T),
    temperatures), R)`` run by ``physics.run`` with the key ``fold_in(key, d)`` — the plain PT program, rebuilt
    from public pieces."""
    from physics import kernels, lattice, run

    job = job_kinds()["ising"](config.loads(SMALL_PT.replace("[ising]\n", '[ising]\npacking = "plain"\n')))
    assert job.sweep_kernel == "parallel_tempering" and job.multispin_words == 0
    carry = job.init(jax.random.key(1))
    # the packed ladders start from these configurations (same key, same spins)
    packed = job_kinds()["ising"](config.loads(SMALL_PT))
    assert np.array_equal(np.asarray(packed.to_checkpoint(packed.init(jax.random.key(1))).x), np.asarray(carry.x))
    key, steps = jax.random.key(2), job.total_steps
    _, series = job.advance(carry, key, 0, steps)
    o = job.options

    @jax.jit
    def by_hand(couplings, state, index):
        model = lattice.EdwardsAnderson(tuple(o.shape), couplings, 0.0)
        ladder = kernels.parallel_tempering(lambda t: kernels.metropolis(model, t), jnp.asarray(job.temps))
        kernel = kernels.batched(ladder, o.replicas)

        def observe(state, info):
            return state.energy, info.swap_accepted

        return run(kernel, jax.random.fold_in(key, index), state, steps, observe=observe, every=o.record_every)[1]

    for d in range(job.couplings.shape[0]):
        state = jax.tree.map(lambda a: a[d], carry)
        energies, swaps = by_hand(job.couplings[d], state, jnp.uint32(d))  # (time, replica, T), (time, replica, pair)
        assert np.array_equal(np.asarray(series["energy_per_spin"][d]),
                              np.moveaxis(np.asarray(energies), 0, -1).swapaxes(0, 1) / job.n)
        assert np.array_equal(np.asarray(series["swap_acceptance"][d]),
                              np.moveaxis(np.asarray(swaps), 0, -1).astype(np.float32))
