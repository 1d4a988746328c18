"""A durable HTTP submit encodes its payload once: the size is measured from the JSON the store
then commits as it is."""

from __future__ import annotations

import sqlite3

from conftest import make_registry

from oncue.actors import open_engine
from oncue.http.app import create_app


async def test_a_durable_http_submit_commits_the_json_its_size_was_measured_from(
    tmp_path,
) -> None:
    path = tmp_path / "tasks.db"
    payload = {"name": "Zoë", "n": 1e16}
    store = f"sqlite:///{path}"
    async with open_engine(registry=make_registry(), store=store, workers=0) as engine:
        app = create_app(engine, max_body_size=64 * 1024, max_payload_size=30)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            created = await client.post("/api/v1/tasks", json={"type": "echo", "payload": payload})
            assert created.status_code == 201
            task_id = (await created.get_json())["id"]
            too_big = {"type": "echo", "payload": {"name": "Zoë" * 10}}
            refused = await client.post("/api/v1/tasks", json=too_big)
            assert refused.status_code == 413
    with sqlite3.connect(path) as db:
        (stored,) = db.execute("SELECT payload FROM tasks WHERE id = ?", (task_id,)).fetchone()
    # msgspec's JSON, the bytes the limit counted (json.dumps would write "Zo\u00eb", 1e+16)
    assert stored == '{"name":"Zoë","n":1e16}'
    assert len(stored.encode()) <= 30
