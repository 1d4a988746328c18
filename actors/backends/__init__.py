"""Where the store actor keeps tasks. Only the store actor calls a backend."""

from __future__ import annotations

from .base import Backend, Notice, SharedBackend, is_shared
from .factory import STORE_FORMS, open_backend

__all__ = ["STORE_FORMS", "Backend", "Notice", "SharedBackend", "is_shared", "open_backend"]
