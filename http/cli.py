"""The `oncue` command (click): `serve`, `worker`, `token create`, and the client commands.

The options of serve and worker are declared in options_node.py and options_http.py, with
their environment fallbacks (options.py); the commands that talk to a running server are in
cli_client.py. Exit codes: 0 success, 1 an error (one line on stderr), 2 a usage error
(click's), 3 a task waited for ended failed or cancelled (docs/http.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click

from .cli_client import client_commands
from .options import Decorator, Duration, env, namespace
from .options_http import health_flags, http_flags
from .options_node import DEFAULT_LEASE, engine_flags, store_flag, store_wait_flag
from .refusals import StartupError

EARLY_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # process.SIGNALS, without importing trio
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _version() -> str:
    try:
        return version("oncue")
    except PackageNotFoundError:
        return "0+unknown"


@click.group(context_settings=CONTEXT)
@click.version_option(_version(), "--version", prog_name="oncue", message="%(prog)s %(version)s")
@click.pass_context
def cli(context: click.Context) -> None:
    """A task queue built as a Trio actor system."""
    context.ensure_object(dict).setdefault("early_signals", [])


def _with(flags: list[Decorator]) -> Decorator:
    def apply(function: Callable[..., Any]) -> Callable[..., Any]:
        for flag in reversed(flags):
            function = flag(function)
        return function

    return apply


@cli.command()
@_with([store_flag(shared=False), store_wait_flag(), *http_flags(), *engine_flags(lease=None)])
@click.pass_context
def serve(context: click.Context, /, **params: Any) -> int:
    """Run the HTTP server and the engine.

    SIGINT/SIGTERM drains within --grace, then exits 0; a second signal exits at once.
    """
    from .options import check_options, check_store
    from .server import run_server

    options = namespace(params, context.obj["early_signals"])
    check_store(options.store)
    check_options(options)
    return run_server(options)


@cli.command()
@_with(
    [
        store_flag(shared=True),
        store_wait_flag(),
        *engine_flags(lease=DEFAULT_LEASE),
        *health_flags(),
    ]
)
@click.pass_context
def worker(context: click.Context, /, **params: Any) -> int:
    """Run tasks from a store shared with other nodes (no HTTP)."""
    from .worker_node import run_worker

    return run_worker(namespace(params, context.obj["early_signals"]))


@cli.group()
def token() -> None:
    """Mint bearer tokens (JWTs) for the HTTP API."""


@token.command()
@click.option("--sub", required=True, help="the subject: who the token is for")
@click.option(
    "--ttl", type=Duration(), default="1h", show_default=True, help="how long it is valid"
)
@click.option("--admin", is_flag=True, help="grant the admin scope")
def create(sub: str, ttl: float, admin: bool) -> int:
    """Print an HS256 JWT signed with ONCUE_JWT_SECRET (or JWT_SECRET)."""
    from .auth import mint_token

    secret = env("ONCUE_JWT_SECRET", "JWT_SECRET")
    if secret is None:
        raise SystemExit("oncue: set ONCUE_JWT_SECRET (the server's) to mint a token")
    try:
        issuer, audience = env("ONCUE_JWT_ISSUER"), env("ONCUE_JWT_AUDIENCE")
        print(mint_token(secret, sub, int(ttl), admin=admin, issuer=issuer, audience=audience))
    except ValueError as error:
        raise SystemExit(f"oncue: {error}") from None
    return 0


for command in client_commands():
    cli.add_command(command)


def parse_options(argv: Sequence[str]) -> argparse.Namespace:
    """What `oncue serve ...` or `oncue worker ...` would run with (click's usage errors)."""
    name, *rest = argv
    assert name in ("serve", "worker"), name
    with cli.commands[name].make_context(f"oncue {name}", rest) as context:
        return namespace(context.params, [])


def catch_early_signals() -> list[int]:
    """From now on, record SIGINT/SIGTERM instead of dying; returns the list they go to.

    The console script calls this before anything heavy is imported, so a signal that comes
    while Python loads trio, Quart and Hypercorn is not the default death (exit 143): the
    serve loop takes the recorded ones as if it had received them itself, and drains.
    """
    received: list[int] = []
    for signum in EARLY_SIGNALS:
        signal.signal(signum, lambda number, frame: received.append(number))
    return received


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `oncue` console script and `python -m oncue`; the exit code.

    Run as the console script (`argv` None), `serve` and `worker` catch SIGINT/SIGTERM first.
    An error a command raises for the user (SystemExit with a message, an OncueError) is one
    line on stderr and exit 1; click's usage errors exit 2.
    """
    early: list[int] = []
    if argv is None and sys.argv[1:2] in (["serve"], ["worker"]):
        early = catch_early_signals()  # not for client commands: Ctrl-C must stop those
    try:
        code = cli.main(
            args=argv, prog_name="oncue", standalone_mode=False, obj={"early_signals": early}
        )
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:  # Ctrl-C in a client command
        print("oncue: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except StartupError as error:  # serve/worker could not start: the reason, in one line
        print(f"oncue: {error}", file=sys.stderr, flush=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
