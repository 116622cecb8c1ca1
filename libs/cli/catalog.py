"""``yibao catalog --stats`` / ``--markdown``: the national transactions, which have a field list, which a service
calls — by family (the spec's categories).

"Called by a service" is read from the services' code, never declared by hand: each service package's modules
are parsed (not imported: libs never import services) and a transaction counts as called where its number is

* a positional argument of a call (``Call("2206", …)``, ``Lookup("5204", …)``, ``client.call("3201", …)``),
* the value of a keyword or a name ending in ``infno`` (``infno="2205"``, ``refund_infno = "2208" if … else
  "2305"``: both branches), and every choice of a setting so named (``transfer_infno: Literal["2501", "2501A"]``:
  the province picks one, the service sends either), or
* implied by a client method the service calls: ``upload`` (9101), ``download`` (9102), ``reverse`` (2601),
* an element of a tuple, list, set or dict assigned to a name ending in ``infnos`` or named ``SERVED`` (the queries
  the counter forwards to the platform as its askers name them), also where the service imports such a name from a
  shared module (``from yibao.hisevents.models import FILING_INFNOS``: the 备案 numbers and their revocations), or
* named in a service's data files (YAML next to its code: the upload scheduler's lanes say which transaction
  carries each kind of record, ``infno: "4101"`` / ``change_infno: "3402"``; its catalogs file keys each catalog
  it syncs by number, ``"1301": {mode: file …}``), for a service whose calls are data.

Two more follow from the catalog and the client, not from a literal: a service that calls any transaction also
signs in and out (9001/9002, the client does it before its first call), and one that calls a transaction whose
lost answer is resolved by 冲正 (``resolution`` reverse / query_then_reverse) also sends 2601 through the chain
engine. Docstrings and comments never count: they are not call arguments. Transactions the platform sends to the
institution (direction ``in``: 6201/6202, 7102/7103) are never "called": mobile pay 2.0 reuses some of those
numbers for its own, different messages. They are *received* by the service whose code lists them in a
module-level ``RECEIVED_INFNOS`` (the upload scheduler's inbound endpoint: 7102/7103); the table says so.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from yibao.envelope.catalog import Catalog

__all__ = ["add_arguments", "run", "SERVICE_PACKAGES", "called_by_services", "received_by_services", "scan_source",
           "scan_data", "scan_received", "CatalogStats", "stats", "markdown_table"]

#: the services (their packages) whose code is read; a service absent from an installation is skipped
SERVICE_PACKAGES: dict[str, str] = {
    "registration": "yibao.registration",
    "settlement": "yibao.settlement",
    "reconciliation": "yibao.reconciliation",
    "upload-scheduler": "yibao.upload_scheduler",
    "workinjury-sync": "yibao.workinjury_sync",
    "mobilepay": "yibao.mobilepay",
    "ingest": "yibao.ingest",
    "his-writer": "yibao.his_writer",
    "counter": "yibao.counter",
}
_CLIENT_METHODS = {"upload": "9101", "download": "9102", "reverse": "2601"}
SIGN_IN, SIGN_OUT, REVERSAL = "9001", "9002", "2601"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--stats", action="store_true", help="counts by family (the default)")
    how.add_argument("--markdown", action="store_true", help="every transaction as a Markdown table (the README's)")
    parser.add_argument("--province", default=None, help="the catalog of this province (default: national)")


def run(args: argparse.Namespace) -> int:
    catalog = Catalog.load(args.province)
    called = called_by_services(catalog)
    if args.markdown:
        print(markdown_table(catalog, called, received_by_services(catalog)))
        return 0
    print(stats(catalog, called).text())
    return 0


# ---------------------------------------------------------------------------------------------------- the scan

def scan_source(source: str, infnos: Iterable[str]) -> set[str]:
    """The transactions one module's code sends (see the module docstring for what counts)."""
    known = set(infnos)
    found: set[str] = set()

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            for arg in node.args:
                found.update(v for v in _constants(arg) if v in known)
            for kw in node.keywords:
                if kw.arg and kw.arg.endswith("infno"):
                    found.update(v for v in _constants(kw.value) if v in known)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if method in _CLIENT_METHODS and isinstance(node.func, ast.Attribute) \
                    and _looks_like_client(node.func.value):
                found.add(_CLIENT_METHODS[method])
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id.endswith("infno") for t in targets):
                found.update(v for v in _constants(node.value) if v in known)
                if isinstance(node, ast.AnnAssign):
                    found.update(v for v in _literal_choices(node.annotation) if v in known)
            elif any(isinstance(t, ast.Name) and _lists_infnos(t.id) for t in targets):
                found.update(v for v in _constants(node.value, listed=True) if v in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if _lists_infnos(alias.name):
                    found.update(v for v in _imported_list(node.module, alias.name) if v in known)
    return found


def _constants(node: ast.AST | None, listed: bool = False) -> Iterable[str]:
    """The string constants an expression may evaluate to; with ``listed``, also the elements of a collection."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _constants(node.body)
        yield from _constants(node.orelse)
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and listed:
        for element in node.elts:
            yield from _constants(element, listed)
    elif isinstance(node, ast.Dict) and listed:
        for element in (*node.keys, *node.values):
            yield from _constants(element, listed)


def scan_received(source: str, infnos: Iterable[str]) -> set[str]:
    """The transactions a module says it receives from the platform: its module-level ``RECEIVED_INFNOS``."""
    known = set(infnos)
    found: set[str] = set()
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == "RECEIVED_INFNOS":
            found.update(v for v in _constants(node.value, listed=True) if v in known)
    return found


def _literal_choices(annotation: ast.AST) -> Iterable[str]:
    """``Literal["2501", "2501A"]`` (also inside ``Optional``/``|``) → its string choices."""
    for node in ast.walk(annotation):
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", getattr(node.value, "attr", "")) == "Literal":
            yield from _constants(node.slice, listed=True)


def _lists_infnos(name: str) -> bool:
    return name.lower().endswith("infnos") or name == "SERVED"


def _imported_list(module: str, name: str) -> set[str]:
    """The elements of ``name``'s assignment at the top of a shared module (read, not imported); none if absent."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return set()
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return set()
    values: set[str] = set()
    for node in ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets) \
                or isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            values.update(_constants(node.value, listed=True))
    return values


_DATA_INFNO = re.compile(r"""\b(?:change_)?infno:\s*["']?([0-9]{4}[A-Z]?)["']?"""
                         r"""|^\s*["']?([0-9]{4}[A-Z]?)["']?\s*:\s*\{""", re.MULTILINE)


def scan_data(text: str, infnos: Iterable[str]) -> set[str]:
    """The transactions a service's data file names as carrying its records (``infno:`` / ``change_infno:``)."""
    known = set(infnos)
    return {v for m in _DATA_INFNO.finditer(text) for v in m.groups() if v in known}


def _looks_like_client(node: ast.AST) -> bool:
    """``client.upload`` / ``self.client.reverse`` / ``deps.client.download``: a receiver named *client*."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return "client" in name.lower()


def _package_files(package: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    files: list[Path] = []
    for location in spec.submodule_search_locations:
        files += sorted(p for p in Path(location).rglob("*") if p.suffix in (".py", ".yaml", ".yml")
                        and "__pycache__" not in p.parts)
    return files


def called_by_services(catalog: Catalog, packages: Mapping[str, str] = SERVICE_PACKAGES) -> dict[str, set[str]]:
    """infno → the services whose code sends it (scan, then the sign-in and 冲正 rules above)."""
    called: dict[str, set[str]] = defaultdict(set)
    outbound = [t.infno for t in catalog if t.direction == "out"]
    for service, package in packages.items():
        sent: set[str] = set()
        for path in _package_files(package):
            if path.suffix == ".py":
                sent |= scan_source(path.read_text(encoding="utf-8"), outbound)
            else:
                sent |= scan_data(path.read_text(encoding="utf-8"), outbound)
        if not sent:
            continue
        sent |= {SIGN_IN, SIGN_OUT}
        if any(catalog.transaction(i).resolution in ("reverse", "query_then_reverse") for i in sent):
            sent.add(REVERSAL)
        for infno in sent:
            called[infno].add(service)
    return dict(called)


def received_by_services(catalog: Catalog, packages: Mapping[str, str] = SERVICE_PACKAGES) -> dict[str, set[str]]:
    """infno (direction ``in``) → the services that receive it from the platform."""
    received: dict[str, set[str]] = defaultdict(set)
    inbound = [t.infno for t in catalog if t.direction == "in"]
    for service, package in packages.items():
        for path in _package_files(package):
            if path.suffix == ".py":
                for infno in scan_received(path.read_text(encoding="utf-8"), inbound):
                    received[infno].add(service)
    return dict(received)


# ---------------------------------------------------------------------------------------------------- the views

@dataclass(frozen=True)
class FamilyRow:
    family: str
    total: int
    with_fields: int
    called: int


@dataclass(frozen=True)
class CatalogStats:
    rows: tuple[FamilyRow, ...]
    province: str | None

    @property
    def total(self) -> FamilyRow:
        return FamilyRow("all", sum(r.total for r in self.rows), sum(r.with_fields for r in self.rows),
                         sum(r.called for r in self.rows))

    def text(self) -> str:
        width = max(len(r.family) for r in (*self.rows, self.total))
        where = f"the {self.province} catalog" if self.province else "the national catalog"
        lines = [f"{where}: transactions, with a field list, called by a service",
                 f"{'family':<{width}}  {'in catalog':>10}  {'field list':>10}  {'called':>6}"]
        for r in (*self.rows, self.total):
            lines.append(f"{r.family:<{width}}  {r.total:>10}  {r.with_fields:>10}  {r.called:>6}")
        return "\n".join(lines)


def stats(catalog: Catalog, called: Mapping[str, set[str]]) -> CatalogStats:
    families: dict[str, list[str]] = defaultdict(list)
    for t in catalog:
        families[t.category].append(t.infno)
    rows = tuple(
        FamilyRow(family, len(infnos), sum(catalog.has_schema(i) for i in infnos), sum(i in called for i in infnos))
        for family, infnos in families.items()
    )
    return CatalogStats(rows, catalog.province)


def markdown_table(catalog: Catalog, called: Mapping[str, set[str]],
                   received: Mapping[str, set[str]] | None = None) -> str:
    s = stats(catalog, called).total
    received = received or {}
    taken = sum(1 for t in catalog if t.infno in received)
    lines = [f"{s.total} national transactions; {s.with_fields} with a field list in the catalog, {s.called} "
             f"called by a service" + (f", {taken} sent by the platform and received by one" if taken else "") + ".",
             "", "| infno | name | family | field list | called by |", "|---|---|---|---|---|"]
    for t in catalog:
        services = ", ".join(sorted(called.get(t.infno, ()))) or ", ".join(
            f"{name} (receives)" for name in sorted(received.get(t.infno, ()))) or "—"
        lines.append(f"| {t.infno} | {t.name} | {t.category} | {'yes' if t.has_schema else '—'} | {services} |")
    return "\n".join(lines)
