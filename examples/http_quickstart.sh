#!/usr/bin/env bash
# The HTTP API with curl: starts `oncue serve` on a free port, makes the calls, stops it with
# SIGTERM (a graceful drain) and checks that it exited 0. Run: bash examples/http_quickstart.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
oncue="$(command -v oncue || echo "$root/.venv/bin/oncue")"
logs="$(mktemp -d)"
"$oncue" serve --port 0 --workers 2 --store memory:// >"$logs/stdout" 2>"$logs/stderr" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$logs"' EXIT

for _ in $(seq 300); do   # up to 30 s for the "oncue listening on URL" banner
  grep -q "listening on" "$logs/stdout" && break
  kill -0 "$server" 2>/dev/null || { cat "$logs/stderr" >&2; exit 1; }
  sleep 0.1
done
url="$(sed -n 's/^oncue listening on //p' "$logs/stdout")"
[ -n "$url" ] || { echo "oncue serve did not start" >&2; cat "$logs/stderr" >&2; exit 1; }
echo "server: $url"

call() {  # call METHOD PATH [JSON]: print the request and the answer
  echo "\$ curl -X $1 $url$2${3:+ -d '$3'}"
  curl -sS --fail-with-body -X "$1" "$url$2" -H 'Content-Type: application/json' ${3:+-d "$3"}
  echo
}

# Submit a task, then long-poll until it has finished.
created="$(call POST /api/v1/tasks '{"type": "double", "payload": 21, "priority": "high"}')"
echo "$created"
id="$(echo "$created" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
call GET "/api/v1/tasks/$id/wait?timeout=30"

# Several at once, all or nothing; then list the completed ones.
call POST /api/v1/tasks/batch '{"tasks": [{"type": "echo", "payload": 1}, {"type": "echo", "payload": 2}]}'
call GET "/api/v1/tasks?status=completed&limit=2"

# Errors are JSON too.
echo "\$ curl -X POST $url/api/v1/tasks -d '{\"type\": \"nope\"}'"
curl -sS -X POST "$url/api/v1/tasks" -d '{"type": "nope"}'
echo

# The routes of the queues oncue replaces.
created="$(call POST /tasks '{"status": "new", "result": 21}')"
echo "$created"
number="$(echo "$created" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')"
for _ in $(seq 300); do  # poll, as the original README's clients did
  curl -sS "$url/tasks/$number" | grep -q '"completed"' && break
  sleep 0.1
done
call GET "/tasks/$number"
call POST /submit '{"type": "email", "payload": {"to": "ops@example.com", "subject": "hi"}}'
call GET /stats

# Operations.
call GET /health
call PUT /api/v1/workers '{"count": 3}'
call GET /api/v1/stats

kill -TERM "$server"
code=0
wait "$server" || code=$?
echo "oncue serve exited with $code after SIGTERM"
exit "$code"
