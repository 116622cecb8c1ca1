"""Reading a catalog file as a stream: a zip of one (or more) TXT files — UTF-8, tab-separated, no header, one row
a line, ``null`` for an empty value — row by row, never whole in memory.

Every problem names the file and the line (1-based): a file that is no zip or fails its CRC, a line that is no
UTF-8, a row with fewer columns than the catalog's layout, a row without its code or version. The caller applies
the rows in one transaction, so a refused file leaves the catalog in force as it was.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from yibao.upload_scheduler.catalog.layouts import CatalogLayout
from yibao.upload_scheduler.errors import CatalogFileError

__all__ = ["CatalogLine", "read_rows", "version_key", "NULL"]

NULL = "null"


@dataclass(frozen=True, slots=True)
class CatalogLine:
    code: str
    ver: str
    vali_flag: str | None
    rid: str | None
    row: str  #: the line as the platform sent it (without its end of line)
    line: int


def version_key(ver: str) -> tuple[int, str]:
    """Versions compare as numbers when they are digits (``9`` < ``10``), else as text of equal length."""
    text = ver.strip()
    return (len(text), text) if text.isdigit() else (0, text)


def _cell(cells: list[str], pos: int | None) -> str | None:
    if pos is None:
        return None
    value = cells[pos].strip()
    return None if value in ("", NULL) else value


def _lines(stream: BinaryIO, name: str, layout: CatalogLayout, first_line: int) -> Iterator[CatalogLine]:
    infno = layout.infno
    assert isinstance(layout.key, int) and layout.ver is not None and layout.columns is not None
    key_pos, ver_pos, vali_pos, rid_pos, need = layout.key, layout.ver, layout.vali_flag, layout.rid, layout.columns
    number = first_line - 1
    while True:
        try:
            raw = stream.readline()
        except (zipfile.BadZipFile, zlib.error) as exc:  # CRC or stream corruption surfaces while reading
            raise CatalogFileError(infno, name, number + 1, f"the zip is corrupt ({exc})") from None
        except (OSError, EOFError) as exc:
            raise CatalogFileError(infno, name, number + 1, f"the file cannot be read ({type(exc).__name__})") from None
        if not raw:
            return
        number += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CatalogFileError(infno, name, number, "not UTF-8") from None
        if number == first_line and text.startswith("\ufeff"):
            text = text[1:]
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) < need:
            raise CatalogFileError(infno, name, number, f"{len(cells)} columns; the {infno} layout needs at least "
                                                        f"{need}")
        code = _cell(cells, key_pos)
        ver = _cell(cells, ver_pos)
        if not code:
            raise CatalogFileError(infno, name, number, f"no code (column {key_pos + 1} is empty)")
        if not ver:
            raise CatalogFileError(infno, name, number, f"no version (column {ver_pos + 1} is empty)")
        if len(code) > 120 or len(ver) > 60:
            raise CatalogFileError(infno, name, number, "a code or version longer than the catalog keeps")
        yield CatalogLine(code, ver, _cell(cells, vali_pos), _cell(cells, rid_pos), text, number)


def read_rows(path: Path, layout: CatalogLayout, *, name: str | None = None) -> Iterator[CatalogLine]:
    """The rows of the catalog file at ``path`` (a zip of TXT files, or a bare TXT), streamed. ``name`` is how
    errors name the file (the platform's file name)."""
    label = name or path.name
    infno = layout.infno
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise CatalogFileError(infno, label, 0, f"cannot be read ({exc.strerror})") from None
    if not is_zip:
        with path.open("rb") as fh:
            head = fh.read(64)
            if head.lstrip().startswith(b"{"):
                raise CatalogFileError(infno, label, 0, "the platform answered a JSON error instead of the file")
            if head.startswith(b"PK"):
                raise CatalogFileError(infno, label, 0, "the zip is corrupt (its directory cannot be read)")
            fh.seek(0)
            yield from _lines(fh, label, layout, 1)  # type: ignore[arg-type]
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CatalogFileError(infno, label, 0, f"the zip is corrupt ({exc})") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise CatalogFileError(infno, label, 0, "the zip holds no file")
        for member in members:
            where = f"{label}/{member.filename}"
            try:
                stream = archive.open(member)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                raise CatalogFileError(infno, where, 0, f"cannot be opened ({exc})") from None
            with stream:
                yield from _lines(stream, where, layout, 1)  # type: ignore[arg-type]
