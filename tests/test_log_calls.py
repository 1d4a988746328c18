"""Every log call in oncue logs an event name and typed fields (`extra=`), not formatted text.

The formatter (http/logs.py) renders the fields as logfmt or JSON; text baked into the message
would reach JSON as one string again. A field named like a LogRecord attribute (`name`,
`process`, `message`...) makes the logging module raise at the call, so none may be used.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(REPO / "actors").rglob("*.py"), *(REPO / "http").rglob("*.py")])
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
EVENT = re.compile(r"[a-z_{}.]+\.[a-z_{}.]+")  # dotted names; {role} parts of f-strings allowed
RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def log_calls(path: Path) -> list[ast.Call]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value)
        if node.func.attr in LEVELS and "logger" in receiver.lower():
            calls.append(node)
    return calls


def event_text(call: ast.Call) -> str:
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    if isinstance(first, ast.JoinedStr):  # f"task.{state}": render the holes as {x}
        return "".join(
            part.value if isinstance(part, ast.Constant) else "{x}" for part in first.values
        )
    return ""


def test_the_scan_finds_the_log_calls() -> None:
    assert sum(len(log_calls(path)) for path in SOURCES) > 40


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO)))
def test_log_calls_name_an_event_and_pass_fields(path: Path) -> None:
    for call in log_calls(path):
        where = f"{path.relative_to(REPO)}:{call.lineno}"
        assert len(call.args) == 1, f"{where}: details go in extra=, not %-arguments"
        assert EVENT.fullmatch(event_text(call)), f"{where}: the message is one event name"
        extra = next((k.value for k in call.keywords if k.arg == "extra"), None)
        if isinstance(extra, ast.Dict):
            keys = {key.value for key in extra.keys if isinstance(key, ast.Constant)}
            assert not keys & RESERVED, f"{where}: {keys & RESERVED} are LogRecord attributes"
