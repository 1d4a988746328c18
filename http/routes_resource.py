"""How a task route is declared once and served under both names of the task resource
(`/api/v1/tasks` and its alias `/api/v1/jobs`): the `Resource` (where it lives, how a task
renders and is documented), the `Route` (method, rule, handler, OpenAPI models), and the one
lookup every handler of a single task starts with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from quart import Response
from quart_schema import document_querystring, document_request, document_response

from oncue.actors import Task, TaskState

from .models import TaskBatch, TaskList, TaskOut
from .reply import Reply
from .service import Service, service
from .tenancy import visible

# How a task renders: anything the JSON encoder takes (a `TaskOut`, a job's dict).
Render = Callable[[Task], Any]
# A submit route's work: (service, the caller's owner, the request body, render) -> the answer.
Accept = Callable[[Service, str | None, bytes, Render], Awaitable[Reply]]


@attrs.frozen
class Resource:
    """One name of the task resource: where it lives, how it renders and documents a task."""

    name: str
    prefix: str
    render: Render
    one: type = TaskOut
    page: type = TaskList
    batch: type = TaskBatch
    states: dict[str, TaskState] = attrs.field(factory=lambda: {s.value: s for s in TaskState})

    @property
    def plural(self) -> str:
        """The key of a list of them in an answer ("tasks", "jobs")."""
        return self.name


@attrs.frozen
class Route:
    """A task route: `handler(resource, **path)` answers; `responses` documents it.

    A response model given by name ("one", "page", "batch") is the resource's own.
    """

    method: str
    rule: str
    handler: Callable[..., Awaitable[Response]]
    responses: dict[int, type | str]
    body: type | None = None
    query: type | None = None
    accept: Accept | None = None  # a submit route's work, which the gateway may call directly

    def view(self, resource: Resource) -> Callable[..., Awaitable[Response]]:
        """The view function for `resource`, documented for the OpenAPI spec."""
        handler = self.handler

        async def view(**path: Any) -> Response:
            return await handler(resource, **path)

        view.__name__ = handler.__name__
        view.__doc__ = handler.__doc__
        for status, model in self.responses.items():
            shown = getattr(resource, model) if isinstance(model, str) else model
            view = document_response(shown, status)(view)
        if self.body is not None:
            view = document_request(self.body)(view)
        if self.query is not None:
            view = document_querystring(self.query)(view)
        return view


async def own_task(task_id: str) -> Task:
    """The task, if the caller may see it; 404 (TaskNotFound) for another tenant's task."""
    with service().deadline():
        task = await service().engine.get(task_id)
    return visible(task, task_id)
