"""Our call log as a witness: the fate of the message behind a platform entry, and 清算机构 worth asking."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest

from unit.reconciliation.recon_fakes import NOON, entry
from yibao.core.db.schema import platform_calls
from yibao.envelope.errors import BusinessRejection
from yibao.envelope.catalog import Catalog
from yibao.reconciliation.truth import call_for, optins_of_calls, query_entry

NOT_FOUND = Catalog.load().wording("not_found")


def log(engine, msgid, outcome, *, mdtrt_id="M1", optins=None, visit="V1", infno="2207"):
    output = json.dumps({"setlinfo": {"clr_optins": optins}}) if optins else None
    with engine.begin() as conn:
        conn.execute(platform_calls.insert().values(
            service="settlement", platform="national", infno=infno, msgid=msgid, visit_key=visit, started_at=NOON,
            outcome=outcome, input_masked=json.dumps({"data": {"mdtrt_id": mdtrt_id}}), output_masked=output))


def test_the_call_behind_an_entry_is_found_by_msgid(engine) -> None:
    log(engine, "MSG1", "unknown", visit="V-7")
    with engine.connect() as conn:
        found = call_for(conn, msgid="MSG1", mdtrt_id=None)
    assert (found.outcome, found.visit_key, found.infno) == ("unknown", "V-7", "2207")


def test_without_a_msgid_the_call_is_found_by_the_visit_on_the_platform(engine) -> None:
    log(engine, "MSG1", "unknown", mdtrt_id="M-42", visit="V-42")
    log(engine, "MSG2", "success", mdtrt_id="M-4", visit="V-4")
    with engine.connect() as conn:
        assert call_for(conn, msgid="NOT-LOGGED", mdtrt_id="M-42").visit_key == "V-42"
        assert call_for(conn, msgid=None, mdtrt_id="M-99") is None


def test_only_unbooked_answers_name_optins_to_ask(engine, book) -> None:
    log(engine, "MSG-S1", "success", optins="440300")  # HIS has it: already a ledger key
    log(engine, "MSG-LOST", "success", optins="440999")  # HIS lost it
    log(engine, "MSG-BAD", "rejected", optins="440888")
    book(entry("S1", optins="440300", msgid="MSG-S1"))
    with engine.connect() as conn:
        assert optins_of_calls(conn, NOON - dt.timedelta(hours=1), NOON + dt.timedelta(hours=1)) == {"440999"}


class _Rejecting:
    def __init__(self, err_msg: str) -> None:
        self.err_msg = err_msg

    async def call(self, infno, input, **kw):  # noqa: A002
        raise BusinessRejection(infno, self.err_msg)


async def test_a_no_such_settlement_answer_means_absent() -> None:
    assert await query_entry(_Rejecting("结算信息不存在"), setl_id="S", mdtrt_id="M", psn_no="P",
                             insuplc_admdvs="440100", markers=NOT_FOUND) is None


async def test_any_other_rejection_is_never_read_as_absent() -> None:
    with pytest.raises(BusinessRejection):
        await query_entry(_Rejecting("签到已失效"), setl_id="S", mdtrt_id="M", psn_no="P", insuplc_admdvs="440100", markers=NOT_FOUND)


async def test_an_answer_without_setlinfo_is_not_read_as_absent() -> None:
    from yibao.core.errors import ReconciliationError

    class Empty:
        async def call(self, infno, input, **kw):  # noqa: A002
            return SimpleNamespace(output={})

    with pytest.raises(ReconciliationError):
        await query_entry(Empty(), setl_id="S", mdtrt_id="M", psn_no="P", insuplc_admdvs="", markers=NOT_FOUND)
