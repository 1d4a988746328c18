"""Client commands of `oncue` (submit, status, tasks, stats): httpx against a running server.

Each prints the server's JSON answer; an error answer goes to stderr with exit code 1.
A bearer token in ONCUE_TOKEN is sent with every request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

TIMEOUT = 30.0
FINISHED = ("completed", "failed", "cancelled")


def add_client_commands(commands: Any, url: str) -> None:
    """Add submit, status, tasks and stats to the `oncue` sub-command parser."""

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument("--url", default=url, help=f"the server (default {url})")
        return parser

    submit = command("submit", "submit a task")
    submit.add_argument("type", help="the task type, e.g. email")
    submit.add_argument("--payload", default="null", help="the payload as JSON")
    submit.add_argument("--priority", help="an int, or low/normal/high/critical")
    submit.add_argument("--key", help="idempotency key")
    submit.add_argument("--wait", action="store_true", help="wait until it finishes")
    submit.set_defaults(run=run_submit)
    status = command("status", "show one task")
    status.add_argument("id")
    status.set_defaults(run=run_status)
    tasks = command("tasks", "list tasks, newest first")
    tasks.add_argument("--status", help="pending, running, completed, failed, ...")
    tasks.add_argument("--type")
    tasks.add_argument("--limit", type=int, default=50)
    tasks.set_defaults(run=run_tasks)
    stats = command("stats", "show queue statistics")
    stats.set_defaults(run=run_stats)


def _show(response: httpx.Response) -> int:
    """Print the answer; errors go to stderr. Returns the exit code."""
    if response.status_code == 204:
        return 0
    body = response.json()
    if response.is_error:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        print(f"oncue: {response.status_code} {error.get('message', body)}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0


def _request(method: str, url: str, **options: Any) -> httpx.Response:
    token = os.environ.get("ONCUE_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.request(method, url, timeout=TIMEOUT, headers=headers, **options)
    except httpx.TransportError as error:
        raise SystemExit(f"oncue: cannot reach {url}: {error}") from None


def run_submit(options: argparse.Namespace) -> int:
    try:
        payload = json.loads(options.payload)
    except json.JSONDecodeError as error:
        raise SystemExit(f"oncue: --payload is not valid JSON: {error}") from None
    body: dict[str, Any] = {"type": options.type, "payload": payload}
    if options.priority is not None:
        body["priority"] = _priority(options.priority)
    if options.key is not None:
        body["key"] = options.key
    base = options.url.rstrip("/")
    response = _request("POST", f"{base}/api/v1/tasks", json=body)
    if not options.wait or response.is_error:
        return _show(response)
    task = response.json()
    while task["status"] not in FINISHED:
        response = _request(
            "GET", f"{base}/api/v1/tasks/{task['id']}/wait", params={"timeout": TIMEOUT - 5}
        )
        if response.is_error:
            return _show(response)
        task = response.json()
    code = _show(response)
    return code if task["status"] == "completed" else 1


def run_status(options: argparse.Namespace) -> int:
    return _show(_request("GET", f"{options.url.rstrip('/')}/api/v1/tasks/{options.id}"))


def run_tasks(options: argparse.Namespace) -> int:
    params = {"limit": options.limit}
    params.update(
        {name: getattr(options, name) for name in ("status", "type") if getattr(options, name)}
    )
    return _show(_request("GET", f"{options.url.rstrip('/')}/api/v1/tasks", params=params))


def run_stats(options: argparse.Namespace) -> int:
    return _show(_request("GET", f"{options.url.rstrip('/')}/api/v1/stats"))


def _priority(text: str) -> int | str:
    """A priority from the command line: an int (negative too) or a name, sent as given."""
    try:
        return int(text)
    except ValueError:
        return text
