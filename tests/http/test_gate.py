"""The gateway in front of Quart: what it does beyond the policies' own rules."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from oncue.actors import Engine
from oncue.http import gate
from oncue.http.app import create_app


async def test_a_failing_policy_is_a_json_500_logged_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(gate, "caller", broken)
    async with create_app(engine).test_app() as app:
        response = await app.test_client().post("/api/v1/tasks", json={"type": "echo"})
    assert response.status_code == 500
    assert (await response.get_json())["error"] == {
        "code": "internal_error",
        "message": "internal server error",
    }
    unhandled = [r for r in caplog.records if r.getMessage().startswith("http.unhandled")]
    assert len(unhandled) == 1
    assert unhandled[0].levelno == logging.ERROR


@pytest.mark.parametrize("direct", [True, False])
async def test_paths_under_a_root_path_route_as_quart_routes_them(
    engine: Engine, direct: bool
) -> None:
    app = create_app(engine)
    if not direct:
        app.asgi_app.direct = {}  # type: ignore[attr-defined]
    async with app.test_app() as test_app:
        client: Client = test_app.test_client()
        body = {"type": "echo"}
        inside = await client.post("/q/api/v1/tasks", json=body, root_path="/q")
        outside = await client.post("/api/v1/tasks", json=body, root_path="/q")
    assert inside.status_code == 201
    assert outside.status_code == 404
