"""Bringing the platform catalogs up to date — by itself on a timer, one replica per catalog at a time (a lease in
``catalog_state``), resuming after a restart from the last version applied.

For a **file** catalog (1301-1311, 1313-1315): ask with the version in force (``{"data": {"ver": …}}``), download
the file the answer names (9102), apply it — streamed, in one transaction — and ask again with the new version
until the platform has nothing newer. A file that cannot be applied is refused with its name and line (recorded in
``catalog_versions`` and ``catalog_state.last_error``, counted in ``yibao_catalog_syncs_total{outcome="refused"}``)
and the catalog in force stays; the next round tries again. For a **paged** catalog (1304, 1312, 1316-1319): every
page of the rows updated since the newest update applied, collected in a temporary file, then applied in one
transaction. **1901**: each configured dictionary type. **1201**: the institution's own record.

The platform's answers to these queries are safe to ask again (the catalog marks them retry_safe): the client
retries a lost answer itself; a platform that does not answer leaves the catalog as it is until the next round.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from yibao.core import clock
from yibao.core.privacy import mask_text
from yibao.envelope.national import jsontext
from yibao.upload_scheduler import metrics
from yibao.upload_scheduler.catalog import store
from yibao.upload_scheduler.catalog.layouts import CatalogLayout
from yibao.upload_scheduler.errors import CatalogFileError

__all__ = ["CatalogSync", "SyncOutcome", "DICTIONARY"]

log = logging.getLogger(__name__)
DICTIONARY = "1901"
SyncOutcome = str  # updated | current | refused | failed | busy


def _first(output: Any, *names: str) -> Any:
    if not isinstance(output, dict):
        return None
    for name in names:
        if output.get(name) not in (None, ""):
            return output[name]
    for value in output.values():
        if isinstance(value, dict):
            found = _first(value, *names)
            if found is not None:
                return found
    return None


def _rows(output: Any, *nodes: str) -> list[dict[str, Any]]:
    if isinstance(output, list):
        return [r for r in output if isinstance(r, dict)]
    if not isinstance(output, dict):
        return []
    for node in nodes:
        value = output.get(node)
        if isinstance(value, list):
            return [r for r in value if isinstance(r, dict)]
        if isinstance(value, dict):
            return [value]
    return []


class CatalogSync:
    def __init__(self, *, db: Callable[[Callable[..., Any]], Awaitable[Any]], client: Callable[[], Any],
                 layouts: dict[str, CatalogLayout], settings: Any, fixmedins_code: str = "",
                 on_applied: Callable[[], None] | None = None) -> None:
        self.db = db
        self.client = client
        self.layouts = layouts
        self.settings = settings
        self.fixmedins_code = fixmedins_code
        self.on_applied = on_applied
        self.owner = f"catalog:{socket.gethostname()}:{os.getpid()}"
        self.infnos = [i for i in settings.catalog_infnos if i in layouts]
        self._next: dict[str, float] = {}

    # --- the loop ----------------------------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event | None = None) -> None:
        stopping = stopping or asyncio.Event()
        names = list(self.infnos) + ([DICTIONARY] if self.settings.catalog_dictionaries else [])
        while not stopping.is_set():
            now = time.monotonic()
            for infno in names:
                if stopping.is_set():
                    return
                if self._next.get(infno, 0.0) > now:
                    continue
                outcome = await self.sync(infno)
                delay = (self.settings.catalog_retry_s if outcome in ("refused", "failed", "busy")
                         else self.settings.catalog_sync_interval_s)
                self._next[infno] = time.monotonic() + delay
            wait = max(1.0, min(self._next.values(), default=now + 60) - time.monotonic())
            try:
                await asyncio.wait_for(stopping.wait(), timeout=min(wait, 60.0))
            except asyncio.TimeoutError:
                pass

    async def _platform(self) -> Any:
        for _ in range(600):
            client = self.client()
            if client is not None:
                return client
            await asyncio.sleep(0.1)
        raise RuntimeError("no platform client")

    async def sync(self, infno: str) -> SyncOutcome:
        """One catalog brought up to the platform's newest version (or left as it is)."""
        try:
            claimed = await self.db(lambda c: store.claim(c, infno, self.owner, self.settings.catalog_lease_s))
        except Exception as exc:  # the database: try again next round
            log.warning("catalog sync: the database did not answer", extra={"fields": {
                "infno": infno, "error": type(exc).__name__}})
            return "failed"
        if claimed is False:
            return "busy"
        prev: str | None = claimed  # type: ignore[assignment]
        outcome, error = "failed", None
        try:
            if infno == DICTIONARY:
                outcome = await self._dictionaries(prev)
            else:
                layout = self.layouts[infno]
                if layout.mode == "file":
                    outcome = await self._files(layout, prev)
                elif layout.mode == "paged":
                    outcome = await self._paged(layout, prev)
                else:
                    outcome = await self._medins(layout, prev)
        except CatalogFileError as exc:
            outcome, error = "refused", str(exc)
            log.error("catalog file refused; the catalog in force stays", extra={"fields": {
                "infno": infno, "file": exc.file_name, "line": exc.line, "problem": exc.problem}})
            try:
                await self.db(lambda c: store.refused(c, infno, prev_ver=prev, file_name=exc.file_name,
                                                      error=str(exc)))
            except Exception:
                log.warning("catalog sync: the refusal could not be recorded", extra={"fields": {"infno": infno}})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the platform or the database: the catalog stays, the next round tries again
            outcome, error = "failed", f"{type(exc).__name__}: {mask_text(str(exc))}"
            log.warning("catalog sync failed; the catalog in force stays", extra={"fields": {
                "infno": infno, "error": error}})
        finally:
            metrics.CATALOG_SYNCS.labels(infno, outcome).inc()
            ok = outcome in ("updated", "current")
            if ok:
                metrics.CATALOG_LAST_SUCCESS.labels(infno).set(time.time())
            try:
                await asyncio.shield(self.db(lambda c: store.release(c, infno, self.owner, error=error, success=ok)))
            except Exception:
                pass
        return outcome

    # --- file catalogs ------------------------------------------------------------------------------------------
    async def _files(self, layout: CatalogLayout, prev: str | None) -> SyncOutcome:
        client = await self._platform()
        infno, ver, updated = layout.infno, prev, False
        for _ in range(self.settings.catalog_max_versions):
            reply = await client.call(infno, {"data": {"ver": ver or "0"}})
            output = reply.output if isinstance(reply.output, dict) else {}
            file_no, name = _first(output, "file_qury_no"), _first(output, "filename")
            count = _first(output, "data_cnt", "data_cn")
            if not file_no or not name:
                if count in (0, "0"):
                    break
                raise CatalogFileError(infno, "(answer)", 0, "the answer names no file (file_qury_no, filename)")
            expected = int(count) if isinstance(count, (int, str)) and str(count).isdigit() else None
            if expected == 0:
                break
            path = await self._download(client, str(file_no), str(name))
            try:
                started = time.perf_counter()
                applied = await self.db(lambda c: store.apply_file(
                    c, layout, path, file_name=str(name), prev_ver=ver, expected_rows=expected,
                    batch=self.settings.catalog_apply_batch))
                metrics.CATALOG_APPLY_SECONDS.labels(infno).observe(time.perf_counter() - started)
            finally:
                path.unlink(missing_ok=True)
            self._applied(infno, applied)
            if applied.rows == 0 or applied.ver == ver:
                break
            ver, updated = applied.ver, True
        return "updated" if updated else "current"

    async def _download(self, client: Any, file_no: str, name: str) -> Path:
        fd, tmp = tempfile.mkstemp(prefix="yibao-catalog-", suffix=".zip")
        os.close(fd)
        path = Path(tmp)
        try:
            stream_to = getattr(client, "download_to", None)
            if stream_to is not None:  # a client that streams 9102 to a file (bounded memory for any size)
                await stream_to(file_no, name, path)
            else:
                content = await client.download(file_no, name)
                await asyncio.to_thread(path.write_bytes, content)
                del content
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def _applied(self, infno: str, applied: store.Applied) -> None:
        metrics.CATALOG_APPLIED_ROWS.labels(infno).inc(applied.rows)
        log.info("catalog update applied", extra={"fields": {
            "infno": infno, "ver": applied.ver, "rows": applied.rows, "skipped": applied.skipped}})
        if self.on_applied is not None:
            self.on_applied()

    # --- paged catalogs ------------------------------------------------------------------------------------------
    async def _paged(self, layout: CatalogLayout, prev: str | None) -> SyncOutcome:
        client = await self._platform()
        infno = layout.infno
        since = (prev or "2000-01-01")[:10]
        size = self.settings.catalog_page_size
        keys = list(layout.key)  # type: ignore[arg-type]
        fd, tmp = tempfile.mkstemp(prefix="yibao-catalog-", suffix=".jsonl")
        path = Path(tmp)
        rows = 0
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                page = 1
                while page <= 100000:
                    reply = await client.call(infno, {"data": {"updt_time": since, "page_num": page,
                                                               "page_size": size}})
                    found = _rows(reply.output, "data", "list")
                    for index, row in enumerate(found, 1):
                        parts = [row.get(k) for k in keys]
                        if any(p in (None, "") for p in parts):
                            raise CatalogFileError(infno, f"page {page}", index,
                                                   f"no {'/'.join(keys)} (the row's key)")
                        out.write(jsontext.dumps(row) + "\n")
                        rows += 1
                    pages = _first(reply.output if isinstance(reply.output, dict) else {}, "pages")
                    if len(found) < size or (isinstance(pages, int) and page >= pages):
                        break
                    page += 1
            if rows == 0:
                return "current"

            def lines() -> Iterator[tuple[str, str, str | None, str | None, str]]:
                with path.open(encoding="utf-8") as fh:
                    for text in fh:
                        row = json.loads(text)
                        code = "|".join(str(row[k]) for k in keys)[:120]
                        ver = str(row.get("updt_time") or since)[:19]
                        yield code, ver, row.get("vali_flag"), row.get("rid"), text.rstrip("\n")

            applied = await self.db(lambda c: store.apply_rows(c, infno, lines(), prev_ver=prev, source=f"{infno} "
                                                               f"pages since {since}",
                                                               batch=self.settings.catalog_apply_batch))
        finally:
            path.unlink(missing_ok=True)
        self._applied(infno, applied)
        return "updated" if applied.ver != prev else "current"

    # --- 1901, 1201 -------------------------------------------------------------------------------------------------
    async def _dictionaries(self, prev: str | None) -> SyncOutcome:
        client = await self._platform()
        today = clock.today().strftime("%Y%m%d")
        collected: list[tuple[str, str, str | None, str | None, str]] = []
        for kind in self.settings.catalog_dictionaries:
            reply = await client.call(DICTIONARY, {"data": {"type": kind}})
            for index, row in enumerate(_rows(reply.output, "list", "data"), 1):
                value = row.get("nat_dic_val_code") or row.get("value") or row.get("code")
                if value in (None, ""):
                    raise CatalogFileError(DICTIONARY, f"type {kind}", index, "a dictionary entry without its code")
                collected.append((f"{kind}:{value}"[:120], today, row.get("vali_flag"), None, jsontext.dumps(row)))
        if not collected:
            return "current"
        applied = await self.db(lambda c: store.apply_rows(c, DICTIONARY, collected, prev_ver=prev,
                                                           source="1901 " + ",".join(self.settings.catalog_dictionaries)))
        self._applied(DICTIONARY, applied)
        return "updated"

    async def _medins(self, layout: CatalogLayout, prev: str | None) -> SyncOutcome:
        client = await self._platform()
        query = {"medinsinfo": {"fixmedins_type": "1", "fixmedins_code": self.fixmedins_code or None}}
        query["medinsinfo"] = {k: v for k, v in query["medinsinfo"].items() if v is not None}
        reply = await client.call(layout.infno, query)
        today = clock.today().strftime("%Y%m%d")
        rows = []
        for index, row in enumerate(_rows(reply.output, "medinsinfo", "data"), 1):
            code = row.get("fixmedins_code")
            if not code:
                raise CatalogFileError(layout.infno, "(answer)", index, "an institution without fixmedins_code")
            rows.append((str(code), today, row.get("vali_flag"), None, jsontext.dumps(row)))
        if not rows:
            return "current"
        applied = await self.db(lambda c: store.apply_rows(c, layout.infno, rows, prev_ver=prev, source="1201"))
        self._applied(layout.infno, applied)
        return "updated"


