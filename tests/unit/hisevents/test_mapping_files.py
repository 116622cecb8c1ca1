"""Mapping files are validated at load; every problem names the file and the entry (yibao.hisevents.mapping)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from yibao.core.errors import ConfigurationError
from yibao.hisevents.mapping import available_mappings, load_mapping, mapping_from_dict


def _minimal() -> dict[str, Any]:
    return {
        "vendor": "test-his",
        "code_maps": {"med": {"PT": "11"}},
        "tables": {
            "HIS.OUTP_REGISTER": {
                "primary_key": ["REG_ID"],
                "common": {"his_visit_id": "REG_ID", "his_patient_id": "PATIENT_ID"},
                "rules": [
                    {
                        "event": "patient_registered",
                        "ops": ["c", "r"],
                        "fields": {
                            "ipt_otp_no": "REG_NO",
                            "mdtrt_cert_type": {"constant": "02"},
                            "med_type": {"column": "MED_TYPE", "code_map": "med"},
                            "begntime": "REG_TIME",
                            "dept_code": "DEPT_CODE",
                            "dept_name": "DEPT_NAME",
                        },
                    }
                ],
            }
        },
    }


def _rule(data: dict[str, Any]) -> dict[str, Any]:
    return data["tables"]["HIS.OUTP_REGISTER"]["rules"][0]


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    return _rule(data)["fields"]


ENTRY = "tables.HIS.OUTP_REGISTER.rules[0]"

BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown_event_type", lambda d: _rule(d).update(event="patient_teleported"),
     f"{ENTRY}.event: unknown event type 'patient_teleported'"),
    ("unknown_target_field", lambda d: _fields(d).update(shoe_size="SHOE"),
     f"{ENTRY}.fields.shoe_size: PatientRegistered has no field 'shoe_size'"),
    ("unknown_type", lambda d: _fields(d).update(reg_fee={"column": "REG_FEE", "type": "money"}),
     f"{ENTRY}.fields.reg_fee.type: unknown type 'money'"),
    ("type_does_not_fit", lambda d: _fields(d).update(reg_fee={"column": "REG_FEE", "type": "date"}),
     f"{ENTRY}.fields.reg_fee.type: type date does not fit field reg_fee (decimal)"),
    ("scale_on_text", lambda d: _fields(d).update(reg_type={"column": "REG_TYPE", "scale": 2}),
     f"{ENTRY}.fields.reg_type.scale: scale applies to decimal fields (or `type: decimal`) only"),
    ("unit_on_text", lambda d: _fields(d).update(reg_type={"column": "REG_TYPE", "unit": "ms"}),
     f"{ENTRY}.fields.reg_type.unit: unit applies to date/datetime fields only"),
    ("unknown_code_map", lambda d: _fields(d).update(med_type={"column": "MED_TYPE", "code_map": "nope"}),
     f"{ENTRY}.fields.med_type.code_map: no code map named 'nope'"),
    ("column_and_constant", lambda d: _fields(d).update(dept_code={"column": "DEPT_CODE", "constant": "0301"}),
     f"{ENTRY}.fields.dept_code: give one of column, constant, template, items (got column, constant)"),
    ("no_source", lambda d: _fields(d).update(dept_code={"required": True}),
     f"{ENTRY}.fields.dept_code: give a column, a constant, a template, items or a default"),
    ("required_field_unmapped", lambda d: _fields(d).pop("med_type"),
     f"{ENTRY}.fields: event patient_registered needs field med_type, which is not mapped"),
    ("system_field_mapped", lambda d: _fields(d).update(event_id="REG_ID"),
     f"{ENTRY}.fields.event_id: event_id is set by the ingest"),
    ("unknown_condition", lambda d: _rule(d).update(when={"STATUS": {"like": "1%"}}),
     f"{ENTRY}.when.STATUS: unknown condition 'like'"),
    ("unknown_op", lambda d: _rule(d).update(ops=["insert"]), f"{ENTRY}.ops[0]: Input should be"),
    ("unknown_key", lambda d: _rule(d).update(colour="red"), f"{ENTRY}.colour: Extra inputs are not permitted"),
    ("template_without_column", lambda d: _fields(d).update(ipt_otp_no={"template": "MZ-fixed"}),
     f"{ENTRY}.fields.ipt_otp_no.template: a template must reference at least one {{COLUMN}}"),
    ("items_on_text", lambda d: _fields(d).update(dept_code={"items": [{"fields": {}}]}),
     f"{ENTRY}.fields.dept_code.items: items applies to list-of-object fields only"),
    ("bad_common_field", lambda d: d["tables"]["HIS.OUTP_REGISTER"]["common"].update(med_type="MED_TYPE"),
     "tables.HIS.OUTP_REGISTER.common.med_type: not a common field"),
    ("no_tables", lambda d: d.update(tables={}), "tables: Dictionary should have at least 1 item"),
    ("bad_decimal_mode", lambda d: d.update(decimal_handling_mode="float"), "decimal_handling_mode: Input should be"),
]


def test_the_example_mapping_loads_and_covers_every_event_type(example_mapping):
    events = {rule.event for table in example_mapping.tables for rule in table.rules if rule.event}
    from yibao.hisevents.models import EVENT_TYPES

    assert events == set(EVENT_TYPES)
    assert "example-oracle-his" in available_mappings()


def test_a_minimal_mapping_compiles():
    mapping = mapping_from_dict(_minimal(), "minimal.yaml")
    assert mapping.tables[0].rules[0].name == "patient_registered#0"


@pytest.mark.parametrize(("case", "mutate", "expected"), BAD, ids=[b[0] for b in BAD])
def test_mapping_validation_errors_name_the_file_and_the_entry(case, mutate, expected):
    data = copy.deepcopy(_minimal())
    mutate(data)
    with pytest.raises(ConfigurationError) as info:
        mapping_from_dict(data, "broken-his.yaml")
    message = str(info.value)
    assert message.startswith("mapping broken-his.yaml: "), message
    assert expected in message, message


def test_items_must_map_the_required_fields_of_their_elements():
    data = _minimal()
    data["tables"]["HIS.OUTP_DIAGNOSIS"] = {
        "primary_key": ["DIAG_ID"],
        "common": {"his_visit_id": "REG_ID", "his_patient_id": "PATIENT_ID", "visit_kind": {"constant": "outpatient"}},
        "rules": [{"event": "visit_info", "ops": ["c"],
                   "fields": {"diagnoses": {"items": [{"fields": {"diag_code": "ICD"}}]}}}],
    }
    with pytest.raises(ConfigurationError, match=r"rules\[0\]\.fields\.diagnoses\.items\[0\]\.fields: Diagnosis needs"):
        mapping_from_dict(data, "broken-his.yaml")


def test_a_file_that_is_not_yaml_is_reported_with_its_line(tmp_path: Path):
    path = tmp_path / "broken-his.yaml"
    path.write_text("vendor: x\ntables: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"mapping broken-his.yaml: not valid YAML/JSON at line \d+"):
        load_mapping(path)


def test_a_mapping_file_loads_by_path(tmp_path: Path):
    path = tmp_path / "my-his.yaml"
    path.write_text(yaml.safe_dump(_minimal(), allow_unicode=True), encoding="utf-8")
    assert load_mapping(path).vendor == "test-his"


def test_an_unknown_mapping_name_lists_the_shipped_ones():
    with pytest.raises(ConfigurationError, match="file not found .*example-oracle-his"):
        load_mapping("no-such-his")


def test_topics_default_to_prefix_schema_table(example_mapping):
    topics = example_mapping.topics()
    assert "hisdb.HIS.OUTP_REGISTER" in topics and len(topics) == len(example_mapping.tables)
    assert "other.HIS.OUTP_REGISTER" in example_mapping.topics("other")


def test_the_example_mapping_subscribes_to_what_the_generator_writes(example_mapping):
    from yibao.fakedata.his import generated_topics

    assert set(example_mapping.topics()) == set(generated_topics(heartbeats=False))
