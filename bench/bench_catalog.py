"""Catalog sync figures: a 13xx catalog file of 1301 西药 size (500,000 rows by default) applied to PostgreSQL the way
the upload scheduler applies a downloaded file (``store.apply_file``, the function the 9102 sync calls) — the zip
read, parsed and encoded for a binary COPY a block of lines at a time by a worker thread (never whole in memory),
the rows written by code in one transaction, a batch at a time — first as a full download onto an empty catalog
(each batch COPYed straight into catalog_items), then as an update replacing every row (each batch COPYed into a
temporary staging table and the rows in force updated in place from it: HOT updates, catalog_items being half
filled); and the file read alone (the same reader, no database), to tell the reading from the database's share.

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


def own_cpu_s() -> float:
    """This process's CPU seconds (user + system, every thread: the reader thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_s(pid: int) -> float:
    """A process's CPU seconds from /proc (user + system); 0 where /proc cannot tell (another machine's server)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(backend: int) -> list[int]:
    """The PostgreSQL server's processes (the postmaster's children: backends, WAL writer, checkpointer …)."""
    try:
        parent = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def apply(engine: Any, layout: CatalogLayout, path: Path, prev: str | None, rows: int) -> dict[str, Any]:
    with engine.begin() as conn:
        backend = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        wal0 = conn.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar_one()
    # the pool hands the same connection (same backend) to the apply below
    pids = server_pids(backend)
    cpu0, backend0, server0 = own_cpu_s(), proc_cpu_s(backend), sum(proc_cpu_s(p) for p in pids)
    started = time.perf_counter()
    with engine.begin() as conn:
        assert int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()) == backend
        applied = store.apply_file(conn, layout, path, file_name=path.name, prev_ver=prev, expected_rows=rows)
    seconds = time.perf_counter() - started
    cpu, backend_cpu = own_cpu_s() - cpu0, proc_cpu_s(backend) - backend0
    server_cpu = sum(proc_cpu_s(p) for p in pids) - server0
    with engine.connect() as conn:
        wal = int(conn.exec_driver_sql(f"SELECT pg_current_wal_lsn() - '{wal0}'::pg_lsn").scalar_one())
    with engine.connect() as conn:
        in_force = conn.execute(select(func.count()).select_from(catalog_items)
                                .where(catalog_items.c.infno == INFNO)).scalar_one()
    assert applied.rows == rows and in_force == rows, (applied, in_force)
    per = 100_000 / rows
    return {"rows": applied.rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
            "peak_rss_mb": peak_rss_mb(), "version": applied.ver,
            # CPU seconds per 100,000 rows — what a busy machine disturbs less than the wall clock
            "cpu_s_per_100k": {"bench": round(cpu * per, 2), "backend": round(backend_cpu * per, 2),
                               "server": round(server_cpu * per, 2)},
            "wal_mb": round(wal / 1e6, 1)}


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
            started, cpu0 = time.perf_counter(), own_cpu_s()
            read = sum(1 for _ in iter_rows(first, layout))
            seconds, cpu = time.perf_counter() - started, own_cpu_s() - cpu0
            phases["file read only"] = {"rows": read, "seconds": round(seconds, 2),
                                        "rows_per_second": round(read / seconds), "peak_rss_mb": peak_rss_mb(),
                                        "cpu_s_per_100k": {"bench": round(cpu * 100_000 / read, 2), "backend": 0.0,
                                                           "server": 0.0}, "wal_mb": 0.0}
            phases["full download"] = apply(engine, layout, first, None, args.rows)
            phases["update of every row"] = apply(engine, layout, second, "20260101000001", args.rows)
        engine.dispose()
        for name, p in phases.items():
            cpu = p.get("cpu_s_per_100k")
        extra = (f"   CPU s/100k rows: bench {cpu['bench']:.2f} backend {cpu['backend']:.2f} server {cpu['server']:.2f}"
                 f"   WAL {p['wal_mb']:.0f} MB" if cpu else "")
        print(f"  {name:<22} {p['rows']:>9} rows {p['seconds']:8.2f} s {p['rows_per_second']:>9} rows/s   "
              f"peak RSS {p['peak_rss_mb']:7.1f} MB{extra}", flush=True)
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
                     "file — the same reader in a worker thread a batch or two ahead, encoding each batch of "
                     "5,000 codes for a binary COPY; in one transaction, the full download COPYs each batch "
                     "straight into catalog_items (whose only index is its primary key), the update COPYs it "
                     "into a temporary staging table and updates the rows in force from it in place (HOT: "
                     "fillfactor 50, no index entry, nothing deleted); the version row and the catalog state "
                     "written; committed (fsync). cpu_s_per_100k: CPU seconds per 100,000 rows of this process "
                     "(reader thread included), of its PostgreSQL backend and of the whole server (backend, WAL "
                     "writer, checkpointer …) from /proc; wal_mb: WAL the phase wrote. RSS is the whole "
                     "process's peak, file generation included",
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
