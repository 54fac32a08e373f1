"""Run configuration: TOML → validated, frozen dataclasses.

A config file has a ``[run]`` table (kind, seed, chunking) and one table named after the job kind::

    [run]
    kind = "ising"
    seed = 0
    chunk_steps = 500      # steps between flushes/checkpoints
    [ising]
    shape = [16, 16]
    temperatures = [2.0, 2.269, 2.5]

Each job kind declares its table as a frozen dataclass whose fields use :func:`option` for defaults and bounds.
:func:`parse_table` checks unknown keys, types and ranges and raises :class:`ConfigError` (a ``ValueError``)
naming the key, the value and what is allowed; the CLI turns it into exit status 2.
"""
from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

__all__ = ["ConfigError", "option", "parse_table", "require_multiples", "RunConfig", "Config", "load", "loads"]


class ConfigError(ValueError):
    """A bad configuration value: the message names the key, the value and what is allowed."""


def option(default=dataclasses.MISSING, *, ge=None, gt=None, le=None, lt=None, choices=None, min_len=None,
           distinct: bool = False, help: str = ""):
    """A dataclass field with validation metadata (bounds apply to numbers and to every item of a list;
    ``distinct`` refuses a list with repeated items)."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "min_len": min_len, "distinct": distinct,
            "help": help}
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple for list defaults")
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false", dict: "a table"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(name: str, value: Any, tp, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, value, a, meta)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{name} = {value!r}: must be {_type_name(tp)}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{name} = {value!r}: must be one of {', '.join(map(repr, allowed))}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{name} = {value!r}: must be {_type_name(tp)}")
        if meta.get("min_len") is not None and len(value) < meta["min_len"]:
            raise ConfigError(f"{name} = {value!r}: must have at least {meta['min_len']} item(s)")
        item = typing.get_args(tp)[0]
        items = tuple(_coerce(f"{name}[{i}]", v, item, meta) for i, v in enumerate(value))
        if meta.get("distinct"):
            repeated = sorted({v for v in items if items.count(v) > 1}, key=items.index)
            if repeated:
                raise ConfigError(f"{name} = {list(value)!r}: must not repeat a value ({repeated[0]!r} appears "
                                  f"{items.count(repeated[0])} times)")
        return items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} = {value!r}: must be a table")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} = {value!r}: must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} = {value!r}: must be an integer")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} = {value!r}: must be a number")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{name} = {value!r}: must be a finite number")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} = {value!r}: must be a string")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(f"{name} = {value!r}: must be one of {', '.join(map(repr, meta['choices']))}")
    for key, op, word in (("ge", lambda a, b: a >= b, "≥"), ("gt", lambda a, b: a > b, ">"),
                          ("le", lambda a, b: a <= b, "≤"), ("lt", lambda a, b: a < b, "<")):
        bound = meta.get(key)
        if bound is not None and isinstance(value, (int, float)) and not op(value, bound):
            raise ConfigError(f"{name} = {value!r}: must be {word} {bound}")
    return value


def parse_table(cls, table: Any, prefix: str):
    """Build dataclass ``cls`` from a TOML table, validating every key (``prefix`` names the table in errors)."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{prefix}] = {table!r}: must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"{prefix}.{unknown[0]} = {table[unknown[0]]!r}: unknown key; allowed keys are {', '.join(sorted(fields))}"
        )
    values = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}"
        if name in table:
            values[name] = _coerce(key, table[name], hints[name], dict(f.metadata))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key} is missing: it is required ({_type_name(hints[name])})")
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(prefix)
    return obj


def require_multiples(table, prefix: str, names, of: str = "record_every"):
    """Raise ConfigError unless each field in ``names`` is a multiple of the field ``of`` (e.g. step counts)."""
    unit = getattr(table, of)
    for name in names:
        value = getattr(table, name)
        if value % unit:
            raise ConfigError(f"{prefix}.{name} = {value}: must be a multiple of {of} = {unit}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The ``[run]`` table shared by every job kind."""

    kind: str = option(help="job kind: the name of the table that configures it")
    seed: int = option(0, ge=0, help="the only seed of the run; every key is derived from it")
    chunk_steps: int = option(0, ge=0, help="steps between flush + checkpoint (0: the job's default)")
    description: str = option("", help="free text stored with the results")
    devices: int | Literal["all"] = option("all", help='devices the batch is split over: "all" or a count')
    distributed: bool = option(False, help="join the processes of a multi-host run (jax.distributed)")
    processes: int = option(0, ge=0, help="the process count the run expects (0: any); another count is refused")
    coordinator_timeout: int = option(300, ge=1, help="seconds to wait for every process to join")
    heartbeat_timeout: int = option(100, ge=1, help="seconds without a heartbeat before a lost process stops all")


@dataclasses.dataclass(frozen=True)
class Config:
    """A validated configuration: the run table, the job's table, and the original TOML text."""

    run: RunConfig
    job: Any
    text: str
    notes: tuple[str, ...] = ()  # things the user should know (e.g. a job table left out: every default used)


def loads(text: str, *, source: str = "<config>") -> Config:
    """Parse and validate a TOML string (see :func:`load`)."""
    from .jobs import job_kinds

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    if "run" not in raw:
        raise ConfigError(f"{source}: missing the [run] table (with kind = one of {', '.join(sorted(job_kinds()))})")
    run_table = raw["run"]
    kinds = job_kinds()
    if isinstance(run_table, dict) and "kind" in run_table and run_table["kind"] not in kinds:
        raise ConfigError(f"run.kind = {run_table['kind']!r}: must be one of {', '.join(map(repr, sorted(kinds)))}")
    run = parse_table(RunConfig, run_table, "run")
    extra = sorted(set(raw) - {"run", run.kind})
    if extra:
        raise ConfigError(f"[{extra[0]}]: unknown table; a {run.kind!r} run has only [run] and [{run.kind}]")
    job_cls = kinds[run.kind]
    job = parse_table(job_cls.Config, raw.get(run.kind, {}), run.kind)
    notes = ()
    if run.kind not in raw:
        notes = (f"{source}: has no [{run.kind}] table, so every {run.kind} option takes its default "
                 f"(`deepglass check {source}` shows them)",)
    return Config(run=run, job=job, text=text, notes=notes)


def load(path: str | Path) -> Config:
    """Read and validate a TOML config file. Raises ConfigError on any bad key or value."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config = {str(path)!r}: is a directory; give the path of a TOML file "
                          f"(`deepglass configs` lists the shipped ones)")
    if not path.is_file():
        raise ConfigError(f"config = {str(path)!r}: no such file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config = {str(path)!r}: not UTF-8 text (byte {e.start}: {e.reason}); TOML files are "
                          f"UTF-8") from None
    except OSError as e:
        raise ConfigError(f"config = {str(path)!r}: cannot be read ({e.strerror})") from None
    return loads(text, source=str(path))
