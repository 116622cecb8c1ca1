"""Reports: the workbook (sheets, values, number formats), the HTML page with the same content, the JSON."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from openpyxl import load_workbook

from unit.reconciliation.recon_fakes import TODAY, PEntry, entry
from yibao.reconciliation.models import RunRequest
from yibao.reconciliation.reports import AMOUNT_FORMAT, DIFFERENCE_COLUMNS, build_html, build_json, build_xlsx
from yibao.reconciliation.settings import DIFFERENCE_CLASSES


@pytest.fixture
async def report(reconciler, platform, book):
    """A run with a HIS-only (40.00), an amount mismatch (100.00 vs 90.00) and a mobile-pay entry."""
    book(entry("HO", "40.00"))
    altered = entry("AM", "100.00", channel="mobilepay")
    book(altered)
    platform.add(PEntry.of(altered, medfee=Decimal("90.00"), fund=Decimal("45.00")))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    return await reconciler.report(run.run_id)


def _sheet_rows(ws):
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_the_workbook_has_a_summary_and_one_sheet_per_class(report) -> None:
    book = load_workbook(io.BytesIO(build_xlsx(report)))
    assert book.sheetnames == ["summary", *DIFFERENCE_CLASSES]


def test_each_difference_is_on_its_class_sheet(report) -> None:
    book = load_workbook(io.BytesIO(build_xlsx(report)))
    header, *rows = _sheet_rows(book["his_only"])
    assert header == [h for h, _, _ in DIFFERENCE_COLUMNS]
    assert [r[header.index("setl_id")] for r in rows] == ["HO"]
    assert _sheet_rows(book["platform_only"])[1:] == []


def test_amounts_are_numbers_with_two_decimals(report) -> None:
    ws = load_workbook(io.BytesIO(build_xlsx(report)))["amount_mismatch"]
    header = [c.value for c in ws[1]]
    his = ws.cell(2, header.index("HIS medfee_sumamt") + 1)
    platform = ws.cell(2, header.index("platform medfee_sumamt") + 1)
    assert isinstance(his.value, (int, float)) and his.value == 100 and his.number_format == AMOUNT_FORMAT
    assert platform.value == 90 and platform.number_format == AMOUNT_FORMAT


def test_the_summary_names_the_run_state_and_counts_by_class_and_channel(report) -> None:
    rows = _sheet_rows(load_workbook(io.BytesIO(build_xlsx(report)))["summary"])
    flat = [tuple(v for v in r if v is not None) for r in rows]
    assert ("run id", report.run.run_id) in flat
    assert ("his_only", "national", 1) in flat and ("amount_mismatch", "mobilepay", 1) in flat
    assert any(r and r[0] == "state" and "differences found" in r[1] for r in flat)


def test_statement_amounts_on_the_summary_are_numbers(report) -> None:
    ws = load_workbook(io.BytesIO(build_xlsx(report)))["summary"]
    money_cells = [c for row in ws.iter_rows() for c in row if c.number_format == AMOUNT_FORMAT]
    assert money_cells and all(isinstance(c.value, (int, float)) for c in money_cells)


class _Tables(HTMLParser):
    """Rows of every table by id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_the_html_page_has_the_same_tables(report) -> None:
    parser = _Tables()
    parser.feed(build_html(report))
    book = load_workbook(io.BytesIO(build_xlsx(report)))
    for cls in DIFFERENCE_CLASSES:
        html_rows = parser.tables[f"table-{cls}"]
        xlsx_rows = _sheet_rows(book[cls])
        assert len(html_rows) == len(xlsx_rows)
        assert html_rows[0] == xlsx_rows[0]
    header = parser.tables["table-amount_mismatch"][0]
    row = parser.tables["table-amount_mismatch"][1]
    assert row[header.index("setl_id")] == "AM" and row[header.index("HIS medfee_sumamt")] == "100.00"
    assert ["run id", report.run.run_id] in parser.tables["table-summary"]


def test_the_html_escapes_what_it_shows(report) -> None:
    from dataclasses import replace

    hostile = replace(report, run=replace(report.run, message="<script>alert(1)</script>"))
    assert "<script>" not in build_html(hostile)


def test_the_json_summary_holds_the_same_facts(report) -> None:
    data = json.loads(json.dumps(build_json(report)))
    assert data["run"]["run_id"] == report.run.run_id and data["run"]["state"] == "differences_found"
    assert data["differences_by_class"]["his_only"] == {"national": 1}
    assert {d["setl_id"]: d["class"] for d in data["differences"]} == {"HO": "his_only", "AM": "amount_mismatch"}
    assert [d["his_medfee_sumamt"] for d in data["differences"] if d["setl_id"] == "AM"] == ["100.00"]


async def test_reports_are_written_for_every_finished_run(reconciler, settings) -> None:
    run = await reconciler.run(RunRequest.for_day(TODAY))
    folder = settings.reports_dir / run.run_id
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.xlsx", "summary.json"]


async def test_the_report_says_the_recheck_balanced_after_repair(reconciler, book) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    await reconciler.approve(run.run_id, by="li", reason="ok")
    report = await reconciler.report(run.run_id)
    assert report.rechecked_balanced() is True
    assert ("re-check after repair", "balanced / 复核对平") in report.summary_rows()
    assert build_json(report)["rechecked_balanced"] is True
