"""``yibao recon …``: finance's command line (register as COMMANDS entry ``("recon",)``).

    yibao recon run --date 2026-11-20 [--to 2026-11-21] [--insutype 310] [--clr-type 11] [--send | --worker URL]
    yibao recon status RUN_ID [--json]
    yibao recon list [--limit 20]
    yibao recon approve RUN_ID --reason TEXT [--id 12 --id 13] [--send]
    yibao recon reject RUN_ID --reason TEXT [--id 12] [--send]
    yibao recon report RUN_ID [--format xlsx|html|json] [--out PATH]

The CLI acts as one identity, given by settings and secret files: ``YIBAO_RECONCILIATION_CLI_USER``, the key it
signs with (``…_CLI_KEY_ID``, default the user, and ``…_CLI_KEY_FILE``, a file holding the secret; the key is
listed in the worker's ``command_keys_file`` with the user's roles) and, for ``--worker``, a bearer token
(``…_CLI_TOKEN_FILE``). There is
no ``--by``: who acts is never a command-line argument.

``run`` reconciles in this process (database ``DATABASE_URL``, platform ``YIBAO_PLATFORM_*``); ``--send``
publishes a signed command on ``yibao.recon.commands.v1`` instead (the worker runs it; the run id is printed),
``--worker URL`` hands it to a worker over HTTP with the bearer token. ``approve`` and ``reject`` build the same
signed command: ``--send`` publishes it; without it, it is verified here against ``command_keys_file`` and
applied in this process — either way the signature, the role (approver), four eyes and the audit row apply.
What goes back to HIS and the run events go through the outbox, published by the reconciliation worker.

Exit codes: 0 balanced / repaired_and_balanced / done, 1 differences_found, 2 failed, refused or a usage
error, 3 unknown run, 4 refused for who you are (no identity, role, four eyes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run", "EXIT_CODES"]

EXIT_CODES = {"balanced": 0, "repaired_and_balanced": 0, "differences_found": 1, "failed": 2, "refused": 2,
              "running": 0}


def _date(text: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date yyyy-MM-dd: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="recon_command", metavar="<run|status|list|approve|reject|report>")
    p = sub.add_parser("run", help="reconcile a period (3201, and 3202 where it does not balance)")
    p.add_argument("--date", required=True, type=_date, help="first day (yyyy-MM-dd, Asia/Shanghai)")
    p.add_argument("--to", type=_date, help="last day (default: --date)")
    p.add_argument("--insutype", help="only this 险种")
    p.add_argument("--clr-type", dest="clr_type", help="only this 清算类别 (11 门诊, 21 住院)")
    p.add_argument("--mobile", action="store_true", help="the mobile-pay reconciliation (6301 against HIS's mobile "
                                                         "ledger) instead of 3201/3202")
    p.add_argument("--worker", help="hand the run to the worker at this URL (bearer token: cli_token)")
    p.add_argument("--send", action="store_true", help="publish a signed run command for the worker instead")
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    p = sub.add_parser("status", help="a run's state, progress and differences")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list", help="the latest runs")
    p.add_argument("--limit", type=int, default=20)
    for name, text in (("approve", "approve pending repairs of a run and apply them"),
                       ("reject", "refuse pending repairs of a run (they go to manual handling)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("run_id")
        p.add_argument("--reason", required=True, help="why (recorded)")
        p.add_argument("--send", action="store_true", help="publish the signed decision for the worker")
        p.add_argument("--id", dest="ids", type=int, action="append", help="only this difference (repeatable)")
        p.add_argument("--json", action="store_true")
    p = sub.add_parser("report", help="where a run's report is, or a copy of it")
    p.add_argument("run_id")
    p.add_argument("--format", choices=("xlsx", "html", "json"), default="xlsx")
    p.add_argument("--out", help="copy the report to this path")
    parser.set_defaults(_recon_parser=parser)


def _print_run(run: Any, as_json: bool) -> None:
    data = run if isinstance(run, dict) else run.public()
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    progress = data.get("progress") or {}
    print(f"run {data['run_id']}  {data['date_from']} ~ {data['date_to']}  state: {data['state']}")
    if progress.get("step") and data["state"] == "running":
        print(f"  step {progress['step']}: {progress.get('done')}/{progress.get('total')}")
    if data.get("message"):
        print(f"  {data['message']}")
    for d in data.get("differences") or []:
        print(f"  #{d['id']:<6} {d['diff_class']:<16} {d['setl_id']:<24} {d.get('action') or '-':<18} "
              f"{d.get('amount') or '':>10}  {d['status']}")


class _Context:
    """Engine, platform client and reconciler for one command, closed afterwards."""

    def __init__(self) -> None:
        from yibao.core.db import make_engine
        from yibao.core.db.migrations import upgrade
        from yibao.core.deployment import Deployment, bind

        from .app import make_client, make_mobile
        from .reconciler import Reconciler
        from .settings import ReconciliationSettings

        self.settings = ReconciliationSettings()
        upgrade(self.settings.database_url)
        # bound to this deployment (topic prefix) as the worker's engine is: it reads and logs only its own calls
        self.engine = bind(make_engine(self.settings.database_url), Deployment.from_settings(self.settings))
        self.client = make_client(self.engine)
        self.mobile = make_mobile(self.engine, self.settings)
        self.reconciler = Reconciler(self.engine, self.client, self.settings,
                                     default_optins=self.client.settings.mdtrtarea_admvs, catalog=self.client.catalog,
                                     mobile=self.mobile)

    async def close(self) -> None:
        try:
            await self.client.aclose()
            if self.mobile is not None:
                await self.mobile.client.aclose()
        finally:
            self.engine.dispose()


async def _with_context(fn: Any) -> int:
    ctx = _Context()
    try:
        return await fn(ctx)
    finally:
        await ctx.close()


class NoIdentity(Exception):
    """The CLI's identity (user, key) is not configured."""


def _identity(settings: Any) -> tuple[str, str, str]:
    user = settings.cli_user.strip()
    secret = settings.cli_secret("key")
    if not user or not secret:
        raise NoIdentity("the CLI acts as a configured identity: set YIBAO_RECONCILIATION_CLI_USER and "
                         "YIBAO_RECONCILIATION_CLI_KEY_FILE (a secret file with the key listed for that user in the "
                         "worker's command_keys_file)")
    return user, settings.cli_key_id.strip() or user, secret


def signed(settings: Any, command: Any) -> bytes:
    """The command, issued by the CLI's identity and signed with its key."""
    from .signing import signed_command

    user, key_id, secret = _identity(settings)
    return signed_command(command.model_copy(update={"by": user}), key_id=key_id, secret=secret)


def _command(kind: str, args: argparse.Namespace) -> Any:
    import secrets as _secrets

    from .models import ReconCommand

    command_id = f"cli-{kind}-{_secrets.token_hex(8)}"
    if kind == "run":
        return ReconCommand(command_id=command_id, kind="run", date_from=args.date, date_to=args.to or args.date,
                            insutype=args.insutype, clr_type=args.clr_type, by="-",
                            scope="mobile" if getattr(args, "mobile", False) else None)
    return ReconCommand(command_id=command_id, kind=kind, run_id=args.run_id, difference_ids=args.ids,
                        reason=args.reason, by="-")


def _send(kind: str, args: argparse.Namespace) -> int:
    """Publish a signed command on the command topic."""
    from aiokafka import AIOKafkaProducer

    from yibao.core.topics import topic

    from .runs import run_id_for_command
    from .settings import ReconciliationSettings

    settings = ReconciliationSettings()
    command = _command(kind, args)
    value = signed(settings, command)
    key = (command.run_id or (command.date_from.isoformat() if command.date_from else "")).encode()

    async def publish() -> None:
        producer = AIOKafkaProducer(**settings.kafka_access.client_options(), acks="all",
                                    enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait(topic("recon_commands", settings.topic_prefix), value, key=key)
        finally:
            await producer.stop()

    asyncio.run(publish())
    out = {"command_id": command.command_id, "kind": kind, "by": settings.cli_user}
    if kind == "run":
        out["run_id"] = run_id_for_command(command.command_id)
    print(json.dumps(out, ensure_ascii=False) if getattr(args, "json", False) else
          " ".join(f"{k}: {v}" for k, v in out.items()))
    return 0


def _handoff(args: argparse.Namespace) -> int:
    import httpx

    from .settings import ReconciliationSettings

    token = ReconciliationSettings().cli_secret("token")
    if not token:
        print("yibao recon run --worker: set YIBAO_RECONCILIATION_CLI_TOKEN_FILE (a file with your bearer token)",
              file=sys.stderr)
        return 4
    body = {"date": args.date.isoformat(), "to": (args.to or args.date).isoformat(), "insutype": args.insutype,
            "clr_type": args.clr_type}
    reply = httpx.post(args.worker.rstrip("/") + "/recon/runs", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    data = reply.json()
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else
          f"run {data.get('run_id')}: {data.get('state')} {data.get('message') or ''}".rstrip())
    return 0 if reply.status_code < 300 else 4 if reply.status_code in (401, 403) else 2


def run(args: argparse.Namespace) -> int:
    from yibao.core.errors import InputError, YibaoError

    from .audit import Actor
    from .errors import RunNotFound
    from .models import RunRequest

    command = getattr(args, "recon_command", None)
    if command is None:
        args._recon_parser.print_help()
        return 2
    try:
        if command == "run":
            if args.worker:
                return _handoff(args)
            if args.send:
                return _send("run", args)

            async def do_run(ctx: _Context) -> int:
                user, key_id, _secret = _identity(ctx.settings)
                try:
                    request = RunRequest(date_from=args.date, date_to=args.to or args.date, insutype=args.insutype,
                                         clr_type=args.clr_type, trigger="cli", requested_by=user,
                                         scope="mobile" if getattr(args, "mobile", False) else "national")
                except ValueError as exc:
                    print(f"yibao recon run: {exc}", file=sys.stderr)
                    return 2
                actor = Actor(user, "clerk", "cli", f"cli (key {key_id})")
                result = await ctx.reconciler.run(request, actor=actor)
                _print_run(await ctx.reconciler.status(result.run_id), args.json)
                return EXIT_CODES.get(result.state, 2)

            try:
                RunRequest(date_from=args.date, date_to=args.to or args.date)
            except ValueError as exc:
                print(f"yibao recon run: {exc}", file=sys.stderr)
                return 2
            return asyncio.run(_with_context(do_run))
        if command in ("status", "list", "report"):
            return _read(command, args)
        if args.send:
            return _send(command, args)

        async def decide(ctx: _Context) -> int:
            from .commands import handle_signed_command
            from .signing import CommandKeys

            if ctx.settings.command_keys_file is None:
                print(f"yibao recon {command}: a decision made here is verified like a command: set "
                      "YIBAO_RECONCILIATION_COMMAND_KEYS_FILE, or publish it with --send", file=sys.stderr)
                return 4
            await ctx.reconciler.status(args.run_id)  # an unknown run: exit 3
            value = signed(ctx.settings, _command(command, args))
            keys = CommandKeys(ctx.settings.command_keys_file)
            await handle_signed_command(ctx.reconciler, keys, value, source="cli",
                                        max_age_s=ctx.settings.command_max_age_s,
                                        clock_skew_s=ctx.settings.command_clock_skew_s, wait_s=0)
            status = await ctx.reconciler.status(args.run_id)
            _print_run(status, args.json)
            return EXIT_CODES.get(status["state"], 2)

        return asyncio.run(_with_context(decide))
    except NoIdentity as exc:
        print(f"yibao recon {command}: {exc}", file=sys.stderr)
        return 4
    except RunNotFound as exc:
        print(f"yibao recon {command}: {exc}", file=sys.stderr)
        return 3
    except InputError as exc:
        print(f"yibao recon {command}: refused: {exc}", file=sys.stderr)
        return 4
    except YibaoError as exc:
        print(f"yibao recon {command}: {exc}", file=sys.stderr)
        return 2


def _read(command: str, args: argparse.Namespace) -> int:
    """status / list / report: the database only, no platform client."""
    from sqlalchemy import inspect

    from yibao.core.db import make_engine

    from .errors import RunNotFound
    from .reports import report_paths
    from .runs import differences_of, get_run, list_runs
    from .settings import ReconciliationSettings

    settings = ReconciliationSettings()
    engine = make_engine(settings.database_url)
    try:
        if "recon_runs" not in inspect(engine).get_table_names():
            print(f"yibao recon {command}: the database has no reconciliation tables (run `yibao db upgrade`)",
                  file=sys.stderr)
            return 2
        with engine.connect() as conn:
            if command == "list":
                for r in list_runs(conn, limit=args.limit):
                    print(f"{r.run_id}  {r.date_from} ~ {r.date_to}  {r.state:<22} {r.message or ''}")
                return 0
            run = get_run(conn, args.run_id)
            if run is None:
                raise RunNotFound(f"no run {args.run_id}")
            if command == "status":
                data = run.public()
                data["differences"] = [d.public() for d in differences_of(conn, args.run_id)]
                _print_run(data, args.json)
                return EXIT_CODES.get(run.state, 2)
        paths = report_paths(Path(settings.reports_dir), args.run_id)
        path = {"xlsx": paths.xlsx, "html": paths.html, "json": paths.json}[args.format]
        if not path.is_file():
            print(f"yibao recon report: no {args.format} report for run {args.run_id} at {path}", file=sys.stderr)
            return 3
        if args.out:
            shutil.copyfile(path, args.out)
            print(args.out)
        else:
            print(path)
        return 0
    finally:
        engine.dispose()
