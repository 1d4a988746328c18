"""`oncue serve --store`: SQLite in the working directory by default; a bad URL fails at start."""

from __future__ import annotations

import pytest

from oncue.http.cli import build_parser, main


def test_serve_keeps_tasks_in_sqlite_by_default(monkeypatch) -> None:
    for name in ("ONCUE_STORE", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert build_parser().parse_args(["serve"]).store == "sqlite:///oncue.db"


def test_a_bad_store_url_fails_at_start_naming_the_accepted_forms(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--store", "mysql://db/tasks"])
    message = str(exit_info.value.code)
    assert message.startswith("oncue: --store: unsupported store URL 'mysql://db/tasks'")
    assert "accepted forms: memory://, sqlite:///" in message
    assert capsys.readouterr().out == ""  # nothing started, no banner


def test_retention_is_a_duration_or_forever(monkeypatch, capsys) -> None:
    monkeypatch.delenv("ONCUE_RETENTION", raising=False)
    parser = build_parser()
    assert parser.parse_args(["serve"]).retention == 7 * 86400
    assert parser.parse_args(["serve", "--retention", "12h"]).retention == 12 * 3600
    assert parser.parse_args(["serve", "--retention", "forever"]).retention is None
    monkeypatch.setenv("ONCUE_RETENTION", "90s")
    assert build_parser().parse_args(["serve"]).retention == 90
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--retention", "soon"])
    assert "argument --retention: a duration is" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "-1"], "--workers must be an int >= 0, got -1"),
        (["--queue-size", "0"], "--queue-size must be an int >= 1"),
        (["--port", "99999"], "--port must be a port from 0 to 65535"),
        (["--grace", "-5"], "--grace must be seconds >= 0"),
        (["--log-level", "nope"], "--log-level must be one of"),
    ],
)
def test_bad_serve_values_exit_with_a_usage_message(flags, message) -> None:
    from oncue.http.cli import main

    with pytest.raises(SystemExit) as raised:
        main(["serve", "--store", "memory://", *flags])
    assert message in str(raised.value.code)


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
