"""Request envelope and reply rules of the national platform."""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal

import pytest

from yibao.core.clock import SHANGHAI
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, UnknownOutcome
from yibao.envelope.national.envelope import (
    ENVELOPE_KEYS,
    Sender,
    build_header,
    build_request,
    encode_envelope,
    encode_input,
    has_psn_no,
    parse_reply,
    read_infcode,
    to_response,
)
from yibao.envelope.national.jsontext import loads
from yibao.envelope.settings import PlatformSettings

SENDER = Sender.from_settings(PlatformSettings())
MSGID = "H44010600001202401010800000001"


def test_envelope_has_every_spec_key_in_order_with_input_last():
    envelope = build_request(SENDER, "1101", MSGID, {"data": {}})
    assert tuple(envelope) == ENVELOPE_KEYS
    assert list(envelope)[-1] == "input"


def test_envelope_keys_are_lower_case():
    text = encode_envelope(build_header(SENDER, "1101", MSGID), '{"data":{}}')
    assert all(key == key.lower() for key in loads(text))


def test_inf_time_is_shanghai_wall_time_in_platform_format():
    at = _dt.datetime(2024, 3, 1, 0, 0, 5, tzinfo=_dt.timezone.utc)
    header = build_header(SENDER, "1101", MSGID, inf_time=at)
    assert header["inf_time"] == "2024-03-01 08:00:05"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", build_header(SENDER, "1101", MSGID)["inf_time"])


def test_sender_fields_come_from_settings():
    settings = PlatformSettings(fixmedins_code="H12345678901", fixmedins_name="测试医院", mdtrtarea_admvs="360100",
                                recer_sys_code="SYS01", infver="V1.1", opter="001", opter_name="收费员",
                                opter_type="2")
    header = build_header(Sender.from_settings(settings), "2201", "x" * 30, sign_no="SN1",
                          insuplc_admdvs="360102")
    assert header["fixmedins_code"] == "H12345678901"
    assert header["fixmedins_name"] == "测试医院"
    assert header["mdtrtarea_admvs"] == "360100"
    assert header["insuplc_admdvs"] == "360102"
    assert header["recer_sys_code"] == "SYS01"
    assert header["infver"] == "V1.1"
    assert (header["opter"], header["opter_name"], header["opter_type"]) == ("001", "收费员", "2")
    assert header["sign_no"] == "SN1"


def test_empty_optional_keys_are_sent_as_empty_text():
    header = build_header(SENDER, "1101", MSGID)
    assert header["sign_no"] == header["cainfo"] == header["signtype"] == header["insuplc_admdvs"] == ""


def test_input_is_spliced_as_is_after_the_header():
    text = encode_envelope(build_header(SENDER, "2204", MSGID), '{"feedetail":[{"cnt":1.0000}]}')
    assert text.endswith(',"input":{"feedetail":[{"cnt":1.0000}]}}')
    assert loads(text)["input"]["feedetail"][0]["cnt"] == Decimal("1.0000")


def test_input_over_40000_characters_is_refused_before_sending():
    with pytest.raises(EnvelopeValidationError) as caught:
        encode_input("2204", {"memo": "x" * 40000})
    assert (caught.value.infno, caught.value.path, caught.value.rule) == ("2204", "input", "max_length_40000")


def test_input_of_exactly_40000_characters_is_accepted():
    payload = {"m": "x" * (40000 - len('{"m":""}'))}
    assert len(encode_input("2204", payload)) == 40000


def test_float_in_input_is_refused_naming_infno_and_field():
    with pytest.raises(EnvelopeValidationError) as caught:
        encode_input("2207", {"data": {"medfee_sumamt": 10.5}})
    assert caught.value.path == "input.data.medfee_sumamt"
    assert caught.value.rule == "exact_json_value"


def test_psn_no_is_found_in_nested_input():
    assert has_psn_no({"data": {"psn_no": "P1"}})
    assert has_psn_no({"feedetail": [{"psn_no": "P1"}]})
    assert not has_psn_no({"data": {"mdtrt_cert_no": "X"}})
    assert not has_psn_no({"data": {"psn_no": ""}})


@pytest.mark.parametrize("value, expected", [(0, 0), ("0", 0), (-1, -1), ("-1", -1), (" 0 ", 0),
                                             (None, None), ("ok", None), (True, None), (1.0, None)])
def test_infcode_is_read_consistently_from_number_or_text(value, expected):
    assert read_infcode(value) == expected


def test_reply_with_infcode_zero_is_a_response_with_its_fields():
    reply = parse_reply('{"infcode":"0","inf_refmsgid":"R1","refmsg_time":"20240101080000000",'
                        '"respond_time":"20240101080000100","err_msg":"","warn_msg":"注意",'
                        '"output":{"setlinfo":{"medfee_sumamt":100.50}}}'.encode(), infno="2207", msgid=MSGID)
    response = to_response(reply, infno="2207", msgid=MSGID)
    assert response.ok and response.infcode == 0
    assert response.inf_refmsgid == "R1" and response.warn_msg == "注意"
    assert response.refmsg_time == "20240101080000000" and response.respond_time == "20240101080000100"
    assert response.output["setlinfo"]["medfee_sumamt"] == Decimal("100.50")


@pytest.mark.parametrize("infcode", [-1, "-1"])
def test_infcode_minus_one_is_a_business_rejection_with_err_msg(infcode):
    with pytest.raises(BusinessRejection) as caught:
        to_response({"infcode": infcode, "err_msg": "人员不存在"}, infno="1101", msgid=MSGID)
    assert caught.value.err_msg == "人员不存在"
    assert caught.value.infcode == "-1"
    assert caught.value.msgid == MSGID


@pytest.mark.parametrize("body", [b"<html>502</html>", b"", b"\xff\xfe", b"[1,2]", b'{"output":{}}',
                                  b'{"infcode":"E"}', b'{"infcode":0'])
def test_unreadable_reply_or_missing_infcode_is_an_unknown_outcome(body):
    with pytest.raises(UnknownOutcome) as caught:
        parse_reply(body, infno="2207", msgid=MSGID)
    assert caught.value.msgid == MSGID


def test_reply_with_bom_is_read():
    assert parse_reply("\ufeff{\"infcode\":0}".encode(), infno="1101", msgid=MSGID)["infcode"] == 0


def test_inf_time_default_is_now_in_shanghai():
    header = build_header(SENDER, "1101", MSGID)
    parsed = _dt.datetime.strptime(header["inf_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    assert abs((_dt.datetime.now(SHANGHAI) - parsed).total_seconds()) < 5
