#!/usr/bin/env bash
# CI step: the int8 model on emulated Raspberry Pi CPUs (cortex-a72 = Pi 4, cortex-a76 = Pi 5)
# gives logits and states bit-identical to x86, with no illegal instruction.
#
#   bash tools/run_pi_checks.sh          (after tools/run_tests.sh, which creates .venv)
#
# 1. harness setup (tools/run_under_aarch64.sh --setup-only: qemu-user, arm64 python3.11, the
#    pinned aarch64 wheels; cached in ~/.cache/minimovinet-aarch64);
# 2. harness self-test (tools/aarch64/sdot_probe.py): numba under the Pi 5 cpuinfo emits SDOT,
#    and SDOT code on the Pi 4 CPU dies with SIGILL (so an illegal instruction is caught);
# 3. x86: decode PI_FRAMES frames of the clip with PyAV (the emulated side has no PyAV) and run
#    the official A0 int8 model over them: sha256 of the logits and of all states after every
#    step (tools/pi_digests.py);
# 4. for each CPU, with an empty numba cache of its own: the same run (JIT, then cached), a
#    second process on the filled cache (warm start), and the int8 kernel tests that need no
#    TensorFlow/LiteRT (tests/test_int8_kernels.py, serial builds) under emulation; the CPUs
#    run side by side (one host core each);
# 5. every step's digests compared with x86's (any difference fails), exit codes checked (132 =
#    SIGILL fails), and a table printed.
# Skips (exit 0, with the reason) when ../shared (the official model and clips) is absent,
# except in CI (CI=true) or strict mode (MINIMOVINET_STRICT_TESTS=1), where that fails.
#
# Environment: VENV (x86 venv, default .venv), PI_CPUS (default "cortex-a72 cortex-a76"),
# PI_FRAMES (default 20), PI_CLIP (default ../shared/media/carving_ice_172.mp4), PI_PYTEST
# (1: run the kernel tests under emulation, default 1), MINIMOVINET_AARCH64_HOME (harness cache).
set -uo pipefail
cd "$(dirname "$0")/.."
PROJECT=$(pwd)
VENV=${VENV:-.venv}
PI_CPUS=${PI_CPUS:-"cortex-a72 cortex-a76"}
PI_FRAMES=${PI_FRAMES:-20}
SHARED=$(cd .. && pwd)/shared
PI_CLIP=${PI_CLIP:-$SHARED/media/carving_ice_172.mp4}
MODEL=$SHARED/models/movinet_a0_stream_k600_int8.tflite
PI_PYTEST=${PI_PYTEST:-1}
RUN=tools/run_under_aarch64.sh
step_start=$(date +%s)
say() { echo "[pi-checks] $*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

if [ ! -f "$MODEL" ] || [ ! -f "$PI_CLIP" ]; then
  if [ "${CI:-}" = true ] || [ "${MINIMOVINET_STRICT_TESTS:-}" = 1 ]; then
    say "FAILED: the official int8 model ($MODEL) or the clip ($PI_CLIP) is absent; CI always"
    say "has ../shared, so this is an error here, not a reason to skip"
    exit 1
  fi
  say "SKIPPED: the official int8 model ($MODEL) or the clip ($PI_CLIP) is absent: ../shared is"
  say "not on this checkout, so there is nothing to compare on the emulated Raspberry Pi CPUs."
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "no x86 venv at $VENV (run bash tools/run_tests.sh first, or set VENV)" >&2
  exit 1
fi
PY=$VENV/bin/python

WORK=$(mktemp -d "${TMPDIR:-/tmp}/minimovinet-pi-checks.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=()

# ---- 1. harness
t0=$(now)
if ! PI_HOST_PYTHON=$PY bash "$RUN" --setup-only; then
  say "FAILED: emulation harness setup"; exit 1
fi
say "harness ready in $(elapsed "$t0" "$(now)") s"

# ---- 2. harness self-test
t0=$(now)
probe_a76=$(bash "$RUN" --cpu cortex-a76 tools/aarch64/sdot_probe.py 2>&1); rc=$?
echo "$probe_a76" | sed 's/^/  cortex-a76: /'
if [ $rc -ne 0 ] || ! echo "$probe_a76" | grep -q '"llvm_cpu": "cortex-a76", "sdot": [1-9]'; then
  failures+=("self-test: numba under the Pi 5 cpuinfo did not detect cortex-a76 / emit SDOT (rc $rc)")
fi
# (in a subshell whose stderr is dropped: bash's own "Illegal instruction" job message)
( NUMBA_CPU_NAME=cortex-a76 bash "$RUN" --cpu cortex-a72 tools/aarch64/sdot_probe.py \
  >"$WORK/probe.txt" 2>&1 ) 2>/dev/null; rc=$?
sed 's/^/  cortex-a72 running cortex-a76 code (SIGILL expected): /' "$WORK/probe.txt"
if [ $rc -eq 132 ]; then
  say "self-test: SDOT on the emulated cortex-a72 stops with SIGILL (exit 132), as on a Pi 4"
else
  failures+=("self-test: SDOT on the emulated cortex-a72 exited $rc, not 132 (SIGILL)")
fi
say "self-test done in $(elapsed "$t0" "$(now)") s"

# ---- 3. x86 reference
t0=$(now)
if ! "$PY" tools/pi_digests.py --clip "$PI_CLIP" --max-frames "$PI_FRAMES" \
     --save-frames "$WORK/frames.npy" --json "$WORK/x86.json"; then
  say "FAILED: the x86 reference run"; exit 1
fi
x86_wall=$(elapsed "$t0" "$(now)")

# ---- 4. emulated runs
# The emulated CPUs run side by side (qemu runs each guest on one host thread and the
# machines have 2 cores): each CPU's chain (cold run, warm run, kernel tests) writes its log,
# exit codes and wall times to files, collected after both are done.
cpu_chain() {
  local cpu=$1 out=$WORK/chain-$cpu
  export NUMBA_CACHE_DIR=$WORK/numba-cache-$cpu          # empty: the first run compiles
  for run in cold warm; do
    local t0; t0=$(now)
    bash "$RUN" --cpu "$cpu" tools/pi_digests.py --frames "$WORK/frames.npy" \
      --json "$WORK/$cpu-$run.json"
    echo $? > "$out.$run.rc"
    elapsed "$t0" "$(now)" > "$out.$run.wall"
  done
  if [ "$PI_PYTEST" = 1 ]; then
    local t0; t0=$(now)
    bash "$RUN" --cpu "$cpu" -m pytest -q -p no:cacheprovider tests/test_int8_kernels.py \
      -k "not parallel"
    echo $? > "$out.pytest.rc"
    say "$cpu: int8 kernel tests (serial builds) exit $(cat "$out.pytest.rc") in" \
        "$(elapsed "$t0" "$(now)") s"
  fi
}

declare -A WALL RC
pids=()
for cpu in $PI_CPUS; do
  cpu_chain "$cpu" > "$WORK/chain-$cpu.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
for cpu in $PI_CPUS; do
  sed "s/^/[$cpu] /" "$WORK/chain-$cpu.log"
  for run in cold warm; do
    RC[$cpu-$run]=$(cat "$WORK/chain-$cpu.$run.rc" 2>/dev/null || echo 255)
    WALL[$cpu-$run]=$(cat "$WORK/chain-$cpu.$run.wall" 2>/dev/null || echo "?")
    case ${RC[$cpu-$run]} in
      0) ;;
      132) failures+=("$cpu ($run): ILLEGAL INSTRUCTION (SIGILL, exit 132)") ;;
      *) failures+=("$cpu ($run): exit code ${RC[$cpu-$run]}") ;;
    esac
  done
  if [ "$PI_PYTEST" = 1 ]; then
    rc=$(cat "$WORK/chain-$cpu.pytest.rc" 2>/dev/null || echo 255)
    case $rc in
      0) ;;
      132) failures+=("$cpu: kernel tests: ILLEGAL INSTRUCTION (SIGILL, exit 132)") ;;
      *) failures+=("$cpu: kernel tests exit code $rc") ;;
    esac
  fi
done

results=()
for cpu in $PI_CPUS; do
  for run in cold warm; do
    [ -f "$WORK/$cpu-$run.json" ] && results+=("$WORK/$cpu-$run.json")
  done
done
if [ ${#results[@]} -gt 0 ]; then
  if ! "$PY" tools/pi_digests.py --compare "$WORK/x86.json" "${results[@]}"; then
    failures+=("digests differ from x86")
  fi
fi
walls=""
for key in "${!WALL[@]}"; do walls+="$key=${WALL[$key]} "; done
PI_WALLS=$walls "$PY" - "$WORK" "$x86_wall" "$PI_CPUS" <<'EOF'
import json, os, sys
work, x86_wall, cpus = sys.argv[1], sys.argv[2], sys.argv[3].split()
ref = json.load(open(os.path.join(work, "x86.json")))
walls = dict(line.split("=", 1) for line in os.environ.get("PI_WALLS", "").split() if "=" in line)
rows = [("x86_64 (" + ref["cpu"] + ")", "reference", ref, x86_wall)]
for cpu in cpus:
    for run in ("cold", "warm"):
        path = os.path.join(work, f"{cpu}-{run}.json")
        if os.path.exists(path):
            rows.append((cpu, run, json.load(open(path)), walls.get(f"{cpu}-{run}", "?")))
print()
print(f"{'CPU':<24} {'run':<9} {'frames':>6} {'digests equal':>13} {'wall s':>7} "
      f"{'first frame s':>13} {'later frame s':>13} {'compiled/cached':>15} {'peak RSS MiB':>12}")
for cpu, run, r, wall in rows:
    equal = "-" if run == "reference" else (
        "yes" if [s["logits"] + s["states"] for s in r["steps"]] ==
        [s["logits"] + s["states"] for s in ref["steps"]] else "NO")
    s = r["seconds"]
    print(f"{cpu:<24} {run:<9} {r['frames']:>6} {equal:>13} {wall:>7} {s['first_frame']:>13.2f} "
          f"{s['later_frame_median']:>13.4f} "
          f"{str(r['kernels_compiled']) + '/' + str(r['kernels_loaded_from_cache']):>15} "
          f"{r['peak_rss_mib']:>12.0f}")
print("(wall: the whole process incl. interpreter start and imports; 'cold': empty numba cache, "
      "kernels JIT-compiled; 'warm': a second process on the filled cache; peak RSS under "
      "emulation is the qemu process: guest memory plus the emulator's)")
EOF
say "step finished in $(( $(date +%s) - step_start )) s"
if [ ${#failures[@]} -gt 0 ]; then
  for f in "${failures[@]}"; do say "FAILED: $f"; done
  exit 1
fi
say "OK: $PI_CPUS: every step's logits and states bit-identical to x86, no illegal instruction"
