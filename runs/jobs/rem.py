"""Job kind ``rem``: exact thermodynamics of random energy model samples by streaming enumeration of all 2^n states.

One step = one disorder sample of one size: ``physics.rem.exact_thermodynamics`` enumerates its 2^n hashed
energies (no 2^n table) and records, at every configured temperature, ``log_z_per_spin`` (ln Z/n),
``energy_per_spin``, ``entropy_per_spin``, the participation ratio ``participation`` (Y = Σ p², the probability
that two replicas occupy the same state) and the ground energy. Steps run size by size (``samples`` per size), so
a checkpoint falls after every size and a resumed run redoes nothing.

Summaries per (size, temperature): mean ± standard error over the independent samples of the free energy
``f = −T ln Z/n``, u, s and Y, next to Derrida's n → ∞ values (``physics.theory.rem_free_energy``, …) and
E Y = 1 − T/T_c below T_c (Derrida & Toulouse 1985). The finite-n corrections are O(ln n / n) below T_c (the
extreme-value shift of the ground state) and exponentially small above √2·T_c (see tests/physics/test_rem.py).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from physics import observables, rem, theory

from ..config import ConfigError, option
from .base import Job, Series

__all__ = ["REMJob", "REMConfig"]


@dataclasses.dataclass(frozen=True)
class REMConfig:
    """The ``[rem]`` table."""

    sizes: tuple[int, ...] = option((10, 14, 18, 22), ge=2, le=36, min_len=1, help="numbers of spins n")
    samples: int = option(8, ge=2, help="independent disorder samples per size (error bars)")
    temperatures: tuple[float, ...] = option(
        (0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0, 1.25, 1.5, 2.0), ge=0.05, min_len=1,
        help="temperatures (≥ 0.05) at which ln Z, U, S and Y are recorded")
    chunk_bits: int = option(20, ge=4, le=24, help="log2 of the states enumerated per chunk")

    def validate(self, prefix: str):
        if len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"{prefix}.sizes = {list(self.sizes)}: sizes must be distinct")
        if len(set(self.temperatures)) != len(self.temperatures):
            raise ConfigError(f"{prefix}.temperatures = {list(self.temperatures)}: temperatures must be distinct")


class REMJob(Job):
    kind = "rem"
    Config = REMConfig
    memory_hint = " (lower rem.chunk_bits)"

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        self.sizes = np.asarray(sorted(o.sizes), np.int64)
        self.temps = np.asarray(o.temperatures, np.float64)
        # disorder: one key per (size, sample), derived from the seed only (resumable, independent of chunking)
        self._disorder_key = jax.random.fold_in(jax.random.key(config.run.seed), 2)

    @property
    def total_steps(self):
        return len(self.sizes) * self.options.samples

    @property
    def default_chunk_steps(self):
        return self.options.samples  # one size per chunk: a checkpoint after each size

    def estimate_bytes(self):
        # one chunk of energies, bin indices and moments (float32), plus the float64 host histogram
        return 2 ** min(int(self.sizes.max()), self.options.chunk_bits) * 24 + 2**18 * 3 * 8

    def layout(self):
        t = ("temperature", "time")
        return {"size": Series(("time",), np.int64), "sample": Series(("time",), np.int64),
                "log_z_per_spin": Series(t, np.float64), "energy_per_spin": Series(t, np.float64),
                "entropy_per_spin": Series(t, np.float64), "participation": Series(t, np.float64),
                "ground_energy_per_spin": Series(("time",), np.float64)}

    def coords(self):
        return {"temperature": self.temps}

    def init(self, key):
        del key
        return jnp.zeros((), jnp.int32)  # nothing evolves: each step is an independent enumeration

    def advance(self, carry, key, start, num):
        del key  # the disorder comes from the seed via _disorder_key, indexed by the global step
        rows = {name: [] for name in self.layout()}
        for step in range(start, start + num):
            n = int(self.sizes[step // self.options.samples])
            sample = step % self.options.samples
            model = rem.REM.random(jax.random.fold_in(jax.random.fold_in(self._disorder_key, n), sample), n)
            ex = rem.exact_thermodynamics(model, self.temps, chunk_bits=self.options.chunk_bits)
            rows["size"].append(n)
            rows["sample"].append(sample)
            rows["log_z_per_spin"].append(ex.log_z / n)
            rows["energy_per_spin"].append(ex.energy / n)
            rows["entropy_per_spin"].append(ex.entropy / n)
            rows["participation"].append(ex.participation)
            rows["ground_energy_per_spin"].append(ex.ground_energy / n)
        series = {k: np.moveaxis(np.asarray(v), 0, -1) for k, v in rows.items()}
        return carry, series

    # --- summaries and plots ----------------------------------------------------------------------------
    def summarize(self, series):
        t = self.temps
        size = np.asarray(series["size"])
        per = {
            "free_energy_per_spin": -t[:, None] * np.asarray(series["log_z_per_spin"]),
            "energy_per_spin": np.asarray(series["energy_per_spin"]),
            "entropy_per_spin": np.asarray(series["entropy_per_spin"]),
            "participation": np.asarray(series["participation"]),
        }
        out = {"n": (("n",), self.sizes)}
        for name, values in per.items():
            mean = np.stack([values[:, size == n].mean(axis=-1) for n in self.sizes])
            err = np.stack([observables.mean_stderr(values[:, size == n], axis=-1)[1] for n in self.sizes])
            out[f"{name}_mean"] = (("n", "temperature"), mean)
            out[f"{name}_stderr"] = (("n", "temperature"), err)
        g = np.asarray(series["ground_energy_per_spin"])
        out["ground_energy_per_spin_mean"] = (("n",), np.array([g[size == n].mean() for n in self.sizes]))
        out["ground_energy_per_spin_stderr"] = (
            ("n",), np.array([observables.mean_stderr(g[size == n])[1] for n in self.sizes]))
        tc = theory.rem_critical_temperature()
        out.update({
            "theory_free_energy_per_spin": (("temperature",), theory.rem_free_energy(t)),
            "theory_energy_per_spin": (("temperature",), theory.rem_energy(t)),
            "theory_entropy_per_spin": (("temperature",), theory.rem_entropy(t)),
            "theory_participation": (("temperature",), np.maximum(1.0 - t / tc, 0.0)),
            "critical_temperature": ((), np.float64(tc)),
        })
        return out

    def plot(self, h5, outdir):
        from ..plots import errorbar_panels

        t = self.temps
        tc = theory.rem_critical_temperature()
        fine = np.linspace(max(0.05, t.min()), t.max(), 300)
        lines = {
            "free_energy_per_spin": theory.rem_free_energy(fine),
            "entropy_per_spin": theory.rem_entropy(fine),
            "participation": np.maximum(1.0 - fine / tc, 0.0),
        }
        panels = []
        for name, label in (("free_energy_per_spin", "f = −T ln Z / n"), ("entropy_per_spin", "s = S / n"),
                            ("participation", "Y = Σ p²  (two-replica overlap)")):
            mean, err = np.asarray(h5[f"{name}_mean"]), np.asarray(h5[f"{name}_stderr"])
            curves = [(f"n = {n}", t, mean[i], err[i]) for i, n in enumerate(self.sizes)]
            panels.append((label, curves, [("Derrida n → ∞", fine, lines[name])]))
        title = (f"REM exact enumeration, {self.options.samples} samples per n; T_c = {tc:.4f} "
                 f"(f, s and Y against the n → ∞ theory)")
        return [errorbar_panels(panels, "temperature", title, outdir / "rem_free_energy.png")]
