"""`oncue serve`: the engine and the HTTP server in one trio nursery, with graceful shutdown.

The first SIGINT/SIGTERM drains: health turns 503, new submissions get 503, the engine gets
`--grace` seconds to finish running tasks, then Hypercorn stops (in-flight requests finish) and
the process exits 0. A second signal exits at once.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import trio

from oncue.actors import Registry, open_engine

from .app import create_app
from .auth import AuthSettings, environ_settings, is_loopback
from .limits import CorsPolicy, RateLimiter
from .logs import configure_logging
from .options import engine_options
from .process import (
    SIGNALS,
    bounded_exit,
    drain,
    load_registry,
    one_line_refusals,
    open_signal_watch,
    redact,
)
from .serve import serve
from .service import Service
from .startup import startup_errors, wait_for_store

logger = logging.getLogger("oncue.server")


def run_server(options: argparse.Namespace) -> int:
    """Run `oncue serve` until a signal has drained it; returns the exit code.

    Raises StartupError (one line) when it cannot start: the port is taken, the store did not
    answer within `--store-wait`, or its schema is newer than this oncue.
    """
    configure_logging(options.log_level, options.log_format)
    hardening = {
        "auth": auth_settings(options),
        "rate_limit": rate_limiter(options),
        "cors": CorsPolicy.parse(options.cors_origins) if options.cors_origins else None,
    }
    registry = load_registry(options.handlers, builtins=options.builtins)
    with one_line_refusals(), startup_errors(), bounded_exit():
        return trio.run(partial(_serve_until_signalled, options, registry, hardening))


def auth_settings(options: argparse.Namespace) -> AuthSettings:
    """The authentication to serve with; refuses (SystemExit) an open non-loopback bind."""
    try:
        auth = environ_settings(options.host)
    except ValueError as error:
        raise SystemExit(f"oncue: {error}") from None
    if not auth.enabled and not is_loopback(options.host) and not options.insecure_no_auth:
        raise SystemExit(
            f"oncue: refusing to serve on {options.host} without authentication: anyone who"
            " can reach it could run tasks. Set ONCUE_API_TOKENS or ONCUE_JWT_SECRET"
            " (docs/security.md), bind to 127.0.0.1, or pass --insecure-no-auth."
        )
    if not auth.enabled:
        logger.warning("server.auth_off host=%s", options.host)
    return auth


def rate_limiter(options: argparse.Namespace) -> RateLimiter | None:
    """The per-caller rate limit `--rate-limit` and `--rate-burst` ask for, if any."""
    if not options.rate_limit:
        return None
    burst = options.rate_burst or max(1, int(options.rate_limit * 2))
    try:
        return RateLimiter(options.rate_limit, burst)
    except ValueError as error:
        raise SystemExit(f"oncue: --rate-limit/--rate-burst: {error}") from None


async def _serve_until_signalled(
    options: argparse.Namespace, registry: Registry, hardening: dict[str, Any]
) -> int:
    # Catch SIGINT/SIGTERM from the first moment: one that comes while the engine starts
    # waits here and drains it as soon as it is up, instead of killing the process.
    with trio.open_signal_receiver(*SIGNALS) as signals:
        if not await wait_for_store(
            options.store, options.store_wait, signals, options.early_signals
        ):
            return 0
        return await _serve(options, registry, hardening, signals)


async def _serve(
    options: argparse.Namespace,
    registry: Registry,
    hardening: dict[str, Any],
    signals: AsyncIterator[int],
) -> int:
    async with (
        open_engine(
            registry=registry, queue_size=options.queue_size, **engine_options(options)
        ) as engine,
        open_signal_watch(signals, "server", options.early_signals) as signalled,
    ):
        app = create_app(
            engine,
            max_body_size=options.max_body_size,
            max_payload_size=options.max_payload_size,
            **hardening,
        )
        current: Service = app.extensions["oncue"]
        stop_http = trio.Event()
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(serve, engine, options.host, options.port, app=app, shutdown=stop_http)
            )
            _print_banner(app, options.host, port, registry, options)
            await signalled.wait()
            current.draining.set()
            await drain(engine, options.grace, "server")
            stop_http.set()
    logger.info("server.stopped")
    return 0


def _print_banner(
    app: object, host: str, port: int, registry: Registry, options: argparse.Namespace
) -> None:
    """Say where we listen and what we serve, like the Go server did."""
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    lines = [
        f"oncue listening on {base}",
        f"  workers={options.workers} queue_size={options.queue_size}"
        f" store={redact(options.store)}",
        f"  task types: {', '.join(registry.names())}",
        "  routes:",
    ]
    rules = sorted(
        (rule.rule, ",".join(sorted(rule.methods - {"HEAD", "OPTIONS"})))
        for rule in app.url_map.iter_rules()  # type: ignore[attr-defined]
        if rule.endpoint not in ("static", "swagger_assets")
    )
    lines += [f"    {methods:<7} {base}{path}" for path, methods in rules]
    print("\n".join(lines), flush=True)
