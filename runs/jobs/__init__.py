"""Job kinds: every module in this package that defines a ``Job`` subclass with a ``kind`` is registered."""
from __future__ import annotations

import importlib
import pkgutil

from .base import Job, Series

__all__ = ["Job", "Series", "job_kinds"]

_KINDS: dict[str, type[Job]] | None = None


def job_kinds() -> dict[str, type[Job]]:
    """``{kind: JobClass}`` for every job module in ``runs/jobs``."""
    global _KINDS
    if _KINDS is None:
        kinds = {}
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_") or info.name == "base":
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, Job) and obj is not Job and obj.kind:
                    kinds[obj.kind] = obj
        _KINDS = kinds
    return _KINDS
