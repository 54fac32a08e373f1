"""Job kind ``rbm_rg``: the Mehta–Schwab experiment — a stack of RBMs trained on 2D Ising samples as variational RG.

Steps: ``replicas`` Ising chains on an L×L torus at coupling K (the lattice engine) record their configurations
every ``record_every`` steps (series ``spins``). The summary trains a greedy RBM stack (``nets.rbm.train_stack``,
±1 units, PCD + optax, L1) on the recorded samples and measures, per layer:

* receptive-field radius (RMS spread of ``|W_1|…|W_l|`` on the torus, median floor removed) — Mehta–Schwab
  find it growing with depth;
* correlation of each hidden unit with the majority-rule block spins of side ``L/√n_h`` (best block per unit);
* the effective coupling of the layer read as a coarse Ising lattice (``nets.rbm.effective_coupling``: each block
  read off a unit of its own, the one-to-one assignment of maximal total |corr|).

Reference: P. Mehta & D. J. Schwab, arXiv:1410.3831 (2014), Figs. 4–5 (40×40 at K = 0.408, 1600-400-100-25).
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from nets import rbm
from physics import kernels, lattice, run

from ..config import ConfigError, option, require_multiples
from .base import Job, Series

__all__ = ["RBMRGJob", "RBMRGConfig"]


@dataclasses.dataclass(frozen=True)
class RBMRGConfig:
    """The ``[rbm_rg]`` table."""

    L: int = option(40, ge=4, help="side of the L×L Ising torus")
    K: float = option(0.408, gt=0.0, help="Ising coupling of the training data")
    hidden: tuple[int, ...] = option((400, 100, 25), ge=1, min_len=1, help="hidden sizes of the stack (squares)")
    replicas: int = option(8, ge=1, help="independent Ising chains")
    kernel: Literal["wolff", "metropolis", "heat_bath"] = option("wolff")
    equilibration: int = option(500, ge=0)
    measurement: int = option(5000, gt=0)
    record_every: int = option(5, ge=1)
    train_steps: int = option(5000, ge=1, help="PCD updates per layer")
    batch_size: int = option(100, ge=1)
    learning_rate: float = option(0.01, gt=0.0)
    l1: float = option(2e-4, ge=0.0, help="L1 penalty on W (localizes receptive fields)")
    gibbs_steps: int = option(1, ge=1, help="Gibbs steps per PCD update")
    num_chains: int = option(100, ge=1, help="persistent chains")

    def validate(self, prefix: str):
        for n in self.hidden:
            side = int(round(np.sqrt(n)))
            if side * side != n or self.L % side:
                raise ConfigError(f"{prefix}.hidden = {list(self.hidden)}: each size must be a square whose root "
                                  f"divides L = {self.L} (so it matches a block-spin lattice)")
        if self.kernel != "wolff" and self.L % 2:
            raise ConfigError(f"{prefix}.L = {self.L}: {self.kernel} needs an even side (or kernel = 'wolff')")
        require_multiples(self, prefix, ("equilibration", "measurement"))


class RBMRGJob(Job):
    kind = "rbm_rg"
    Config = RBMRGConfig

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        self.model = lattice.Ising((o.L, o.L))
        self.seed = config.run.seed
        self._advance = jax.jit(self._advance_impl, static_argnames="num")

    @property
    def total_steps(self):
        return self.options.equilibration + self.options.measurement

    @property
    def record_every(self):
        return self.options.record_every

    @property
    def batch_ndim(self):
        return 1  # carry (replica, L, L); the RBMs are trained in summarize, on the gathered samples

    def estimate_bytes(self):
        o = self.options
        records = self.total_steps // o.record_every
        return o.replicas * o.L * o.L * records * 6 + 4 * o.L * o.L * max(o.hidden) * 8

    def layout(self):
        return {"spins": Series(("replica", "site", "time"), np.int8)}

    def coords(self):
        o = self.options
        return {"replica": np.arange(o.replicas), "site": np.arange(o.L * o.L)}

    def _kernel(self):
        o = self.options
        return kernels.batched(getattr(kernels, o.kernel)(self.model, 1.0 / o.K), o.replicas)

    def init(self, key):
        xs = jax.vmap(self.model.random_state)(jax.random.split(key, self.options.replicas))
        return self._kernel().init(key, xs)

    def _advance_impl(self, carry, key, start, num):
        o = self.options
        carry, xs = run(self._kernel(), key, carry, num, observe=lambda s, i: s.x.reshape(o.replicas, -1),
                        every=o.record_every, start=start)
        return carry, {"spins": jnp.moveaxis(xs, 0, -1)}

    def advance(self, carry, key, start, num):
        return self._advance(carry, key, jnp.asarray(start, jnp.uint32), num)

    def summarize(self, series):
        o = self.options
        first = o.equilibration // o.record_every
        spins = np.asarray(series["spins"])[..., first:]
        data = np.moveaxis(spins, -1, 1).reshape(-1, o.L * o.L).astype(np.float32)
        key = jax.random.fold_in(jax.random.key(self.seed), 12345)
        k_train, k_block, k_up = jax.random.split(key, 3)
        stack = rbm.train_stack(k_train, data, o.hidden, steps=o.train_steps, batch_size=o.batch_size,
                                learning_rate=o.learning_rate, l1=o.l1, k=o.gibbs_steps, num_chains=o.num_chains)
        params = [r.params for r in stack]
        fields = rbm.receptive_fields(params)
        acts = rbm.propagate(params, data)
        samples = rbm.propagate(params, data, key=k_up)
        out = {"layer": (("layer",), np.arange(1, len(o.hidden) + 1)),
               "hidden_size": (("layer",), np.asarray(o.hidden))}
        radius, radius_err, best_corr, best_corr_err, k_eff, nn_corr, block = [], [], [], [], [], [], []
        for l in range(len(o.hidden)):
            r = rbm.receptive_field_size(fields[l], (o.L, o.L))
            radius.append(r.mean())
            radius_err.append(r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else np.nan)
            corr, b = rbm.block_correlation(np.asarray(acts[l]), data, (o.L, o.L), key=jax.random.fold_in(k_block, l))
            best = np.abs(corr).max(axis=1)
            best_corr.append(best.mean())
            best_corr_err.append(best.std(ddof=1) / np.sqrt(len(best)) if len(best) > 1 else np.nan)
            kk, cc = rbm.effective_coupling(np.asarray(samples[l]), corr)
            k_eff.append(kk)
            nn_corr.append(cc)
            block.append(b)
            out[f"weights_{l + 1}"] = ((f"in_{l + 1}", f"out_{l + 1}"), np.asarray(params[l].W))
            out[f"receptive_field_{l + 1}"] = (("site", f"out_{l + 1}"), fields[l])
            out[f"block_correlation_{l + 1}"] = ((f"out_{l + 1}", f"block_{l + 1}"), corr)
            out[f"reconstruction_error_{l + 1}"] = ((f"train_step_{l + 1}",), np.asarray(stack[l].reconstruction_error))
        out.update({
            "receptive_field_radius": (("layer",), np.asarray(radius)),
            "receptive_field_radius_err": (("layer",), np.asarray(radius_err)),
            "block_size": (("layer",), np.asarray(block)),
            "max_block_correlation": (("layer",), np.asarray(best_corr)),
            "max_block_correlation_err": (("layer",), np.asarray(best_corr_err)),
            "effective_coupling": (("layer",), np.asarray(k_eff)),
            "effective_nn_correlation": (("layer",), np.asarray(nn_corr)),
        })
        return out

    def plot(self, h5, outdir):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        o = self.options
        outdir.mkdir(parents=True, exist_ok=True)
        n_layers = len(o.hidden)
        fig, axes = plt.subplots(n_layers, 4, figsize=(8, 2.1 * n_layers), squeeze=False)
        for l in range(n_layers):
            f = np.asarray(h5[f"receptive_field_{l + 1}"][...])
            for j in range(4):
                ax = axes[l, j]
                if j < f.shape[1]:
                    ax.imshow(f[:, j].reshape(o.L, o.L), cmap="viridis")
                ax.set_xticks([])
                ax.set_yticks([])
            axes[l, 0].set_ylabel(f"layer {l + 1} ({o.hidden[l]})", fontsize=8)
        fig.suptitle("RBM receptive fields |W_1|…|W_l| (4 units per layer)", fontsize=10)
        fig.tight_layout()
        fig.savefig(outdir / "rbm_receptive_fields.png", dpi=110)
        plt.close(fig)

        g = {k: np.asarray(h5[k][...]) for k in ("layer", "receptive_field_radius", "receptive_field_radius_err",
                                                 "block_size", "max_block_correlation", "max_block_correlation_err")}
        layers = g["layer"]
        fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4))
        axes[0].errorbar(layers, g["receptive_field_radius"], yerr=g["receptive_field_radius_err"], fmt="o-")
        axes[0].plot(layers, np.sqrt(2 * (g["block_size"] ** 2 - 1) / 12), "k--", lw=1, label="uniform b×b block")
        axes[0].set_ylabel("receptive-field radius (sites)")
        axes[1].errorbar(layers, g["max_block_correlation"], yerr=g["max_block_correlation_err"], fmt="o-")
        axes[1].set_ylabel("max |corr(h, block spin)|")
        for ax in axes:
            ax.set_xlabel("layer")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"RBM stack on {o.L}×{o.L} Ising at K={o.K:g}", fontsize=10)
        fig.tight_layout()
        fig.savefig(outdir / "rbm_vs_block_spins.png", dpi=110)
        plt.close(fig)
        return [outdir / "rbm_receptive_fields.png", outdir / "rbm_vs_block_spins.png"]
