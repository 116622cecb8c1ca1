"""Decoding Debezium records of every shape HIS databases really emit (yibao.hisevents.debezium)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from yibao.core.clock import SHANGHAI
from yibao.core.errors import DecodeError
from yibao.hisevents.debezium import ChangeEvent, Row, Skip, decode

TOPIC = "hisdb.HIS.OUTP_REGISTER"


def _decode(value: bytes | None, *, topic: str = TOPIC, key: bytes | None = None) -> ChangeEvent | Skip:
    return decode(topic, 0, 42, key, value)


def _change(value: bytes, **kw: object) -> ChangeEvent:
    result = _decode(value, **kw)  # type: ignore[arg-type]
    assert isinstance(result, ChangeEvent), result
    return result


# -- shapes ----------------------------------------------------------------------------------------------------------


def test_envelope_with_schema_types_decimals_and_timestamps_by_the_schema(raw):
    change = _change(raw("oracle_envelope_schema_precise.json"))
    assert change.op == "c" and change.before is None and change.has_schema and not change.unwrapped
    assert change.table == "HIS.OUTP_REGISTER"
    assert change.after["REG_FEE"] == Decimal("25.00")
    assert change.after["REG_TIME"] == dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)
    assert change.after["REG_ID"] == 25030300001


def test_envelope_without_schema_keeps_json_values(raw):
    change = _change(raw("oracle_envelope_noschema_string.json"))
    assert not change.has_schema
    assert change.after["REG_FEE"] == "25.00"
    assert change.after["REG_TIME"] == 1740989730000


def test_unwrapped_record_reads_op_table_and_position_from_added_fields(raw):
    change = _change(raw("oracle_unwrapped_noschema_precise.json"))
    assert change.unwrapped and change.op == "c" and change.before is None
    assert change.table == "HIS.OUTP_REGISTER"
    assert change.position["scn"] == "8200007007" and change.position["ssn"] == "0"
    assert change.source_ts_ms == 1740960931000
    assert "__op" not in change.after and "__deleted" not in change.after


def test_unwrapped_record_with_schema_wrapper_is_typed(raw):
    change = _change(raw("oracle_unwrapped_schema_double.json"))
    assert change.unwrapped and change.has_schema
    assert change.after["REG_TIME"] == dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)


def test_double_decimal_mode_never_creates_a_float(raw):
    change = _change(raw("oracle_unwrapped_schema_double.json"))
    fee = change.after["REG_FEE"]
    assert isinstance(fee, Decimal) and fee == Decimal("25.0")


def test_unwrapped_delete_rewrite_is_a_delete_of_the_before_row(record, encode):
    row = record("oracle_unwrapped_noschema_precise.json")
    row.update({"__op": "d", "__deleted": "true"})
    change = _change(encode(row))
    assert change.op == "d" and change.after is None and change.before["REG_ID"] == 25030300001


def test_unwrapped_record_without_op_has_unknown_op(record, encode):
    row = {k: v for k, v in record("oracle_unwrapped_noschema_precise.json").items() if not k.startswith("__")}
    change = _change(encode(row))
    assert change.op is None and change.after is not None


def test_unwrapped_record_without_table_field_takes_the_table_from_the_topic(record, encode):
    row = {k: v for k, v in record("oracle_unwrapped_noschema_precise.json").items() if k != "__table"}
    change = _change(encode(row))
    assert change.schema == "HIS" and change.table_name == "OUTP_REGISTER"


def test_snapshot_read_is_decoded_as_op_r(record, encode):
    env = record("oracle_envelope_noschema_string.json")
    env["op"], env["source"]["snapshot"] = "r", "true"
    change = _change(encode(env))
    assert change.op == "r" and change.snapshot and change.after is not None


def test_update_carries_before_and_after(raw):
    change = _change(raw("mysql_envelope_update_diagnosis.json"), topic="hisdb.his.outp_diagnosis")
    assert change.op == "u"
    assert change.before["icd_code"] == "J06.900" and change.after["icd_code"] == "J20.900"


def test_mysql_table_is_database_dot_table(raw):
    change = _change(raw("mysql_envelope_update_diagnosis.json"), topic="hisdb.his.outp_diagnosis")
    assert change.table == "his.outp_diagnosis"


def test_delete_envelope_describes_the_before_row(raw):
    change = _change(raw("postgres_envelope_delete_discharge.json"), topic="hisdb.his.inp_discharge")
    assert change.op == "d" and change.after is None and change.row["dscg_id"] == 2503030007


@pytest.mark.parametrize(
    ("fixture", "topic", "position"),
    [
        ("oracle_envelope_schema_precise.json", TOPIC,
         {"scn": "8200007007", "commit_scn": "8200007010", "rs_id": " 0x0000f4.000003e9.0010 ", "ssn": "0"}),
        ("mysql_envelope_update_diagnosis.json", "hisdb.his.outp_diagnosis",
         {"file": "mysql-bin.000042", "pos": "154231", "row": "0"}),
        ("postgres_envelope_delete_discharge.json", "hisdb.his.inp_discharge", {"lsn": "24023376"}),
        ("sqlserver_envelope_settle_request.json", "hisdb.HIS.YB_SETTLE_REQUEST",
         {"change_lsn": "00000027:00000758:0003", "commit_lsn": "00000027:00000758:0005", "event_serial_no": "1"}),
    ],
)
def test_source_position_is_read_for_each_connector(raw, fixture, topic, position):
    change = _change(raw(fixture), topic=topic)
    assert change.position == position


def test_key_with_schema_wrapper_gives_the_primary_key(raw):
    change = _change(raw("oracle_envelope_schema_precise.json"), key=raw("oracle_key_schema.json"))
    assert change.key is not None and change.key["reg_id"] == 25030300001


def test_oracle_upper_case_columns_are_found_case_insensitively(raw):
    row = _change(raw("oracle_envelope_schema_precise.json")).after
    assert row["reg_id"] == row["REG_ID"] == row["Reg_Id"]
    assert row.original_name("reg_id") == "REG_ID"
    assert "patient_id" in row


def test_row_repr_shows_column_names_only():
    row = Row({"ID_NO": "440604199003070014", "PAT_NAME": "陈嘉豪"})
    assert "4406" not in repr(row) and "陈" not in repr(row)


def test_variable_scale_decimal_struct_is_decoded_with_or_without_schema(record, encode):
    env = record("oracle_envelope_noschema_string.json")
    env["after"]["REG_FEE"] = {"scale": 2, "value": "CcQ="}
    assert _change(encode(env)).after["REG_FEE"] == Decimal("25.00")


# -- skipped records ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "tombstone"),
        (b"", "tombstone"),
        (b'{"schema":null,"payload":null}', "tombstone"),
    ],
)
def test_tombstone_is_skipped_with_reason(value, kind):
    result = _decode(value)
    assert isinstance(result, Skip) and result.kind == kind and "tombstone" in result.reason


@pytest.mark.parametrize(
    ("fixture", "topic", "kind"),
    [
        ("postgres_truncate.json", "hisdb.his.outp_fee_detail", "truncate"),
        ("postgres_logical_message.json", "hisdb.message", "logical_decoding_message"),
        ("heartbeat_schema.json", "__debezium-heartbeat.hisdb", "heartbeat"),
        ("heartbeat_schema.json", "hisdb.heartbeats", "heartbeat"),
        ("oracle_schema_change.json", "hisdb", "schema_change"),
        ("transaction_begin.json", "hisdb.transaction", "transaction"),
    ],
)
def test_records_without_a_row_change_are_skipped_with_reason(raw, fixture, topic, kind):
    result = _decode(raw(fixture), topic=topic)
    assert isinstance(result, Skip) and result.kind == kind and result.reason


# -- malformed records -------------------------------------------------------------------------------------------------


def test_bad_json_raises_decode_error_naming_where_it_broke(raw):
    with pytest.raises(DecodeError, match=r"value is not valid JSON: .* line 1 column \d+"):
        _decode(raw("oracle_envelope_noschema_string.json").replace(b"\n", b" ")[:200])


def test_non_utf8_bytes_raise_decode_error():
    with pytest.raises(DecodeError, match="not UTF-8"):
        _decode(b'{"op": "c", "x": "\xff\xfe"}')


def test_value_that_is_not_an_object_raises_decode_error():
    with pytest.raises(DecodeError, match="not a JSON object"):
        _decode(b"[1, 2, 3]")


def test_unknown_op_raises_decode_error(record, encode):
    env = record("oracle_envelope_noschema_string.json")
    env["op"] = "x"
    with pytest.raises(DecodeError, match="op must be one of"):
        _decode(encode(env))


def test_create_without_after_raises_decode_error(record, encode):
    env = record("oracle_envelope_noschema_string.json")
    env["after"] = None
    with pytest.raises(DecodeError, match="op c without an 'after'"):
        _decode(encode(env))


def test_delete_without_before_raises_decode_error(record, encode):
    env = record("postgres_envelope_delete_discharge.json")
    env["before"] = None
    with pytest.raises(DecodeError, match="op d without a 'before'"):
        _decode(encode(env), topic="hisdb.his.inp_discharge")


def test_timestamp_typed_column_with_text_raises_decode_error_naming_the_column(record, encode):
    env = record("oracle_envelope_schema_precise.json")
    env["payload"]["after"]["REG_TIME"] = "2025-02-30 25:61:00"
    with pytest.raises(DecodeError, match=r"HIS.OUTP_REGISTER after column REG_TIME: io.debezium.time.Timestamp"):
        _decode(encode(env))


def test_precise_decimal_that_is_not_base64_raises_decode_error(record, encode):
    env = record("oracle_envelope_schema_precise.json")
    env["payload"]["after"]["REG_FEE"] = "not*base64"
    with pytest.raises(DecodeError, match="column REG_FEE"):
        _decode(encode(env))


def test_decode_error_never_quotes_row_values(record, encode):
    env = record("oracle_envelope_schema_precise.json")
    env["payload"]["after"]["REG_TIME"] = "440604199003070014"
    with pytest.raises(DecodeError) as info:
        _decode(encode(env))
    assert "440604199003070014" not in str(info.value)


def test_every_temporal_semantic_type_is_decoded_by_its_schema(encode):
    def col(name: str, ctype: str, semantic: str) -> dict:
        return {"type": ctype, "optional": True, "name": semantic, "version": 1, "field": name}

    schema = {"type": "struct", "optional": False, "name": "hisdb.HIS.T.Value", "fields": [
        col("A", "int64", "io.debezium.time.Timestamp"), col("B", "int64", "io.debezium.time.MicroTimestamp"),
        col("C", "int64", "io.debezium.time.NanoTimestamp"), col("D", "int32", "io.debezium.time.Date"),
        col("E", "string", "io.debezium.time.ZonedTimestamp"),
        col("F", "int64", "org.apache.kafka.connect.data.Timestamp"),
        col("G", "int32", "org.apache.kafka.connect.data.Date"), col("H", "int64", "io.debezium.time.MicroTime"),
    ]}
    payload = {"A": 1740989730000, "B": 1740989730000001, "C": 1740989730000000001, "D": 20150,
               "E": "2025-03-03T00:15:30Z", "F": 1740989730000, "G": 20150, "H": 29730000000, "__op": "c"}
    row = _change(encode({"schema": schema, "payload": payload}), topic="hisdb.HIS.T").after
    wall = dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)
    assert row["A"] == row["E"] == row["F"] == wall
    assert row["B"] == wall.replace(microsecond=1) and row["C"] == wall
    assert row["D"] == row["G"] == dt.date(2025, 3, 3)
    assert row["H"] == dt.time(8, 15, 30)
