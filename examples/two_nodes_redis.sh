#!/usr/bin/env bash
# Two oncue nodes sharing one Redis queue: `oncue serve` (HTTP and workers) and `oncue worker`
# (workers only, e.g. on another machine). Submit through the server, watch both nodes run the
# tasks, stop both with SIGTERM (each drains and gives back what it holds).
# Needs Redis (default: 127.0.0.1:6379, database 0, keys under a prefix of its own; or set
# ONCUE_STORE) and the redis extra (pip install 'oncue[redis]').
# Run: bash examples/two_nodes_redis.sh
set -euo pipefail

prefix="oncue_example_$$"
store="${ONCUE_STORE:-redis://127.0.0.1:6379/0?prefix=$prefix}"
drop_store() {  # our prefix's keys
  if [ -z "${ONCUE_STORE:-}" ] && command -v redis-cli >/dev/null; then
    redis-cli --scan --pattern "{$prefix}:*" | xargs -r redis-cli del >/dev/null
  fi
}
source "$(dirname "$0")/lib/two_nodes.sh"
