"""The `oncue` command: `oncue serve`, `oncue worker`, and client commands for a server.

The options and their environment fallbacks are in options.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .options import (
    DEFAULT_LEASE,
    add_engine_options,
    add_http_options,
    add_store_option,
    check_options,
    check_store,
    env,
)

DEFAULT_URL = "http://127.0.0.1:8080"
EARLY_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # process.SIGNALS, without importing trio


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every `oncue` command."""
    from .client import add_client_commands

    parser = argparse.ArgumentParser(
        prog="oncue", description="A task queue built as a Trio actor system."
    )
    parser.set_defaults(early_signals=[])  # main() fills it in for the console script
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve_command(commands)
    _add_worker_command(commands)
    add_client_commands(commands, env("ONCUE_URL") or DEFAULT_URL)
    _add_token_command(commands)
    return parser


def _add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the HTTP server and the engine")
    add_http_options(serve)
    add_store_option(serve, shared=False)
    add_engine_options(serve, lease=None)
    serve.set_defaults(run=_run_serve)


def _add_worker_command(commands: Any) -> None:
    worker = commands.add_parser(
        "worker", help="run the engine without HTTP, on a store shared with other nodes"
    )
    add_store_option(worker, shared=True)
    add_engine_options(worker, lease=DEFAULT_LEASE)
    worker.set_defaults(run=_run_worker)


def _add_token_command(commands: Any) -> None:
    token = commands.add_parser("token", help="mint bearer tokens (JWTs) for the HTTP API")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="print an HS256 JWT signed with ONCUE_JWT_SECRET (or JWT_SECRET)"
    )
    create.add_argument("--sub", required=True, help="the subject: who the token is for")
    create.add_argument("--ttl", default="1h", help="how long it is valid: 90s, 15m, 1h, 7d")
    create.add_argument("--admin", action="store_true", help="grant the admin scope")
    create.set_defaults(run=_run_token_create)


def _run_token_create(options: argparse.Namespace) -> int:
    from .auth import mint_token, parse_duration

    secret = env("ONCUE_JWT_SECRET", "JWT_SECRET")
    if secret is None:
        raise SystemExit("oncue: set ONCUE_JWT_SECRET (the server's) to mint a token")
    try:
        ttl = parse_duration(options.ttl)
        token = mint_token(
            secret,
            options.sub,
            ttl,
            admin=options.admin,
            issuer=env("ONCUE_JWT_ISSUER"),
            audience=env("ONCUE_JWT_AUDIENCE"),
        )
    except ValueError as error:
        raise SystemExit(f"oncue: {error}") from None
    print(token)
    return 0


def _run_serve(options: argparse.Namespace) -> int:
    from .server import run_server

    check_store(options.store)
    check_options(options)
    return run_server(options)


def _run_worker(options: argparse.Namespace) -> int:
    from .worker_node import run_worker

    return run_worker(options)


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
    """Entry point of the `oncue` console script; returns the exit code.

    Run as the console script (`argv` None), `serve` and `worker` catch SIGINT/SIGTERM first.
    """
    early = None
    if argv is None and sys.argv[1:2] in (["serve"], ["worker"]):
        early = catch_early_signals()  # not for client commands: Ctrl-C must stop those
    options = build_parser().parse_args(argv)
    if early is not None:
        options.early_signals = early
    from .startup import StartupError

    try:
        code: int = options.run(options)
    except StartupError as error:  # the reason it could not start, in one line
        print(f"oncue: {error}", file=sys.stderr, flush=True)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
