#!/usr/bin/env bash
# Two oncue nodes sharing one PostgreSQL queue: `oncue serve` (HTTP and workers) and `oncue
# worker` (workers only, e.g. on another machine). Submit through the server, watch both nodes
# run the tasks, stop both with SIGTERM (each drains and gives back what it holds).
# Needs PostgreSQL (default: 127.0.0.1:5432, database test; or set ONCUE_STORE) and the
# postgres extra (pip install 'oncue[postgres]'). Run: bash examples/two_nodes_postgres.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
oncue="$(command -v oncue || echo "$root/.venv/bin/oncue")"
python="$(dirname "$oncue")/python"
store="${ONCUE_STORE:-postgresql://127.0.0.1:5432/test?schema=oncue_example_$$}"
logs="$(mktemp -d)"
nodes=()
cleanup() {
  for node in "${nodes[@]}"; do kill "$node" 2>/dev/null || true; done
  "$python" - "$store" <<'PY' || true
import sys, urllib.parse, psycopg
url, _, query = sys.argv[1].partition("?")
schema = urllib.parse.parse_qs(query).get("schema", ["public"])[0]
if schema != "public":
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
PY
  rm -rf "$logs"
}
trap cleanup EXIT

wait_for() {  # wait_for TEXT FILE: up to 30 s for a node to say it is up
  for _ in $(seq 300); do
    grep -q "$1" "$2" && return
    kill -0 "${nodes[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "a node did not start:" >&2; cat "$logs"/*.err >&2; exit 1
}

"$oncue" serve --port 0 --workers 2 --queue-size 5000 --store "$store" \
  >"$logs/serve.out" 2>"$logs/serve.err" &
nodes+=($!)
wait_for "listening on" "$logs/serve.out"
url="$(sed -n 's/^oncue listening on //p' "$logs/serve.out")"
echo "node a, oncue serve: $url"

"$oncue" worker --workers 2 --store "$store" >"$logs/worker.out" 2>"$logs/worker.err" &
nodes+=($!)
wait_for "worker.started" "$logs/worker.err"
echo "node b, oncue worker: $(sed -n 's/.*worker.started node=\([^ ]*\).*/\1/p' "$logs/worker.err")"

# 200 tasks of 20 ms, all submitted to node a.
tasks="$("$python" -c 'import json; print(json.dumps({"tasks": [{"type": "sleep", "payload": 0.02}] * 200}))')"
curl -sS --fail-with-body "$url/api/v1/tasks/batch" -H 'Content-Type: application/json' -d "$tasks" >/dev/null
echo "submitted 200 tasks to node a"

# Stats count the whole queue, whichever node ran the tasks.
for _ in $(seq 600); do
  done="$(curl -sS "$url/api/v1/stats" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["successful"])')"
  [ "$done" = 200 ] && break
  sleep 0.1
done
[ "$done" = 200 ] || { echo "only $done of 200 done" >&2; exit 1; }
echo "all 200 completed; who ran them:"
curl -sS "$url/api/v1/tasks?limit=200" | "$python" -c '
import collections, json, sys
tasks = json.load(sys.stdin)["tasks"]
nodes = collections.Counter(task["worker"].split("/")[0] for task in tasks)
for node, count in sorted(nodes.items()):
    print(f"  {node}: {count}")
assert len(nodes) == 2, "one node ran everything"
'

for node in "${nodes[@]}"; do kill -TERM "$node"; done
for node in "${nodes[@]}"; do wait "$node"; done   # set -e: a non-zero exit fails the script
nodes=()
echo "both nodes drained and exited 0"
