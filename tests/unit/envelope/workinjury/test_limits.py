"""At most 500 records per call, 10 for attachments (seed 002 §2.2.1); nothing is built past the limit."""

from __future__ import annotations

import pytest

from yibao.envelope.errors import EnvelopeValidationError
from yibao.envelope.workinjury import WorkInjuryCodec, WorkInjurySettings, check_record_limits

SETTINGS = WorkInjurySettings()


def test_500_records_in_a_call_are_accepted() -> None:
    check_record_limits("GYU102", {"feedetail": [{"n": str(i)} for i in range(500)]}, SETTINGS)
    check_record_limits("GYU102", [{"n": str(i)} for i in range(500)], SETTINGS)


def test_501_records_in_a_call_are_refused_naming_infno_path_and_rule() -> None:
    with pytest.raises(EnvelopeValidationError) as info:
        check_record_limits("GYU102", {"feedetail": [{}] * 501}, SETTINGS)
    assert (info.value.infno, info.value.path) == ("GYU102", "data.feedetail")
    assert info.value.rule == "at most 500 records per call"
    assert "501" in str(info.value)


def test_a_top_level_list_of_501_records_is_refused() -> None:
    with pytest.raises(EnvelopeValidationError) as info:
        check_record_limits("GYU008", [{}] * 501, SETTINGS)
    assert info.value.path == "data"


def test_10_attachments_are_accepted_and_11_refused() -> None:
    check_record_limits("GYU002", {"attachments": [{}] * 10}, SETTINGS)
    with pytest.raises(EnvelopeValidationError, match="at most 10 attachments per call"):
        check_record_limits("GYU002", {"attachments": [{}] * 11}, SETTINGS)


def test_lists_inside_a_record_are_not_counted_as_records() -> None:
    check_record_limits("GYU103", {"setl": {"details": [{}] * 600}}, SETTINGS)


def test_limits_are_settings() -> None:
    strict = WorkInjurySettings(max_records=2, attachment_transactions=frozenset({"GYU002", "GYU999"}))
    with pytest.raises(EnvelopeValidationError):
        check_record_limits("GYU102", [{}] * 3, strict)
    with pytest.raises(EnvelopeValidationError):
        check_record_limits("GYU999", [{}] * 11, strict)


class _RefusingBackend:
    """An SM2 backend that fails the test if anything is encrypted or signed."""

    name = "refusing"

    def _refuse(self, *_a, **_k):
        raise AssertionError("envelope built despite the limit")

    sign = verify = encrypt = decrypt = _refuse


def test_sealing_past_the_limit_raises_before_anything_is_encrypted(keys) -> None:
    codec = WorkInjuryCodec(keys["hospital"][0], keys["platform"][1], backend=_RefusingBackend())
    with pytest.raises(EnvelopeValidationError):
        codec.seal("GYU102", "T1", {"feedetail": [{}] * 501})


def test_sealing_without_a_serial_is_refused(keys) -> None:
    codec = WorkInjuryCodec(keys["hospital"][0], keys["platform"][1])
    with pytest.raises(EnvelopeValidationError, match="transNo: required"):
        codec.seal("GYU101", "", {})
