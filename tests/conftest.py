"""Suite-wide configuration. (pytest-trio provides the ``autojump_clock`` fixture itself.)"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: builds a wheel or a venv (tens of seconds); CI runs it, -m 'not slow' skips it",
    )
