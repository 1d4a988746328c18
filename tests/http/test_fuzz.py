"""Schemathesis against the app's own OpenAPI spec: no 500s, every answer matches the spec.

The server runs for real (engine + Hypercorn on loopback) in a thread with its own trio run;
schemathesis calls it with requests. Bounded and derandomized, so it is repeatable and quick.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from oncue.actors import open_engine
from oncue.http.app import create_app
from oncue.http.auth import AuthSettings, parse_api_tokens
from oncue.http.serve import serve

# Per operation (29 operations): about 40 s in all on this 2-core machine.
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}
# /api/v1/jobs runs the /api/v1/tasks code under other field names: fewer examples check those.
ALIAS_PREFIX = "/api/v1/jobs"
ALIAS_EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 4}
# Auth on, calls as a tenant without the admin scope: the tenancy checks are fuzzed too.
TOKENS = "fuzzer:fuzz-token"
HEADERS = {"Authorization": "Bearer fuzz-token"}
BOUND = 30.0  # seconds: a safety bound on start and stop, never a timing assertion
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


async def _run_server(ready: queue.Queue[tuple[int, trio.lowlevel.TrioToken, trio.Event]]) -> None:
    async with open_engine(workers=2, queue_size=100_000, grace=0) as engine:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            app = create_app(engine, auth=AuthSettings(api_tokens=parse_api_tokens(TOKENS)))
            port = await nursery.start(
                partial(serve, engine, "127.0.0.1", 0, app=app, shutdown=stop, log_tasks=False)
            )
            ready.put((port, trio.lowlevel.current_trio_token(), stop))


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    ready: queue.Queue[tuple[int, trio.lowlevel.TrioToken, trio.Event]] = queue.Queue()
    thread = threading.Thread(target=trio.run, args=(_run_server, ready), daemon=True)
    thread.start()
    port, token, stop = ready.get(timeout=BOUND)
    yield f"http://127.0.0.1:{port}"
    token.run_sync_soon(stop.set)
    thread.join(timeout=BOUND)
    assert not thread.is_alive()


def fuzz(operation: Any, mode: GenerationMode) -> None:
    """Run EXAMPLES generated requests against one operation; raises on the first failure.

    POSITIVE requests fit the spec; NEGATIVE ones break it on purpose (wrong types, out of
    range values): both must get a documented answer, never a 500.
    """

    examples = ALIAS_EXAMPLES if operation.path.startswith(ALIAS_PREFIX) else EXAMPLES

    @given(operation.as_strategy(mode))
    @settings(
        max_examples=examples[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, headers=HEADERS, timeout=BOUND)

    check()


@pytest.mark.timeout(180)
def test_api_answers_as_its_spec_says(base_url: str) -> None:
    api = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures = []
    operations = [result.ok() for result in api.get_all_operations()]
    # the event stream never ends: tests/http/test_events.py tests it
    operations = [operation for operation in operations if operation.path != "/api/v1/events"]
    assert len(operations) >= 29
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode)
            except Unsatisfiable:
                pass  # nothing in the spec to break: no negative request exists
            except Exception as error:
                failures.append(f"{operation.label} {mode}: {str(error)[:3000]}")
    assert not failures, "\n\n".join(failures)
    # The fuzzer's token is accepted (so its requests reached the routes, not just the 401).
    assert httpx.get(f"{base_url}/api/v1/tasks", headers=HEADERS, timeout=BOUND).is_success
