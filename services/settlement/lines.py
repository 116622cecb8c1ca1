"""A visit's HIS charge lines and where each stands on the platform.

Status: ``pending`` (not on the platform), ``uploaded`` (on the platform, unsettled), ``settled`` (in an active
settlement, ``setl_id``), ``withdrawn`` (never to be uploaded again: revoked by 2205/2302, refunded, netted
against its reversal, or cancelled with the visit).

Reversal lines (``init_feedetl_sn``, negative cnt and amount) are handled by :class:`LineBook`:

* whenever the original is not on the platform (pending, or refused), the reversal is **netted** into it
  locally: the reversal is withdrawn, the original goes up with the remaining quantity (or is withdrawn too
  when nothing remains) — fewer calls, and the only way for outpatient lines (2204 takes no negative line);
* an inpatient reversal of an uploaded original is uploaded as it is (2301 with init_feedetl_sn);
* an outpatient reversal of an uploaded original needs the round's details revoked (2205) first, then netting;
* a reversal of a settled original waits for that settlement's refund.

Lines keep HIS order with the settlement requests: a line HIS charged (``occurred_at``) after an open settlement
request is the next settlement's and waits (``LineBook(until=...)``), since the platform settles every unsettled
line of a visit at once.

The lines live in their own table (a long stay holds thousands): the settlement state store
(:mod:`yibao.settlement.store`) reads them with the visit and writes back only what changed, in the chain engine's
unit of work. Nothing here touches the database.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from yibao.core import clock, money
from yibao.hisevents.models import ChargeLineAdded, ChargeLineReversed, HisEventBase, parse_event

__all__ = ["FeeLine", "FeeLines", "LineBook", "payload_of"]

ChargeLine = ChargeLineAdded | ChargeLineReversed


@dataclass
class FeeLine:
    visit_key: str
    feedetl_sn: str
    seq: int
    init_feedetl_sn: str | None
    amount: Decimal
    payload: str
    status: str
    upload_msgid: str | None = None
    setl_id: str | None = None
    _event: ChargeLine | None = field(default=None, repr=False, compare=False)
    _occurred_at: _dt.datetime | None = field(default=None, repr=False, compare=False)

    @property
    def is_reversal(self) -> bool:
        return bool(self.init_feedetl_sn)

    @property
    def event(self) -> ChargeLine:
        if self._event is None:
            data = json.loads(self.payload)
            data.pop("_yibao", None)
            parsed = parse_event(data)
            assert isinstance(parsed, (ChargeLineAdded, ChargeLineReversed))
            self._event = parsed
        return self._event

    @property
    def cnt(self) -> Decimal:
        return self.event.cnt

    @property
    def occurred_at(self) -> _dt.datetime:
        """When HIS charged the line (its event's ``occurred_at``): its place in HIS order among the requests."""
        if self._occurred_at is None:
            self._occurred_at = clock.as_shanghai(_dt.datetime.fromisoformat(json.loads(self.payload)["occurred_at"]))
        return self._occurred_at

    def extra(self) -> dict[str, Any]:
        """What this service added to the canonical payload (under ``_yibao``), e.g. the 血透 sheet origin."""
        data = json.loads(self.payload)
        value = data.get("_yibao")
        return value if isinstance(value, dict) else {}


def payload_of(event: HisEventBase, extra: dict[str, Any] | None = None) -> str:
    """A line's stored payload: the canonical event, with what this service added under ``_yibao``."""
    data = json.loads(event.to_json())
    if extra:
        data["_yibao"] = extra
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class FeeLines:
    """A visit's lines, as its state holds them: read by the state store with the visit, changed in memory by the
    chain, and written back — only what changed — by the store in the same transaction."""

    def __init__(self, visit_key: str, lines: Iterable[FeeLine] = ()) -> None:
        self.visit_key = visit_key
        self._lines: dict[str, FeeLine] = {line.feedetl_sn: line for line in sorted(lines, key=lambda x: x.seq)}
        self.added: set[str] = set()
        self.changed: set[str] = set()

    def all(self) -> list[FeeLine]:
        """Every line, in arrival order."""
        return list(self._lines.values())

    def get(self, sn: str) -> FeeLine | None:
        return self._lines.get(sn)

    def __len__(self) -> int:
        return len(self._lines)

    def count(self, status: str) -> int:
        return sum(1 for line in self._lines.values() if line.status == status)

    def _next_seq(self) -> int:
        return max((line.seq for line in self._lines.values()), default=0) + 1

    def _touch(self, sn: str) -> None:
        if sn not in self.added:
            self.changed.add(sn)

    def put(self, sn: str, *, init_feedetl_sn: str | None, amount: Decimal, payload: str) -> None:
        """Take a line as pending (a new line, or one claimed again after it was released)."""
        line = self._lines.get(sn)
        if line is None:
            self._lines[sn] = FeeLine(self.visit_key, sn, self._next_seq(), init_feedetl_sn, money.money(amount),
                                      payload, "pending")
            self.added.add(sn)
            return
        line.init_feedetl_sn, line.amount, line.payload = init_feedetl_sn, money.money(amount), payload
        line.status, line.upload_msgid, line.setl_id = "pending", None, None
        line._event = line._occurred_at = None
        self._touch(sn)

    def store(self, event: ChargeLine, *, frozen: Iterable[str] = (), extra: dict[str, Any] | None = None) -> str:
        """Record a charge line (pending). A line already known is replaced only while it is pending and not part of
        a batch being uploaded; otherwise the HIS must correct it with a reversal line.

        Returns ``added``, ``updated``, ``unchanged`` or ``kept`` (known and no longer changeable)."""
        payload = payload_of(event, extra)
        existing = self._lines.get(event.feedetl_sn)
        init = getattr(event, "init_feedetl_sn", None)
        if existing is None:
            self.put(event.feedetl_sn, init_feedetl_sn=init, amount=event.det_item_fee_sumamt, payload=payload)
            return "added"
        if existing.payload == payload:
            return "unchanged"
        if existing.status != "pending" or event.feedetl_sn in set(frozen):
            return "kept"
        existing.init_feedetl_sn, existing.amount, existing.payload = init, money.money(event.det_item_fee_sumamt), payload
        existing._event = existing._occurred_at = None
        self._touch(event.feedetl_sn)
        return "updated"

    def set_status(self, sns: Iterable[str], status: str, *, upload_msgid: str | None | type[...] = ...,
                   setl_id: str | None | type[...] = ..., only_from: Iterable[str] | None = None) -> int:
        """Move lines to ``status`` (only those now in one of ``only_from``, when given); returns how many."""
        allowed = set(only_from) if only_from is not None else None
        moved = 0
        for sn in sns:
            line = self._lines.get(sn)
            if line is None or (allowed is not None and line.status not in allowed):
                continue
            line.status = status
            if upload_msgid is not ...:
                line.upload_msgid = upload_msgid  # type: ignore[assignment]
            if setl_id is not ...:
                line.setl_id = setl_id  # type: ignore[assignment]
            self._touch(sn)
            moved += 1
        return moved

    def written(self) -> None:
        """The store wrote the changes."""
        self.added.clear()
        self.changed.clear()

    def __deepcopy__(self, memo: dict[int, Any]) -> FeeLines:
        copy = FeeLines(self.visit_key, [dataclasses.replace(line) for line in self._lines.values()])
        copy.added, copy.changed = set(self.added), set(self.changed)
        return copy


class LineBook:
    """One visit's lines as the chain reasons about them (a pure view; nothing here touches the database)."""

    def __init__(self, lines: list[FeeLine], *, merged: dict[str, str] | None = None,
                 refused: dict[str, str] | None = None, frozen: Iterable[str] = (),
                 until: _dt.datetime | None = None) -> None:
        self.lines = lines
        self.by_sn = {line.feedetl_sn: line for line in lines}
        self.merged = dict(merged or {})
        self.refused = dict(refused or {})
        self.frozen = set(frozen)
        #: HIS order: lines charged after an open settlement request wait for it (they are the next settlement's)
        self.until = until

    def in_turn(self, line: FeeLine) -> bool:
        """Whether the line's turn has come: no open settlement request HIS made before it."""
        return self.until is None or line.occurred_at <= self.until

    def later_than(self, at: _dt.datetime) -> list[FeeLine]:
        """Lines on the platform, unsettled, that HIS charged after ``at``."""
        return [line for line in self.on_platform_unsettled() if line.occurred_at > at]

    @property
    def _netted(self) -> set[str]:
        return set(self.merged.values())

    # --- quantities -------------------------------------------------------------------------------------------

    def netted_into(self, sn: str) -> list[FeeLine]:
        return [self.by_sn[r] for r, o in self.merged.items() if o == sn and r in self.by_sn]

    def net(self, line: FeeLine) -> tuple[Decimal, Decimal]:
        """(cnt, amount) of a line once the reversals netted into it are taken off."""
        cnt, amount = line.cnt, line.amount
        for r in self.netted_into(line.feedetl_sn):
            cnt += r.cnt
            amount += r.amount
        return money.count(cnt), money.money(amount)

    def net_amount(self, line: FeeLine) -> Decimal:
        """The amount of :meth:`net` without reading the payload (long stays hold thousands of lines)."""
        if line.feedetl_sn not in self._netted:
            return line.amount
        return money.money(line.amount + sum((r.amount for r in self.netted_into(line.feedetl_sn)), Decimal("0")))

    def with_status(self, *statuses: str) -> list[FeeLine]:
        return [line for line in self.lines if line.status in statuses]

    def on_platform_unsettled(self) -> list[FeeLine]:
        return self.with_status("uploaded")

    def unsettled_total(self) -> Decimal:
        """What the platform holds unsettled for this visit (its 2206/2303 medfee_sumamt)."""
        netted = self._netted
        return money.money(sum((self.net_amount(line) if line.feedetl_sn in netted else line.amount
                                for line in self.on_platform_unsettled()), Decimal("0")))

    def pending(self) -> list[FeeLine]:
        return [line for line in self.with_status("pending") if line.feedetl_sn not in self.frozen]

    def pending_total(self) -> Decimal:
        return money.money(sum((line.amount for line in self.with_status("pending")), Decimal("0")))

    def refused_lines(self) -> list[FeeLine]:
        return [line for line in self.with_status("pending") if line.feedetl_sn in self.refused]

    # --- reversal lines ---------------------------------------------------------------------------------------

    def original_of(self, line: FeeLine) -> FeeLine | None:
        return self.by_sn.get(line.init_feedetl_sn or "")

    def nettable(self) -> list[tuple[FeeLine, FeeLine | None]]:
        """Pending reversals that can be settled locally now: (reversal, original) to net, or (reversal, None)
        when the original is already withdrawn (nothing left to reverse)."""
        out: list[tuple[FeeLine, FeeLine | None]] = []
        for r in self.pending():
            if not r.is_reversal or r.feedetl_sn in self.refused or not self.in_turn(r):
                continue
            o = self.original_of(r)
            if o is None:
                continue  # the original has not arrived yet
            if o.status == "withdrawn":
                out.append((r, None))
            elif o.status == "pending" and o.feedetl_sn not in self.frozen:
                out.append((r, o))
        return out

    def reversals_of_uploaded(self) -> list[FeeLine]:
        """Pending reversals whose original is on the platform, unsettled."""
        return [r for r in self.pending() if r.is_reversal and r.feedetl_sn not in self.refused and self.in_turn(r)
                and (o := self.original_of(r)) is not None and o.status == "uploaded"]

    # --- uploading ----------------------------------------------------------------------------------------------

    def uploadable(self, kind: str) -> list[FeeLine]:
        """Lines that can go to the platform now, in arrival order: pending originals not refused (and not netted to
        nothing), and — inpatient only — reversals of uploaded originals; only lines whose turn has come
        (:meth:`in_turn`)."""
        out = []
        netted = self._netted
        for line in self.pending():
            if line.feedetl_sn in self.refused or not self.in_turn(line):
                continue
            if line.is_reversal:
                o = self.original_of(line)
                if kind == "inpatient" and o is not None and o.status == "uploaded":
                    out.append(line)
                continue
            if line.feedetl_sn in netted and self.net(line)[0] == 0:
                continue
            out.append(line)
        return out
