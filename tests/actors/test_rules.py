"""The rules a task's fields follow (actors/rules.py), and that the HTTP models use the same."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec
import pytest

from oncue.actors import InvalidField, Registry, Submission, TaskContext, open_engine
from oncue.actors.backends import rows
from oncue.actors.cores.admission import admit
from oncue.actors.cores.rules import (
    INT64_MAX,
    MAX_KEY_LENGTH,
    check_key,
    check_one_schedule,
    check_type_name,
    encode_payload,
)
from oncue.http.models import TaskIn


def task_in(**fields: Any) -> TaskIn:
    return msgspec.json.decode(msgspec.json.encode({"type": "mirror", **fields}), type=TaskIn)


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("key", "k" * MAX_KEY_LENGTH, "k" * (MAX_KEY_LENGTH + 1)),
        ("type", "a" * 100, "a" * 101),
        ("type", "a.b:c-d_e", "-starts-with-a-dash"),
        ("priority", INT64_MAX, INT64_MAX + 1),
    ],
)
def test_the_http_model_and_the_engine_refuse_the_same_values(
    field: str, good: Any, bad: Any
) -> None:
    engine_check = {
        "key": check_key,
        "type": check_type_name,
        "priority": lambda value: admit(
            registry(), Submission("mirror", priority=value), durable=False
        ),
    }[field]
    engine_check(good)
    task_in(**{field: good})
    with pytest.raises(InvalidField) as refused:
        engine_check(bad)
    assert refused.value.field == field
    with pytest.raises(msgspec.ValidationError, match=field):
        task_in(**{field: bad})


def test_delay_or_run_at_is_one_rule_naming_run_at() -> None:
    check_one_schedule(1.0, None)
    with pytest.raises(InvalidField, match="give delay or run_at, not both") as refused:
        check_one_schedule(1.0, 2.0)
    assert refused.value.field == "run_at"
    with pytest.raises(InvalidField, match="not both"):
        admit(registry(), Submission("mirror", delay=1.0, run_at=2.0), durable=False)


def test_a_payload_that_is_not_json_is_refused_for_a_durable_store() -> None:
    assert encode_payload({"a": [1, "é"]}) == '{"a":[1,"\\u00e9"]}'
    for bad in ({1, 2}, object()):
        with pytest.raises(InvalidField, match="payload must be a JSON value"):
            encode_payload(bad)
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(InvalidField):
        encode_payload(circular)


def registry() -> Registry:
    registry = Registry()

    @registry.task("mirror")
    async def echo(ctx: TaskContext, payload: Any) -> Any:
        return payload

    return registry


async def test_a_durable_submit_encodes_its_payload_once_and_commits_that_text(
    tmp_path, monkeypatch
) -> None:
    encoded: list[Any] = []
    dumps = rows.dumps

    def spy(value: Any) -> str:
        encoded.append(value)
        return dumps(value)

    monkeypatch.setattr(rows, "dumps", spy)
    payload = {"to": "ana", "n": [1, 2.5]}
    path = tmp_path / "tasks.db"
    async with open_engine(registry=registry(), store=f"sqlite:///{path}", workers=0) as engine:
        first = await engine.submit("mirror", payload)
        given = Submission("mirror", {"from": "http"}, payload_json='{"from": "http"}')
        (second,) = await engine.submit_many([given])
    assert payload not in encoded  # admission encoded it; the commit took that text
    with sqlite3.connect(path) as db:
        stored = dict(db.execute("SELECT id, payload FROM tasks"))
    assert stored[first.id] == '{"to":"ana","n":[1,2.5]}'
    assert stored[second.id] == '{"from": "http"}'  # the caller's own text, as it is
