"""Stand-ins for the national-envelope unit tests (imported by conftest.py and the tests): a small catalog
and an HTTP peer behaving like the platform.

httpx.MockTransport stands in for the platform's HTTP side only; everything of ours runs for real (envelope,
signers, msgid leases and sign-in sessions on a migrated SQLite database, the call log).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from yibao.envelope.errors import CatalogError, EnvelopeValidationError

SAFE = {"1101", "5203", "5204", "9102", "1901"}
REVERSIBLE = {"2207", "2208", "2304", "2305"}
KNOWN = SAFE | REVERSIBLE | {"9001", "9002", "2201", "2204", "2601", "2206", "9101"}


@dataclass
class StandInTransaction:
    infno: str
    safe_to_retry: bool
    reversible: bool
    path: str | None = None


class StandInCatalog:
    """The catalog's interface with just enough rules for these tests (the real one is tested on its own)."""

    def transaction(self, infno: str) -> StandInTransaction:
        if infno not in KNOWN:
            raise CatalogError(f"unknown transaction {infno}")
        return StandInTransaction(infno, infno in SAFE, infno in REVERSIBLE)

    def validate_input(self, infno: str, payload: dict[str, Any]) -> None:
        if infno == "2201":
            data = payload.get("data") or {}
            if not data.get("psn_no"):
                raise EnvelopeValidationError(infno, "data.psn_no", "required")

    def normalize_input(self, infno: str, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def wording(self, name: str) -> tuple[str, ...]:  # the platform's wording is the real catalog's
        from yibao.envelope.catalog import Catalog

        return Catalog.load().wording(name)


@dataclass
class Seen:
    """One request as the stand-in platform received it."""

    path: str
    headers: httpx.Headers
    envelope: dict[str, Any]
    raw: bytes


Reply = Callable[[Seen], httpx.Response | Exception]


@dataclass
class StandInPlatform:
    """Answers like the platform: 9001 gives a sign_no, everything else succeeds unless a rule says otherwise."""

    rules: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    sign_nos: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    output: dict[str, Any] = field(default_factory=dict)

    def on(self, infno: str, *replies: Reply) -> None:
        """Answer the next calls of ``infno`` with ``replies`` in turn (the last one repeats)."""
        self.rules[infno] = list(replies)

    def calls(self, infno: str) -> list[Seen]:
        return [s for s in self.seen if s.envelope.get("infno") == infno]

    def handler(self, request: httpx.Request) -> httpx.Response:
        raw = request.read()
        if request.headers.get("content-type", "").startswith("multipart/"):
            envelope = _multipart_envelope(request)
        else:
            envelope = json.loads(raw, parse_float=Decimal)
        seen = Seen(request.url.path, request.headers, envelope, raw)
        self.seen.append(seen)
        infno = envelope["infno"]
        replies = self.rules.get(infno)
        if replies:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            result = reply(seen)
            if isinstance(result, Exception):
                raise result
            return result
        return ok(self.default_output(infno))(seen)

    def default_output(self, infno: str) -> Any:
        if infno == "9001":
            return {"signinoutb": {"sign_time": "2024-01-01 08:00:00", "sign_no": f"SN{next(self.sign_nos):06d}"}}
        return self.output.get(infno, {"data": {"echo": infno}})


def _multipart_envelope(request: httpx.Request) -> dict[str, Any]:
    from email.parser import BytesParser
    from email.policy import HTTP

    body = request.read()
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + body
    )
    parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
    envelope = json.loads(parts["envelope"].get_payload(decode=True))
    envelope["_file"] = {"filename": parts["file"].get_filename(), "bytes": parts["file"].get_payload(decode=True)}
    return envelope


def reply_json(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body, ensure_ascii=False, default=str).encode("utf-8"),
                          headers={"Content-Type": "application/json;charset=UTF-8"})


def ok(output: Any = None, *, infcode: Any = 0) -> Reply:
    def answer(seen: Seen) -> httpx.Response:
        return reply_json({"infcode": infcode, "inf_refmsgid": "440100202401010800000000000001",
                           "refmsg_time": "20240101080000000", "respond_time": "20240101080000100",
                           "err_msg": None, "output": output, "msgid": seen.envelope.get("msgid")})
    return answer


def reject(err_msg: str, *, infcode: Any = -1, status: int = 200) -> Reply:
    return lambda seen: reply_json({"infcode": infcode, "err_msg": err_msg, "output": None}, status)


def raw(status: int, content: bytes = b"", content_type: str = "text/plain") -> Reply:
    return lambda seen: httpx.Response(status, content=content, headers={"Content-Type": content_type})


def fail(exc_type: type[Exception]) -> Reply:
    return lambda seen: exc_type("stand-in failure")




class FakeTime:
    """A clock the msgid tests move by hand; sleeping advances it."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    async def asleep(self, seconds: float) -> None:
        self.t += seconds


def _allocate_in_child(url: str, code: str, count: int, slots: int, queue: Any) -> None:
    from yibao.core.db import make_engine
    from yibao.envelope.msgid import MsgidAllocator

    engine = make_engine(url)
    try:
        allocator = MsgidAllocator(engine, code, slots=slots)
        ids = [allocator.allocate_sync() for _ in range(count)]
        allocator.close_sync()
        queue.put(("ok", ids))
    except BaseException as exc:  # report, never hang the parent
        queue.put(("error", repr(exc)))
    finally:
        engine.dispose()


def allocate_in_processes(url: str, *, processes: int, per_process: int, slots: int,
                          code: str = "H44010600001") -> list[str]:
    """msgids allocated by ``processes`` OS processes sharing the database at ``url`` (already migrated)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_allocate_in_child, args=(url, code, per_process, slots, queue))
                for _ in range(processes)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
    errors = [detail for kind, detail in results if kind == "error"]
    assert not errors, errors
    return [msgid for _, ids in results for msgid in ids]
