"""The stable event id: duplicates share it, different changes do not (yibao.hisevents.eventid)."""

from __future__ import annotations

from yibao.hisevents.debezium import ChangeEvent, Row, decode
from yibao.hisevents.eventid import change_identity, event_id

REGISTER = "hisdb.HIS.OUTP_REGISTER"


def _id(ingestor, value: bytes, *, topic: str = REGISTER, partition: int = 0, offset: int = 0) -> str:
    (event,) = ingestor.ingest(topic, partition, offset, None, value).events
    return event.event_id


def test_the_same_change_delivered_twice_gets_the_same_id(ingestor, raw):
    value = raw("oracle_envelope_schema_precise.json")
    assert _id(ingestor, value, offset=10) == _id(ingestor, value, offset=10)


def test_a_replay_at_another_partition_and_offset_keeps_the_id(ingestor, raw):
    value = raw("oracle_envelope_schema_precise.json")
    assert _id(ingestor, value, partition=0, offset=10) == _id(ingestor, value, partition=3, offset=98765)


def test_the_envelope_and_its_unwrapped_form_of_one_change_share_the_id(ingestor, raw):
    ids = {_id(ingestor, raw(name)) for name in (
        "oracle_envelope_schema_precise.json", "oracle_envelope_noschema_string.json",
        "oracle_unwrapped_noschema_precise.json", "oracle_unwrapped_schema_double.json")}
    assert len(ids) == 1


def test_changes_at_different_log_positions_get_different_ids(ingestor, record, encode):
    first = record("oracle_envelope_noschema_string.json")
    second = record("oracle_envelope_noschema_string.json")
    second["source"].update(scn="8200009999", rs_id=" 0x0000f5.00000400.0010 ", ssn=1)
    assert _id(ingestor, encode(first)) != _id(ingestor, encode(second))


def test_different_rows_get_different_ids(ingestor, record, encode):
    other = record("oracle_envelope_noschema_string.json")
    other["after"]["REG_ID"] = 25030300002
    assert _id(ingestor, encode(other)) != _id(ingestor, encode(record("oracle_envelope_noschema_string.json")))


def test_without_a_position_the_id_comes_from_the_row_content(ingestor, record, encode):
    row = {k: v for k, v in record("oracle_unwrapped_noschema_precise.json").items()
           if k not in ("__scn", "__commit_scn", "__rs_id", "__ssn", "__source_ts_ms")}
    same = dict(row)
    changed = dict(row, DOCTOR_CODE="D030102")
    assert _id(ingestor, encode(row), offset=1) == _id(ingestor, encode(same), offset=2)
    assert _id(ingestor, encode(row)) != _id(ingestor, encode(changed))


def test_an_oracle_scn_alone_is_completed_by_the_row_content():
    before = Row({"REG_ID": 1, "STATUS": "1"})
    common = dict(topic=REGISTER, partition=0, offset=0, schema="HIS", table_name="OUTP_REGISTER", op="u",
                  before=before, position={"scn": "8200007007"})
    a = ChangeEvent(after=Row({"REG_ID": 1, "STATUS": "2"}), **common)  # type: ignore[arg-type]
    b = ChangeEvent(after=Row({"REG_ID": 1, "STATUS": "9"}), **common)  # type: ignore[arg-type]
    assert "content" in change_identity("HIS.OUTP_REGISTER", {"REG_ID": "1"}, a)
    assert event_id("HIS.OUTP_REGISTER", {"REG_ID": "1"}, a, "r", "t") != event_id(
        "HIS.OUTP_REGISTER", {"REG_ID": "1"}, b, "r", "t")


def test_the_case_of_table_and_column_names_does_not_change_the_id(ingestor, record, encode):
    env = record("oracle_envelope_noschema_string.json")
    lower = record("oracle_envelope_noschema_string.json")
    lower["after"] = {k.lower(): v for k, v in lower["after"].items()}
    lower["source"].update(schema="his", table="outp_register")
    assert _id(ingestor, encode(env)) == _id(ingestor, encode(lower), topic="hisdb.his.outp_register")


def test_kafka_coordinates_do_not_enter_the_identity(raw):
    change = decode(REGISTER, 5, 12345, None, raw("oracle_envelope_schema_precise.json"))
    identity = change_identity("HIS.OUTP_REGISTER", {"REG_ID": "25030300001"}, change)  # type: ignore[arg-type]
    text = repr(identity)
    assert "12345" not in text and "topic" not in text and "partition" not in text
