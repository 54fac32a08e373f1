"""Job kind ``funnel``: folding vs glass in the REM-plus-native-state model (Bryngelson & Wolynes 1987), exactly.

n Ising spins, ``S_0 = n ln 2``, misfolded energies a REM with ruggedness ``ΔE = √(n/2)``, a native state σ* at
``−δE_s`` (stability gap δE_s below the misfolded mean). The grid is over ``δE_s/ΔE`` (``gap_ratios``), so the
native energy per spin is ``depth = (δE_s/ΔE)·ΔE/n``. One step = one disorder sample (base REM + native state):

* the misfolded ensemble (the base REM, enumerated exactly) on a fine temperature grid; its freezing temperature
  ``T_g`` = the peak of its heat capacity ``C = dU/dT`` (series ``glass_temperature``; n → ∞: T_c = ΔE/√(2S_0));
* for every gap, the exact native occupancy ``p_N(T) = e^{−βE_N}/Z`` (series ``native_occupancy``) and
  ``T_f`` = the highest temperature with ``p_N = ½`` (``folding_temperature``; nan where the native state never
  dominates);
* a funnel-shaped landscape (``Funnel(shape="power")`` at ``kinetic_gap_ratio``): its Landau free energy
  ``F(Q)`` at ``profile_temperatures`` (exact enumeration resolved by the overlap with σ*) and the folding time —
  first passage to Q = 1 under single-spin-flip Metropolis from ``starts`` random configurations — at
  ``fold_temperatures`` (censored at ``max_sweeps``).

Summaries (mean ± standard error over samples): T_f per gap, T_g, T_f/T_g per sample; the Bryngelson–Wolynes
values (``physics.theory.bryngelson_wolynes``) and the exact finite-n T_f (root of
``physics.theory.rem_native_occupancy = ½``); ⟨p_N⟩(gap, T) against the exact finite-n theory; a phase label
per (gap, T): 1 folded (⟨p_N⟩ ≥ ½), 2 glassy (unfolded and T < T_g), 0 unfolded; F(Q); folding times.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from physics import observables, rem, theory

from ..config import ConfigError, option
from .base import Job, Series

__all__ = ["FunnelJob", "FunnelConfig"]

_FINE = rem.TRANSITION_GRID  # internal grid for T_f and T_g (spacing 0.01); the DOS makes it cheap


@dataclasses.dataclass(frozen=True)
class FunnelConfig:
    """The ``[funnel]`` table."""

    n: int = option(14, ge=4, le=22, help="number of spins (every sample is enumerated: 2^n states)")
    samples: int = option(8, ge=2, help="independent disorder samples (base REM + native state)")
    gap_ratios: tuple[float, ...] = option((4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 8.0), gt=0.0, min_len=1,
                                           help="stability gap over ruggedness, δE_s/ΔE")
    temperatures: tuple[float, ...] = option(tuple(np.round(np.linspace(0.2, 2.0, 19), 3).tolist()), ge=0.05,
                                             min_len=2, help="temperature grid of p_N and the phase diagram")
    kinetic_gap_ratio: float = option(6.0, gt=0.0, help="δE_s/ΔE of the funnel used for F(Q) and kinetics")
    exponent: float = option(1.0, gt=0.0, help="funnel shape g(Q) = max(Q, 0)^exponent")
    profile_temperatures: tuple[float, ...] = option((0.3, 0.6, 1.0, 1.5), ge=0.05, min_len=1, distinct=True,
                                                     help="temperatures of the F(Q) curves")
    fold_temperatures: tuple[float, ...] = option((0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3), gt=0.0,
                                                  min_len=1, distinct=True,
                                                  help="temperatures of the folding-time runs")
    starts: int = option(32, ge=2, help="random starting configurations per temperature and sample")
    max_sweeps: int = option(500, ge=1, help="sweeps before a folding run is censored")

    def validate(self, prefix: str):
        for name in ("temperatures", "gap_ratios"):
            values = getattr(self, name)
            if list(values) != sorted(set(values)):
                raise ConfigError(f"{prefix}.{name} = {list(values)}: must be strictly increasing")


class FunnelJob(Job):
    kind = "funnel"
    Config = FunnelConfig

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        self.ratios = np.asarray(o.gap_ratios, np.float64)
        self.temps = np.asarray(o.temperatures, np.float64)
        self.ruggedness = np.sqrt(o.n / 2.0)
        self.entropy0 = o.n * np.log(2.0)
        self._disorder_key = jax.random.fold_in(jax.random.key(config.run.seed), 2)
        self._fold_fn = None

    def depth(self, ratio):
        """Native energy per spin below the misfolded mean for a gap ratio δE_s/ΔE."""
        return float(ratio) * self.ruggedness / self.options.n

    @property
    def total_steps(self):
        return self.options.samples

    @property
    def default_chunk_steps(self):
        return 1

    def estimate_bytes(self):
        n = self.options.n
        return 2 ** min(n, 20) * 24 * (n + 2) // 4 + (n + 1) * 2**17 * 3 * 8

    def layout(self):
        o = self.options
        del o
        return {
            "native_occupancy": Series(("gap_ratio", "temperature", "time"), np.float64),
            "folding_temperature": Series(("gap_ratio", "time"), np.float64),
            "glass_temperature": Series(("time",), np.float64),
            "misfolded_entropy_per_spin": Series(("temperature", "time"), np.float64),
            "misfolded_participation": Series(("temperature", "time"), np.float64),
            "free_energy_profile": Series(("profile_temperature", "q", "time"), np.float64),
            "folding_time": Series(("fold_temperature", "start", "time"), np.int32),
        }

    def coords(self):
        o = self.options
        return {"gap_ratio": self.ratios, "temperature": self.temps,
                "profile_temperature": np.asarray(o.profile_temperatures, np.float64),
                "q": 2.0 * np.arange(o.n + 1) / o.n - 1.0,
                "fold_temperature": np.asarray(o.fold_temperatures, np.float64), "start": np.arange(o.starts)}

    def init(self, key):
        del key
        return jnp.zeros((), jnp.int32)

    def advance(self, carry, key, start, num):
        o = self.options
        rows = {name: [] for name in self.layout()}
        for sample in range(start, start + num):
            k_base, k_native, k_fold = jax.random.split(jax.random.fold_in(self._disorder_key, sample), 3)
            base = rem.REM.random(k_base, o.n)
            native = base.random_state(k_native)
            # misfolded ensemble: the base REM (its one state at σ* is replaced by the native energy below)
            dos = rem.density_of_states(base)
            fine = rem.exact_thermodynamics(dos, _FINE)
            coarse = rem.exact_thermodynamics(dos, self.temps)
            rows["glass_temperature"].append(rem.heat_capacity_peak(_FINE, fine.energy))
            rows["misfolded_entropy_per_spin"].append(coarse.entropy / o.n)
            rows["misfolded_participation"].append(coarse.participation)
            occ, tf = [], []
            for r in self.ratios:
                funnel = rem.Funnel(base, native, self.depth(r))
                dos_f = rem.density_of_states(funnel)
                total = dos_f._replace(moments=dos_f.moments.sum(axis=0))  # Z only: the Q resolution is not needed
                e_native = -o.n * self.depth(r)
                both = rem.exact_thermodynamics(total, np.concatenate([self.temps, _FINE]))
                p = np.exp(-e_native / both.temperature - both.log_z)
                occ.append(p[: len(self.temps)])
                tf.append(rem.folding_temperature(_FINE, p[len(self.temps):]))
            rows["native_occupancy"].append(np.asarray(occ))
            rows["folding_temperature"].append(np.asarray(tf))
            kin = rem.Funnel(base, native, self.depth(o.kinetic_gap_ratio), o.exponent, "power")
            prof = rem.exact_thermodynamics(kin, o.profile_temperatures)
            rows["free_energy_profile"].append(rem.free_energy_profile(prof)[1])
            rows["folding_time"].append(np.asarray(self._folding_times(k_fold, kin), np.int32))
        return carry, {k: np.moveaxis(np.asarray(v), 0, -1) for k, v in rows.items()}

    def _folding_times(self, key, funnel):
        """First-passage times (fold_temperature, start): one vmapped program over the temperatures."""
        o = self.options
        if self._fold_fn is None:  # compiled once per job: the funnel is a traced argument
            self._fold_fn = jax.jit(jax.vmap(
                lambda k, t, f: rem.folding_time(k, f, t, num_starts=o.starts, max_sweeps=o.max_sweeps)[0],
                in_axes=(0, 0, None)))
        temps = jnp.asarray(o.fold_temperatures, jnp.float32)
        return self._fold_fn(jax.random.split(key, len(o.fold_temperatures)), temps, funnel)

    # --- summaries and plots ----------------------------------------------------------------------------
    def theory_values(self):
        """BW (T_g, T_f) per gap ratio and the exact finite-n T_f (⟨p_N⟩ = ½), nan where there is none."""
        from scipy.optimize import brentq

        o = self.options
        tg, tf = theory.bryngelson_wolynes(self.entropy0, self.ruggedness, self.ratios * self.ruggedness)
        exact = []
        for r in self.ratios:
            depth = self.depth(r)
            g = lambda t, d=depth: theory.rem_native_occupancy(t, d, o.n) - 0.5
            lo, hi = 0.08, 4.0
            exact.append(brentq(g, lo, hi, xtol=1e-3) if g(lo) > 0 > g(hi) else np.nan)
        return float(tg), np.asarray(tf, np.float64), np.asarray(exact)

    def summarize(self, series):
        o = self.options
        occ = np.asarray(series["native_occupancy"])
        tf = np.asarray(series["folding_temperature"])
        tg = np.asarray(series["glass_temperature"])
        occ_m, occ_e = observables.mean_stderr(occ, axis=-1)
        tg_m, tg_e = observables.mean_stderr(tg)
        with np.errstate(invalid="ignore"):
            tf_m, tf_e = observables.mean_stderr(tf, axis=-1)  # nan where some sample never folds
            ratio_m, ratio_e = observables.mean_stderr(tf / tg, axis=-1)
        tg_bw, tf_bw, tf_exact = self.theory_values()
        occ_theory = np.stack([theory.rem_native_occupancy(self.temps, self.depth(r), o.n) for r in self.ratios])
        phase = np.where(occ_m >= 0.5, 1, np.where(self.temps[None, :] < tg_m, 2, 0)).astype(np.int8)
        f = np.asarray(series["free_energy_profile"])
        f_m, f_e = observables.mean_stderr(f, axis=-1)
        times = np.asarray(series["folding_time"], np.float64)  # (fold_temperature, start, sample)
        flat = times.reshape(times.shape[0], -1)
        ft_m, ft_e = observables.mean_stderr(flat, axis=-1)
        g, t, pt, ft = ("gap_ratio",), ("temperature",), ("profile_temperature",), ("fold_temperature",)
        return {
            "native_occupancy_mean": (g + t, occ_m), "native_occupancy_stderr": (g + t, occ_e),
            "native_occupancy_theory": (g + t, occ_theory),
            "folding_temperature_mean": (g, tf_m), "folding_temperature_stderr": (g, tf_e),
            "folding_temperature_bw": (g, tf_bw), "folding_temperature_exact": (g, tf_exact),
            "glass_temperature_mean": ((), np.float64(tg_m)), "glass_temperature_stderr": ((), np.float64(tg_e)),
            "glass_temperature_bw": ((), np.float64(tg_bw)),
            "tf_over_tg_mean": (g, ratio_m), "tf_over_tg_stderr": (g, ratio_e), "tf_over_tg_bw": (g, tf_bw / tg_bw),
            "phase": (g + t, phase),
            "phase_names": (("phase_code",), np.asarray(["unfolded", "folded", "glassy"])),
            "free_energy_profile_mean": (pt + ("q",), f_m), "free_energy_profile_stderr": (pt + ("q",), f_e),
            "folding_time_mean": (ft, ft_m), "folding_time_stderr": (ft, ft_e),
            "folding_time_median": (ft, np.median(flat, axis=-1)),
            "folded_fraction": (ft, np.mean(flat < o.max_sweeps, axis=-1)),
        }

    def plot(self, h5, outdir):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        o = self.options
        outdir.mkdir(parents=True, exist_ok=True)
        paths = []
        h5 = {k: np.asarray(h5[k]) for k in h5 if k != "phase_names"}
        tg_m, tg_e = float(h5["glass_temperature_mean"]), float(h5["glass_temperature_stderr"])
        tg_bw = float(h5["glass_temperature_bw"])

        # phase diagram (δE_s/ΔE, T)
        phase = np.asarray(h5["phase"])
        fig, ax = plt.subplots(figsize=(6.2, 4.4))
        cmap = ListedColormap(["#f4d6a0", "#9fd49f", "#a9bfe3"])
        ax.pcolormesh(self.ratios, self.temps, phase.T, cmap=cmap, vmin=0, vmax=2, shading="nearest")
        ax.errorbar(self.ratios, h5["folding_temperature_mean"], yerr=h5["folding_temperature_stderr"], fmt="o-",
                    color="darkgreen", capsize=3, label="T_f: ⟨p_N⟩ = ½ per sample (enumeration)")
        ax.plot(self.ratios, h5["folding_temperature_exact"], "k:", label="T_f exact finite n")
        fine_r = np.linspace(self.ratios.min(), self.ratios.max(), 200)
        _, tf_line = theory.bryngelson_wolynes(self.entropy0, self.ruggedness, fine_r * self.ruggedness)
        ax.plot(fine_r, tf_line, "g--", label="T_f Bryngelson–Wolynes")
        ax.axhspan(tg_m - tg_e, tg_m + tg_e, color="navy", alpha=0.3)
        ax.axhline(tg_m, color="navy", lw=1, label=f"T_g: C peak of misfolded ensemble ({tg_m:.3f})")
        ax.axhline(tg_bw, color="navy", ls="--", lw=1, label=f"T_g BW = {tg_bw:.3f}")
        for code, name in enumerate(["unfolded", "folded", "glassy"]):
            ax.plot([], [], "s", color=cmap(code), ms=9, label=name)
        ax.set_xlabel("δE_s / ΔE")
        ax.set_ylabel("T")
        ax.set_title(f"REM + native state, n = {o.n}, {o.samples} samples", fontsize=10)
        ax.legend(fontsize=6, loc="upper left")
        fig.tight_layout()
        fig.savefig(outdir / "funnel_phase_diagram.png", dpi=110)
        plt.close(fig)
        paths.append(outdir / "funnel_phase_diagram.png")

        # T_f / T_g, F(Q), folding time
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        ax = axes[0]
        ax.errorbar(self.ratios, h5["tf_over_tg_mean"], yerr=h5["tf_over_tg_stderr"], fmt="o", capsize=3,
                    label="enumeration")
        ax.plot(self.ratios, h5["tf_over_tg_bw"], "--", label="Bryngelson–Wolynes")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xlabel("δE_s / ΔE")
        ax.set_ylabel("T_f / T_g")
        ax.legend(fontsize=7)
        ax = axes[1]
        q = np.asarray(h5["q"])
        fm, fe = np.asarray(h5["free_energy_profile_mean"]), np.asarray(h5["free_energy_profile_stderr"])
        for i, t in enumerate(o.profile_temperatures):
            ax.errorbar(q, fm[i] / o.n, yerr=fe[i] / o.n, fmt="o-", ms=3, capsize=2, label=f"T = {t:g}")
        ax.set_xlabel("Q = σ·σ*/n")
        ax.set_ylabel("F(Q) / n")
        ax.set_title(f"funnel g(Q) = Q^{o.exponent:g}, δE_s/ΔE = {o.kinetic_gap_ratio:g}", fontsize=9)
        ax.legend(fontsize=7)
        ax = axes[2]
        ft = np.asarray(o.fold_temperatures)
        ax.errorbar(ft, h5["folding_time_mean"], yerr=h5["folding_time_stderr"], fmt="o-", capsize=3,
                    label="mean (censored: lower bound)")
        ax.plot(ft, h5["folding_time_median"], "s--", label="median")
        ax.axvline(tg_m, color="navy", lw=1, label="T_g")
        ax.axhline(o.max_sweeps, color="gray", ls=":", label="max sweeps")
        ax.set_yscale("log")
        ax.set_xlabel("T")
        ax.set_ylabel("folding time (sweeps)")
        ax.legend(fontsize=7)
        for a in axes:
            a.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(outdir / "funnel_folding.png", dpi=110)
        plt.close(fig)
        paths.append(outdir / "funnel_folding.png")
        return paths
