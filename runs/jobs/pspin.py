"""Job kind ``pspin``: spherical p-spin dynamics over disorder samples × temperatures × replicas, with aging.

One jitted program advances the whole batch: disorder samples are vmapped (batched coupling tensors), and inside
one sample all temperature × replica chains share the couplings, so a dense gradient is one GEMM over the chains.
Temperatures are traced (the sweep compiles once). Parallel tempering runs one ladder over ``temperatures`` per
replica.

Series, one record every ``record_every`` steps: ``energy_per_spin``; ``overlap`` of replica pairs (2k, 2k+1) of
the same sample and temperature, giving P(q); ``correlation`` C(t, t_w) = s(t)·s(t_w)/n for every waiting time
t_w of ``waiting_times`` (log-spaced for aging; NaN before t_w), from snapshots held in the carry; ``grad_norm``
(Riemannian gradient RMS) for Langevin and gradient descent; ``swap_acceptance`` for parallel tempering.
Summaries: per-temperature energies with stderr over independent chains (replicas × samples) and the theory
(``-ξ(1)/T``, Cugliandolo–Kurchan e_th(T), E_th, E_0), the overlap histogram P(q), and, when ``hessian`` is on,
the Riemannian Hessian spectrum and index of the end states next to the semicircle (centre ``-p e``, radius
``√(2p(p-1))``).

One model over several devices (``split = "couplings"``, hashed couplings): instead of dividing the chains, every
device of ``run.devices`` steps every chain (replicated state) and generates only its share of the coupling blocks:
the block list of each degree is cut into ``coupling_groups`` groups, each device takes ``coupling_groups / D``
consecutive ones, and the partial gradients of all groups are gathered and added in group order
(``physics.spherical_split``). Energies (all Metropolis needs) come from the same ordered sums by Euler's relation.
So a run is bitwise the same on every device count dividing ``coupling_groups`` (default 8: 1, 2, 4 or 8 devices;
another count is refused with the allowed ones); it differs from the unsplit hashed job only by the order of that
sum (float32 rounding). More groups allow more device counts but gather ``coupling_groups × chains × n`` floats per
evaluation. The memory estimate (``run --dry-run``) is per device: the whole state plus the gathered partials.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

import physics
from physics import kernels, observables, run, spherical, spherical_split, theory
from physics.kernels.sphere import metropolis_sphere

from ..config import ConfigError, option, require_multiples
from .base import Job, Series

__all__ = ["PSpinJob", "PSpinConfig"]

_HESSIAN_MAX_N = 1024
_SPLIT_AXIS = "couplings"  # the mesh axis the coupling groups are divided over (split = "couplings")


@dataclasses.dataclass(frozen=True)
class PSpinConfig:
    """The ``[pspin]`` table."""

    n: int = option(64, ge=2, le=spherical.MAX_N,
                    help="number of spins (≤ 2^30; past 46,340 the extended coupling counter of physics.spherical)")
    p: int = option(3, ge=2, le=8, help="degree of a pure p-spin (ignored when mixture is given)")
    mixture: dict | None = option(None, help='mixed model {"p": c_p}, e.g. {"2" = 0.5, "3" = 1.0}')
    couplings: Literal["dense", "hashed"] = option("dense", help="stored tensor or generated on the fly")
    dynamics: Literal["langevin", "metropolis", "gradient_descent", "parallel_tempering"] = option("langevin")
    pt_base: Literal["metropolis", "langevin"] = option("metropolis", help="base kernel of parallel tempering")
    temperatures: tuple[float, ...] = option((1.0,), ge=0.0, min_len=1, distinct=True,
                                              help="temperatures (0 allowed for Langevin)")
    step_size: float = option(0.01, gt=0.0, help="Langevin/descent time step; Metropolis move size per coordinate")
    tolerance: float = option(1e-4, ge=0.0, help="gradient descent stops when |P∇H|/√n < tolerance")
    replicas: int = option(8, ge=1, help="chains per temperature and disorder sample")
    disorder_samples: int = option(1, ge=1, help="independent coupling samples")
    steps: int = option(10000, gt=0, help="total steps")
    equilibration: int = option(2000, ge=0, help="steps discarded before averaging")
    record_every: int = option(10, ge=1, help="steps between records")
    waiting_times: tuple[int, ...] = option((0,), ge=0, min_len=1, help="t_w of the two-time correlation")
    hessian: bool = option(False, help="Riemannian Hessian spectrum of the end states (n ≤ 1024)")
    block: int = option(0, ge=0, help="hashed coupling tile edge b (0: automatic, b^p ≈ 2^18 on CPU, 2^24 on GPU)")
    split: Literal["none", "couplings"] = option(
        "none", help='"couplings": one hashed model per sample, its coupling blocks divided over run.devices')
    coupling_groups: int = option(8, ge=1, help="split = 'couplings': groups of coupling blocks, summed in order; "
                                                "the result depends on it, never on the device count (a multiple)")

    def degrees(self):
        if self.mixture is None:
            return self.p
        return {int(k): float(v) for k, v in self.mixture.items()}

    def validate(self, prefix: str):
        if self.mixture is not None:
            for k, v in self.mixture.items():
                if not str(k).isdigit() or not 2 <= int(k) <= 8:
                    raise ConfigError(f"{prefix}.mixture = {self.mixture!r}: keys must be degrees \"2\"..\"8\"")
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                    raise ConfigError(f"{prefix}.mixture.{k} = {v!r}: must be a number ≥ 0")
            if not any(v > 0 for v in self.mixture.values()):
                raise ConfigError(f"{prefix}.mixture = {self.mixture!r}: at least one weight must be > 0")
        if self.dynamics in ("metropolis", "parallel_tempering") and min(self.temperatures) <= 0:
            raise ConfigError(f"{prefix}.temperatures = {list(self.temperatures)}: {self.dynamics} needs T > 0")
        if self.dynamics == "parallel_tempering" and len(self.temperatures) < 2:
            raise ConfigError(f"{prefix}.temperatures = {list(self.temperatures)}: parallel tempering needs ≥ 2")
        require_multiples(self, prefix, ("steps", "equilibration"))
        if self.equilibration >= self.steps:
            raise ConfigError(f"{prefix}.equilibration = {self.equilibration}: must be < steps = {self.steps}")
        for tw in self.waiting_times:
            if tw % self.record_every or tw >= self.steps:
                raise ConfigError(f"{prefix}.waiting_times = {list(self.waiting_times)}: each must be a multiple of "
                                  f"record_every = {self.record_every} and < steps = {self.steps}")
        if self.hessian and self.n > _HESSIAN_MAX_N:
            raise ConfigError(f"{prefix}.hessian = true: needs n ≤ {_HESSIAN_MAX_N} (n = {self.n})")
        if self.split == "couplings" and self.couplings != "hashed":
            raise ConfigError(f"{prefix}.split = 'couplings': divides the generated coupling blocks among the devices; "
                              f"needs couplings = 'hashed' (got {self.couplings!r}); allowed: split = 'none' with "
                              f"any couplings, or split = 'couplings' with couplings = 'hashed'")
        if self.block and self.couplings != "hashed":
            raise ConfigError(f"{prefix}.block = {self.block}: sets the tile of generated couplings; needs couplings "
                              f"= 'hashed' (got {self.couplings!r}), or leave block = 0")
        if self.block > self.n:
            raise ConfigError(f"{prefix}.block = {self.block}: must be ≤ n = {self.n} (or 0: automatic)")


class PSpinJob(Job):
    kind = "pspin"
    Config = PSpinConfig
    placement_axis = _SPLIT_AXIS  # when split = "couplings" (batch_ndim is then None: the job lays itself out)

    @property
    def memory_hint(self):
        if self.options.split == "couplings":
            # every device holds every chain: more devices divide the work, not the memory
            return ("; lower pspin.replicas, the number of pspin.temperatures, pspin.disorder_samples, "
                    "pspin.coupling_groups or pspin.block")
        if self.options.couplings == "dense":
            return "; lower pspin.n, or use couplings = 'hashed' (O(n) memory)"
        return ("; lower pspin.n, pspin.replicas, the number of pspin.temperatures or pspin.disorder_samples, or "
                "record less often (pspin.record_every)")

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        self.temps = np.asarray(o.temperatures, np.float32)
        self.pt = o.dynamics == "parallel_tempering"
        self.degrees = o.degrees()
        self.tw = np.asarray(o.waiting_times, np.int64)
        self._final = None
        need = spherical.estimate_bytes(o.n, self.degrees, o.couplings, self._chains_per_sample)
        if o.couplings == "dense":
            budget, where = spherical._memory_budget()
            if need * o.disorder_samples > budget:
                raise ConfigError(
                    f"pspin.n = {o.n}, p = {self.degrees!r}: {o.disorder_samples} dense sample(s) need "
                    f"{need * o.disorder_samples:,} bytes, over the {budget:,} of {where}; use couplings = 'hashed'")
        dkey = jax.random.fold_in(jax.random.key(config.run.seed), 2)
        keys = jax.random.split(dkey, o.disorder_samples)
        block = o.block or None
        self.models = jax.jit(jax.vmap(lambda k: spherical.PSpin.random(k, o.n, self.degrees, couplings=o.couplings,
                                                                        block=block)))(keys)
        self.mesh = self._coupling_mesh(config) if o.split == "couplings" else None
        # 512-bit vectors on a CPU: the hashed couplings' evaluation 1.37× faster (n = 512, R = 64, same run)
        advance = self._advance_impl if self.mesh is None else self._split_advance
        self._advance = physics.jit(advance, static_argnames="num")

    def _coupling_mesh(self, config):
        """The devices the coupling groups are divided over (``run.devices``); the models go on it replicated and
        each device gets ``coupling_groups / devices`` consecutive groups of every degree's block table."""
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        from ..sharding import select_devices

        devices = select_devices(config.run.devices)
        groups = self.options.coupling_groups
        if groups % len(devices):
            fits = [d for d in range(1, groups + 1) if groups % d == 0]
            raise ConfigError(f"run.devices = {config.run.devices!r}: split = 'couplings' over {len(devices)} "
                              f"device(s) needs a device count dividing pspin.coupling_groups = {groups}; allowed "
                              f"counts: {fits} (or change pspin.coupling_groups)")
        mesh = Mesh(np.asarray(devices), (_SPLIT_AXIS,))
        self.models = jax.device_put(self.models, NamedSharding(mesh, PartitionSpec()))
        return mesh

    @functools.cached_property
    def tables(self):
        """Each degree's block table in ``coupling_groups`` groups, split over the mesh (built on first use: at
        large n it is ~10⁶ rows, which ``run --dry-run`` does not need)."""
        from jax.sharding import NamedSharding, PartitionSpec

        one_model = jax.tree.map(lambda a: a[0], self.models)
        return tuple(jax.device_put(t, NamedSharding(self.mesh, PartitionSpec(_SPLIT_AXIS)))
                     for t in spherical_split.group_tables(one_model, self.options.coupling_groups))

    # --- sizes ------------------------------------------------------------------------------------------
    @property
    def _chains_per_sample(self):
        return len(self.options.temperatures) * self.options.replicas

    @property
    def total_steps(self):
        return self.options.steps

    @property
    def record_every(self):
        return self.options.record_every

    @property
    def batch_ndim(self):
        if self.mesh is not None:
            return None  # every device holds every chain (replicated); the couplings are what is divided
        # carry (disorder, temperature, replica, …): disorder × temperature are split; the replicas of one
        # sample stay together because a dense model's gradient treats them as one matrix product, whose
        # rounding could depend on how many columns a device holds. Parallel tempering: (disorder, replica, …).
        return 1 if self.pt else 2

    @property
    def default_chunk_steps(self):
        o = self.options
        return max(o.record_every, (o.steps // 10) // o.record_every * o.record_every)

    def estimate_bytes(self):
        """Bytes in all; with split = "couplings" the devices' total (``run --dry-run`` shows it divided by the
        device count: per device)."""
        o = self.options
        chains = o.disorder_samples * self._chains_per_sample
        records = o.steps // o.record_every
        per_sample = spherical.estimate_bytes(o.n, self.degrees, o.couplings, self._chains_per_sample,
                                              block=o.block or None)
        total = (o.disorder_samples * per_sample + chains * o.n * 4 * (4 + len(self.tw))
                 + chains * records * 4 * (3 + len(self.tw)))
        if self.mesh is None:
            return total
        # each device holds every chain and state (replicated), generates its own blocks, and receives the partial
        # gradients of all coupling_groups groups (float32, every chain) before adding them in order
        gathered = chains * o.coupling_groups * o.n * 4
        return (total + gathered) * self.mesh.devices.size

    # --- kernels ----------------------------------------------------------------------------------------
    def _single(self, model, temperature):
        o = self.options
        # the random walk on the sphere is registered for PSpin; a split model (GroupedPSpin) has the same
        # energy interface, so it takes that kernel directly
        metropolis = kernels.metropolis if isinstance(model, spherical.PSpin) else metropolis_sphere
        if o.dynamics == "langevin":
            return kernels.langevin(model, temperature, o.step_size)
        if o.dynamics == "gradient_descent":
            return kernels.gradient_descent(model, o.step_size, o.tolerance)
        if o.dynamics == "metropolis":
            return metropolis(model, temperature, o.step_size)
        base = self.options.pt_base
        make = ((lambda t: metropolis(model, t, o.step_size)) if base == "metropolis"
                else (lambda t: kernels.langevin(model, t, o.step_size)))
        return kernels.parallel_tempering(make, temperature)

    def _sample_kernel(self, model):
        """All chains of one disorder sample; states have leading axes (temperature, replica) or, for PT,
        (replica, temperature)."""
        temps = jnp.asarray(self.temps)
        r = self.options.replicas
        if self.pt:
            return kernels.batched(self._single(model, temps), r)

        def init(key, xs):
            keys = jax.random.split(key, temps.shape[0])
            return jax.vmap(lambda t, k, x: kernels.batched(self._single(model, t), r).init(k, x))(temps, keys, xs)

        def step(key, states):
            keys = jax.random.split(key, temps.shape[0])
            return jax.vmap(lambda t, k, s: kernels.batched(self._single(model, t), r).step(k, s))(
                temps, keys, states)

        return kernels.Kernel(init, step)

    def _tr(self, a):
        """(replica, temperature, ...) → (temperature, replica, ...) for PT states; identity otherwise."""
        return jnp.swapaxes(a, 0, 1) if self.pt else a

    # --- layout -----------------------------------------------------------------------------------------
    def layout(self):
        o = self.options
        dims = ("disorder", "temperature", "replica", "time")
        out = {"energy_per_spin": Series(dims),
               "correlation": Series(("disorder", "temperature", "replica", "waiting_time", "time"))}
        if o.replicas >= 2:
            out["overlap"] = Series(("disorder", "temperature", "pair", "time"))
        if o.dynamics in ("langevin", "gradient_descent"):
            out["grad_norm"] = Series(dims)
        if self.pt:
            out["swap_acceptance"] = Series(("disorder", "replica", "pair_of_temperatures", "time"))
        return out

    def coords(self):
        o = self.options
        c = {"disorder": np.arange(o.disorder_samples), "temperature": self.temps,
             "replica": np.arange(o.replicas), "waiting_time": self.tw}
        if o.replicas >= 2:
            c["pair"] = np.arange(o.replicas // 2)
        if self.pt:
            c["pair_of_temperatures"] = np.arange(len(self.temps) - 1)
        return c

    # --- split over the devices -------------------------------------------------------------------------
    def _view(self, model, tables):
        """The model the kernels see: itself, or (split = "couplings", inside ``shard_map``) its share of the
        coupling groups with the partial gradients gathered and added in group order."""
        if self.mesh is None:
            return model
        return spherical_split.GroupedPSpin(model, tables, _SPLIT_AXIS, self.options.coupling_groups)

    def _on_mesh(self, fn, replicated_args: int):
        """``fn(models, tables, *args)`` run on every device of the mesh: tables split by group, the rest (models,
        chains, keys) and the results replicated — each device steps every chain with the same gradient bits."""
        from jax.sharding import PartitionSpec

        rep = PartitionSpec()
        return jax.shard_map(fn, mesh=self.mesh, in_specs=(rep, PartitionSpec(_SPLIT_AXIS)) + (rep,) * replicated_args,
                             out_specs=rep, check_vma=False)

    def _split_advance(self, models, tables, carry, key, start, num):
        return self._on_mesh(lambda m, tb, c, k, s: self._advance_body(m, tb, c, k, s, num), 3)(
            models, tables, carry, key, start)

    def from_checkpoint(self, saved):
        if self.mesh is None:
            return saved
        from jax.sharding import NamedSharding, PartitionSpec

        return jax.device_put(saved, NamedSharding(self.mesh, PartitionSpec()))  # replicated, as init made it

    # --- state ------------------------------------------------------------------------------------------
    def init(self, key):
        if self.mesh is None:
            return jax.jit(self._init_body)(self.models, (), key)
        return jax.jit(self._on_mesh(self._init_body, 1))(self.models, self.tables, key)

    def _init_body(self, models, tables, key):
        o = self.options
        t, r = len(self.temps), o.replicas
        shape = (r, t) if self.pt else (t, r)

        def one(model, k):
            ks = jax.random.split(k, t * r).reshape(*shape)
            xs = jax.vmap(jax.vmap(model.random_state))(ks)
            states = self._sample_kernel(self._view(model, tables)).init(k, xs)
            x = self._tr(states.x)
            snaps = jnp.where(jnp.asarray(self.tw == 0)[:, None], x[:, :, None, :], 0.0)  # t_w = 0: the start
            return states, snaps

        keys = jax.random.split(key, o.disorder_samples)
        return jax.vmap(one)(models, keys)

    def _observe(self, states, info, snaps, t):
        o = self.options
        x = self._tr(states.x)  # (T, R, n)
        out = {"energy_per_spin": self._tr(states.energy) / o.n}
        corr = jnp.einsum("trn,trwn->trw", x, snaps) / o.n
        out["correlation"] = jnp.where(t >= jnp.asarray(self.tw, jnp.uint32), corr, jnp.nan)
        if o.replicas >= 2:
            pairs = o.replicas // 2 * 2
            out["overlap"] = jnp.sum(x[:, 0:pairs:2] * x[:, 1:pairs:2], axis=-1) / o.n
        if o.dynamics == "gradient_descent":
            out["grad_norm"] = states.grad_norm
        elif o.dynamics == "langevin":
            proj = jax.vmap(jax.vmap(spherical.project))(x, states.grad)
            out["grad_norm"] = jnp.linalg.norm(proj, axis=-1) / jnp.sqrt(jnp.float32(o.n))
        if self.pt:
            out["swap_acceptance"] = info.swap_accepted.astype(jnp.float32)
        return out

    def _advance_impl(self, carry, key, start, num):
        return self._advance_body(self.models, (), carry, key, start, num)

    def _advance_body(self, models, tables, carry, key, start, num):
        every = self.options.record_every
        tw = jnp.asarray(self.tw, jnp.uint32)

        def per_sample(model, states, snaps, index):
            kernel = self._sample_kernel(self._view(model, tables))
            kd = jax.random.fold_in(key, index)

            def one_record(c, r):
                st, sn = c
                t0 = start + r * every
                st, info = run(kernel, kd, st, every, observe=lambda s, i: i, every=every, start=t0)
                info = jax.tree_util.tree_map(lambda a: a[-1], info)
                t = t0 + every
                x = self._tr(st.x)
                sn = jnp.where((t == tw)[:, None], x[:, :, None, :], sn)
                return (st, sn), self._observe(st, info, sn, t)

            (states, snaps), obs = jax.lax.scan(one_record, (states, snaps),
                                                jnp.arange(num // every, dtype=jnp.uint32))
            return (states, snaps), obs

        index = jnp.arange(self.options.disorder_samples, dtype=jnp.uint32)
        carry, trace = jax.vmap(per_sample)(models, carry[0], carry[1], index)
        series = {k: jnp.moveaxis(v, 1, -1) for k, v in trace.items()}  # (disorder, time, ...) → time last
        return carry, series

    def advance(self, carry, key, start, num):
        start = jnp.asarray(start, jnp.uint32)
        if self.mesh is None:
            carry, series = self._advance(carry, key, start, num)
        else:
            carry, series = self._advance(self.models, self.tables, carry, key, start, num)
        if start + num >= self.total_steps and self.options.hessian:
            self._final = self._spectra(carry[0])
        return carry, series

    def _spectra(self, states):
        """Tangent Hessian eigenvalues of every end state: (disorder, temperature, replica, n-1)."""
        def per_sample(model, x):
            return jax.vmap(jax.vmap(lambda s: spherical.tangent_eigenvalues(model, s)))(self._tr(x))

        return np.asarray(jax.jit(jax.vmap(per_sample))(self.models, states.x))

    # --- summaries and plots ----------------------------------------------------------------------------
    def summarize(self, series):
        o = self.options
        first = o.equilibration // o.record_every
        e = series["energy_per_spin"][..., first:].astype(np.float64)  # (D, T, R, time)
        per_chain = e.mean(axis=-1)
        out = {}
        if o.disorder_samples >= 2:
            # Replicas of one sample share its couplings, so they are not independent draws of the disorder
            # average: the error is that of the per-sample means (each sample weighs the same).
            mean, err = observables.mean_stderr(per_chain.mean(axis=2), axis=0)
        elif o.replicas >= 2:  # one sample: the thermal error of its mean over independent chains
            mean, err = observables.mean_stderr(per_chain[0], axis=1)
        else:
            mean, err = per_chain.reshape(len(self.temps)), np.full(len(self.temps), np.nan)
        out["energy_per_spin_mean"] = (("temperature",), mean)
        out["energy_per_spin_stderr"] = (("temperature",), err)
        out["final_energy_per_spin"] = (("disorder", "temperature", "replica"), e[..., -1])
        t = self.temps.astype(np.float64)
        with np.errstate(divide="ignore"):
            para = np.where(t > 0, -theory.pspin_xi(1.0, self.degrees) / np.where(t > 0, t, 1.0), -np.inf)
        out["theory_paramagnetic_energy"] = (("temperature",), para)
        if isinstance(self.degrees, int) and self.degrees >= 3:
            p = self.degrees
            out["theory_threshold_energy_at"] = (("temperature",), theory.pspin_threshold_energy_at(t, p))
            out["theory_threshold_energy"] = ((), np.float64(theory.pspin_threshold_energy(p)))
            out["theory_ground_state_energy"] = ((), np.float64(theory.pspin_ground_state_energy(p)))
        if "overlap" in series:
            q = series["overlap"][..., first:].astype(np.float64)  # (D, T, pair, time)
            edges = np.linspace(-1.0, 1.0, 42)
            hist = np.stack([np.histogram(q[:, i].ravel(), bins=edges, density=True)[0]
                             for i in range(len(self.temps))])
            out["q_bin"] = (("q_bin",), 0.5 * (edges[1:] + edges[:-1]))
            out["overlap_distribution"] = (("temperature", "q_bin"), hist)
        c = series["correlation"].astype(np.float64)  # (D, T, R, W, time); NaN before t_w
        finite = np.isfinite(c)
        count = finite.sum(axis=(0, 2))
        total = np.where(finite, c, 0.0).sum(axis=(0, 2))
        out["correlation_mean"] = (("temperature", "waiting_time", "time"),
                                   np.where(count > 0, total / np.maximum(count, 1), np.nan))
        if self._final is not None:
            ev = self._final
            out["eigen"] = (("eigen",), np.arange(ev.shape[-1]))
            out["hessian_eigenvalues"] = (("disorder", "temperature", "replica", "eigen"), ev)
            out["hessian_index"] = (("disorder", "temperature", "replica"), np.sum(ev < 0, axis=-1))
        return out

    def plot(self, h5, outdir):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        o = self.options
        paths = []
        time = h5["time"][...]
        temps = self.temps
        pure = isinstance(self.degrees, int) and self.degrees >= 3
        # e(t) with the theory lines
        fig, ax = plt.subplots(figsize=(6, 4))
        e = h5["energy_per_spin"][...]
        for i, temp in enumerate(temps):
            line = ax.plot(time, e[:, i].mean(axis=(0, 1)), lw=1, label=f"T={temp:g}")[0]
            if temp > 0:
                ax.axhline(-theory.pspin_xi(1.0, self.degrees) / temp, color=line.get_color(), ls=":", lw=0.8)
            if pure:
                ax.axhline(theory.pspin_threshold_energy_at(float(temp), self.degrees), color=line.get_color(),
                           ls="--", lw=0.8)
        if pure:
            ax.axhline(theory.pspin_threshold_energy(self.degrees), color="k", ls="--", lw=1, label="E_th")
            ax.axhline(theory.pspin_ground_state_energy(self.degrees), color="k", ls="-.", lw=1, label="E_0")
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("energy per spin")
        ax.set_title(f"p-spin n={o.n}, {o.dynamics}: e(t); dotted -ξ(1)/T, dashed e_th(T)", fontsize=9)
        ax.legend(fontsize=7)
        paths.append(_save(fig, outdir / "energy_vs_time.png"))
        # P(q)
        if "overlap_distribution" in h5:
            fig, ax = plt.subplots(figsize=(5, 3.6))
            for i, temp in enumerate(temps):
                ax.plot(h5["q_bin"][...], h5["overlap_distribution"][i], label=f"T={temp:g}")
            ax.set_xlabel("q")
            ax.set_ylabel("P(q)")
            ax.legend(fontsize=7)
            paths.append(_save(fig, outdir / "overlap_distribution.png"))
        # C(t, t_w): one panel per temperature, one curve per waiting time
        c = h5["correlation_mean"][...]
        fig, axes = plt.subplots(1, len(temps), figsize=(3.6 * len(temps), 3.4), squeeze=False, sharey=True)
        for i, (ax, temp) in enumerate(zip(axes[0], temps)):
            for w, tw in enumerate(self.tw):
                lag = time - tw
                keep = (lag > 0) & np.isfinite(c[i, w])
                ax.plot(lag[keep], c[i, w][keep], lw=1, label=f"t_w={tw}")
            ax.set_xscale("log")
            ax.set_xlabel("t - t_w (steps)")
            ax.set_title(f"T={temp:g}", fontsize=9)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("C(t, t_w)")
        axes[0][-1].legend(fontsize=6)
        paths.append(_save(fig, outdir / "correlation_aging.png"))
        # Hessian spectrum with the semicircle
        if "hessian_eigenvalues" in h5 and pure:
            fig, ax = plt.subplots(figsize=(5.5, 3.8))
            ev = h5["hessian_eigenvalues"][...]
            ef = h5["final_energy_per_spin"][...]
            for i, temp in enumerate(temps):
                vals = ev[:, i].ravel()
                ax.hist(vals, bins=60, density=True, alpha=0.4, label=f"T={temp:g}")
                lam = np.linspace(vals.min() - 1, vals.max() + 1, 400)
                ax.plot(lam, theory.pspin_hessian_density(lam, float(ef[:, i].mean()), self.degrees), lw=1)
            ax.axvline(0, color="k", lw=0.6)
            ax.set_xlabel("Riemannian Hessian eigenvalue")
            ax.set_ylabel("density")
            ax.set_title("end states vs semicircle (centre -p e, radius √(2p(p-1)))", fontsize=8)
            ax.legend(fontsize=7)
            paths.append(_save(fig, outdir / "hessian_spectrum.png"))
        return paths


def _save(fig, path):
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
