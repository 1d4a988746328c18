"""The `oncue` commands that talk to a running server, through oncue.Client.

submit, status, wait, cancel, retry, tasks, stats: each prints the task(s) or statistics as
JSON on stdout; events follows the event stream, a line per event (JSON with --json). An error
is one line on stderr, exit 1; a task that `wait` (or `submit --wait`) saw end failed or
cancelled is printed, exit 3. `--url` (ONCUE_URL) names the server, `--token` (ONCUE_TOKEN) is
sent as a bearer token.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .options import Duration, option

if TYPE_CHECKING:
    from oncue.actors import Task

    from .client import Client

DEFAULT_URL = "http://127.0.0.1:8080"
STATES = ("pending", "running", "retrying", "completed", "failed", "cancelled")
TASK_ENDED_BADLY = 3  # exit code: the task waited for ended failed or cancelled


def connection(command: Callable[..., int]) -> Callable[..., int]:
    """Add --url and --token; call `command` with a connected `client`; one-line errors."""

    @option("-u", "--url", default=DEFAULT_URL, variables=("ONCUE_URL",), help="the server")
    @option("-t", "--token", variables=("ONCUE_TOKEN",), secret=True, help="bearer token")
    @functools.wraps(command)
    def run(url: str, token: str | None, **params: Any) -> int:
        from oncue.actors import OncueError

        from .client import Client

        try:
            with Client(url, token) as client:
                return command(client, **params)
        except (OncueError, TimeoutError) as error:
            raise SystemExit(f"oncue: {error}") from None

    return run


def payload_json(context: click.Context, param: click.Parameter, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not valid JSON: {error}") from None


def priority(context: click.Context, param: click.Parameter, text: str | None) -> Any:
    """An int (negative too) or a name, sent as given (the server says what is wrong)."""
    try:
        return None if text is None else int(text)
    except ValueError:
        return text


def moment(context: click.Context, param: click.Parameter, text: str | None) -> Any:
    """Epoch seconds, or ISO 8601 (UTC unless it has an offset)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"give epoch seconds or ISO 8601, got {text!r}") from None


@click.command()
@click.argument("type")
@click.option(
    "-d",
    "--payload",
    metavar="JSON",
    default="null",
    show_default=True,
    callback=payload_json,
    help="the task's input, as JSON",
)
@click.option("--priority", callback=priority, help="an int, or low/normal/high/critical")
@click.option("--max-retries", type=click.IntRange(min=-1), help="-1: unlimited")
@click.option("--timeout", type=Duration(), help="seconds (or 90s, 15m, ...) per attempt")
@click.option("--delay", type=Duration(), help="run no sooner than this from now")
@click.option(
    "--run-at", metavar="TIME", callback=moment, help="run no sooner than this: epoch or ISO 8601"
)
@click.option("--key", help="idempotency key: a second submit with it returns the first task")
@click.option("--wait", is_flag=True, help="wait until it has finished (exit 3 if it failed)")
@connection
def submit(client: Client, type: str, wait: bool, **options: Any) -> int:
    """Submit a task of TYPE.

    Options left out take the task type's defaults.
    """
    payload = options.pop("payload")
    task = client.submit(type, payload, **options)
    return show_finished(client.wait(task.id)) if wait else show(task)


@click.command()
@click.argument("task_id", metavar="ID")
@connection
def status(client: Client, task_id: str) -> int:
    """Show one task."""
    return show(client.get(task_id))


@click.command(name="wait")
@click.argument("task_id", metavar="ID")
@click.option("--timeout", type=Duration(), help="give up after this long (exit 1)")
@connection
def wait_command(client: Client, task_id: str, timeout: float | None) -> int:
    """Wait until a task has finished, and show it.

    Exit 3 if it failed or was cancelled; 1 if --timeout passed first.
    """
    return show_finished(client.wait(task_id, timeout=timeout))


@click.command()
@click.argument("task_id", metavar="ID")
@connection
def cancel(client: Client, task_id: str) -> int:
    """Cancel an unfinished task."""
    return show(client.cancel(task_id))


@click.command()
@click.argument("task_id", metavar="ID")
@connection
def retry(client: Client, task_id: str) -> int:
    """Run a failed task again."""
    return show(client.retry(task_id))


@click.command()
@click.option("-s", "--status", "state", type=click.Choice(STATES), help="only these")
@click.option("--type", help="only tasks of this type")
@click.option("-n", "--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", help="the next_cursor a previous page printed")
@connection
def tasks(client: Client, **query: Any) -> int:
    """List tasks, newest first, a page at a time."""
    page = client.list(**query)
    body = {"tasks": [task_json(task) for task in page.tasks], "next_cursor": page.next_cursor}
    click.echo(json.dumps(body, indent=2))
    return 0


@click.command()
@connection
def stats(client: Client) -> int:
    """Show queue statistics."""
    import attrs

    click.echo(json.dumps(attrs.asdict(client.stats()), indent=2))
    return 0


@click.command()
@click.option("--task", help="only this task's events (its id or number)")
@click.option("--type", help="only tasks of this type")
@click.option(
    "-s",
    "--status",
    "states",
    type=click.Choice(STATES),
    multiple=True,
    help="only transitions into this status (repeat for several)",
)
@click.option("--last-event-id", help="resume after this event (the server replays since)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line")
@connection
def events(
    client: Client,
    task: str | None,
    type: str | None,
    states: tuple[str, ...],
    last_event_id: str | None,
    as_json: bool,
) -> int:
    """Follow the server's task events as they happen, one line each, until Ctrl-C or the
    server ends the stream (said on stderr, with the id to resume from). A broken connection
    is opened again by itself (the server replays what was missed)."""
    from oncue.actors import TaskEvent

    status = list(states) or None
    resume = last_event_id
    try:
        with client.events(task=task, type=type, status=status, last_event_id=last_event_id) as s:
            for event in s:
                if isinstance(event, TaskEvent):
                    line = event_json(event, s.last_event_id) if as_json else event_line(event)
                elif as_json:
                    line = json.dumps({"event": _kind(event), **attrs_dict(event)})
                else:
                    fields = attrs_dict(event).items()
                    line = "  ".join([_kind(event), *(f"{k}={v}" for k, v in fields if v)])
                click.echo(line)
            resume = s.last_event_id
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # the reader stopped (`oncue events | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush into the closed pipe
        return 0
    again = f"; resume with --last-event-id {resume}" if resume else ""
    click.echo(f"the server ended the event stream (it stopped or restarted){again}", err=True)
    return 0


def event_line(event: Any) -> str:
    """`<at> #<number> <type> <status> attempt <n> [<worker>] [<error>]`: one transition."""
    at = datetime.datetime.fromtimestamp(event.at, datetime.UTC).isoformat(timespec="milliseconds")
    parts = [at.replace("+00:00", "Z"), f"#{event.number}", event.type, event.state.value]
    parts.append(f"attempt {event.attempts}")
    parts += [part for part in (event.worker, event.error) if part]
    return "  ".join(parts)


def event_json(event: Any, event_id: str | None) -> str:
    body = {"event": "task", "event_id": event_id, "id": event.task_id, "number": event.number}
    body |= {"type": event.type, "status": event.state.value, "attempt": event.attempts}
    body |= {"worker": event.worker, "at": event.at, "error": event.error}
    return json.dumps(body)


def _kind(value: Any) -> str:
    return "actor" if type(value).__name__ == "ActorEvent" else "reset"


def attrs_dict(value: Any) -> dict[str, Any]:
    import attrs

    return attrs.asdict(value)


def client_commands() -> list[click.Command]:
    return [submit, status, wait_command, cancel, retry, tasks, stats, events]


def show(task: Task) -> int:
    click.echo(json.dumps(task_json(task), indent=2))
    return 0


def show_finished(task: Task) -> int:
    show(task)
    return 0 if task.state == "completed" else TASK_ENDED_BADLY


def task_json(task: Task) -> dict[str, Any]:
    """A task as the server's JSON shows it (http/models.py `task_out`: the same fields, in
    its order)."""

    def iso(moment: float | None) -> str | None:
        if moment is None:
            return None
        text = datetime.datetime.fromtimestamp(moment, datetime.UTC).isoformat()
        return text.replace("+00:00", "Z")

    error, progress = task.error, task.progress
    return {
        "id": task.id,
        "number": task.number,
        "type": task.type,
        "payload": task.payload,
        "priority": task.priority,
        "status": str(task.state),
        "created_at": iso(task.created_at),
        "started_at": iso(task.started_at),
        "finished_at": iso(task.finished_at),
        "retry_count": task.retry_count,
        "max_retries": task.max_retries,
        "timeout": task.timeout,
        "run_at": iso(task.run_at),
        "result": task.result,
        "error": None if error is None else {"type": error.type, "message": error.message},
        "progress": (
            None
            if progress is None
            else {"fraction": progress.fraction, "message": progress.message}
        ),
        "attempts": task.attempts,
        "worker": task.worker,
        "key": task.key,
        "headers": None if task.headers is None else dict(task.headers),
        "history": [
            {"status": str(state), "at": iso(at), "worker": worker, "error": error}
            for state, at, worker, error in task.history
        ],
    }
