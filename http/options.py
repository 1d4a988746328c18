"""The options of `oncue serve` and `oncue worker`, each with its environment fallback.

Every option falls back to an environment variable: the `ONCUE_*` form first, then the name
the Go queues' READMEs used (PORT, WORKER_COUNT, QUEUE_SIZE, DATABASE_URL, REDIS_URL,
LOG_LEVEL). Only the standard library is imported here: `oncue` parses its arguments before
anything heavy loads.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

DEFAULT_STORE = "sqlite:///oncue.db"
DEFAULT_LEASE = 30.0
STORE_VARIABLES = ("ONCUE_STORE", "DATABASE_URL", "REDIS_URL")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


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


def add_store_option(parser: argparse.ArgumentParser, *, shared: bool) -> None:
    """`--store`; a `shared` one (for `worker`) has no default but the environment's."""
    if shared:
        default = env(*STORE_VARIABLES)
        where = "a store other nodes share: postgresql://... or redis://..."
    else:
        default = env(*STORE_VARIABLES, default=DEFAULT_STORE)
        where = (
            f"where tasks live (default {DEFAULT_STORE}, in the working directory;"
            " memory:// keeps nothing across restarts)"
        )
    parser.add_argument(
        "--store", metavar="URL", default=default, help=f"{where}; or {', '.join(STORE_VARIABLES)}"
    )


def add_number(
    parser: argparse.ArgumentParser,
    flag: str,
    convert: Callable[[str], Any],
    variables: tuple[str, ...],
    default: Any,
    **details: Any,
) -> None:
    """A numeric option whose default comes from the first of `variables` that is set."""
    default = env_number(convert, *variables, default=default)
    parser.add_argument(flag, type=convert, default=default, **details)


def add_engine_options(parser: argparse.ArgumentParser, *, lease: float | None) -> None:
    """The options of the engine itself, shared by `serve` and `worker`."""
    add_number(parser, "--workers", int, ("ONCUE_WORKERS", "ONCUE_WORKER_COUNT", "WORKER_COUNT"), 5)
    parser.add_argument(
        "--retention",
        metavar="DURATION",
        type=retention,
        default=env("ONCUE_RETENTION", default="7d"),
        help="how long finished tasks are kept before they are purged: 90s, 15m, 12h, 7d,"
        " or forever (default 7d)",
    )
    parser.add_argument(
        "--handlers",
        metavar="MODULE",
        default=env("ONCUE_HANDLERS"),
        help="a module with your task types: its `registry` (an oncue Registry), as celery -A",
    )
    parser.add_argument(
        "--no-builtins",
        dest="builtins",
        action="store_false",
        default=env("ONCUE_NO_BUILTINS") is None,
        help="serve only the task types of --handlers, not the built-ins (echo, sleep, double,"
        " email, ...); or ONCUE_NO_BUILTINS=1",
    )
    add_number(
        parser,
        "--lease",
        float,
        ("ONCUE_LEASE",),
        lease,
        metavar="SECONDS",
        help="on a shared store, how long a task this node claimed stays its own without a"
        f" heartbeat before another node may take it over (default {lease or DEFAULT_LEASE:g})",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        default=env("ONCUE_NODE"),
        help="on a shared store, this node's name (default host:pid:random). A stable name"
        " lets a node restarted in place take back at once what it held; never give two live"
        " nodes one name",
    )
    add_lifecycle_options(parser)


def add_lifecycle_options(parser: argparse.ArgumentParser) -> None:
    """How a long-running command stops and what it logs."""
    add_number(
        parser,
        "--grace",
        float,
        ("ONCUE_GRACE",),
        10.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, how long running tasks get to finish",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=env("ONCUE_LOG_FORMAT", default="text"),
    )
    parser.add_argument("--log-level", default=env("ONCUE_LOG_LEVEL", "LOG_LEVEL", default="INFO"))


def add_http_options(parser: argparse.ArgumentParser) -> None:
    """Where `serve` listens and how much it admits."""
    parser.add_argument("--host", default=env("ONCUE_HOST", default="127.0.0.1"))
    add_number(parser, "--port", int, ("ONCUE_PORT", "PORT"), 8080, help="0: a free one")
    add_number(
        parser,
        "--queue-size",
        int,
        ("ONCUE_QUEUE_SIZE", "QUEUE_SIZE"),
        1000,
        help="most unfinished tasks; more submissions get 429",
    )
    add_number(
        parser,
        "--max-body-size",
        int,
        ("ONCUE_MAX_BODY_SIZE",),
        1024 * 1024,
        help="bytes; larger request bodies get 413",
    )
    add_number(
        parser,
        "--max-payload-size",
        int,
        ("ONCUE_MAX_PAYLOAD_SIZE",),
        256 * 1024,
        help="bytes of a task's payload as JSON; larger ones get 413",
    )
    add_hardening_options(parser)


def add_hardening_options(parser: argparse.ArgumentParser) -> None:
    """Rate limits, CORS and the escape hatch from authentication."""
    add_number(
        parser,
        "--rate-limit",
        float,
        ("ONCUE_RATE_LIMIT",),
        0.0,
        metavar="PER_SECOND",
        help="requests per second per token (or client address); 0: unlimited",
    )
    add_number(
        parser,
        "--rate-burst",
        int,
        ("ONCUE_RATE_BURST",),
        0,
        help="requests a caller may make at once (default: twice the rate, at least 1)",
    )
    parser.add_argument(
        "--cors-origins",
        metavar="ORIGINS",
        default=env("ONCUE_CORS_ORIGINS"),
        help="comma-separated browser origins allowed to call the API, or *",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve on a non-loopback address without authentication (never on a network)",
    )


def check_options(options: argparse.Namespace) -> None:
    """Refuse, before anything starts, values that would fail later or mean nothing.

    Checks the options `options` has: `worker` has no port, queue size or HTTP limits.
    """
    rules: list[tuple[str, Callable[[Any], bool], str]] = [
        ("--port", lambda port: 0 <= port <= 65535, "a port from 0 to 65535"),
        ("--workers", lambda count: count >= 0, "an int >= 0"),
        ("--queue-size", lambda size: size >= 1, "an int >= 1"),
        ("--grace", lambda seconds: seconds >= 0, "seconds >= 0"),
        ("--lease", lambda seconds: seconds is None or seconds > 0, "seconds > 0"),
        ("--max-body-size", lambda size: size >= 1, "bytes >= 1"),
        ("--max-payload-size", lambda size: size >= 1, "bytes >= 1"),
        ("--rate-limit", lambda rate: rate >= 0, "requests per second >= 0"),
        ("--rate-burst", lambda burst: burst >= 0, "an int >= 0"),
        ("--log-level", lambda level: level.lower() in LOG_LEVELS, f"one of {LOG_LEVELS}"),
    ]
    for flag, good, expected in rules:
        name = flag[2:].replace("-", "_")
        if hasattr(options, name) and not good(getattr(options, name)):
            raise SystemExit(f"oncue: {flag} must be {expected}, got {getattr(options, name)!r}")


def check_store(url: str) -> None:
    """Refuse a store URL `open_backend` cannot parse (it connects to nothing yet)."""
    from oncue.actors import open_backend

    try:
        open_backend(url)
    except ValueError as error:
        raise SystemExit(f"oncue: --store: {error}") from None


def engine_options(options: argparse.Namespace) -> dict[str, Any]:
    """The keywords of `open_engine` that `serve` and `worker` options set."""
    keywords: dict[str, Any] = {
        "workers": options.workers,
        "store": options.store,
        "retention": options.retention,
    }
    if options.lease is not None:  # serve leaves it to the engine unless asked
        keywords["lease"] = options.lease
    if options.node:
        keywords["node"] = options.node
    return keywords
