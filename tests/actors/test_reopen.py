"""An engine that died lets go of its store at once: the same process can open it again."""

from __future__ import annotations

import pytest

from oncue.actors import open_engine


class Died(Exception):
    pass


async def test_a_sqlite_file_reopens_right_after_its_engine_died(tmp_path, registry) -> None:
    store = f"sqlite:///{tmp_path}/t.db"
    with pytest.raises(Died):  # holds the traceback, and with it the dead engine's objects
        async with open_engine(registry=registry, store=store) as engine:
            task = await engine.submit("double", 21)
            raise Died
    async with open_engine(registry=registry, store=store) as engine:
        assert (await engine.wait(task.id)).result == 42


async def test_a_node_name_is_free_again_right_after_its_engine_died(
    postgres_store, registry
) -> None:
    with pytest.raises(Died):
        async with open_engine(registry=registry, store=postgres_store, node="n1") as engine:
            task = await engine.submit("double", 21)
            raise Died
    async with open_engine(registry=registry, store=postgres_store, node="n1") as engine:
        assert (await engine.wait(task.id)).result == 42
