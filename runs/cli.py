"""The ``deepglass`` command line: run, resume, plot, check, configs, spectra, bench, info.

Exit status: 0 done, 2 bad input (bad config, bad argument, locked directory), 1 failure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepglass", description="Spin glasses, random energy models, lattice RG and "
                                "networks on JAX: run a config, resume it, plot it, benchmark the kernels.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a TOML config into a directory")
    r.add_argument("config", help="path to the TOML config")
    r.add_argument("--out", help="run directory (default: results/<config name>)")
    r.add_argument("--force", action="store_true", help="replace a run already in --out")
    r.add_argument("--no-plot", action="store_true", help="skip the figures at the end")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--dry-run", action="store_true", help="validate and print the plan (sizes, memory, steps) only")
    s = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    s.add_argument("dir", help="run directory")
    s.add_argument("--quiet", action="store_true")
    pl = sub.add_parser("plot", help="write PNG figures of a run into DIR/figures")
    pl.add_argument("dir", help="run directory")
    b = sub.add_parser("bench", help="benchmarks, each against a same-run baseline")
    b.add_argument("names", nargs="*", help="benchmark names (default: all)")
    b.add_argument("--quick", action="store_true", help="smaller sizes")
    b.add_argument("--out", help="also write DIR/bench.json and DIR/bench.md")
    sub.add_parser("info", help="devices and versions")
    c = sub.add_parser("check", help="validate a config and print its size, memory and step estimate (runs nothing)")
    c.add_argument("config", help="path to the TOML config")
    sub.add_parser("configs", help="list the shipped configs with their one-line descriptions")
    from . import spectra_cmd

    spectra_cmd.add_parser(sub)
    return p


def shipped_configs() -> list[tuple[str, str]]:
    """``(path, one-line description)`` of every config in ``runs/configs`` (the first sentence of its comment)."""
    folder = Path(__file__).parent / "configs"
    out = []
    for path in sorted(folder.glob("*.toml")):
        comment = []
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            comment.append(line.lstrip("# ").strip())
        text = " ".join(comment)
        first = text.split(". ")[0].rstrip(".")
        out.append((str(path.relative_to(folder.parent.parent)) if folder.parent.parent in path.parents
                    else str(path), first[:110] + ("…" if len(first) > 110 else "")))
    return out


def _print_notes(cfg):
    for note in cfg.notes:
        print(f"deepglass: note: {note}", file=sys.stderr)


def _info() -> str:
    import jax

    from .jobs import job_kinds
    from .pipeline import _version

    lines = [f"deepglass {_version()}", f"jax {jax.__version__}, backend {jax.default_backend()}"]
    for d in jax.devices():
        lines.append(f"  device {d.id}: {d.platform} {getattr(d, 'device_kind', '')} (process {d.process_index})")
    lines.append(f"mesh: a run with devices = \"all\" splits its batch over {jax.device_count()} device(s) "
                 f"({jax.local_device_count()} local), process {jax.process_index()} of {jax.process_count()}")
    lines.append(f"job kinds: {', '.join(sorted(job_kinds()))}")
    from .bench import available

    lines.append(f"benchmarks: {', '.join(available())}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .config import ConfigError
    from .store import RunLockedError

    try:
        if args.command == "run":
            from . import config, pipeline, plots

            cfg = config.load(args.config)
            _print_notes(cfg)
            if args.dry_run:
                print(pipeline.format_plan(pipeline.plan(cfg), args.config))
                return 0
            out = Path(args.out) if args.out else Path("results") / Path(args.config).stem
            results = pipeline.execute(cfg, out, force=args.force, progress=not args.quiet)
            print(f"results: {results}")
            if not args.no_plot:
                for path in plots.plot_run(out):
                    print(f"figure: {path}")
        elif args.command == "resume":
            from . import pipeline, plots

            results = pipeline.resume(args.dir, progress=not args.quiet)
            print(f"results: {results}")
            for path in plots.plot_run(args.dir):
                print(f"figure: {path}")
        elif args.command == "plot":
            from . import plots

            for path in plots.plot_run(args.dir):
                print(f"figure: {path}")
        elif args.command == "bench":
            from .bench import run_bench

            print(run_bench(args.names or None, quick=args.quick, out=args.out))
        elif args.command == "info":
            print(_info())
        elif args.command == "check":
            from . import config, pipeline

            cfg = config.load(args.config)
            print(pipeline.format_plan(pipeline.plan(cfg), args.config))
        elif args.command == "configs":
            rows = shipped_configs()
            width = max(len(p) for p, _ in rows)
            for path, text in rows:
                print(f"{path:<{width}}  {text}")
        elif args.command == "spectra":
            from . import spectra_cmd

            return spectra_cmd.main(args)

    except (ConfigError, RunLockedError) as e:
        print(f"deepglass: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"deepglass: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepglass: interrupted; `deepglass resume DIR` continues from the last checkpoint", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 — any other failure is exit status 1 with the reason
        print(f"deepglass: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
