"""The download streams (GYD001, GYD006, GYD101, GYD103, GYD004, GYD401-GYD404, GYD003, GYD005, GYD009), each a
chain of its own, polled on the configured schedule (default every 30 minutes):

1. **GYD008** 未反馈下载结果信息查询 first, so a download is never refused for missing confirmations: a delivery
   the platform still waits a confirmation for is confirmed when it is stored here, or asked again with **GYR005**
   接口重复下载申请 when it was lost here (a restored database, a state from before);
2. the download itself, at most ``page_size`` (500) records a call: every record published on its Kafka topic for
   HIS — *stored* — in the unit of work that records the answer, and only then
3. **GYU008** 信息下载结果反馈 with the ids of that delivery (at most 500), before the next call;
4. what follows a record: an admission's fee details (**GYD102**, confirmed too), an application's attachments
   (**GYD054**);
5. again while the platform says there is more; then the poll ends (the download lag restarts) until the next one.

A lost answer of a download, a confirmation or a re-download request is looked up with GYD053 like any upload: the
platform gives the original answer back (the delivered records), and it is stored and confirmed as if it had
arrived.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Change, Effects, Refusal, Reply
from yibao.core.results import stable_id
from yibao.workinjury_sync import metrics
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.results import emit_record, observe_upload
from yibao.workinjury_sync.state import Delivery, FollowUp, StreamState, WorkInjuryState
from yibao.workinjury_sync.steps.common import lookup
from yibao.workinjury_sync.streams import FOLLOW_UPS

__all__ = ["handled", "fetch_details", "check_call", "fetch_call", "confirm_call", "redownload_call", "follow_call", "start_poll",
           "end_poll", "MAX_UNCONFIRMED_REFUSALS"]

#: a poll gives up after this many "confirmations missing" refusals in a row (GYD008 showed nothing of ours)
MAX_UNCONFIRMED_REFUSALS = 2
#: admissions whose new details are fetched at every poll (the oldest are dropped beyond this)
MAX_OPEN_ADMISSIONS = 2000


def fetch_details(stream: StreamState, org: str, ipt: str) -> None:
    """Queue a GYD102 of the admission's new details (once: not while one is queued)."""
    if any(f.infno == "GYD102" and f.org_code == org and f.ipt_no == ipt for f in stream.follow_ups):
        return
    stream.follow_no += 1
    stream.follow_ups.append(FollowUp(infno="GYD102", org_code=org, ipt_no=ipt, no=stream.follow_no))


def handled(infno: str) -> set[str]:
    """The download transactions whose deliveries a stream confirms: its own, and the follow-ups it fetches."""
    follow = FOLLOW_UPS.get(infno)
    return {infno} | ({follow} if follow == "GYD102" else set())


def _stream(s: WorkInjuryState) -> StreamState:
    assert s.stream is not None
    return s.stream


def _rows(output: dict[str, Any], node: str) -> list[dict[str, Any]]:
    value = output.get(node)
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _ids(row: dict[str, Any]) -> list[str]:
    return [str(i.get("record_id")) for i in _rows(row, "ids") if i.get("record_id")]


def start_poll() -> Change[WorkInjuryState]:
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        st = _stream(s)
        if st.phase == "idle":
            st.phase, st.cycle_started_at, st.last_refusal = "check", fx.now, None
            st.confirm_refusals, st.unconfirmed_refusals = {}, 0
        st.first_started_at = st.first_started_at or fx.now

    return Change("start a poll", apply)


def end_poll(cfg: ChainConfig) -> Change[WorkInjuryState]:
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        st = _stream(s)
        if st.phase == "done" and not st.pending and not st.lost and not st.follow_ups:
            st.phase, st.last_cycle_at, st.next_poll_at = "idle", fx.now, fx.now + cfg.poll_interval

    return Change("end the poll", apply)


def check_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    """GYD008: deliveries still waiting for GYU008 — ours (stored: confirm) or lost (GYR005)."""
    st = _stream(state)
    mine = handled(st.infno)

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        stream = _stream(s)
        if stream.phase != "check":
            return
        stream.first_started_at = stream.first_started_at or fx.now
        stream.cycle_started_at = stream.cycle_started_at or fx.now
        for org, ipt in stream.open_admissions:  # the details added since the last poll
            fetch_details(stream, org, ipt)
        for row in _rows(reply.output, "unfb_list"):
            trans_code, trans_no = str(row.get("trans_code")), str(row.get("trans_no"))
            if trans_code not in mine or any(d.trans_no == trans_no for d in stream.pending + stream.lost):
                continue
            held = stream.holds(trans_no)
            ids = _ids(row)
            if stream.confirm_refusals.get(trans_no, 0) >= MAX_UNCONFIRMED_REFUSALS:
                continue  # refused again and again: left for the next poll (last_refusal says why)
            if held is not None:  # stored here before: its confirmation was what went missing
                stream.pending.append(Delivery(infno=trans_code, trans_no=trans_no,
                                               ids=[i for i in ids if i in held.ids] or held.ids, at=held.at))
            else:  # delivered but not stored here: ask for it again
                stream.lost.append(Delivery(infno=trans_code, trans_no=trans_no, ids=ids, at=fx.now))
        stream.phase = "fetch"

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        stream = _stream(s)
        if stream.phase == "check":  # a query refused: nothing to confirm is known; the download says the rest
            stream.phase, stream.last_refusal = "fetch", f"GYD008: {refusal.text}"

    return Call(f"GYD008:{st.infno}:c{st.fetches}", "GYD008",
                {"query": {"org_code": cfg.org_code}}, on_ok=on_ok, on_refused=on_refused)


def _store(cfg: ChainConfig, s: WorkInjuryState, fx: Effects, infno: str, trans_no: str,
           records: list[dict[str, Any]]) -> None:
    """Publish the delivered records (in this unit of work: stored before anything is confirmed) and queue their
    confirmation and what follows them."""
    stream = _stream(s)
    if not records:
        return
    ids = []
    for record in records:
        emit_record(fx, infno, trans_no, record)
        ids.append(str(record.get("record_id")))
    delivery = Delivery(infno=infno, trans_no=trans_no, ids=ids, at=fx.now)
    stream.pending.append(delivery)
    stream.keep(delivery)
    stream.records += len(records)
    fx.after_commit(lambda: metrics.DOWNLOADED.labels(infno).inc(len(records)))
    follow = FOLLOW_UPS.get(infno)
    if follow == "GYD102":
        for record in records:
            if record.get("org_code") and record.get("ipt_no"):
                org, ipt = str(record["org_code"]), str(record["ipt_no"])
                if [org, ipt] not in stream.open_admissions:
                    stream.open_admissions = stream.open_admissions[-(MAX_OPEN_ADMISSIONS - 1):] + [[org, ipt]]
                fetch_details(stream, org, ipt)
    elif follow == "GYD054":
        for record in records:
            for atta in _rows(record, "atta_list"):
                if atta.get("atta_id"):
                    stream.follow_no += 1
                    stream.follow_ups.append(FollowUp(infno="GYD054", atta_id=str(atta["atta_id"]),
                                                      no=stream.follow_no))


def _refused_download(cfg: ChainConfig, st: StreamState, refusal: Refusal, infno: str, fx: Effects) -> None:
    fx.after_commit(lambda: metrics.DOWNLOAD_REFUSALS.labels(infno).inc())
    st.last_refusal = f"{infno}: {refusal.text}"
    if cfg.catalog.says("unconfirmed_downloads", refusal.text):
        st.unconfirmed_refusals += 1
        st.phase = "check" if st.unconfirmed_refusals <= MAX_UNCONFIRMED_REFUSALS else "done"
    else:
        st.phase = "done"


def fetch_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    """The stream's download: ≤ page_size records, stored, then confirmed."""
    st = _stream(state)
    infno, no = st.infno, st.fetches

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        stream = _stream(s)
        if stream.fetches != no or stream.phase != "fetch":
            return
        stream.fetches += 1
        records = _rows(reply.output, "records")
        _store(cfg, s, fx, infno, reply.msgid, records)
        more = str(reply.output.get("more") or "0") == "1" or len(records) >= cfg.page_size
        stream.phase = "fetch" if more and records else "done"
        stream.unconfirmed_refusals = 0

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        stream = _stream(s)
        if stream.fetches != no:
            return
        stream.fetches += 1
        _refused_download(cfg, stream, refusal, infno, fx)

    body = {"query": {"org_code": cfg.org_code, "admdvs": cfg.admdvs, "page_size": cfg.page_size}}
    return Call(f"{infno}:f{no}", infno, body, on_ok=on_ok, on_refused=on_refused, lookup=lookup(infno))


def confirm_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    """GYU008 for the first stored delivery still unconfirmed."""
    st = _stream(state)
    delivery = st.pending[0]
    trans_no, ids, infno = delivery.trans_no, list(delivery.ids), delivery.infno

    def drop(s: WorkInjuryState) -> Delivery | None:
        stream = _stream(s)
        found = next((d for d in stream.pending if d.trans_no == trans_no), None)
        if found is not None:
            stream.pending.remove(found)
        return found

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        found = drop(s)
        if found is None:
            return
        stream = _stream(s)
        stream.confirmed += len(ids)
        observe_upload(fx, "GYU008", found.at, cfg.deadline_s("GYU008"))
        fx.after_commit(lambda: metrics.CONFIRMED.labels(infno).inc(len(ids)))

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        if drop(s) is None:
            return
        stream = _stream(s)
        stream.last_refusal = f"GYU008 of {infno} {trans_no}: {refusal.text}"
        stream.confirm_refusals[trans_no] = stream.confirm_refusals.get(trans_no, 0) + 1
        stream.phase = "check"  # what the platform still waits for, GYD008 tells

    body = {"trans_code": infno, "trans_no": trans_no, "fb_list": [{"record_id": i} for i in ids]}
    return Call(f"GYU008:{stable_id(trans_no)[:16]}", "GYU008", body, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup("GYU008"))


def redownload_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    """GYR005 for a delivery the platform made that is not stored here: its records are offered again."""
    st = _stream(state)
    delivery = st.lost[0]
    trans_no, infno = delivery.trans_no, delivery.infno

    def drop(s: WorkInjuryState) -> bool:
        stream = _stream(s)
        found = next((d for d in stream.lost if d.trans_no == trans_no), None)
        if found is not None:
            stream.lost.remove(found)
        return found is not None

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        if not drop(s):
            return
        stream = _stream(s)
        stream.redownloads += 1
        if stream.phase in ("idle", "done"):
            stream.phase = "fetch"
        fx.after_commit(lambda: metrics.REDOWNLOADS.labels(infno).inc())

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        if drop(s):
            _stream(s).last_refusal = f"GYR005 of {infno} {trans_no}: {refusal.text}"

    body = {"data": {"trans_code": infno, "trans_no": trans_no, "reason": "本地数据未保存，申请重复下载"}}
    return Call(f"GYR005:{stable_id(trans_no)[:16]}", "GYR005", body, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup("GYR005"))


def follow_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    """The first follow-up: an admission's details (GYD102, page by page, each page confirmed) or an attachment
    (GYD054)."""
    st = _stream(state)
    follow = st.follow_ups[0]
    no, page = follow.no, st.fetches

    def current(s: WorkInjuryState) -> FollowUp | None:
        stream = _stream(s)
        return stream.follow_ups[0] if stream.follow_ups and stream.follow_ups[0].no == no else None

    if follow.infno == "GYD054":
        def on_attachment(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
            if current(s) is None:
                return
            stream = _stream(s)
            stream.follow_ups.pop(0)
            if reply.output.get("atta_id"):
                emit_record(fx, "GYD054", reply.msgid, dict(reply.output))

        def attachment_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
            if current(s) is not None:
                stream = _stream(s)
                stream.follow_ups.pop(0)
                stream.last_refusal = f"GYD054 {follow.atta_id}: {refusal.text}"

        return Call(f"GYD054:{no}", "GYD054", {"data": {"atta_id": follow.atta_id}}, on_ok=on_attachment,
                    on_refused=attachment_refused)

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        if current(s) is None or _stream(s).fetches != page:
            return
        stream = _stream(s)
        stream.fetches += 1
        records = _rows(reply.output, "records")
        _store(cfg, s, fx, "GYD102", reply.msgid, records)
        more = str(reply.output.get("more") or "0") == "1" and bool(records)
        if not more:
            stream.follow_ups = [f for f in stream.follow_ups if f.no != no]

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        if current(s) is None or _stream(s).fetches != page:
            return
        stream = _stream(s)
        stream.fetches += 1
        if cfg.catalog.says("unconfirmed_downloads", refusal.text):
            _refused_download(cfg, stream, refusal, "GYD102", fx)
            return
        stream.follow_ups = [f for f in stream.follow_ups if f.no != no]
        stream.last_refusal = f"GYD102 {follow.ipt_no}: {refusal.text}"
        fx.after_commit(lambda: metrics.DOWNLOAD_REFUSALS.labels("GYD102").inc())

    body = {"query": {"org_code": follow.org_code, "ipt_no": follow.ipt_no, "page_size": cfg.page_size}}
    return Call(f"GYD102:{no}:{page}", "GYD102", body, on_ok=on_ok, on_refused=on_refused, lookup=lookup("GYD102"))
