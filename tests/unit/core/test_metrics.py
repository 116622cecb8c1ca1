"""Metric labels are bounded vocabularies: never a person, an id or free text (yibao.core.metrics)."""

from __future__ import annotations

import pytest

from yibao.core import metrics


@pytest.mark.parametrize("value", ["exhausted", "undecodable", "message_too_large", "t1a2b3c4.yibao.his.events.v1",
                                   "HIS.PATIENT_REG", "OperationalError"])
def test_a_machine_word_is_kept_as_a_label(value: str) -> None:
    assert metrics.bounded(value) == value


@pytest.mark.parametrize("value", ["110105194912310021", "code_13812345678", "张三", "bad input: amount", "x" * 200,
                                   "", "44000012345678901234"])
def test_anything_else_becomes_other(value: str) -> None:
    assert metrics.bounded(value) == "other"


def test_a_reason_code_from_input_cannot_put_personal_data_in_the_dead_letter_metric() -> None:
    """The dead-letter counter's reason_code comes from an error's code, which a library may set per instance."""
    metrics.DEAD_LETTERS.labels("test", metrics.bounded("110105194912310021")).inc()
    assert b"110105194912310021" not in metrics.render()
