"""`yibao data reencrypt` re-seals every column the bridge seals — found in the source, not remembered.

The sealed columns are derived from the code: every call of a deployment's ``cipher.seal`` in libs/ and services/ is
found (AST), and the column its value is stored in is read from the call's place (``insert(t).values(col=…)``, a
``{"col": …}`` row of a call naming the table, a chain store's ``dump``); the few places that cannot be read that
way are named in :data:`PLACES`. A new sealing call whose column is not in :data:`yibao.core.reseal.SEALED_COLUMNS`
fails here, as does one the test cannot place. Then, on the real database, every listed column is given a plain
value and a value sealed under the old key, and `yibao data reencrypt` must seal both under the new key — leaving
another deployment's rows alone.
"""

from __future__ import annotations

import ast
import datetime as _dt
import decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, insert, select

from yibao.cli.main import main
from yibao.core import clock
from yibao.core.atrest import DataCipher
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import metadata
from yibao.core.reseal import SEALED_COLUMNS

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]
K1 = "k1:00112233445566778899aabbccddeeff"
K2 = "k2:ffeeddccbbaa99887766554433221100"

#: sealing calls whose column their place does not show: "<path>:<function>" → "table.column"
PLACES = {
    "libs/core/messaging/outbox.py:enqueue_many": "outbox.payload",  # a bound parameter of _INSERT
    "services/upload-scheduler/store.py:_values": "upload_records.payload",  # values["payload"] of a record's row
}
#: a chain store's dump returns the sealed state the chain engine stores
DUMP_COLUMN = "chain_visits.state"


def _is_seal(call: ast.Call, aliases: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "seal":
        owner = func.value
        return (isinstance(owner, ast.Attribute) and owner.attr == "cipher") or (
            isinstance(owner, ast.Name) and owner.id == "cipher")
    return isinstance(func, ast.Name) and func.id in aliases


def _aliases(fn: ast.AST) -> set[str]:
    """Local names bound to ``….cipher.seal`` (``seal = deployment.cipher.seal``, also in a tuple assignment)."""
    found: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (zip(target.elts, node.value.elts) if isinstance(target, ast.Tuple)
                         and isinstance(node.value, ast.Tuple) else [(target, node.value)])
                for name, value in pairs:
                    if (isinstance(name, ast.Name) and isinstance(value, ast.Attribute) and value.attr == "seal"
                            and isinstance(value.value, ast.Attribute) and value.value.attr == "cipher"):
                        found.add(name.id)
    return found


def _table_named(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) and node.id in metadata.tables else None


def _table_of_values(call: ast.Call) -> str | None:
    """The table of ``insert(t).values(…)`` / ``update(t)….values(…)`` / ``t.insert().values(…)``."""
    node: ast.AST = call.func
    while isinstance(node, (ast.Attribute, ast.Call)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in ("insert", "update") and node.args:
                return _table_named(node.args[0])
            node = node.func
        else:
            if node.attr in ("insert", "update") and _table_named(node.value):
                return _table_named(node.value)
            node = node.value
    return None


def _place(call: ast.Call, parents: dict[ast.AST, ast.AST], function: str) -> str | None:
    """"table.column" where the sealed value is stored, when its place in the code shows it."""
    child: ast.AST = call
    node = parents.get(child)
    while isinstance(node, (ast.IfExp, ast.BoolOp)):
        child, node = node, parents.get(node)
    if isinstance(node, ast.keyword) and node.arg:
        owner = parents.get(node)
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Attribute) and owner.func.attr == "values":
            table = _table_of_values(owner)
            return f"{table}.{node.arg}" if table else None
    if isinstance(node, ast.Dict):
        key = node.keys[node.values.index(child)] if child in node.values else None
        owner = parents.get(node)
        if isinstance(key, ast.Constant) and isinstance(owner, ast.Call):
            tables = [t for t in map(_table_named, owner.args) if t]
            if len(tables) == 1:
                return f"{tables[0]}.{key.value}"
    if isinstance(node, ast.Return) and function == "dump":
        return DUMP_COLUMN
    return None


def sealing_calls() -> Iterator[tuple[str, int, str, str | None]]:
    """(path, line, function, "table.column" or None) of every sealing call in libs/ and services/."""
    for top in ("libs", "services"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "libs/core/atrest.py":  # the cipher itself
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
            for fn in ast.walk(tree):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                aliases = _aliases(fn)
                for node in ast.walk(fn):
                    if isinstance(node, ast.Call) and _is_seal(node, aliases):
                        inner = parents.get(node)
                        while inner is not None and not isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            inner = parents.get(inner)
                        if inner is fn:  # counted once, in its innermost function
                            yield rel, node.lineno, fn.name, _place(node, parents, fn.name)


def test_every_column_the_bridge_seals_is_re_sealed_by_the_command() -> None:
    calls = list(sealing_calls())
    assert len(calls) >= 10, "the scan finds the sealing calls (outbox, dead letters, chain states, uploads, …)"
    derived: dict[str, list[str]] = {}
    unplaced = []
    for rel, line, function, place in calls:
        place = place or PLACES.get(f"{rel}:{function}")
        if place is None:
            unplaced.append(f"{rel}:{line} ({function})")
        else:
            derived.setdefault(place, []).append(f"{rel}:{line}")
    assert not unplaced, (f"sealing calls whose column this test cannot tell: {unplaced} — name their column in "
                          "PLACES and list it in yibao.core.reseal.SEALED_COLUMNS")
    listed = {c.name for c in SEALED_COLUMNS}
    missing = {col: where for col, where in derived.items() if col not in listed}
    assert not missing, f"sealed but not re-sealed by `yibao data reencrypt` (yibao.core.reseal): {missing}"
    assert listed == set(derived), f"listed but never sealed: {listed - set(derived)}"
    for col in derived:
        table, column = col.split(".")
        assert column in metadata.tables[table].c, col


# --- on the real database ---------------------------------------------------------------------------------------

def _kind(column: Any) -> type:
    """The column's Python type (a TypeDecorator's: its implementation's)."""
    return getattr(column.type, "impl_instance", column.type).python_type


def _dummy(column: Any) -> Any:
    kind = _kind(column)
    if kind is str:
        return "x"
    if kind is int:
        return 1
    if kind is decimal.Decimal:
        return decimal.Decimal("0")
    if kind is _dt.datetime:
        return clock.now()
    if kind is _dt.date:
        return clock.now().date()
    if kind is bool:
        return False
    raise AssertionError(f"no dummy value for {column}")


def _row(table: Table, value_column: str, scope_column: str | None, scope: str, value: str, n: int) -> dict[str, Any]:
    """A row holding ``value`` in the sealed column: every other required column a dummy (keys made unique)."""
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.name == value_column:
            row[column.name] = value
        elif column.name == scope_column:
            row[column.name] = scope
        elif column.primary_key and column.autoincrement is True or (
                column.primary_key and _kind(column) is int and len(table.primary_key.columns) == 1):
            continue
        elif column.primary_key:
            row[column.name] = f"{n}" if _kind(column) is str else n
        elif not column.nullable and column.server_default is None and column.default is None:
            row[column.name] = _dummy(column)
    return row


@pytest.fixture
def engine(fresh_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    if not fresh_db_url.startswith("postgresql"):
        pytest.skip("needs the stack's PostgreSQL")
    upgrade(fresh_db_url)
    monkeypatch.setenv("DATABASE_URL", fresh_db_url)
    for name in ("YIBAO_TOPIC_PREFIX", "YIBAO_DATA_KEYS", "YIBAO_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    eng = make_engine(fresh_db_url)
    yield eng
    eng.dispose()


def test_reencrypt_seals_every_sealed_column_under_the_new_key_on_the_real_database(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    old, prefix, other = DataCipher.from_secret(K1), "site1.", "site2."
    texts: dict[tuple[str, int], str] = {}
    with engine.begin() as conn:
        for sealed in SEALED_COLUMNS:
            for n, (scope, stored_as) in enumerate([(prefix, "plain"), (prefix, "old key"), (other, "plain")]):
                text = f'{{"psn_name": "张三", "column": "{sealed.name}", "n": {n}}}'
                value = old.seal(text) if stored_as == "old key" else text
                conn.execute(insert(sealed.table).values(
                    _row(sealed.table, sealed.column, sealed.scope, f"{scope}svc", value, n)))
                texts[(sealed.name, n)] = text

    monkeypatch.setenv("YIBAO_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("YIBAO_DATA_KEYS", f"{K2},{K1}")
    assert main(["data", "reencrypt"]) == 0
    out = capsys.readouterr().out
    new = DataCipher.from_secret(f"{K2},{K1}")
    with engine.connect() as conn:
        for sealed in SEALED_COLUMNS:
            assert f"{sealed.name}: re-sealed 2," in out, out
            col, scope = sealed.table.c[sealed.column], sealed.table.c[sealed.scope] if sealed.scope else None
            rows = conn.execute(select(col, scope)).all() if scope is not None else conn.execute(select(col)).all()
            mine = [r[0] for r in rows if scope is None or r[1].startswith(prefix)]
            assert len(mine) == 2 and all(v.startswith("yb1.k2.") for v in mine), (sealed.name, mine)
            assert sorted(new.open(v) for v in mine) == sorted(texts[(sealed.name, n)] for n in (0, 1))
            theirs = [r[0] for r in rows if scope is not None and r[1].startswith(other)]
            assert theirs == [texts[(sealed.name, 2)]], f"{sealed.name}: another deployment's row is left alone"
