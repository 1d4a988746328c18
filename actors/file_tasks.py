"""The built-ins that work on images, rows and files, as the seed queues' READMEs used them:
image_resize, data_export, file_process.

Each does real, bounded work when given the data itself (base64 or rows in the payload) or a
path under the folder ONCUE_FILES_DIR names; a payload that only names something oncue cannot
reach (a URL, a table of your own database) gets a documented simulation: the result says
``"simulated": true`` and why, and the log says so too. Never a silent no-op. They are plain
functions, so workers run them in a thread.
"""

from __future__ import annotations

import base64
import binascii
import csv
import gzip
import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Fatal

if TYPE_CHECKING:
    from .registry import TaskContext

MAX_SIDE = 10_000  # pixels of a resized image's side
MAX_PIXELS = 50_000_000  # of an image to read (Pillow's decompression-bomb guard is ~179M)
MAX_FILE = 100 * 1024 * 1024  # bytes of a file to process
CHUNK = 1024 * 1024
IMAGE_FIELDS = ("image", "image_base64", "imageBase64", "data")
PATH_FIELDS = ("path", "file", "file_path", "filename", "source", "source_key", "input")
OUTPUT_FIELDS = ("output", "output_path", "dest", "destination", "dest_key")
URL_FIELDS = ("url", "source_url", "image_url")
OPERATIONS = ("analyze", "checksum", "compress")


def _dict(name: str, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise Fatal(f"{name} needs a JSON object as payload, got {type(payload).__name__}")
    return payload


def _first(payload: dict[str, Any], fields: tuple[str, ...]) -> tuple[str, Any] | None:
    return next(((name, payload[name]) for name in fields if payload.get(name)), None)


def files_dir() -> Path | None:
    """The folder ONCUE_FILES_DIR names (resolved), or None when it is not set."""
    folder = os.environ.get("ONCUE_FILES_DIR")
    return Path(folder).resolve() if folder else None


def in_files_dir(field: str, name: Any) -> Path:
    """``name`` as a path inside ONCUE_FILES_DIR; Fatal if it is not a string or leads out."""
    root = files_dir()
    if not isinstance(name, str) or root is None:
        raise Fatal(f"{field} must be a path inside ONCUE_FILES_DIR, got {name!r}")
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise Fatal(f"{field} {name!r} is outside ONCUE_FILES_DIR ({root})")
    return path


def output_in_files_dir(field: str, name: Any) -> Path:
    """``name`` as a file to write inside ONCUE_FILES_DIR, its folder made if missing; Fatal
    if it leads out or is a folder."""
    path = in_files_dir(field, name)
    if path.is_dir():
        raise Fatal(f"{field} {name!r} is a folder: name the file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _simulated(ctx: TaskContext, task: str, reason: str, **details: Any) -> dict[str, Any]:
    ctx.logger.info(f"{task}.simulated", extra={"reason": reason})
    return {"simulated": True, "reason": reason, **details}


def _size(payload: dict[str, Any], field: str) -> int | None:
    value = payload.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise Fatal(f"{field} must be an int from 1 to {MAX_SIDE}, got {value!r}")
    return value


def image_resize(ctx: TaskContext, payload: Any) -> dict[str, Any]:
    """Resize an image to {"width", "height"} (one of them keeps the aspect ratio).

    The image is base64 in "image" (or "image_base64", "imageBase64", "data"; a data: URL
    works) and comes back base64 in the result, or a path under ONCUE_FILES_DIR in "path"
    (or "file", "source", ...) written to "output" (default NAME_WxH.EXT beside it). A "url"
    is not fetched: the result is a simulation saying so.
    """
    payload = _dict("image_resize", payload)
    width, height = _size(payload, "width"), _size(payload, "height")
    if width is None and height is None:
        raise Fatal("image_resize needs a width or a height (ints, in pixels)")
    if (image := _first(payload, IMAGE_FIELDS)) is not None:
        data = _decode_base64(*image)
        resized, size, kind = _resize(data, width, height, image[0])
        return {**size, "format": kind, "image": base64.b64encode(resized).decode()}
    if (path := _first(payload, PATH_FIELDS)) is not None and files_dir() is not None:
        return _resize_file(path, _first(payload, OUTPUT_FIELDS), width, height)
    url = _first(payload, URL_FIELDS)
    where = url or path
    if url is not None:
        reason = "oncue fetches no URLs: give the image as base64, or a path in ONCUE_FILES_DIR"
    elif path is not None:
        reason = "ONCUE_FILES_DIR is not set: paths are read only inside it"
    else:
        reason = "no image to read: give it as base64 in image, or a path in ONCUE_FILES_DIR"
    return _simulated(
        ctx,
        "image_resize",
        reason,
        source=None if where is None else where[1],
        width=width,
        height=height,
    )


def _resize_file(
    path: tuple[str, Any], output: tuple[str, Any] | None, width: int | None, height: int | None
) -> dict[str, Any]:
    """Resize the file at ``path`` into ``output`` (in the format its extension names, else
    the source's; its folder made if missing), or NAME_WxH.EXT beside the source."""
    source = in_files_dir(*path)
    if not source.is_file():
        raise Fatal(f"{path[0]} {path[1]!r}: no such file in ONCUE_FILES_DIR")
    target = None if output is None else output_in_files_dir(*output)
    kind = None if target is None else _format_for(target)
    resized, size, kind = _resize(source.read_bytes(), width, height, path[0], kind)
    if target is None:
        target = source.with_name(f"{source.stem}_{size['width']}x{size['height']}{source.suffix}")
    target.write_bytes(resized)
    return {**size, "format": kind, "path": str(target.relative_to(files_dir() or "/"))}


def _format_for(target: Path) -> str | None:
    """The image format Pillow writes for ``target``'s extension, or None if it knows none."""
    from PIL import Image

    kind = Image.registered_extensions().get(target.suffix.lower())
    return kind if kind in Image.SAVE else None


def _decode_base64(field: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise Fatal(f"{field} must be a base64 string, got {type(value).__name__}")
    encoded = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise Fatal(f"{field} is not valid base64: {error}") from None


def _resize(
    data: bytes, width: int | None, height: int | None, field: str, kind: str | None = None
) -> tuple[bytes, dict[str, int], str]:
    """The resized image's bytes (in format ``kind``, else its own), its size, and format."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise Fatal(f"{field}: {image.width}x{image.height} is over {MAX_PIXELS} pixels")
            kind = kind or image.format or "PNG"
            width = width or max(1, round(image.width * height / image.height))  # type: ignore[operator]
            height = height or max(1, round(image.height * width / image.width))
            resized = image.resize((width, height))
            if kind == "JPEG" and resized.mode not in ("RGB", "L"):
                resized = resized.convert("RGB")
            out = io.BytesIO()
            resized.save(out, format=kind)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise Fatal(f"{field} is not an image Pillow can read: {error}") from None
    return out.getvalue(), {"width": width, "height": height}, kind


def data_export(ctx: TaskContext, payload: Any) -> dict[str, Any]:
    """Export rows as "csv" or "json" ("format", default json).

    The rows are "data" (or "records", "rows"): a list of objects or of lists. They are
    written to "output" under ONCUE_FILES_DIR when given, else returned as "content". A
    payload naming rows oncue cannot read ("table", "query", ...) gets a simulation.
    """
    payload = _dict("data_export", payload)
    kind = str(payload.get("format", "json")).lower()
    if kind not in ("csv", "json"):
        raise Fatal(f"data_export format must be 'csv' or 'json', got {payload.get('format')!r}")
    found = _first(payload, ("data", "records", "rows"))
    if found is None:
        source = {k: v for k, v in payload.items() if k not in ("format",)}
        reason = "oncue holds none of your data: give the rows to export as data"
        return _simulated(ctx, "data_export", reason, format=kind, source=source, rows=0)
    field, rows = found
    if not isinstance(rows, list):
        raise Fatal(f"{field} must be a list of rows, got {type(rows).__name__}")
    content = _csv(field, rows) if kind == "csv" else json.dumps(rows, indent=2)
    result: dict[str, Any] = {"format": kind, "rows": len(rows), "bytes": len(content.encode())}
    if (name := _first(payload, OUTPUT_FIELDS)) is not None:
        target = output_in_files_dir(*name)
        target.write_text(content, encoding="utf-8")
        return {**result, "path": name[1]}
    return {**result, "content": content}


def _csv(field: str, rows: list[Any]) -> str:
    out = io.StringIO()
    if rows and all(isinstance(row, dict) for row in rows):
        columns = list(dict.fromkeys(column for row in rows for column in row))
        writer: Any = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
    elif all(isinstance(row, list) for row in rows):
        writer = csv.writer(out, lineterminator="\n")
    else:
        raise Fatal(f"{field} must hold rows that are all objects or all lists")
    writer.writerows(rows)
    return out.getvalue()


def file_process(ctx: TaskContext, payload: Any) -> dict[str, Any]:
    """Process a file: "operation" analyze (bytes, lines, sha256; the default), checksum, or
    compress (gzip, written beside it as NAME.gz).

    The file is a path under ONCUE_FILES_DIR in "path" (or "file", "file_path", "filename",
    ...), or its text in "content". Without ONCUE_FILES_DIR a path gets a simulation.
    """
    payload = _dict("file_process", payload)
    operation = str(payload.get("operation") or payload.get("action") or "analyze").lower()
    if operation not in OPERATIONS:
        raise Fatal(
            f"file_process operation must be one of {', '.join(OPERATIONS)}, got {operation!r}"
        )
    if isinstance(payload.get("content"), str):
        data = payload["content"].encode()
        if operation == "compress":
            compressed = len(gzip.compress(data))
            return {"operation": operation, "bytes": len(data), "compressed_bytes": compressed}
        return {"operation": operation, **_digest(io.BytesIO(data), operation, len(data))}
    found = _first(payload, PATH_FIELDS)
    if found is None:
        raise Fatal(f"file_process needs a path ({', '.join(PATH_FIELDS)}) or content")
    if files_dir() is None:
        reason = "ONCUE_FILES_DIR is not set: files are read only inside it"
        return _simulated(ctx, "file_process", reason, operation=operation, source=found[1])
    source = in_files_dir(*found)
    if not source.is_file():
        raise Fatal(f"{found[0]} {found[1]!r}: no such file in ONCUE_FILES_DIR")
    size = source.stat().st_size
    if size > MAX_FILE:
        raise Fatal(f"{found[0]} {found[1]!r} has {size} bytes, over {MAX_FILE}")
    result: dict[str, Any] = {"operation": operation, "path": found[1]}
    if operation == "compress":
        target = source.with_name(source.name + ".gz")
        with source.open("rb") as reader, gzip.open(target, "wb") as writer:
            shutil.copyfileobj(reader, writer, CHUNK)
        return {
            **result,
            "bytes": size,
            "output": f"{found[1]}.gz",
            "compressed_bytes": target.stat().st_size,
        }
    with source.open("rb") as reader:
        return {**result, **_digest(reader, operation, size)}


def _digest(reader: Any, operation: str, size: int) -> dict[str, Any]:
    """sha256 (and for analyze: bytes and lines) of what ``reader`` holds, read in chunks."""
    digest, lines = hashlib.sha256(), 0
    while chunk := reader.read(CHUNK):
        digest.update(chunk)
        lines += chunk.count(b"\n")
    if operation == "checksum":
        return {"sha256": digest.hexdigest()}
    return {"bytes": size, "lines": lines, "sha256": digest.hexdigest()}
