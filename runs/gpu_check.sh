#!/bin/bash
# The GPU check: on a machine with an accelerator, run the exact-validity tests on the device, then time every
# kernel against its same-run baseline, and print one table last. About 5 minutes on one H100/H200.
#
#   runs/gpu_check.sh [OUT_DIR]          (default OUT_DIR: results/gpu-check)
#
# Record the table in BENCHMARKS.md with the card's name and the date. JAX uses its default backend (the
# accelerator) unless JAX_PLATFORMS says otherwise; on a CPU-only machine the same script checks the CPU path.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/gpu-check}
PY=${PYTHON:-.venv/bin/python}
export JAX_PLATFORMS=${JAX_PLATFORMS-}   # empty: the default backend, not the tests' CPU pin
mkdir -p "$OUT"
"$PY" - <<'PY' | tee "$OUT/device.txt"
import jax
d = jax.devices()[0]
print(f"backend {jax.default_backend()}: {jax.device_count()} × {getattr(d, 'device_kind', d.platform)}, jax {jax.__version__}")
PY
# 1. Validity on the device: the exact χ² tests (4×4 and 2×2×4 enumeration, every kernel, with their controls), the
#    Kaufman L = 16 comparison, the REM-family χ², the p-spin equilibrium energy.
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -x \
  tests/physics/test_lattice.py tests/physics/test_kernels_discrete.py tests/physics/test_kernels_sphere.py \
  -k "chi2 or kaufman or rejects or equilibrium_energy" 2>&1 | tail -5 | tee "$OUT/validity.txt"
validity=${PIPESTATUS[0]}
# 2. Every kernel timed against its same-run baseline (quick sizes; the figures and the device in one table).
timeout 300 "$PY" -m runs.cli bench ising pspin rem train --quick --out "$OUT" > /dev/null
bench=$?
echo
echo "== GPU check: $(cat "$OUT/device.txt") — validity exit $validity, bench exit $bench =="
cat "$OUT/bench.md" 2>/dev/null
exit $(( validity != 0 || bench != 0 ))
