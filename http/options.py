"""An option of `oncue serve` and `oncue worker`: its environment fallback, the duration type,
and the checks of the values parsed before anything starts.

Every option falls back to environment variables: the `ONCUE_*` form first, then the name the
Go queues' READMEs used (PORT, WORKER_COUNT, QUEUE_SIZE, DATABASE_URL, REDIS_URL, LOG_LEVEL).
`--help` lists them beside each option, with the default in effect: the one a variable sets,
naming it. The options themselves are declared in options_node.py (both commands) and
options_http.py (what each serves over HTTP). Only click and the standard library are
imported here: `oncue` parses its arguments before anything heavy loads.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import click

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
