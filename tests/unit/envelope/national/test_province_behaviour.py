"""Switching the province changes what is sent and what is read — with data (the province files), no code.

One rule per test: the discharge date's spelling (2303/2304), the 2401 answer's node, the extension element's
spelling, the refund flag's spelling, the required flags a province tightens, the 3202 detail file's format and
the envelope's heading and signing (the gateway kind a province uses)."""

from __future__ import annotations

import datetime as _dt
import io
import zipfile
from decimal import Decimal

import pytest

from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import EnvelopeValidationError
from yibao.envelope.national.gateways import make_signer
from yibao.envelope.national.envelope import Sender, build_header
from yibao.envelope.settings import PlatformSettings
from yibao.reconciliation.detail_file import build_detail_zip, detail_format

from unit.envelope.national.national_standins import ok

SETTLE_2303 = {"data": {
    "psn_no": "P0001", "mdtrt_cert_type": "02", "mdtrt_cert_no": "440106199001011234",
    "medfee_sumamt": Decimal("100.00"), "psn_setlway": "01", "mdtrt_id": "M1", "insutype": "310",
    "mid_setl_flag": "0", "dscg_time": _dt.date(2024, 5, 3), "exp_content": "{}",
    "fulamt_ownpay_amt": Decimal("0"), "overlmt_selfpay": Decimal("0"), "preselfpay_amt": Decimal("0"),
    "inscp_scp_amt": Decimal("100.00")}}
AMOUNTS = ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")


def _data(province: str | None, infno: str = "2303", body: dict | None = None) -> dict:
    return Catalog.load(province).prepare_input(infno, body or SETTLE_2303)["data"]


def test_the_discharge_date_is_spelled_as_the_province_spells_it() -> None:
    assert _data(None)["dscgTime"] == "2024-05-03"          # national default (two public clients)
    assert _data("zhejiang")["dscg_time"] == "2024-05-03"   # the province's transcription
    assert "dscg_time" not in _data(None) and "dscgTime" not in _data("zhejiang")


def test_either_spelling_of_the_discharge_date_is_taken_from_the_caller() -> None:
    body = {"data": {**SETTLE_2303["data"]}}
    body["data"]["dscgtime"] = body["data"].pop("dscg_time")
    assert _data("zhejiang", body=body)["dscg_time"] == "2024-05-03"


def test_a_province_may_require_the_discharge_date() -> None:
    body = {"data": {k: v for k, v in SETTLE_2303["data"].items() if k != "dscg_time"}}
    assert "dscgTime" not in _data(None, body=body)  # lenient nationally
    with pytest.raises(EnvelopeValidationError, match="dscgTime"):
        _data("fujian", body=body)


def test_the_extension_element_is_spelled_as_the_province_spells_it() -> None:
    assert "exp_content" in _data(None) and "expContent" in _data("zhejiang")


def test_the_refund_flag_is_spelled_as_the_province_spells_it() -> None:
    body = {"data": {"insutype": "310", "clr_type": "11", "setl_optins": "440100", "stmt_begndate": "2024-05-01",
                     "stmt_enddate": "2024-05-01", "medfee_sumamt": "0", "fund_pay_sumamt": "0", "acct_pay": "0",
                     "fixmedins_setl_cnt": 0, "refd_setl_flag": "0"}}
    assert "refd_setl_flag" in _data(None, "3201", body)
    assert "REFD_SETL_FLAG" in _data("fujian", "3201", body)


def test_the_lenient_default_lets_the_amounts_out_and_a_province_requires_them() -> None:
    body = {"data": {k: v for k, v in SETTLE_2303["data"].items() if k not in AMOUNTS}}
    _data(None, body=body)  # no fulamt_ownpay_amt … : accepted nationally
    with pytest.raises(EnvelopeValidationError, match="fulamt_ownpay_amt"):
        _data("zhejiang", body=body)


def test_5203_without_mdtrt_id_is_lenient_nationally_and_refused_where_the_province_requires_it() -> None:
    body = {"data": {"psn_no": "P0001", "setl_id": "S1"}}
    Catalog.load().prepare_input("5203", body)
    with pytest.raises(EnvelopeValidationError, match="mdtrt_id"):
        Catalog.load("zhejiang").prepare_input("5203", body)


@pytest.mark.parametrize("province", [None, "guangdong", "fujian", "zhejiang"])
async def test_the_2401_answer_is_read_under_result_or_data_in_every_province(province, make_client, platform):
    catalog = Catalog.load(province)
    for node in ("result", "data"):
        platform.on("2401", ok({node: {"mdtrt_id": "M2401"}}))
        response = await make_client(catalog=catalog).call("2401", _admission(), insuplc_admdvs="440100")
        assert response.output["data"]["mdtrt_id"] == "M2401"


def test_the_province_decides_how_the_3202_detail_file_writes_empty_values_and_its_last_line() -> None:
    @dataclass_entry
    class Entry:
        setl_id: str = "S1"
        mdtrt_id: str = ""
        psn_no: str = "P1"
        medfee_sumamt: Decimal = Decimal("1.00")
        fund_pay_sumamt: Decimal = Decimal("0.00")
        acct_pay: Decimal = Decimal("0.00")
        psn_cash_pay: Decimal = Decimal("1.00")
        refd_setl_flag: str = "0"

    def text(province: str | None) -> str:
        built = build_detail_zip([Entry(), Entry(setl_id="S2")], filename="d.zip",
                                 fmt=detail_format(Catalog.load(province)))
        with zipfile.ZipFile(io.BytesIO(built.content)) as archive:
            return archive.read(built.member).decode("utf-8")

    assert text(None) == "S1\tnull\tP1\t1.00\t0.00\t0.00\t0\nS2\tnull\tP1\t1.00\t0.00\t0.00\t0\n"
    assert text("zhejiang") == "S1\t\tP1\t1.00\t0.00\t0.00\t0\nS2\t\tP1\t1.00\t0.00\t0.00\t0"


@pytest.mark.parametrize(("province", "gateway"), [(None, "none"), ("guangdong", "tif"), ("fujian", "encrypted"),
                                                   ("zhejiang", "api")])
def test_the_province_decides_how_the_envelope_is_headed_and_signed(province, gateway) -> None:
    settings = PlatformSettings(province=province, tif_paasid="p", tif_token="t", api_access_key="k",
                                api_secret="s", sm4_key="0123456789abcdef", sm2_private_key="1" * 64,
                                platform_public_key="04" + "1" * 128)
    assert settings.gateway == gateway
    signer = make_signer(settings)
    header = build_header(Sender.from_settings(settings), "1101", "H44010600001202405010900000001")
    headers = signer.seal("1101", header, "{}").headers
    expected = {"none": set(), "tif": {"x-tif-signature"}, "api": {"_api_signature"}, "encrypted": set()}[gateway]
    assert expected <= {h.lower() for h in headers}


def test_the_environment_wins_over_the_province_file(monkeypatch) -> None:
    monkeypatch.setenv("YIBAO_PLATFORM_GATEWAY", "none")
    assert PlatformSettings(province="guangdong").gateway == "none"


def _admission() -> dict:
    return {"mdtrtinfo": {"psn_no": "P0001", "insutype": "310", "begntime": "2024-05-01 09:00:00",
                          "mdtrt_cert_type": "02", "mdtrt_cert_no": "IDP0001", "med_type": "21", "ipt_no": "ZY1",
                          "atddr_no": "D1", "chfpdr_name": "医生", "adm_diag_dscr": "肺炎", "adm_dept_codg": "K1",
                          "adm_dept_name": "内科", "adm_bed": "1", "dscg_maindiag_code": "J18",
                          "dscg_maindiag_name": "肺炎"},
            "diseinfo": [{"psn_no": "P0001", "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": 1,
                          "diag_code": "J18", "diag_name": "肺炎", "diag_dept": "内科", "dise_dor_no": "D1",
                          "dise_dor_name": "医生", "diag_time": "2024-05-01 09:00:00"}]}


def dataclass_entry(cls):  # a ledger entry as the detail file reads it (attributes only)
    from dataclasses import dataclass

    return dataclass(cls)
