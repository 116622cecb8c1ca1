"""Charge lines as the HIS mapping really produces them (the example Oracle HIS and its generator) go through
2204/2301 and settle: the catalog and the simulator accept every field the mapping fills."""

from __future__ import annotations

import datetime as _dt
import json

from yibao.fakedata.cdc import CdcShape
from yibao.fakedata.his import generate_day
from yibao.hisevents import Ingestor, load_mapping
from yibao.hisevents.models import ChargeLineAdded, ChargeLineReversed, parse_event
from unit.settlement.harness import Harness


def _generated(kind: str) -> dict[str, list]:
    """The generated day's charge lines, by HIS visit."""
    ingestor = Ingestor(load_mapping("example-oracle-his"))
    lines: dict[str, list] = {}
    for m in generate_day(11, day=_dt.date(2026, 3, 1), outpatients=30, inpatients=2,
                          shape=CdcShape(decimal_mode="string")):
        if m.expect_error:
            continue
        for e in ingestor.ingest(m.topic, 0, 0, m.key, m.value).events:
            if isinstance(e, (ChargeLineAdded, ChargeLineReversed)) and e.visit_kind == kind:
                lines.setdefault(e.his_visit_id, []).append(e)
    return lines


def _retarget(event, visit: str):  # type: ignore[no-untyped-def]
    data = json.loads(event.to_json())
    data["his_visit_id"] = visit
    return parse_event(data)


async def test_generated_outpatient_lines_go_up_and_settle(h: Harness) -> None:
    visits = _generated("outpatient")
    lines = next(v for v in visits.values() if any(isinstance(x, ChargeLineReversed) for x in v))
    p = await h.outpatient()
    for line in lines:
        h.his(_retarget(line, p.key))
    total = sum((x.det_item_fee_sumamt for x in lines), start=lines[0].det_item_fee_sumamt * 0)
    h.settle(p, "S1", str(total))
    await h.drain()
    assert [r.kind for r in h.results(p)] == ["presettled", "settled"], [r.reason for r in h.results(p)]


async def test_generated_inpatient_lines_go_up_and_settle(h: Harness) -> None:
    lines = max(_generated("inpatient").values(), key=len)
    p = await h.inpatient()
    for line in lines:
        h.his(_retarget(line, p.key))
    await h.drain()
    await h.discharge(p)
    total = sum((x.det_item_fee_sumamt for x in lines), start=lines[0].det_item_fee_sumamt * 0)
    h.settle(p, "S1", str(total))
    await h.drain()
    assert [r.kind for r in h.results(p)] == ["presettled", "settled"], [r.reason for r in h.results(p)]
