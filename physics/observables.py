"""Observables and their honest error bars.

Error bars come from independent replicas (the standard error of replica means) or, within one chain, from
binning; the integrated autocorrelation time uses Sokal's automatic window. All functions are NumPy/JAX-agnostic
reductions over explicit axes; the time axis is the last one unless stated.

References: A. D. Sokal, "Monte Carlo methods in statistical mechanics" (1996 lectures), §3;
K. Binder, Z. Phys. B 43:119 (1981) for the cumulant.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "mean_stderr",
    "binned_stderr",
    "integrated_autocorr_time",
    "magnetization",
    "binder_cumulant",
    "susceptibility",
    "specific_heat",
    "replica_estimate",
    "jackknife",
]


def mean_stderr(x, axis=0):
    """Mean and standard error ``std(ddof=1)/√n`` over independent samples along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis]
    if n < 2:
        raise ValueError(f"axis {axis} has {n} sample(s): a standard error needs at least 2")
    return x.mean(axis=axis), x.std(axis=axis, ddof=1) / np.sqrt(n)


def binned_stderr(x, num_bins: int = 20):
    """Mean and binning standard error of one correlated series (last axis): means of ``num_bins`` equal blocks."""
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[-1] // num_bins * num_bins
    blocks = x[..., :t].reshape(*x.shape[:-1], num_bins, -1).mean(axis=-1)
    return mean_stderr(blocks, axis=-1)


def integrated_autocorr_time(x, c: float = 5.0):
    """Integrated autocorrelation time ``τ = 1/2 + Σ_{t≥1} ρ(t)`` of a series (last axis), Sokal's window M ≥ c τ.

    With this convention the variance of the mean of n samples is ``2 τ σ² / n``. Series of several chains
    (leading axes) are averaged in ρ(t) before summing.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(-1, x.shape[-1])
    n = x.shape[-1]
    x = x - x.mean(axis=-1, keepdims=True)
    f = np.fft.rfft(x, n=2 * n, axis=-1)
    acf = np.fft.irfft(f * np.conj(f), axis=-1)[:, :n].mean(axis=0)
    if acf[0] <= 0:
        return 0.5
    rho = acf / acf[0]
    taus = 0.5 + np.cumsum(rho[1:])
    for m in range(1, n - 1):
        if m >= c * taus[m - 1]:
            return float(max(taus[m - 1], 0.5))
    return float(max(taus[-1], 0.5))


def magnetization(x, axes=None):
    """Magnetization per spin ``m = Σ s_i / N`` of a batch of configurations (reduced over ``axes``)."""
    x = np.asarray(x)
    if axes is None:
        axes = tuple(range(1, x.ndim)) if x.ndim > 1 else (0,)
    return x.astype(np.float64).mean(axis=axes)


def binder_cumulant(m, axis=-1):
    """Binder cumulant ``U = 1 - <m⁴> / (3 <m²>²)`` of magnetization samples along ``axis``."""
    m = np.asarray(m, dtype=np.float64)
    m2 = np.mean(m**2, axis=axis)
    m4 = np.mean(m**4, axis=axis)
    return 1.0 - m4 / (3.0 * m2**2)


def susceptibility(m, n: int, temperature, axis=-1):
    """Susceptibility per spin ``χ = N (<m²> - <|m|>²) / T`` (the finite-size convention with |m|)."""
    m = np.asarray(m, dtype=np.float64)
    return n * (np.mean(m**2, axis=axis) - np.mean(np.abs(m), axis=axis) ** 2) / np.asarray(temperature)


def specific_heat(energy, n: int, temperature, axis=-1):
    """Specific heat per spin ``c = (<E²> - <E>²) / (N T²)`` from extensive energies."""
    e = np.asarray(energy, dtype=np.float64)
    return np.var(e, axis=axis) / (n * np.asarray(temperature) ** 2)


def replica_estimate(fn, samples, replica_axis: int = 0):
    """Mean and standard error of ``fn(samples of one replica)`` over independent replicas.

    ``fn`` reduces one replica's time series (for instance a Binder cumulant); its spread over replicas gives an
    honest error even for nonlinear estimators.
    """
    samples = np.moveaxis(np.asarray(samples), replica_axis, 0)
    values = np.stack([np.asarray(fn(s)) for s in samples])
    return mean_stderr(values, axis=0)


def jackknife(fn, samples, axis: int = 0):
    """Jackknife mean and error of ``fn`` over leave-one-out subsets of independent ``samples`` along ``axis``."""
    samples = np.moveaxis(np.asarray(samples), axis, 0)
    n = samples.shape[0]
    if n < 2:
        raise ValueError(f"jackknife needs at least 2 samples along axis {axis}, got {n}")
    full = np.asarray(fn(samples))
    loo = np.stack([np.asarray(fn(np.delete(samples, i, axis=0))) for i in range(n)])
    mean_loo = loo.mean(axis=0)
    err = np.sqrt((n - 1) / n * np.sum((loo - mean_loo) ** 2, axis=0))
    return n * full - (n - 1) * mean_loo, err
