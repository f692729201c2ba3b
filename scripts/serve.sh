#!/usr/bin/env bash
# Install tsstats into a virtual environment beside this script and start it on its defaults
# (http://127.0.0.1:8000). Extra arguments go to `tsstats serve`, e.g. `bash scripts/serve.sh --port 9000`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import ensurepip" >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check .
exec .venv/bin/tsstats serve "$@"
