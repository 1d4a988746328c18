"""The Backend interface, and picking one from a store URL."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from ..record import TaskRecord
from ..task import TaskState

STORE_FORMS = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db,"
    " postgresql://user@host:5432/database[?schema=name]"
)


class Backend(Protocol):
    """Storage for the store actor; every method is called from that one actor only.

    ``commit`` is one transaction: all of it lands or none does. Records handed to ``commit``
    may be mutated by the store afterwards; a backend that keeps them must copy what it needs.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def load_unfinished(self) -> list[TaskRecord]:
        """Every pending, running or retrying task, oldest first (recovery)."""
        ...

    async def last_number(self) -> int:
        """The highest task number ever given out (0 if none)."""
        ...

    async def commit(self, changed: Collection[TaskRecord], deleted: Collection[str]) -> None: ...

    async def get(self, task_id: str) -> TaskRecord | None: ...

    async def get_by_number(self, number: int) -> TaskRecord | None: ...

    async def find_key(self, key: str) -> TaskRecord | None: ...

    async def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        """Up to ``limit`` tasks numbered below ``before`` (if given), newest first."""
        ...

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        """How many tasks there are of each (type, state)."""
        ...

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        """Delete up to ``limit`` finished tasks whose ``finished_at`` (wall clock) is below
        ``before``, oldest first, in one transaction; returns how many of each (type, state)
        went, so the store keeps its counts without a full count."""
        ...


def open_backend(url: str) -> Backend:
    """Make the backend a store URL names; raises ValueError naming the accepted forms.

    ``memory://``; ``sqlite:///oncue.db`` (relative to the working directory) or
    ``sqlite:////var/lib/oncue.db`` (absolute), optionally ``?synchronous=full``;
    ``postgresql://...`` (a libpq URL; ``?schema=`` picks the schema, default public).
    """
    from urllib.parse import parse_qs, urlsplit

    from .memory import MemoryBackend
    from .sqlite import SqliteBackend

    if not isinstance(url, str):
        raise ValueError(f"store must be a URL string or a Backend, got {url!r}")
    if url in ("memory://", "memory:", "memory"):
        return MemoryBackend()
    parts = urlsplit(url)
    if parts.scheme == "sqlite" and parts.netloc == "" and len(parts.path) > 1:
        options = parse_qs(parts.query)
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ValueError(f"unknown sqlite store option(s) {sorted(unknown)} in {url!r}")
        synchronous = options.get("synchronous", ["normal"])[-1]
        return SqliteBackend(parts.path[1:], synchronous=synchronous)
    if parts.scheme in ("postgresql", "postgres"):
        return _postgres(url)
    raise ValueError(f"unsupported store URL {url!r}; accepted forms: {STORE_FORMS}")


def _postgres(url: str) -> Backend:
    from importlib.util import find_spec

    from .postgres import PostgresBackend

    if find_spec("psycopg") is None or find_spec("psycopg_pool") is None:
        raise ValueError(
            "the postgresql store needs the postgres extra: pip install 'oncue[postgres]'"
        )
    return PostgresBackend(url)
