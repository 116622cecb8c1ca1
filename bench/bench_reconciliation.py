"""Reconciliation of a very large day on the real path: 1,000,000 ledger entries in PostgreSQL, 3201, the 3202
detail file up by 9101, the result file down by 9102 (real HTTP to the platform simulator through
yibao.envelope's NationalClient), classification with the hospital's side attached, the differences stored.

Set-up (measured, recorded, never counted as the run):

* the stack: ``yibao.stack.start_stack(prefer="real", durable_database=True)`` — PostgreSQL as production runs it
  (fsync and synchronous_commit on), migrated; the broker it starts is not used by this benchmark;
* the hospital ledger: ``--entries`` rows written into ``recon_ledger`` with COPY (settlements, and ~1 % of them
  cancelled the same day: a refd_setl_flag 1 entry each), then VACUUM ANALYZE (what autovacuum does to a table
  filled over a day);
* the platform's side of the same day loaded into the simulator (a separate process, ``yibao sim``) through its
  admin bulk load (``POST /admin/settlements/bulk``), with ~``--differences`` of the entries planted as
  differences: HIS-only (the platform lacks the entry), amount mismatch (the platform booked 1.00 more),
  status mismatch (the platform cancelled a settlement HIS never heard cancelled) and platform-only entries.

The run (timed), in a fresh child process so that its peak memory is the run's: a ``Reconciler`` with a real
``NationalClient``, as the worker builds them, doing what ``Reconciler._execute`` does up to the stored
differences — submit the run; the statement keys (ledger keys, 清算经办机构 hints); 3201 for every key with
the ledger's totals summed by PostgreSQL; then for each imbalanced clr_type × setl_optins ``Reconciler._detail``
(the detail file streamed from PostgreSQL by a server-side cursor into the zip, 9101, 3202, 9102, the result
file read) and ``classify`` with the run's own ledger lookup; then ``save_differences``. Not included: planning
and applying repairs (one 5203 per difference), the 3201 re-check and the reports.

What is the platform's and not ours: the simulator measures the wall time of its own transaction handling per
infno (``/admin/counters`` ``handler_seconds``: summing 3201 over its ledger, storing the upload, comparing
1,000,000 rows and writing the result file for 3202, looking the file up for 9102). That time is subtracted
from the phase it falls in; everything else of a round trip (building and signing the envelope, the multipart
upload, the transfer of the files, reading the answer) stays ours. Every phase reports wall seconds, the
platform's seconds inside it and ours, and what its per-item figure divides by.

Peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the child process — the interpreter, the
libraries (SQLAlchemy, psycopg, httpx, pydantic, the transaction catalog), the run's buffers (the detail zip,
the downloaded result zip, the differences) and its threads; not the database server, not the simulator. The
child is started before the set-up and waits for it (on Linux ru_maxrss carries over fork and exec: started
later it would inherit this process's peak); ``vm_hwm_mb`` (VmHWM of /proc/self/status) says the same.

    .venv/bin/python bench/bench_reconciliation.py [--entries 1000000] [--differences 0.03] [--profile FILE]
                                                   [--output FILE]

Writes bench/results/reconciliation.json (``entries``, ``total_seconds`` = ours, ``peak_rss_mb``, ``method`` at
the top level for bench/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

RESULTS = Path(__file__).resolve().parent / "results" / "reconciliation.json"
DAY = dt.date(2026, 11, 20)
ADMDVS = "440100"
FIXMEDINS = "H44010600001"
METHOD = ("PostgreSQL (fsync on) streamed, 3201, 9101/9102 to the simulator, 3202 diff, classification, "
          "differences stored; platform time excluded")
#: 清算经办机构 of the generated day: mostly local, some from elsewhere in the province and out of it
OPTINS = ("440100", "440300", "110000")


# --- the generated day ----------------------------------------------------------------------------------------

class Entry(NamedTuple):
    i: int
    setl_id: str
    mdtrt_id: str
    psn_no: str
    msgid: str
    setl_time: str
    insutype: str
    clr_type: str
    setl_optins: str
    refd_setl_flag: str
    orig_setl_id: str | None
    medfee: int  # fen
    fund: int
    acct: int
    cash: int
    channel: str


def _setl_id(i: int) -> str:
    return f"{ADMDVS}{DAY:%Y%m%d}{i:012d}"


def _base(i: int) -> int:
    """The settlement whose attributes entry ``i`` shares (a cancellation shares its settlement's)."""
    return i - 1 if i % 100 == 99 else i


def entry(i: int, n: int) -> Entry:
    b = _base(i)
    seconds = 8 * 3600 + (i * 36000) // n  # 08:00 … 18:00
    hh, mm, ss = seconds // 3600, seconds // 60 % 60, seconds % 60
    medfee = 1000 + (b * 7919) % 90000
    fund = medfee * 6 // 10
    acct = medfee // 10 if b % 4 else 0
    cash = medfee - fund - acct
    cancel = b != i
    sign = -1 if cancel else 1
    return Entry(
        i=i, setl_id=_setl_id(i), mdtrt_id=f"{ADMDVS}{DAY:%Y%m%d}M{b:011d}", psn_no=f"4401{(b * 48271) % 10**10:010d}",
        msgid=f"{FIXMEDINS}{DAY:%Y%m%d}{hh:02d}{mm:02d}{ss:02d}{i % 10000:04d}",
        setl_time=f"{DAY.isoformat()} {hh:02d}:{mm:02d}:{ss:02d}",
        insutype="390" if b % 4 == 0 else "310", clr_type="21" if b % 10 == 3 else "11",
        setl_optins=OPTINS[1] if b % 20 == 7 else OPTINS[2] if b % 50 == 11 else OPTINS[0],
        refd_setl_flag="1" if cancel else "0", orig_setl_id=_setl_id(b) if cancel else None,
        medfee=sign * medfee, fund=sign * fund, acct=sign * acct, cash=sign * cash,
        channel="mobilepay" if b % 50 == 0 else "national")


def planted(i: int, share: float) -> str:
    """The difference planted on entry ``i``: "" (none), his_only, amount_mismatch or status_mismatch."""
    if i % 100 in (98, 99):  # a settlement and its cancellation stay consistent
        return ""
    step = max(1, int(1 / share))
    if i % step != 5 % step:
        return ""
    return {0: "his_only", 1: "his_only", 2: "amount_mismatch", 3: "status_mismatch"}.get((i // step) % 6, "")


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


_SPLIT = ('{{"medfee_sumamt": "{0}", "fund_pay_sumamt": "{1}", "psn_part_amt": "{2}", "acct_pay": "{3}", '
          '"psn_cash_pay": "{4}", "hifp_pay": "{1}", "fulamt_ownpay_amt": "{5}", "overlmt_selfpay": "{5}", '
          '"preselfpay_amt": "{5}", "inscp_scp_amt": "{0}", "act_pay_dedc": "{5}", "pool_prop_selfpay": "{5}", '
          '"hosp_part_amt": "{5}", "balc": null}}')


def _split_json(e: Entry) -> str:
    """The split the ledger keeps (json.dumps of the SettlementSplit the settlement service sent)."""
    return _SPLIT.format(_yuan(e.medfee), _yuan(e.fund), _yuan(e.medfee - e.fund), _yuan(e.acct), _yuan(e.cash),
                         "0.00" if e.medfee >= 0 else "-0.00")


LEDGER_COLUMNS = ("setl_id", "his_visit_id", "visit_kind", "channel", "producer", "mdtrt_id", "psn_no", "insutype",
                  "clr_type", "setl_optins", "refd_setl_flag", "orig_setl_id", "msgid", "setl_time", "medfee_sumamt",
                  "fund_pay_sumamt", "acct_pay", "psn_cash_pay", "split", "status", "source", "message_id",
                  "received_at", "updated_at")


def ledger_copy_chunks(n: int, *, chunk: int = 20_000) -> Iterator[bytes]:
    """The hospital ledger as COPY text (money in fen, as the Money column stores it)."""
    lines: list[str] = []
    for i in range(n):
        e = entry(i, n)
        when = e.setl_time + "+08:00"
        lines.append("\t".join((
            e.setl_id, f"V{_base(i):012d}", "inpatient" if e.clr_type == "21" else "outpatient", e.channel,
            "mobilepay" if e.channel == "mobilepay" else "settlement", e.mdtrt_id, e.psn_no, e.insutype, e.clr_type,
            e.setl_optins, e.refd_setl_flag, e.orig_setl_id or "\\N", e.msgid, when, str(e.medfee), str(e.fund),
            str(e.acct), str(e.cash), _split_json(e), "booked", "his_result", f"bench-{i}", when, when)))
        if len(lines) >= chunk:
            yield ("\n".join(lines) + "\n").encode()
            lines.clear()
    if lines:
        yield ("\n".join(lines) + "\n").encode()


BULK_COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "msgid", "setl_time", "insutype", "clr_type", "clr_optins",
                "refd_setl_flag", "orig_setl_id", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")


def _bulk_line(e: Entry, *, setl_id: str | None = None, flag: str | None = None, orig: str | None = None,
               sign: int = 1, extra: int = 0, setl_time: str | None = None) -> str:
    return "\t".join((setl_id or e.setl_id, e.mdtrt_id, e.psn_no, e.msgid, setl_time or e.setl_time, e.insutype,
                      e.clr_type, e.setl_optins, flag or e.refd_setl_flag, orig or e.orig_setl_id or "null",
                      _yuan(sign * (e.medfee + extra)), _yuan(sign * e.fund), _yuan(sign * e.acct),
                      _yuan(sign * (e.cash + extra))))


def platform_chunks(n: int, share: float, counts: Counter[str], *, chunk: int = 100_000) -> Iterator[str]:
    """The platform's side of the day as bulk-load bodies; ``counts`` receives the planted differences."""
    header = "\t".join(BULK_COLUMNS)
    lines: list[str] = []

    def flush() -> Iterator[str]:
        if lines:
            yield header + "\n" + "\n".join(lines) + "\n"
            lines.clear()

    for i in range(n):
        e = entry(i, n)
        kind = planted(i, share)
        if kind:
            counts[kind] += 1
        if kind == "his_only":
            continue
        if kind == "amount_mismatch":
            lines.append(_bulk_line(e, extra=100))
        elif kind == "status_mismatch":  # the platform cancelled it at 20:00; HIS never heard
            lines.append(_bulk_line(e))
            lines.append(_bulk_line(e, setl_id=f"{ADMDVS}{DAY:%Y%m%d}8{i:011d}", flag="1", orig=e.setl_id, sign=-1,
                                    setl_time=f"{DAY.isoformat()} 20:00:00"))
        else:
            lines.append(_bulk_line(e))
        if len(lines) >= chunk:
            yield from flush()
    for j in range(counts["his_only"]):  # as many platform-only entries (the classic 单边账 after a timeout)
        e = entry((j * 97) % n // 100 * 100, n)  # attributes of a plain settlement
        lines.append(_bulk_line(e, setl_id=f"{ADMDVS}{DAY:%Y%m%d}9{j:011d}"))
        counts["platform_only"] += 1
    yield from flush()


# --- the parent: stack, loads, the child, the report ----------------------------------------------------------

def _free_port() -> int:
    from yibao.stack._proc import free_port

    return free_port()


def _conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    info = f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"
    return info + (f" password={u.password}" if u.password else "")


def load_ledger(url: str, n: int) -> dict[str, float]:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(_conninfo(url)) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY recon_ledger ({', '.join(LEDGER_COLUMNS)}) FROM STDIN") as copy:
                for block in ledger_copy_chunks(n):
                    copy.write(block)
        conn.commit()
    copied = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE recon_ledger")
    return {"copy_seconds": round(copied, 2), "vacuum_analyze_seconds": round(time.perf_counter() - started, 2)}


def start_simulator(workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    import httpx

    port, admin = _free_port(), _free_port()
    log = (workdir / "simulator.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "yibao.cli.main", "sim", "--port", str(port), "--admin-port",
                             str(admin), "--population", "10", "--fixmedins-code", FIXMEDINS],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    admin_url = f"http://127.0.0.1:{admin}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{admin_url}/admin/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"the simulator did not start (see {workdir / 'simulator.log'})") from None
            time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}", admin_url


def load_platform(admin_url: str, n: int, share: float) -> tuple[Counter[str], dict[str, float]]:
    import httpx

    counts: Counter[str] = Counter()
    started = time.perf_counter()
    total = 0
    with httpx.Client(timeout=600) as http:
        for body in platform_chunks(n, share, counts):
            reply = http.post(f"{admin_url}/admin/settlements/bulk", content=body.encode(),
                              headers={"Content-Type": "text/tab-separated-values; charset=utf-8"})
            if reply.status_code != 200:
                raise RuntimeError(f"bulk load refused: {reply.text[:300]}")
            total = reply.json()["settlements"]
    return counts, {"seconds": round(time.perf_counter() - started, 2), "platform_entries": total}


def _stat(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _proc_cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return float("nan") if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cluster_cpu_seconds(server: Any) -> float | None:
    """CPU seconds of the private PostgreSQL cluster so far: the postmaster with its reaped children (backends
    that ended) and the live ones (checkpointer, WAL writer, open connections). None when it is not ours."""
    try:
        postmaster = int((Path(server.workdir) / "data" / "postmaster.pid").read_text().split()[0])
    except (AttributeError, OSError, TypeError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    fields = _stat(postmaster)
    if fields is None:
        return None
    total = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child_fields = _stat(entry.name)
            if child_fields is not None and int(child_fields[1]) == postmaster:
                total += int(child_fields[11]) + int(child_fields[12])
    return total / tick


def parent(args: argparse.Namespace) -> int:
    n, share = args.entries, args.differences
    workdir = Path(tempfile.mkdtemp(prefix="yibao-bench-recon-"))
    # The run's process is started first, while this one is small (nothing but the standard library imported):
    # on Linux ru_maxrss survives fork and exec, so a child started after the set-up would begin with this
    # process's peak. It imports, then waits for the go.
    out_path = workdir / "child.json"
    command = [sys.executable, __file__, "--child"]
    if args.profile:  # py-spy (pip install py-spy) samples the child; its own overhead lands in the figures
        command = [str(Path(sys.executable).with_name("py-spy")), "record", "--rate", "100", "--format", "raw",
                   "--output", args.profile, "--", *command]
    runner = subprocess.Popen(command, stdin=subprocess.PIPE, text=True)
    stack: Any = None
    sim: subprocess.Popen[bytes] | None = None
    try:
        from yibao.core import clock
        from yibao.core.db.migrations import upgrade
        from yibao.stack import start_stack

        load_before = os.getloadavg()
        print(f"reconciliation of {n:,} ledger entries, ~{share:.0%} planted differences; load average "
              f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
        stack = start_stack(prefer="real", workdir=workdir / "stack", durable_database=True)
        info = stack.info
        print(info.describe(), flush=True)
        if not info.real_database:
            raise SystemExit("this benchmark needs PostgreSQL (install the server binaries or set DATABASE_URL)")
        url = info.database_url
        upgrade(url)
        started = time.perf_counter()
        ledger_load = load_ledger(url, n)
        print(f"  set-up: ledger COPY {ledger_load['copy_seconds']} s, VACUUM ANALYZE "
              f"{ledger_load['vacuum_analyze_seconds']} s", flush=True)
        sim, sim_url, admin_url = start_simulator(workdir)
        counts, platform_load = load_platform(admin_url, n, share)
        print(f"  set-up: platform side ({platform_load['platform_entries']:,} entries) loaded in "
              f"{platform_load['seconds']} s; planted {dict(counts)}", flush=True)
        setup_s = time.perf_counter() - started

        sim_cpu_before = _proc_cpu_seconds(sim.pid)
        db_cpu_before = _cluster_cpu_seconds(stack.postgres_server)
        load_run = os.getloadavg()
        assert runner.stdin is not None
        runner.stdin.write(json.dumps({"database_url": url, "platform_url": sim_url, "admin_url": admin_url,
                                       "entries": n, "out": str(out_path)}) + "\n")
        runner.stdin.close()
        code = runner.wait()
        if code:
            raise SystemExit(f"the reconciliation child failed (exit {code})")
        run = json.loads(out_path.read_text())
        load_after = os.getloadavg()
        db_cpu_after = _cluster_cpu_seconds(stack.postgres_server)
        expected = {k: counts[k] for k in ("his_only", "amount_mismatch", "status_mismatch", "platform_only")}
        assert run["differences"] == expected, (run["differences"], expected)
        report = {
            "benchmark": "reconciliation",
            "method": METHOD,
            "time": clock.format_datetime(clock.now()),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "stack": {"database": info.database_kind, "database_detail": info.database_detail,
                      "broker": f"{info.kafka_kind} (started by start_stack, not used by this benchmark)",
                      "platform": "yibao sim (separate process), national gateway 'none', real HTTP on loopback",
                      "client": "yibao.envelope.client.NationalClient (catalog validation, msgids, call log, 9001)"},
            "load_average": {"before_setup": [round(x, 2) for x in load_before],
                             "before_run": [round(x, 2) for x in load_run],
                             "after_run": [round(x, 2) for x in load_after],
                             "note": "1/5/15-minute load averages of the shared 2-core machine (other developers' "
                                     "work included)"},
            "entries": n,
            **{k: v for k, v in run.items() if k != "entries"},
            "cpu_seconds_elsewhere_during_run": {
                "database": round(db_cpu_after - db_cpu_before, 2) if db_cpu_before and db_cpu_after else None,
                "simulator": round(_proc_cpu_seconds(sim.pid) - sim_cpu_before, 2)},
            "what_is_timed": {
                "total_seconds (ours)": "the run's wall time, phase by phase, minus the platform's own handling "
                                        "inside it: our SQL (PostgreSQL's work included), Python, envelopes and "
                                        "signing, the transfer of both files, the call log and the progress rows "
                                        "(each a commit with fsync)",
                "platform_seconds": "the simulator's own handling of 9001, 3201, 9101, 3202 and 9102 "
                                    "(its handler_seconds counter): subtracted",
                "cpu_seconds": "CPU of the reconciliation process (all its threads), per phase and in total; "
                               "cpu_seconds_elsewhere_during_run: the PostgreSQL cluster's and the simulator's",
                "not timed": "set-up: the stack, the migration, the ledger COPY and VACUUM ANALYZE, the "
                             "platform's bulk load, the child process's start and imports",
                "not included": "planning and applying repairs (a 5203 per difference), the 3201 re-check, the "
                                "reports (Excel/HTML)",
            },
            "peak_rss_includes": "resource.getrusage(RUSAGE_SELF).ru_maxrss of the process running the "
                                 "reconciliation (a child started for it): the interpreter, the imported "
                                 "libraries, the NationalClient and its catalog, the database pool and its threads, "
                                 "the run's buffers (detail zip, result zip, differences); not the database "
                                 "server, not the simulator. rss.ready_mb: the peak before the run started",
            "setup": {"ledger": ledger_load, "platform": platform_load, "seconds": round(setup_s, 2),
                      "timed_as_ours": False,
                      "what": "COPY of the hospital ledger + VACUUM ANALYZE; the platform's side through the "
                              "simulator's admin bulk load (not its per-settlement code path)"},
            "planted": expected,
        }
        target = Path(args.output) if args.output else Path(args.profile + ".json") if args.profile else RESULTS
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"  {'total (ours)':<34} {report['total_seconds']:8.2f} s   peak RSS {report['peak_rss_mb']:.1f} MB; "
              f"wall incl. the platform {report['wall_seconds']:.2f} s", flush=True)
        print(f"written to {target}")
        return 0
    finally:
        if runner.poll() is None:
            if runner.stdin is not None and not runner.stdin.closed:
                runner.stdin.close()  # EOF: the child ends without running
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                runner.kill()
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(20)
            except subprocess.TimeoutExpired:
                sim.kill()
        if stack is not None:
            stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# --- the child: the run itself -----------------------------------------------------------------------------------

def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _vm_hwm_mb() -> float | None:
    """Linux: the peak RSS of this process's own address space (VmHWM), which exec starts afresh."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


class Span(NamedTuple):
    what: str
    wall0: float
    wall1: float
    cpu0: float
    cpu1: float


class TimedPlatform:
    """The run's NationalClient, with the wall and CPU clocks read around each call (nothing else changes)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.spans: list[Span] = []

    async def _timed(self, what: str, awaitable: Any) -> Any:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            return await awaitable
        finally:
            self.spans.append(Span(what, wall0, time.perf_counter(), cpu0, time.process_time()))

    async def call(self, infno: str, input: Any, **kw: Any) -> Any:  # noqa: A002
        return await self._timed(infno, self.client.call(infno, input, **kw))

    async def upload(self, content: bytes, filename: str, **kw: Any) -> Any:
        return await self._timed("9101", self.client.upload(content, filename, **kw))

    async def download(self, file_qury_no: str, filename: str, **kw: Any) -> bytes:
        return await self._timed("9102", self.client.download(file_qury_no, filename, **kw))

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, **kw: Any) -> Any:
        return await self.client.reverse(psn_no, omsgid, oinfno, **kw)

    async def allocate_msgid(self) -> str:
        return await self.client.allocate_msgid()


#: the phases of the run, what each per-item figure divides by, and the infnos whose platform time falls in it
PHASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "submit the run": ("run", ()),
    "statement keys (ledger keys, 清算经办机构 hints)": ("ledger entry", ()),
    "3201 (totals summed by PostgreSQL, one call per key)": ("ledger entry", ("9001", "3201")),
    "detail file (streamed from PostgreSQL into the zip)": ("ledger entry", ()),
    "9101 upload of the detail file": ("ledger entry", ("9101",)),
    "3202 (the platform compares)": ("ledger entry", ("3202",)),
    "9102 download of the result file": ("result row", ("9102",)),
    "diff (result file read)": ("result row", ()),
    "classification (hospital side looked up)": ("difference", ()),
    "differences stored": ("difference", ()),
}


class Clock:
    """Wall and CPU time of this process per phase (CPU: every thread of the process, process_time)."""

    def __init__(self) -> None:
        self.phases = {name: {"phase": name, "seconds": 0.0, "cpu_seconds": 0.0} for name in PHASES}

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.phases[name]["seconds"] += wall
        self.phases[name]["cpu_seconds"] += cpu

    async def measure(self, name: str, awaitable: Any) -> Any:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            return await awaitable
        finally:
            self.add(name, time.perf_counter() - wall0, time.process_time() - cpu0)


def child(args: argparse.Namespace) -> int:
    rss_start = _peak_rss_mb()
    import httpx

    from yibao.core.db import make_engine
    from yibao.envelope.client import NationalClient
    from yibao.envelope.settings import PlatformSettings
    from yibao.reconciliation.classify import classify
    from yibao.reconciliation.ledger import ledger_keys, ledger_totals
    from yibao.reconciliation.models import RunRequest
    from yibao.reconciliation.reconciler import Reconciler, _Group
    from yibao.reconciliation.runs import save_differences
    from yibao.reconciliation.settings import ReconciliationSettings
    from yibao.reconciliation.statement import keys_to_ask

    # started before the set-up (see parent): wait for the go with the stack's addresses
    line = sys.stdin.readline()
    if not line.strip():
        return 1  # the parent gave up before the run
    orders = json.loads(line)
    for key in ("database_url", "platform_url", "admin_url", "entries", "out"):
        setattr(args, key, orders[key])
    workdir = Path(tempfile.mkdtemp(prefix="yibao-bench-recon-child-"))
    engine = make_engine(args.database_url)
    settings = ReconciliationSettings(database_url=args.database_url, reports_dir=workdir / "reports",
                                      topic_prefix="bench.", schedule_enabled=False)
    # 3202 of a million rows keeps the platform busy for a while: a long read timeout, as a hospital would set
    client = NationalClient(PlatformSettings(base_url=args.platform_url, read_timeout_s=600.0), engine=engine,
                            service="reconciliation")
    timed = TimedPlatform(client)
    reconciler = Reconciler(engine, timed, settings, default_optins=ADMDVS)
    rss_ready = _peak_rss_mb()
    clock = Clock()
    rss_after: dict[str, float] = {}

    def handler_seconds() -> dict[str, float]:
        reply = httpx.get(f"{args.admin_url}/admin/counters", timeout=30)
        reply.raise_for_status()
        return {k: float(v) for k, v in reply.json().get("handler_seconds", {}).items()}

    async def run() -> dict[str, Any]:
        before = await asyncio.to_thread(handler_seconds)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        record = await clock.measure("submit the run", reconciler.submit(
            RunRequest.for_day(DAY, trigger="cli", requested_by="bench")))

        async def keys_of() -> list[Any]:  # what Reconciler._execute does first
            s = reconciler.settings
            known = await reconciler.db(lambda conn: ledger_keys(conn, record.date_from, record.date_to))
            optins = set(reconciler.optins) | await reconciler.db(reconciler._optins_hints(record))
            return keys_to_ask(known, insutypes=s.insutypes, clr_types=s.clr_types, setl_optins=sorted(optins),
                               insutype=record.insutype, clr_type=record.clr_type)

        keys = await clock.measure("statement keys (ledger keys, 清算经办机构 hints)", keys_of())

        async def statements() -> tuple[list[Any], int]:
            unbalanced = await reconciler._statements(record, keys, phase="initial")
            totals = await reconciler.db(lambda conn: ledger_totals(conn, record.date_from, record.date_to))
            return unbalanced, sum(t.count for t in totals.values())

        unbalanced, entries = await clock.measure("3201 (totals summed by PostgreSQL, one call per key)",
                                                  statements())
        assert entries == args.entries, (entries, args.entries)
        rss_after["3201"] = _peak_rss_mb()

        groups = [_Group(c, o) for c, o in sorted({(k.clr_type, k.setl_optins) for k in unbalanced})]
        found: list[Any] = []
        rows = 0
        for i, group in enumerate(groups, start=1):
            timed.spans.clear()
            w0, c0 = time.perf_counter(), time.process_time()
            summary = await reconciler._detail(record, group)
            w1, c1 = time.perf_counter(), time.process_time()
            span = {x.what: x for x in timed.spans}
            up, stmt, down = span["9101"], span["3202"], span["9102"]
            clock.add("detail file (streamed from PostgreSQL into the zip)", up.wall0 - w0, up.cpu0 - c0)
            for name, x in (("9101 upload of the detail file", up), ("3202 (the platform compares)", stmt),
                            ("9102 download of the result file", down)):
                clock.add(name, x.wall1 - x.wall0, x.cpu1 - x.cpu0)
            clock.add("diff (result file read)", w1 - down.wall1, c1 - down.cpu1)
            rows += summary.rows

            async def classified(g: Any = group, sm: Any = summary, n: int = i) -> list[Any]:
                diffs = await asyncio.to_thread(classify, sm.differences, reconciler._lookup,
                                                clr_type=g.clr_type, setl_optins=g.setl_optins)
                await reconciler._progress(record.run_id, "3202", n, len(groups))
                return diffs

            found.extend(await clock.measure("classification (hospital side looked up)", classified()))
        rss_after["3202 groups"] = _peak_rss_mb()
        await clock.measure("differences stored", reconciler.db(
            lambda conn: save_differences(conn, record.run_id, found)))
        rss_after["differences stored"] = _peak_rss_mb()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        after = await asyncio.to_thread(handler_seconds)
        return {"groups": len(groups), "result_rows": rows, "found": found, "wall": wall, "cpu": cpu,
                "platform": {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}}

    async def main() -> dict[str, Any]:
        try:
            return await run()
        finally:
            await client.aclose()

    outcome = asyncio.run(main())
    engine.dispose()
    found = outcome.pop("found")
    by_class = Counter(d.diff_class for d in found)
    counts = {"run": 1, "ledger entry": args.entries, "result row": outcome["result_rows"],
              "difference": len(found)}
    table = []
    for name, p in clock.phases.items():
        unit, infnos = PHASES[name]
        platform_s = sum(outcome["platform"].get(infno, 0.0) for infno in infnos)
        ours = max(0.0, p["seconds"] - platform_s)
        table.append({"phase": name, "seconds": round(p["seconds"], 3), "platform_seconds": round(platform_s, 3),
                      "ours_seconds": round(ours, 3), "cpu_seconds": round(p["cpu_seconds"], 3),
                      "divides_by": f"{counts[unit]:,} {unit}s",
                      "ours_us_per_item": round(ours / max(1, counts[unit]) * 1e6, 2)})
    result = {
        "entries": args.entries,
        "groups": outcome["groups"],
        "result_rows": outcome["result_rows"],
        "differences": {k: by_class[k] for k in ("his_only", "amount_mismatch", "status_mismatch",
                                                  "platform_only")},
        "phases": table,
        "total_seconds": round(sum(p["ours_seconds"] for p in table), 3),
        "wall_seconds": round(outcome["wall"], 3),
        "platform_seconds": round(sum(outcome["platform"].values()), 3),
        "platform_seconds_by_infno": {k: round(v, 3) for k, v in sorted(outcome["platform"].items())},
        "cpu_seconds": round(outcome["cpu"], 2),
        "peak_rss_mb": _peak_rss_mb(),
        "vm_hwm_mb": _vm_hwm_mb(),
        "rss": {"at_start_mb": rss_start, "ready_mb": rss_ready,
                **{f"after_{k.replace(' ', '_')}_mb": v for k, v in rss_after.items()}},
    }
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    for p in table:
        print(f"  {p['phase']:<54} {p['seconds']:7.2f} s (platform {p['platform_seconds']:6.2f}, ours "
              f"{p['ours_seconds']:6.2f}, CPU {p['cpu_seconds']:6.2f}; {p['ours_us_per_item']:9.2f} µs per "
              f"{p['divides_by'].split(' ', 1)[1][:-1]})", flush=True)
    print(f"  peak RSS {result['peak_rss_mb']} MB (ready: {rss_ready} MB)", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="ledger entries of the day")
    parser.add_argument("--differences", type=float, default=0.03, help="share of entries planted as differences")
    parser.add_argument("--profile", metavar="FILE", help="sample the run with py-spy into FILE (collapsed "
                        "stacks); the figures go to FILE.json, not to bench/results")
    parser.add_argument("--output", metavar="FILE", help="write the figures to FILE instead of bench/results "
                        "(a smoke run at a small --entries)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    raise SystemExit(main())
