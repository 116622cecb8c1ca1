"""Does what HIS was told agree with what the platform did, and did HIS get an answer to everything it asked? The
checks behind the demo's summary and the end-to-end tests:

* :func:`audit` — every settlement HIS was told about exists on the platform, every platform settlement was told
  to HIS, nothing is settled twice, refunds match cancellations, amounts match. ``results`` are the HisResults
  published on ``yibao.his.results.v1``; ``settlements`` the simulator's ledger entries (``GET /admin/settlements``);
* :func:`his_requests` — the requests a generated HIS day makes (registrations, admissions, settlements, refunds,
  cancellations), read through the ingest mapping as the bridge reads them;
* :class:`Answers` — the HisResults indexed by what they answer: the final answer of each request, and how many
  *different* final answers it got (one, or something was done twice).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from yibao.core.results import HisResult

__all__ = ["AuditReport", "audit", "final_results", "REQUEST_EVENTS", "FINAL_ANSWERS", "SUCCESS_ANSWERS",
           "RequestKey", "his_requests", "Answers"]

FINAL_KINDS = frozenset({"settled", "refunded", "cancelled", "rejected", "parked", "self_pay"})

#: canonical event type → the kind of HIS request it makes
REQUEST_EVENTS = {
    "patient_registered": "registration",
    "admission": "admission",
    "settlement_requested": "settlement",
    "refund_requested": "refund",
    "cancellation": "cancellation",
}
#: request kind → the HisResult kinds that answer it for good
FINAL_ANSWERS = {
    "registration": frozenset({"registered", "self_pay", "rejected", "parked"}),
    "admission": frozenset({"admitted", "self_pay", "rejected", "parked"}),
    "settlement": frozenset({"settled", "rejected", "parked"}),
    "refund": frozenset({"refunded", "rejected", "parked"}),
    "cancellation": frozenset({"cancelled", "rejected", "parked", "self_pay"}),
}
#: request kind → the answers a hospital expects on a valid day
SUCCESS_ANSWERS = {
    "registration": frozenset({"registered", "self_pay"}),
    "admission": frozenset({"admitted", "self_pay"}),
    "settlement": frozenset({"settled"}),
    "refund": frozenset({"refunded"}),
    "cancellation": frozenset({"cancelled"}),
}

#: (HIS visit id, HIS request id); registrations and admissions have no request id of their own
RequestKey = tuple[str, "str | None"]


def his_requests(ingestor: Any, messages: Iterable[Any]) -> dict[str, set[RequestKey]]:
    """The HIS requests of a day of CDC messages (``RawCdcMessage``), by kind. Malformed messages are left out."""
    found: dict[str, set[RequestKey]] = {kind: set() for kind in FINAL_ANSWERS}
    for m in messages:
        if getattr(m, "expect_error", None) or m.value is None:
            continue
        for event in ingestor.ingest(m.topic, 0, 0, m.key, m.value).events:
            kind = REQUEST_EVENTS.get(event.type)
            if kind:
                found[kind].add((event.his_visit_id, getattr(event, "his_request_id", None)))
    return found


class Answers:
    """HisResults indexed by the request they answer. A registration's or admission's answer is registration's
    result without a request id; every other answer names its request (``his_request_id``)."""

    def __init__(self, results: Iterable[HisResult] = ()) -> None:
        self.results: list[HisResult] = []
        self._by_request: dict[tuple[str, str], list[HisResult]] = defaultdict(list)
        self._by_visit: dict[str, list[HisResult]] = defaultdict(list)
        for r in results:
            self.add(r)

    def add(self, result: HisResult) -> None:
        self.results.append(result)
        if result.his_request_id:
            self._by_request[(result.his_visit_id, result.his_request_id)].append(result)
            sheet = (result.detail or {}).get("hemodialysis") if isinstance(result.detail, dict) else None
            asked_at = sheet.get("outpatient_visit_id") if isinstance(sheet, dict) else None
            if asked_at and asked_at != result.his_visit_id:
                # 血透: HIS asked on the outpatient visit; the answer is backfilled to the inpatient account
                self._by_request[(asked_at, result.his_request_id)].append(result)
        elif result.service == "registration":
            self._by_visit[result.his_visit_id].append(result)

    def _candidates(self, kind: str, key: RequestKey) -> list[HisResult]:
        found = self._by_request.get((key[0], key[1]), []) if key[1] is not None else self._by_visit.get(key[0], [])
        return [r for r in found if r.kind in FINAL_ANSWERS[kind]]

    def answer(self, kind: str, key: RequestKey) -> HisResult | None:
        """The request's final answer (the last one published), or None while it has none."""
        found = self._candidates(kind, key)
        return found[-1] if found else None

    def distinct_answers(self, kind: str, key: RequestKey) -> int:
        """How many different final answers (by message id) the request got: 1, or it was answered twice."""
        return len({r.message_id for r in self._candidates(kind, key)})

    def unanswered(self, requests: dict[str, set[RequestKey]]) -> list[tuple[str, RequestKey]]:
        return [(kind, key) for kind, keys in requests.items() for key in sorted(keys, key=str)
                if self.answer(kind, key) is None]

    def unexpected(self, requests: dict[str, set[RequestKey]]) -> list[str]:
        """Every request not answered with success, or answered more than once, in words."""
        out = []
        for kind, keys in requests.items():
            for key in sorted(keys, key=str):
                answer = self.answer(kind, key)
                if answer is None:
                    out.append(f"{kind} {key}: no answer")
                elif answer.kind not in SUCCESS_ANSWERS[kind]:
                    out.append(f"{kind} {key}: {answer.kind} [{answer.reason_code}] {answer.reason}")
                if self.distinct_answers(kind, key) > 1:
                    out.append(f"{kind} {key}: answered {self.distinct_answers(kind, key)} times")
        return out


@dataclass
class AuditReport:
    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.problems


def final_results(results: Iterable[HisResult]) -> dict[tuple[str, str], HisResult]:
    """The last final result per (visit, HIS request)."""
    last: dict[tuple[str, str], HisResult] = {}
    for r in results:
        if r.kind in FINAL_KINDS and r.his_request_id:
            last[(r.his_visit_id, r.his_request_id)] = r
    return last


def audit(results: list[HisResult], settlements: list[dict[str, Any]]) -> AuditReport:
    report = AuditReport()
    platform = {s["setl_id"]: s for s in settlements if s.get("status") != "reversed"}
    settled = {r.setl_id: r for r in results if r.kind == "settled" and r.setl_id}
    refunded = {r.setl_id: r for r in results if r.kind == "refunded" and r.setl_id}
    report.counts.update(r.kind for r in results)

    for setl_id, r in settled.items():
        entry = platform.get(setl_id)
        if entry is None:
            report.problems.append(f"HIS was told settlement {setl_id} (visit {r.his_visit_id}); the platform "
                                   "has no such settlement")
            continue
        if r.split is not None and Decimal(str(entry["amounts"].get("medfee_sumamt", "0"))) != r.split.medfee_sumamt:
            report.problems.append(f"settlement {setl_id}: HIS was told {r.split.medfee_sumamt}, the platform "
                                   f"booked {entry['amounts'].get('medfee_sumamt')}")
    for setl_id, entry in platform.items():
        if entry.get("refd_setl_flag") == "0" and setl_id not in settled:
            report.problems.append(f"the platform settled {setl_id} (mdtrt {entry.get('mdtrt_id')}); HIS was never "
                                   "told (single-sided ledger)")
        if entry.get("refd_setl_flag") == "1" and setl_id not in refunded:
            report.problems.append(f"the platform cancelled {entry.get('orig_setl_id')} as {setl_id}; HIS was "
                                   "never told")
    for setl_id, r in refunded.items():
        if setl_id not in platform:
            report.problems.append(f"HIS was told refund {setl_id}; the platform has no such cancellation")

    active_final: dict[str, list[str]] = defaultdict(list)
    for setl_id, entry in platform.items():
        if entry.get("refd_setl_flag") == "0" and entry.get("status") == "active" \
                and entry.get("mid_setl_flag", "0") == "0":
            active_final[str(entry.get("mdtrt_id"))].append(setl_id)
    for mdtrt_id, ids in active_final.items():
        if len(ids) > 1:
            report.problems.append(f"visit {mdtrt_id} is settled {len(ids)} times on the platform: {ids}")
    return report
