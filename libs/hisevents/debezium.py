"""Decode one Kafka record of a Debezium CDC topic into a :class:`ChangeEvent`, a :class:`Skip`, or a DecodeError.

Accepted, as HIS databases really emit them (facts from the Debezium reference documentation: connector
"change event" sections and the "New Record State Extraction" SMT page):

* the full envelope ``{before, after, source, op, ts_ms, transaction}`` and the flat row produced by
  ``io.debezium.transforms.ExtractNewRecordState`` (with ``add.fields`` metadata such as ``__op``, ``__table``,
  ``__db``, ``__schema``, ``__source_ts_ms``, ``__lsn``, ``__scn``; ``delete.handling.mode=rewrite`` adds
  ``__deleted: "true"``; ``drop`` leaves only tombstones);
* either of them with or without the JsonConverter ``{"schema": …, "payload": …}`` wrapper
  (``schemas.enable`` true/false);
* op ``c``/``u``/``d``/``r`` (``r`` is a snapshot read, a create for us); tombstones (value null), truncate
  ``t``, logical-decoding messages ``m``, heartbeats, schema-change and transaction-metadata records are skipped
  with a reason;
* values typed by the schema when there is one (decimals, temporal types — see :mod:`.connect_types`); without
  a schema values stay as JSON gave them (numbers as Decimal/int — ``parse_float=Decimal``, so no float ever
  exists) and the mapping file's field types finish the job.

Column and table names keep their case (Oracle sends them upper case); :class:`Row` looks columns up
case-insensitively.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from yibao.core.errors import DecodeError
from yibao.hisevents import connect_types as ct

__all__ = ["Row", "ChangeEvent", "Skip", "decode", "POSITION_FIELDS", "parse_json"]

Op = Literal["c", "u", "d", "r"]

#: source-block fields that locate a change in the database's log, per connector:
#: Oracle scn/commit_scn/rs_id/ssn/lcr_position (XStream); MySQL file/pos/row/gtid; PostgreSQL lsn;
#: SQL Server change_lsn/commit_lsn/event_serial_no.
POSITION_FIELDS: tuple[str, ...] = (
    "scn", "commit_scn", "rs_id", "ssn", "lcr_position",
    "file", "pos", "row", "gtid",
    "lsn",
    "change_lsn", "commit_lsn", "event_serial_no",
)

_SKIP_OPS = {"t": "truncate", "m": "logical decoding message"}
_HEARTBEAT_SCHEMA = "io.debezium.connector.common.Heartbeat"
_UNWRAP_PREFIX = "__"


class Row(Mapping[str, Any]):
    """A row's columns, looked up case-insensitively (``row["reg_id"]`` finds ``REG_ID``), original names kept."""

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._items: dict[str, tuple[str, Any]] = {}
        for name, value in (values or {}).items():
            self._items[name.casefold()] = (name, value)

    def __getitem__(self, name: str) -> Any:
        return self._items[name.casefold()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._items

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:  # column names only: values may be personal
        return f"Row(columns={list(self)!r})"

    def original_name(self, name: str) -> str | None:
        item = self._items.get(name.casefold())
        return item[0] if item else None


@dataclass(frozen=True)
class ChangeEvent:
    """One row change, decoded. ``before``/``after`` follow Debezium: inserts have no before, deletes no after;
    an unwrapped update has no before (the SMT drops it). ``op`` is None when an unwrapped record carries no
    ``__op`` (then inserts and updates cannot be told apart)."""

    topic: str
    partition: int
    offset: int
    schema: str | None
    table_name: str
    op: Op | None
    before: Row | None
    after: Row | None
    key: Row | None = None
    connector: str | None = None
    position: dict[str, str] = field(default_factory=dict)
    source_ts_ms: int | None = None
    ts_ms: int | None = None
    snapshot: bool = False
    unwrapped: bool = False
    has_schema: bool = False

    @property
    def table(self) -> str:
        """``SCHEMA.TABLE`` when the schema (or MySQL database) is known, else the bare table name."""
        return f"{self.schema}.{self.table_name}" if self.schema else self.table_name

    @property
    def row(self) -> Row:
        """The row state that describes the change: after, or before for a delete."""
        row = self.after if self.after is not None else self.before
        return row if row is not None else Row()

    def __repr__(self) -> str:
        return (
            f"ChangeEvent(table={self.table!r}, op={self.op!r}, topic={self.topic!r}, "
            f"partition={self.partition}, offset={self.offset}, position={self.position!r})"
        )


@dataclass(frozen=True)
class Skip:
    """A record that is readable but carries no row change (tombstone, truncate, heartbeat …)."""

    kind: str
    reason: str


# ---------------------------------------------------------------------------------------------------------------


def parse_json(data: bytes | str, what: str) -> Any:
    """JSON with ``parse_float=Decimal``. DecodeError names what was being read and where it broke."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{what} is not UTF-8 (byte {exc.start})") from None
    else:
        text = data
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise DecodeError(f"{what} is nested too deeply") from None


def _split_wrapper(obj: Any) -> tuple[dict[str, Any] | None, Any, bool]:
    """(schema, payload, wrapped). JsonConverter with schemas.enable=true wraps every value as {schema, payload}."""
    if isinstance(obj, dict) and "payload" in obj and set(obj) <= {"schema", "payload"}:
        schema = obj.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise DecodeError("the 'schema' of a schema/payload wrapper must be an object")
        return schema, obj["payload"], True
    return None, obj, False


def _struct_fields(schema: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not schema:
        return {}
    fields = schema.get("fields")
    if not isinstance(fields, list):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for f in fields:
        if isinstance(f, dict) and isinstance(f.get("field"), str):
            out[f["field"]] = f
    return out


def _typed_value(value: Any, fschema: Mapping[str, Any] | None, where: str) -> Any:
    """Apply a column's Connect schema (semantic type) to its JSON value."""
    if value is None:
        return None
    name = fschema.get("name") if fschema else None
    try:
        if name == ct.CONNECT_DECIMAL:
            if isinstance(value, str):
                # Under a Decimal schema a string is always base64 (JsonConverter decimal.format=BASE64, the
                # default): "9999" is the bytes f7 df 7d, i.e. -5326.11 at scale 2, never the number 9999.
                params = fschema.get("parameters") or {}  # type: ignore[union-attr]
                if "scale" not in params:
                    raise ct.ConversionError("Decimal schema without parameters.scale")
                return ct.decimal_from_base64(value, int(params["scale"]))
            return ct.plain_decimal(value)  # JsonConverter decimal.format=NUMERIC: a JSON number
        if name == ct.VARIABLE_SCALE_DECIMAL:
            return ct.decimal_from_variable_scale(value)
        if name in ct.SEMANTIC_TEMPORAL:
            kind, unit = ct.SEMANTIC_TEMPORAL[name]
            if kind == "datetime":
                return ct.wall_time_from_epoch(value, unit)
            if kind == "date":
                return ct.date_from_epoch_days(value)
            if kind == "zoned":
                return ct.zoned_to_shanghai(value)
            return ct.time_from_epoch(value, unit)
        if fschema is None and isinstance(value, dict) and set(value) == {"scale", "value"}:
            # schemaless VariableScaleDecimal (Oracle NUMBER without precision): unmistakable shape
            return ct.decimal_from_variable_scale(value)
    except (ct.ConversionError, ValueError, TypeError) as exc:
        raise DecodeError(f"{where}: {name or 'value'}: {exc}") from None
    return value


def _decode_row(values: Any, schema: Mapping[str, Any] | None, where: str, *, skip_meta: bool = False) -> Row:
    if not isinstance(values, dict):
        raise DecodeError(f"{where}: row state must be a JSON object")
    fields = _struct_fields(schema)
    out: dict[str, Any] = {}
    for col, value in values.items():
        if skip_meta and col.startswith(_UNWRAP_PREFIX):
            continue
        out[col] = _typed_value(value, fields.get(col), f"{where} column {col}")
    return Row(out)


def _table_from_topic(topic: str) -> tuple[str | None, str]:
    """Debezium topic names: ``<prefix>.<schema>.<table>`` (Oracle, PostgreSQL, SQL Server; newer SQL Server
    puts the database first) or ``<prefix>.<database>.<table>`` (MySQL). The last two parts name the table."""
    parts = topic.split(".")
    if len(parts) >= 3:
        return parts[-2], parts[-1]
    if len(parts) == 2:
        return None, parts[-1]
    return None, topic


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _position(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    pos: dict[str, str] = {}
    for name in POSITION_FIELDS:
        v = values.get(prefix + name)
        if v is None or v == "":
            continue
        pos[name] = format(v, "f") if isinstance(v, Decimal) else str(v)
    return pos


def _decode_key(key: bytes | None, where: str) -> Row | None:
    if key is None or len(key) == 0:
        return None
    obj = parse_json(key, "key")
    schema, payload, _ = _split_wrapper(obj)
    if payload is None:
        return None
    if isinstance(payload, dict):
        return _decode_row(payload, schema, f"{where} key")
    return Row({"key": payload})


def _classify_skip(topic: str, schema: Mapping[str, Any] | None, payload: dict[str, Any]) -> Skip | None:
    if topic.startswith("__debezium-heartbeat") or (schema or {}).get("name") == _HEARTBEAT_SCHEMA:
        return Skip("heartbeat", "heartbeat record")
    if set(payload) == {"ts_ms"}:
        return Skip("heartbeat", "heartbeat record (only ts_ms)")
    if "ddl" in payload or "tableChanges" in payload:
        return Skip("schema_change", "schema change record")
    if payload.get("status") in ("BEGIN", "END") and "id" in payload and "op" not in payload:
        return Skip("transaction", f"transaction metadata ({payload['status']})")
    return None


def decode(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> ChangeEvent | Skip:
    """Decode one CDC record. Returns a ChangeEvent or a Skip; raises DecodeError naming what is wrong."""
    if value is None or len(value) == 0:
        return Skip("tombstone", "tombstone (null value): compaction marker after a delete")
    where = f"{topic}[{partition}]@{offset}"
    obj = parse_json(value, "value")
    schema, payload, wrapped = _split_wrapper(obj)
    if payload is None:
        return Skip("tombstone", "tombstone (null payload)")
    if not isinstance(payload, dict):
        raise DecodeError(f"value payload is not a JSON object but {type(payload).__name__}")
    skip = _classify_skip(topic, schema, payload)
    if skip is not None:
        return skip
    key_row = _decode_key(key, where)
    if "op" in payload and isinstance(payload.get("source"), dict):
        return _decode_envelope(topic, partition, offset, schema, payload, key_row, wrapped)
    return _decode_unwrapped(topic, partition, offset, schema, payload, key_row, wrapped)


def _decode_envelope(
    topic: str, partition: int, offset: int, schema: Mapping[str, Any] | None, payload: dict[str, Any],
    key: Row | None, wrapped: bool,
) -> ChangeEvent | Skip:
    op = payload.get("op")
    if op in _SKIP_OPS:
        return Skip(_SKIP_OPS[op].replace(" ", "_"), f"{_SKIP_OPS[op]} (op {op})")
    if op not in ("c", "u", "d", "r"):
        raise DecodeError(f"envelope op must be one of c, u, d, r, t, m, got {str(op)[:8]!r}")
    source: dict[str, Any] = payload["source"]
    connector = source.get("connector") if isinstance(source.get("connector"), str) else None
    table_name = source.get("table")
    db_schema = source.get("schema")
    if connector == "mysql" or (db_schema is None and connector not in ("oracle", "postgresql", "sqlserver")):
        db_schema = db_schema or source.get("db")
    if not isinstance(table_name, str) or not table_name:
        db_schema, table_name = _table_from_topic(topic)
    fields = _struct_fields(schema)
    where = f"{db_schema + '.' if db_schema else ''}{table_name}"
    before_raw, after_raw = payload.get("before"), payload.get("after")
    before = None if before_raw is None else _decode_row(before_raw, fields.get("before"), f"{where} before")
    after = None if after_raw is None else _decode_row(after_raw, fields.get("after"), f"{where} after")
    if op in ("c", "r", "u") and after is None:
        raise DecodeError(f"{where}: op {op} without an 'after' row state")
    if op == "d" and before is None:
        raise DecodeError(
            f"{where}: op d without a 'before' row state (is supplemental logging / replica identity on?)"
        )
    return ChangeEvent(
        topic=topic, partition=partition, offset=offset,
        schema=db_schema if isinstance(db_schema, str) and db_schema else None,
        table_name=table_name, op=op, before=before, after=after, key=key,
        connector=connector, position=_position(source),
        source_ts_ms=_as_int(source.get("ts_ms")), ts_ms=_as_int(payload.get("ts_ms")),
        snapshot=op == "r",
        unwrapped=False, has_schema=wrapped and schema is not None,
    )


def _decode_unwrapped(
    topic: str, partition: int, offset: int, schema: Mapping[str, Any] | None, payload: dict[str, Any],
    key: Row | None, wrapped: bool,
) -> ChangeEvent | Skip:
    meta = {k: v for k, v in payload.items() if k.startswith(_UNWRAP_PREFIX)}
    op = meta.get("__op")
    if op in _SKIP_OPS:
        return Skip(_SKIP_OPS[op].replace(" ", "_"), f"{_SKIP_OPS[op]} (op {op})")
    if op is not None and op not in ("c", "u", "d", "r"):
        raise DecodeError(f"unwrapped record __op must be one of c, u, d, r, got {str(op)[:8]!r}")
    deleted = str(meta.get("__deleted", "false")).lower() == "true"
    if deleted:
        op = "d"
    table_name = meta.get("__table")
    db_schema = (meta.get("__schema") or meta.get("__db")) if table_name else None
    if not isinstance(table_name, str) or not table_name:
        db_schema, table_name = _table_from_topic(topic)
    where = f"{db_schema + '.' if db_schema else ''}{table_name}"
    row = _decode_row(payload, schema, where, skip_meta=True)
    if not len(row):
        raise DecodeError(f"{where}: unwrapped record has no columns")
    before, after = (row, None) if op == "d" else (None, row)
    source_ts = _as_int(meta.get("__source_ts_ms"))
    return ChangeEvent(
        topic=topic, partition=partition, offset=offset,
        schema=db_schema if isinstance(db_schema, str) and db_schema else None,
        table_name=table_name, op=op, before=before, after=after, key=key,
        connector=meta.get("__connector") if isinstance(meta.get("__connector"), str) else None,
        position=_position(meta, _UNWRAP_PREFIX),
        source_ts_ms=source_ts, ts_ms=_as_int(meta.get("__ts_ms")),
        snapshot=op == "r", unwrapped=True, has_schema=wrapped and schema is not None,
    )
