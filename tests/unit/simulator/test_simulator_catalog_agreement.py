"""The simulator and the catalog agree: every transaction the simulator serves is in the catalog and is validated
against the catalog's own field list (derived, never re-typed), a transaction it does not serve is refused the
way the platform refuses one, and a province's spellings reach the simulator's answers without code."""

from __future__ import annotations

import re
import warnings

import pytest

from support.catalog_samples import first_required, minimal_input
from .conftest import Hospital, person
from yibao.envelope.catalog import Catalog
from yibao.simulator.national import HANDLERS, NationalPlatform
from yibao.simulator.platform_clock import PlatformClock
from yibao.simulator.settings import SimulatorSettings
from yibao.simulator.state import Ledger

CATALOG = Catalog.load()
SERVED = sorted(HANDLERS)
SERVED_WITH_FIELD_LIST = [infno for infno in SERVED if infno in CATALOG and CATALOG.has_schema(infno)]
#: a refusal by the catalog's rules (not a business refusal of the handler)
CATALOG_RULE = re.compile(r"input\.\S+: (required|max_length \d+|type \S+|precision \S+|scale \S+|dictionary \S+)$")


def _hospital(province: str = "") -> Hospital:
    settings = SimulatorSettings(port=0, admin_port=0, validate_with_catalog=True, catalog_province=province)
    ledger = Ledger([person("P0001")], settings.fixmedins_codes)
    hosp = Hospital(NationalPlatform(settings, ledger, PlatformClock()))
    hosp.sign_in()
    return hosp


def test_every_transaction_the_simulator_serves_is_in_the_catalog() -> None:
    strangers = [infno for infno in SERVED if infno not in CATALOG]
    assert not strangers, f"served but not catalogued: {', '.join(strangers)}"


def test_served_transactions_without_a_field_list_are_named() -> None:
    without = [infno for infno in SERVED if infno not in SERVED_WITH_FIELD_LIST]
    if without:  # validated by the handler alone until the catalog has their field list (other branches)
        warnings.warn(f"served without a catalog field list: {', '.join(without)}", stacklevel=1)
    assert set(without) <= {"1901", *(str(n) for n in range(1301, 1320))}


@pytest.mark.parametrize("infno", SERVED_WITH_FIELD_LIST)
def test_the_simulator_refuses_an_input_by_the_catalogs_first_required_element(infno: str) -> None:
    required = first_required(CATALOG, infno)
    if required is None:
        pytest.skip(f"{infno} requires nothing")
    err = _hospital().refused(infno, {})
    assert err == f"[{infno}] input.{required.key}: required"


@pytest.mark.parametrize("infno", SERVED_WITH_FIELD_LIST)
def test_the_simulator_lets_through_what_the_catalog_accepts(infno: str) -> None:
    out = _hospital().call(infno, minimal_input(CATALOG, infno))
    err = out.response["err_msg"]
    # business rules may still say no (an unknown visit, a person not found): never the catalog's field rules
    assert out.ok or not CATALOG_RULE.search(err.split("] ", 1)[-1]), err


def test_a_field_longer_than_the_catalog_allows_is_refused_with_the_catalogs_rule() -> None:
    body = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "X" * 51}}
    assert _hospital().refused("1101", body) == "[1101] input.data.mdtrt_cert_no: max_length 50"


def test_a_catalogued_transaction_the_simulator_does_not_serve_is_refused_as_the_platform_words_it() -> None:
    assert "5401" in CATALOG and "5401" not in HANDLERS
    out = _hospital().call("5401", {"data": {}})
    assert str(out.response["infcode"]) != "0"
    assert out.response["err_msg"].startswith("[5401] envelope.infno: ")
    assert any(phrase in out.response["err_msg"] for phrase in CATALOG.wording("unsupported_transaction"))
    assert out.response["output"] == {}


def test_an_unknown_infno_is_refused_the_same_way() -> None:
    err = _hospital().refused("7777", {"data": {}})
    assert any(phrase in err for phrase in CATALOG.wording("unsupported_transaction"))


def test_the_province_decides_how_the_simulator_spells_the_2401_answer() -> None:
    admission = {
        "mdtrtinfo": {"psn_no": "P0001", "insutype": "310", "begntime": "2024-05-01 09:00:00",
                      "mdtrt_cert_type": "02", "mdtrt_cert_no": "IDP0001", "med_type": "21", "ipt_no": "ZY1",
                      "atddr_no": "D1", "chfpdr_name": "医生", "adm_diag_dscr": "肺炎", "adm_dept_codg": "K1",
                      "adm_dept_name": "内科", "adm_bed": "1", "dscg_maindiag_code": "J18", "dscg_maindiag_name": "肺炎"},
        "diseinfo": [{"psn_no": "P0001", "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": 1, "diag_code": "J18",
                      "diag_name": "肺炎", "diag_dept": "内科", "dise_dor_no": "D1", "dise_dor_name": "医生",
                      "diag_time": "2024-05-01 09:00:00"}],
    }
    national = _hospital().ok("2401", admission)
    guangdong = _hospital("guangdong").ok("2401", admission)
    assert set(national) == {"data"} and set(guangdong) == {"result"}
    # and the bridge's catalog of either province reads both as data
    for province in (None, "guangdong"):
        assert Catalog.load(province).read_output("2401", guangdong)["data"]["mdtrt_id"]


def test_the_province_decides_the_refund_flags_spelling_the_simulator_reads() -> None:
    fujian = Catalog.load("fujian")
    body = fujian.prepare_input("3201", {"data": {
        "insutype": "310", "clr_type": "11", "setl_optins": "440100", "stmt_begndate": "2024-05-01",
        "stmt_enddate": "2024-05-01", "medfee_sumamt": "0", "fund_pay_sumamt": "0", "acct_pay": "0",
        "fixmedins_setl_cnt": 0, "refd_setl_flag": "1"}})
    assert "REFD_SETL_FLAG" in body["data"] and "refd_setl_flag" not in body["data"]
    national = Catalog.load().prepare_input("3201", {"data": {**body["data"]}})
    assert "refd_setl_flag" in national["data"]  # the national spelling, the upper-case one read as it
    assert _hospital("fujian").ok("3201", body)["stmtinfo"]["stmt_rslt"] == "0"
