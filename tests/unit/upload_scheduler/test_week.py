"""A generated week of every upload through the chain against the simulator, with faults on: every kind is sent,
the planted bad records are rejected or parked with their reason, their fixes go once and are accepted, and the
platforms then hold exactly what the hospital holds — each record once, nothing sent twice except the resends
that lost answers called for."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from yibao.core.db.schema import upload_records
from yibao.fakedata.uploads import EVERY_KIND
from yibao.simulator.uploads import KEYS

from unit.upload_scheduler.harness import Harness, sample

pytestmark = pytest.mark.asyncio

ALL = ["national", "zifei", "yimatong", "drg", "epidemic", "flu"]
#: lanes whose records the national simulator keeps by family (withdrawals and 7104/7105 act on another family)
NATIONAL_KEPT = {"3301": "3301", "3401": "3401", "7101": "7101"}


def statuses(h: Harness) -> dict[tuple[str, str], str]:
    with h.db.connect() as conn:
        rows = conn.execute(select(upload_records.c.kind, upload_records.c.record_key, upload_records.c.status))
        return {(r.kind, r.record_key): r.status for r in rows}


def national_held(h: Harness) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["family"], r["key"]): r for r in h.platform()["records"]}


def platform_form(h: Harness, kind: str, key: str) -> Any:
    """The hospital's record as the platform keeps it: the input its transaction carried (one item of a list)."""
    from yibao.upload_scheduler.store import _record

    spec = h.config.lanes[kind]
    with h.db.connect() as conn:
        row = conn.execute(select(upload_records).where(upload_records.c.kind == kind,
                                                        upload_records.c.record_key == key)).one()
        rec = _record(conn, row)
    infno = spec.change_infno if rec.accepted_revision and rec.accepted_revision > 1 and spec.change_infno else spec.infno
    body = h.catalog.prepare_input(infno, spec.body([rec.payload]))
    return body if spec.shape == "object" else body[spec.node][0]  # type: ignore[index]


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


async def test_a_week_of_every_upload_with_faults_ends_with_the_platforms_holding_what_the_hospital_holds(
        make_h: Any, sim: Any) -> None:
    h: Harness = make_h(targets_enabled=ALL)
    week = sample(sim, days=7, bad_day=1)
    assert week.kinds() == set(EVERY_KIND)
    # faults: answers lost (resent or looked up), a worker dying mid-call, a connection refused
    h.client.fail("4101", "lose")
    h.client.fail("3401", "crash")
    h.client.fail("3301", "lose")
    h.client.fail("4402", "reset", "transport")
    h.client.fail("7101", "lose")
    h.client.fail("DRG.STL", "lose")
    h.client.fail("YMT.UPLOAD", "lose")
    h.client.fail("ZF.TASK", "transport")
    for s in week.settled:
        h.settled(s.setl_id, visit=s.his_visit_id, when=s.setl_time)
    for it in week.items:
        h.item(it)
    await h.run(timeout=120)
    await h.wake()

    after = statuses(h)
    open_ = {k: v for k, v in after.items() if v not in ("accepted", "withdrawn")}
    bad_keys = {(kind, key) for kind, key in week.fixes}
    assert set(open_) == bad_keys, open_
    assert set(open_.values()) <= {"rejected", "parked"}

    for item in week.fixes.values():  # HIS reads the rejections and sends the fixes
        h.item(item)
    await h.run(timeout=120)
    await h.wake()
    final = statuses(h)
    assert {k: v for k, v in final.items() if v not in ("accepted", "withdrawn")} == {}
    assert Counter(final.values())["withdrawn"] == 0 or all(k[0] in ("4101",) for k, v in final.items()
                                                              if v == "withdrawn")

    # each fix was sent once: a rejected record twice (the bad revision and its fix; in a list lane the bad one
    # first went in its batch, then alone), a parked one once (the catalog stopped it), the others once
    with h.db.connect() as conn:
        sends = {(r.kind, r.record_key): r.sends for r in conn.execute(
            select(upload_records.c.kind, upload_records.c.record_key, upload_records.c.sends))}
    for key, n in sends.items():
        spec = h.config.lanes[key[0]]
        if key not in bad_keys:
            assert n <= (2 if spec.shape == "list" else 1), (key, n)
        else:
            assert 1 <= n <= (3 if spec.shape == "list" else 2), (key, n)

    # the national platform: every record once (a resend only where an answer was lost), what was sent last
    plat = h.platform()
    resends = [s for s in plat["submissions"] if s["outcome"] == "resend"]
    assert {s["infno"] for s in resends} <= {"4101", "7101"}
    assert len(resends) == 2
    for s in plat["submissions"]:
        assert s["outcome"] in ("new", "replaced", "resend", "applied"), s
    replaced = Counter((s["infno"], s["key"]) for s in plat["submissions"] if s["outcome"] == "replaced")
    assert all(n == 1 for n in replaced.values())
    held = national_held(h)
    for (kind, key), status in final.items():
        if status != "accepted" or not kind[0].isdigit() or kind in ("3302", "3403", "3507", "7104", "7105"):
            continue
        family = NATIONAL_KEPT.get(kind, kind)
        assert (family, key) in held, (kind, key)
    # … holding exactly the content the hospital's last accepted revision carried
    for (kind, key), status in final.items():
        if status != "accepted" or kind not in KEYS or kind in ("3302", "3403", "7104", "7105", "3507"):
            continue
        family = NATIONAL_KEPT.get(kind, kind)
        held_content = held[(family, key)]["content"]
        assert _canon(held_content) == _canon(platform_form(h, kind, key)), (kind, key)
    withdrawn = {(k[0], k[1]) for k, v in final.items() if v == "accepted" and k[0] in ("3302", "3403")}
    for kind, key in withdrawn:
        assert held[("3301" if kind == "3302" else "3401", key)]["valid"] is False

    # the other targets: every accepted record held once, the DRG page fixed by 冲销 then upload
    targets = h.target_platform()
    for (kind, key), status in final.items():
        if kind[0].isdigit() or status != "accepted":
            continue
        assert key in targets["records"][kind], (kind, key)
        assert targets["records"][kind][key]["valid"]
    kept_twice = [s for s in targets["submissions"] if s["outcome"] == "resend"]
    assert kept_twice == []
