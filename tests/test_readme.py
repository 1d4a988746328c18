"""The README's snippets run as shown, and it answers what a new user asks first."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import trio

from oncue.actors import open_engine
from oncue.http.process import load_registry

README = (Path(__file__).parents[1] / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def block_with(text: str) -> str:
    (block,) = [block for block in PYTHON_BLOCKS if text in block]
    return block


def test_the_first_command_says_how_to_change_the_port() -> None:
    start = README.index(".venv/bin/oncue serve")
    nearby = README[start : start + 800]
    assert "--port" in nearby
    assert "`PORT=" in nearby


def test_the_handlers_module_example_serves_its_task(tmp_path, monkeypatch) -> None:
    module = block_with("# myapp/tasks.py")
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "tasks.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "myapp", raising=False)
    monkeypatch.delitem(sys.modules, "myapp.tasks", raising=False)
    registry = load_registry("myapp.tasks")

    async def run() -> object:
        async with open_engine(registry=registry, workers=1) as engine:
            task = await engine.submit("thumbnail", {"url": "https://example.com/a.png"})
            return (await engine.wait(task.id)).result

    assert trio.run(run) == {"url": "https://example.com/a.png", "size": 128}


def test_the_embedding_example_imports_retry_and_fatal_and_runs(capsys) -> None:
    snippet = block_with("open_engine(registry=registry")
    assert "raise oncue.Fatal(" in snippet
    assert "raise oncue.Retry(" in snippet
    exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.strip() == "{'width': 320}"


def test_the_embedding_example_links_the_whole_engine_api() -> None:
    after = README[README.index(block_with("open_engine(registry=registry")) :]
    follows = after[after.index("```") : after.index("```") + 400]
    assert "](docs/engine.md)" in follows
