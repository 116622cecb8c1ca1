"""9101 / 9102 files: what goes up and what comes down, as pure functions testable without a platform.

The platform moves files as streams (national-platform.md): a 9102 answer is a zip archive whose TXT members
are UTF-8, one record per line, fields separated by tabs, an empty value written ``null``; or, when something
is wrong, a JSON error envelope (infcode -1, err_msg) in place of the file — a known failure mode that must be
recognised, never unpacked as if it were a zip. Column names are not in the files: the caller names them
(e.g. the 3202 result file: psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo).

The same format is written for uploads (:func:`format_txt`, :func:`build_zip`), e.g. the 3202 detail file.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from yibao.envelope.errors import FileTransferError
from yibao.envelope.national.envelope import read_infcode
from yibao.envelope.national.jsontext import loads

__all__ = [
    "NULL",
    "UploadResult",
    "FileErrorReply",
    "looks_like_zip",
    "error_from_json_body",
    "unpack_zip",
    "parse_txt",
    "parse_download",
    "format_txt",
    "build_zip",
]

#: how an empty value is written in the platform's TXT files
NULL = "null"


class UploadResult(BaseModel):
    """9101's answer: the query number a later transaction (3202) refers to, and until when it can be read."""

    file_qury_no: str
    filename: str | None = None
    dld_endtime: str | None = None


class FileErrorReply(FileTransferError):
    """9102 answered a JSON error envelope in place of the file; ``err_msg`` is the platform's reason."""

    code = "file_error_reply"
    outcome = "rejected"  # the platform answered, in its own words: a rejection, not a transport fault

    def __init__(self, err_msg: str, infcode: str | None) -> None:
        self.err_msg = err_msg
        self.infcode = infcode
        super().__init__(f"9102 answered an error instead of a file: {err_msg or f'infcode {infcode}'}")


def looks_like_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def error_from_json_body(data: bytes) -> FileTransferError | None:
    """A FileTransferError carrying the platform's err_msg when ``data`` is a JSON envelope instead of a file."""
    head = data.lstrip()[:1]
    if head not in (b"{", b"["):
        return None
    try:
        body = loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(body, dict):
        return FileTransferError("9102 answered JSON instead of a file")
    code = read_infcode(body.get("infcode"))
    return FileErrorReply(str(body.get("err_msg") or "").strip(), None if code is None else str(code))


def unpack_zip(data: bytes) -> dict[str, bytes]:
    """Members of a zip archive by name (directories left out); FileTransferError when it is not a zip."""
    json_error = error_from_json_body(data)
    if json_error is not None:
        raise json_error
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
            }
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise FileTransferError(f"9102 file is not a readable zip archive ({type(exc).__name__})") from None


def _cell(text: str) -> str | None:
    return None if text == NULL else text


def parse_txt(data: bytes | str, columns: Sequence[str], *, name: str = "file") -> list[dict[str, str | None]]:
    """Rows of a platform TXT file (UTF-8, tab-separated, ``null`` → None) keyed by ``columns``.

    Blank lines are skipped. A line with fewer fields is padded with None (platforms drop trailing empty
    fields); a line with more fields than ``columns`` is an error naming the file and line number.
    """
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    except UnicodeDecodeError:
        raise FileTransferError(f"{name}: not UTF-8 text") from None
    width = len(columns)
    rows: list[dict[str, str | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) > width:
            raise FileTransferError(f"{name} line {number}: {len(cells)} fields, {width} columns expected")
        cells += [NULL] * (width - len(cells))
        rows.append({column: _cell(cell) for column, cell in zip(columns, cells)})
    return rows


def parse_download(data: bytes, columns: Sequence[str]) -> list[dict[str, str | None]]:
    """Every row of every TXT member of a 9102 zip (members in name order); a bare TXT body is accepted too."""
    json_error = error_from_json_body(data)
    if json_error is not None:
        raise json_error
    if not looks_like_zip(data):
        return parse_txt(data, columns, name="9102 body")
    rows: list[dict[str, str | None]] = []
    members = unpack_zip(data)
    for name in sorted(members):
        if name.lower().endswith(".txt"):
            rows.extend(parse_txt(members[name], columns, name=name))
    return rows


def _format_cell(value: Any) -> str:
    if value is None or value == "":
        return NULL
    if isinstance(value, float):
        raise FileTransferError("a float cannot be written to a platform file; use Decimal")
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        raise FileTransferError("a value holds a tab or a line break and cannot be written to a TXT file")
    return text


def format_txt(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    """UTF-8 TXT as the platform reads it: fields in ``columns`` order, tab-separated, empty → ``null``."""
    lines = ["\t".join(_format_cell(row.get(column)) for column in columns) for row in rows]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def build_zip(members: Mapping[str, bytes]) -> bytes:
    """A deflated zip of ``members`` (name → bytes), e.g. one TXT detail file for 9101."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()
