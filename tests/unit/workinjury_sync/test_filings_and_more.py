"""Filings (GYU001 after GYD001, GYU002 then GYU006, GYU007), device settlements (GYD051 then GYU303), month-ends
(GYU003, once a month) and institutions (GYU009) — each checked here before sending, the field named."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

from unit.workinjury_sync.harness import ORG, Harness
from yibao.workinjury_sync.streams import stream_key


async def _downloaded(h: Harness) -> None:
    h.offer_applications()
    h.start_streams("GYD001")
    await h.drain()
    assert h.feed_back() == 3
    await h.drain()


async def test_an_audit_goes_up_once_its_application_was_downloaded_and_answers_the_filing_number(
        h: Harness) -> None:
    p = h.month.patients[0]
    h.his(h.month.audit(p, h.now()))
    await h.drain()
    assert "GYU001" not in h.transport.sent and h.status(f"application:{p.apply_no}") == "waiting"
    await _downloaded(h)
    (result,) = h.results(f"application:{p.apply_no}")
    assert result.kind == "uploaded" and result.platform_ids["filing_no"].startswith("BA")
    assert h.sim.workinjury.applications[p.apply_no]["status"] == "approved"


async def test_a_rejecting_audit_needs_its_opinion(h: Harness) -> None:
    p = h.month.patients[0]
    await _downloaded(h)
    h.his(h.month.audit(p, h.now(), result="2"))
    await h.drain()
    (result,) = h.results(f"application:{p.apply_no}")
    assert result.kind == "invalid" and result.reason.startswith("audit_list.audit_opinion: required")
    h.his(h.month.audit(p, h.now(), result="2", opinion="材料不全"))
    await h.drain()
    assert [r.kind for r in h.results(f"application:{p.apply_no}")] == ["invalid", "uploaded"]
    assert h.sim.workinjury.applications[p.apply_no]["status"] == "rejected"


async def test_an_application_never_downloaded_is_not_audited(make_h) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    h: Harness = make_h(orphan_timeout_s=0.2)
    p = h.month.patients[0]
    h.his(h.month.audit(p, h.now()))
    await asyncio.sleep(0.3)
    await h.drain()
    (result,) = h.results(f"application:{p.apply_no}")
    assert result.reason_code == "not_downloaded" and "GYU001" not in h.transport.sent


def _local_filing(h: Harness, p, **over):  # type: ignore[no-untyped-def]
    now = h.now().isoformat()
    return {"type": "filing_registered", "event_id": f"lf-{p.apply_no}-{len(h.transport.sent)}", "occurred_at": now,
            "filing_no": f"LF{p.apply_no}", "psn_no": p.person.psn_no, "certno": p.certno,
            "psn_name": p.person.psn_name, "insu_admdvs": "440100", "mdtrt_admdvs": "350100", "org_type": "2",
            "begin_date": "2026-11-01", "end_date": "2026-12-31", "audit_time": now,
            "attachments": [{"atta_no": "F1", "atta_name": "工伤认定书.pdf", "atta_type": "01",
                             "file_content": "JVBERi0xLjQK"}], **over}


async def test_a_local_filing_uploads_its_attachments_first(h: Harness) -> None:
    p = h.month.patients[0]
    h.his(_local_filing(h, p))
    await h.drain()
    assert h.transport.sent == ["GYU002", "GYU006"]
    (result,) = h.results(f"filing:LF{p.apply_no}")
    assert result.kind == "uploaded" and h.sim.workinjury.filings[f"LF{p.apply_no}"]["filing_status"] == "1"


async def test_a_filing_never_goes_from_invalid_back_to_valid(h: Harness) -> None:
    p = h.month.patients[0]
    h.his(_local_filing(h, p))
    now = h.now().isoformat()

    def update(status: str, n: int) -> dict:
        return {"type": "filing_updated", "event_id": f"up-{n}", "occurred_at": now, "filing_no": f"LF{p.apply_no}",
                "filing_status": status, "change_reason": "变更", "change_time": now}

    h.his(update("0", 1))
    await h.drain()
    h.his(update("1", 2))
    await h.drain()
    kinds = [(r.request, r.kind) for r in h.results(f"filing:LF{p.apply_no}")]
    assert kinds == [("filing", "uploaded"), ("filing_update", "uploaded"), ("filing_update", "invalid")]
    assert "never becomes 有效" in h.results(f"filing:LF{p.apply_no}")[-1].reason
    assert h.sim.workinjury.filings[f"LF{p.apply_no}"]["filing_status"] == "0"


async def test_a_device_settlement_is_verified_with_gyd051_first(h: Harness) -> None:
    p = h.month.patients[0]
    h.sim.workinjury.add_filing({"filing_no": "FD1", "psn_no": p.person.psn_no, "certno": p.certno,
                                 "psn_name": p.person.psn_name, "insu_admdvs": "350100", "mdtrt_admdvs": "440100",
                                 "org_type": "3", "begin_date": "2026-11-01", "end_date": "2026-12-31"})
    now = h.now().isoformat()
    h.his({"type": "device_settled", "event_id": "dev-1", "occurred_at": now, "setl_no": "FJ1", "filing_no": "FD1",
           "psn_no": p.person.psn_no, "certno": p.certno, "setl_time": "2026-11-20T10:00:00+08:00",
           "medfee_sumamt": "3000.00", "pool_amt": "2700.00", "self_amt": "300.00",
           "items": [{"device_code": "FJ001", "device_name": "假肢", "price": "1500.00", "cnt": "2",
                      "amount": "3000.00"}]})
    await h.drain()
    assert h.transport.sent == ["GYD051", "GYU303"]
    assert h.results("device:FJ1")[0].kind == "uploaded"
    assert h.sim.workinjury.device_settlements["FJ1"]["status"] == "active"


async def _settled(h: Harness, p) -> None:  # type: ignore[no-untyped-def]
    filing_no = h.approved_filing(p)
    h.his(h.month.admitted(p, filing_no, h.now()))
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    await h.drain()


async def test_a_month_end_whose_totals_do_not_add_up_is_refused_a_right_one_goes_up_once(h: Harness) -> None:
    ps = h.month.patients[:2]
    for p in ps:
        await _settled(h, p)
    settled = [(p, p.totals(), Decimal("0.00")) for p in ps]
    wrong = h.month.month_end(settled, Decimal("0.00"), h.now())
    wrong["pool_amt"] = str(Decimal(wrong["pool_amt"]) + Decimal("1"))
    h.his(wrong)
    await h.drain()
    h.his(h.month.month_end(settled, Decimal("0.00"), h.now()))
    await h.drain()
    h.his(h.month.month_end(settled, Decimal("0.00"), h.now()))
    await h.drain()
    first, second, third = h.results(f"month:{ORG}:202611")
    assert first.kind == "invalid" and first.reason.startswith("month_list.pool_amt: not the sum")
    assert second.kind == "uploaded"
    assert third.kind == "refused" and third.reason_code == "already_done"
    assert h.transport.sent.count("GYU003") == 1


async def test_a_month_end_without_visits_is_refused(h: Harness) -> None:
    h.his(h.month.month_end([], Decimal("0.00"), h.now()))
    await h.drain()
    (result,) = h.results(f"month:{ORG}:202611")
    assert result.kind == "invalid" and result.reason.startswith("month_list.visit_count: a month-end needs")


async def test_only_the_latest_version_of_an_institution_waiting_goes_up(h: Harness) -> None:
    now = h.now()

    def org(n: int, name: str) -> dict:
        return {"type": "institution_changed", "event_id": f"org-{n}",
                "occurred_at": (now + _dt.timedelta(seconds=n)).isoformat(), "org_code": "H35010000009",
                "org_name": name, "org_type": "2", "admdvs": "350100", "agreement_begin": "2026-01-01",
                "agreement_end": "2027-12-31"}

    h.his_burst(org(1, "旧名称"), org(2, "新名称"))
    await h.drain()
    assert h.transport.sent == ["GYU009"]
    assert h.sim.workinjury.institutions["H35010000009"]["org_name"] == "新名称"
    assert {r.kind for r in h.results("org:H35010000009")} == {"uploaded"}
