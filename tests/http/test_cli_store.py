"""`oncue serve --store`: SQLite in the working directory by default; a bad URL fails at start."""

from __future__ import annotations

import pytest

from oncue.http.cli import main, parse_options


def test_serve_keeps_tasks_in_sqlite_by_default(monkeypatch) -> None:
    for name in ("ONCUE_STORE", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert parse_options(["serve"]).store == "sqlite:///oncue.db"


def test_a_bad_store_url_fails_at_start_naming_the_accepted_forms(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--store", "mysql://db/tasks"])
    message = str(exit_info.value.code)
    assert message.startswith("oncue: --store: unsupported store URL 'mysql://db/tasks'")
    assert "accepted forms: memory://, sqlite:///" in message
    assert capsys.readouterr().out == ""  # nothing started, no banner


def test_retention_is_a_duration_or_forever(monkeypatch, capsys) -> None:
    monkeypatch.delenv("ONCUE_RETENTION", raising=False)
    assert parse_options(["serve"]).retention == 7 * 86400
    assert parse_options(["serve", "--retention", "12h"]).retention == 12 * 3600
    assert parse_options(["serve", "--retention", "forever"]).retention is None
    monkeypatch.setenv("ONCUE_RETENTION", "90s")
    assert parse_options(["serve"]).retention == 90
    assert main(["serve", "--retention", "soon"]) == 2
    error = capsys.readouterr().err
    assert "Invalid value for '--retention'" in error
    grammar = "a number of seconds or parts like 500ms, 90s, 15m, 1.5h, 2d, 1h30m"
    assert f"a duration is {grammar}, got 'soon', or forever" in error


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "-1"], "Invalid value for '-w' / '--workers': -1 is not in the range x>=0"),
        (["--queue-size", "0"], "Invalid value for '--queue-size': 0 is not in the range x>=1"),
        (["--port", "99999"], "Invalid value for '-p' / '--port': 99999 is not in the range"),
        (["--grace", "-5"], "Invalid value for '--grace': a duration is a number of seconds or"),
        (["--log-level", "nope"], "Invalid value for '-l' / '--log-level': 'nope' is not one of"),
    ],
)
def test_bad_serve_values_are_usage_errors(flags, message, capsys) -> None:
    assert main(["serve", "--store", "memory://", *flags]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert error.startswith("Usage: oncue serve [OPTIONS]")


def test_a_store_another_live_process_holds_is_refused_in_one_line(tmp_path) -> None:
    from servers import Oncue, running_server

    store = f"sqlite:///{tmp_path}/one.db"
    with running_server(store=store, cwd=tmp_path):
        second = Oncue("serve", "--port", "0", "--store", store, cwd=tmp_path)
        try:
            assert second.wait() == 1
        finally:
            second.close()
    last = second.log.strip().splitlines()[-1]
    assert last.startswith("oncue: the SQLite database")
    assert "Traceback" not in second.log  # found before the engine starts: no crash
