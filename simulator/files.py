"""The platform's file store (9101 uploads, 9102 downloads) and the TXT-in-zip format of its files.

Files are zips holding one UTF-8, tab-separated TXT, one record a line, ``null`` for an empty value
(national-platform.md "Formatting rules").
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from .state import StoredFile

__all__ = ["txt_zip", "read_txt_zip", "store_file", "render_cell", "MAX_UPLOAD_BYTES"]

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


def render_cell(value: Any) -> str:
    if value is None or value == "":
        return "null"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).replace("\t", " ").replace("\n", " ")


def txt_zip(txt_name: str, rows: Iterable[Sequence[Any]]) -> bytes:
    text = "".join("\t".join(render_cell(c) for c in row) + "\n" for row in rows)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(txt_name, text.encode("utf-8"))
    return buf.getvalue()


def read_txt_zip(content: bytes) -> list[list[str | None]]:
    """Rows of every TXT in the zip; ``null`` read as None. Raises ValueError if it is not such a zip."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise ValueError("not a zip file") from None
    rows: list[list[str | None]] = []
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if not names:
            raise ValueError("the zip holds no file")
        for name in names:
            try:
                text = zf.read(name).decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValueError("the TXT is not UTF-8") from None
            for line in text.splitlines():
                if line.strip():
                    rows.append([None if c == "null" else c for c in line.rstrip("\r").split("\t")])
    return rows


def store_file(files: dict[str, StoredFile], *, file_qury_no: str, filename: str, fixmedins_code: str,
               content: bytes, now: dt.datetime, ttl_s: int, origin: str) -> StoredFile:
    stored = StoredFile(file_qury_no=file_qury_no, filename=filename, fixmedins_code=fixmedins_code,
                        content=content, created=now, expires=now + dt.timedelta(seconds=ttl_s), origin=origin)
    files[file_qury_no] = stored
    return stored
