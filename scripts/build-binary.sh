#!/usr/bin/env bash
# Build dist/tsstats: one executable for Linux x86-64 with Python, DuckDB, Sanic, numpy, psutil, the NVML
# bindings, schema.sql and the data tables inside (PyInstaller, one-file mode). It runs on a machine with
# nothing else installed. The build uses its own virtual environment, .venv-build/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v objdump >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends binutils python3-venv
fi
[ -x .venv-build/bin/python ] || python3 -m venv .venv-build
echo "installing tsstats and PyInstaller into .venv-build ..."
.venv-build/bin/python -m pip install -q --disable-pip-version-check --upgrade '.[build]'
echo "building dist/tsstats ..."
# Sanic's error pages read tracerite's data files at start-up; pyarrow and pandas are optional and large.
.venv-build/bin/pyinstaller --onefile --noconfirm --clean --log-level WARN --name tsstats \
  --distpath dist --workpath build/pyinstaller --specpath build \
  --collect-data tsstats --collect-data tracerite \
  --exclude-module pyarrow --exclude-module pandas --exclude-module tkinter \
  packaging/tsstats_main.py
ls -l dist/tsstats
