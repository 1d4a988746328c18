"""Picking a backend from a store URL."""

from __future__ import annotations

import importlib.util
from urllib.parse import parse_qs, urlsplit

from .base import Backend
from .memory import MemoryBackend
from .postgres import PostgresBackend
from .redis import RedisBackend
from .sqlite import SqliteBackend

STORE_FORMS = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db,"
    " postgresql://user@host:5432/database[?schema=name],"
    " redis://host:6379/0[?prefix=name]"
)


def open_backend(url: str) -> Backend:
    """Make the backend a store URL names; raises ValueError naming the accepted forms.

    ``memory://`` (``?max_finished=`` how many finished tasks it keeps, default 100,000);
    ``sqlite:///oncue.db`` (relative to the working directory) or
    ``sqlite:////var/lib/oncue.db`` (absolute), optionally ``?synchronous=full``;
    ``postgresql://...`` (a libpq URL; ``?schema=`` picks the schema, default public);
    ``redis://host:port/db`` (or ``rediss://``; ``?prefix=`` names the key prefix, default oncue).
    """
    if not isinstance(url, str):
        raise ValueError(f"store must be a URL string or a Backend, got {url!r}")
    if url in ("memory://", "memory:", "memory"):
        return MemoryBackend()
    parts = urlsplit(url)
    if parts.scheme == "memory" and parts.netloc == "" and parts.path == "":
        return _memory(url, parse_qs(parts.query))
    if parts.scheme == "sqlite" and parts.netloc == "" and len(parts.path) > 1:
        options = parse_qs(parts.query)
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ValueError(f"unknown sqlite store option(s) {sorted(unknown)} in {url!r}")
        synchronous = options.get("synchronous", ["normal"])[-1]
        return SqliteBackend(parts.path[1:], synchronous=synchronous)
    if parts.scheme in ("postgresql", "postgres"):
        return _postgres(url)
    if parts.scheme in ("redis", "rediss"):
        return _redis(url)
    raise ValueError(f"unsupported store URL {url!r}; accepted forms: {STORE_FORMS}")


def _memory(url: str, options: dict[str, list[str]]) -> Backend:
    unknown = set(options) - {"max_finished"}
    if unknown:
        raise ValueError(f"unknown memory store option(s) {sorted(unknown)} in {url!r}")
    kept = options.get("max_finished", [""])[-1]
    if not kept.isdigit():
        raise ValueError(f"max_finished must be an int >= 0, got {kept!r} in {url!r}")
    return MemoryBackend(max_finished=int(kept))


def _postgres(url: str) -> Backend:
    if (
        importlib.util.find_spec("psycopg") is None
        or importlib.util.find_spec("psycopg_pool") is None
    ):
        raise ValueError(
            "the postgresql store needs the postgres extra: pip install 'oncue[postgres]'"
        )
    return PostgresBackend(url)


def _redis(url: str) -> Backend:
    if importlib.util.find_spec("hiredis") is None:
        raise ValueError("the redis store needs the redis extra: pip install 'oncue[redis]'")
    return RedisBackend(url)
