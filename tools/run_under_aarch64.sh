#!/usr/bin/env bash
# Run Python under an emulated Raspberry Pi CPU: qemu user-mode (no binfmt_misc, no root
# filesystem image, no VM), Debian bookworm's arm64 python3.11 (the Python of 64-bit Raspberry
# Pi OS bookworm) and the aarch64 numpy / numba / llvmlite wheels pinned in
# tools/pins.txt (the versions the x86 tests use), with this project importable.
#
#   tools/run_under_aarch64.sh [--cpu CPU] SCRIPT.py [ARGS...]
#   tools/run_under_aarch64.sh [--cpu CPU] -m pytest tests/test_int8_kernels.py ...
#   tools/run_under_aarch64.sh [--cpu CPU] -c 'import numba; print(numba.config.NUMBA_NUM_THREADS)'
#   tools/run_under_aarch64.sh --setup-only [--cpu CPU]
#
# CPU: cortex-a72 (Raspberry Pi 4, default), cortex-a76 (Raspberry Pi 5), or any other
# `qemu-aarch64 -cpu help` name (those see no Pi /proc/cpuinfo: numba then compiles for 'generic').
# The guest sees a Pi 4 / Pi 5 /proc/cpuinfo (tools/aarch64/cpuinfo-*), so LLVM and numba detect
# the CPU and its features exactly as on the board.  An instruction the emulated CPU lacks (SDOT
# on a cortex-a72) kills the process with SIGILL: exit code 132.
#
# Set up once, on first use (idempotent; about a minute and 450 MB): qemu-user and debootstrap by
# apt-get when missing; an arm64 bookworm userland (debootstrap's first stage, .debs unpacked)
# and the aarch64 wheels (host pip, --target) in the cache directory.  The wheels are reinstalled
# when tools/pins.txt changes.
#
# Environment (all optional):
#   PI_CPU                      the CPU when --cpu is not given (default cortex-a72)
#   MINIMOVINET_AARCH64_HOME    the cache directory (default ~/.cache/minimovinet-aarch64)
#   PI_MIRROR                   Debian mirror (default: the first one in the apt sources)
#   PI_HOST_PYTHON              host Python whose pip downloads the wheels (default: the
#                               project's .venv, else python3)
#   PI_PYTHONPATH               extra guest PYTHONPATH entries (':'-separated), e.g. a
#                               --target directory of more aarch64 wheels
#   NUMBA_CACHE_DIR             numba's on-disk cache (default: one directory per CPU in the
#                               cache directory, so that each CPU's compiled kernels are kept)
#   PI_QEMU_PLUGIN              a TCG plugin for qemu: passed as `-plugin "$PI_QEMU_PLUGIN"`
#                               (FILE.so[,arg=...]), e.g. benchmarks/qemu_insn_count.c's
#                               instruction counter (benchmarks/pi_instructions.py)
#   NUMBA_NUM_THREADS           default 1 (emulated threads only cost time); other NUMBA_*,
#                               MINIMOVINET_* and PI_GUEST_* variables are passed to the guest.
# Nothing else of the host's environment reaches the guest (no PYTHONPATH, VIRTUAL_ENV, ...).
set -euo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$PROJECT/tools/aarch64
REQUIREMENTS=$PROJECT/tools/pins.txt
PI_HOME=${MINIMOVINET_AARCH64_HOME:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/minimovinet-aarch64}
CPU=${PI_CPU:-cortex-a72}
SETUP_ONLY=0
log() { echo "[run_under_aarch64] $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) CPU=$2; shift 2 ;;
    --cpu=*) CPU=${1#--cpu=}; shift ;;
    --setup-only) SETUP_ONLY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) break ;;
  esac
done
if [ "$SETUP_ONLY" = 0 ] && [ $# -eq 0 ]; then
  echo "usage: $0 [--cpu CPU] (SCRIPT.py | -m MODULE | -c CODE) [ARGS...]   (or --setup-only)" >&2
  exit 2
fi

ROOT=$PI_HOME/root
SITE=$PI_HOME/site-packages
mkdir -p "$PI_HOME"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Only one setup at a time (two CPUs may be started side by side).
exec 9>"$PI_HOME/.setup.lock"
flock 9

# ---- 1. qemu user-mode emulator and debootstrap (Debian packages)
QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if [ -z "$QEMU" ] || ! command -v debootstrap >/dev/null; then
  log "apt-get install qemu-user debootstrap"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-user debootstrap >/dev/null
  QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)
fi

# ---- 2. arm64 Debian bookworm userland with python3.11
# debootstrap's first stage only (--foreign: download and unpack the Essential set), then every
# downloaded .deb unpacked as well; the second stage would run maintainer scripts (needs a chroot
# and binfmt), which a plain python3.11 does not need.  tar --keep-directory-symlink keeps the
# merged-/usr symlinks (bin, lib, sbin -> usr/...) that `dpkg-deb -x` would replace.
if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
  MIRROR=${PI_MIRROR:-$(grep -h "^URIs:" /etc/apt/sources.list.d/*.sources 2>/dev/null \
                        | awk '{print $2}' | grep -v security | head -1 || true)}
  [ -n "$MIRROR" ] || MIRROR=$(grep -h "^deb " /etc/apt/sources.list 2>/dev/null \
                               | awk '{print $2}' | grep -v security | head -1 || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  log "debootstrap arm64 bookworm from $MIRROR -> $ROOT"
  rm -rf "$ROOT" "$ROOT.tmp"
  if ! as_root debootstrap --arch=arm64 --foreign --variant=minbase \
      --include=python3.11-minimal,libpython3.11-stdlib,libstdc++6,libgcc-s1,zlib1g \
      bookworm "$ROOT.tmp" "$MIRROR" >"$PI_HOME/debootstrap.log" 2>&1; then
    tail -20 "$PI_HOME/debootstrap.log" >&2
    log "debootstrap failed (log: $PI_HOME/debootstrap.log)"
    exit 1
  fi
  for deb in "$ROOT.tmp"/var/cache/apt/archives/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$ROOT.tmp"
  done
  rm -rf "$ROOT.tmp"/var/cache/apt/archives/*.deb "$ROOT.tmp"/var/lib/apt/lists/*
  [ -x "$ROOT.tmp/usr/bin/python3.11" ] || { log "no python3.11 in the arm64 userland"; exit 1; }
  mv "$ROOT.tmp" "$ROOT"
fi

# ---- 3. aarch64 wheels (pinned), installed by the host's pip into a target directory
# Both platform tags: with manylinux2014 alone pip silently picks old releases.
STAMP=$SITE/.requirements
PINS=$(grep -v '^[[:space:]]*#' "$REQUIREMENTS" | grep -v '^[[:space:]]*$')
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$PINS" ]; then
  if [ -n "${PI_HOST_PYTHON:-}" ]; then HOST_PY=$PI_HOST_PYTHON
  elif [ -x "$PROJECT/.venv/bin/python" ]; then HOST_PY=$PROJECT/.venv/bin/python
  else HOST_PY=python3; fi
  log "pip install aarch64 wheels ($(echo $PINS)) -> $SITE"
  rm -rf "$SITE" "$SITE.tmp"
  "$HOST_PY" -m pip install -q --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
    --no-compile --target "$SITE.tmp" --only-binary=:all: \
    --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 \
    --python-version 3.11 --implementation cp --abi cp311 -r "$REQUIREMENTS"
  echo "$PINS" > "$SITE.tmp/.requirements"
  mv "$SITE.tmp" "$SITE"
fi

# ---- 4. per-CPU qemu -L prefix: the userland's top-level entries + a Raspberry Pi /proc/cpuinfo
# (qemu 7.2 does not emulate /proc/cpuinfo for aarch64 guests: without this the guest reads the
# host's x86 file and LLVM falls back to cpu 'generic').  qemu looks absolute paths up in the
# prefix first, so the guest's open("/proc/cpuinfo") reads PREFIX/proc/cpuinfo.
PREFIX=$PI_HOME/prefix-$CPU
CPUINFO=$HERE/cpuinfo-$CPU
if [ ! -d "$PREFIX" ] || { [ -f "$CPUINFO" ] && ! cmp -s "$CPUINFO" "$PREFIX/proc/cpuinfo"; }; then
  rm -rf "$PREFIX" "$PREFIX.tmp"
  mkdir -p "$PREFIX.tmp"
  # Only what the arm64 loader and python3.11 need (the loader, libraries, stdlib).  Not tmp,
  # root, home, ...: the guest resolves symlinks in the prefix, so a linked /tmp would make
  # realpath("/tmp/x") name the userland's empty tmp instead of the host's.
  for e in usr lib; do ln -s "$ROOT/$e" "$PREFIX.tmp/$e"; done
  if [ -f "$CPUINFO" ]; then
    mkdir -p "$PREFIX.tmp/proc"
    cp "$CPUINFO" "$PREFIX.tmp/proc/cpuinfo"
  else
    log "no Raspberry Pi cpuinfo for $CPU: the guest sees the host's (numba cpu 'generic')"
  fi
  mv "$PREFIX.tmp" "$PREFIX"
fi
flock -u 9
exec 9>&-

if [ "$SETUP_ONLY" = 1 ]; then
  log "ready: $PI_HOME ($(du -sh "$PI_HOME" 2>/dev/null | cut -f1)); $("$QEMU" --version | head -1)"
  exit 0
fi

# ---- 5. run, with a scrubbed environment
GUEST_ENV=(
  "PATH=/usr/bin:/bin"
  "HOME=${HOME:-/root}"
  "LANG=C.UTF-8"
  "TMPDIR=${TMPDIR:-/tmp}"
  "PYTHONPATH=$SITE:$PROJECT${PI_PYTHONPATH:+:$PI_PYTHONPATH}"
  "PYTHONNOUSERSITE=1"
  "PYTHONDONTWRITEBYTECODE=1"
  "PYTHONUNBUFFERED=1"
  "NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$PI_HOME/numba-cache/$CPU}"
  "NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1}"
  "PI_GUEST_CPU=$CPU"
)
for name in $(compgen -e); do
  case "$name" in
    NUMBA_CACHE_DIR|NUMBA_NUM_THREADS) ;;
    NUMBA_*|MINIMOVINET_*|PI_GUEST_*) GUEST_ENV+=("$name=${!name}") ;;
  esac
done
ulimit -c 0 2>/dev/null || true          # no qemu core files after a SIGILL
QEMU_ARGS=(-cpu "$CPU" -L "$PREFIX")
[ -z "${PI_QEMU_PLUGIN:-}" ] || QEMU_ARGS+=(-plugin "$PI_QEMU_PLUGIN")
exec env -i "${GUEST_ENV[@]}" "$QEMU" "${QEMU_ARGS[@]}" "$ROOT/usr/bin/python3.11" "$@"
