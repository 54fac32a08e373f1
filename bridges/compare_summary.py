"""The compare job's measured numbers → the datasets of its results file and the claims table.

:func:`summarize` takes the arrays the job's units filled (``runs/jobs/compare.py``: NaN where a unit did not run)
and returns ``{name: (dims, array)}``. Conventions (DESIGN §3.14): an observable measured on both sides is ONE
dataset with the coordinate ``system = ["network", "glass"]`` and a ``size`` axis whose values are
``size_value[system, size]`` (hidden width, or n), NaN-padded where a side has fewer sizes, samples or pairs.
Energies are normalized as ``bridges.compare`` states (``ε = L/L_0``, ``ε = 1 - e/E_0``); statistics and verdict
rules are those of ``bridges.compare``. Independent units of each error bar: network seeds; glass disorder samples
(replicas within a sample share its couplings) except where a chain-level statistic is stated.
"""
from __future__ import annotations

import math

import numpy as np

from physics import theory

from . import chaos, data_rem, information
from . import compare as cmp

__all__ = ["PQ_EDGES", "summarize", "failure_depth"]

PQ_EDGES = np.linspace(-1.0, 1.0, 42)  # the p-spin job's P(q) bins


def _pad(arrays, length: int, axis: int = 0) -> np.ndarray:
    """Stack arrays after NaN-padding each along ``axis`` to ``length``."""
    out = []
    for a in arrays:
        a = np.asarray(a, np.float64)
        width = [(0, 0)] * a.ndim
        width[axis] = (0, length - a.shape[axis])
        out.append(np.pad(a, width, constant_values=np.nan))
    return np.stack(out)


def _mean_err(x, axis=-1):
    """NaN-ignoring mean and standard error (sd/√N)."""
    x = np.asarray(x, np.float64)
    count = np.sum(np.isfinite(x), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(x, axis=axis) / count
        sd, _ = cmp.spread(x, axis=axis)
        return np.where(count > 0, mean, np.nan), sd / np.sqrt(count)


def _upper(matrix) -> np.ndarray:
    m = np.asarray(matrix, np.float64)
    return m[np.triu_indices(m.shape[-1], k=1)]


def failure_depth(depths, accuracy, threshold: float) -> float:
    """The smallest depth whose mean final training accuracy is below ``threshold`` (NaN when none is)."""
    acc = np.asarray(accuracy, np.float64)
    below = np.flatnonzero(acc < threshold)
    return float(np.asarray(depths)[below[0]]) if below.size else math.nan


def _slope_value(s: cmp.Slope):
    return np.float64(s.value), np.float64(s.stderr)


def summarize(carry: dict, o, *, net_stages, glass_stages, init_weight_stds, pixel_distance, lags,
              sequence_kinds) -> dict:
    """Every dataset of the compare job from its filled carry ``{name: array}`` and its options ``o``."""
    panels = set(o.panels)
    c = {k: np.asarray(v, np.float64) for k, v in carry.items()}
    out: dict = {"system": (("system",), np.asarray(cmp.SYSTEMS))}
    claims: dict = {}
    has_net, has_glass = "net_loss" in c, "glass_energy" in c
    W, N = len(o.widths), len(o.sizes)
    S, M, R, K = o.seeds, o.samples, o.replicas, o.stages
    num_sizes = max(W, N)
    num_samples = max(S, M * R, o.regularization_seeds)
    out["size"] = (("size",), np.arange(num_sizes))
    out["sample"] = (("sample",), np.arange(num_samples))
    out["size_value"] = (("system", "size"), _pad([np.asarray(o.widths, np.float64),
                                                  np.asarray(o.sizes, np.float64)], num_sizes))
    e0 = theory.pspin_ground_state_energy(o.p)
    net_eps = glass_eps = None
    if has_net:
        initial = cmp.nanmean(c["net_loss"][..., 0], axis=1)  # (W,): mean loss at initialization per width
        net_eps = c["net_loss"] / initial[:, None, None]  # (W, S, K)
        out["network_initial_loss"] = (("size",), _pad([initial], num_sizes, axis=0)[0])
    if has_glass:
        glass_eps = cmp.glass_normalized_energy(c["glass_energy"], o.p).reshape(N, M * R, K)

    def both(net, glass):
        """``(system, size, …)`` from the per-side arrays (leading axis: their sizes), NaN-padded; None is NaN."""
        shapes = [x.shape for x in (net, glass) if x is not None]
        trailing = [max(shape[i] for shape in shapes) for i in range(1, len(shapes[0]))]
        res = np.full((2, num_sizes, *trailing), np.nan)
        for k, x in enumerate((net, glass)):
            if x is not None:
                res[(k, *tuple(slice(0, n) for n in x.shape))] = x
        return res

    # --- panel 1: minima vs size ----------------------------------------------------------------------------------
    if "minima" in panels:
        net_final = None if net_eps is None else net_eps[..., -1]
        glass_final = None if glass_eps is None else glass_eps[..., -1]
        eps = both(net_final, glass_final)
        raw = both(None if not has_net else c["net_loss"][..., -1],
                   None if not has_glass else c["glass_energy"][..., -1].reshape(N, M * R))
        full = np.full((2, num_sizes, num_samples), np.nan)
        full[:, :, : eps.shape[2]] = eps
        out["minimum_energy"] = (("system", "size", "sample"), full)
        full_raw = np.full_like(full, np.nan)
        full_raw[:, :, : raw.shape[2]] = raw
        out["minimum_energy_raw"] = (("system", "size", "sample"), full_raw)
        sd, sd_err = cmp.spread(full, axis=-1)
        mean, mean_err = _mean_err(full, axis=-1)
        out["minimum_spread"] = (("system", "size"), sd)
        out["minimum_spread_stderr"] = (("system", "size"), sd_err)
        out["minimum_mean"] = (("system", "size"), mean)
        out["minimum_mean_stderr"] = (("system", "size"), mean_err)
        slopes = [cmp.log_slope(out["size_value"][1][k], sd[k], sd_err[k]) for k in range(2)]
        out["spread_exponent"] = (("system",), np.array([s.value for s in slopes]))
        out["spread_exponent_stderr"] = (("system",), np.array([s.stderr for s in slopes]))
        out["glass_threshold_normalized"] = ((), np.float64(cmp.glass_threshold_normalized(o.p)))
        out["theory_ground_state_energy"] = ((), np.float64(e0))
        out["theory_threshold_energy"] = ((), np.float64(theory.pspin_threshold_energy(o.p)))
        claims["spread"] = cmp.claim_spread(network=slopes[0] if has_net else None,
                                            glass=slopes[1] if has_glass else None)

    # --- panel 2: index vs energy ---------------------------------------------------------------------------------
    if "index" in panels:
        out["stage"] = (("stage",), np.arange(K))
        out["stage_step"] = (("system", "stage"), np.array([net_stages, glass_stages], np.float64))
        energy = np.full((2, num_sizes, num_samples, K), np.nan)
        index = np.full_like(energy, np.nan)
        index_err = np.full_like(energy, np.nan)
        if has_net:
            energy[0, :W, :S] = net_eps
            index[0, :W, :S] = c["net_index"]
            index_err[0, :W, :S] = c["net_index_err"]
        if has_glass:
            energy[1, :N, : M * R] = glass_eps
            index[1, :N, : M * R] = c["glass_index"].reshape(N, M * R, K)
            index_err[1, :N, : M * R] = 0.0  # exact: every tangent eigenvalue
            th = np.full((num_sizes, num_samples, K), np.nan)
            th[:N, : M * R] = theory.pspin_hessian_index_fraction(c["glass_energy"].reshape(N, M * R, K), o.p)
            out["theory_hessian_index"] = (("size", "sample", "stage"), th)
        out["stage_energy"] = (("system", "size", "sample", "stage"), energy)
        out["hessian_index"] = (("system", "size", "sample", "stage"), index)
        out["hessian_index_stderr"] = (("system", "size", "sample", "stage"), index_err)
        corr = [cmp.correlation(energy[k], index[k]) for k in range(2)]
        out["index_energy_correlation"] = (("system",), np.array([x.r for x in corr]))
        out["index_energy_correlation_z"] = (("system",), np.array([x.z for x in corr]))
        out["index_energy_correlation_z_stderr"] = (("system",), np.array([x.z_stderr for x in corr]))
        claims["low_index"] = cmp.claim_low_index(network=corr[0] if has_net else None,
                                                  glass=corr[1] if has_glass else None)

    # --- panel 3: overlaps ----------------------------------------------------------------------------------------
    if "overlaps" in panels:
        net_pairs = [_upper(c["net_overlap"][w]) for w in range(W)] if has_net else []
        glass_pairs = [np.concatenate([_upper(c["glass_overlap"][i, m]) for m in range(M)]) for i in range(N)] \
            if has_glass else []
        num_pairs = max([len(x) for x in net_pairs + glass_pairs] or [1])
        pairs = np.full((2, num_sizes, num_pairs), np.nan)
        for k, group in enumerate((net_pairs, glass_pairs)):
            for i, q in enumerate(group):
                pairs[k, i, : len(q)] = q
        out["pair"] = (("pair",), np.arange(num_pairs))
        out["overlap"] = (("system", "size", "pair"), pairs)
        out["q_bin"] = (("q_bin",), 0.5 * (PQ_EDGES[1:] + PQ_EDGES[:-1]))
        dist = np.full((2, num_sizes, len(PQ_EDGES) - 1), np.nan)
        for k in range(2):
            for i in range(num_sizes):
                q = pairs[k, i][np.isfinite(pairs[k, i])]
                if q.size:
                    dist[k, i] = np.histogram(np.clip(q, -1.0, 1.0), bins=PQ_EDGES, density=True)[0]
        out["overlap_distribution"] = (("system", "size", "q_bin"), dist)
        # error bars over independent units: the per-network mean overlap (seeds), the per-sample mean (glass)
        per_unit = np.full((2, num_sizes, max(S, M)), np.nan)
        if has_net:
            m = c["net_overlap"].copy()
            for w in range(W):
                np.fill_diagonal(m[w], np.nan)
            per_unit[0, :W, :S] = cmp.nanmean(m, axis=-1)
        if has_glass:
            g = c["glass_overlap"].copy()
            for i in range(N):
                for s in range(M):
                    np.fill_diagonal(g[i, s], np.nan)
            per_unit[1, :N, :M] = cmp.nanmean(g, axis=(-2, -1))
        mean, err = _mean_err(per_unit, axis=-1)
        out["overlap_mean"] = (("system", "size"), mean)
        out["overlap_mean_stderr"] = (("system", "size"), err)

    # --- panel 4: funnel ------------------------------------------------------------------------------------------
    if "funnel" in panels:
        best = np.full((2, num_sizes, num_samples), np.nan)
        corr = np.full((2, num_sizes), np.nan)
        corr_z_err = np.full((2, num_sizes), np.nan)
        gap = np.full((2, num_sizes), np.nan)
        gap_err = np.full((2, num_sizes), np.nan)
        ratio = np.full((2, num_sizes), np.nan)
        if has_net:
            for w in range(W):
                loss = c["net_loss"][w, :, -1]
                if np.sum(np.isfinite(loss)) < 2:
                    continue
                b = int(np.nanargmin(loss))
                best[0, w, :S] = c["net_overlap"][w, b]
                others = np.arange(S) != b
                x = cmp.correlation(net_eps[w, others, -1], c["net_overlap"][w, b, others])
                corr[0, w], corr_z_err[0, w] = x.r, x.z_stderr
                f = cmp.frustration_score(loss)
                gap[0, w], gap_err[0, w], ratio[0, w] = f.g, f.g_stderr, f.tf_over_tg
        if has_glass:
            for i in range(N):
                e = c["glass_energy"][i, :, :, -1]  # (M, R)
                rows, scores, eps_o, q_o = [], [], [], []
                for s in range(M):
                    if not np.any(np.isfinite(e[s])):
                        continue
                    b = int(np.nanargmin(e[s]))
                    rows.append(c["glass_overlap"][i, s, b])
                    others = np.arange(R) != b
                    eps_o.append(glass_eps[i].reshape(M, R, K)[s, others, -1])
                    q_o.append(c["glass_overlap"][i, s, b, others])
                    scores.append(cmp.frustration_score(e[s]).g)
                if not rows:
                    continue
                best[1, i, : len(rows) * R] = np.concatenate(rows)
                x = cmp.correlation(np.concatenate(eps_o), np.concatenate(q_o))
                corr[1, i], corr_z_err[1, i] = x.r, x.z_stderr
                gap[1, i], gap_err[1, i] = _mean_err(np.asarray(scores))
                ratio[1, i] = gap[1, i] + math.sqrt(gap[1, i] ** 2 - 1) if gap[1, i] >= 1 else math.nan
        out["best_overlap"] = (("system", "size", "sample"), best)
        out["funnel_correlation"] = (("system", "size"), corr)
        out["funnel_correlation_z_stderr"] = (("system", "size"), corr_z_err)
        out["frustration_gap"] = (("system", "size"), gap)
        out["frustration_gap_stderr"] = (("system", "size"), gap_err)
        out["frustration_tf_over_tg"] = (("system", "size"), ratio)
        perceptron = None
        if "perceptron_ratio" in c:
            names = list(o.funnel_datasets)
            n = o.funnel_shape[0] * o.funnel_shape[1]
            out["dataset"] = (("dataset",), np.asarray(names))
            out["instance"] = (("instance",), np.arange(len(o.funnel_pairs)))
            out["pair_member"] = (("pair_member",), np.arange(2))
            out["class_pair"] = (("instance", "pair_member"), np.asarray(o.funnel_pairs, np.int64))
            for k in ("folding", "glass", "ratio", "gap_ratio", "ground_energy", "degeneracy"):
                name = {"folding": "perceptron_tf", "glass": "perceptron_tg", "ratio": "perceptron_tf_over_tg"}.get(
                    k, f"perceptron_{k}")
                out[name] = (("dataset", "instance"), c[f"perceptron_{k}"])
            for k in ("tf_over_tg", "gap_ratio"):
                mean, err = _mean_err(out[f"perceptron_{k}"][1], axis=-1)
                out[f"perceptron_{k}_mean"] = (("dataset",), mean)
                out[f"perceptron_{k}_stderr"] = (("dataset",), err)
            out["shell"] = (("shell",), np.arange(n + 1))
            out["shell_overlap"] = (("shell",), 2.0 * np.arange(n + 1) / n - 1.0)
            out["perceptron_energy_overlap_mean"] = (("dataset", "instance", "shell"), c["perceptron_overlap_mean"])
            out["perceptron_energy_overlap_min"] = (("dataset", "instance", "shell"), c["perceptron_overlap_min"])
            out["perceptron_tf_over_tg_unfrustrated"] = (
                (), np.float64(data_rem.funnel_temperatures(data_rem.unfrustrated(n)).ratio))
            means, errs = out["perceptron_tf_over_tg_mean"][1], out["perceptron_tf_over_tg_stderr"][1]
            perceptron = {name: (means[d], errs[d]) for d, name in enumerate(names)}
        net_g = (gap[0, W - 1], gap_err[0, W - 1]) if has_net else None
        glass_g = (gap[1, N - 1], gap_err[1, N - 1]) if has_glass else None
        claims["funnel"] = cmp.claim_funnel(perceptron=perceptron, network_g=net_g, glass_g=glass_g)

    # --- panel 5: regularization as temperature -------------------------------------------------------------------
    if "regularization" in panels:
        lrs, wds = np.asarray(o.learning_rates, np.float64), np.asarray(o.weight_decays, np.float64)
        temps = np.asarray(o.temperatures, np.float64)
        out["learning_rate"] = (("learning_rate",), lrs)
        out["weight_decay"] = (("weight_decay",), wds)
        out["regularization_seed"] = (("regularization_seed",), np.arange(o.regularization_seeds))
        out["layer"] = (("layer",), np.arange(o.hidden_layers + 1))
        grid = ("learning_rate", "weight_decay", "regularization_seed")
        diverged = c["reg_diverged"] > 0.5
        stable = ~diverged & np.isfinite(c["reg_train_loss"])
        out["regularization_train_loss"] = (grid, c["reg_train_loss"])
        out["regularization_test_loss"] = (grid, c["reg_test_loss"])
        out["regularization_diverged"] = (grid, diverged.astype(np.int8))
        out["regularization_alpha"] = ((*grid, "layer"), c["reg_alpha"])
        initial = float(c["reg_initial_loss"][0])
        eps = np.where(stable, cmp.network_normalized_energy(c["reg_train_loss"], initial), np.nan) \
            if initial > 0 else np.full_like(c["reg_train_loss"], np.nan)
        out["regularization_initial_loss"] = ((), np.float64(initial))
        out["regularization_energy"] = (grid, eps)
        mean, err = _mean_err(eps, axis=-1)
        out["regularization_energy_mean"] = (grid[:2], mean)
        out["regularization_energy_stderr"] = (grid[:2], err)
        out["regularization_energy_spread"] = (grid[:2], cmp.spread(eps, axis=-1)[0])
        out["regularization_diverged_fraction"] = (grid[:2], diverged.mean(axis=-1))
        alpha = np.where(stable, cmp.nanmean(c["reg_alpha"], axis=-1), np.nan)  # mean over layers
        mean, err = _mean_err(alpha, axis=-1)
        out["regularization_alpha_mean"] = (grid[:2], mean)
        out["regularization_alpha_stderr"] = (grid[:2], err)
        out["temperature"] = (("temperature",), temps)
        out["disorder"] = (("disorder",), np.arange(M))
        out["replica"] = (("replica",), np.arange(R))
        out["replica_pair"] = (("replica_pair",), np.arange(R // 2))
        energy = np.moveaxis(c["lang_energy"], 1, 0)  # (T, M, R)
        overlap = np.moveaxis(c["lang_overlap"], 1, 0)  # (T, M, R//2)
        out["glass_temperature_energy"] = (("temperature", "disorder", "replica"), energy)
        out["glass_temperature_overlap"] = (("temperature", "disorder", "replica_pair"), overlap)
        for name, x in (("energy", energy), ("overlap", overlap)):
            mean, err = _mean_err(cmp.nanmean(x, axis=-1), axis=-1)  # over disorder samples
            out[f"glass_temperature_{name}_mean"] = (("temperature",), mean)
            out[f"glass_temperature_{name}_stderr"] = (("temperature",), err)
        out["theory_temperature_energy"] = (("temperature",), theory.pspin_threshold_energy_at(temps, o.p))
        # the shared schema: ε against the control parameter (network: learning rate at the smallest weight decay)
        num_control = max(len(lrs), len(temps))
        out["control"] = (("control",), np.arange(num_control))
        out["control_value"] = (("system", "control"), _pad([lrs, temps], num_control))
        low = int(np.argmin(wds))
        shared = np.full((2, num_control, num_samples), np.nan)
        shared[0, : len(lrs), : o.regularization_seeds] = eps[:, low]
        shared[1, : len(temps), : M * R] = cmp.glass_normalized_energy(energy, o.p).reshape(len(temps), M * R)
        out["temperature_energy"] = (("system", "control", "sample"), shared)
        lr_x = np.repeat(np.log10(lrs), o.regularization_seeds)
        lr_slope = cmp.slope(lr_x, eps[:, low].ravel())
        first = int(np.argmin(lrs))
        positive = wds > 0
        wd_slope = cmp.slope(np.repeat(np.log10(wds[positive]), o.regularization_seeds),
                             eps[first, positive].ravel()) if positive.sum() >= 2 else cmp.Slope(math.nan, math.nan, 0)
        glass_slope = cmp.slope(np.repeat(temps, M), cmp.nanmean(energy, axis=-1).ravel())
        for name, s in (("loss_slope_learning_rate", lr_slope), ("loss_slope_weight_decay", wd_slope),
                        ("glass_energy_slope", glass_slope)):
            out[name], out[f"{name}_stderr"] = ((), _slope_value(s)[0]), ((), _slope_value(s)[1])
        claims["temperature"] = cmp.claim_temperature(learning_rate=lr_slope,
                                                      weight_decay=wd_slope if positive.sum() >= 2 else None,
                                                      glass=glass_slope)

    # --- panel 6: order and chaos, depth --------------------------------------------------------------------------
    if "chaos" in panels:
        depths = np.asarray(o.depths, np.int64)
        out["block"] = (("block",), np.asarray(o.blocks))
        out["depth"] = (("depth",), depths)
        out["init"] = (("init",), np.asarray(("ordered", "critical")))
        out["depth_seed"] = (("depth_seed",), np.arange(o.depth_seeds))
        dims = ("block", "depth", "init", "depth_seed")
        out["depth_train_accuracy"] = (dims, c["depth_accuracy"])
        out["depth_train_loss"] = (dims, c["depth_loss"])
        params = c["depth_params"]
        out["depth_param_count"] = (("block", "depth"), np.where(np.isfinite(params), params, -1).astype(np.int64))
        stds = np.asarray(init_weight_stds, np.float64)
        out["init_weight_std"] = (("init",), stds)
        out["init_chi1"] = (("init",), np.asarray(chaos.chi1(stds, o.depth_bias_std, "tanh"), np.float64))
        xi_c = np.array([chaos.depth_scales(s, o.depth_bias_std, "tanh")[1] for s in stds])
        out["init_xi_c"] = (("init",), xi_c)
        acc_mean = cmp.nanmean(c["depth_accuracy"], axis=-1)  # (B, D, init)
        fail = np.array([[failure_depth(depths, acc_mean[b, :, i], o.trainable_accuracy) for i in range(2)]
                         for b in range(len(o.blocks))])
        out["failure_depth"] = (("block", "init"), fail)
        out["trainable_accuracy"] = ((), np.float64(o.trainable_accuracy))
        if has_net:
            out["seed"] = (("seed",), np.arange(S))
            out["network_distance"] = (("size", "seed"), _pad([c["net_distance"]], num_sizes)[0])
            out["network_test_accuracy"] = (("size", "seed"), _pad([c["net_test_accuracy"]], num_sizes)[0])
            x = cmp.correlation(np.abs(c["net_distance"]), c["net_test_accuracy"])
            out["distance_accuracy_correlation"] = ((), np.float64(x.r))
        b = list(o.blocks).index("plain") if "plain" in o.blocks else 0

        def over_depths(init):  # mean over depths of the seed means; the depths' seeds are independent
            mean, err = _mean_err(c["depth_accuracy"][b, :, init], axis=-1)
            return float(np.mean(mean)), float(np.sqrt(np.sum(err**2)) / len(mean))

        claims["order_chaos"] = cmp.claim_order_chaos(critical=over_depths(1), ordered=over_depths(0),
                                                      depths=[int(x) for x in depths], xi_c=xi_c[0],
                                                      failure_depth=fail[b, 0])

    # --- panel 8: mutual information ------------------------------------------------------------------------------
    if "information" in panels:
        names, fits = [], []
        if "digits" in o.information_datasets:
            out["pixel_distance"] = (("pixel_distance",), np.asarray(pixel_distance, np.float64))
            out["pixel_mi"] = (("pixel_distance",), c["info_pixel_mi"])
            out["pixel_mi_stderr"] = (("pixel_distance",), c["info_pixel_err"])
            names.append("digits")
            fits.append(_fit(pixel_distance, c["info_pixel_mi"], c["info_pixel_err"]))
        if sequence_kinds:
            out["sequence"] = (("sequence",), np.asarray(sequence_kinds))
            out["lag"] = (("lag",), np.asarray(lags, np.int64))
            out["sequence_mi"] = (("sequence", "lag"), c["info_sequence_mi"])
            out["sequence_mi_stderr"] = (("sequence", "lag"), c["info_sequence_err"])
            for s, kind in enumerate(sequence_kinds):
                names.append(kind)
                fits.append(_fit(lags, c["info_sequence_mi"][s], c["info_sequence_err"][s]))
        out["information_dataset"] = (("information_dataset",), np.asarray(names))
        out["decay_winner"] = (("information_dataset",), np.asarray([f[0] for f in fits]))
        for j, name in enumerate(("decay_delta_aic", "power_law_exponent", "power_law_exponent_stderr",
                                  "exponential_length", "exponential_length_stderr")):
            out[name] = (("information_dataset",), np.array([f[j + 1] for f in fits], np.float64))
        table = {n: (f[0], f[1]) for n, f in zip(names, fits, strict=True)}
        claims["long_range"] = cmp.claim_long_range(
            digits=table.get("digits"), controls={k: v for k, v in table.items() if k != "digits"})

    # --- the claims table -----------------------------------------------------------------------------------------
    rows = []
    for cid, _ in cmp.CLAIMS:
        if cid == "rg":
            rows.append(cmp.claim_rg())
        elif cid in claims:
            rows.append(claims[cid])
        else:
            rows.append(_not_measured(cid))
    out["claim"] = (("claim",), np.asarray([cid for cid, _ in cmp.CLAIMS]))
    for field in cmp.ClaimRow._fields:
        out[f"claim_{field}" if field != "claim" else "claim_text"] = (("claim",), np.asarray([getattr(r, field)
                                                                                               for r in rows]))
    return out


def _not_measured(cid: str) -> cmp.ClaimRow:
    builders = {"funnel": cmp.claim_funnel, "temperature": cmp.claim_temperature, "order_chaos": cmp.claim_order_chaos,
                "spread": cmp.claim_spread, "low_index": cmp.claim_low_index, "long_range": cmp.claim_long_range}
    row = builders[cid]()
    return row._replace(verdict=cmp.NOT_MEASURED)


def _fit(d, mi, err):
    """``(winner, ΔAIC, k, k_err, ξ, ξ_err)`` of ``information.fit_decay`` (NaN and "n/a" when it cannot fit)."""
    try:
        f = information.fit_decay(d, mi, err)
    except ValueError:
        return ("n/a", math.nan, math.nan, math.nan, math.nan, math.nan)
    return (f.winner, f.delta_aic, f.power_law.exponent, f.power_law.exponent_stderr, f.exponential.length,
            f.exponential.length_stderr)
