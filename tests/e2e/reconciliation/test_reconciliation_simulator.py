"""Reconciliation end to end against the platform simulator (in-process, real HTTP) and the real database.

Differences of every class are planted the way they happen in a hospital:

* platform-only — a settlement made on the platform whose result HIS never got (our call log knows its visit);
* the classic 单边账 — 2207 under the commit-then-timeout fault: the client gets UnknownOutcome and nobody
  resolves it;
* HIS-only — HIS holds a settlement the platform never had;
* amount mismatch — HIS booked other amounts than the platform;
* status mismatch — the platform cancelled a settlement (2208) and HIS never heard of it.

3201 finds the imbalance, 3202 finds each difference, the repairs run (the timed-out settlement is reversed by
2601, the others are written back to HIS), a money-moving repair waits for finance's approval and is applied
once approved, the re-check balances, a new run balances, and the reports show what was planted.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from yibao.core import clock
from yibao.core.db.schema import outbox
from yibao.core.results import HisResult, SettlementSplit
from yibao.envelope.client import NationalClient
from yibao.envelope.errors import UnknownOutcome
from yibao.envelope.settings import PlatformSettings
from yibao.reconciliation.ledger import entry_by_setl_id, record_result
from yibao.reconciliation.models import RunRequest
from yibao.reconciliation.reconciler import Reconciler
from yibao.reconciliation.reports import report_paths
from yibao.reconciliation.runs import differences_of
from yibao.reconciliation.settings import ReconciliationSettings
from yibao.simulator import Simulator, SimulatorSettings

pytestmark = pytest.mark.e2e

OPTINS = ["440100", "440106", "440300"]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorSettings(port=0, admin_port=0, population_size=60, hold_s=1.0)) as s:
        yield s


async def admin(sim: Simulator, method: str, what: str, body: Any = None) -> Any:
    async with httpx.AsyncClient() as c:
        reply = await c.request(method, f"{sim.admin_url}/admin/{what}", json=body)
        reply.raise_for_status()
        return reply.json()


async def settle(client: NationalClient, person: dict[str, Any], amount: str, visit: str) -> dict[str, Any]:
    """1101 → 2201 → 2203 → 2204 → 2206 → 2207 of one outpatient visit; the 2207 setlinfo."""
    ins = person["insuplc_admdvs"]
    info = await client.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"]}})
    psn_no = info.output["baseinfo"]["psn_no"]
    reg = await client.call("2201", {"data": {
        "psn_no": psn_no, "insutype": person["insutype"], "begntime": clock.format_datetime(clock.now()),
        "mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"], "ipt_otp_no": "MZ" + secrets.token_hex(4),
        "atddr_no": "D1", "dr_name": "医生", "dept_code": "K1", "dept_name": "内科", "caty": "A03"}},
        insuplc_admdvs=ins, visit_key=visit)
    mdtrt_id = reg.output["data"]["mdtrt_id"]
    await client.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11",
                                             "begntime": clock.format_datetime(clock.now()), "dise_codg": "J00",
                                             "dise_name": "感冒"},
                               "diseinfo": [{"diag_type": "1", "diag_srt_no": 1, "diag_code": "J00",
                                             "diag_name": "感冒", "diag_dept": "内科", "dise_dor_no": "D1",
                                             "dise_dor_name": "医生", "diag_time": clock.format_datetime(clock.now()),
                                             "vali_flag": "1"}]}, insuplc_admdvs=ins, visit_key=visit)
    total = Decimal(amount)
    await client.call("2204", {"feedetail": [{
        "feedetl_sn": "F1", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1", "rx_circ_flag": "0",
        "fee_ocur_time": clock.format_datetime(clock.now()), "med_list_codg": "XA01", "medins_list_codg": "HXA01",
        "det_item_fee_sumamt": total, "cnt": Decimal("1"), "pric": total, "bilg_dept_codg": "K1",
        "bilg_dept_name": "内科", "bilg_dr_codg": "D1", "bilg_dr_name": "医生", "hosp_appr_flag": "1"}]},
        insuplc_admdvs=ins, visit_key=visit)
    data = {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"], "med_type": "11",
            "medfee_sumamt": total, "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1",
            "acct_used_flag": "1", "insutype": person["insutype"]}
    await client.call("2206", {"data": data}, insuplc_admdvs=ins, visit_key=visit)
    settled = await client.call("2207", {"data": {**data, "fulamt_ownpay_amt": Decimal("0"),
                                                  "overlmt_selfpay": Decimal("0"), "preselfpay_amt": Decimal("0"),
                                                  "inscp_scp_amt": total}}, insuplc_admdvs=ins, visit_key=visit)
    return settled.output["setlinfo"]


def his_result(setlinfo: dict[str, Any], visit: str, *, kind: str = "settled", extra_medfee: str = "0",
               **overrides: Any) -> HisResult:
    """The HisResult the settlement service would have sent HIS for this platform answer."""
    split = SettlementSplit.model_validate({k: str(v) for k, v in setlinfo.items() if k in SettlementSplit.model_fields})
    if extra_medfee != "0":
        bump = Decimal(extra_medfee)
        split = split.model_copy(update={"medfee_sumamt": split.medfee_sumamt + bump,
                                         "psn_cash_pay": split.psn_cash_pay + bump,
                                         "psn_part_amt": split.psn_part_amt + bump})
    fields: dict[str, Any] = dict(
        message_id=f"e2e-{setlinfo['setl_id']}", his_visit_id=visit, visit_kind="outpatient", kind=kind,
        service="settlement", msgid=setlinfo.get("medins_setl_id"), psn_no=setlinfo["psn_no"],
        insutype=setlinfo["insutype"], insuplc_admdvs=setlinfo["clr_optins"], mdtrt_id=setlinfo["mdtrt_id"],
        setl_id=setlinfo["setl_id"], setl_time=clock.parse_datetime(setlinfo["setl_time"]),
        clr_type=setlinfo["clr_type"], clr_optins=setlinfo["clr_optins"], split=split)
    fields.update(overrides)
    return HisResult(**fields)


def book(engine: Engine, *results: HisResult) -> None:
    with engine.begin() as conn:
        for r in results:
            assert record_result(conn, r) == "processed"


def sent(engine: Engine) -> list[HisResult]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)).all()
    return [HisResult.model_validate_json(p) for t, p in rows if t.endswith("yibao.his.results.v1")]


async def test_planted_differences_are_found_repaired_approved_and_balance(sim: Simulator, migrated_engine: Engine,
                                                                          tmp_path: Path) -> None:
    engine = migrated_engine
    persons = [p for p in await admin(sim, "GET", "persons?limit=60") if p["insutype"] == "310"][:7]
    assert len(persons) == 7
    platform = PlatformSettings(base_url=sim.url, retry_backoff_s=0, read_timeout_s=5,
                                settlement_read_timeout_s=0.5)
    async with NationalClient(platform, engine=engine, service="settlement-e2e") as client:
        # both sides agree
        ok1 = await settle(client, persons[0], "25.00", "V-OK1")
        ok2 = await settle(client, persons[1], "31.00", "V-OK2")
        book(engine, his_result(ok1, "V-OK1"), his_result(ok2, "V-OK2"))
        # platform-only: HIS never got the answer
        lost = await settle(client, persons[2], "47.00", "V-LOST")
        # HIS-only: a settlement the platform never had
        ghost = {**ok1, "setl_id": "GHOST" + secrets.token_hex(6), "mdtrt_id": "NOVISIT" + secrets.token_hex(4),
                 "medfee_sumamt": Decimal("19.00"), "fund_pay_sumamt": Decimal("9.00"), "acct_pay": Decimal("0"),
                 "psn_cash_pay": Decimal("10.00"), "psn_part_amt": Decimal("10.00"), "medins_setl_id": None}
        # amount mismatch: HIS booked 5.00 more than the platform
        altered = await settle(client, persons[3], "52.00", "V-AMT")
        # status mismatch: cancelled on the platform, HIS never heard of it
        cancelled = await settle(client, persons[4], "61.00", "V-CXL")
        book(engine, his_result(ghost, "V-GHOST"), his_result(altered, "V-AMT", extra_medfee="5.00"),
             his_result(cancelled, "V-CXL"))
        await client.call("2208", {"data": {"setl_id": cancelled["setl_id"], "mdtrt_id": cancelled["mdtrt_id"],
                                            "psn_no": cancelled["psn_no"]}},
                          insuplc_admdvs=persons[4]["insuplc_admdvs"], visit_key="V-CXL")
        # the classic 单边账: the platform settles, the answer is lost, nobody resolves it
        await admin(sim, "PUT", "faults", {"rules": ["2207:commit_then_timeout:1"]})
        with pytest.raises(UnknownOutcome):
            await settle(client, persons[5], "73.00", "V-TIMEOUT")
        await admin(sim, "PUT", "faults", {"rules": []})
        timeout_entry = next(s for s in await admin(sim, "GET", "settlements") if s["mdtrt_id"] not in {
            ok1["mdtrt_id"], ok2["mdtrt_id"], lost["mdtrt_id"], altered["mdtrt_id"], cancelled["mdtrt_id"]})

        settings = ReconciliationSettings(
            database_url=str(engine.url), reports_dir=tmp_path / "reports", insutypes=["310"], clr_types=["11"],
            setl_optins=OPTINS, auto_approve_classes=["platform_only", "his_only", "status_mismatch"],
            auto_approve_max_amount="1000.00")
        reconciler = Reconciler(engine, client, settings, default_optins=platform.mdtrtarea_admvs,
                                catalog=client.catalog)
        today = RunRequest.for_day(clock.today(), requested_by="finance-e2e")
        run = await reconciler.run(today)

        # everything planted was found, in its class
        with engine.connect() as conn:
            found = {d.setl_id: d for d in differences_of(conn, run.run_id)}
        expected = {lost["setl_id"]: "platform_only", timeout_entry["setl_id"]: "platform_only",
                    ghost["setl_id"]: "his_only", altered["setl_id"]: "amount_mismatch",
                    cancelled["setl_id"]: "status_mismatch"}
        assert {k: d.diff_class for k, d in found.items()} == expected, run.message

        # the amount correction moves money outside the automatic policy: it waits, the run says so
        assert run.state == "differences_found" and "await finance approval" in run.message
        assert found[altered["setl_id"]].status == "pending_approval"
        # the others were repaired during the run
        assert found[timeout_entry["setl_id"]].action == "reverse"
        assert found[timeout_entry["setl_id"]].status == "repaired"
        assert (found[lost["setl_id"]].action, found[lost["setl_id"]].status) == ("adopt", "repaired")
        assert (found[ghost["setl_id"]].action, found[ghost["setl_id"]].status) == ("void", "repaired")
        assert found[cancelled["setl_id"]].action == "adopt_cancellation"
        statuses = {s["setl_id"]: s["status"] for s in await admin(sim, "GET", "settlements")}
        assert statuses[timeout_entry["setl_id"]] == "reversed"  # 冲正 2601 on the platform
        results = {(r.his_visit_id, r.kind) for r in sent(engine) if r.reason_code == "reconciliation_repair"}
        assert {("V-LOST", "settled"), ("V-GHOST", "refunded"), ("V-CXL", "refunded"),
                ("V-TIMEOUT", "rejected")} <= results
        assert not any(r.his_visit_id == "V-AMT" for r in sent(engine))  # blocked until approved

        # finance approves: the correction is applied, the re-check balances
        approved = await reconciler.approve(run.run_id, by="finance-li", reason="platform amounts confirmed")
        assert approved.state == "repaired_and_balanced", approved.message
        with engine.connect() as conn:
            corrected = entry_by_setl_id(conn, altered["setl_id"])
            decided = {d.setl_id: d for d in differences_of(conn, run.run_id)}[altered["setl_id"]]
        assert corrected.medfee_sumamt == Decimal("52.00")
        assert (decided.status, decided.approved_by, decided.approval_reason) == (
            "repaired", "finance-li", "platform amounts confirmed")
        [correction] = [r for r in sent(engine) if r.his_visit_id == "V-AMT"]
        assert correction.kind == "settled" and correction.split.medfee_sumamt == Decimal("52.00")

        # a new run for the same day balances
        again = await reconciler.run(today)
        assert again.state == "balanced", again.message

    # the reports show what was planted, each on its class's sheet, and say the re-check balanced
    workbook = load_workbook(io.BytesIO(report_paths(settings.reports_dir, run.run_id).xlsx.read_bytes()))
    for setl_id, cls in expected.items():
        sheet = workbook[cls]
        header = [c.value for c in sheet[1]]
        assert setl_id in [row[header.index("setl_id")] for row in sheet.iter_rows(min_row=2, values_only=True)]
    summary = [tuple(v for v in row if v is not None) for row in workbook["summary"].iter_rows(values_only=True)]
    assert ("re-check after repair", "balanced / 复核对平") in summary
    html = report_paths(settings.reports_dir, run.run_id).html.read_text(encoding="utf-8")
    assert all(setl_id in html for setl_id in expected)


async def test_a_day_without_settlements_balances(sim: Simulator, migrated_engine: Engine, tmp_path: Path) -> None:
    platform = PlatformSettings(base_url=sim.url, retry_backoff_s=0, read_timeout_s=5)
    async with NationalClient(platform, engine=migrated_engine, service="recon-e2e") as client:
        settings = ReconciliationSettings(database_url=str(migrated_engine.url), reports_dir=tmp_path,
                                          setl_optins=OPTINS)
        run = await Reconciler(migrated_engine, client, settings).run(RunRequest.for_day(clock.today()))
    assert run.state == "balanced" and "no data" in run.message


async def test_a_3202_that_never_returns_fails_the_run_and_stores_nothing(migrated_engine: Engine,
                                                                         tmp_path: Path) -> None:
    async with Simulator(SimulatorSettings(port=0, admin_port=0, population_size=20, hold_s=1.0,
                                           faults=["3202:drop_reply:1"])) as sim:
        person = next(p for p in await admin(sim, "GET", "persons?limit=20") if p["insutype"] == "310")
        platform = PlatformSettings(base_url=sim.url, retry_backoff_s=0, read_timeout_s=0.5)
        async with NationalClient(platform, engine=migrated_engine, service="recon-e2e") as client:
            await settle(client, person, "25.00", "V-1")  # platform-only: 3201 does not balance
            settings = ReconciliationSettings(database_url=str(migrated_engine.url), reports_dir=tmp_path,
                                              setl_optins=OPTINS, insutypes=["310"], clr_types=["11"])
            run = await Reconciler(migrated_engine, client, settings).run(RunRequest.for_day(clock.today()))
    assert run.state == "failed" and "3202" in run.message and "never returned" in run.message
    with migrated_engine.connect() as conn:
        assert differences_of(conn, run.run_id) == []
