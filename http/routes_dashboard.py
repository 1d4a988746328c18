"""The dashboard at `/`: its page and files (package data, no build step, no CDN), and the two
small routes it needs besides the task API: who the caller is, and the supervision tree.

The page and its files are public (the page asks for a token when the API wants one); every
call the page makes goes through the API's own auth and tenancy.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import msgspec
import trio
from quart import Blueprint, Response
from quart_schema import document_response, hide
from werkzeug.exceptions import NotFound

from .auth import ANONYMOUS, principal, require_admin
from .reply import json_response
from .service import service

DASHBOARD = Path(__file__).with_name("dashboard")
FILES = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
# The page is small and changes with the package: revalidate rather than cache for long.
CACHING = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

dashboard_routes = Blueprint("dashboard", __name__)


class MeOut(msgspec.Struct):
    auth: bool  # whether the server requires tokens
    subject: str
    admin: bool


class ActorOut(msgspec.Struct):
    path: str
    name: str
    state: str
    restarts: int
    last_error: str | None


class TreeOut(msgspec.Struct):
    actors: list[ActorOut]


@dashboard_routes.get("/")
@hide
async def page() -> Response:
    """The dashboard page."""
    return await _file("index.html")


@dashboard_routes.get("/dashboard/<name>")
@hide
async def asset(name: str) -> Response:
    return await _file(name)


async def _file(name: str) -> Response:
    content_type = FILES.get(name)
    if content_type is None:
        raise NotFound(f"no dashboard file {name!r}")
    body = await trio.Path(DASHBOARD / name).read_bytes()
    return Response(body, content_type=content_type, headers=CACHING)


@dashboard_routes.get("/api/v1/me")
@document_response(MeOut)
async def me() -> Response:
    """Who the caller is: its token's subject and whether it is an admin."""
    who = principal()
    answer = {"auth": who is not ANONYMOUS, "subject": who.subject, "admin": who.admin}
    return json_response(answer)


@dashboard_routes.get("/api/v1/tree")
@document_response(TreeOut)
async def tree() -> Response:
    """The engine's supervision tree: each actor's path, state and restarts (admin only)."""
    require_admin()
    with service().deadline():
        actors = await service().engine.tree()
    return json_response({"actors": [attrs.asdict(actor) for actor in actors]})
