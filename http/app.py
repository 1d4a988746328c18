"""`create_app(engine)`: the Quart-Trio app that puts an engine on HTTP.

The app holds no tasks of its own: the engine runs in the caller's nursery, and `serve()`
runs Hypercorn beside it. Everything routes need lives on `Service` (service.py).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import trio
from quart import Response, current_app
from quart_schema import QuartSchema, hide
from quart_trio import QuartTrio
from werkzeug.exceptions import NotFound

from oncue.actors import Engine

from .auth import AuthSettings
from .direct import submit_routes
from .errors import register_error_handlers
from .follow import TaskLog
from .gate import Policies, install_gateway
from .hub import EventHub
from .limits import CorsPolicy, RateLimiter
from .metrics import Metrics
from .openapi import SWAGGER_ASSETS, ServiceOpenAPI, docs_page
from .routes_bulk import bulk_routes
from .routes_compat import compat
from .routes_dashboard import dashboard_routes
from .routes_events import StreamSettings, events_doc, events_routes
from .routes_service import service_routes
from .routes_tasks import jobs, tasks
from .service import DEFAULT_MAX_PAYLOAD, DEFAULT_STORE_DEADLINE, Service

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_BATCH_LIMIT = 1000


def create_app(
    engine: Engine,
    *,
    max_body_size: int = DEFAULT_MAX_BODY,
    batch_limit: int = DEFAULT_BATCH_LIMIT,
    max_payload_size: int = DEFAULT_MAX_PAYLOAD,
    store_deadline: float = DEFAULT_STORE_DEADLINE,
    auth: AuthSettings | None = None,
    rate_limit: RateLimiter | None = None,
    cors: CorsPolicy | None = None,
    events: StreamSettings | None = None,
) -> QuartTrio:
    """Build the HTTP app for `engine` (which the caller runs, e.g. with `open_engine`).

    Every request passes the gateway (gate.py) in front of Quart, which applies `auth`,
    `rate_limit`, `cors`, the metrics and the access log, and answers the submit routes itself
    (direct.py); the rest go on to Quart.

    Args:
        engine: the engine every route talks to.
        max_body_size: requests with a larger body get 413 (fixed here: the direct routes read
            it, and Quart's BODY_TIMEOUT, once; a later app.config change reaches Quart only).
        batch_limit: the most tasks one `POST /api/v1/tasks/batch` may hold.
        max_payload_size: a task whose payload is larger as JSON gets 413 naming it.
        store_deadline: seconds a route waits for the engine before answering 503.
        auth: bearer-token authentication (docs/security.md); None or empty: off.
        rate_limit: requests per second per token (or client address); None: unlimited.
        cors: the browser origins allowed to call the API; None: no CORS headers.
        events: the bounds of `GET /api/v1/events` streams (heartbeat, buffer, write timeout).
    """
    app = QuartTrio(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max_body_size
    # Nothing runs as a Quart background task (the engine lives in our nursery): don't wait.
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 0
    current = Service(engine, Metrics(), batch_limit, max_payload_size, store_deadline)
    app.extensions["oncue"] = current
    QuartSchema(
        app,
        info={"title": "oncue", "version": "0.1.0", "description": "A task queue on trio"},
        openapi_path="/openapi.json",
        swagger_ui_path=None,  # our own page (openapi.py): a doctype and a favicon
        redoc_ui_path=None,
        scalar_ui_path=None,
        conversion_preference="msgspec",
        openapi_provider_class=ServiceOpenAPI,
    )
    register_error_handlers(app)
    app.before_serving(_run_hub)
    policies = Policies(current.metrics, auth or AuthSettings(), rate_limit, cors)
    direct = submit_routes(current, max_body_size, app.config["BODY_TIMEOUT"])
    hub = EventHub(engine)
    app.extensions["oncue.hub"] = hub
    direct.update(events_routes(current, events or StreamSettings(), hub))
    install_gateway(app, policies, direct)
    app.add_url_rule("/docs", "swagger_ui", docs_page)
    app.add_url_rule(f"{SWAGGER_ASSETS}/<path:name>", "swagger_assets", _swagger_asset)
    blueprints = (bulk_routes, tasks, jobs, service_routes, compat, events_doc, dashboard_routes)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app


async def _run_hub() -> None:
    """While the app is served: the sweeper of the engine calls' deadlines (service.py), and
    one subscription that feeds every event stream and the task log, held while one of them
    wants events (hub.py, follow.py)."""
    app: QuartTrio = current_app  # type: ignore[assignment]
    await app.nursery.start(app.extensions["oncue"].asks.run)  # the store deadline's sweeper
    hub: EventHub = app.extensions["oncue.hub"]
    if app.extensions["oncue"].log_tasks:  # serve(log_tasks=False): no task log at all
        log = TaskLog()
        hub.log, hub.log_wanted = log, log.wanted
    await app.nursery.start(hub.run)


def swagger_dist() -> Path:
    """The folder of Swagger UI's dist files, shipped by the flask-swagger-ui package.

    Found without importing the package (importing it would import its Flask blueprint).
    """
    spec = importlib.util.find_spec("flask_swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("flask-swagger-ui is not installed; it ships the /docs assets")
    return Path(next(iter(spec.submodule_search_locations))) / "dist"


@hide
async def _swagger_asset(name: str) -> Response:
    content_type = _SWAGGER_FILES.get(name)
    if content_type is None:
        raise NotFound(f"no documentation asset {name!r}")
    body = await trio.Path(swagger_dist() / name).read_bytes()
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(body, content_type=content_type, headers=headers)


_SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-16x16.png": "image/png",
    "favicon-32x32.png": "image/png",
}
