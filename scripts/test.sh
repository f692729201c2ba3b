#!/usr/bin/env bash
# Install what the tests need (Debian packages, a virtual environment with the test extras) and run them:
# ruff, import-linter's layer rules, mypy, then pytest, the build of the one-file executable
# (scripts/build-binary.sh) included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k comparisons`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
python3 -c "import ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # checks the unit of install-service
command -v objdump >/dev/null 2>&1 || need+=(binutils)          # PyInstaller, for the one-file build
command -v chromium >/dev/null 2>&1 || need+=(chromium)         # the page's tests, driven by Playwright
command -v faketime >/dev/null 2>&1 || need+=(faketime)         # wall-clock steps (tests/test_faults.py)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check .
.venv/bin/lint-imports          # the layers of docs/architecture.md, and no circle between modules
.venv/bin/mypy                  # the types of tsstats/ ([tool.mypy] in pyproject.toml)
# four workers (most tests wait on a process, a socket or a browser: 2 cores keep four busy), a test file's tests
# in one worker (they share its servers); the 15 slowest tests at the end. TSSTATS_TEST_WORKERS=0: one process.
.venv/bin/python -m pytest -n "${TSSTATS_TEST_WORKERS:-4}" --dist loadfile --durations=15 --quiet-tests=skip "$@"
# then, alone on the machine, the tests that judge the statistics of measured trials (a trial's energy is its
# share of the machine's busy CPU time, which the other workers' load would sway); none selected (exit 5) is fine
status=0
.venv/bin/python -m pytest --quiet-tests=only "$@" || status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 5 ]
