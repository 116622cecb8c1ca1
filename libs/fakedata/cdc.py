"""Encode row changes as Debezium would put them on Kafka, in a chosen shape.

Shapes (:class:`CdcShape`): full envelope or ExtractNewRecordState-unwrapped; with or without the JsonConverter
``schema``/``payload`` wrapper; ``decimal.handling.mode`` string / precise / double; upper- or lower-case names;
the ``source`` block of an Oracle, MySQL, PostgreSQL or SQL Server connector. Column types are Oracle's:
NUMBER(p,0) → int64, NUMBER(p,s) → decimal, DATE → io.debezium.time.Timestamp (epoch ms of the wall-clock
time read as UTC), TIMESTAMP(6) → io.debezium.time.MicroTimestamp.

JSON is written by a small serialiser of our own so that decimals in ``double`` mode become JSON numbers
without ever being Python floats.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from yibao.core.clock import SHANGHAI

__all__ = ["CdcShape", "RawCdcMessage", "TableDef", "RowChange", "CdcEncoder", "dumps", "HEARTBEAT_TOPIC_PREFIX"]

HEARTBEAT_TOPIC_PREFIX = "__debezium-heartbeat"
_EPOCH = _dt.datetime(1970, 1, 1)


class CdcShape(BaseModel):
    """How the (fake) Debezium connector and Kafka Connect are configured."""

    model_config = ConfigDict(frozen=True)

    schemas: bool = False  # JsonConverter schemas.enable
    unwrap: bool = False  # ExtractNewRecordState
    unwrap_add_fields: bool = True  # add.fields=op,table,schema,source.ts_ms + the position fields
    delete_handling: Literal["rewrite", "drop"] = "rewrite"
    tombstones: bool = True  # tombstones.on.delete
    decimal_mode: Literal["string", "precise", "double"] = "precise"
    upper_case: bool = True
    connector: Literal["oracle", "mysql", "postgresql", "sqlserver"] = "oracle"
    topic_prefix: str = "hisdb"
    db_schema: str = "HIS"


class RawCdcMessage(BaseModel):
    """One Kafka record of a CDC topic. ``injected`` names a deliberate fault and ``expect_error`` the error class
    the ingest must raise for it; ``duplicate`` marks a deliberate second copy of the previous record."""

    model_config = ConfigDict(frozen=True)

    topic: str
    key: bytes | None
    value: bytes | None
    injected: str | None = None
    expect_error: str | None = None
    duplicate: bool = False

    def __repr__(self) -> str:  # values hold synthetic but personal-looking data
        flags = "".join(
            f", {k}={v!r}" for k, v in (("injected", self.injected), ("duplicate", self.duplicate)) if v
        )
        return f"RawCdcMessage(topic={self.topic!r}, value_bytes={len(self.value or b'')}{flags})"


@dataclass(frozen=True)
class TableDef:
    """A HIS table: name, primary key and columns with Oracle-ish types: int, str, dec:<scale>, date, ts6."""

    name: str
    primary_key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]

    def column_type(self, column: str) -> str:
        for name, ctype in self.columns:
            if name == column:
                return ctype
        raise KeyError(column)


@dataclass(frozen=True)
class RowChange:
    """One change of one row: op c/u/d/r with the row states (naive datetimes are Shanghai wall time)."""

    table: TableDef
    op: Literal["c", "u", "d", "r"]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: _dt.datetime  # commit time (aware, Shanghai)


# -- JSON without floats ------------------------------------------------------------------------------------------


def dumps(obj: Any) -> str:
    """Compact JSON; Decimal becomes a JSON number written from its text, never through float."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, Decimal):
        text = format(obj, "f")
        return text if ("." in text or "e" in text.lower()) else text + ".0"
    if isinstance(obj, str):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    raise TypeError(f"cannot serialise {type(obj).__name__}")


# -- value encodings ------------------------------------------------------------------------------------------------


def _unscaled_base64(value: Decimal, scale: int) -> str:
    unscaled = int(value.scaleb(scale).to_integral_value())
    length = max(1, (unscaled.bit_length() + 8) // 8)
    return base64.b64encode(unscaled.to_bytes(length, "big", signed=True)).decode("ascii")


def _epoch(value: _dt.datetime, per_second: int) -> int:
    wall = value.astimezone(SHANGHAI).replace(tzinfo=None) if value.tzinfo else value
    delta = wall - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * per_second + delta.microseconds * per_second // 1_000_000


class CdcEncoder:
    """Turns :class:`RowChange` objects into Kafka records of one :class:`CdcShape`, assigning log positions."""

    def __init__(self, shape: CdcShape, *, start_position: int = 1_000_000) -> None:
        self.shape = shape
        self._n = start_position

    # names ---------------------------------------------------------------------------------------------------------

    def name(self, text: str) -> str:
        return text if self.shape.upper_case else text.lower()

    def schema_name(self) -> str:
        return self.name(self.shape.db_schema)

    def topic(self, table: TableDef) -> str:
        return f"{self.shape.topic_prefix}.{self.schema_name()}.{self.name(table.name)}"

    # columns -------------------------------------------------------------------------------------------------------

    def encode_value(self, ctype: str, value: Any) -> Any:
        if value is None:
            return None
        if ctype.startswith("dec:"):
            scale = int(ctype[4:])
            dec = Decimal(value).quantize(Decimal(1).scaleb(-scale))
            if self.shape.decimal_mode == "string":
                return format(dec, "f")
            if self.shape.decimal_mode == "double":
                return dec
            return _unscaled_base64(dec, scale)
        if ctype == "date":
            return _epoch(value, 1_000) if isinstance(value, _dt.datetime) else value
        if ctype == "ts6":
            return _epoch(value, 1_000_000) if isinstance(value, _dt.datetime) else value
        return value  # int, str (a deliberately bad value passes through unchanged)

    def column_schema(self, column: str, ctype: str) -> dict[str, Any]:
        field: dict[str, Any]
        if ctype == "int":
            field = {"type": "int64", "optional": True}
        elif ctype.startswith("dec:"):
            scale = ctype[4:]
            if self.shape.decimal_mode == "string":
                field = {"type": "string", "optional": True}
            elif self.shape.decimal_mode == "double":
                field = {"type": "double", "optional": True}
            else:
                field = {
                    "type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                    "parameters": {"scale": scale, "connect.decimal.precision": "16"},
                }
        elif ctype == "date":
            field = {"type": "int64", "optional": True, "name": "io.debezium.time.Timestamp", "version": 1}
        elif ctype == "ts6":
            field = {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp", "version": 1}
        else:
            field = {"type": "string", "optional": True}
        field["field"] = self.name(column)
        return field

    def row(self, table: TableDef, values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for column, ctype in table.columns:
            if column in values:
                out[self.name(column)] = self.encode_value(ctype, values[column])
        return out

    def row_schema(self, table: TableDef, values: dict[str, Any] | None, name: str) -> dict[str, Any]:
        cols = [(c, t) for c, t in table.columns if values is None or c in values]
        return {
            "type": "struct", "optional": True, "name": name,
            "fields": [self.column_schema(c, t) for c, t in cols],
        }

    # source block --------------------------------------------------------------------------------------------------

    def _advance(self) -> int:
        self._n += 1
        return self._n

    def source(self, table: TableDef, at: _dt.datetime, snapshot: bool) -> dict[str, Any]:
        n = self._advance()
        ts_ms = int(at.timestamp() * 1000)
        common: dict[str, Any] = {
            "version": "2.7.3.Final", "connector": self.shape.connector, "name": self.shape.topic_prefix,
            "ts_ms": ts_ms, "snapshot": "true" if snapshot else "false",
        }
        schema, table_name = self.schema_name(), self.name(table.name)
        c = self.shape.connector
        if c == "oracle":
            scn = 8_200_000_000 + n * 7
            return {**common, "db": "ORCLPDB1", "sequence": None, "schema": schema, "table": table_name,
                    "txId": f"0a0012{n:010x}", "scn": str(scn), "commit_scn": str(scn + 3),
                    "rs_id": f" 0x0000{n // 4096:02x}.{n:08x}.0010 ", "ssn": n % 3, "redo_thread": 1,
                    "user_name": "HIS"}
        if c == "mysql":
            return {**common, "db": schema, "sequence": None, "table": table_name, "server_id": 223344,
                    "gtid": None, "file": "mysql-bin.000042", "pos": 4 + n * 512, "row": 0, "thread": 7,
                    "query": None}
        if c == "postgresql":
            lsn = 24_000_000 + n * 256
            return {**common, "db": "hisdb", "sequence": f'["{lsn - 256}","{lsn}"]', "schema": schema,
                    "table": table_name, "txId": 700 + n, "lsn": lsn, "xmin": None}
        lsn = f"{0x27:08x}:{n:08x}:0003"
        return {**common, "db": "HISDB", "sequence": None, "schema": schema, "table": table_name,
                "change_lsn": lsn, "commit_lsn": f"{0x27:08x}:{n:08x}:0005", "event_serial_no": 1}

    @staticmethod
    def _source_schema(source: dict[str, Any], connector: str) -> dict[str, Any]:
        fields = []
        for k, v in source.items():
            ftype = "int64" if isinstance(v, int) and not isinstance(v, bool) else "string"
            fields.append({"type": ftype, "optional": k not in ("version", "connector", "name", "ts_ms"), "field": k})
        name = f"io.debezium.connector.{connector}.Source"
        return {"type": "struct", "fields": fields, "optional": False, "name": name, "field": "source"}

    # records -------------------------------------------------------------------------------------------------------

    def key(self, table: TableDef, values: dict[str, Any]) -> bytes:
        payload = {self.name(c): self.encode_value(table.column_type(c), values.get(c)) for c in table.primary_key}
        if not self.shape.schemas:
            return dumps(payload).encode("utf-8")
        schema = {
            "type": "struct", "optional": False, "name": f"{self.topic(table)}.Key",
            "fields": [self.column_schema(c, table.column_type(c)) | {"optional": False} for c in table.primary_key],
        }
        return dumps({"schema": schema, "payload": payload}).encode("utf-8")

    def encode(self, change: RowChange) -> list[tuple[str, bytes | None, bytes | None]]:
        """The Kafka records (topic, key, value) for one change: one record, plus a tombstone after a delete."""
        table = change.table
        topic = self.topic(table)
        state = change.after if change.after is not None else change.before
        assert state is not None
        key = self.key(table, state)
        source = self.source(table, change.at, change.op == "r")
        ts_ms = source["ts_ms"] + 180
        records: list[tuple[str, bytes | None, bytes | None]] = []
        value = self._unwrapped(change, source, ts_ms) if self.shape.unwrap else self._envelope(change, source, ts_ms)
        if value is not None:
            records.append((topic, key, value))
        if change.op == "d" and self.shape.tombstones:
            records.append((topic, key, None))
        return records

    def _envelope(self, change: RowChange, source: dict[str, Any], ts_ms: int) -> bytes:
        table = change.table
        payload = {
            "before": None if change.before is None else self.row(table, change.before),
            "after": None if change.after is None else self.row(table, change.after),
            "source": source, "op": change.op, "ts_ms": ts_ms, "transaction": None,
        }
        if not self.shape.schemas:
            return dumps(payload).encode("utf-8")
        value_name = f"{self.topic(table)}.Value"
        state = change.after if change.after is not None else change.before
        schema = {
            "type": "struct", "optional": False, "name": f"{self.topic(table)}.Envelope", "version": 2,
            "fields": [
                self.row_schema(table, state, value_name) | {"field": "before"},
                self.row_schema(table, state, value_name) | {"field": "after"},
                self._source_schema(source, self.shape.connector),
                {"type": "string", "optional": False, "field": "op"},
                {"type": "int64", "optional": True, "field": "ts_ms"},
                {"type": "struct", "optional": True, "name": "event.block", "version": 1, "field": "transaction",
                 "fields": [{"type": "string", "optional": False, "field": "id"},
                            {"type": "int64", "optional": False, "field": "total_order"},
                            {"type": "int64", "optional": False, "field": "data_collection_order"}]},
            ],
        }
        return dumps({"schema": schema, "payload": payload}).encode("utf-8")

    def _unwrapped(self, change: RowChange, source: dict[str, Any], ts_ms: int) -> bytes | None:
        table = change.table
        if change.op == "d":
            if self.shape.delete_handling == "drop":
                return None
            state = change.before
        else:
            state = change.after
        assert state is not None
        payload = self.row(table, state)
        meta: dict[str, Any] = {}
        if self.shape.unwrap_add_fields:
            meta["__op"] = change.op
            meta["__table"] = source["table"]
            if "schema" in source:
                meta["__schema"] = source["schema"]
            else:
                meta["__db"] = source["db"]
            meta["__source_ts_ms"] = source["ts_ms"]
            for k in ("scn", "commit_scn", "rs_id", "ssn", "file", "pos", "row", "lsn", "change_lsn", "commit_lsn",
                      "event_serial_no"):
                if k in source and source[k] is not None:
                    meta[f"__{k}"] = source[k]
        if self.shape.delete_handling == "rewrite":
            meta["__deleted"] = "true" if change.op == "d" else "false"
        payload.update(meta)
        if not self.shape.schemas:
            return dumps(payload).encode("utf-8")
        schema = self.row_schema(table, state, f"{self.topic(table)}.Value")
        schema["optional"] = False
        for k, v in meta.items():
            ftype = "int64" if isinstance(v, int) and not isinstance(v, bool) else "string"
            schema["fields"].append({"type": ftype, "optional": True, "field": k})
        return dumps({"schema": schema, "payload": payload}).encode("utf-8")
