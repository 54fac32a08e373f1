"""One process of a multi-process ``compare`` run that also says which units of work it computed.

Started by ``tests/runs/test_compare_hosts.py`` once per process, with the ``DEEPGLASS_*`` variables of a
``jax.distributed`` launch::

    python -m tests.runs.compare_hosts_worker CONFIG.toml OUT_DIR

runs ``deepglass run CONFIG --out OUT_DIR`` and prints, as the last line of stdout, the JSON list of the units this
process computed, as ``[unit kind, unit argument]`` pairs in the order they ran.
"""
from __future__ import annotations

import json
import sys

from runs.cli import main as cli_main
from runs.jobs import compare


def _counting(kind: str, ran: list):
    method = getattr(compare.CompareJob, f"_unit_{kind}")

    def unit(self, carry, key, arg):
        ran.append([kind, arg])
        return method(self, carry, key, arg)

    return unit


def main(argv: list[str]) -> int:
    ran = []
    for kind in compare.UNIT_KINDS:
        setattr(compare.CompareJob, f"_unit_{kind}", _counting(kind, ran))
    status = cli_main(["run", argv[0], "--out", argv[1], "--quiet", "--no-plot"])
    print(json.dumps(ran), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
