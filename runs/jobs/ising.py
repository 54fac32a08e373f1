"""Job kind ``ising``: 2D/3D Ising or Edwards–Anderson Monte Carlo over temperatures × replicas × disorder.

The whole batch (disorder samples × temperatures × replicas) is one vmapped, jitted program; temperatures are
traced, so the sweep compiles once. Series recorded every ``record_every`` steps: ``energy_per_spin`` and
``magnetization_per_spin`` (and, for spin glasses, the overlap ``q`` of replica pairs 2k, 2k+1).
Summaries over the measurement window (records after ``equilibration``): per (disorder, temperature) the mean
energy, |m|, Binder cumulant, susceptibility and specific heat, each with a jackknife error over the independent
replicas, and the exact finite-L (Kaufman) and L → ∞ (Onsager) values where they exist.

``split = "rows"`` lays each lattice out in slabs of rows (slices of the first axis) over ``run.devices``, for
lattices too large for one device: 2D Ising Metropolis on the packed split kernel (``kernels.split_metropolis``),
every other Metropolis or heat-bath lattice on ``kernels.split_generic.split_checkerboard``. Both give the
configurations of the unsplit run bit for bit; energies too, except with Gaussian couplings, whose per-slab float32
sums round differently from the unsplit kernel's running sum (each within float32 summation error of the exact one).

``packing = "auto"`` (the default) runs Metropolis and heat bath on the multi-spin kernels
(``physics.kernels.multispin``: 32 chains per uint32 word) when the model allows it — ``model = "ising"`` with
``field = 0``, or ``"edwards_anderson"`` with ``disorder = "pm1"`` and ``field = 0``, unsplit — and the chains of one
temperature (replicas × disorder samples) fill words (a multiple of 32). Then the batch is vmapped over temperatures
only: all samples and replicas of one temperature are one ``kernels.metropolis(model, T, replicas=R,
packing="multispin")`` (resp. ``kernels.heat_bath``) batch (``physics.kernels``: consecutive replicas in different
words). It starts from the configurations the plain path starts from, and its checkpoints hold the plain
configurations ``(disorder, temperature, replica, *shape)`` int8.
Over several devices its batch is temperatures × words (a device count that does not divide it is refused, naming
``packing = "plain"``). ``packing = "plain"`` keeps the one-kernel-per-chain program. The root attributes
``sweep_kernel`` (``"multispin_metropolis"``, ``"multispin_heat_bath"``, ``"multispin_parallel_tempering"`` or the
plain ``kernel``) and ``multispin_words`` (words per temperature, 0 for the plain kernel) record which ran, and
``pt_base`` (parallel tempering only) the sweep at every rung.

Parallel tempering, with either ``pt_base``, packs under the same conditions: the ladders of the replicas ×
disorder samples (chain → (word, bit) as above) run as ``multispin_words`` words of 32 on
``kernels.multispin_parallel_tempering(..., rule=pt_base)`` (swaps decided per chain; ``jax.vmap`` over the words,
each word's key a split of the step's key), with the plain PT path's initial configurations, datasets and dims
(``swap_acceptance`` per chain and pair, as the plain ladders record it). Its carry is (word, rung, …), so only the
words split over devices. Its checkpoint holds the plain configurations ``(disorder, replica, temperature,
*shape)`` int8 in rung order, the parity of the next swap proposals, and each chain's walker labels, directions and
round trips: the configurations and the parity are all the dynamics reads (energies are recomputed exactly from the
spins), so the resumed run continues bit for bit, and the walker bookkeeping resumes with it.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import physics
from physics import kernels, lattice, observables, run, theory
from physics.kernels import chains_to_words, words_to_chains  # the chain → (word, bit) rule of packed batches
from physics.kernels.base import Kernel
from physics.kernels.split_generic import split_checkerboard

from ..config import ConfigError, option, require_multiples
from .base import Job, Series

__all__ = ["IsingJob", "IsingConfig"]


@dataclasses.dataclass(frozen=True)
class IsingConfig:
    """The ``[ising]`` table."""

    model: Literal["ising", "edwards_anderson"] = option("ising", help="ferromagnet or EA spin glass")
    shape: tuple[int, ...] = option((16, 16), ge=2, min_len=2, help="side lengths (2 or 3 of them)")
    J: float = option(1.0, help="Ising coupling")
    field: float = option(0.0, help="uniform field h")
    disorder: Literal["gaussian", "pm1"] = option("gaussian", help="EA coupling distribution")
    disorder_samples: int = option(1, ge=1, help="independent coupling samples (EA)")
    temperatures: tuple[float, ...] = option((2.0, 2.269, 2.5), gt=0.0, min_len=1, distinct=True,
                                              help="temperature list")
    replicas: int = option(8, ge=1, help="independent chains per temperature and disorder sample")
    kernel: Literal["metropolis", "heat_bath", "wolff", "parallel_tempering"] = option("metropolis")
    pt_base: Literal["metropolis", "heat_bath"] = option("metropolis", help="base kernel of parallel tempering")
    equilibration: int = option(1000, ge=0, help="steps discarded before measuring")
    measurement: int = option(5000, gt=0, help="steps measured")
    record_every: int = option(10, ge=1, help="steps between records")
    split: Literal["none", "rows"] = option("none", help='"rows": one lattice in row slabs over the devices')
    packing: Literal["auto", "plain"] = option("auto", help='"auto": multi-spin words where the '
                                                            'model allows it; "plain": never')

    def validate(self, prefix: str):
        if len(self.shape) not in (2, 3):
            raise ConfigError(f"{prefix}.shape = {list(self.shape)}: must have 2 or 3 side lengths")
        if self.kernel != "wolff" and any(s % 2 for s in self.shape):
            raise ConfigError(f"{prefix}.shape = {list(self.shape)}: {self.kernel} uses checkerboard sweeps and "
                              f"needs even side lengths (or use kernel = 'wolff')")
        if self.kernel == "wolff" and (self.model != "ising" or self.J <= 0 or self.field != 0):
            raise ConfigError(f"{prefix}.kernel = 'wolff': needs model = 'ising' with J > 0 and field = 0")
        if self.kernel == "parallel_tempering" and len(self.temperatures) < 2:
            raise ConfigError(f"{prefix}.temperatures = {list(self.temperatures)}: parallel tempering needs ≥ 2")
        require_multiples(self, prefix, ("equilibration", "measurement"))
        if self.split == "rows" and self.kernel not in ("metropolis", "heat_bath"):
            raise ConfigError(f"{prefix}.split = 'rows': splits one lattice's checkerboard sweeps (kernel = "
                              f"'metropolis' or 'heat_bath'); kernel = {self.kernel!r} has no split version ("
                              f"{_UNSPLIT[self.kernel]})")


# why a kernel cannot run on a lattice split in row slabs
_UNSPLIT = {
    "wolff": "a cluster can span the whole lattice, so its growth is not a local update with halo rows",
    "parallel_tempering": "it exchanges whole configurations between temperatures; split one lattice per "
                          "temperature with metropolis or heat_bath instead",
}


class IsingJob(Job):
    kind = "ising"
    Config = IsingConfig

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        self.temps = np.asarray(o.temperatures, np.float32)
        self.spin_glass = o.model == "edwards_anderson"
        d = len(o.shape)
        samples = o.disorder_samples if self.spin_glass else 1
        if self.spin_glass:
            dkey = jax.random.fold_in(jax.random.key(config.run.seed), 2)
            self.couplings = jax.vmap(
                lambda k: lattice.EdwardsAnderson.random(k, o.shape, o.disorder).couplings
            )(jax.random.split(dkey, samples))
        else:
            self.couplings = jnp.full((samples, 1), o.J, jnp.float32)
        del d
        self.mesh = self._row_mesh(config) if o.split == "rows" else None
        self.multispin = self._packs()
        if self.multispin:
            self._check_packed_batch_splits(config)
        self._advance = physics.jit(self._advance_impl, static_argnames="num")  # 512-bit vectors on a CPU

    def _packs(self) -> bool:
        """The run takes the multi-spin path (module docstring): decided from the config alone."""
        o = self.options
        chains = o.replicas * self.couplings.shape[0]
        bonds_pm1 = o.model == "ising" or o.disorder == "pm1"
        # every checkerboard kernel has a multi-spin version (either pt_base is a multispin.RULES rule); Wolff not
        checkerboard = o.kernel != "wolff"
        return (o.packing == "auto" and checkerboard and o.split == "none" and o.field == 0
                and bonds_pm1 and chains % kernels.multispin.REPLICAS == 0)

    @property
    def _packed_ladders(self) -> bool:
        """Parallel tempering on the multi-spin path (``multispin_parallel_tempering``, one ladder per word)."""
        return self.multispin and self.options.kernel == "parallel_tempering"

    def _check_packed_batch_splits(self, config):
        """The multi-spin carry's batch is temperatures × words (``batch_ndim``), fewer units than the plain path's
        disorder × temperatures: refuse a device count that does not divide it, naming the way out."""
        from ..sharding import partition, select_devices

        devices = len(select_devices(config.run.devices))
        words = self.multispin_words
        batch = (words,) if self._packed_ladders else (len(self.temps), words)
        what = f"{words} word(s)" if self._packed_ladders else f"{batch[0]} temperature(s) × {words} word(s)"
        try:
            partition(batch, devices)
        except ConfigError as e:
            raise ConfigError(f"ising.packing = 'auto': the multi-spin path runs {self.options.replicas} × "
                              f"{self.couplings.shape[0]} chains per temperature as {words} word(s) of 32, so its "
                              f"batch is {what}; set ising.packing = 'plain' to split disorder"
                              f" × {'replica' if self._packed_ladders else 'temperature'} instead. {e}") from None

    def _row_mesh(self, config):
        """The devices the lattice's rows are split over (``run.devices``), refused when the rows do not split."""
        from jax.sharding import Mesh

        from physics.kernels.split import row_split_counts

        from ..sharding import select_devices

        devices = select_devices(config.run.devices)
        rows = self.options.shape[0]
        if rows % (2 * len(devices)):
            fits = row_split_counts(rows)
            raise ConfigError(f"ising.shape = {list(self.options.shape)}: split = 'rows' over {len(devices)} "
                              f"device(s) needs the rows divisible by 2 × {len(devices)}; device counts that "
                              f"split {rows} rows: {fits} (run.devices)")
        return Mesh(np.asarray(devices), ("rows",))

    # --- sizes ------------------------------------------------------------------------------------------
    @property
    def total_steps(self):
        return self.options.equilibration + self.options.measurement

    @property
    def record_every(self):
        return self.options.record_every

    @property
    def batch_ndim(self):
        # carry (disorder, temperature, …), or (disorder, replica, temperature, …) for parallel tempering, whose
        # ladders exchange temperatures: its temperature axis stays whole. A lattice split in rows lays itself out.
        # Multi-spin tempering carries (word, rung, …): only the words split.
        if self.mesh is not None:
            return None
        return 1 if self._packed_ladders else 2

    placement_axis = "rows"  # when split = "rows"

    @property
    def default_chunk_steps(self):
        o = self.options
        per_chunk = max(o.record_every, (self.total_steps // 10) // o.record_every * o.record_every)
        return per_chunk

    @property
    def n(self):
        return int(np.prod(self.options.shape))

    def estimate_bytes(self):
        """Bytes of the run, about; with ``split = "rows"`` the devices' count times the most one device holds
        (the pipeline checks ``estimate_bytes / devices`` against one device's memory)."""
        o = self.options
        chains = self.couplings.shape[0] * len(self.temps) * o.replicas
        records = self.total_steps // o.record_every
        if self.mesh is None:
            return chains * (self.n * 16 + records * 12)
        devices = self.mesh.devices.size
        # a device holds its slab plus two halo slices on each side during a sweep (the packed 2D kernel: fewer)
        rows = o.shape[0] // devices
        slab_sites = (rows + 4) * (self.n // o.shape[0])
        # per site and chain: spins and the sweep's float32 temporaries (16 bytes, as unsplit); the EA state also
        # carries its couplings (4 bytes per bond direction), and the kernel one halo-padded copy per sample
        per_site = 16 + (4 * len(o.shape) if self.spin_glass else 0)
        bonds = self.couplings.shape[0] * slab_sites * 4 * len(o.shape) if self.spin_glass else 0
        per_device = chains * (slab_sites * per_site + records * 12) + bonds  # records: replicated scalars
        return devices * per_device

    @property
    def _packed_split(self) -> bool:
        """The 2D Ising Metropolis lattice split in rows runs on the packed kernel (``kernels.split_metropolis``)."""
        o = self.options
        return o.model == "ising" and len(o.shape) == 2 and o.kernel == "metropolis"

    # --- model and kernel -------------------------------------------------------------------------------
    def _model(self, couplings):
        o = self.options
        if self.spin_glass:
            return lattice.EdwardsAnderson(o.shape, couplings, o.field)
        return lattice.Ising(o.shape, couplings[0], o.field)

    def _kernel(self, model, temperature):
        o = self.options
        if o.kernel == "parallel_tempering":
            base = getattr(kernels, o.pt_base)
            return kernels.parallel_tempering(lambda t: base(model, t), temperature)
        if self.mesh is not None and self._packed_split:
            return kernels.split_metropolis(model, temperature, self.mesh)
        if self.mesh is not None:
            return split_checkerboard(model, temperature, self.mesh, algorithm=o.kernel)
        return getattr(kernels, o.kernel)(model, temperature)

    # --- layout -----------------------------------------------------------------------------------------
    def layout(self):
        dims = ("disorder", "temperature", "replica", "time")
        out = {"energy_per_spin": Series(dims), "magnetization_per_spin": Series(dims)}
        if self.spin_glass and self.options.replicas >= 2:
            out["overlap"] = Series(("disorder", "temperature", "pair", "time"))
        if self.options.kernel == "parallel_tempering":
            out["swap_acceptance"] = Series(("disorder", "replica", "pair_of_temperatures", "time"))
        return out

    def coords(self):
        o = self.options
        c = {
            "disorder": np.arange(self.couplings.shape[0]),
            "temperature": self.temps,
            "replica": np.arange(o.replicas),
        }
        if self.spin_glass and o.replicas >= 2:
            c["pair"] = np.arange(o.replicas // 2)
        if o.kernel == "parallel_tempering":
            c["pair_of_temperatures"] = np.arange(len(self.temps) - 1)
        return c

    # --- state ------------------------------------------------------------------------------------------
    def _packed_model(self):
        """The model of the multi-spin path: the ferromagnet, or every disorder sample as one ``EdwardsAnderson``
        with a leading sample axis."""
        o = self.options
        if self.spin_glass:
            return lattice.EdwardsAnderson(o.shape, self.couplings, o.field)
        return lattice.Ising(o.shape, self.couplings[0, 0], o.field)

    def _packed_kernel(self, temperature):
        """Every disorder sample's replicas at one temperature as one multi-spin batch (``.x``: ``(R, *shape)`` for
        the ferromagnet, ``(disorder, R, *shape)`` for the spin glass)."""
        sweep = getattr(kernels, self.options.kernel)  # kernels.metropolis or kernels.heat_bath
        return sweep(self._packed_model(), temperature, replicas=self.options.replicas, packing="multispin")

    def _packed_configurations(self, state):
        """``(disorder, replica, *shape)`` configurations of one temperature's multi-spin batch."""
        return state.x if self.spin_glass else state.x[None]

    def _packed_states(self, xs):
        """The multi-spin carry, vmapped over temperatures, from ``(disorder, temperature, replica, *shape)``."""
        temps = jnp.asarray(self.temps)
        key = jax.random.key(0)  # the multi-spin init draws nothing: the state is the configuration

        def one(t, x):
            return self._packed_kernel(t).init(key, x if self.spin_glass else x[0])

        return jax.jit(jax.vmap(one, in_axes=(0, 1)))(temps, xs)

    def _initial_configurations(self, key):
        """``(disorder, temperature, replica, *shape)``: the configurations the plain path's ``init`` draws."""
        o = self.options
        n_dis, n_t = self.couplings.shape[0], len(self.temps)
        model0 = self._model(self.couplings[0])
        keys = jax.random.split(key, n_dis * n_t).reshape(n_dis, n_t)

        def one(k):
            return jax.vmap(model0.random_state)(jax.random.split(k, o.replicas))

        return jax.jit(jax.vmap(jax.vmap(one)))(keys)

    def _chain_kernel(self, couplings, temperature):
        """All replicas of one disorder sample at one temperature (or one PT ladder) as one batched kernel."""
        return kernels.batched(self._kernel(self._model(couplings), temperature), self.options.replicas)

    def _per_disorder(self, fn):
        """vmap ``fn(couplings, temperature, *args)`` over disorder and, unless PT, over temperature."""
        temps = jnp.asarray(self.temps)
        if self.options.kernel == "parallel_tempering":
            return jax.vmap(lambda c, *a: fn(c, temps, *a))

        def over_disorder(c, *args):
            return jax.vmap(fn, in_axes=(None, 0) + (0,) * len(args))(c, temps, *args)

        return jax.vmap(over_disorder)

    # --- the multi-spin tempering path ---------------------------------------------------------------------
    @property
    def _chains(self) -> tuple[int, int]:
        """The batch of ladders: (disorder samples, replicas); chain c (row-major) is bit ``c // W`` of word
        ``c % W``, so the replicas 2k, 2k+1 of an overlap sit in different words (``physics.kernels``)."""
        return int(self.couplings.shape[0]), self.options.replicas

    def _ladder_words(self) -> Kernel:
        """Every ladder as ``multispin_words`` words of 32, each one ``multispin_parallel_tempering`` over the
        temperatures, ``jax.vmap``-ed over the words; each word's step draws its own split key. ``init`` takes the
        plain PT layout ``(disorder, replica, temperature, *shape)``; the state has a leading word axis. The sweep
        at every rung is ``pt_base`` (``rule``)."""
        temps = jnp.asarray(self.temps)
        rule = self.options.pt_base
        chains, words = self._chains, self.multispin_words
        model = self._packed_model()
        if self.spin_glass:
            def ladder(bonds):
                return kernels.multispin_parallel_tempering(bonds, temps, rule=rule)
        else:
            def ladder(_):
                return kernels.multispin_parallel_tempering(model, temps, rule=rule)
        per_word = kernels.word_bonds(model, chains)  # (W, 32, d, *shape) bonds, or a (W,) placeholder

        def init(key, xs):
            rungs_first = jnp.swapaxes(chains_to_words(xs, chains), 1, 2)  # (W, temperature, 32, *shape)
            return jax.vmap(lambda b, x: ladder(b).init(key, x))(per_word, rungs_first)

        def step(key, state):
            keys = jax.random.split(key, words)
            return jax.vmap(lambda b, k, s: ladder(b).step(k, s))(per_word, keys, state)

        return Kernel(init, step)

    def _to_chains(self, per_word):
        """``(W, temperature, 32, …)`` word values to the plain PT layout ``(disorder, replica, temperature, …)``."""
        return words_to_chains(jnp.swapaxes(per_word, 1, 2), self._chains)

    def _from_chains(self, per_chain):
        """Inverse of :meth:`_to_chains`."""
        return jnp.swapaxes(chains_to_words(per_chain, self._chains), 1, 2)

    def _initial_ladders(self, key):
        """``(disorder, replica, temperature, *shape)``: the configurations the plain PT path's ``init`` draws."""
        o = self.options
        n_dis, n_t = self.couplings.shape[0], len(self.temps)
        model0 = self._model(self.couplings[0])

        def one(k):
            ks = jax.random.split(k, o.replicas * n_t).reshape(o.replicas, n_t)
            return jax.vmap(jax.vmap(model0.random_state))(ks)

        return jax.jit(jax.vmap(one))(jax.random.split(key, n_dis))

    def _ladder_checkpoint(self, carry) -> _Ladders:
        return _Ladders(self._to_chains(jax.vmap(lambda s: s.x)(carry)), self._to_chains(carry.labels),
                        self._to_chains(carry.direction), words_to_chains(carry.round_trips, self._chains),
                        carry.parity[0])  # the words step in lockstep: one parity

    def _ladders_from_checkpoint(self, saved: _Ladders):
        state = self._ladder_words().init(None, saved.x)  # energies: recomputed exactly from the spins
        return state._replace(labels=self._from_chains(saved.labels), direction=self._from_chains(saved.direction),
                              round_trips=chains_to_words(saved.round_trips, self._chains),
                              parity=jnp.broadcast_to(saved.parity, (self.multispin_words,)))

    def _advance_ladders(self, carry, key, start, num):
        """The multi-spin tempering path: one batch of words, observed in the plain PT layout."""
        o = self.options

        def observe(state, info):
            view = _Configurations(self._to_chains(jax.vmap(lambda s: s.x)(state)), self._to_chains(state.energy))
            swaps = _Swaps(self._to_chains(info.swap_accepted))  # (disorder, replica, pair of temperatures)
            return jax.vmap(self._observe)(view, swaps)  # over disorder

        carry, trace = run(self._ladder_words(), key, carry, num, observe=observe, every=o.record_every,
                           start=start)
        return carry, {k: jnp.moveaxis(v, 0, -1) for k, v in trace.items()}  # (time, disorder, …) → time last

    def init(self, key):
        o = self.options
        if self._packed_ladders:
            return jax.jit(self._ladder_words().init)(None, self._initial_ladders(key))
        if self.multispin:
            return self._packed_states(self._initial_configurations(key))
        pt = o.kernel == "parallel_tempering"
        n_dis, n_t = self.couplings.shape[0], len(self.temps)
        model0 = self._model(self.couplings[0])
        sample = (o.replicas, n_t) if pt else (o.replicas,)
        keys = jax.random.split(key, n_dis * (1 if pt else n_t)).reshape(n_dis, *(() if pt else (n_t,)))

        def one(c, t, k):
            ks = jax.random.split(k, int(np.prod(sample))).reshape(*sample)
            xs = jax.vmap(jax.vmap(model0.random_state))(ks) if pt else jax.vmap(model0.random_state)(ks)
            return self._chain_kernel(c, t).init(k, xs)

        return jax.jit(self._per_disorder(one))(self.couplings, keys)

    def to_checkpoint(self, carry):
        """A lattice split in rows is saved as its plain configurations (the slabs' halo rows depend on the device
        count) and a multi-spin carry (its words depend on the packing) as their plain configurations, ``(disorder,
        temperature, replica, *shape)`` int8; every other carry as it is. Multi-spin tempering saves :class:`_Ladders`:
        what a resume needs to continue bit for bit — the configurations per rung and the parity of the next swap
        proposals (the energies are exact functions of the spins) — and the walkers' bookkeeping (labels,
        direction, round trips), which steers nothing but is the state, all in the plain PT layout."""
        if self._packed_ladders:
            return jax.jit(self._ladder_checkpoint)(carry)
        if self.multispin:
            xs = jax.jit(jax.vmap(self._packed_configurations))(carry)  # (temperature, disorder, replica, …)
            return jnp.swapaxes(xs, 0, 1)
        if self.mesh is None:
            return carry
        return jax.jit(self._per_disorder(lambda c, t, st: jax.vmap(lambda one: one.x)(st)))(self.couplings, carry)

    def from_checkpoint(self, saved):
        if self._packed_ladders:
            return jax.jit(self._ladders_from_checkpoint)(jax.tree.map(jnp.asarray, saved))
        if self.multispin:
            return self._packed_states(jnp.asarray(saved))
        if self.mesh is None:
            return saved
        key = jax.random.key(0)  # the split kernel's init draws nothing: the state is the configuration

        def one(c, t, xs):
            return self._chain_kernel(c, t).init(key, xs)

        return jax.jit(self._per_disorder(one))(self.couplings, jnp.asarray(saved))

    def _observe(self, state, info):
        o = self.options
        axes = tuple(range(-len(o.shape), 0))
        e = state.energy / self.n
        m = jnp.mean(state.x.astype(jnp.float32), axis=axes)
        out = {"energy_per_spin": e, "magnetization_per_spin": m}
        if self.spin_glass and o.replicas >= 2:
            pairs = o.replicas // 2 * 2
            a, b = state.x[0:pairs:2].astype(jnp.float32), state.x[1:pairs:2].astype(jnp.float32)
            out["overlap"] = jnp.mean(a * b, axis=axes)
        if o.kernel == "parallel_tempering":
            out = {k: jnp.swapaxes(v, 0, 1) for k, v in out.items()}  # (replica, T) → (T, replica)
            out["swap_acceptance"] = info.swap_accepted.astype(jnp.float32)  # (replica, pair)
        return out

    def _advance_impl(self, carry, key, start, num):
        o = self.options
        if self._packed_ladders:
            return self._advance_ladders(carry, key, start, num)
        if self.multispin:
            return self._advance_packed(carry, key, start, num)
        pt = o.kernel == "parallel_tempering"
        n_dis, n_t = self.couplings.shape[0], len(self.temps)
        idx = jnp.arange(n_dis * (1 if pt else n_t), dtype=jnp.uint32).reshape(n_dis, *(() if pt else (n_t,)))

        def chain(c, t, state, index):
            return run(self._chain_kernel(c, t), jax.random.fold_in(key, index), state, num,
                       observe=self._observe, every=o.record_every, start=start)

        carry, trace = self._per_disorder(chain)(self.couplings, carry, idx)
        # Traces are (disorder, [temperature,] time, ...) → put time last.
        time_axis = 1 if pt else 2
        series = {k: jnp.moveaxis(v, time_axis, -1) for k, v in trace.items()}
        return carry, series

    def _advance_packed(self, carry, key, start, num):
        """The multi-spin path: one batch per temperature, its key ``fold_in(key, temperature index)``."""
        o = self.options
        idx = jnp.arange(len(self.temps), dtype=jnp.uint32)

        def observe(state, info):
            view = _Configurations(self._packed_configurations(state), state.energy.reshape(self.couplings.shape[0],
                                                                                              o.replicas))
            return jax.vmap(self._observe, in_axes=(0, None))(view, info)  # over disorder

        def chain(t, state, index):
            return run(self._packed_kernel(t), jax.random.fold_in(key, index), state, num, observe=observe,
                       every=o.record_every, start=start)

        carry, trace = jax.vmap(chain)(jnp.asarray(self.temps), carry, idx)
        # traces are (temperature, time, disorder, ...) → (disorder, temperature, ..., time)
        series = {k: jnp.moveaxis(jnp.moveaxis(v, 2, 0), 2, -1) for k, v in trace.items()}
        return carry, series

    def advance(self, carry, key, start, num):
        return self._advance(carry, key, jnp.asarray(start, jnp.uint32), num)

    # --- summaries and plots ----------------------------------------------------------------------------
    def _window(self, series):
        first = self.options.equilibration // self.options.record_every
        return {k: v[..., first:] for k, v in series.items()}

    def summarize(self, series):
        o = self.options
        s = self._window(series)
        e, m = s["energy_per_spin"].astype(np.float64), s["magnetization_per_spin"].astype(np.float64)
        n_dis, n_t = e.shape[:2]
        t = self.temps.astype(np.float64)
        estimators = {
            "energy_per_spin": lambda e_, m_, t_: e_.mean(),
            "abs_magnetization": lambda e_, m_, t_: np.abs(m_).mean(),
            "binder_cumulant": lambda e_, m_, t_: observables.binder_cumulant(m_.ravel()),
            "susceptibility": lambda e_, m_, t_: observables.susceptibility(m_.ravel(), self.n, t_),
            "specific_heat": lambda e_, m_, t_: observables.specific_heat(e_.ravel() * self.n, self.n, t_),
        }
        out = {}
        dims = ("disorder", "temperature")
        for name, fn in estimators.items():
            mean = np.zeros((n_dis, n_t))
            err = np.zeros((n_dis, n_t))
            for d in range(n_dis):
                for i in range(n_t):
                    pair = np.stack([e[d, i], m[d, i]], axis=1)  # (replica, 2, time)
                    if o.replicas >= 2:
                        mean[d, i], err[d, i] = observables.jackknife(
                            lambda p: fn(p[:, 0], p[:, 1], t[i]), pair, axis=0)
                    else:  # one replica: binning error of the mean only
                        mean[d, i] = fn(pair[:, 0], pair[:, 1], t[i])
                        err[d, i] = np.nan
            out[f"{name}_mean"] = (dims, mean)
            out[f"{name}_stderr"] = (dims, err)
        if "overlap" in s:
            q = s["overlap"].astype(np.float64)
            q2 = (q**2).mean(axis=(-2, -1))
            q4 = (q**4).mean(axis=(-2, -1))
            out["overlap_squared"] = (dims, q2)
            out["spin_glass_binder"] = (dims, 0.5 * (3.0 - q4 / q2**2))
        if self._has_exact():
            L = o.shape[0]
            out["exact_energy_per_spin"] = (("temperature",), o.J * theory.kaufman_energy(L, t / o.J))
            out["exact_specific_heat"] = (("temperature",), theory.kaufman_specific_heat(L, t / o.J))
            out["onsager_energy_per_spin"] = (("temperature",), theory.onsager_energy(t, o.J))
        return out

    @property
    def sweep_kernel(self) -> str:
        """The kernel that ran: ``"multispin_metropolis"``, ``"multispin_heat_bath"`` or
        ``"multispin_parallel_tempering"`` (32 chains per word, ``packing = "auto"``; the tempering's sweep is
        ``pt_base``, recorded beside it) or the plain ``kernel`` name."""
        if self._packed_ladders:
            return "multispin_parallel_tempering"
        return f"multispin_{self.options.kernel}" if self.multispin else self.options.kernel

    @property
    def multispin_words(self) -> int:
        """Words of 32 chains per temperature on the multi-spin path; 0 when the plain kernel ran."""
        if not self.multispin:
            return 0
        return self.options.replicas * int(self.couplings.shape[0]) // kernels.multispin.REPLICAS

    def describe(self) -> str:
        return f"{super().describe()} [sweep kernel: {self.sweep_kernel}]"

    def attrs(self) -> dict:
        out = {"sweep_kernel": self.sweep_kernel, "multispin_words": self.multispin_words}
        if self.options.kernel == "parallel_tempering":
            # the sweep at every rung: the config text omits it when the default is taken
            out["pt_base"] = self.options.pt_base
        return out

    def _has_exact(self):
        o = self.options
        return (o.model == "ising" and len(o.shape) == 2 and o.shape[0] == o.shape[1] and o.field == 0
                and o.J > 0)

    def plot(self, h5, outdir):
        from ..plots import errorbar_panels

        o = self.options
        t = self.temps
        panels = []
        for name, label in (("energy_per_spin", "energy per spin"), ("abs_magnetization", "|m|"),
                            ("binder_cumulant", "Binder cumulant U"), ("specific_heat", "specific heat per spin")):
            mean, err = h5[f"{name}_mean"], h5[f"{name}_stderr"]
            curves = [(f"disorder {d}" if mean.shape[0] > 1 else "Monte Carlo", t, mean[d], err[d])
                      for d in range(mean.shape[0])]
            lines = []
            if self._has_exact():
                tt = np.linspace(t.min(), t.max(), 200)
                L = o.shape[0]
                if name == "energy_per_spin":
                    lines = [(f"Kaufman L={L}", tt, o.J * theory.kaufman_energy(L, tt / o.J)),
                             ("Onsager L=∞", tt, theory.onsager_energy(tt, o.J))]
                elif name == "abs_magnetization":
                    lines = [("Yang L=∞", tt, theory.yang_magnetization(tt, o.J))]
                elif name == "specific_heat":
                    lines = [(f"Kaufman L={L}", tt, theory.kaufman_specific_heat(L, tt / o.J))]
                elif name == "binder_cumulant":
                    lines = [("U* (L=∞, T_c)", tt, np.full_like(tt, theory.ising_binder_crossing()))]
            panels.append((label, curves, lines))
        title = f"{o.model} {'×'.join(map(str, o.shape))}, {o.kernel}, {o.replicas} replicas"
        return [errorbar_panels(panels, "temperature", title, outdir / "observables_vs_temperature.png")]


class _Configurations(NamedTuple):
    """What ``IsingJob._observe`` reads of a state: one sample's replicas ``x`` and their ``energy``."""

    x: jax.Array
    energy: jax.Array


class _Swaps(NamedTuple):
    """What ``IsingJob._observe`` reads of a PT step's info: ``swap_accepted`` ``(replica, pair of temperatures)``."""

    swap_accepted: jax.Array


class _Ladders(NamedTuple):
    """The checkpoint of multi-spin tempering, in the plain PT layout: ``x`` ``(disorder, replica, temperature,
    *shape)`` int8 ordered by rung; ``labels`` and ``direction`` ``(disorder, replica, temperature)`` and
    ``round_trips`` ``(disorder, replica)`` int32 (``MultispinPTState``'s walker bookkeeping per chain); ``parity``,
    the parity of the pairs the next step proposes."""

    x: jax.Array
    labels: jax.Array
    direction: jax.Array
    round_trips: jax.Array
    parity: jax.Array
