"""Does what HIS was told agree with what the platform did? The check behind the demo's last line and the
end-to-end tests: every settlement HIS was told about exists on the platform, every platform settlement was
told to HIS, nothing is settled twice, refunds match cancellations, amounts match.

``results`` are the HisResults published on ``yibao.his.results.v1``; ``settlements`` the simulator's ledger
entries (``GET /admin/settlements``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from yibao.core.results import HisResult

__all__ = ["AuditReport", "audit", "final_results"]

FINAL_KINDS = frozenset({"settled", "refunded", "cancelled", "rejected", "parked", "self_pay"})


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
