"""The pure ingest: CDC record in, canonical events out, or a reason (yibao.hisevents.ingest)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from yibao.core.clock import SHANGHAI
from yibao.core.errors import DecodeError, UnmappableEventError
from yibao.hisevents import Ingestor, mapping_from_dict
from yibao.hisevents.models import (
    Cancellation,
    ChargeLineReversed,
    PatientRegistered,
    SettlementRequested,
    VisitInfo,
)

REGISTER = "hisdb.HIS.OUTP_REGISTER"
SHAPES = [
    "oracle_envelope_schema_precise.json",
    "oracle_envelope_noschema_string.json",
    "oracle_unwrapped_noschema_precise.json",
    "oracle_unwrapped_schema_double.json",
]


def _facts(event):
    return event.model_dump(exclude={"event_id", "source"})


@pytest.mark.parametrize("fixture", SHAPES)
def test_each_debezium_shape_becomes_the_same_registration(ingestor, raw, fixture):
    result = ingestor.ingest(REGISTER, 0, 7, None, raw(fixture))
    assert result.skipped is None and len(result.events) == 1
    event = result.events[0]
    assert isinstance(event, PatientRegistered)
    reference = ingestor.ingest(REGISTER, 0, 7, None, raw(SHAPES[0])).events[0]
    assert _facts(event) == _facts(reference)
    assert event.his_visit_id == "25030300001" and event.ipt_otp_no == "MZ2025030300001"
    assert event.mdtrt_cert_type == "02" and event.insutype == "310" and event.med_type == "11"
    assert event.reg_fee == Decimal("25.00") and event.channel == "wechat" and event.settle_choice == "insurance"
    assert event.begntime == dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)
    assert event.occurred_at == event.begntime
    assert event.source.table == "HIS.OUTP_REGISTER" and event.source.position["scn"] == "8200007007"


def test_snapshot_read_maps_like_an_insert(ingestor, record, encode):
    env = record("oracle_envelope_noschema_string.json")
    env["op"] = "r"
    (event,) = ingestor.ingest(REGISTER, 0, 1, None, encode(env)).events
    assert isinstance(event, PatientRegistered) and event.source.op == "r"


def test_lower_case_names_map_with_the_upper_case_mapping(ingestor, record, encode):
    env = record("oracle_envelope_noschema_string.json")
    env["after"] = {k.lower(): v for k, v in env["after"].items()}
    env["source"].update(schema="his", table="outp_register")
    (event,) = ingestor.ingest("hisdb.his.outp_register", 0, 1, None, encode(env)).events
    assert event.source.table == "HIS.OUTP_REGISTER" and event.med_type == "11"


def test_diagnosis_update_becomes_visit_info_with_its_diagnosis(ingestor, raw):
    result = ingestor.ingest("hisdb.his.outp_diagnosis", 0, 3, None, raw("mysql_envelope_update_diagnosis.json"))
    (event,) = result.events
    assert isinstance(event, VisitInfo) and event.dise_codg == "J20.900"
    (diag,) = event.diagnoses
    assert (diag.diag_type, diag.diag_srt_no, diag.diag_code, diag.maindiag_flag, diag.vali_flag) == (
        "1", 1, "J20.900", "1", "1")


def test_discharge_row_deleted_becomes_a_discharge_cancellation(ingestor, raw):
    result = ingestor.ingest("hisdb.his.inp_discharge", 0, 9, None, raw("postgres_envelope_delete_discharge.json"))
    (event,) = result.events
    assert isinstance(event, Cancellation) and event.target == "discharge" and event.visit_kind == "inpatient"
    assert event.his_request_id == "DSCG-2503030007-CANCEL"
    # no occurred_at column for deletes: the commit time (a real instant) is used
    assert event.occurred_at == dt.datetime(2025, 3, 7, 10, 20, tzinfo=SHANGHAI)


def test_settlement_request_carries_the_his_total(ingestor, raw):
    (event,) = ingestor.ingest("hisdb.HIS.YB_SETTLE_REQUEST", 0, 2, None,
                               raw("sqlserver_envelope_settle_request.json")).events
    assert isinstance(event, SettlementRequested)
    assert event.medfee_sumamt == Decimal("136.50") and event.acct_used_flag == "1" and event.visit_kind == "outpatient"


def test_a_hemodialysis_sheet_request_names_the_inpatient_account(ingestor, record, encode):
    message = record("sqlserver_envelope_settle_request.json")
    message["after"]["HD_ADM_ID"] = 92503030001
    (event,) = ingestor.ingest("hisdb.HIS.YB_SETTLE_REQUEST", 0, 2, None, encode(message)).events
    assert isinstance(event, SettlementRequested) and event.sheet_of_visit_id == "92503030001"


def test_a_request_without_the_sheet_column_settles_its_own_visit(ingestor, raw):
    (event,) = ingestor.ingest("hisdb.HIS.YB_SETTLE_REQUEST", 0, 2, None,
                               raw("sqlserver_envelope_settle_request.json")).events
    assert isinstance(event, SettlementRequested) and event.sheet_of_visit_id is None


def _fee_row(**overrides):
    row = {
        "DETAIL_ID": 2503030000042, "REG_ID": 25030300001, "PATIENT_ID": "P00000042", "RECIPE_NO": "CF01",
        "BATCH_NO": "2503030000101", "ORDER_NO": None, "FEE_TIME": 1740989730123456, "ETIP_FLAG": "N",
        "ITEM_CODE": "Y00123", "ITEM_NAME": "阿莫西林胶囊", "YB_CODE": "XJ01CAA040A001010100001", "AMOUNT": "-25.00",
        "QTY": "-2.0000", "PRICE": "12.500000", "INIT_DETAIL_ID": 2503030000041, "TRACE_CODES": "81, 82",
        "__op": "c", "__table": "OUTP_FEE_DETAIL", "__schema": "HIS", "__source_ts_ms": 1740960931000,
        "__lsn": 24023999,
    }
    row.update(overrides)
    return row


def test_reversal_line_becomes_charge_line_reversed(ingestor, encode):
    (event,) = ingestor.ingest("hisdb.HIS.OUTP_FEE_DETAIL", 0, 1, None, encode(_fee_row())).events
    assert isinstance(event, ChargeLineReversed)
    assert event.init_feedetl_sn == "2503030000041" and event.cnt == Decimal("-2.0000")
    assert event.fee_ocur_time == dt.datetime(2025, 3, 3, 8, 15, 30, 123456, tzinfo=SHANGHAI)
    assert event.trace_codes == ["81", "82"]


def test_reversal_with_a_positive_amount_is_unmappable(ingestor, encode):
    with pytest.raises(UnmappableEventError, match="rule reversal: field cnt .*negative cnt|negative cnt"):
        ingestor.ingest("hisdb.HIS.OUTP_FEE_DETAIL", 0, 1, None, encode(_fee_row(QTY="2.0000", AMOUNT="25.00")))


def test_status_change_to_cancelled_is_a_cancellation_only_when_status_changed(ingestor, encode):
    row = {"ADM_ID": 92503030001, "PATIENT_ID": "P1", "STATUS": "1", "UPDATE_TIME": 1740994800000}
    source = {"connector": "oracle", "schema": "HIS", "table": "INP_ADMISSION", "ts_ms": 1740961200000,
              "scn": "8200008000", "rs_id": "x", "ssn": 0}
    cancelled = {"before": row, "after": {**row, "STATUS": "9"}, "source": source, "op": "u"}
    still = {"before": {**row, "STATUS": "9"}, "after": {**row, "STATUS": "9", "BED_NO": "2"}, "source": source,
             "op": "u"}
    (event,) = ingestor.ingest("hisdb.HIS.INP_ADMISSION", 0, 1, None, encode(cancelled)).events
    assert isinstance(event, Cancellation) and event.target == "admission"
    assert event.his_request_id == "ADM-92503030001-CANCEL"
    assert event.occurred_at == dt.datetime(2025, 3, 3, 9, 40, tzinfo=SHANGHAI)
    result = ingestor.ingest("hisdb.HIS.INP_ADMISSION", 0, 2, None, encode(still))
    assert result.events == [] and "no rule matches op u" in result.skipped


def test_a_change_no_rule_wants_is_skipped_with_reason(ingestor, record, encode):
    env = record("oracle_envelope_noschema_string.json")
    env["op"], env["before"] = "u", env["after"]
    result = ingestor.ingest(REGISTER, 0, 1, None, encode(env))
    assert result.events == [] and result.skipped == (
        "table HIS.OUTP_REGISTER: no rule matches op u and the row's conditions")


def test_an_ignored_table_is_skipped(ingestor, encode):
    value = encode({"LOG_ID": 1, "__op": "c", "__table": "SYS_AUDIT_LOG", "__schema": "HIS"})
    result = ingestor.ingest("hisdb.HIS.SYS_AUDIT_LOG", 0, 1, None, value)
    assert result.events == [] and "ignored" in result.skipped


def test_tombstones_and_heartbeats_are_skipped(ingestor, raw):
    assert ingestor.ingest(REGISTER, 0, 1, b'{"REG_ID":1}', None).skipped.startswith("tombstone")
    assert ingestor.ingest("__debezium-heartbeat.hisdb", 0, 1, None, raw("heartbeat_schema.json")).skipped


def test_an_unknown_table_is_unmappable_naming_the_table(ingestor, encode):
    value = encode({"STOCK_ID": 1, "__op": "c", "__table": "PHARMACY_STOCK", "__schema": "HIS"})
    with pytest.raises(UnmappableEventError, match=r"table HIS.PHARMACY_STOCK \(topic hisdb.HIS.PHARMACY_STOCK\) is "
                                                   r"not in mapping example-oracle-his"):
        ingestor.ingest("hisdb.HIS.PHARMACY_STOCK", 0, 1, None, value)


def test_a_missing_required_column_names_table_rule_field_and_column(ingestor, encode):
    row = _fee_row(INIT_DETAIL_ID=None, QTY="1", AMOUNT="12.50")
    del row["YB_CODE"]
    with pytest.raises(UnmappableEventError) as info:
        ingestor.ingest("hisdb.HIS.OUTP_FEE_DETAIL", 0, 1, None, encode(row))
    assert str(info.value) == ("table HIS.OUTP_FEE_DETAIL, rule charge, field med_list_codg (column YB_CODE): "
                               "required column missing from the row")
    assert info.value.code == "unmappable"


def test_a_bad_value_is_unmappable_without_quoting_it(ingestor, encode):
    row = _fee_row(INIT_DETAIL_ID=None, QTY="1", AMOUNT="12.50", FEE_TIME="2025-02-30 25:61:00")
    reason = r"field \w+ \(column FEE_TIME\): bad value: not a valid date-time"
    with pytest.raises(UnmappableEventError, match=reason) as info:
        ingestor.ingest("hisdb.HIS.OUTP_FEE_DETAIL", 0, 1, None, encode(row))
    assert "25:61" not in str(info.value)


def test_a_code_not_in_the_code_map_is_unmappable_naming_the_map(ingestor, record, encode):
    env = record("oracle_envelope_noschema_string.json")
    env["after"]["MED_TYPE"] = "XX"
    with pytest.raises(UnmappableEventError, match=r"field med_type \(column MED_TYPE\): code 'XX' not in code map "
                                                   r"outp_med_type"):
        ingestor.ingest(REGISTER, 0, 1, None, encode(env))


def test_unmappable_errors_never_quote_personal_values(encode):
    mapping = mapping_from_dict({
        "vendor": "strict-his",
        "code_maps": {"ids": {"X": "Y"}},
        "tables": {"HIS.OUTP_REGISTER": {
            "primary_key": ["REG_ID"],
            "common": {"his_visit_id": "REG_ID", "his_patient_id": "PATIENT_ID", "occurred_at": "REG_TIME"},
            "rules": [{"event": "patient_registered", "ops": ["c"], "fields": {
                "ipt_otp_no": "REG_ID", "mdtrt_cert_type": {"constant": "02"}, "med_type": {"constant": "11"},
                "begntime": "REG_TIME", "dept_code": {"constant": "1"}, "dept_name": {"constant": "x"},
                "certno": {"column": "ID_NO", "code_map": "ids"}}}],
        }},
    })
    value = encode({"REG_ID": 1, "PATIENT_ID": "P", "REG_TIME": 1740989730000, "ID_NO": "440604199003070014",
                    "__op": "c", "__table": "OUTP_REGISTER", "__schema": "HIS"})
    with pytest.raises(UnmappableEventError) as info:
        Ingestor(mapping).ingest(REGISTER, 0, 1, None, value)
    assert "440604199003070014" not in str(info.value) and "a code not in code map ids" in str(info.value)


def test_bad_bytes_raise_decode_error(ingestor):
    with pytest.raises(DecodeError):
        ingestor.ingest(REGISTER, 0, 1, None, b'{"before": null, "after": {')


def test_one_change_can_feed_several_rules_with_distinct_ids(example_mapping, record, encode):
    mapping = mapping_from_dict({
        "vendor": "double-his",
        "tables": {"HIS.YB_CANCEL_REQUEST": {
            "primary_key": ["REQ_ID"],
            "common": {"his_visit_id": "VISIT_ID", "his_patient_id": "PATIENT_ID",
                       "visit_kind": {"constant": "inpatient"}},
            "rules": [
                {"name": "a", "event": "cancellation", "ops": ["c"],
                 "fields": {"his_request_id": "REQ_ID", "target": {"constant": "admission"}}},
                {"name": "b", "event": "cancellation", "ops": ["c"],
                 "fields": {"his_request_id": "REQ_ID", "target": {"constant": "discharge"}}},
            ],
        }},
    })
    value = encode({"REQ_ID": "C1", "VISIT_ID": 9, "PATIENT_ID": "P", "__op": "c", "__table": "YB_CANCEL_REQUEST",
                    "__schema": "HIS", "__source_ts_ms": 1740960931000})
    a, b = Ingestor(mapping).ingest("hisdb.HIS.YB_CANCEL_REQUEST", 0, 1, None, value).events
    assert (a.target, b.target) == ("admission", "discharge") and a.event_id != b.event_id
