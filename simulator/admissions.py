"""What the platform counts as an *open admission* — one rule shared by 2401 (never a second one) and 5303 (list
them).

An admission stays open from 2401 until its final settlement: in the ward, and also discharged (2402) but not
yet settled, because the platform still holds the case and a new 2401 would split one stay in two. A 中途结算
(mid_setl_flag 1) keeps it open; cancelling the final settlement (2305) or the discharge (2405) reopens it; 2404
closes it for good (cancelled).
"""

from __future__ import annotations

from .state import Ledger, Settlement, Visit

__all__ = ["OPEN_STATUSES", "final_settlement", "is_open_admission", "open_admissions"]

#: visit statuses that can still be an open admission (``cancelled`` never is)
OPEN_STATUSES = frozenset({"open", "discharged"})


def final_settlement(ledger: Ledger, visit: Visit) -> Settlement | None:
    """The visit's active final settlement (refd_setl_flag 0, mid_setl_flag 0), if any."""
    for entry in ledger.settlements.values():
        if (entry.mdtrt_id == visit.mdtrt_id and entry.refd_setl_flag == "0" and entry.mid_setl_flag == "0"
                and entry.status == "active"):
            return entry
    return None


def is_open_admission(ledger: Ledger, visit: Visit) -> bool:
    return visit.kind == "inpatient" and visit.status in OPEN_STATUSES and final_settlement(ledger, visit) is None


def open_admissions(ledger: Ledger, *, psn_no: str = "", fixmedins_code: str = "") -> list[Visit]:
    """Open admissions, of one person and/or one institution when given, oldest first."""
    found = [
        v for v in ledger.visits.values()
        if (not psn_no or v.psn_no == psn_no) and (not fixmedins_code or v.fixmedins_code == fixmedins_code)
        and is_open_admission(ledger, v)
    ]
    return sorted(found, key=lambda v: (v.begntime, v.mdtrt_id))
