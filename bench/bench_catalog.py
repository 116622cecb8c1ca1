"""Catalog sync figures: a 13xx catalog file of 1301 西药 size (500,000 rows by default) applied to PostgreSQL the way
the upload scheduler applies a downloaded file (``store.apply_file``, the function the 9102 sync calls) — the zip
read a block of lines at a time by a worker thread (never whole in memory), the rows written by code in one
transaction, a batch at a time: the rows in force of the batch's codes deleted, the batch COPYed into catalog_items
— first as a full download onto an empty catalog, then as an update replacing every row; and the file read alone
(the same reader, no database), to tell the reading from the database's share.

Run with the project's interpreter::

    .venv/bin/python bench/bench_catalog.py [--rows N] [--database-url URL] [--out PATH]

Without ``--database-url`` (or ``DATABASE_URL``) a private PostgreSQL cluster is started, durable as production
runs it (fsync on), and stopped afterwards. Prints a table and writes JSON (default bench/results/catalog.json):
rows per second and the process's peak RSS after each phase (issue 15's target: ≥ 50,000 rows/s, < 300 MB).
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import catalog_items
from yibao.upload_scheduler.catalog import store
from yibao.upload_scheduler.catalog.files import iter_rows
from yibao.upload_scheduler.catalog.layouts import CatalogLayout, load_layouts

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "catalog.json"
INFNO = "1301"


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def write_file(path: Path, layout: CatalogLayout, rows: int, version: str) -> int:
    """A zip of one TXT file of ``rows`` rows in the layout's columns (tab-separated, ``null`` for empty cells,
    filler text about as long as a real 1301 row), written as a stream; returns the uncompressed size."""
    assert layout.columns is not None and isinstance(layout.key, int) and layout.ver is not None
    size = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open(f"{INFNO}_{version}.txt", "w") as out:
        for i in range(rows):
            cells = [f"列{c}值{i % 997}" if c % 3 else "null" for c in range(layout.columns)]
            cells[layout.key] = f"XA{i:018d}"
            cells[1] = f"阿莫西林胶囊{i % 5000}"
            if layout.vali_flag is not None:
                cells[layout.vali_flag] = "1"
            if layout.rid is not None:
                cells[layout.rid] = f"R{version}{i:09d}"
            cells[layout.ver] = version
            line = ("\t".join(cells) + "\n").encode("utf-8")
            size += len(line)
            out.write(line)
    return size


def apply(engine: Any, layout: CatalogLayout, path: Path, prev: str | None, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    with engine.begin() as conn:
        applied = store.apply_file(conn, layout, path, file_name=path.name, prev_ver=prev, expected_rows=rows)
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        in_force = conn.execute(select(func.count()).select_from(catalog_items)
                                .where(catalog_items.c.infno == INFNO)).scalar_one()
    assert applied.rows == rows and in_force == rows, (applied, in_force)
    return {"rows": applied.rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
            "peak_rss_mb": peak_rss_mb(), "version": applied.ver}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    layout = load_layouts()[INFNO]
    server = None
    url = args.database_url
    if not url:
        from yibao.stack.postgres import PostgresServer

        server = PostgresServer(durable=True).start()
        url = server.url
    try:
        upgrade(url)
        engine = make_engine(url)
        with tempfile.TemporaryDirectory(prefix="yibao-bench-catalog-") as tmp:
            first, second = Path(tmp) / f"{INFNO}_full.zip", Path(tmp) / f"{INFNO}_update.zip"
            t0 = time.perf_counter()
            size = write_file(first, layout, args.rows, "20260101000001")
            write_file(second, layout, args.rows, "20260201000001")
            print(f"  files: {args.rows} rows each, {size / 1e6:.0f} MB of text, "
                  f"{first.stat().st_size / 1e6:.0f} MB zipped, written in {time.perf_counter() - t0:.1f}s; "
                  f"peak RSS {peak_rss_mb()} MB", flush=True)
            phases = {}
            started = time.perf_counter()
            read = sum(1 for _ in iter_rows(first, layout))
            seconds = time.perf_counter() - started
            phases["file read only"] = {"rows": read, "seconds": round(seconds, 2),
                                        "rows_per_second": round(read / seconds), "peak_rss_mb": peak_rss_mb()}
            phases["full download"] = apply(engine, layout, first, None, args.rows)
            phases["update of every row"] = apply(engine, layout, second, "20260101000001", args.rows)
        engine.dispose()
        for name, p in phases.items():
            print(f"  {name:<22} {p['rows']:>9} rows {p['seconds']:8.2f} s {p['rows_per_second']:>9} rows/s   "
                  f"peak RSS {p['peak_rss_mb']:7.1f} MB", flush=True)
        result = {
            "benchmark": "catalog", "generated_at": clock.now().isoformat(), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "database": "postgresql (private cluster, fsync on)" if server else "DATABASE_URL",
            "infno": INFNO, "columns": layout.columns, "text_mb": round(size / 1e6, 1),
            "bytes_per_row": round(size / args.rows), "phases": phases,
            "peak_rss_mb": peak_rss_mb(),
            "target": {"rows_per_second": 50_000, "peak_rss_mb": 300},
            "notes": "file read only: the zip read, decoded and split into rows (code, version, flag, record id "
                     "checked), no database. The other phases: store.apply_file as the scheduler applies a 9102 "
                     "file — the same reader in a worker thread a batch or two ahead, and in one transaction, per "
                     "batch of 5,000 codes, the rows in force of those codes deleted (one primary-key probe a "
                     "code) and the batch COPYed into catalog_items (whose only index is its primary key); the "
                     "version row and the catalog state "
                     "written; committed (fsync). RSS is the whole process's peak, file generation included",
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"written {args.out}")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
