"""The `oncue` command: `oncue serve`, and client commands for a running server.

Every `serve` option falls back to an environment variable: the `ONCUE_*` form first, then
the name the Go queues' READMEs used (PORT, WORKER_COUNT, QUEUE_SIZE, DATABASE_URL,
REDIS_URL, LOG_LEVEL).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .client import add_client_commands

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_STORE = "sqlite:///oncue.db"


def env(*names: str, default: str | None = None) -> str | None:
    """The first of `names` set (and not empty) in the environment, or `default`."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def env_number(convert: Callable[[str], Any], *names: str, default: Any) -> Any:
    """A number from the environment; a bad value is a usage error naming the variable."""
    for name in names:
        value = os.environ.get(name)
        if value:
            try:
                return convert(value)
            except ValueError:
                raise SystemExit(f"oncue: {name} must be a number, got {value!r}") from None
    return default


def retention(text: str) -> float | None:
    """`--retention`: a duration (`7d`) in seconds, or None for `forever`."""
    from .auth import parse_duration

    if text.strip().lower() == "forever":
        return None
    try:
        return float(parse_duration(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}, or forever") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every `oncue` command."""
    parser = argparse.ArgumentParser(
        prog="oncue", description="A task queue built as a Trio actor system."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the HTTP server and the engine")
    serve.add_argument("--host", default=env("ONCUE_HOST", default="127.0.0.1"))
    serve.add_argument(
        "--port", type=int, default=env_number(int, "ONCUE_PORT", "PORT", default=8080)
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=env_number(int, "ONCUE_WORKERS", "ONCUE_WORKER_COUNT", "WORKER_COUNT", default=5),
    )
    serve.add_argument(
        "--queue-size",
        type=int,
        default=env_number(int, "ONCUE_QUEUE_SIZE", "QUEUE_SIZE", default=1000),
        help="most unfinished tasks; more submissions get 429",
    )
    serve.add_argument(
        "--store",
        metavar="URL",
        default=env("ONCUE_STORE", "DATABASE_URL", "REDIS_URL", default=DEFAULT_STORE),
        help=f"where tasks live (default {DEFAULT_STORE}, in the working directory;"
        " memory:// keeps nothing across restarts)",
    )
    serve.add_argument(
        "--retention",
        metavar="DURATION",
        type=retention,
        default=env("ONCUE_RETENTION", default="7d"),
        help="how long finished tasks are kept before they are purged: 90s, 15m, 12h, 7d,"
        " or forever (default 7d)",
    )
    serve.add_argument(
        "--handlers",
        metavar="MODULE",
        default=env("ONCUE_HANDLERS"),
        help="a module with your task types: its `registry` (an oncue Registry), as celery -A",
    )
    serve.add_argument(
        "--grace",
        metavar="SECONDS",
        type=float,
        default=env_number(float, "ONCUE_GRACE", default=10.0),
        help="on SIGINT/SIGTERM, how long running tasks get to finish",
    )
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=env("ONCUE_LOG_FORMAT", default="text"),
    )
    serve.add_argument("--log-level", default=env("ONCUE_LOG_LEVEL", "LOG_LEVEL", default="INFO"))
    serve.add_argument(
        "--max-body-size",
        type=int,
        default=env_number(int, "ONCUE_MAX_BODY_SIZE", default=1024 * 1024),
        help="bytes; larger request bodies get 413",
    )
    serve.add_argument(
        "--max-payload-size",
        type=int,
        default=env_number(int, "ONCUE_MAX_PAYLOAD_SIZE", default=256 * 1024),
        help="bytes of a task's payload as JSON; larger ones get 413",
    )
    serve.add_argument(
        "--rate-limit",
        metavar="PER_SECOND",
        type=float,
        default=env_number(float, "ONCUE_RATE_LIMIT", default=0.0),
        help="requests per second per token (or client address); 0: unlimited",
    )
    serve.add_argument(
        "--rate-burst",
        type=int,
        default=env_number(int, "ONCUE_RATE_BURST", default=0),
        help="requests a caller may make at once (default: twice the rate, at least 1)",
    )
    serve.add_argument(
        "--cors-origins",
        metavar="ORIGINS",
        default=env("ONCUE_CORS_ORIGINS"),
        help="comma-separated browser origins allowed to call the API, or *",
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve on a non-loopback address without authentication (never on a network)",
    )
    serve.set_defaults(run=_run_serve)
    add_client_commands(commands, env("ONCUE_URL") or DEFAULT_URL)
    _add_token_command(commands)
    return parser


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
    from oncue.actors import open_backend

    from .server import run_server

    try:
        open_backend(options.store)  # only parses the URL: a bad one fails here, not mid-start
    except ValueError as error:
        raise SystemExit(f"oncue: --store: {error}") from None
    check_serve_options(options)
    return run_server(options)


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def check_serve_options(options: argparse.Namespace) -> None:
    """Refuse, before anything starts, values that would fail later or mean nothing."""
    rules = [
        ("--port", 0 <= options.port <= 65535, "a port from 0 to 65535"),
        ("--workers", options.workers >= 0, "an int >= 0"),
        ("--queue-size", options.queue_size >= 1, "an int >= 1"),
        ("--grace", options.grace >= 0, "seconds >= 0"),
        ("--max-body-size", options.max_body_size >= 1, "bytes >= 1"),
        ("--max-payload-size", options.max_payload_size >= 1, "bytes >= 1"),
        ("--rate-limit", options.rate_limit >= 0, "requests per second >= 0"),
        ("--rate-burst", options.rate_burst >= 0, "an int >= 0"),
        ("--log-level", options.log_level.lower() in LOG_LEVELS, f"one of {LOG_LEVELS}"),
    ]
    for flag, good, expected in rules:
        if not good:
            value = getattr(options, flag[2:].replace("-", "_"))
            raise SystemExit(f"oncue: {flag} must be {expected}, got {value!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `oncue` console script; returns the exit code."""
    options = build_parser().parse_args(argv)
    code: int = options.run(options)
    return code


if __name__ == "__main__":
    sys.exit(main())
