"""The dashboard at `/`, in Debian's Chromium: what an operator sees and does.

Waits are Playwright's (it re-checks the page until the expectation holds, within BOUND): the
page is live through the event stream, so each expectation is met by an event, not a clock.
Screenshots land in tests/browser/screenshots/ (docs/dashboard.md shows one).
"""

from __future__ import annotations

from typing import Any

import httpx
from conftest import BOUND, SCREENSHOTS, Server
from playwright.sync_api import expect


def submit(server: Server, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{server.url}/api/v1/tasks", json=body, headers=headers, timeout=BOUND)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def task_row(page: Any, task: dict[str, Any]) -> Any:
    return page.locator(f'#tasks tbody tr[data-id="{task["id"]}"]')


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_the_page_loads_live_without_console_errors(server: Server, page: Any) -> None:
    page.goto(server.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#workers tbody tr")).to_have_count(2)
    expect(page.locator("#tree li").first).to_contain_text("store")
    assert page.errors == []


def test_a_submitted_task_appears_and_completes(server: Server, page: Any) -> None:
    page.goto(server.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    task = submit(server, {"type": "double", "payload": 21})
    row = task_row(page, task)
    expect(row.locator("td.status")).to_have_text("completed")
    row.click()
    expect(page.locator("#detail-result")).to_have_text("42")
    expect(page.locator("#detail-history li")).to_have_count(3)
    expect(page.locator("#detail-history li").nth(1)).to_contain_text("running on worker-")
    screenshot(page, "dashboard")
    assert page.errors == []


def test_cancel_from_the_page(server: Server, page: Any) -> None:
    page.goto(server.url + "/")
    task = submit(server, {"type": "hold"})
    row = task_row(page, task)
    expect(row.locator("td.status")).to_have_text("running")
    row.click()
    page.locator("#detail-cancel").click()
    expect(page.locator("#detail-status")).to_have_text("cancelled")
    expect(row.locator("td.status")).to_have_text("cancelled")
    status = httpx.get(f"{server.url}/api/v1/tasks/{task['id']}", timeout=BOUND).json()["status"]
    assert status == "cancelled"


def test_a_failed_tasks_traceback_is_shown(server: Server, page: Any) -> None:
    page.goto(server.url + "/")
    task = submit(server, {"type": "crash", "payload": "the payload"})
    row = task_row(page, task)
    expect(row.locator("td.status")).to_have_text("failed")
    row.click()
    error = page.locator("#detail-error")
    expect(error).to_contain_text("Fatal: crashed on purpose with 'the payload'")
    expect(error).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("#detail-history li").last).to_contain_text("failed")
    screenshot(page, "failed-task")


def test_retry_all_failed(server: Server, page: Any) -> None:
    failed = [submit(server, {"type": "crash", "payload": n}) for n in range(3)]
    page.goto(server.url + "/")
    for task in failed:
        expect(task_row(page, task).locator("td.status")).to_have_text("failed")
    page.once("dialog", lambda dialog: dialog.accept())  # "retry every task with status failed?"
    page.locator("#retry-failed").click()
    expect(page.locator("#bulk-result")).to_have_text("retry: 3 done, 0 changed meanwhile")
    for task in failed:
        shown = httpx.get(f"{server.url}/api/v1/tasks/{task['id']}", timeout=BOUND).json()
        assert [step["status"] for step in shown["history"]][:4] == [
            "pending",
            "running",
            "failed",
            "pending",
        ]


def test_the_token_prompt_when_auth_is_on(auth_server: Server, page: Any) -> None:
    page.goto(auth_server.url + "/")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    page.locator("#token-input").fill("token-a")
    page.locator("#token-form button").click()
    expect(page.locator("#who")).to_have_text("alice")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#pause")).to_be_hidden()  # admin-only controls
    expect(page.locator("#tree-panel")).to_be_hidden()
    mine = submit(auth_server, {"type": "double", "payload": 1}, "token-a")
    theirs = submit(auth_server, {"type": "double", "payload": 2}, "token-root")
    expect(task_row(page, mine).locator("td.status")).to_have_text("completed")
    expect(task_row(page, theirs)).to_have_count(0)  # another tenant's task
    page.locator("#logout").click()
    expect(dialog).to_be_visible()
    page.locator("#token-input").fill("token-root")
    page.locator("#token-form button").click()
    expect(page.locator("#who")).to_have_text("root (admin)")
    expect(page.locator("#pause")).to_be_visible()
    expect(task_row(page, theirs)).to_have_count(1)


def test_the_overview_shows_the_queue_by_priority(server: Server, page: Any) -> None:
    assert httpx.post(f"{server.url}/api/v1/queue/pause", timeout=BOUND).status_code == 200
    for priority in ("high", "high", "low", 7):
        submit(server, {"type": "double", "payload": 1, "priority": priority})
    page.goto(server.url + "/")
    rows = page.locator("#by-priority tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("7")  # highest first
    expect(page.locator('#by-priority tr[data-priority="2"] td.count')).to_have_text("2")
    expect(page.locator('#by-priority tr[data-priority="2"]')).to_contain_text("high (2)")
    expect(page.locator('#by-priority tr[data-priority="0"] td.count')).to_have_text("1")
    screenshot(page, "queue-by-priority")
    page.locator("#resume").click()  # the page reloads the statistics after it
    expect(page.locator("#by-priority tbody")).to_have_text("nothing waiting")
    assert page.errors == []
