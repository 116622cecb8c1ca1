"""The catalog is the one source of what a lost answer needs (retry, lookup, 2601) and of the platform's wording; the
chain engine, the simulator and reconciliation derive from it, and a province changes it without code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import CatalogError
from yibao.reconciliation.reconciler import Reconciler
from yibao.reconciliation.settings import ReconciliationSettings
from yibao.simulator import reversal
from yibao.simulator.national import NationalPlatform
from yibao.simulator.settings import SimulatorSettings
from yibao.simulator.platform_clock import PlatformClock
from yibao.simulator.state import Ledger

WriteProvince = Callable[[str, str], Path]
CATALOG = Catalog.load()


# --- how a lost answer is resolved -------------------------------------------------------------------------------

def test_a_query_or_download_is_simply_sent_again() -> None:
    assert {t.resolution for t in CATALOG if t.retry_safe} == {"retry"}


def test_a_transaction_the_platform_overwrites_is_sent_again() -> None:
    assert [CATALOG.transaction(i).resolution for i in ("2203", "2206", "2303", "2403")] == ["retry"] * 4


def test_a_reversible_transaction_with_a_query_is_looked_up_then_reversed() -> None:
    assert [CATALOG.transaction(i).resolution for i in ("2207", "2208", "2304", "2305")] == ["query_then_reverse"] * 4


def test_a_reversible_transaction_without_a_query_is_reversed() -> None:
    assert CATALOG.transaction("2102").resolution == "reverse"


def test_a_state_changing_transaction_without_a_way_needs_a_person() -> None:
    assert CATALOG.transaction("7205").resolution == "manual"  # 配送信息上传 (pharmacy side)


def test_every_lost_answer_query_is_a_listed_query_safe_to_send_again() -> None:
    for spec in CATALOG:
        if spec.lost_answer is not None and spec.lost_answer.query:
            assert CATALOG.transaction(spec.lost_answer.query).retry_safe, spec.infno
            assert spec.lost_answer.why, spec.infno


def test_the_simulator_reverses_exactly_what_the_catalog_calls_reversible() -> None:
    settings = SimulatorSettings(port=0, admin_port=0)
    platform = NationalPlatform(settings, Ledger([], settings.fixmedins_codes), PlatformClock())
    for spec in CATALOG:
        assert platform.reversible(spec.infno) == spec.reversible, spec.infno


def test_reconciliation_reverses_exactly_what_the_catalog_calls_reversible(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    reconciler = Reconciler(sqlite_engine, client=None, settings=ReconciliationSettings(),  # type: ignore[arg-type]
                            catalog=CATALOG)
    assert reconciler.reversible == {t.infno for t in CATALOG if t.reversible}


# --- the platform's wording ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "wording"), [
    (reversal.NOT_FOUND, "reversal_nothing_done"),
    (reversal.NOT_DONE, "reversal_nothing_done"),
    (reversal.ALREADY_REVERSED, "reversal_nothing_done"),
    (reversal.ALREADY_REVERSED, "already_reversed"),
    (reversal.NOT_REVERSIBLE, "reversal_refused"),
])
def test_the_simulators_2601_answers_are_worded_as_the_catalog_says(text: str, wording: str) -> None:
    assert CATALOG.says(wording, text)


def test_a_refused_reversal_is_not_mistaken_for_nothing_done() -> None:
    assert not CATALOG.says("reversal_nothing_done", reversal.NOT_REVERSIBLE)


def test_wording_is_matched_whatever_the_case() -> None:
    assert CATALOG.says("sign_in_invalid", "invalid SIGN_NO")


def test_an_unknown_wording_list_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="not in the catalog"):
        CATALOG.wording("no_such_list")


# --- a province changes it without code ------------------------------------------------------------------------------

def test_a_province_adds_and_replaces_wording_and_changes_a_lost_answer(write_province: WriteProvince) -> None:
    folder = write_province("wordland", """
        province: wordland
        transactions:
          "2203":
            lost_answer: {query: "5201", why: "this province refuses a second 2203"}
        wording:
          nothing_to_revoke:
            add: [费用明细已全部撤销]
          not_found:
            replace: [查无此记录]
    """)
    cat = Catalog.load("wordland", extra_dirs=[folder])
    assert cat.says("nothing_to_revoke", "费用明细已全部撤销") and cat.says("nothing_to_revoke", "无可撤销")
    assert cat.says("not_found", "查无此记录") and not cat.says("not_found", "结算信息不存在")
    assert cat.transaction("2203").resolution == "query"
    assert CATALOG.transaction("2203").resolution == "retry"  # the national catalog is untouched


@pytest.mark.parametrize(("body", "problem"), [
    ('transactions:\n  "2207":\n    lost_answer: {query: "2201", why: x}\n', "not retry_safe"),
    ('transactions:\n  "2207":\n    lost_answer: {query: "5204", resend: true, why: x}\n', "exactly one"),
    ("wording:\n  no_such_list:\n    add: [x]\n", "unknown wording list"),
])
def test_a_bad_lost_answer_or_wording_is_refused_naming_the_file(write_province: WriteProvince, body: str,
                                                                 problem: str) -> None:
    folder = write_province("badwords", "province: badwords\n" + body)
    with pytest.raises(CatalogError, match=problem) as caught:
        Catalog.load("badwords", extra_dirs=[folder])
    assert "badwords.yaml" in str(caught.value)
