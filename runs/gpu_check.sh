#!/bin/bash
# The GPU check: on a machine with an accelerator, run the exact-validity tests on the device, then time every
# kernel against its same-run baseline at the sizes of issue 14's GPU targets, and print one table last. About 6
# minutes on one H100/H200 (each stage has its own time limit, so a slow stage cannot take the table with it).
#
#   runs/gpu_check.sh [OUT_DIR]          (default OUT_DIR: results/gpu-check)
#
# Record the table in BENCHMARKS.md with the card's name and the date. JAX uses its default backend (the
# accelerator) unless JAX_PLATFORMS says otherwise. On a CPU-only machine the same script checks the CPU path at the
# benchmarks' --quick sizes (GPU_CHECK_QUICK=1 forces those sizes anywhere; tests/runs/test_gpu_check.py runs it so).
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
if grep -q "^backend cpu" "$OUT/device.txt" || [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
  QUICK=(--quick); VALIDITY_FILES=(tests/physics/test_multispin.py); VALIDITY_K="chi2_exact and not ea"
  SCALE=5  # the stage limits below are for a GPU; a 2-core CPU at the quick sizes needs more
else
  QUICK=(); SCALE=1
  VALIDITY_K="chi2 or kaufman or rejects or equilibrium_energy or bitwise or swap_acceptance"
  VALIDITY_FILES=(tests/physics/test_lattice.py tests/physics/test_kernels_discrete.py
                  tests/physics/test_kernels_sphere.py tests/physics/test_multispin.py
                  tests/physics/test_multispin_heat_bath.py
                  tests/physics/test_multispin_tempering.py tests/physics/test_generic_kernels.py)
fi
# 1. Validity on the device: the exact χ² tests (4×4 and 2×2×4 enumeration, every kernel incl. the multi-spin ones,
#    with their controls), the Kaufman L = 16 comparison, the REM-family χ², the p-spin equilibrium energy, the packed
#    kernels bitwise the masked sweep. No -x: every failure is listed.
timeout $((150 * SCALE)) "$PY" -m pytest -q -p no:cacheprovider "${VALIDITY_FILES[@]}" -k "$VALIDITY_K" 2>&1 | tail -8 \
  | tee "$OUT/validity.txt"
validity=${PIPESTATUS[0]}
# 2. Every kernel against its same-run baseline, one process per benchmark (its own limit and output folder). p-spin
#    last: at n = 32768 one evaluation took 77 s on an H100 before issue 14.
status=()
for spec in ising:60 spinglass:60 lattice:40 rem:40 train:60 pspin:150; do
  name=${spec%%:*}
  timeout $(( ${spec##*:} * SCALE )) "$PY" -m runs.cli bench "$name" "${QUICK[@]}" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  rc=$?
  status+=("$name $rc")
done
echo
echo "== GPU check: $(cat "$OUT/device.txt") — validity exit $validity; bench exits: ${status[*]} =="
echo "(exit 124: the stage ran out of time; its log is $OUT/NAME.log)"
tail -1 "$OUT/validity.txt"
failed=$(( validity != 0 ))
for s in "${status[@]}"; do
  name=${s% *}; rc=${s#* }
  if [ "$rc" = 0 ]; then sed 1,2d "$OUT/$name/bench.md"; else failed=1; echo "bench $name: exit $rc"; fi
done
exit $failed
