#!/usr/bin/env bash
# The project's one test command: create a venv, install minimovinet with its test extra
# (TensorFlow + Model Garden as the oracle, LiteRT, pytest), run the whole suite.
#   bash tools/run_tests.sh [pytest args...]
# Environment: VENV (default .venv), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# tools/pins.txt: numpy / numba / llvmlite versions shared with the emulated aarch64 runs
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]" -c tools/pins.txt
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# Strict mode (tests/conftest.py): everything this script installs, and ../shared, must be
# there; a test that would skip for lack of them fails, and a skip must say why it is
# expected on this machine.
export MINIMOVINET_STRICT_TESTS=${MINIMOVINET_STRICT_TESTS:-1}
set +e
# Two workers (the machines have 2 cores). --dist loadfile keeps each file on one worker; the
# official models are split one file per model id (tests/test_official_a*.py) so each is built
# once.
"$VENV/bin/python" -m pytest -ra -n "${TEST_WORKERS:-2}" --dist loadfile --durations=25 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run_tests.sh: pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$status"
