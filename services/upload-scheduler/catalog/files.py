"""Reading a catalog file as a stream: a zip of one (or more) TXT files — UTF-8, tab-separated, no header, one row
a line, ``null`` for an empty value — a block of lines at a time, never whole in memory.

Every problem names the file and the line (1-based): a file that is no zip or fails its CRC, a line that is no
UTF-8 or holds a NUL character, a line longer than :data:`MAX_LINE` bytes, a row with fewer columns than the
catalog's layout, a row without its code or version, a code, version, flag or record id longer than the catalog
keeps. The caller applies the rows in one transaction, so a refused file leaves the catalog in force as it was.

:func:`iter_rows` yields plain tuples (the apply path's hot loop, half a million rows for 1301 西药);
:func:`read_rows` the same rows as :class:`CatalogLine` objects.
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

__all__ = ["CatalogLine", "Row", "read_rows", "iter_rows", "version_key", "NULL", "MAX_LINE",
           "MAX_CODE", "MAX_VER", "MAX_FLAG", "MAX_RID"]

NULL = "null"
#: the longest line read (bytes); a longer one is refused rather than held in memory
MAX_LINE = 1 << 20
#: the longest code, version, validity flag and record id the catalog keeps (catalog_items' columns)
MAX_CODE, MAX_VER, MAX_FLAG, MAX_RID = 120, 60, 3, 60
_CHUNK = 1 << 20  # bytes read from the file at a time

#: (code, ver, vali_flag, rid, row, line): the row is the line as the platform sent it (without its end of line)
Row = tuple[str, str, "str | None", "str | None", str, int]


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


class _Reader:
    """One TXT member (or bare file) of a catalog: its bytes decoded and split a block of lines at a time."""

    def __init__(self, stream: BinaryIO, name: str, layout: CatalogLayout) -> None:
        assert isinstance(layout.key, int) and layout.ver is not None and layout.columns is not None
        self.stream, self.name, self.layout = stream, name, layout
        self.number = 0  # lines handed on so far

    def fail(self, line: int, problem: str) -> CatalogFileError:
        return CatalogFileError(self.layout.infno, self.name, line, problem)

    def rows(self) -> Iterator[Row]:
        rest, first = b"", True
        while True:
            try:
                chunk = self.stream.read(_CHUNK)
            except (zipfile.BadZipFile, zlib.error) as exc:  # CRC or stream corruption surfaces while reading
                raise self.fail(self.number + 1, f"the zip is corrupt ({exc})") from None
            except (OSError, EOFError) as exc:
                raise self.fail(self.number + 1, f"the file cannot be read ({type(exc).__name__})") from None
            if not chunk:
                break
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
            else:
                rest = data[cut + 1:]
                yield from self._block(data[:cut], first)
                first = False
            if len(rest) > MAX_LINE:
                raise self.fail(self.number + 1, f"a line longer than {MAX_LINE} bytes")
        if rest:
            yield from self._block(rest, first)

    def _block(self, block: bytes, first: bool) -> Iterator[Row]:
        """Complete lines (the block ends where a line ends); a bad byte is reported after the lines before it."""
        bad: tuple[int, str] | None = None
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            start = block.rfind(b"\n", 0, exc.start) + 1
            text = block[:start].decode("utf-8")[:-1] if start else ""
            bad = (self.number + block.count(b"\n", 0, start) + 1, "not UTF-8")
            if not start:
                raise self.fail(*bad)
        if "\x00" in text:
            at = text.index("\x00")
            start = text.rfind("\n", 0, at) + 1
            bad = (self.number + text.count("\n", 0, start) + 1, "a NUL character (not a text file)")
            if not start:
                raise self.fail(*bad)
            text = text[:start - 1]
        if first and text.startswith("\ufeff"):
            text = text[1:]
        yield from self._lines(text)
        if bad is not None:
            raise self.fail(*bad)

    def _lines(self, text: str) -> Iterator[Row]:
        layout = self.layout
        key_pos, ver_pos, flag_pos, rid_pos, need = layout.key, layout.ver, layout.vali_flag, layout.rid, layout.columns
        assert isinstance(key_pos, int) and ver_pos is not None and need is not None
        # a row of exactly the layout's columns (the usual case) is not split into all its cells: the code is the
        # text before the first tab (key 0) and the version, flag and record id are read from the row's end
        # (rsplit into the few cells from the lowest of them on); any other row is split whole
        low = min(p for p in (ver_pos, flag_pos, rid_pos) if p is not None)
        tabs = need - 1 if key_pos == 0 and low > 0 else -1
        cut = need - low  # rsplit's maxsplit: cell p (p ≥ low) is tail[p - low + 1]
        ver_at = ver_pos - low + 1
        flag_at = flag_pos - low + 1 if flag_pos is not None else None
        rid_at = rid_pos - low + 1 if rid_pos is not None else None
        number = self.number
        try:
            for line in text.split("\n"):
                number += 1
                if line[-1:] == "\r":
                    line = line.rstrip("\r")
                if not line or line.isspace():
                    continue
                if line.count("\t") == tabs:
                    tail = line.rsplit("\t", cut)
                    code = line[:line.find("\t")].strip()
                    ver = tail[ver_at].strip()
                    flag = tail[flag_at] if flag_at is not None else None
                    rid = tail[rid_at] if rid_at is not None else None
                else:
                    cells = line.split("\t")
                    if len(cells) < need:
                        raise self.fail(number, f"{len(cells)} columns; the {layout.infno} layout needs at least "
                                                f"{need}")
                    code, ver = cells[key_pos].strip(), cells[ver_pos].strip()
                    flag = cells[flag_pos] if flag_pos is not None else None
                    rid = cells[rid_pos] if rid_pos is not None else None
                if not code or code == NULL:
                    raise self.fail(number, f"no code (column {key_pos + 1} is empty)")
                if not ver or ver == NULL:
                    raise self.fail(number, f"no version (column {ver_pos + 1} is empty)")
                if len(code) > MAX_CODE or len(ver) > MAX_VER:
                    raise self.fail(number, "a code or version longer than the catalog keeps")
                if flag is not None:
                    flag = flag.strip()
                    if not flag or flag == NULL:
                        flag = None
                    elif len(flag) > MAX_FLAG:
                        raise self.fail(number, f"a validity flag longer than {MAX_FLAG} characters "
                                                f"(column {flag_pos + 1})")
                if rid is not None:
                    rid = rid.strip()
                    if not rid or rid == NULL:
                        rid = None
                    elif len(rid) > MAX_RID:
                        raise self.fail(number, f"a record id longer than {MAX_RID} characters (column {rid_pos + 1})")
                yield code, ver, flag, rid, line, number
        finally:
            self.number = number


def iter_rows(path: Path, layout: CatalogLayout, *, name: str | None = None) -> Iterator[Row]:
    """The rows of the catalog file at ``path`` (a zip of TXT files, or a bare TXT), streamed, as :data:`Row`
    tuples. ``name`` is how errors name the file (the platform's file name)."""
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
            yield from _Reader(fh, label, layout).rows()
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
                yield from _Reader(stream, where, layout).rows()  # type: ignore[arg-type]


def read_rows(path: Path, layout: CatalogLayout, *, name: str | None = None) -> Iterator[CatalogLine]:
    """:func:`iter_rows` as :class:`CatalogLine` objects."""
    for row in iter_rows(path, layout, name=name):
        yield CatalogLine(*row)
