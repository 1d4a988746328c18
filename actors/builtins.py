"""The built-in task types: echo, sleep, compute, process, fail, double, email (and its alias
email_send), image_resize, data_export, file_process (in file_tasks.py).

``register_builtins`` adds them to a registry: ``oncue serve`` does (unless ``--no-builtins``),
and so does ``open_engine()`` when given no registry."""

from __future__ import annotations

import logging
import os
import re
import smtplib
from email.message import EmailMessage
from typing import Any

import trio

from .errors import Fatal
from .file_tasks import data_export, file_process, image_resize
from .registry import Registry, TaskContext

logger = logging.getLogger(__name__)

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like "2s", "500ms", "1.5m"; Fatal if it is neither."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        return float(match[1]) * _UNITS[match[2]]
    raise Fatal(f"duration must be seconds or a string like '2s' or '500ms', got {value!r}")


async def echo(ctx: TaskContext, payload: Any) -> Any:
    """Return the payload unchanged."""
    return payload


async def sleep(ctx: TaskContext, payload: Any) -> dict[str, float]:
    """Sleep for the payload's seconds, or {"duration": "2s"}, reporting progress."""
    duration = parse_duration(payload.get("duration") if isinstance(payload, dict) else payload)
    steps = 10 if duration >= 1 else 1
    for step in range(steps):
        await trio.sleep(duration / steps)
        ctx.report_progress((step + 1) / steps)
    return {"slept": duration}


def compute(payload: Any) -> dict[str, int]:
    """CPU-bound: count the primes below payload (or {"n": ...}); runs in a worker process."""
    n = payload.get("n", 100_000) if isinstance(payload, dict) else payload
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 50_000_000:
        raise Fatal(f"compute needs an int n between 0 and 50,000,000, got {n!r}")
    sieve = bytearray([1]) * max(n, 2)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(n**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(range(i * i, n, i)))
    return {"n": n, "primes": sum(sieve[:n])}


async def process(ctx: TaskContext, payload: Any) -> dict[str, Any]:
    """Generic "process this data" (the Go READMEs' type): optional {"duration": "1s"} of
    simulated work, then a summary of what was processed."""
    if isinstance(payload, dict) and "duration" in payload:
        await trio.sleep(parse_duration(payload["duration"]))
    size = len(payload) if isinstance(payload, dict | list | str) else 1
    return {"processed": True, "items": size}


async def fail(ctx: TaskContext, payload: Any) -> None:
    """Always fail (with the payload's "message" if given): to try retries and dead letters."""
    message = payload.get("message") if isinstance(payload, dict) else None
    raise RuntimeError(message or f"task {ctx.task_id} failed on purpose (attempt {ctx.attempt})")


async def double(ctx: TaskContext, payload: Any) -> Any:
    """Return payload * 2, or {"result": n} -> n * 2 (the original Go queue's task)."""
    value = payload.get("result") if isinstance(payload, dict) else payload
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Fatal(f"double needs a number (or {{'result': number}}), got {payload!r}")
    return value * 2


RECIPIENT_FIELDS = ("to", "recipient", "recipients", "email")
BODY_FIELDS = ("body", "message", "text", "content")


def email_message(payload: Any) -> tuple[list[str], str, str]:
    """Recipients, subject and body from any seed's payload: {"to"|"recipient"|"recipients"|
    "email", "subject", "body"|"message"|"text"}, or a plain string (the body, no recipient).

    Fatal for any other shape: a retry would not make it valid.
    """
    if isinstance(payload, str):
        return [], "", payload
    if not isinstance(payload, dict):
        raise Fatal(
            'email needs a payload like {"to": "a@b.c", "subject": "...", "body": "..."}'
            f" (or a string, the body), got {type(payload).__name__}"
        )
    found: Any = next((payload[name] for name in RECIPIENT_FIELDS if name in payload), [])
    recipients = [found] if isinstance(found, str) else found
    if not isinstance(recipients, list) or not all(isinstance(to, str) for to in recipients):
        raise Fatal(f"email recipients must be a string or a list of strings, got {found!r}")
    body = next((payload[name] for name in BODY_FIELDS if name in payload), "")
    return recipients, str(payload.get("subject", "")), str(body)


def email(ctx: TaskContext, payload: Any) -> dict[str, Any]:
    """Send an email through SMTP if ONCUE_SMTP_HOST is set, else log a dry run.

    A payload without a recipient goes to ONCUE_EMAIL_TO when set; otherwise it is logged and
    its result says it was not sent (``"reason"``).
    """
    recipients, subject, body = email_message(payload)
    if not recipients and os.environ.get("ONCUE_EMAIL_TO"):
        recipients = [to.strip() for to in os.environ["ONCUE_EMAIL_TO"].split(",")]
    host = os.environ.get("ONCUE_SMTP_HOST")
    if not host or not recipients:
        shown = ", ".join(recipients) or "-"
        ctx.logger.info("email.dry_run to=%s subject=%r body=%r", shown, subject, body[:200])
        result: dict[str, Any] = {"sent": False, "dry_run": not host, "to": recipients}
        if host:
            result["reason"] = 'no recipient: give "to" or set ONCUE_EMAIL_TO'
        return result
    message = EmailMessage()
    message["From"] = os.environ.get("ONCUE_SMTP_FROM", "oncue@localhost")
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    port = int(os.environ.get("ONCUE_SMTP_PORT", "587"))
    with smtplib.SMTP(host, port, timeout=30) as client:
        if os.environ.get("ONCUE_SMTP_STARTTLS", "1") != "0":
            client.starttls()
        user = os.environ.get("ONCUE_SMTP_USER")
        if user:
            client.login(user, os.environ.get("ONCUE_SMTP_PASSWORD", ""))
        client.send_message(message)
    return {"sent": True, "to": recipients}


def register_builtins(registry: Registry) -> Registry:
    """Add the built-in task types to ``registry`` and return it; a name the registry already
    has keeps its own handler (yours win)."""
    for name, function, options in _BUILTINS:
        if name not in registry:
            registry.register(name, function, **options)
    return registry


_BUILTINS: tuple[tuple[str, Any, dict[str, Any]], ...] = (
    ("echo", echo, {}),
    ("sleep", sleep, {"timeout": 3600}),
    ("compute", compute, {"run_in": "process", "timeout": 60}),
    ("process", process, {"timeout": 300}),
    ("fail", fail, {"max_retries": 0}),
    ("double", double, {}),
    ("email", email, {"timeout": 60}),
    ("email_send", email, {"timeout": 60}),
    ("image_resize", image_resize, {"timeout": 60}),
    ("data_export", data_export, {"timeout": 60}),
    ("file_process", file_process, {"timeout": 60}),
)
