"""The options both node commands (`oncue serve`, `oncue worker`) take: the store, the engine,
and how the process stops and logs. Declared with options.py's `option` (environment
fallbacks shown in --help).
"""

from __future__ import annotations

import click

from .options import LOG_LEVELS, Decorator, Duration, option

DEFAULT_STORE = "sqlite:///oncue.db"
DEFAULT_LEASE = 30.0
DEFAULT_STORE_WAIT = 30.0  # seconds `serve` and `worker` retry a store that is down at start
STORE_VARIABLES = ("ONCUE_STORE", "DATABASE_URL", "REDIS_URL")


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
