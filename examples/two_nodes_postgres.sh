#!/usr/bin/env bash
# Two oncue nodes sharing one PostgreSQL queue: `oncue serve` (HTTP and workers) and `oncue
# worker` (workers only, e.g. on another machine). Submit through the server, watch both nodes
# run the tasks, stop both with SIGTERM (each drains and gives back what it holds).
# Needs PostgreSQL (default: 127.0.0.1:5432, database test, in a schema of its own that it drops
# at the end; or set ONCUE_STORE, which it leaves as it is) and the postgres extra
# (pip install 'oncue[postgres]'). Run: bash examples/two_nodes_postgres.sh
set -euo pipefail

store="${ONCUE_STORE:-postgresql://127.0.0.1:5432/test?schema=oncue_example_$$}"
drop_store() {  # the schema this run made; a store given in ONCUE_STORE is the user's: kept
  [ -z "${ONCUE_STORE:-}" ] || return 0
  "$python" - "$store" <<'PY'
import sys, urllib.parse, psycopg
url, _, query = sys.argv[1].partition("?")
schema = urllib.parse.parse_qs(query).get("schema", ["public"])[0]
if schema != "public":
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
PY
}
source "$(dirname "$0")/lib/two_nodes.sh"
