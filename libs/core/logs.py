"""Structured logging: one JSON object per line, personal data masked on every record.

``configure_logging(service)`` installs a handler on the root logger whose filter
(:class:`PersonalDataFilter`) masks the message, its arguments, any structured ``extra`` fields and the
exception text before anything is formatted, so neither our code nor a library can write a certno, a name or
a phone number to the log. Put facts in ``extra={"fields": {...}}``, not in the message.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from yibao.core import clock
from yibao.core.privacy import is_personal_key, mask_obj, mask_text

__all__ = ["PersonalDataFilter", "JsonFormatter", "configure_logging", "get_logger"]

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "fields"}


class PersonalDataFilter(logging.Filter):
    """Masks personal data in a record in place. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = mask_text(message)
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = mask_obj(fields)
        for key, value in list(vars(record).items()):
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            if is_personal_key(key):
                setattr(record, key, mask_obj({key: value})[key])
            elif isinstance(value, (dict, list, str)):
                setattr(record, key, mask_obj(value))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": clock.from_epoch_ms(int(record.created * 1000)).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


def configure_logging(service: str, *, level: str = "INFO", json_lines: bool = True) -> None:
    """Route every logger through one masked handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(PersonalDataFilter())
    handler.setFormatter(
        JsonFormatter(service) if json_lines else _TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "faust", "mode", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
