"""The download streams: which GY D transaction fills which Kafka topic for HIS, what a record is called, which of its
fields keys it — and what a record brings after it (GYD101 → its fee details with GYD102, GYD001 → its attachments
with GYD054). Each stream runs as a chain of its own (key ``download:<infno>``), polled on the schedule of
``YIBAO_WORKINJURY_SYNC_POLL_INTERVAL_S`` (default 30 minutes)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Stream", "STREAMS", "QUEUE_STREAMS", "FOLLOW_UPS", "stream_key", "topic_of"]


@dataclass(frozen=True)
class Stream:
    infno: str
    topic_id: str  #: the catalog topic the records go to
    kind: str  #: DownloadedRecord.kind
    key_field: str  #: the record field keying its Kafka message (never personal data)


STREAMS: dict[str, Stream] = {s.infno: s for s in (
    Stream("GYD001", "workinjury_filings", "filing_application", "apply_no"),
    Stream("GYD006", "workinjury_filings", "filing", "filing_no"),
    Stream("GYD101", "workinjury_visits", "admission", "ipt_no"),
    Stream("GYD102", "workinjury_visits", "fee_detail", "ipt_no"),
    Stream("GYD103", "workinjury_visits", "settlement", "ipt_no"),
    Stream("GYD004", "workinjury_deductions", "deduction", "setl_no"),
    Stream("GYD003", "workinjury_deductions", "month_end", "org_code"),
    Stream("GYD005", "workinjury_deductions", "clearing", "org_code"),
    Stream("GYD401", "workinjury_revocations", "detail_revocation", "ipt_no"),
    Stream("GYD402", "workinjury_revocations", "admission_revocation", "ipt_no"),
    Stream("GYD403", "workinjury_revocations", "settlement_revocation", "setl_no"),
    Stream("GYD404", "workinjury_revocations", "deduction_revocation", "deduct_no"),
    Stream("GYD009", "workinjury_institutions", "institution", "org_code"),
    Stream("GYD054", "workinjury_filings", "attachment", "atta_id"),
)}

#: the streams polled on the schedule (GYD102 and GYD054 follow the records that need them)
QUEUE_STREAMS: tuple[str, ...] = ("GYD001", "GYD006", "GYD101", "GYD103", "GYD004", "GYD401", "GYD402", "GYD403",
                                  "GYD404", "GYD003", "GYD005", "GYD009")

#: a stream whose records bring downloads after them: GYD101 admissions their details (GYD102, confirmed too),
#: GYD001 applications their attachments (GYD054: the 工伤认定书)
FOLLOW_UPS: dict[str, str] = {"GYD101": "GYD102", "GYD001": "GYD054"}


def stream_key(infno: str) -> str:
    return f"download:{infno}"


def topic_of(infno: str) -> str:
    return STREAMS[infno].topic_id
