"""A generated week of what HIS owes the platforms besides its settlements: one record of every upload the
scheduler knows (libs' view: plain JSON-able dicts in the shape of ``yibao.upload_scheduler.models.UploadSource``),
for the demo, the tests and the bench.

Each day: inpatients discharged and settled (their 结算清单 content, 病案首页, 医嘱, 检查/检验/病理/输血/生命体征, 电子病历
and the DRG platform's page, list and fee document), outpatients (门急诊诊疗记录, 电子处方 and their payment status,
自费 lines for the self-paying, 发热 visits, 流感 cases), the pharmacy's 进销存 with 药品追溯码 and the 一码通 documents,
epidemic indicators every 15 minutes of the day's opening hours; once: departments, catalogue pairings, the DRG
platform's hospital and department matches; withdrawals (a pairing, a department, a batch, a prescription).

``bad`` plants records the platform (or the catalog) refuses — a main diagnosis given twice, amounts that do not
add up, a catalogue code the platform does not know, a required field missing, a trace code of 19 digits … — each
with its ``fix`` (the same key, corrected): a new revision HIS would send once the rejection was read.

Nothing here is real: names and certnos come from :func:`yibao.fakedata.people.population`.
"""

from __future__ import annotations

import datetime as _dt
import random

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.fakedata.people import Person, population

__all__ = ["UploadItem", "UploadWeek", "Settled", "generate_uploads", "EVERY_KIND"]

EVERY_KIND: tuple[str, ...] = (
    "4101", "4201", "4301", "4302", "4401", "4402", "4501", "4502", "4503", "4504", "4505", "4506", "4601", "4602",
    "4701", "3301", "3302", "3401", "3403", "3501", "3502", "3503", "3504", "3505", "3506", "3507", "7101", "7104",
    "7105", "zifei.fee", "yimatong.inbound", "drg.hospital", "drg.dept_match", "drg.mrpage", "drg.setl_list",
    "drg.fee", "epidemic.indicators", "flu.case", "flu.discharge", "flu.summary", "flu.death", "flu.drug", "flu.lab",
    "fever.visit")
NATIONAL = tuple(k for k in EVERY_KIND if k[0].isdigit())


@dataclass(frozen=True)
class UploadItem:
    source_id: str
    kind: str
    record: dict[str, Any]
    occurred_at: _dt.datetime
    record_key: str | None = None
    his_visit_id: str | None = None
    op: str = "upsert"
    bad: str | None = None  #: why the platform (or the catalog) refuses it
    insuplc_admdvs: str | None = None  #: the patient's 参保地 (records that carry psn_no)

    def message(self) -> dict[str, Any]:
        """The UploadSource message (JSON-able: Decimals stay Decimals for an exact writer)."""
        msg: dict[str, Any] = {"source_id": self.source_id, "kind": self.kind, "op": self.op,
                               "occurred_at": self.occurred_at.isoformat(), "record": self.record}
        if self.record_key:
            msg["record_key"] = self.record_key
        if self.his_visit_id:
            msg["his_visit_id"] = self.his_visit_id
        if self.insuplc_admdvs:
            msg["insuplc_admdvs"] = self.insuplc_admdvs
        return msg


@dataclass(frozen=True)
class Settled:
    """An inpatient settlement (his_results ``settled``): it opens the stay's 4101 before its content arrives."""

    setl_id: str
    his_visit_id: str
    setl_time: _dt.datetime
    medfee_sumamt: Decimal


@dataclass
class UploadWeek:
    items: list[UploadItem] = field(default_factory=list)
    #: the corrected revisions of the planted bad records (key → item), sent once the rejections are read
    fixes: dict[tuple[str, str], UploadItem] = field(default_factory=dict)
    settled: list[Settled] = field(default_factory=list)

    def kinds(self) -> set[str]:
        return {i.kind for i in self.items}

    def bad(self) -> list[UploadItem]:
        return [i for i in self.items if i.bad]


def _m(value: str) -> Decimal:
    return Decimal(value)


def _fmt(t: _dt.datetime) -> str:
    return clock.format_datetime(t)


def _day(t: _dt.datetime | _dt.date) -> str:
    return t.strftime("%Y-%m-%d")


class _Gen:
    def __init__(self, seed: int, fixmedins_code: str, codes: list[str], people: list[Person]) -> None:
        self.rng = random.Random(seed)
        self.code = fixmedins_code
        self.codes = codes
        self.people = people
        self.week = UploadWeek()
        self.serial = 0
        self.person_i = 0
        self.insuplc: str | None = None

    def person(self) -> Person:
        self.person_i += 1
        return self.people[self.person_i % len(self.people)]

    def sid(self, kind: str) -> str:
        self.serial += 1
        return f"{kind}-{self.serial:06d}"

    def add(self, kind: str, record: dict[str, Any], when: _dt.datetime, *, key: str | None = None,
            visit: str | None = None, bad: str | None = None, fix: dict[str, Any] | None = None,
            fix_key: str | None = None) -> None:
        self.week.items.append(UploadItem(self.sid(kind), kind, record, when, key, visit, bad=bad,
                                          insuplc_admdvs=self.insuplc))
        if fix is not None:
            assert fix_key is not None
            self.week.fixes[(kind, fix_key)] = UploadItem(self.sid(kind), kind, fix, when, key, visit,
                                                          insuplc_admdvs=self.insuplc)

    # --- inpatients -----------------------------------------------------------------------------------------
    def inpatient(self, day: _dt.date, n: int, *, bad: bool) -> None:
        p = self.person()
        self.insuplc = p.insuplc_admdvs
        visit = f"ZY{day:%Y%m%d}{n:03d}"
        mdtrt_sn = f"{self.code}{visit}"
        adm = _dt.datetime.combine(day - _dt.timedelta(days=3), _dt.time(9, 0), tzinfo=clock.SHANGHAI)
        dscg = _dt.datetime.combine(day, _dt.time(10, 0), tzinfo=clock.SHANGHAI)
        setl_time = dscg + _dt.timedelta(hours=1)
        setl_id = f"S{day:%Y%m%d}{n:05d}"
        total = _m(f"{1000 + 37 * n}.50")
        self.week.settled.append(Settled(setl_id, visit, setl_time, total))
        dise = [{"diag_type": "1", "diag_code": "J18.900", "diag_name": "肺炎", "maindiag_flag": "1"},
                {"diag_type": "1", "diag_code": "I10.x00", "diag_name": "高血压", "maindiag_flag": "0"}]
        setlinfo = {
            "mdtrt_id": f"M{setl_id}", "setl_id": setl_id, "fixmedins_name": "模拟医院", "fixmedins_code": self.code,
            "medcasno": f"BA{visit}", "psn_name": p.psn_name, "gend": p.gend, "brdy": _day(p.brdy), "ntly": "CHN",
            "naty": "01", "patn_cert_type": "01", "certno": p.certno, "prfs": "17", "coner_name": "联系人",
            "patn_rlts": "1", "coner_addr": "地址", "coner_tel": "13800000000", "hi_type": p.insutype[:3],
            "insuplc": p.insuplc_admdvs, "ipt_med_type": "1", "adm_caty": "A03", "dscg_caty": "A03",
            "maindiag_flag": "1", "bill_code": "BC01", "bill_no": f"BN{n:06d}", "biz_sn": visit,
            "setl_begn_date": _day(adm), "setl_end_date": _day(dscg), "psn_selfpay": _m("100.00"),
            "psn_ownpay": _m("20.00"), "acct_pay": _m("0.00"), "psn_cashpay": _m("120.00"), "hi_paymtd": "1",
            "hsorg": "佛山市医保局", "hsorg_opter": "经办员", "medins_fill_dept": "病案室", "medins_fill_psn": "填报员"}
        good = {"setlinfo": setlinfo, "payinfo": [{"fund_pay_type": "310100", "fund_payamt": total - _m("120.00")}],
                "diseinfo": dise}
        if bad:
            wrong = {**good, "diseinfo": [dict(d, maindiag_flag="1") for d in dise]}
            self.add("4101", wrong, setl_time, visit=visit, bad="主诊断不唯一", fix=good, fix_key=setl_id)
        else:
            self.add("4101", good, setl_time, visit=visit)
        base = {"mdtrt_sn": mdtrt_sn, "psn_no": p.psn_no, "medcasno": f"BA{visit}", "psn_name": p.psn_name,
                "gend": p.gend, "adm_date": _day(adm), "dscg_date": _day(dscg), "medfee_sumamt": total,
                "vali_flag": "1", "fixmedins_code": self.code}
        self.add("4401", {"baseinfo": base, "diseinfo": [
            {"diag_code": "J18.900", "maindiag_flag": "1", "vali_flag": "1", "ipt_medcas_hmpg_sn": visit,
             "mdtrt_sn": mdtrt_sn}]}, dscg, visit=visit)
        orders = []
        for j in range(3):
            begin = adm + _dt.timedelta(hours=j * 6)
            end = begin + _dt.timedelta(days=1)
            orders.append({"mdtrt_sn": mdtrt_sn, "psn_no": p.psn_no, "drord_no": f"YZ{visit}{j}",
                           "medc_begntime": _fmt(begin), "medc_endtime": _fmt(end), "vali_flag": "1",
                           "medcas_drord_detl_id": f"{visit}-{j}"})
        for j, order in enumerate(orders):
            if bad and j == 1:
                wrong = dict(order, medc_endtime=_fmt(adm - _dt.timedelta(days=1)))
                self.add("4402", wrong, dscg, visit=visit, bad="用药停止时间早于开始时间",
                         fix=order, fix_key=order["medcas_drord_detl_id"])
            else:
                self.add("4402", order, dscg, visit=visit)
        rpt = f"R{visit}"
        self.add("4501", {"examinfo": {"mdtrt_sn": mdtrt_sn, "rpotc_no": rpt, "exam_item_name": "胸部CT",
                                       "vali_flag": "1"}}, dscg, visit=visit)
        self.add("4502", {"labinfo": {"mdtrt_sn": mdtrt_sn, "rpotc_no": rpt + "L", "vali_flag": "1"}}, dscg, visit=visit)
        self.add("4503", {"data": {"mdtrt_sn": mdtrt_sn, "appy_no": f"A{n}", "rpotc_no": rpt + "B"}}, dscg, visit=visit)
        self.add("4504", {"data": {"mdtrt_sn": mdtrt_sn, "appy_no": f"A{n}", "rpotc_no": rpt + "Y"}}, dscg, visit=visit)
        self.add("4505", {"data": {"mdtrt_sn": mdtrt_sn, "palg_no": f"P{visit}", "frozen_no": f"F{visit}"}}, dscg,
                 visit=visit)
        self.add("4506", {"mdtrt_sn": mdtrt_sn, "appy_no": f"U{visit}", "otp_ipt_flag": "2", "exam_test_flag": "1"},
                 dscg, visit=visit)
        self.add("4601", {"data": {"mdtrt_sn": mdtrt_sn, "bld_time": _fmt(adm + _dt.timedelta(days=1)),
                                   "vali_flag": "1"}}, dscg, visit=visit)
        vitals = {"mdtrt_sn": mdtrt_sn, "dept_code": "A03", "dept_name": "内科", "wardarea_name": "一病区",
                  "bedno": "12", "diag_code": "J18.900", "adm_time": _fmt(adm), "act_ipt_days": Decimal(3),
                  "afpn_days": Decimal(0), "rcd_time": _fmt(adm + _dt.timedelta(hours=8)), "vent_frqu": Decimal(18),
                  "use_vent_flag": "0", "pule": Decimal(80), "pat_heart_rate": Decimal(80), "tprt": _m("36.8"),
                  "systolic_pre": "120", "dstl_pre": "80", "wt": _m("65.0"), "abde": _m("80.0"),
                  "nurscare_obsv_item_name": "一般护理", "nurscare_obsv_rslt": "平稳", "nurs_name": "护士",
                  "sign_time": _fmt(adm + _dt.timedelta(hours=8)), "vali_flag": "1"}
        self.add("4602", {"data": vitals}, dscg, visit=visit)
        self.add("4701", {"adminfo": {"mdtrt_sn": mdtrt_sn, "mdtrtsn": visit, "name": p.psn_name, "gend": p.gend,
                                      "adm_rec_no": f"RY{n:05d}", "wardarea_name": "一病区", "dept_code": "A03",
                                      "dept_name": "内科", "bedno": "12", "chfcomp": "咳嗽三天", "dise_now": "发热咳嗽",
                                      "vali_flag": "1"}}, dscg, visit=visit)
        page = {"mrpage": {"mdtrt_sn": mdtrt_sn, "medcasno": f"BA{visit}", "psn_name": p.psn_name,
                           "adm_date": _day(adm), "dscg_date": _day(dscg), "main_diag_code": "J18.900",
                           "medfee_sumamt": total}}
        if bad:
            wrong = {"mrpage": dict(page["mrpage"], dscg_date=_day(adm - _dt.timedelta(days=1)))}
            self.add("drg.mrpage", wrong, dscg, visit=visit, bad="出院日期早于入院日期", fix=page, fix_key=mdtrt_sn)
        else:
            self.add("drg.mrpage", page, dscg, visit=visit)
        self.add("drg.setl_list", {"setllist": {"setl_id": setl_id, "mdtrt_sn": mdtrt_sn, "medfee_sumamt": total,
                                                "fund_pay_sumamt": total - _m("120.00")}}, setl_time, visit=visit)
        self.add("drg.fee", {"feedoc": {"doc_no": f"FD{visit}", "mdtrt_sn": mdtrt_sn, "items": [
            {"item_code": self.codes[n % len(self.codes)], "amt": total}]}}, setl_time, visit=visit)
        self.add("flu.discharge", {"case": {"case_id": f"FL{visit}", "visit_type": "2", "psn_name": p.psn_name,
                                            "diag_code": "J11.100", "diag_name": "流行性感冒"}}, dscg, visit=visit)
        self.add("flu.summary", {"summary": {"case_id": f"FL{visit}", "summary_text": "流感病例好转出院"}}, dscg,
                 visit=visit)
        self.add("flu.lab", {"lab": {"case_id": f"FL{visit}", "report_no": rpt + "FLU", "item_name": "甲型流感病毒抗原",
                                     "result": "阳性"}}, dscg, visit=visit)
        self.add("flu.drug", {"drug": {"case_id": f"FL{visit}", "order_no": f"YZ{visit}0", "drug_name": "奥司他韦",
                                       "use_time": _fmt(adm)}}, dscg, visit=visit)

    # --- outpatients ----------------------------------------------------------------------------------------
    def outpatient(self, day: _dt.date, n: int, *, bad: bool) -> None:
        p = self.person()
        self.insuplc = p.insuplc_admdvs
        visit = f"MZ{day:%Y%m%d}{n:03d}"
        mdtrt_sn = f"{self.code}{visit}"
        when = _dt.datetime.combine(day, _dt.time(9 + n % 8, 15), tzinfo=clock.SHANGHAI)
        self.add("4301", {"rgstinfo": {"mdtrt_sn": mdtrt_sn, "psn_no": p.psn_no, "vali_flag": "1"},
                          "caseinfo": {"mdtrt_date": _day(when), "chfcomp": "发热", "vali_flag": "1"}}, when, visit=visit)
        if n % 3 == 0:
            self.add("4302", {"oprninfo": {"mdtrt_sn": mdtrt_sn, "oprn_oprt_sn": 1, "oprn_oprt_code": "93.9000",
                                           "oprn_oprt_name": "吸氧", "oprn_oprt_tagt_part_name": "鼻",
                                           "itvt_name": "无", "oprn_oprt_mtd_dscr": "鼻导管", "oprn_oprt_cnt": 1,
                                           "oprn_oprt_time": _fmt(when), "vali_flag": "1"}}, when, visit=visit)
        rxno = f"RX{visit}"
        rx = {"data": {"hosp_rxno": rxno, "rx_type_code": "1", "prsc_time": _fmt(when), "rx_drug_nums": Decimal(1),
                       "valid_days": 3, "valid_end_time": _fmt(when + _dt.timedelta(days=3)), "rx_cotn_flag": "0",
                       "rx_file": "UEsDBA==", "rx_circ_flag": "1"},
              "rxdrugdetail": [{"med_list_codg": self.codes[n % len(self.codes)], "drug_genname": "阿莫西林",
                                "drug_dosform": "胶囊", "drug_spec": "0.25g", "drug_cnt": Decimal(12),
                                "drug_cnt_unit": "粒", "medc_way_dscr": "口服", "medc_starttime": _fmt(when),
                                "medc_endtime": _fmt(when + _dt.timedelta(days=3)), "medc_days": Decimal(3)}],
              "mdtrtinfo": {"mdtrt_id": f"M{visit}", "med_type": "11", "ipt_op_no": visit, "psn_no": p.psn_no,
                            "patn_name": p.psn_name, "age": Decimal(p.age_on(day)), "gend": p.gend}}
        self.add("7101", rx, when, visit=visit)
        if n % 2 == 0:
            self.add("7105", {"data": {"hosp_rxno": rxno, "rx_pay_status_code": "1",
                                       "pay_time": _fmt(when + _dt.timedelta(minutes=30))}}, when, visit=visit)
        elif n % 5 == 1:
            self.add("7104", {"data": {"prsc_dr_name": "医生", "undo_dr_cert_type": "01",
                                       "undo_dr_certno": "440100198001010011", "undo_rea": "开错药",
                                       "undo_time": _fmt(when + _dt.timedelta(minutes=10))}}, when, key=rxno, visit=visit)
        lines = []
        for j in range(2):
            cnt, pric = Decimal(2 + j), _m(f"{5 + j}.500000")
            amt = (cnt * pric).quantize(Decimal("0.01"))
            lines.append({"mdtrt_sn": mdtrt_sn, "ipt_otp_no": visit, "med_type": "11", "chrg_bchno": "1",
                          "feedetl_sn": f"{visit}{j}", "psn_cert_type": "01", "certno": p.certno,
                          "psn_name": p.psn_name, "fee_ocur_time": _fmt(when), "cnt": cnt, "pric": pric,
                          "det_item_fee_sumamt": amt, "med_list_codg": self.codes[j % len(self.codes)],
                          "medins_list_codg": f"H{j:05d}", "medins_list_name": "自费项目", "med_chrgitm_type": "09",
                          "prodname": "商品", "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D01",
                          "bilg_dr_name": "医生", "dscg_tkdrug_flag": "0"})
        if bad:
            wrong = [dict(lines[0], det_item_fee_sumamt=lines[0]["det_item_fee_sumamt"] + 1), lines[1]]
            self.add("4201", {"feedetail": wrong}, when, visit=visit, bad="明细金额与数量单价不符",
                     fix={"feedetail": lines}, fix_key=mdtrt_sn)
        else:
            self.add("4201", {"feedetail": lines}, when, visit=visit)
        fees = [{"fee_sn": l["feedetl_sn"], "item_code": l["med_list_codg"], "item_name": "自费项目", "cnt": l["cnt"],
                 "pric": l["pric"], "amt": l["det_item_fee_sumamt"], "fee_time": _fmt(when)} for l in lines]
        zf = {"visit_no": visit, "visit_type": "1", "psn_cert_type": "01", "certno": p.certno, "psn_name": p.psn_name,
              "visit_time": _fmt(when), "dept_code": "A03", "medfee_sumamt": sum(f["amt"] for f in fees), "fees": fees}
        if bad:
            self.add("zifei.fee", {**zf, "medfee_sumamt": zf["medfee_sumamt"] + 1}, when, visit=visit,
                     bad="与明细合计不符", fix=zf, fix_key=visit)
        else:
            self.add("zifei.fee", zf, when, visit=visit)
        self.add("fever.visit", {"visit": {"visit_no": visit, "visit_time": _fmt(when), "tprt": _m("38.5"),
                                           "diag_name": "发热"}}, when, visit=visit)
        case = {"case": {"case_id": f"FL{visit}", "visit_type": "1", "psn_name": p.psn_name, "chfcomp": "发热咳嗽"}}
        if bad:
            self.add("flu.case", {"case": {"case_id": f"FL{visit}", "visit_type": "1", "psn_name": p.psn_name}}, when,
                     visit=visit, bad="诊断或主诉至少其一", fix=case, fix_key=f"FL{visit}")
        else:
            self.add("flu.case", case, when, visit=visit)
        if n == 0:
            self.add("flu.death", {"death": {"case_id": f"FL{visit}", "death_time": _fmt(when + _dt.timedelta(hours=5)),
                                             "death_cause": "重症肺炎"}}, when, visit=visit)

    # --- pharmacy -------------------------------------------------------------------------------------------
    def pharmacy(self, day: _dt.date, n: int, *, bad: bool, delete: bool = False) -> None:
        self.insuplc = None
        when = _dt.datetime.combine(day, _dt.time(14, n % 60), tzinfo=clock.SHANGHAI)
        code = self.codes[n % len(self.codes)]
        bch = f"PC{day:%Y%m%d}{n:04d}"
        made, ends = "2024-01-01", "2027-01-01"
        trace = [{"drug_trac_codg": f"8{day:%Y%m%d}{n:011d}"}]
        common = {"med_list_codg": code, "fixmedins_hilist_id": f"H{n % 50:05d}", "fixmedins_hilist_name": "阿莫西林胶囊",
                  "fixmedins_bchno": bch, "rx_flag": "1"}
        purc = {**common, "spler_name": "配送企业", "manu_lotnum": f"L{n:05d}", "manu_date": made, "expy_end": ends,
                "purc_retn_cnt": Decimal(100), "purc_retn_stoin_time": _fmt(when), "purc_retn_opter_name": "库管",
                "drugtracinfo": trace}
        if bad:
            self.add("3503", {"purcinfo": {**purc, "expy_end": "2023-01-01"}}, when, bad="有效期止早于生产日期",
                     fix={"purcinfo": purc}, fix_key=bch)
        else:
            self.add("3503", {"purcinfo": purc}, when)
        self.add("3501", {"invinfo": {**common, "invdate": _day(when), "inv_cnt": _m("100.00"),
                                      "manu_date": made, "expy_end": ends, "drugtracinfo": trace}}, when)
        self.add("3502", {"invinfo": {**common, "inv_chg_type": "101", "pric": _m("0.500000"), "cnt": Decimal(10),
                                      "inv_chg_time": _fmt(when), "trdn_flag": "0"}}, when)
        sale_time = when + _dt.timedelta(hours=1)
        self.add("3505", {"selinfo": {**common, "manu_lotnum": f"L{n:05d}", "manu_date": made, "rx_flag": "1",
                                      "trdn_flag": "0", "sel_retn_cnt": Decimal(2), "sel_retn_time": _fmt(sale_time),
                                      "sel_retn_opter_name": "药师", "drugtracinfo": trace}}, when)
        if n % 4 == 0:
            self.add("3504", {"purcinfo": {**purc, "purc_retn_cnt": Decimal(5),
                                           "purc_retn_stoin_time": _fmt(when + _dt.timedelta(hours=2))}}, when)
            self.add("3506", {"selinfo": {**common, "manu_lotnum": f"L{n:05d}", "manu_date": made, "rx_flag": "1",
                                          "trdn_flag": "0", "sel_retn_cnt": Decimal(1),
                                          "sel_retn_time": _fmt(sale_time + _dt.timedelta(hours=1)),
                                          "sel_retn_opter_name": "药师"}}, when)
        if delete:
            self.add("3507", {"data": {"fixmedins_bchno": bch, "inv_data_type": "2"}}, when)
        doc = {"doc_no": f"RK{day:%Y%m%d}{n:04d}", "doc_type": "1", "doc_time": _fmt(when), "supplier_name": "配送企业",
               "items": [{"med_list_codg": code, "drug_name": "阿莫西林胶囊", "manu_lotnum": f"L{n:05d}",
                          "cnt": Decimal(100), "trace_codes": [{"drug_trac_codg": trace[0]["drug_trac_codg"]}]}]}
        if bad:
            wrong = {**doc, "items": [dict(doc["items"][0], trace_codes=[{"drug_trac_codg": trace[0]["drug_trac_codg"][:19]}])]}
            self.add("yimatong.inbound", wrong, when, bad="追溯码格式错误", fix=doc, fix_key=doc["doc_no"])
        else:
            self.add("yimatong.inbound", doc, when)

    # --- once a week ----------------------------------------------------------------------------------------
    def setup(self, start: _dt.date) -> None:
        self.insuplc = None
        when = _dt.datetime.combine(start, _dt.time(8, 0), tzinfo=clock.SHANGHAI)
        for i, (code, name) in enumerate((("A03", "内科"), ("A04", "外科"), ("A05", "妇产科"), ("A07", "儿科"))):
            dept = {"hosp_dept_codg": f"D{i:03d}", "caty": code, "hosp_dept_name": name, "begntime": _fmt(when),
                    "itro": f"{name}简介", "dept_resper_name": "主任", "dept_resper_tel": "0757-00000000",
                    "dept_estbdat": "2001-01-01 00:00:00", "aprv_bed_cnt": 40, "poolarea_no": "440600",
                    "dr_psncnt": 10, "phar_psncnt": 2, "nurs_psncnt": 20, "tecn_psncnt": 3}
            if i == 1:  # a required field missing: the catalog parks it naming the field
                self.add("3401", {"deptinfo": {k: v for k, v in dept.items() if k != "itro"}}, when,
                         bad="deptinfo.itro: required", fix={"deptinfo": dept}, fix_key=dept["hosp_dept_codg"])
            else:
                self.add("3401", {"deptinfo": dept}, when)
            self.add("drg.dept_match", {"match": {"hosp_dept_code": f"D{i:03d}", "hosp_dept_name": name,
                                                  "std_dept_code": f"A{i + 1:02d}"}}, when)
        self.add("3403", {"data": {"hosp_dept_codg": "D003", "hosp_dept_name": "儿科",
                                   "begntime": _fmt(when)}}, when + _dt.timedelta(days=1))  # never in the future
        # (the demo's week starts the day before yesterday: two days on would be today 08:00, not yet come before it)
        for i in range(6):
            pairing = {"fixmedins_hilist_id": f"H{i:05d}", "fixmedins_hilist_name": f"院内项目{i}", "list_type": "101",
                       "med_list_codg": self.codes[i % len(self.codes)], "begndate": _day(start)}
            if i == 2:
                self.add("3301", {"data": {**pairing, "med_list_codg": "XX99999999"}}, when,
                         bad="医疗目录编码不存在", fix={"data": pairing}, fix_key=pairing["fixmedins_hilist_id"])
            else:
                self.add("3301", {"data": pairing}, when)
        self.add("3302", {"data": {"fixmedins_code": self.code, "fixmedins_hilist_id": "H00005", "list_type": "101",
                                   "med_list_codg": self.codes[5 % len(self.codes)]}}, when + _dt.timedelta(days=1))
        self.add("drg.hospital", {"hospital": {"org_code": self.code, "org_name": "模拟医院", "hosp_lv": "3",
                                               "admdvs": "440600"}}, when)

    def epidemic(self, day: _dt.date, *, bad: bool) -> None:
        self.insuplc = None
        for q in range(8):  # 08:00-10:00, every 15 minutes
            start = _dt.datetime.combine(day, _dt.time(8, 0), tzinfo=clock.SHANGHAI) + _dt.timedelta(minutes=15 * q)
            end = start + _dt.timedelta(minutes=15)
            for code in ("YQ_FRMZ_JZRS", "YQ_HSJC_RS"):
                row = {"indicator_code": code, "period_start": _fmt(start), "period_end": _fmt(end),
                       "value": Decimal(self.rng.randint(0, 40))}
                key = f"{code}|{_fmt(start)}"
                if bad and q == 3 and code == "YQ_HSJC_RS":
                    self.add("epidemic.indicators", dict(row, period_end=_fmt(start)), end,
                             bad="period_end 不晚于 period_start", fix=row, fix_key=key)
                else:
                    self.add("epidemic.indicators", row, end)


def generate_uploads(seed: int, start: _dt.date, *, days: int = 7, inpatients: int = 2, outpatients: int = 3,
                     pharmacy: int = 2, fixmedins_code: str = "H44010600001", codes: list[str] | None = None,
                     bad_day: int | None = 1, kinds: tuple[str, ...] | None = None) -> UploadWeek:
    """A week (``days``) of uploads from ``start``. ``codes``: valid 医疗目录编码 of the platform (3301, 7101 …);
    ``bad_day``: the day (0-based) whose first records of each kind are planted bad, with their fixes;
    ``kinds``: keep only these (the others are left out)."""
    people = population(seed, 60)
    gen = _Gen(seed, fixmedins_code, codes or [f"XA{i:08d}" for i in range(20)], people)
    gen.setup(start)
    for d in range(days):
        day = start + _dt.timedelta(days=d)
        bad = bad_day is not None and d == bad_day
        for n in range(inpatients):
            gen.inpatient(day, n, bad=bad and n == 0)
        for n in range(outpatients):
            gen.outpatient(day, n, bad=bad and n == 0)
        for n in range(pharmacy):
            gen.pharmacy(day, n, bad=bad and n == 0, delete=(d == 2 and n == 1))
        gen.epidemic(day, bad=bad)
    week = gen.week
    if kinds is not None:
        keep = set(kinds)
        week.items = [i for i in week.items if i.kind in keep]
        week.fixes = {k: v for k, v in week.fixes.items() if k[0] in keep}
    return week


