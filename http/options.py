"""The options of `oncue serve` and `oncue worker`, each with its environment fallback.

Every option falls back to environment variables: the `ONCUE_*` form first, then the name the
Go queues' READMEs used (PORT, WORKER_COUNT, QUEUE_SIZE, DATABASE_URL, REDIS_URL, LOG_LEVEL).
`--help` lists them beside each option, with the default in effect: the one a variable sets,
naming it. Only click and the standard library are imported here: `oncue` parses its
arguments before anything heavy loads.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import click

DEFAULT_STORE = "sqlite:///oncue.db"
DEFAULT_LEASE = 30.0
DEFAULT_STORE_WAIT = 30.0  # seconds `serve` and `worker` retry a store that is down at start
STORE_VARIABLES = ("ONCUE_STORE", "DATABASE_URL", "REDIS_URL")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def env(*names: str, default: str | None = None) -> str | None:
    """The first of `names` set (and not empty) in the environment, or `default`."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


class EnvOption(click.Option):
    """An option whose `--help` shows the default in effect: a variable's value names it.

    A `secret` option's value is never shown, only which variable sets it.
    """

    def __init__(self, *args: Any, secret: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secret = secret

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        name = self.variable_set()
        if name is not None:
            from .process import redact  # a password in a store URL is not shown

            shown = "***" if self.secret else redact(os.environ[name])
            extra["default"] = f"{shown} (from {name})"
        return extra

    def get_error_hint(self, ctx: click.Context | None) -> str:
        """The option's flags; and the variable, when the bad value came from it."""
        hint = " / ".join(f"'{flag}'" for flag in self.opts)
        source = None if ctx is None or self.name is None else ctx.get_parameter_source(self.name)
        name = self.variable_set()
        if source is click.core.ParameterSource.ENVIRONMENT and name is not None:
            hint += f" (from {name})"
        return hint

    def variable_set(self) -> str | None:
        """The first of the option's environment variables that is set, if any."""
        names = [self.envvar] if isinstance(self.envvar, str) else list(self.envvar or ())
        return next((name for name in names if os.environ.get(name)), None)


def option(*declarations: str, variables: tuple[str, ...] = (), **details: Any) -> Decorator:
    """A click option with its environment variables (first set wins) and default shown."""
    details.setdefault("show_default", True)
    return click.option(
        *declarations,
        cls=EnvOption,
        envvar=list(variables) or None,
        show_envvar=bool(variables),
        **details,
    )


class Duration(click.ParamType[Any]):
    """Seconds as a number or a duration (90s, 15m, 12h, 7d); `forever` if allowed (None).

    Parsed by the one grammar (actors/duration_grammar.py); `positive` refuses zero.
    """

    name = "duration"

    def __init__(self, *, forever: bool = False, positive: bool = False) -> None:
        self.forever = forever
        self.positive = positive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None:
            return value
        text = str(value).strip()
        if self.forever and text.lower() == "forever":
            return None
        from oncue.actors.duration_grammar import parse_duration  # the one grammar

        try:
            seconds = parse_duration(value if isinstance(value, float | int) else text)
        except ValueError as error:
            self.fail(f"{error}{', or forever' if self.forever else ''}", param, ctx)
        if self.positive and seconds <= 0:
            self.fail(f"a duration > 0 is needed here, got {value!r}", param, ctx)
        return seconds


def store_flag(*, shared: bool) -> Decorator:
    """`--store`; a `shared` one (for `worker`) has no default but the environment's."""
    if shared:
        where = "a store other nodes share: postgresql://... or redis://..."
    else:
        where = "where tasks live (sqlite: in the working directory; memory:// keeps nothing)"
    return option(
        "--store",
        metavar="URL",
        default=None if shared else DEFAULT_STORE,
        variables=STORE_VARIABLES,
        help=where,
    )


def store_wait_flag() -> Decorator:
    """`--store-wait`: how long, at start, a store that does not answer is retried."""
    return option(
        "--store-wait",
        type=Duration(),
        default=DEFAULT_STORE_WAIT,
        metavar="DURATION",
        variables=("ONCUE_STORE_WAIT",),
        help="at start, how long to keep retrying a store that does not answer (a database"
        " still starting) before giving up with exit 1",
    )


def engine_flags(*, lease: float | None) -> list[Decorator]:
    """The options of the engine itself, shared by `serve` and `worker`."""
    workers = ("ONCUE_WORKERS", "ONCUE_WORKER_COUNT", "WORKER_COUNT")
    return [
        option(
            "-w",
            "--workers",
            type=click.IntRange(min=0),
            default=5,
            variables=workers,
            help="worker actors: tasks run at once",
        ),
        option(
            "--retention",
            type=Duration(forever=True),
            default="7d",
            variables=("ONCUE_RETENTION",),
            help="how long finished tasks are kept: 90s, 15m, 12h, 7d, or forever",
        ),
        option(
            "-A",
            "--handlers",
            metavar="MODULE[:ATTR]",
            variables=("ONCUE_HANDLERS",),
            help="a module with your task types: its `registry` (an oncue Registry), as celery -A",
        ),
        option(
            "--no-builtins",
            is_flag=True,
            variables=("ONCUE_NO_BUILTINS",),
            help="only the task types of --handlers, not the built-ins (echo, sleep, double,...)",
        ),
        option(
            "--lease",
            type=Duration(positive=True),
            default=lease,
            metavar="DURATION",
            variables=("ONCUE_LEASE",),
            help="on a shared store, how long a task this node claimed stays its own without a"
            f" heartbeat{'' if lease else f' (unset: the engine default, {DEFAULT_LEASE:g})'}",
        ),
        option(
            "--node",
            metavar="NAME",
            variables=("ONCUE_NODE",),
            help="on a shared store, this node's name (unset: host:pid:random); a stable name"
            " lets a node restarted in place take back at once what it held; never give two"
            " live nodes one name",
        ),
        *lifecycle_flags(),
    ]


def health_flags() -> list[Decorator]:
    """`oncue worker --health-port/--health-host`: /health and /metrics for probes (health.py)."""
    return [
        option(
            "--health-port",
            type=click.IntRange(0, 65535),
            default=None,
            metavar="PORT",
            variables=("ONCUE_HEALTH_PORT",),
            help="serve GET /health and GET /metrics on this port (unset: none; 0: a free one)",
        ),
        option(
            "--health-host",
            default="127.0.0.1",
            variables=("ONCUE_HEALTH_HOST",),
            help="the address /health and /metrics bind (0.0.0.0 in a container)",
        ),
    ]


def lifecycle_flags() -> list[Decorator]:
    """How a long-running command stops and what it logs."""
    return [
        option(
            "--grace",
            type=Duration(),
            default=10.0,
            metavar="DURATION",
            variables=("ONCUE_GRACE",),
            help="on SIGINT/SIGTERM, how long running tasks get to finish",
        ),
        option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default="text",
            variables=("ONCUE_LOG_FORMAT",),
            help="log lines on stderr: key=value text, or one JSON object each",
        ),
        option(
            "-l",
            "--log-level",
            type=click.Choice(LOG_LEVELS, case_sensitive=False),
            default="info",
            variables=("ONCUE_LOG_LEVEL", "LOG_LEVEL"),
            help="the least severe log lines shown",
        ),
    ]


def http_flags() -> list[Decorator]:
    """Where `serve` listens, how much it admits, and who may call it."""
    size = click.IntRange(min=1)
    return [
        option(
            "--host",
            default="127.0.0.1",
            variables=("ONCUE_HOST",),
            help="the address to listen on (another than loopback needs authentication)",
        ),
        option(
            "-p",
            "--port",
            type=click.IntRange(0, 65535),
            default=8080,
            variables=("ONCUE_PORT", "PORT"),
            help="0: a free one",
        ),
        option(
            "--queue-size",
            type=size,
            default=1000,
            variables=("ONCUE_QUEUE_SIZE", "QUEUE_SIZE"),
            help="most unfinished tasks; more submissions get 429",
        ),
        option(
            "--max-body-size",
            type=size,
            default=1024 * 1024,
            variables=("ONCUE_MAX_BODY_SIZE",),
            help="bytes; larger request bodies get 413",
        ),
        option(
            "--max-payload-size",
            type=size,
            default=256 * 1024,
            variables=("ONCUE_MAX_PAYLOAD_SIZE",),
            help="bytes of a task's payload as JSON; larger ones get 413",
        ),
        option(
            "--rate-limit",
            type=click.FloatRange(min=0),
            default=0.0,
            metavar="PER_SECOND",
            variables=("ONCUE_RATE_LIMIT",),
            help="requests per second per token (or client address); 0: unlimited",
        ),
        option(
            "--rate-burst",
            type=click.IntRange(min=0),
            default=0,
            variables=("ONCUE_RATE_BURST",),
            help="requests a caller may make at once (0: twice the rate, at least 1)",
        ),
        option(
            "--cors-origins",
            metavar="ORIGINS",
            variables=("ONCUE_CORS_ORIGINS",),
            help="comma-separated browser origins allowed to call the API, or *",
        ),
        option(
            "--insecure-no-auth",
            is_flag=True,
            help="serve on a non-loopback address without authentication (never on a network)",
        ),
    ]


def namespace(params: dict[str, Any], early_signals: list[int]) -> argparse.Namespace:
    """The options as `run_server` and `run_worker` take them."""
    values = dict(params)
    values["builtins"] = not values.pop("no_builtins", False)
    return argparse.Namespace(**values, early_signals=early_signals)


def check_options(options: argparse.Namespace) -> None:
    """Refuse, before anything starts, values that would fail later or mean nothing.

    The command line's types check them already; this guards callers that build `options`
    themselves. Checks the options `options` has: `worker` has no port or HTTP limits.
    """
    rules: list[tuple[str, Callable[[Any], bool], str]] = [
        ("--port", lambda port: 0 <= port <= 65535, "a port from 0 to 65535"),
        ("--workers", lambda count: count >= 0, "an int >= 0"),
        ("--queue-size", lambda size: size >= 1, "an int >= 1"),
        ("--grace", lambda seconds: seconds >= 0, "seconds >= 0"),
        ("--store-wait", lambda seconds: seconds >= 0, "seconds >= 0"),
        ("--lease", lambda seconds: seconds is None or seconds > 0, "seconds > 0"),
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
