"""A hand-rolled hospital for the simulator's domain tests: builds envelopes the way the spec describes them
(independently of libs/envelope) and hands them to the transport-free platform."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest

from yibao.core import clock
from yibao.simulator.national import NationalPlatform, Outcome
from yibao.simulator.platform_clock import PlatformClock
from yibao.simulator.population import SimPerson
from yibao.simulator.settings import DEFAULT_FIXMEDINS_CODE, SimulatorSettings
from yibao.simulator.state import Ledger

CODE = DEFAULT_FIXMEDINS_CODE
#: a second institution on the same platform (visibility and cross-institution rules)
OTHER_CODE = "H44010600002"
_serial = itertools.count(1)


def person(psn_no: str = "P0001", balance: str = "1000.00", insutype: str = "310") -> SimPerson:
    return SimPerson(psn_no=psn_no, certno=f"ID{psn_no}", psn_name="测试", gend="1", brdy="1980-05-01",
                     insutype=insutype, psn_type="11", insuplc_admdvs="440100", balance=Decimal(balance),
                     card_sn=f"CARD{psn_no}", ec_token=f"TOKEN{psn_no}")


class Hospital:
    def __init__(self, platform: NationalPlatform, code: str = CODE) -> None:
        self.platform = platform
        self.code = code
        self.sign_no = ""
        self.last_msgid = ""

    def msgid(self) -> str:
        return f"{self.code}{clock.now():%Y%m%d%H%M%S}{next(_serial) % 10000:04d}"

    def envelope(self, infno: str, payload: dict[str, Any], *, msgid: str | None = None, **over: Any) -> dict[str, Any]:
        env = {
            "infno": infno, "msgid": msgid or self.msgid(), "mdtrtarea_admvs": "440100", "insuplc_admdvs": "440100",
            "recer_sys_code": "FSI_LOCAL", "dev_no": "", "dev_safe_info": "", "cainfo": "", "signtype": "",
            "infver": "V1.0", "opter_type": "1", "opter": "OP01", "opter_name": "收费员", "inf_time":
            clock.format_datetime(clock.now()), "fixmedins_code": self.code, "fixmedins_name": "测试医院",
            "sign_no": self.sign_no, "input": payload,
        }
        env.update(over)
        return env

    def call(self, infno: str, payload: dict[str, Any], **over: Any) -> Outcome:
        env = self.envelope(infno, payload, **over)
        self.last_msgid = env["msgid"]
        return self.platform.process(env)

    def ok(self, infno: str, payload: dict[str, Any], **over: Any) -> dict[str, Any]:
        out = self.call(infno, payload, **over)
        assert out.ok, out.response["err_msg"]
        return out.response["output"]

    def refused(self, infno: str, payload: dict[str, Any], **over: Any) -> str:
        out = self.call(infno, payload, **over)
        assert not out.ok, f"{infno} unexpectedly accepted"
        assert out.response["infcode"] == -1
        return out.response["err_msg"]

    # --- chain helpers -------------------------------------------------------------------------------------
    def sign_in(self) -> str:
        self.sign_no = self.ok("9001", {"signIn": {"opter_no": "OP01", "mac": "", "ip": "127.0.0.1"}})["signinoutb"]["sign_no"]
        return self.sign_no

    def register(self, psn: str = "P0001", ipt_otp_no: str | None = None) -> str:
        out = self.ok("2201", {"data": {
            "psn_no": psn, "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": f"ID{psn}", "ipt_otp_no": ipt_otp_no or f"MZ{next(_serial)}", "atddr_no": "D01",
            "dr_name": "医生", "dept_code": "K01", "dept_name": "内科", "caty": "A03"}})
        return out["data"]["mdtrt_id"]

    def visit_info(self, mdtrt_id: str, psn: str = "P0001", med_type: str = "11") -> None:
        self.ok("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn, "med_type": med_type,
                                       "begntime": "2024-05-01 09:00:00", "dise_codg": "J00"}, "diseinfo": []})

    def fee(self, mdtrt_id: str, sn: str, amount: str, code: str = "XA01", psn: str = "P0001",
            bchno: str = "B1", cnt: str = "1") -> dict[str, Any]:
        total = Decimal(amount)
        return {"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": psn, "chrg_bchno": bchno,
                "fee_ocur_time": "2024-05-01 09:10:00", "med_list_codg": code, "medins_list_codg": "H" + code,
                "det_item_fee_sumamt": total, "cnt": Decimal(cnt), "pric": total / Decimal(cnt)}

    def upload(self, mdtrt_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return self.ok("2204", {"feedetail": rows})

    def settle_data(self, mdtrt_id: str, total: str, psn: str = "P0001", acct: str = "1", **extra: Any) -> dict[str, Any]:
        return {"data": {"psn_no": psn, "mdtrt_cert_type": "02", "mdtrt_cert_no": f"ID{psn}", "med_type": "11",
                         "medfee_sumamt": Decimal(total), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
                         "chrg_bchno": "0000", "acct_used_flag": acct, "insutype": "310", **extra}}

    def outpatient_settled(self, amounts: tuple[str, ...] = ("30.00", "70.00"), psn: str = "P0001") -> tuple[str, str]:
        mdtrt_id = self.register(psn)
        self.visit_info(mdtrt_id, psn)
        self.upload(mdtrt_id, [self.fee(mdtrt_id, f"F{i}", a, code=f"XA0{i}", psn=psn) for i, a in enumerate(amounts)])
        total = str(sum(Decimal(a) for a in amounts))
        out = self.ok("2207", self.settle_data(mdtrt_id, total, psn))
        return mdtrt_id, out["setlinfo"]["setl_id"]


@pytest.fixture
def settings() -> SimulatorSettings:
    # the domain rules are tested on minimal inputs; catalog validation has its own test
    return SimulatorSettings(port=0, admin_port=0, validate_with_catalog=False)


@pytest.fixture
def platform(settings: SimulatorSettings) -> NationalPlatform:
    ledger = Ledger([person("P0001"), person("P0002", "0.00", "390"), person("P0003", "50.00")], settings.fixmedins_codes)
    return NationalPlatform(settings, ledger, PlatformClock())


@pytest.fixture
def hosp(platform: NationalPlatform) -> Hospital:
    h = Hospital(platform)
    h.sign_in()
    return h


@pytest.fixture
def two(settings: SimulatorSettings) -> tuple[Hospital, Hospital]:
    """Two institutions on one platform (CODE, OTHER_CODE), both signed in."""
    settings = settings.model_copy(update={"fixmedins_codes": [CODE, OTHER_CODE]})
    ledger = Ledger([person("P0001"), person("P0003", "50.00")], settings.fixmedins_codes)
    platform = NationalPlatform(settings, ledger, PlatformClock())
    a, b = Hospital(platform, CODE), Hospital(platform, OTHER_CODE)
    a.sign_in()
    b.sign_in()
    return a, b
