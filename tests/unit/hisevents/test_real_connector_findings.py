"""What a real Debezium connector showed (issue 12), one rule per test: precise decimals under a schema, NUMERIC
ids without one, PostgreSQL's default replica identity, lower-case topic names, dead letters keyed by visit."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from yibao.core.errors import UnmappableEventError
from yibao.hisevents import Ingestor, decode, mapping_from_dict
from yibao.hisevents.mapping import resolve_topics
from yibao.hisevents.models import ChargeLineReversed, SettlementRequested

DECIMAL = "org.apache.kafka.connect.data.Decimal"


def _b64(unscaled: int) -> str:
    length = max(1, (unscaled.bit_length() + 8) // 8)
    return base64.b64encode(unscaled.to_bytes(length, "big", signed=True)).decode()


def _envelope(table: str, op: str, *, before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
              connector: str = "postgresql", schema: str = "his") -> bytes:
    return json.dumps({
        "before": before, "after": after, "op": op, "ts_ms": 1741314000412, "transaction": None,
        "source": {"connector": connector, "name": "hisdb", "ts_ms": 1741314000000, "db": "his", "schema": schema,
                   "table": table, "lsn": 24023376, "snapshot": "false"},
    }).encode()


def test_under_a_decimal_schema_a_string_is_always_base64_even_when_it_reads_as_a_number():
    assert _b64(-532611) == "9999"  # -5326.11 at scale 2: base64 made only of digits
    value = json.dumps({
        "schema": {"type": "struct", "fields": [
            {"field": "before", "type": "struct", "optional": True, "fields": []},
            {"field": "after", "type": "struct", "optional": True, "fields": [
                {"field": "amount", "type": "bytes", "name": DECIMAL, "parameters": {"scale": "2"}},
                {"field": "qty", "type": "bytes", "name": DECIMAL, "parameters": {"scale": "4"}}]}]},
        "payload": {"before": None, "after": {"amount": "9999", "qty": _b64(-10000)}, "op": "c",
                    "source": {"connector": "postgresql", "schema": "his", "table": "outp_fee_detail", "lsn": 1}},
    }).encode()
    change = decode("hisdb.his.outp_fee_detail", 0, 0, None, value)
    assert change.after["amount"] == Decimal("-5326.11")
    assert change.after["qty"] == Decimal("-1.0000")


_REQUEST_MAPPING = {
    "vendor": "pg-his", "topic_prefix": "hisdb", "decimal_handling_mode": "precise",
    "tables": {"his.yb_settle_request": {
        "primary_key": ["req_id"],
        "common": {"his_visit_id": {"column": "visit_id", "type": "decimal", "scale": 0},
                   "his_patient_id": "patient_id", "visit_kind": {"constant": "outpatient"}},
        "rules": [{"name": "settle", "event": "settlement_requested", "ops": ["c", "r"], "fields": {
            "his_request_id": {"column": "req_id", "type": "decimal", "scale": 0},
            "medfee_sumamt": {"column": "total_amt", "scale": 2}}}],
    }},
}


def test_a_numeric_id_sent_as_base64_without_schemas_is_read_with_type_decimal_scale_0():
    assert _b64(880001) == "DW2B"  # what a NUMERIC(12,0) id looks like under decimal.handling.mode=precise
    ingestor = Ingestor(mapping_from_dict(_REQUEST_MAPPING))
    value = _envelope("yb_settle_request", "c", after={
        "req_id": "DW2B", "visit_id": _b64(25030300001), "patient_id": "P01", "total_amt": _b64(8800)})
    (event,) = ingestor.ingest("hisdb.his.yb_settle_request", 0, 0, None, value).events
    assert isinstance(event, SettlementRequested)
    assert event.his_request_id == "880001" and event.his_visit_id == "25030300001"
    assert event.medfee_sumamt == Decimal("88.00")


def test_a_delete_whose_before_image_holds_only_the_key_is_parked_naming_replica_identity_full(ingestor):
    # PostgreSQL's default REPLICA IDENTITY: the delete's before image has the primary key; Debezium 3.6 fills the
    # other columns with null, or with the type's zero value where the column is NOT NULL (as captured)
    before = {"dscg_id": "AJUxNPc=", "adm_id": "AA==", "patient_id": "", "dscg_time": 0, "dscg_way": "",
              "main_diag_code": None, "die_date": None}
    value = _envelope("inp_discharge", "d", before=before)
    with pytest.raises(UnmappableEventError) as err:
        ingestor.ingest("hisdb.his.inp_discharge", 0, 0, b'{"dscg_id": "AJUxNPc="}', value)
    assert err.value.code == "replica_identity"
    assert "only the key" in str(err.value) and "ADM_ID" in str(err.value)
    assert "ALTER TABLE his.inp_discharge REPLICA IDENTITY FULL" in str(err.value)
    assert err.value.dlq_key is None  # its zeros are no visit id: the record's own key stays


def test_a_delete_with_the_whole_old_row_still_cancels_the_discharge(ingestor, raw):
    (event,) = ingestor.ingest("hisdb.his.inp_discharge", 0, 0, None,
                               raw("postgres_envelope_delete_discharge.json")).events
    assert event.type == "cancellation" and event.target == "discharge"


def _admission(status: str) -> dict[str, Any]:
    return {"ADM_ID": 92503030002, "PATIENT_ID": "P1", "STATUS": status, "UPDATE_TIME": 1741314000000}


def test_an_update_without_a_before_image_is_not_guessed_for_a_rule_that_checks_changed_columns(ingestor):
    value = _envelope("INP_ADMISSION", "u", after=_admission("9"), schema="HIS")
    with pytest.raises(UnmappableEventError) as err:
        ingestor.ingest("hisdb.HIS.INP_ADMISSION", 0, 0, None, value)
    assert err.value.code == "replica_identity"
    assert "changed: [STATUS] cannot be checked" in str(err.value) and "REPLICA IDENTITY FULL" in str(err.value)


def test_an_update_with_its_before_image_cancels_once(ingestor):
    value = _envelope("INP_ADMISSION", "u", before=_admission("1"), after=_admission("9"), schema="HIS")
    (event,) = ingestor.ingest("hisdb.HIS.INP_ADMISSION", 0, 0, None, value).events
    assert event.type == "cancellation" and event.target == "admission"
    again = _envelope("INP_ADMISSION", "u", before=_admission("9"), after=_admission("9"), schema="HIS")
    assert ingestor.ingest("hisdb.HIS.INP_ADMISSION", 0, 1, None, again).skipped


def test_the_subscription_finds_the_topics_in_the_case_the_connector_wrote_them(example_mapping):
    existing = ["hisdb.his.outp_register", "hisdb.his.outp_fee_detail", "hisdb.HIS.YB_SETTLE_REQUEST",
                "yibao.his.events.v1"]
    resolution = example_mapping.resolve_topics(existing)
    assert "hisdb.his.outp_register" in resolution.topics
    assert "hisdb.HIS.OUTP_REGISTER" not in resolution.topics
    assert "hisdb.HIS.YB_SETTLE_REQUEST" in resolution.topics
    assert ("hisdb.HIS.OUTP_REGISTER", "hisdb.his.outp_register") in resolution.respelled
    # a table whose topic the connector has not created yet is subscribed under its name and reported
    assert "hisdb.HIS.YB_REFUND_REQUEST" in resolution.missing
    assert "hisdb.HIS.YB_REFUND_REQUEST" in resolution.topics


def test_the_subscription_finds_sql_servers_topics_with_the_database_in_the_name():
    resolution = resolve_topics(["hisdb.HIS.OUTP_REGISTER"], ["hisdb.hisdb.his.outp_register"])
    assert resolution.topics == ("hisdb.hisdb.his.outp_register",) and not resolution.missing


def test_an_unmappable_row_names_its_his_visit_id_as_the_dead_letter_key(ingestor):
    after = {"REQ_ID": 1, "VISIT_ID": "25030300001", "PATIENT_ID": "P1", "VISIT_TYPE": "X", "REQ_TIME": 1}
    value = _envelope("YB_SETTLE_REQUEST", "c", after=after, schema="HIS", connector="oracle")
    with pytest.raises(UnmappableEventError) as err:
        ingestor.ingest("hisdb.HIS.YB_SETTLE_REQUEST", 0, 0, b'{"REQ_ID": 1}', value)
    assert "visit_type" in str(err.value)
    assert err.value.dlq_key == "25030300001"


def test_a_reversal_line_with_a_negative_precise_amount_under_a_schema_is_a_reversal(ingestor):
    fields = [{"field": c, "type": "bytes", "name": DECIMAL, "parameters": {"scale": str(s)}}
              for c, s in (("amount", 2), ("qty", 4), ("price", 6))]
    after = {"detail_id": "D2", "init_detail_id": "D1", "reg_id": "R1", "patient_id": "P1",
             "fee_time": 1741314000000000, "yb_code": "X01", "item_code": "I01", "amount": "9999",
             "qty": _b64(-10000), "price": _b64(5326110000)}
    value = json.dumps({
        "schema": {"type": "struct", "fields": [
            {"field": "before", "type": "struct", "optional": True, "fields": fields},
            {"field": "after", "type": "struct", "optional": True, "fields": fields}]},
        "payload": {"before": None, "after": after, "op": "c",
                    "source": {"connector": "postgresql", "schema": "his", "table": "outp_fee_detail", "lsn": 5}},
    }).encode()
    (event,) = ingestor.ingest("hisdb.his.outp_fee_detail", 0, 0, None, value).events
    assert isinstance(event, ChargeLineReversed)
    assert event.det_item_fee_sumamt == Decimal("-5326.11") and event.cnt == Decimal("-1.0000")


def test_a_numeric_key_gives_the_same_event_id_with_or_without_schemas():
    mapping = mapping_from_dict({**_REQUEST_MAPPING, "tables": {"his.yb_settle_request": {
        **_REQUEST_MAPPING["tables"]["his.yb_settle_request"], "primary_key": ["req_id:decimal"]}}})
    ingestor = Ingestor(mapping)
    row = {"req_id": 880001, "visit_id": 25030300001, "patient_id": "P01", "total_amt": Decimal("88.00")}
    decimal = {"type": "bytes", "name": DECIMAL}
    fields = [{"field": "req_id", **decimal, "parameters": {"scale": "0"}},
              {"field": "visit_id", **decimal, "parameters": {"scale": "0"}},
              {"field": "patient_id", "type": "string"},
              {"field": "total_amt", **decimal, "parameters": {"scale": "2"}}]
    typed = json.dumps({
        "schema": {"type": "struct", "fields": [{"field": "after", "type": "struct", "fields": fields}]},
        "payload": {"before": None, "op": "c", "after": {
            "req_id": _b64(880001), "visit_id": _b64(25030300001), "patient_id": "P01", "total_amt": _b64(8800)},
            "source": {"connector": "postgresql", "schema": "his", "table": "yb_settle_request", "lsn": 77,
                       "ts_ms": 1741314000000}},
    }).encode()
    plain = _envelope("yb_settle_request", "c", after={
        "req_id": _b64(880001), "visit_id": _b64(25030300001), "patient_id": "P01", "total_amt": _b64(8800)})
    plain = plain.replace(b'"lsn": 24023376', b'"lsn": 77')
    (a,) = ingestor.ingest("hisdb.his.yb_settle_request", 0, 0, None, typed).events
    (b,) = ingestor.ingest("hisdb.his.yb_settle_request", 0, 0, None, plain).events
    assert a.event_id == b.event_id and a.model_dump(exclude={"source"}) == b.model_dump(exclude={"source"})
    assert row["req_id"] == int(a.his_request_id)
