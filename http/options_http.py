"""The options of what a node serves over HTTP: `oncue serve`'s API (where it listens, how
much it admits, who may call it) and `oncue worker`'s probes (/health, /metrics). Declared
with options.py's `option` (environment fallbacks shown in --help).
"""

from __future__ import annotations

import click

from .options import Decorator, option


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
