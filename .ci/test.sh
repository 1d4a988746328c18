#!/usr/bin/env bash
# The one test command (README, .ci/run): set up .venv, then lint, type-check, test, package.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,postgres,redis,otel]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== deploy lint (docs/deploy.md)"
.venv/bin/hadolint Dockerfile
.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
.venv/bin/kubernetes-validate --strict --quiet deploy/kubernetes/configmap.yaml \
  deploy/kubernetes/server.yaml deploy/kubernetes/worker.yaml
echo "== pytest"
.venv/bin/python -m pytest "$@"
