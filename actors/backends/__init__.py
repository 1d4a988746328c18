"""Where the store actor keeps tasks. Only the store actor calls a backend."""

from __future__ import annotations

from .base import Backend, open_backend

__all__ = ["Backend", "open_backend"]
