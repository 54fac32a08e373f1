"""The contract between a job kind and the run pipeline (``runs.pipeline``).

A job kind is a subclass of :class:`Job` in a module of ``runs/jobs/`` (discovered automatically). The pipeline
owns the loop, the HDF5 file, the checkpoints, the lock and the progress bar; the job owns the physics (or the
training). The pipeline calls, in order::

    job = JobClass(config)                      # config: runs.config.Config (config.job is JobClass.Config)
    job.layout()                                # {name: Series(dims, dtype)} — the time series it will append
    job.coords()                                # {coord_name: 1-D array} for every dim except "time"
    carry = job.init(key)                       # pytree of arrays (everything a checkpoint must hold)
    for each chunk:  carry, series = job.advance(carry, key, start, num)
                                                # series[name].shape[-1] == num // job.record_every
    job.snapshots(carry, start, end) -> {label: {name: array}}   # optional state snapshots → snapshots/<label>
    job.snapshot_layout(carry)                  # their shapes, declared when results.h5 is created
    job.summarize_final(series_h5, carry) -> {name: (dims, array)}   # final datasets (means, errors) from the
                                                # whole record and the final carry (default: job.summarize(series))
    job.plot(h5file, outdir) -> [paths]         # `deepglass plot DIR`

Rules: ``advance`` must depend only on (carry, key, start, num) so a resumed run is bitwise identical to an
uninterrupted one (use ``physics.run(..., start=start)``); the last axis of every series is ``"time"``; the
pipeline writes the coordinate ``time`` = global step index after which each record was taken.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import numpy as np

__all__ = ["Series", "Job"]


class Series(NamedTuple):
    """A time series a job appends every chunk: its dims (last is ``"time"``) and dtype."""

    dims: tuple[str, ...]
    dtype: Any = np.float32


class Job:
    """Base class of a job kind. Subclasses set ``kind`` and ``Config`` and implement the methods below."""

    kind: ClassVar[str] = ""
    Config: ClassVar[type] = None  # a frozen dataclass of runs.config.option fields

    def __init__(self, config):
        self.config = config
        self.options = config.job

    # --- sizes -------------------------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        """Total number of steps of the run."""
        raise NotImplementedError

    @property
    def record_every(self) -> int:
        """Steps between two records of the time series."""
        return 1

    @property
    def default_chunk_steps(self) -> int:
        """Steps per chunk when ``run.chunk_steps`` is 0 (a multiple of ``record_every``)."""
        return self.total_steps

    def estimate_bytes(self) -> int:
        """Memory the job will allocate (the pipeline refuses jobs that will not fit)."""
        return 0

    @property
    def batch_ndim(self) -> int | None:
        """How many leading axes of every carry array index independent chains (0: nothing to split; None: the job
        lays its state on all the run's devices itself, as a lattice split in row slabs does).

        ``runs.sharding`` splits these axes over the devices. ``advance`` must treat them as a batch: nothing may
        combine two chains inside a step (a sum over replicas belongs in ``summarize``), so each device computes
        its chains exactly as one device would.
        """
        return 0

    # --- data --------------------------------------------------------------------------------------------
    def layout(self) -> dict[str, Series]:
        raise NotImplementedError

    def coords(self) -> dict[str, np.ndarray]:
        return {}

    def attrs(self) -> dict[str, Any]:
        """Root attributes of ``results.h5`` the job adds (e.g. which kernel it chose); numbers and strings."""
        return {}

    def init(self, key) -> Any:
        raise NotImplementedError

    def advance(self, carry, key, start: int, num: int) -> tuple[Any, dict[str, np.ndarray]]:
        raise NotImplementedError

    def summarize(self, series: dict[str, np.ndarray]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        return {}

    def to_checkpoint(self, carry) -> Any:
        """The state as a checkpoint holds it: independent of the devices it ran on (default: the carry itself).

        A job whose carry's layout depends on the device count (a lattice split in row slabs with halo rows)
        returns a portable form here and rebuilds the carry in :meth:`from_checkpoint`, so a run checkpointed on 4
        devices resumes on 1 or 8.
        """
        return carry

    def from_checkpoint(self, saved) -> Any:
        """The carry from what :meth:`to_checkpoint` saved (default: unchanged)."""
        return saved

    def summarize_final(self, series: dict[str, np.ndarray], carry) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Final datasets from the whole record *and* the final carry (the state after the last step, also what a
        resumed run restores from its checkpoint). The default is :meth:`summarize`; jobs whose results live in
        the state (trained networks, minima reached) override this."""
        return self.summarize(series)

    def snapshots(self, carry, start: int, end: int) -> dict[str, dict[str, np.ndarray]]:
        """Arrays to keep from the state after a chunk covering steps ``[start, end)``.

        Returns ``{label: {name: array}}``; each is written to the group ``snapshots/<label>`` of results.h5
        (for example network parameters at chosen steps). Called after every chunk; return ``{}`` to keep nothing.
        """
        return {}

    def snapshot_layout(self, carry) -> dict[str, dict[str, tuple[tuple[int, ...], Any]]]:
        """``{label: {name: (shape, dtype)}}`` of every snapshot the run will write.

        The results file holds their slots from the start, so its structure never changes while the run writes
        (readers watch it live in SWMR mode). The default asks :meth:`snapshots` for the whole run on the initial
        carry (shapes do not depend on values); override it when that is expensive.
        """
        snaps = self.snapshots(carry, 0, self.total_steps)
        return {label: {name: (np.shape(a), np.asarray(a).dtype) for name, a in arrays.items()}
                for label, arrays in snaps.items()}

    def plot(self, h5, outdir) -> list:
        return []

    def describe(self) -> str:
        """One line for the progress bar and logs."""
        return f"{self.kind}: {dataclasses.asdict(self.options)}"
