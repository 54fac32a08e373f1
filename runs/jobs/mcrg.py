"""Job kind ``mcrg``: Swendsen's Monte Carlo RG exponents of the 2D Ising model and a block-spin flow diagram.

One vmapped program samples an L×L Ising torus at the MCRG coupling ``K`` and at every ``flow_couplings`` value,
``replicas`` independent chains each. Every ``record_every`` steps it blocks each configuration ``levels`` times
(``physics.rg.block_spin``, majority rule, ties broken from a key derived from the record's global index) and
records the interaction sums ``S^(n)_α`` of every level (series ``sums``). Summaries:

* MCRG at ``K`` (``physics.rg.mcrg_from_sums``): ``y_t``, ``y_h`` per level with jackknife errors over replicas,
  the truncation series (leading exponent vs number of couplings) and all eigenvalue exponents;
* the flow: per starting coupling and level, the nearest-neighbour coupling whose exact L/b^n torus correlation
  matches the blocked samples (``physics.rg.match_coupling_2d``), mean ± stderr over replicas.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

import physics
from physics import kernels, lattice, observables, rg, run, theory

from ..config import ConfigError, option, require_multiples
from .base import Job, Series

__all__ = ["MCRGJob", "MCRGConfig"]


@dataclasses.dataclass(frozen=True)
class MCRGConfig:
    """The ``[mcrg]`` table."""

    L: int = option(32, ge=4, help="side of the L×L torus")
    K: float = option(0.4406868, gt=0.0, help="coupling of the MCRG analysis (K_c by default)")
    flow_couplings: tuple[float, ...] = option((), gt=0.0, distinct=True,
                                               help="extra starting couplings for the flow diagram")
    b: int = option(2, ge=2, le=3, help="block side")
    levels: int = option(2, ge=1, help="number of blockings")
    even: int = option(4, ge=1, le=len(rg.EVEN_2D), help="even couplings kept (nn, nnn, plaquette, 3rd nn, …)")
    odd: int = option(3, ge=1, le=len(rg.ODD_2D), help="odd couplings kept (m, 3-spin corner, 3-spin line, …)")
    replicas: int = option(8, ge=2, help="independent chains per coupling (jackknife units)")
    kernel: Literal["wolff", "metropolis", "heat_bath"] = option("wolff")
    equilibration: int = option(200, ge=0, help="steps discarded before measuring")
    measurement: int = option(2000, gt=0, help="steps measured")
    record_every: int = option(4, ge=1, help="steps between recorded (blocked) configurations")

    def validate(self, prefix: str):
        if self.L % self.b**self.levels:
            raise ConfigError(f"{prefix}.L = {self.L}: must be divisible by b**levels = {self.b**self.levels}")
        if self.kernel != "wolff" and self.L % 2:
            raise ConfigError(f"{prefix}.L = {self.L}: {self.kernel} needs an even side (or kernel = 'wolff')")
        require_multiples(self, prefix, ("equilibration", "measurement"))


class MCRGJob(Job):
    kind = "mcrg"
    Config = MCRGConfig

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        self.couplings = np.asarray((o.K, *o.flow_couplings), np.float32)
        self.model = lattice.Ising((o.L, o.L))
        self._advance = physics.jit(self._advance_impl, static_argnames="num")  # 512-bit vectors on a CPU

    @property
    def total_steps(self):
        return self.options.equilibration + self.options.measurement

    @property
    def record_every(self):
        return self.options.record_every

    @property
    def batch_ndim(self):
        return 2  # carry (coupling, replica, L, L)

    @property
    def default_chunk_steps(self):
        o = self.options
        return max(o.record_every, (self.total_steps // 10) // o.record_every * o.record_every)

    @property
    def n_interactions(self):
        return self.options.even + self.options.odd

    def estimate_bytes(self):
        o = self.options
        chains = len(self.couplings) * o.replicas
        records = self.total_steps // o.record_every
        return chains * (o.L * o.L * 24 + records * (o.levels + 1) * self.n_interactions * 4)

    def layout(self):
        return {"sums": Series(("coupling", "replica", "level", "interaction", "time"))}

    def coords(self):
        o = self.options
        return {"coupling": self.couplings, "replica": np.arange(o.replicas), "level": np.arange(o.levels + 1),
                "interaction": np.arange(self.n_interactions)}

    def _kernel(self, K):
        return kernels.batched(getattr(kernels, self.options.kernel)(self.model, 1.0 / K), self.options.replicas)

    def init(self, key):
        o = self.options

        def one(K, k):
            xs = jax.vmap(self.model.random_state)(jax.random.split(k, o.replicas))
            return self._kernel(K).init(k, xs)

        return jax.jit(jax.vmap(one))(jnp.asarray(self.couplings), jax.random.split(key, len(self.couplings)))

    def _advance_impl(self, carry, key, start, num):
        o = self.options
        every = o.record_every
        k_run, k_block = jax.random.split(key)

        def chain(K, state, index):
            kern = self._kernel(K)
            kr = jax.random.fold_in(k_run, index)
            kb = jax.random.fold_in(k_block, index)

            def record(state, r):
                step0 = start + r * jnp.uint32(every)
                state, _ = run(kern, kr, state, every, observe=lambda s, i: (), every=every, start=step0)
                tie_key = jax.random.fold_in(kb, step0 + jnp.uint32(every))  # global index: resumable
                sums = rg.blocked_interaction_sums(state.x, tie_key, o.b, levels=o.levels, even=o.even, odd=o.odd)
                return state, sums.astype(jnp.float32)

            return jax.lax.scan(record, state, jnp.arange(num // every, dtype=jnp.uint32))

        idx = jnp.arange(len(self.couplings), dtype=jnp.uint32)
        carry, trace = jax.vmap(chain)(jnp.asarray(self.couplings), carry, idx)
        return carry, {"sums": jnp.moveaxis(trace, 1, -1)}  # (coupling, time, replica, ...) → time last

    def advance(self, carry, key, start, num):
        return self._advance(carry, key, jnp.asarray(start, jnp.uint32), num)

    # --- summaries and plots ----------------------------------------------------------------------------
    def summarize(self, series):
        o = self.options
        first = o.equilibration // o.record_every
        sums = np.asarray(series["sums"], np.float64)[..., first:]  # (coupling, replica, level, inter, time)
        res = rg.mcrg_from_sums(np.moveaxis(sums[0], -1, 1), o.b, even=o.even, odd=o.odd)
        lv, ne, no = ("rg_level",), ("num_even",), ("num_odd",)
        out = {
            "rg_level": (lv, np.arange(1, o.levels + 1)),
            "num_even": (ne, np.arange(1, o.even + 1)),
            "num_odd": (no, np.arange(1, o.odd + 1)),
            "even_names": (ne, np.asarray(res.even_names)),
            "odd_names": (no, np.asarray(res.odd_names)),
            "y_t": (lv, res.y_t), "y_t_err": (lv, res.y_t_err),
            "y_h": (lv, res.y_h), "y_h_err": (lv, res.y_h_err),
            "y_t_by_couplings": (lv + ne, res.y_t_by_couplings),
            "y_t_by_couplings_err": (lv + ne, res.y_t_by_couplings_err),
            "y_h_by_couplings": (lv + no, res.y_h_by_couplings),
            "y_h_by_couplings_err": (lv + no, res.y_h_by_couplings_err),
            "y_even": (lv + ne, res.y_even), "y_even_err": (lv + ne, res.y_even_err),
            "y_odd": (lv + no, res.y_odd), "y_odd_err": (lv + no, res.y_odd_err),
            "exact_y_t": ((), np.float64(theory.ISING_2D_EXPONENTS["y_t"])),
            "exact_y_h": ((), np.float64(theory.ISING_2D_EXPONENTS["y_h"])),
        }
        # flow: nn correlation per level (interaction 0 is nn: 2 N_n bonds) matched to Kaufman's torus
        sizes = o.L // o.b ** np.arange(o.levels + 1)
        corr = sums[:, :, :, 0, :].mean(axis=-1) / (2.0 * sizes**2)  # (coupling, replica, level)
        k = np.stack([np.stack([rg.match_coupling_2d(corr[c, :, n], int(sizes[n])) for n in range(o.levels + 1)],
                               axis=-1) for c in range(len(self.couplings))])
        km, ke = observables.mean_stderr(k, axis=1)
        cm, ce = observables.mean_stderr(corr, axis=1)
        out.update({"flow_K": (("coupling", "level"), km), "flow_K_err": (("coupling", "level"), ke),
                    "flow_nn_correlation": (("coupling", "level"), cm),
                    "flow_nn_correlation_err": (("coupling", "level"), ce)})
        return out

    def plot(self, h5, outdir):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        o = self.options
        paths = []
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, name, exact in ((axes[0], "y_t", 1.0), (axes[1], "y_h", 1.875)):
            y, e = np.asarray(h5[f"{name}_by_couplings"]), np.asarray(h5[f"{name}_by_couplings_err"])
            for lvl in range(y.shape[0]):
                ax.errorbar(np.arange(1, y.shape[1] + 1) + 0.05 * lvl, y[lvl], yerr=e[lvl], fmt="o-", ms=4,
                            capsize=3, label=f"level {lvl + 1}")
            ax.axhline(exact, color="k", lw=1, ls="--", label=f"exact {exact:g}")
            ax.set_xlabel("number of couplings")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"MCRG 2D Ising L={o.L}, b={o.b}, K={o.K:g}, {o.replicas} replicas", fontsize=10)
        fig.tight_layout()
        outdir.mkdir(parents=True, exist_ok=True)
        fig.savefig(outdir / "mcrg_exponents.png", dpi=110)
        plt.close(fig)
        paths.append(outdir / "mcrg_exponents.png")

        k, ke = np.asarray(h5["flow_K"]), np.asarray(h5["flow_K_err"])
        fig, ax = plt.subplots(figsize=(4.8, 3.8))
        for c in range(k.shape[0]):
            ax.errorbar(np.arange(k.shape[1]), k[c], yerr=ke[c], fmt="o-", ms=4, capsize=3,
                        label=f"K={self.couplings[c]:.3f}")
        ax.axhline(theory.ising_critical_coupling(), color="k", ls="--", lw=1, label="K_c")
        ax.set_xlabel("blocking level n")
        ax.set_ylabel("matched nn coupling K^(n)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(outdir / "rg_flow.png", dpi=110)
        plt.close(fig)
        paths.append(outdir / "rg_flow.png")
        return paths
