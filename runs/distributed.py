"""Start a multi-process run: ``jax.distributed.initialize`` when the config or the environment asks for it.

One process per host (per GPU under SLURM, per TPU VM worker on a pod slice) runs the same ``deepglass run``;
together they form one JAX runtime whose devices are the union of theirs (``runs.sharding`` lays the batch on all
of them). Process 0 alone writes the run directory (``runs.store.FollowerRunDirectory`` for the others).

When to start it: ``[run] distributed = true``, or ``DEEPGLASS_COORDINATOR`` in the environment. The coordinator,
process count and process id come from ``DEEPGLASS_COORDINATOR`` (``host:port``), ``DEEPGLASS_NUM_PROCESSES`` and
``DEEPGLASS_PROCESS_ID`` when set, otherwise from JAX's cluster detection (SLURM, TPU VMs, …). ``[run] processes``
(0: any) is the count the job expects: a run that sees another count is refused, so a misconfigured launch never
runs N independent copies that overwrite each other. Reference: JAX, "Using JAX in multi-host and multi-process
environments"; NetKet's multi-process sampling (one process per device, process 0 writes).
"""
from __future__ import annotations

import os
import socket
import sys
import time

import jax

from .config import ConfigError

__all__ = ["DistributedError", "start", "sync", "is_writer"]

ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID = ("DEEPGLASS_COORDINATOR", "DEEPGLASS_NUM_PROCESSES",
                                                      "DEEPGLASS_PROCESS_ID")


class DistributedError(RuntimeError):
    """The processes of a run could not form one runtime (exit status 1, with the reason)."""


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} = {value!r}: must be an integer") from None


def start(run) -> None:
    """Join the run's processes into one runtime when ``run.distributed`` or the environment asks for it.

    ``run`` is the ``[run]`` table (``runs.config.RunConfig``). Call before anything touches a device. Raises
    ``DistributedError`` when the coordinator cannot be reached within ``run.coordinator_timeout`` seconds and
    ``ConfigError`` when the process count differs from ``run.processes``.
    """
    wanted = run.distributed or bool(os.environ.get(ENV_COORDINATOR))
    if wanted and not jax.distributed.is_initialized():
        address = os.environ.get(ENV_COORDINATOR) or None
        count, index = _env_int(ENV_NUM_PROCESSES), _env_int(ENV_PROCESS_ID)
        if address and index:  # process 0 hosts the coordinator; the others first wait for it to listen
            _wait_for(address, run.coordinator_timeout)
        try:
            jax.distributed.initialize(address, count, index, initialization_timeout=run.coordinator_timeout,
                                       heartbeat_timeout_seconds=run.heartbeat_timeout)
        except Exception as e:  # noqa: BLE001 — JAX raises several types; all mean the same thing to the user
            where = address or "the address from cluster detection"
            raise DistributedError(
                f"could not join the run's processes through the coordinator at {where} within "
                f"{run.coordinator_timeout} s (run.coordinator_timeout): {type(e).__name__}: {e}. Start every "
                f"process with the same {ENV_COORDINATOR}=host:port, {ENV_NUM_PROCESSES} and a distinct "
                f"{ENV_PROCESS_ID}, or run under SLURM / on a TPU VM") from None
    if run.processes and jax.process_count() != run.processes:
        raise ConfigError(
            f"run.processes = {run.processes}: this run sees {jax.process_count()} process(es); refusing to run "
            f"{'independent copies' if jax.process_count() == 1 else 'with another count'}. Launch "
            f"{run.processes} processes with run.distributed = true (or {ENV_COORDINATOR} set)")
    if jax.process_count() > 1:
        print(f"deepglass: process {jax.process_index()} of {jax.process_count()}: {jax.local_device_count()} "
              f"local of {jax.device_count()} devices ({jax.devices()[0].platform})", file=sys.stderr, flush=True)


def _wait_for(address: str, timeout: float) -> None:
    """Wait until something listens at ``host:port``, or raise ``DistributedError`` after ``timeout`` seconds.

    JAX's client aborts the whole process (a C++ fatal error, not a Python exception) when it cannot register with
    the coordinator, so an unreachable coordinator is detected here first, where it can be reported.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{ENV_COORDINATOR} = {address!r}: must be host:port")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=min(1.0, timeout)):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise DistributedError(
                    f"could not join the run's processes: nothing answered at the coordinator {address} within "
                    f"{timeout:g} s (run.coordinator_timeout; {e.strerror or e}). Start process 0 (which hosts it) "
                    f"with the same {ENV_COORDINATOR}, or fix the address") from None
            time.sleep(0.2)


def is_writer() -> bool:
    """Whether this process writes the run directory (process 0)."""
    return jax.process_index() == 0


def sync(name: str) -> None:
    """Wait until every process reaches this point (a no-op in a single-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
