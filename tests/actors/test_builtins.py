"""The built-in task types, with the payloads the seed queues' READMEs show."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from oncue.actors import Fatal, Registry, TaskState, open_engine
from oncue.actors.builtins import email, register_builtins
from oncue.actors.file_tasks import data_export, file_process, image_resize
from oncue.actors.registry import TaskContext


def context() -> TaskContext:
    return TaskContext("t-1", "test", 1, "worker-1", lambda *args: None)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "red").save(out, format="PNG")
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int, str | None]:
    with Image.open(io.BytesIO(data)) as image:
        return image.width, image.height, image.format


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ONCUE_FILES_DIR set to a fresh folder."""
    monkeypatch.setenv("ONCUE_FILES_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(autouse=True)
def no_smtp_no_files(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONCUE_SMTP_HOST", "ONCUE_EMAIL_TO", "ONCUE_FILES_DIR"):
        monkeypatch.delenv(name, raising=False)


# -- email: each seed's payload shape -------------------------------------------------------


async def test_every_seeds_email_payload_completes() -> None:
    registry = register_builtins(Registry())
    payloads = [
        "Send notification",  # the REST task queue
        {"recipient": "ops@example.com", "subject": "Welcome"},  # the Go Task Queue
        {"to": "a@example.com", "subject": "hi", "body": "text"},
    ]
    async with open_engine(registry=registry, workers=2) as engine:
        tasks = [
            await engine.submit(kind, payload)
            for kind in ("email", "email_send")
            for payload in payloads
        ]
        done = [await engine.wait(task.id) for task in tasks]
    assert {task.state for task in done} == {TaskState.COMPLETED}
    assert [task.result["to"] for task in done[:3]] == [[], ["ops@example.com"], ["a@example.com"]]


def test_email_reads_the_body_from_message_and_refuses_a_number() -> None:
    result = email(context(), {"email": ["a@x.org", "b@x.org"], "message": "hello"})
    assert result == {"sent": False, "dry_run": True, "to": ["a@x.org", "b@x.org"]}
    with pytest.raises(Fatal, match="email needs a payload like"):
        email(context(), 42)


def test_an_email_without_recipient_goes_to_oncue_email_to(monkeypatch) -> None:
    monkeypatch.setenv("ONCUE_EMAIL_TO", "ops@example.com")
    assert email(context(), "Send notification")["to"] == ["ops@example.com"]


# -- image_resize -----------------------------------------------------------------------------


def test_image_resize_resizes_a_base64_image_and_keeps_the_aspect_ratio() -> None:
    encoded = base64.b64encode(png(80, 40)).decode()
    result = image_resize(context(), {"image": encoded, "width": 20})
    assert (result["width"], result["height"], result["format"]) == (20, 10, "PNG")
    assert size_of(base64.b64decode(result["image"])) == (20, 10, "PNG")
    data_url = f"data:image/png;base64,{encoded}"
    result = image_resize(context(), {"imageBase64": data_url, "width": 8, "height": 8})
    assert size_of(base64.b64decode(result["image"])) == (8, 8, "PNG")


def test_image_resize_writes_a_resized_file_inside_the_files_dir(files: Path) -> None:
    (files / "in").mkdir()
    (files / "in" / "photo.png").write_bytes(png(100, 50))
    result = image_resize(context(), {"path": "in/photo.png", "width": 50, "height": 25})
    assert result == {"width": 50, "height": 25, "format": "PNG", "path": "in/photo_50x25.png"}
    assert size_of((files / "in" / "photo_50x25.png").read_bytes()) == (50, 25, "PNG")
    image_resize(context(), {"source_key": "in/photo.png", "dest_key": "out.png", "height": 5})
    assert size_of((files / "out.png").read_bytes()) == (10, 5, "PNG")


def test_image_resize_writes_an_output_in_a_new_folder_in_the_format_its_name_says(
    files: Path,
) -> None:
    (files / "photo.png").write_bytes(png(100, 50))
    result = image_resize(context(), {"path": "photo.png", "output": "small/p.jpg", "width": 10})
    assert result == {"width": 10, "height": 5, "format": "JPEG", "path": "small/p.jpg"}
    assert size_of((files / "small" / "p.jpg").read_bytes()) == (10, 5, "JPEG")
    image_resize(context(), {"path": "photo.png", "output": "p.unknown", "width": 10})
    assert size_of((files / "p.unknown").read_bytes()) == (10, 5, "PNG")  # the source's


def test_image_resize_refuses_an_output_that_is_a_folder(files: Path) -> None:
    (files / "photo.png").write_bytes(png(100, 50))
    (files / "out").mkdir()
    with pytest.raises(Fatal, match="output 'out' is a folder"):
        image_resize(context(), {"path": "photo.png", "output": "out", "width": 10})


def test_image_resize_refuses_a_path_outside_the_files_dir(files: Path) -> None:
    with pytest.raises(Fatal, match="outside ONCUE_FILES_DIR"):
        image_resize(context(), {"path": "../../etc/passwd", "width": 10})


def test_image_resize_of_a_url_is_a_simulation_that_says_so() -> None:
    payload = {"source_url": "https://example.com/a.jpg", "width": 400, "height": 300}
    result = image_resize(context(), payload)
    assert result["simulated"] is True
    assert "fetches no URLs" in result["reason"]
    assert (result["source"], result["width"], result["height"]) == (
        payload["source_url"],
        400,
        300,
    )
    result = image_resize(context(), {"image_id": 7, "width": 5})
    assert (result["simulated"], result["source"]) == (True, None)
    assert result["reason"].startswith("no image to read")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"image": "aGk="}, "needs a width or a height"),
        ({"image": "not base64!", "width": 5}, "not valid base64"),
        ({"image": "aGk=", "width": 5}, "not an image"),
        ({"image": "aGk=", "width": 0}, "width must be an int"),
        ("a.jpg", "needs a JSON object"),
    ],
)
def test_image_resize_fails_for_good_on_bad_input(payload: Any, message: str) -> None:
    with pytest.raises(Fatal, match=message):
        image_resize(context(), payload)


# -- data_export ------------------------------------------------------------------------------


def test_data_export_renders_rows_as_csv_or_json() -> None:
    rows = [{"id": 1, "name": "a"}, {"id": 2, "email": "b@x"}]
    result = data_export(context(), {"format": "csv", "data": rows})
    assert result["content"] == "id,name,email\n1,a,\n2,,b@x\n"
    assert result["rows"] == 2
    result = data_export(context(), {"records": rows})
    assert json.loads(result["content"]) == rows


def test_data_export_writes_to_the_files_dir(files: Path) -> None:
    result = data_export(context(), {"format": "csv", "rows": [[1, 2]], "output": "x/e.csv"})
    assert (files / "x" / "e.csv").read_text() == "1,2\n"
    assert result == {"format": "csv", "rows": 1, "bytes": 4, "path": "x/e.csv"}


def test_data_export_refuses_an_output_that_is_a_folder(files: Path) -> None:
    (files / "exports").mkdir()
    with pytest.raises(Fatal, match="output 'exports' is a folder"):
        data_export(context(), {"format": "csv", "rows": [[1, 2]], "output": "exports"})


def test_data_export_of_a_table_is_a_simulation_and_bad_formats_fail() -> None:
    result = data_export(context(), {"table": "users", "format": "csv"})
    assert (result["simulated"], result["source"], result["rows"]) == (True, {"table": "users"}, 0)
    with pytest.raises(Fatal, match="format must be 'csv' or 'json'"):
        data_export(context(), {"format": "xlsx", "data": []})


# -- file_process -----------------------------------------------------------------------------


def test_file_process_analyzes_checksums_and_compresses_a_file(files: Path) -> None:
    text = b"one\ntwo\n"
    (files / "a.txt").write_bytes(text)
    digest = hashlib.sha256(text).hexdigest()
    result = file_process(context(), {"file": "a.txt"})
    assert result == {
        "operation": "analyze",
        "path": "a.txt",
        "bytes": 8,
        "lines": 2,
        "sha256": digest,
    }
    assert file_process(context(), {"path": "a.txt", "operation": "checksum"})["sha256"] == digest
    result = file_process(context(), {"file_path": "a.txt", "action": "compress"})
    assert result["output"] == "a.txt.gz"
    assert gzip.decompress((files / "a.txt.gz").read_bytes()) == text


def test_file_process_works_on_content_and_simulates_a_path_without_a_files_dir() -> None:
    assert file_process(context(), {"content": "x\n"})["lines"] == 1
    result = file_process(context(), {"filename": "report.pdf"})
    assert (result["simulated"], result["source"]) == (True, "report.pdf")
    with pytest.raises(Fatal, match="operation must be one of"):
        file_process(context(), {"content": "x", "operation": "shred"})


def test_file_process_fails_for_good_on_a_missing_file(files: Path) -> None:
    with pytest.raises(Fatal, match="no such file"):
        file_process(context(), {"path": "missing.txt"})
