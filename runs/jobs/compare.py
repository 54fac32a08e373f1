"""Job kind ``compare``: networks and glasses side by side, measured through one code path, and a report.

The essay's hypothesis — a deep net trained on plenty of well-labelled data is a spin glass of minimal frustration
(a funnel, not a rugged glass); regularization acts as temperature; good nets sit between order and chaos — is
turned into measurements with error bars (``bridges.compare_panels``) and verdicts (``bridges.compare``).

**Steps are units of work** in a fixed order, each keyed by ``fold_in(run_key, unit)`` only, so a killed and
resumed run is bitwise identical (``unit_kind`` codes in brackets):

* [0] one per width: ``seeds`` MLPs ``64-w-…-w-10`` trained on digits from random starts, kept at ``stages``
  (panels minima, index, overlaps, funnel, chaos);
* [1] one per size n: gradient descent from ``replicas`` random starts on ``samples`` spherical p-spin glasses;
* [2] one per perceptron data set: exact T_f, T_g and energy-vs-overlap for every class pair (panel funnel);
* [3] the networks' (learning rate, weight decay) grid and [4] the glass's Langevin runs at ``temperatures``
  (panel regularization);
* [5] one per (block, depth): trainability of plain, residual and fractal tanh networks initialized in the ordered
  phase and on the critical line (panel chaos);
* [6] mutual information vs distance of the data sets (panel information).

Every unit writes its numbers into slots of the carry (NaN until filled), never trained parameters: each probe of
a network runs in the unit that trained it, so checkpoints stay small. The series ``unit_value`` holds one
headline number per unit (median ε of a width, mean energy per spin of a size, mean T_f/T_g of a data set, …).

**Schema** (DESIGN §3.14): an observable measured on both sides is one dataset with a ``system`` coordinate
(``network``, ``glass``) and a ``size`` axis whose values are ``size_value[system, size]`` (width or n), NaN-padded
where a side has fewer entries. Energies are normalized as ``bridges.compare`` states: ``ε = L/L_0`` for a network
(L_0 its mean initial loss), ``ε = 1 - e/E_0`` for the glass.

``plot`` writes one figure per panel and ``DIR/report.md``, ending with the claims table (``bridges.compare``
rules). Panel 7 (layers as RG steps) is not part of this job — the ``rbm_rg`` job measures it — and its row reads
"not measured".
"""
from __future__ import annotations

import dataclasses
import io
import itertools
import math
import warnings
from pathlib import Path
from typing import Literal

import jax
import numpy as np

from bridges import chaos, compare_summary, information
from bridges import compare as cmp
from bridges import compare_panels as panels_mod
from nets import data as nets_data
from physics import theory

from ..config import ConfigError, option
from .base import Job, Series

__all__ = ["CompareJob", "CompareConfig", "PANELS", "UNIT_KINDS"]

PANELS = ("minima", "index", "overlaps", "funnel", "regularization", "chaos", "information")
INFORMATION_DATASETS = ("digits",) + panels_mod.SEQUENCE_KINDS
UNIT_KINDS = ("network", "glass", "perceptron", "regularization_network", "regularization_glass", "depth",
              "information")
_NETWORK_PANELS = {"minima", "index", "overlaps", "funnel", "chaos"}
_GLASS_PANELS = {"minima", "index", "overlaps", "funnel"}
_INITS = ("ordered", "critical")


def _increasing(values) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """The ``[compare]`` table."""

    panels: tuple[str, ...] = option(PANELS, min_len=1, distinct=True, help=f"panels to run: {', '.join(PANELS)}")
    # networks (panels minima, index, overlaps, funnel, chaos)
    widths: tuple[int, ...] = option((16, 32, 64), ge=1, min_len=1, help="hidden widths, strictly increasing")
    hidden_layers: int = option(2, ge=1, le=8, help="hidden layers of width w (64-w-…-w-10)")
    activation: Literal["relu", "tanh", "gelu", "linear"] = option("relu")
    seeds: int = option(8, ge=4, help="networks per width (independent starts; ≥ 4 for the frustration score)")
    optimizer: Literal["sgd", "momentum", "adam", "rmsprop"] = option("adam")
    learning_rate: float = option(1e-3, gt=0.0)
    batch_size: int = option(64, ge=1)
    steps: int = option(2000, ge=1, help="training steps (a multiple of 2^(stages-2))")
    stages: int = option(4, ge=2, le=8, help="stages kept: the start and steps/2^k up to the end")
    hessian_probes: int = option(4, ge=2, help="SLQ probe vectors per network")
    hessian_steps: int = option(24, ge=2, help="Lanczos steps per probe")
    hessian_examples: int = option(256, ge=1, help="training examples in the Hessian's loss")
    index_tolerance: float = option(1e-3, ge=0.0, lt=1.0, help="index: eigenvalues below -tolerance·λ_max")
    # glass (panels minima, index, overlaps, funnel)
    sizes: tuple[int, ...] = option((32, 64, 128), ge=4, le=512, min_len=1, help="glass sizes n, strictly increasing")
    p: int = option(3, ge=3, le=6, help="degree of the pure spherical p-spin")
    samples: int = option(4, ge=2, help="disorder samples per size")
    replicas: int = option(8, ge=4, help="descents per sample (independent starts)")
    descent_steps: int = option(2000, ge=1, help="gradient-descent steps (a multiple of 2^(stages-2))")
    descent_step_size: float = option(0.1, gt=0.0, le=0.25)
    descent_tolerance: float = option(1e-5, ge=0.0)
    # funnel: exact perceptron landscapes
    funnel_datasets: tuple[str, ...] = option(("digits", "shuffled", "random"), min_len=1, distinct=True,
                                              help=f"perceptron data: {', '.join(panels_mod.PERCEPTRON_DATASETS)}")
    funnel_pairs: tuple[tuple[int, ...], ...] = option(((0, 1), (3, 8), (4, 9)), ge=0, le=9, min_len=1,
                                                       help="digit class pairs, one landscape each")
    funnel_shape: tuple[int, ...] = option((4, 5), ge=1, le=8, min_len=2, help="pooled features rows × cols = n")
    # regularization as temperature
    regularization_width: int = option(32, ge=1)
    learning_rates: tuple[float, ...] = option((1e-3, 3e-3, 1e-2, 3e-2), gt=0.0, min_len=2, distinct=True)
    weight_decays: tuple[float, ...] = option((0.0, 1e-3, 1e-2, 1e-1), ge=0.0, min_len=1, distinct=True)
    regularization_seeds: int = option(4, ge=2)
    regularization_steps: int = option(1000, ge=1)
    temperatures: tuple[float, ...] = option((0.3, 0.45, 0.6, 0.8, 1.0, 1.5), gt=0.0, min_len=2, distinct=True)
    langevin_size: int = option(64, ge=4, le=512)
    langevin_steps: int = option(2000, ge=20, help="Langevin steps (a multiple of 10)")
    langevin_step_size: float = option(0.01, gt=0.0, le=0.1)
    # order and chaos, depth
    blocks: tuple[str, ...] = option(("plain", "residual", "fractal"), min_len=1, distinct=True)
    depths: tuple[int, ...] = option((4, 8, 16, 32), ge=1, min_len=1, help="hidden-to-hidden layers, increasing")
    depth_width: int = option(24, ge=1)
    fractal_columns: int = option(3, ge=2, le=5)
    ordered_weight_std: float = option(0.8, gt=0.0, help="σ_w of the ordered-phase initialization (tanh)")
    depth_bias_std: float = option(0.3, ge=0.0, help="σ_b of the depth networks (the critical σ_w depends on it)")
    depth_seeds: int = option(2, ge=2)
    depth_steps: int = option(300, ge=1)
    depth_optimizer: Literal["sgd", "momentum", "adam", "rmsprop"] = option("sgd")
    depth_learning_rate: float = option(0.05, gt=0.0)
    trainable_accuracy: float = option(0.5, gt=0.0, lt=1.0, help="final training accuracy below: failed")
    # information
    information_datasets: tuple[str, ...] = option(INFORMATION_DATASETS, min_len=1, distinct=True,
                                                   help=f"I(d) of: {', '.join(INFORMATION_DATASETS)}")
    sequence_length: int = option(1024, ge=16, help="symbols per sequence (a power of 2 for pcfg)")
    num_sequences: int = option(64, ge=2)
    alphabet: int = option(4, ge=2, le=64)
    lags: int = option(10, ge=3, le=64, help="log-spaced sequence distances 1 … length/8")

    def validate(self, prefix: str):
        for name, allowed, hint in (
                ("panels", PANELS, "; panel 7 (layers as RG steps) is not part of this job: run the rbm_rg job"),
                ("funnel_datasets", panels_mod.PERCEPTRON_DATASETS, ""),
                ("information_datasets", INFORMATION_DATASETS, ""),
                ("blocks", ("plain", "residual", "fractal"), "")):
            bad = [v for v in getattr(self, name) if v not in allowed]
            if bad:
                raise ConfigError(f"{prefix}.{name} = {list(getattr(self, name))}: unknown {bad[0]!r}; allowed "
                                  f"are {', '.join(map(repr, allowed))}{hint}")
        for name in ("widths", "sizes", "depths"):
            values = getattr(self, name)
            if not _increasing(values):
                raise ConfigError(f"{prefix}.{name} = {list(values)}: must be strictly increasing")
        for name, total in (("steps", self.steps), ("descent_steps", self.descent_steps)):
            div = 2 ** (self.stages - 2)
            if total < div or total % div:
                raise ConfigError(f"{prefix}.{name} = {total}: must be a multiple of 2^(stages-2) = {div} "
                                  f"(stages = {self.stages})")
        for i, pair in enumerate(self.funnel_pairs):
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ConfigError(f"{prefix}.funnel_pairs[{i}] = {list(pair)}: must be two different digits")
        if len(self.funnel_shape) != 2 or not 2 <= self.funnel_shape[0] * self.funnel_shape[1] <= 24:
            raise ConfigError(f"{prefix}.funnel_shape = {list(self.funnel_shape)}: must be [rows, cols] with "
                              "2 ≤ rows·cols ≤ 24 (every state is enumerated)")
        if self.langevin_steps % 10:
            raise ConfigError(f"{prefix}.langevin_steps = {self.langevin_steps}: must be a multiple of 10")
        if "fractal" in self.blocks:
            path = 2 ** (self.fractal_columns - 1)
            bad = [d for d in self.depths if d % path]
            if bad:
                raise ConfigError(f"{prefix}.depths = {list(self.depths)}: {bad[0]} is not a multiple of "
                                  f"2^(fractal_columns-1) = {path}, the longest path of a fractal block")
        if "pcfg" in self.information_datasets and self.sequence_length & (self.sequence_length - 1):
            raise ConfigError(f"{prefix}.sequence_length = {self.sequence_length}: must be a power of 2 for pcfg")


class CompareJob(Job):
    kind = "compare"
    Config = CompareConfig
    memory_hint = " (lower compare.sizes, compare.widths or compare.funnel_shape)"

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        self.panels = set(o.panels)
        self.digits = nets_data.digits()
        self.net_stages = panels_mod.stage_steps(o.steps, o.stages)
        self.glass_stages = panels_mod.stage_steps(o.descent_steps, o.stages)
        self.funnel_n = o.funnel_shape[0] * o.funnel_shape[1]
        self.critical_weight_std = float(chaos.critical_weight_std(o.depth_bias_std, "tanh"))
        self.init_weight_stds = (o.ordered_weight_std, self.critical_weight_std)
        self.binary_digits = (self.digits.train.x > 0.5).astype(np.int8)
        self.pixel_distance = panels_mod.pixel_distances(self.binary_digits)
        top = max(4, o.sequence_length // 8)
        self.lags = np.unique(np.round(np.geomspace(1, top, o.lags)).astype(np.int64))
        self.sequence_kinds = tuple(k for k in panels_mod.SEQUENCE_KINDS if k in o.information_datasets)
        units = []
        if self.panels & _NETWORK_PANELS:
            units += [("network", i) for i in range(len(o.widths))]
        if self.panels & _GLASS_PANELS:
            units += [("glass", i) for i in range(len(o.sizes))]
        if "funnel" in self.panels:
            units += [("perceptron", i) for i in range(len(o.funnel_datasets))]
        if "regularization" in self.panels:
            units += [("regularization_network", 0), ("regularization_glass", 0)]
        if "chaos" in self.panels:
            units += [("depth", (b, d)) for b in range(len(o.blocks)) for d in range(len(o.depths))]
        if "information" in self.panels:
            units.append(("information", 0))
        self.units = tuple(units)

    # --- sizes ------------------------------------------------------------------------------------------
    @property
    def total_steps(self):
        return len(self.units)

    @property
    def default_chunk_steps(self):
        return 3  # a checkpoint every three units of work

    def estimate_bytes(self):
        o = self.options
        n, w = max(o.sizes), max(o.widths)
        params = 64 * w + (o.hidden_layers - 1) * w * w + 10 * w
        glass = o.samples * (n**o.p + o.replicas * o.stages * 3 * n * n) * 4
        nets = o.seeds * o.stages * params * 4 * 8 + o.hessian_probes * (o.hessian_steps + 2) * params * 4 \
            + o.seeds * o.stages * len(self.digits.train.y) * w * 4
        perceptron = 2**min(self.funnel_n, 16) * 400 * 4 * 3
        return int(max(glass, nets, perceptron))

    # --- layout -----------------------------------------------------------------------------------------
    def layout(self):
        return {"unit_value": Series(("time",), np.float64), "unit_kind": Series(("time",), np.int8)}

    def init(self, key):
        del key  # every unit draws from fold_in(run_key, unit) in advance
        o = self.options
        W, S, K = len(o.widths), o.seeds, o.stages
        N, M, R = len(o.sizes), o.samples, o.replicas

        def nan(*shape):
            return np.full(shape, np.nan, np.float32)

        carry = {}
        if self.panels & _NETWORK_PANELS:
            carry.update(net_loss=nan(W, S, K), net_index=nan(W, S, K), net_index_err=nan(W, S, K),
                         net_test_accuracy=nan(W, S), net_overlap=nan(W, S, S), net_distance=nan(W, S))
        if self.panels & _GLASS_PANELS:
            carry.update(glass_energy=nan(N, M, R, K), glass_index=nan(N, M, R, K), glass_overlap=nan(N, M, R, R),
                         glass_converged=nan(N, M, R))
        if "funnel" in self.panels:
            D, num_pairs = len(o.funnel_datasets), len(o.funnel_pairs)
            carry.update({f"perceptron_{k}": nan(D, num_pairs) for k in
                          ("folding", "glass", "ratio", "gap_ratio", "ground_energy", "degeneracy")})
            carry.update(perceptron_overlap_mean=nan(D, num_pairs, self.funnel_n + 1),
                         perceptron_overlap_min=nan(D, num_pairs, self.funnel_n + 1))
        if "regularization" in self.panels:
            L, Wd, Sr = len(o.learning_rates), len(o.weight_decays), o.regularization_seeds
            carry.update(reg_train_loss=nan(L, Wd, Sr), reg_test_loss=nan(L, Wd, Sr), reg_diverged=nan(L, Wd, Sr),
                         reg_alpha=nan(L, Wd, Sr, o.hidden_layers + 1), reg_initial_loss=nan(1),
                         lang_energy=nan(M, len(o.temperatures), R), lang_overlap=nan(M, len(o.temperatures), R // 2))
        if "chaos" in self.panels:
            B, Dp = len(o.blocks), len(o.depths)
            carry.update(depth_accuracy=nan(B, Dp, len(_INITS), o.depth_seeds),
                         depth_loss=nan(B, Dp, len(_INITS), o.depth_seeds), depth_params=nan(B, Dp))
        if "information" in self.panels:
            P, G = len(self.pixel_distance), len(self.lags)
            carry.update(info_pixel_mi=nan(P), info_pixel_err=nan(P),
                         info_sequence_mi=nan(len(self.sequence_kinds), G),
                         info_sequence_err=nan(len(self.sequence_kinds), G))
        return carry

    # --- units ------------------------------------------------------------------------------------------
    def _architecture(self, width):
        return (64, *(int(width),) * self.options.hidden_layers, 10)

    def _unit_network(self, c, key, i):
        o = self.options
        r = panels_mod.network_minima(
            key, self.digits, self._architecture(o.widths[i]), activation=o.activation, seeds=o.seeds,
            optimizer=o.optimizer, learning_rate=o.learning_rate, batch_size=o.batch_size, stages=self.net_stages,
            hessian_probes=o.hessian_probes, hessian_steps=o.hessian_steps, hessian_examples=o.hessian_examples,
            index_tolerance=o.index_tolerance, with_hessian="index" in self.panels,
            with_overlaps=bool(self.panels & {"overlaps", "funnel"}))
        c["net_loss"][i], c["net_index"][i], c["net_index_err"][i] = r.stage_loss, r.index, r.index_stderr
        c["net_test_accuracy"][i], c["net_overlap"][i], c["net_distance"][i] = r.test_accuracy, r.overlap, r.distance
        return float(np.median(r.stage_loss[:, -1] / np.mean(r.stage_loss[:, 0])))

    def _unit_glass(self, c, key, i):
        o = self.options
        r = panels_mod.glass_minima(key, o.sizes[i], o.p, samples=o.samples, replicas=o.replicas,
                                    stages=self.glass_stages, step_size=o.descent_step_size,
                                    tolerance=o.descent_tolerance, index_tolerance=o.index_tolerance,
                                    with_hessian="index" in self.panels)
        c["glass_energy"][i], c["glass_index"][i], c["glass_overlap"][i] = r.energy, r.index, r.overlap
        c["glass_converged"][i] = r.converged
        return float(np.mean(r.energy[..., -1]))

    def _unit_perceptron(self, c, key, d):
        o = self.options
        name = o.funnel_datasets[d]
        for j, pair in enumerate(o.funnel_pairs):
            model = panels_mod.perceptron_landscape(jax.random.fold_in(key, j), name, pair, o.funnel_shape)
            f = panels_mod.perceptron_funnel(model)
            for k in ("folding", "glass", "ratio", "gap_ratio", "ground_energy", "degeneracy"):
                c[f"perceptron_{k}"][d, j] = getattr(f, k)
            c["perceptron_overlap_mean"][d, j], c["perceptron_overlap_min"][d, j] = f.overlap_mean, f.overlap_min
        return float(cmp.nanmean(c["perceptron_ratio"][d]))

    def _unit_regularization_network(self, c, key, _):
        o = self.options
        r = panels_mod.regularization_sweep(
            key, self.digits, self._architecture(o.regularization_width), learning_rates=o.learning_rates,
            weight_decays=o.weight_decays, seeds=o.regularization_seeds, activation=o.activation,
            optimizer=o.optimizer, batch_size=o.batch_size, steps=o.regularization_steps)
        c["reg_train_loss"][...], c["reg_test_loss"][...] = r.train_loss, r.test_loss
        c["reg_diverged"][...], c["reg_alpha"][...] = r.diverged, r.alpha
        c["reg_initial_loss"][0] = r.initial_loss
        return float(np.mean(r.diverged))

    def _unit_regularization_glass(self, c, key, _):
        o = self.options
        r = panels_mod.glass_langevin(key, o.langevin_size, o.temperatures, o.p, samples=o.samples,
                                      replicas=o.replicas, steps=o.langevin_steps, step_size=o.langevin_step_size)
        c["lang_energy"][...], c["lang_overlap"][...] = r.energy, r.overlap
        return float(np.mean(r.energy[:, 0]))

    def _unit_depth(self, c, key, bd):
        o = self.options
        b, d = bd
        r = panels_mod.depth_trainability(
            key, self.digits, block=o.blocks[b], depth=o.depths[d], width=o.depth_width,
            weight_stds=self.init_weight_stds, bias_std=o.depth_bias_std, columns=o.fractal_columns,
            seeds=o.depth_seeds, optimizer=o.depth_optimizer, learning_rate=o.depth_learning_rate,
            batch_size=o.batch_size, steps=o.depth_steps)
        c["depth_accuracy"][b, d], c["depth_loss"][b, d], c["depth_params"][b, d] = (r.train_accuracy, r.train_loss,
                                                                                     r.param_count)
        return float(np.mean(r.train_accuracy))

    def _unit_information(self, c, key, _):
        o = self.options
        value = math.nan
        if "digits" in o.information_datasets:
            pm = information.pixel_mutual_information(self.binary_digits, self.pixel_distance)
            c["info_pixel_mi"][...], c["info_pixel_err"][...] = pm.mi, pm.stderr
            value = float(pm.mi[0])
        for s, kind in enumerate(self.sequence_kinds):
            seqs = panels_mod.sequences(jax.random.fold_in(key, s), kind, length=o.sequence_length,
                                        num_sequences=o.num_sequences, alphabet=o.alphabet)
            decay = information.mutual_information_decay(seqs, self.lags, o.alphabet)
            c["info_sequence_mi"][s], c["info_sequence_err"][s] = decay.mi, decay.stderr
        return value

    # Units of work are independent (each writes its own slots of the carry, from its own key), so a chunk's units
    # are dealt out: unit u to the (u mod P)-th of the P processes holding the run's devices, then, within a process,
    # its units side by side, one per local device: the same programs on the same kind of device, hence the same
    # numbers as one after the other on one device. The processes then swap the slots their units wrote
    # (``_exchange``), so each holds the whole carry and the unit values, and process 0 writes them.
    batch_ndim = None
    placement_axis = "units"

    def _workers(self) -> tuple[list[int], list]:
        """The processes that compute (those holding some of the run's devices, in order) and this one's devices."""
        from ..sharding import select_devices

        devices = select_devices(self.config.run.devices)
        here = jax.process_index()
        return sorted({d.process_index for d in devices}), [d for d in devices if d.process_index == here]

    def _share(self, start: int, num: int) -> list[int]:
        """The units of the chunk ``[start, start + num)`` this process computes."""
        processes, _ = self._workers()
        return [u for u in range(start, start + num) if processes[u % len(processes)] == jax.process_index()]

    def advance(self, carry, key, start, num):
        before = {k: np.array(v, np.float32) for k, v in carry.items()}
        c = {k: v.copy() for k, v in before.items()}  # a writable copy
        _, devices = self._workers()
        mine = self._share(start, num)

        def work(slot, unit):
            kind, arg = self.units[unit]
            with jax.default_device(devices[slot % len(devices)]):
                return getattr(self, f"_unit_{kind}")(c, jax.random.fold_in(key, unit), arg)

        if len(devices) > 1 and len(mine) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=len(devices)) as pool:
                computed = list(pool.map(work, range(len(mine)), mine))
        else:
            computed = [work(slot, unit) for slot, unit in enumerate(mine)]
        values = dict(zip(mine, computed, strict=True))
        if jax.process_count() > 1:
            _exchange(before, c, values)
        units = range(start, start + num)
        kinds = [UNIT_KINDS.index(self.units[unit][0]) for unit in units]
        return c, {"unit_value": np.asarray([values[u] for u in units], np.float64),
                   "unit_kind": np.asarray(kinds, np.int8)}

    # --- summaries --------------------------------------------------------------------------------------
    def summarize_final(self, series, carry):
        return compare_summary.summarize(
            {k: np.asarray(v) for k, v in carry.items()}, self.options, net_stages=self.net_stages,
            glass_stages=self.glass_stages, init_weight_stds=self.init_weight_stds,
            pixel_distance=self.pixel_distance, lags=self.lags, sequence_kinds=self.sequence_kinds)

    # --- figures and report -----------------------------------------------------------------------------
    def plot(self, h5, outdir):
        """One figure per panel that ran, and ``report.md`` in the run directory (``outdir.parent``)."""
        import matplotlib

        matplotlib.use("Agg")
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        data = {name: _read(h5[name]) for name in h5 if not hasattr(h5[name], "keys")}
        paths = []
        with warnings.catch_warnings():  # figures draw what there is: NaN gaps and empty log axes are not errors
            warnings.simplefilter("ignore")
            for panel, draw in (("minima", _plot_minima), ("index", _plot_index), ("overlaps", _plot_overlaps),
                                ("funnel", _plot_funnel), ("regularization", _plot_temperature),
                                ("chaos", _plot_chaos), ("information", _plot_information)):
                if panel in self.panels:
                    paths.append(draw(data, self.options, outdir / f"{panel}.png"))
        report = outdir.parent / "report.md"
        report.write_text(_report(data, self.options, [p.name for p in paths]))
        return paths


# --- units computed by several processes --------------------------------------------------------------------------

# Every process calls ``_exchange`` once per chunk, in the same order, so this count names the same exchange on all.
_EXCHANGES = itertools.count()
_KEY_PREFIX = "deepglass/compare"
_WAIT_MS = 60_000  # one wait for a peer's slots; a unit can take longer, so the wait repeats (a dead peer ends the
#                    run through the runtime's heartbeat, not through this timeout)


def _exchange(before: dict, carry: dict, values: dict) -> None:
    """Give every process the slots the others' units wrote and their unit values, in place.

    Each process publishes, in the key-value store of JAX's distributed runtime (the coordinator every process
    already talks to; no files, no MPI), the flat indices and values of the carry's entries whose bits its units
    changed, with its units' values; then it reads every peer's and writes them into its own carry. Units write
    disjoint slots, so the merge is the single-process carry bit for bit (an entry a unit rewrote with identical
    bits is not sent, and needs not be). Reading a peer's slots of exchange s proves it has read everything of
    exchange s − 1, so once all are read this process deletes its own entry of s − 1: the store holds one chunk.
    """
    from jax._src import distributed as jax_distributed  # the runtime's client has no public accessor

    client = jax_distributed.global_state.client
    here, count, exchange = jax.process_index(), jax.process_count(), next(_EXCHANGES)
    client.key_value_set_bytes(f"{_KEY_PREFIX}/{exchange}/{here}", _pack(before, carry, values))
    for peer in range(count):
        if peer != here:
            _unpack_into(_wait_for_bytes(client, f"{_KEY_PREFIX}/{exchange}/{peer}"), carry, values)
    if exchange:
        client.key_value_delete(f"{_KEY_PREFIX}/{exchange - 1}/{here}")


def _wait_for_bytes(client, key: str) -> bytes:
    while True:
        try:
            return client.blocking_key_value_get_bytes(key, _WAIT_MS)
        except Exception as e:  # noqa: BLE001 — the runtime raises one type for every status; only a timeout retries
            if "DEADLINE_EXCEEDED" not in str(e):
                raise


def _pack(before: dict, carry: dict, values: dict) -> bytes:
    """The entries of ``carry`` whose bits differ from ``before`` (flat index, value) and the unit values, as npz."""
    arrays = {"units": np.asarray(list(values), np.int64), "values": np.asarray(list(values.values()), np.float64)}
    for name, now in carry.items():
        changed = np.flatnonzero(now.view(np.uint32) != before[name].view(np.uint32))
        arrays[f"{name}.index"], arrays[f"{name}.value"] = changed, now.ravel()[changed]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _unpack_into(data: bytes, carry: dict, values: dict) -> None:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        values.update(zip(arrays["units"].tolist(), arrays["values"].tolist(), strict=True))
        for name, slots in carry.items():
            np.put(slots, arrays[f"{name}.index"], arrays[f"{name}.value"])


# --- reading and figures ------------------------------------------------------------------------------------------


def _read(ds):
    value = ds[()]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(value)
    return value


def _figure(ncols: int, nrows: int = 1):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.5 * nrows), squeeze=False)
    return fig, axes


def _save(fig, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_COLORS = {"network": "C0", "glass": "C3"}


def _plot_minima(d, o, path):
    fig, axes = _figure(2)
    sizes, eps = d["size_value"], d["minimum_energy"]
    for k, system in enumerate(cmp.SYSTEMS):
        ok = np.isfinite(sizes[k])
        for i in np.flatnonzero(ok):
            y = eps[k, i][np.isfinite(eps[k, i])]
            axes[0][0].plot(np.full(y.size, sizes[k, i]), y, ".", color=_COLORS[system], alpha=0.4)
        axes[0][0].errorbar(sizes[k, ok], d["minimum_mean"][k, ok], d["minimum_mean_stderr"][k, ok], fmt="o-",
                            color=_COLORS[system], capsize=3, label=system)
        sd, err = d["minimum_spread"][k, ok], d["minimum_spread_stderr"][k, ok]
        s, se = d["spread_exponent"][k], d["spread_exponent_stderr"][k]
        axes[0][1].errorbar(sizes[k, ok], sd, err, fmt="o", color=_COLORS[system], capsize=3,
                            label=f"{system}: s = {cmp.format_value(s, se)}")
    axes[0][0].axhline(d["glass_threshold_normalized"], color="C3", ls=":", lw=1, label="glass threshold ε_th")
    axes[0][0].set(xscale="log", yscale="log", xlabel="size (hidden width | n)", ylabel="ε of the minima found")
    axes[0][1].set(xscale="log", yscale="log", xlabel="size (hidden width | n)", ylabel="spread of ε (sd)")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path, "1. minima vs size: ε = L/L_0 (networks), 1 − e/E_0 (p-spin); spread ∝ size^s")


def _plot_index(d, o, path):
    fig, axes = _figure(2)
    for k, system in enumerate(cmp.SYSTEMS):
        ax = axes[0][k]
        eps, idx = d["stage_energy"][k], d["hessian_index"][k]
        for j in range(eps.shape[-1]):
            ax.plot(eps[..., j].ravel(), idx[..., j].ravel(), ".", alpha=0.6,
                    label=f"step {int(d['stage_step'][k, j])}")
        if system == "glass":
            grid = np.linspace(0.0, 1.0, 200)
            ax.plot(grid, theory.pspin_hessian_index_fraction(theory.pspin_ground_state_energy(o.p) * (1 - grid),
                                                              o.p), "k-", lw=1, label="critical points (theory)")
        r = d["index_energy_correlation"][k]
        ax.set(xlabel="ε", ylabel="Hessian index (fraction)", title=f"{system}: r(ε, index) = {cmp.format_value(r)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path, f"2. index vs energy of the points reached (index: eigenvalues < −{o.index_tolerance:g} "
                            "λ_max)")


def _plot_overlaps(d, o, path):
    fig, axes = _figure(2)
    q = d["q_bin"]
    for k, system in enumerate(cmp.SYSTEMS):
        ax = axes[0][k]
        for i, size in enumerate(d["size_value"][k]):
            if np.isfinite(size) and np.any(np.isfinite(d["overlap_distribution"][k, i])):
                ax.plot(q, d["overlap_distribution"][k, i], "-", label=f"{int(size)}")
        ax.set(xlabel="q" + (" (aligned)" if system == "network" else ""), ylabel="P(q)", title=system)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="size")
    return _save(fig, path, "3. overlaps between independent minima: networks permutation-aligned, glass replicas")


def _plot_funnel(d, o, path):
    fig, axes = _figure(4 if "dataset" in d else 2)
    for k, system in enumerate(cmp.SYSTEMS):
        ax = axes[0][k]
        sizes = d["size_value"][k]
        last = int(np.flatnonzero(np.isfinite(sizes))[-1]) if np.any(np.isfinite(sizes)) else 0
        ax.plot(d["best_overlap"][k, last], d["minimum_energy"][k, last] if "minimum_energy" in d else
                np.full_like(d["best_overlap"][k, last], np.nan), "o", color=_COLORS[system], alpha=0.7)
        ax.set(xlabel="overlap with the best minimum", ylabel="ε",
               title=f"{system}, size {sizes[last]:g}: g = "
                     f"{cmp.format_value(d['frustration_gap'][k, last], d['frustration_gap_stderr'][k, last])}")
        ax.grid(alpha=0.3)
    if "dataset" in d:
        names = list(d["dataset"])
        ax = axes[0][2]
        for j, name in enumerate(names):
            prof = d["perceptron_energy_overlap_mean"][j]  # (instance, shell)
            ground = d["perceptron_ground_energy"][j][:, None]
            top = np.max(np.where(np.isfinite(prof), prof, -np.inf), axis=-1, keepdims=True)
            ax.plot(d["shell_overlap"], cmp.nanmean((prof - ground) / np.where(top > ground, top - ground, 1.0),
                                                   axis=0), "o-", ms=3, label=name)
        ax.set(xlabel="overlap Q with the ground state", ylabel="(⟨E⟩_Q − E_0)/(max − E_0)",
               title="perceptron: mean energy vs Q (exact)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax = axes[0][3]
        x = np.arange(len(names))
        ax.errorbar(x - 0.1, d["perceptron_tf_over_tg_mean"], d["perceptron_tf_over_tg_stderr"], fmt="o",
                    capsize=3, label="T_f/T_g")
        ax.errorbar(x + 0.1, d["perceptron_gap_ratio_mean"], d["perceptron_gap_ratio_stderr"], fmt="s",
                    capsize=3, label="gap ratio g")
        ax.axhline(d["perceptron_tf_over_tg_unfrustrated"], color="k", ls=":", lw=1, label="T_f/T_g unfrustrated")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xticks(x, names)
        ax.set(title=f"perceptron, n = {o.funnel_shape[0] * o.funnel_shape[1]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path, "4. funnel: energy vs distance to the best solution; minimal-frustration scores")


def _plot_temperature(d, o, path):
    fig, axes = _figure(4)
    lrs, wds = d["learning_rate"], d["weight_decay"]
    for j, wd in enumerate(wds):
        axes[0][0].errorbar(lrs, d["regularization_energy_mean"][:, j], d["regularization_energy_stderr"][:, j],
                            fmt="o-", capsize=3, label=f"λ = {wd:g}")
        div = d["regularization_diverged_fraction"][:, j] > 0
        finite = d["regularization_energy_mean"][np.isfinite(d["regularization_energy_mean"])]
        axes[0][0].plot(lrs[div], np.full(div.sum(), finite.max() * 1.2 if finite.size else 1.0), "x", color="k")
        axes[0][1].errorbar(lrs, d["regularization_alpha_mean"][:, j], d["regularization_alpha_stderr"][:, j],
                            fmt="o-", capsize=3, label=f"λ = {wd:g}")
    axes[0][0].set(xscale="log", yscale="log", xlabel="learning rate η", ylabel="ε (stable nets; × diverged)")
    axes[0][1].set(xscale="log", xlabel="learning rate η", ylabel="heavy-tail α (mean over layers)")
    t = d["temperature"]
    axes[0][2].errorbar(t, d["glass_temperature_energy_mean"], d["glass_temperature_energy_stderr"], fmt="o",
                        capsize=3, color="C3", label=f"Langevin, n = {o.langevin_size}")
    fine = np.linspace(t.min(), t.max(), 200)
    axes[0][2].plot(fine, theory.pspin_threshold_energy_at(fine, o.p), "k-", lw=1, label="e_th(T) / −1/(2T)")
    axes[0][2].set(xlabel="T", ylabel="energy per spin")
    axes[0][3].errorbar(t, d["glass_temperature_overlap_mean"], d["glass_temperature_overlap_stderr"], fmt="o",
                        capsize=3, color="C3")
    axes[0][3].set(xlabel="T", ylabel="replica overlap q (end)")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, path, "5. regularization as temperature: networks over (η, λ), the glass over T")


def _plot_chaos(d, o, path):
    fig, axes = _figure(2)
    ax = axes[0][0]
    for b, block in enumerate(d["block"]):
        for i, init in enumerate(d["init"]):
            acc = d["depth_train_accuracy"][b, :, i]
            mean = cmp.nanmean(acc, axis=-1)
            err = cmp.spread(acc, axis=-1)[0] / np.sqrt(acc.shape[-1])
            ax.errorbar(d["depth"], mean, err, fmt="o-" if init == "critical" else "s--", capsize=3,
                        color=f"C{b}", label=f"{block}, {init} (σ_w = {d['init_weight_std'][i]:.3g})")
    xi = d["init_xi_c"][0]
    if np.isfinite(xi):
        ax.axvline(6 * xi, color="grey", ls=":", lw=1, label=f"6 ξ_c (ordered) = {6 * xi:.3g}")
    ax.axhline(o.trainable_accuracy, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="depth (hidden-to-hidden layers on the longest path)",
           ylabel="final training accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    ax = axes[0][1]
    if "network_distance" in d:
        for i, size in enumerate(d["size_value"][0]):
            if np.isfinite(size):
                ax.plot(d["network_distance"][i], d["network_test_accuracy"][i], "o", label=f"width {int(size)}")
        ax.axvline(0.0, color="k", lw=0.8)
        ax.legend(fontsize=7)
    ax.set(xlabel="σ_w − σ_w,crit (mean over hidden layers)", ylabel="test accuracy",
           title="trained networks on the order-to-chaos diagram")
    ax.grid(alpha=0.3)
    return _save(fig, path, "6. order and chaos: trainability vs depth at equal parameter count")


def _plot_information(d, o, path):
    curves = []
    if "pixel_distance" in d:
        curves.append(("digits pixels", d["pixel_distance"], d["pixel_mi"], d["pixel_mi_stderr"]))
    if "sequence" in d:
        for s, kind in enumerate(d["sequence"]):
            curves.append((kind, d["lag"], d["sequence_mi"][s], d["sequence_mi_stderr"][s]))
    fig, axes = _figure(len(curves))
    names = list(d["information_dataset"])
    for ax, (label, x, y, e) in zip(axes[0], curves, strict=True):
        ax.errorbar(x, y, e, fmt="o", ms=3, capsize=2)
        j = names.index("digits" if label == "digits pixels" else label)
        k, xi = d["power_law_exponent"][j], d["exponential_length"][j]
        ax.set(xscale="log", yscale="log", xlabel="distance d", ylabel="I(d) (bits)",
               title=f"{label}: {d['decay_winner'][j]} (ΔAIC {cmp.format_value(d['decay_delta_aic'][j])}); "
                     f"k = {cmp.format_value(k)}, ξ = {cmp.format_value(xi)}")
        ax.title.set_fontsize(7)
        ax.grid(alpha=0.3)
    return _save(fig, path, "8. mutual information vs distance: power law or exponential")


# --- report -------------------------------------------------------------------------------------------------------


def _cell(value, err=None) -> str:
    return cmp.format_value(value, err)


def _pm(d, name, *index) -> str:
    """``d[name][index] ± d[name + "_stderr"][index]``."""
    return _cell(d[name][index], d[f"{name}_stderr"][index])


def _report(d, o, figures) -> str:
    lines = ["# deepglass compare: networks and glasses side by side", ""]
    lines += [f"Panels: {', '.join(o.panels)}. Figures: {', '.join(f'figures/{f}' for f in figures)}.", ""]
    lines += ["Normalized energy: ε = L/L_0 for a network (L the training loss, L_0 the mean loss at "
              "initialization), ε = 1 − e/E_0 for the p-spin (e per spin, E_0 its n → ∞ ground state). Errors are "
              "standard errors over independent seeds or disorder samples.", ""]
    sizes = d["size_value"]
    if "minimum_spread" in d:
        lines += ["## 1. Minima vs size", "", "| system | size | ε mean | spread of ε |", "| --- | --- | --- | --- |"]
        for k, system in enumerate(cmp.SYSTEMS):
            for i in np.flatnonzero(np.isfinite(sizes[k])):
                lines.append(f"| {system} | {sizes[k, i]:g} | {_pm(d, 'minimum_mean', k, i)} "
                             f"| {_pm(d, 'minimum_spread', k, i)} |")
        lines += ["", "Spread exponent s (spread ∝ size^s): " + "; ".join(
            f"{s} {_cell(d['spread_exponent'][k], d['spread_exponent_stderr'][k])}" for k, s in enumerate(cmp.SYSTEMS))
            + f". Glass threshold at ε_th = {_cell(d['glass_threshold_normalized'])}.", ""]
    if "hessian_index" in d:
        lines += ["## 2. Index vs energy", ""]
        for k, system in enumerate(cmp.SYSTEMS):
            idx = d["hessian_index"][k]
            lines.append(f"- {system}: index at the start {_cell(cmp.nanmean(idx[..., 0]))}, at the end "
                         f"{_cell(cmp.nanmean(idx[..., -1]))}; r(ε, index) = "
                         f"{_cell(d['index_energy_correlation'][k])}")
        lines.append("")
    if "overlap_mean" in d:
        lines += ["## 3. Overlaps", ""]
        for k, system in enumerate(cmp.SYSTEMS):
            vals = [f"{sizes[k, i]:g}: {_cell(d['overlap_mean'][k, i], d['overlap_mean_stderr'][k, i])}"
                    for i in np.flatnonzero(np.isfinite(sizes[k]))]
            lines.append(f"- {system} mean overlap by size — " + "; ".join(vals))
        lines.append("")
    if "frustration_gap" in d:
        lines += ["## 4. Funnel", ""]
        for k, system in enumerate(cmp.SYSTEMS):
            vals = [f"{sizes[k, i]:g}: g = {_cell(d['frustration_gap'][k, i], d['frustration_gap_stderr'][k, i])}, "
                    f"r(ε, q_best) = {_cell(d['funnel_correlation'][k, i])}"
                    for i in np.flatnonzero(np.isfinite(sizes[k]))]
            lines.append(f"- {system}: " + "; ".join(vals))
        if "dataset" in d:
            lines += ["", f"Perceptron landscapes, n = {o.funnel_shape[0] * o.funnel_shape[1]}, exact "
                      f"(T_f/T_g of the unfrustrated funnel at this n: "
                      f"{_cell(d['perceptron_tf_over_tg_unfrustrated'])}):", "",
                      "| data | T_f/T_g | gap ratio g | ground energy (errors) |", "| --- | --- | --- | --- |"]
            for j, name in enumerate(d["dataset"]):
                tf, g = _cell(*(d[f"perceptron_tf_over_tg_{x}"][j] for x in ("mean", "stderr"))), \
                    _cell(*(d[f"perceptron_gap_ratio_{x}"][j] for x in ("mean", "stderr")))
                lines.append(f"| {name} | {tf} | {g} | {_cell(cmp.nanmean(d['perceptron_ground_energy'][j]))} |")
        lines.append("")
    if "loss_slope_learning_rate" in d:
        lines += ["## 5. Regularization as temperature", "",
                  f"- networks: dε/dlog10 η = {_pm(d, 'loss_slope_learning_rate')}, "
                  f"dε/dlog10 λ = {_pm(d, 'loss_slope_weight_decay')}; "
                  f"diverged: {_cell(100 * np.mean(d['regularization_diverged']))}% of the runs",
                  f"- glass: de/dT = {_pm(d, 'glass_energy_slope')}; overlap from "
                  f"{_cell(d['glass_temperature_overlap_mean'][0])} at T = {d['temperature'][0]:g} to "
                  f"{_cell(d['glass_temperature_overlap_mean'][-1])} at T = {d['temperature'][-1]:g}", ""]
    if "depth_train_accuracy" in d:
        lines += ["## 6. Order and chaos, depth", "",
                  "- initializations: " + "; ".join(
                      f"{init} σ_w = {_cell(d['init_weight_std'][i])} (χ_1 = {_cell(d['init_chi1'][i])}, ξ_c = "
                      f"{_cell(d['init_xi_c'][i])})" for i, init in enumerate(d["init"])),
                  "- failure depth (mean accuracy < " + f"{o.trainable_accuracy:g}): " + "; ".join(
                      f"{block} {init} {_cell(d['failure_depth'][b, i])}" for b, block in enumerate(d["block"])
                      for i, init in enumerate(d["init"])), ""]
    if "decay_winner" in d:
        lines += ["## 8. Long-range correlations of the data", ""]
        for j, name in enumerate(d["information_dataset"]):
            lines.append(f"- {name}: {d['decay_winner'][j]} by ΔAIC {_cell(d['decay_delta_aic'][j])} (power law "
                         f"k = {_cell(d['power_law_exponent'][j], d['power_law_exponent_stderr'][j])}, exponential "
                         f"ξ = {_cell(d['exponential_length'][j], d['exponential_length_stderr'][j])})")
        lines.append("")
    lines += ["## Claims", "",
              "Verdict rule: the evidence (a signed difference or slope, positive for the claim) must exceed two "
              "standard errors to be *supported*, fall below minus two to be *not supported*, else *inconclusive*; "
              "decay fits need ΔAIC > 10; a claim of several parts needs every part to agree.", "",
              "| claim | observable | network value | glass value | verdict |", "| --- | --- | --- | --- | --- |"]
    for j in range(len(d["claim"])):
        cells = [d[f"claim_{f}"][j] for f in ("text", "observable", "network", "glass", "verdict")]
        lines.append("| " + " | ".join(str(x).replace("|", "/") for x in cells) + " |")
    return "\n".join(lines) + "\n"
