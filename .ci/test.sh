#!/usr/bin/env bash
# The one test command (README, .ci/run): set up .venv, then lint, type-check, test, package.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,postgres,redis]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
# The dashboard's browser tests drive Debian's Chromium (never a browser the test tool downloads).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== apt-get install chromium"
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
    || echo "chromium not installed: tests/browser skip (and fail under CI=true)"
fi

echo "== pytest"
.venv/bin/python -m pytest "$@"
