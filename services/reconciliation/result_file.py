"""Reading the 3202 result file (downloaded by 9102) without holding its rows in memory.

The file is a zip of UTF-8 TXT, tab-separated, ``null`` for empty, one row per setl_id of either side, columns
psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo (some platforms add medfee_sumamt,
fund_pay_sumamt, acct_pay; the catalog's ``files.result`` of 3202 lists them). On a day of a large hospital
almost every row is "consistent", so rows are streamed: consistent ones are only counted, the others are kept.

Everything that is not such a file ends in :class:`ResultFileError` with a message naming what is wrong (member
and line number, never the row's personal data):

* an empty body; a JSON error envelope in place of the file; a zip whose member is a JSON error envelope;
* bytes that are neither a zip nor UTF-8 text; a corrupt zip; a zip without a TXT member;
* a line with more fields than columns; a row without setl_id or stmt_rslt; a stmt_rslt that the configured
  code table (``YIBAO_RECONCILIATION_ROW_CODES``) does not know; an amount that is not a number; the same
  setl_id twice among the differences.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from yibao.envelope.national.envelope import read_infcode
from yibao.envelope.national.files import looks_like_zip
from yibao.envelope.national.jsontext import loads

from .errors import ResultFileError

__all__ = ["RESULT_COLUMNS", "ResultRow", "ResultSummary", "read_result_file", "result_columns"]

#: the national result-file columns (the simulator writes the first seven)
RESULT_COLUMNS: tuple[str, ...] = ("psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag", "memo",
                                   "medfee_sumamt", "fund_pay_sumamt", "acct_pay")
_AMOUNTS = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")
#: a decompressed member larger than this is refused (a zip bomb is not a result file)
MAX_MEMBER_BYTES = 4 * 1024 * 1024 * 1024


def result_columns(catalog: object | None = None) -> tuple[str, ...]:
    try:
        spec = catalog.transaction("3202") if catalog is not None else None  # type: ignore[attr-defined]
        columns = tuple(f.name for f in spec.files["result"]) if spec is not None else ()
    except Exception:  # noqa: BLE001
        columns = ()
    return columns or RESULT_COLUMNS


@dataclass(frozen=True)
class ResultRow:
    """A row that is not consistent: where it was (member, line) and what it says."""

    member: str
    line: int
    setl_id: str
    stmt_rslt: str
    diff_class: str
    psn_no: str | None = None
    mdtrt_id: str | None = None
    msgid: str | None = None
    refd_setl_flag: str | None = None
    memo: str | None = None
    medfee_sumamt: Decimal | None = None
    fund_pay_sumamt: Decimal | None = None
    acct_pay: Decimal | None = None


@dataclass
class ResultSummary:
    rows: int = 0
    consistent: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    differences: list[ResultRow] = field(default_factory=list)


def _json_error(head: bytes, where: str) -> ResultFileError | None:
    text = head.lstrip()
    if not text.startswith((b"{", b"[")):
        return None
    try:
        body = loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return ResultFileError(f"{where}: JSON that cannot be read instead of result rows")
    if isinstance(body, dict):
        reason = str(body.get("err_msg") or "").strip() or f"infcode {read_infcode(body.get('infcode'))}"
    else:
        reason = "a JSON array"
    return ResultFileError(f"{where}: an error instead of result rows: {reason}")


def _lines(text_stream: io.TextIOBase, member: str) -> Iterator[str]:
    try:
        for line in text_stream:
            yield line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise ResultFileError(f"{member}: not UTF-8 text") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ResultFileError(f"{member}: corrupt inside the zip ({type(exc).__name__})") from None


def _members(data: bytes) -> Iterator[tuple[str, Iterator[str]]]:
    if not data.strip():
        raise ResultFileError("9102 answered an empty body instead of the result file")
    error = _json_error(data, "9102 answer")
    if error is not None:
        raise error
    if not looks_like_zip(data):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ResultFileError("9102 answer is neither a zip archive nor UTF-8 text") from None
        yield "9102 body", iter(text.splitlines())
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise ResultFileError(f"the result file is not a readable zip archive ({type(exc).__name__})") from None
    with archive:
        infos = sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)
        if not infos:
            raise ResultFileError("the result zip holds no file")
        texts = []
        for info in infos:
            if info.file_size > MAX_MEMBER_BYTES:
                raise ResultFileError(f"{info.filename}: {info.file_size} bytes decompressed, too large")
            try:
                with archive.open(info) as handle:
                    head = handle.read(4096)
            except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
                raise ResultFileError(f"{info.filename}: cannot be read from the zip ({type(exc).__name__})") from None
            error = _json_error(head, info.filename)
            if error is not None:
                raise error
            if info.filename.lower().endswith(".txt"):
                texts.append(info)
        if not texts:
            raise ResultFileError("the result zip holds no TXT file")
        for info in texts:
            with archive.open(info) as raw:
                stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline=None)
                yield info.filename, _lines(stream, info.filename)


def _amount(text: str | None, column: str, where: str) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ResultFileError(f"{where}: {column} is not a number") from None
    if not value.is_finite():
        raise ResultFileError(f"{where}: {column} is not a finite number")
    return value


def read_result_file(data: bytes, *, row_codes: Mapping[str, str],
                     columns: Sequence[str] = RESULT_COLUMNS) -> ResultSummary:
    """Count every row, keep the differences; ResultFileError on anything malformed (see the module doc)."""
    width = len(columns)
    index = {name: i for i, name in enumerate(columns)}
    for required in ("setl_id", "stmt_rslt"):
        if required not in index:
            raise ResultFileError(f"the result-file columns have no {required}")
    i_setl, i_code = index["setl_id"], index["stmt_rslt"]
    summary = ResultSummary()
    seen: set[str] = set()

    def cell(cells: list[str], name: str) -> str | None:
        i = index.get(name)
        if i is None or i >= len(cells):
            return None
        value = cells[i]
        return None if value == "null" or value == "" else value

    rows = consistent = 0  # counted in locals: a million rows a day, almost all consistent
    for member, lines in _members(data):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) > width:
                raise ResultFileError(f"{member} line {number}: {len(cells)} fields, at most {width} columns "
                                      "expected")
            if number == 1 and cells[i_setl] == "setl_id":
                continue  # a header line
            setl_id = cells[i_setl] if i_setl < len(cells) else ""
            code = cells[i_code] if i_code < len(cells) else ""
            if not setl_id or setl_id == "null":
                raise ResultFileError(f"{member} line {number}: setl_id is empty")
            if not code or code == "null":
                raise ResultFileError(f"{member} line {number}: stmt_rslt is empty")
            diff_class = row_codes.get(code)
            if diff_class is None:
                raise ResultFileError(f"{member} line {number}: stmt_rslt {code!r} is not in the configured code "
                                      "table (YIBAO_RECONCILIATION_ROW_CODES)")
            rows += 1
            if diff_class == "consistent":
                consistent += 1
                continue
            where = f"{member} line {number}"
            if setl_id in seen:
                raise ResultFileError(f"{where}: setl_id {setl_id} appears twice among the differences")
            seen.add(setl_id)
            summary.by_class[diff_class] += 1
            summary.differences.append(ResultRow(
                member=member, line=number, setl_id=setl_id, stmt_rslt=code, diff_class=diff_class,
                psn_no=cell(cells, "psn_no"), mdtrt_id=cell(cells, "mdtrt_id"), msgid=cell(cells, "msgid"),
                refd_setl_flag=cell(cells, "refd_setl_flag"), memo=cell(cells, "memo"),
                **{k: _amount(cell(cells, k), k, where) for k in _AMOUNTS},
            ))
    summary.rows, summary.consistent = rows, consistent
    return summary
