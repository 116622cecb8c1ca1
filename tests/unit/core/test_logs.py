"""Structured logs with personal data masked (yibao.core.logs), through the real ``configure_logging`` handler.

Every test logs through the handler ``configure_logging`` installs, writing to a captured stream (fixture
``captured_log`` in conftest.py), and reads what a log collector would read.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import pytest

from yibao.core.logs import configure_logging

CERTNO = "11010519491231002X"
MOBILE = "13812345678"
NAME = "张三"
PERSONAL = (CERTNO, MOBILE, NAME)

log = logging.getLogger("yibao.test.logs")


def lines(read: Callable[[], str]) -> list[dict[str, Any]]:
    """Every line written, each parsed as one JSON object (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in read().splitlines() if line.strip()]


def assert_nothing_personal(text: str) -> None:
    for value in PERSONAL:
        assert value not in text, f"{value!r} reached the log"


class _Keep(logging.Handler):
    """Keeps the records a later handler sees (after the masking handler has filtered them)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept(captured_log: Callable[[], str]) -> _Keep:
    handler = _Keep()
    logging.getLogger().addHandler(handler)  # after the masking handler: sees the record as it was masked
    return handler


def test_personal_data_in_the_message_is_masked(captured_log: Callable[[], str]) -> None:
    log.info(f"registered certno {CERTNO}, tel {MOBILE}, psn_name={NAME}")
    assert_nothing_personal(captured_log())
    assert lines(captured_log)[0]["msg"].startswith("registered certno 110")


def test_personal_data_in_percent_args_is_masked(captured_log: Callable[[], str]) -> None:
    log.warning("person %s reachable at %s, psn_name=%s", CERTNO, MOBILE, NAME)
    assert_nothing_personal(captured_log())
    assert "reachable at 138****5678" in lines(captured_log)[0]["msg"]


def test_structured_fields_are_masked_and_kept(captured_log: Callable[[], str]) -> None:
    log.info("visit registered", extra={"fields": {"visit_id": "V0001", "psn_name": NAME, "certno": CERTNO,
                                                   "detail": {"tel": MOBILE}}})
    assert_nothing_personal(captured_log())
    entry = lines(captured_log)[0]
    assert entry["visit_id"] == "V0001" and entry["psn_name"] != NAME and "detail" in entry


def test_other_extra_attributes_are_masked_by_shape(kept: _Keep, captured_log: Callable[[], str]) -> None:
    log.info("parked", extra={"reason": f"certno {CERTNO} unknown", "rows": [{"tel": MOBILE}]})
    record = kept.records[-1]
    assert CERTNO not in record.reason and MOBILE not in repr(record.rows)


def test_other_extra_attributes_named_after_a_personal_key_are_masked(kept: _Keep,
                                                                      captured_log: Callable[[], str]) -> None:
    log.info("parked", extra={"psn_name": NAME})
    assert kept.records[-1].psn_name != NAME


def test_the_exception_text_is_masked(captured_log: Callable[[], str]) -> None:
    try:
        try:
            raise KeyError(f"no person with certno {CERTNO}")
        except KeyError as inner:
            raise ValueError(f"refused psn_name={NAME} tel {MOBILE}") from inner
    except ValueError:
        log.exception("registration failed")
    text = captured_log()
    assert_nothing_personal(text)
    entry = lines(captured_log)[0]
    assert entry["level"] == "ERROR" and "ValueError: refused psn_name=" in entry["exc"] and "KeyError" in entry["exc"]


def test_exc_info_on_a_plain_call_is_masked_too(captured_log: Callable[[], str]) -> None:
    try:
        raise RuntimeError(f"certno {CERTNO}")
    except RuntimeError:
        log.warning("continuing", exc_info=True)
    assert_nothing_personal(captured_log())
    assert "RuntimeError" in lines(captured_log)[0]["exc"]


def test_every_line_is_one_json_object_with_the_standard_keys(captured_log: Callable[[], str]) -> None:
    log.debug("one")
    log.info("two\nlines")
    log.error("three", extra={"fields": {"n": 3}})
    entries = lines(captured_log)
    assert [e["msg"] for e in entries] == ["one", "two\nlines", "three"]
    for entry in entries:
        assert {"ts", "level", "service", "logger", "msg"} <= set(entry)
        assert entry["service"] == "test-service" and entry["logger"] == "yibao.test.logs"
    assert entries[2]["n"] == 3


def test_ts_is_shanghai_time(captured_log: Callable[[], str]) -> None:
    log.info("when")
    ts = lines(captured_log)[0]["ts"]
    assert ts.endswith("+08:00")
    assert dt.datetime.fromisoformat(ts).utcoffset() == dt.timedelta(hours=8)


def test_a_broken_format_string_does_not_lose_the_line(captured_log: Callable[[], str]) -> None:
    log.info("%d items for %s", "not a number", MOBILE)
    log.info("after")
    entries = lines(captured_log)
    assert len(entries) == 2 and "items for" in entries[0]["msg"] and entries[1]["msg"] == "after"
    assert_nothing_personal(captured_log())


def test_a_library_logger_is_masked_too(captured_log: Callable[[], str]) -> None:
    logging.getLogger("some.library").warning("retrying for %s", CERTNO)
    assert_nothing_personal(captured_log())
    assert lines(captured_log)[0]["logger"] == "some.library"


def test_human_readable_lines_are_masked_too(captured_log: Callable[[], str], monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("test-service", level="INFO", json_lines=False)
    log.info("certno %s", CERTNO, extra={"fields": {"psn_name": NAME, "tel": MOBILE}})
    text = stream.getvalue()
    assert "certno 110" in text and "psn_name=" in text
    assert_nothing_personal(text)


def test_secrets_never_reach_the_log(captured_log: Callable[[], str]) -> None:
    log.error("cannot connect to postgresql+psycopg://yibao:hunter2x@db:5432/yibao",
              extra={"fields": {"headers": {"Authorization": "Bearer abcdefgh12345678"}, "appSecret": "s3cr3tA"}})
    log.warning("mobile pay config appSecret=s3cr3tA password=hunter2x sm4 key 0123456789abcdeffedcba9876543210")
    text = captured_log()
    for secret in ("hunter2x", "abcdefgh12345678", "s3cr3tA", "0123456789abcdeffedcba9876543210"):
        assert secret not in text, secret
    assert len(lines(captured_log)) == 2


def test_chinese_labels_nested_json_and_new_personal_keys_are_masked_in_the_log(
        captured_log: Callable[[], str]) -> None:
    inner = json.dumps({"psn_name": NAME, "psn_no": "44000012345678901234", "brdy": "1949-12-31"},
                       ensure_ascii=False)
    log.info("platform said 姓名：%s 身份证号:%sabc", NAME, CERTNO)
    log.info("input %s", json.dumps({"input": inner}, ensure_ascii=False))
    log.info("fields", extra={"fields": {"emp_name": "某某科技有限公司", "payload": inner}})
    text = captured_log()
    assert_nothing_personal(text)
    for value in ("44000012345678901234", "1949-12-31", "某某科技有限公司"):
        assert value not in text
