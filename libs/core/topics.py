"""The topic catalog: every topic yibao-bridge owns, its partitions, its key and its value model.

Keys keep per-visit order: every visit-scoped topic is keyed by the HIS visit id, so all events of one visit land
in one partition and are handled in order, while different visits run in parallel (more partitions and more
workers = more throughput). The CDC source topics are not here: they belong to the Debezium connector and are
named by the HIS mapping file (``yibao topics create`` creates them too when asked, for the demo).

Names may carry a prefix (setting ``YIBAO_TOPIC_PREFIX``) so several hospitals can share one cluster.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["TopicSpec", "CATALOG", "topic", "resolve_model", "HIS_EVENTS", "HIS_RESULTS", "VISITS",
           "SETTLEMENT_FACTS", "DLQ",
           "RECON_COMMANDS", "RECON_RESULTS", "MOBILEPAY_CALLBACKS", "COUNTER_REQUESTS", "COUNTER_RESULTS",
           "WORKINJURY_REQUESTS", "WORKINJURY_RESULTS", "WORKINJURY_FILINGS", "WORKINJURY_VISITS",
           "WORKINJURY_DEDUCTIONS", "WORKINJURY_REVOCATIONS", "WORKINJURY_INSTITUTIONS", "UPLOAD_SOURCES",
           "UPLOAD_RESULTS", "PLATFORM_CATALOG"]


class TopicSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  #: stable identifier used in code
    name: str  #: topic name before the prefix
    partitions: int
    key: str  #: what the key is
    value_model: str  #: "module:attribute" of the pydantic model (or type adapter) of the value
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    retention_ms: int | None = None
    compacted: bool = False

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


HIS_EVENTS = TopicSpec(
    id="his_events", name="yibao.his.events.v1", partitions=6, key="HIS visit id",
    value_model="yibao.hisevents.models:HisEvent", producers=("ingest", "counter"),
    consumers=("registration", "settlement", "mobilepay", "counter"),
    description="canonical HIS events (registration, visit info, charge lines, admission, discharge, "
                "settlement/refund requests, cancellations, 备案) decoded from the HIS's CDC stream (and the "
                "counter's 核酸 batch rows)",
)
HIS_RESULTS = TopicSpec(
    id="his_results", name="yibao.his.results.v1", partitions=6, key="HIS visit id",
    value_model="yibao.core.results:HisResult",
    producers=("registration", "settlement", "reconciliation", "mobilepay", "counter", "upload-scheduler"),
    consumers=("his-writer", "reconciliation", "counter", "upload-scheduler", "HIS"),
    description="what HIS gets back: registered (mdtrt_id), settled (setl_id and the split), cancelled, "
                "rejected with the platform's reason, parked with ours; the platform's feedback on uploaded "
                "prescriptions (rx_reviewed 7102, rx_purchased 7103)",
)
VISITS = TopicSpec(
    id="visits", name="yibao.visits.v1", partitions=6, key="HIS visit id",
    value_model="yibao.core.results:VisitFact", producers=("registration",), consumers=("settlement", "mobilepay"),
    description="facts registration establishes for settlement: person (psn_no, insutype, 参保地), platform "
                "visit id (mdtrt_id), admission and discharge done, visit cancelled",
)
SETTLEMENT_FACTS = TopicSpec(
    id="settlement_facts", name="yibao.settlement.facts.v1", partitions=6, key="HIS visit id",
    value_model="yibao.core.results:SettlementFact", producers=("settlement",), consumers=("registration",),
    description="settlement's answers to registration (details withdrawn, unwind refused) and the facts "
                "rollbacks are guarded with (details on the platform, an active settlement)",
)
DLQ = TopicSpec(
    id="dlq", name="yibao.dlq.v1", partitions=3, key="original key (HIS visit id) or source topic",
    value_model="yibao.core.messaging.deadletter:DeadLetter", producers=("*",), consumers=("ops",),
    description="events a service could not process, with the reason, the source topic/partition/offset and "
                "the original bytes; replayable with `yibao replay` once fixed",
    retention_ms=30 * 24 * 3600 * 1000,
)
RECON_COMMANDS = TopicSpec(
    id="recon_commands", name="yibao.recon.commands.v1", partitions=1, key="run key (date × insutype × clr_type)",
    value_model="yibao.reconciliation.models:ReconCommand", producers=("finance", "scheduler"),
    consumers=("reconciliation",),
    description="requests to run reconciliation (3201/3202) for a period, and approvals of repairs",
)
RECON_RESULTS = TopicSpec(
    id="recon_results", name="yibao.recon.results.v1", partitions=1, key="run id",
    value_model="yibao.reconciliation.models:ReconRunEvent", producers=("reconciliation",),
    consumers=("finance", "ops"),
    description="progress and final state of reconciliation runs",
)
MOBILEPAY_CALLBACKS = TopicSpec(
    id="mobilepay_callbacks", name="yibao.mobilepay.callbacks.v1", partitions=3, key="payOrdId",
    value_model="yibao.mobilepay.models:CallbackReceived", producers=("mobilepay",), consumers=("ops",),
    description="verified settlement-result notifications from the mobile-pay platform",
)

COUNTER_REQUESTS = TopicSpec(
    id="counter_requests", name="yibao.counter.requests.v1", partitions=3, key="correlation id",
    value_model="yibao.counter.models:CounterRequest", producers=("HIS", "kiosk", "WeChat"), consumers=("counter",),
    description="queries of the HIS, kiosks and WeChat for the national platform (1101 1201 1901 2001 3101 5102 "
                "5201-5206 5301-5304), each with a correlation id; the answer comes on yibao.counter.results.v1",
    retention_ms=24 * 3600 * 1000,
)
COUNTER_RESULTS = TopicSpec(
    id="counter_results", name="yibao.counter.results.v1", partitions=3, key="correlation id",
    value_model="yibao.counter.models:CounterAnswer", producers=("counter",), consumers=("HIS", "kiosk", "WeChat"),
    description="answers to the counter's queries, under the request's correlation id: the platform's output, or "
                "the reason (the field a bad request got wrong, the platform's err_msg, a timeout)",
    retention_ms=24 * 3600 * 1000,
)

# --- 工伤保险跨省异地就医 (workinjury-sync) ------------------------------------------------------------------------
WORKINJURY_REQUESTS = TopicSpec(
    id="workinjury_requests", name="yibao.workinjury.requests.v1", partitions=3,
    key="case (stay:<HIS stay id>, application:<apply_no>, filing:<filing_no>, month:<org>:<yyyyMM> …)",
    value_model="yibao.workinjury_sync.models:WorkInjuryRequest", producers=("HIS",), consumers=("workinjury-sync",),
    description="what HIS asks of the work-injury platform: filing audits and filings, admissions, fee lines, "
                "discharge and device settlements, deductions, revocations, month-ends, institutions",
)
WORKINJURY_RESULTS = TopicSpec(
    id="workinjury_results", name="yibao.workinjury.results.v1", partitions=3, key="case",
    value_model="yibao.workinjury_sync.models:WorkInjuryResult", producers=("workinjury-sync",),
    consumers=("HIS",),
    description="what HIS gets back for each work-injury request: uploaded (the platform's numbers), refused (its "
                "words), invalid (our check, the field named), revoked, parked — with its age against the deadline",
)
WORKINJURY_FILINGS = TopicSpec(
    id="workinjury_filings", name="yibao.workinjury.filings.v1", partitions=3, key="apply_no / filing_no",
    value_model="yibao.workinjury_sync.models:DownloadedRecord", producers=("workinjury-sync",),
    consumers=("HIS", "workinjury-sync"),
    description="downloaded filing applications to audit (GYD001, with their attachments GYD054) and filings "
                "(GYD006), each stored before its GYU008 confirmation",
)
WORKINJURY_VISITS = TopicSpec(
    id="workinjury_visits", name="yibao.workinjury.visits.v1", partitions=3, key="住院号 (ipt_no)",
    value_model="yibao.workinjury_sync.models:DownloadedRecord", producers=("workinjury-sync",),
    consumers=("HIS", "workinjury-sync"),
    description="downloaded admissions (GYD101), their fee details (GYD102) and settlements (GYD103); a settlement "
                "ends the admission's detail downloads",
)
WORKINJURY_DEDUCTIONS = TopicSpec(
    id="workinjury_deductions", name="yibao.workinjury.deductions.v1", partitions=3, key="setl_no / org_code",
    value_model="yibao.workinjury_sync.models:DownloadedRecord", producers=("workinjury-sync",), consumers=("HIS",),
    description="downloaded audit deductions (GYD004), month-ends (GYD003) and clearing (GYD005)",
)
WORKINJURY_REVOCATIONS = TopicSpec(
    id="workinjury_revocations", name="yibao.workinjury.revocations.v1", partitions=3,
    key="ipt_no / setl_no / deduct_no",
    value_model="yibao.workinjury_sync.models:DownloadedRecord", producers=("workinjury-sync",),
    consumers=("HIS", "workinjury-sync"),
    description="downloaded revocations of details, admissions, settlements and deductions (GYD401-GYD404); a "
                "detail revocation makes the admission's details download again",
)
WORKINJURY_INSTITUTIONS = TopicSpec(
    id="workinjury_institutions", name="yibao.workinjury.institutions.v1", partitions=1, key="org_code",
    value_model="yibao.workinjury_sync.models:DownloadedRecord", producers=("workinjury-sync",), consumers=("HIS",),
    description="downloaded agreement institutions (GYD009)",
)

UPLOAD_SOURCES = TopicSpec(
    id="upload_sources", name="yibao.uploads.sources.v1", partitions=6, key="upload kind and record key",
    value_model="yibao.upload_scheduler.models:UploadSource", producers=("HIS",), consumers=("upload-scheduler",),
    description="records HIS owes the platforms (结算清单, 病案首页, 进销存, 电子处方, DRG/自费/追溯码/疫情 data …) in the "
                "platforms' field names, a new revision for each fix; the upload scheduler uploads each on time",
)
UPLOAD_RESULTS = TopicSpec(
    id="upload_results", name="yibao.uploads.results.v1", partitions=6, key="upload kind and record key",
    value_model="yibao.upload_scheduler.models:UploadOutcome", producers=("upload-scheduler",),
    consumers=("HIS", "ops"),
    description="where each uploaded record stands: accepted (with the platform's ids), rejected with the "
                "platform's reason, parked with ours, withdrawn",
)
PLATFORM_CATALOG = TopicSpec(
    id="catalog", name="yibao.catalog.v1", partitions=3, key="<infno>:<code> (<infno>:__version__ for versions)",
    value_model="yibao.upload_scheduler.models:CatalogMessage", producers=("upload-scheduler",),
    consumers=("HIS", "services"),
    description="the platform catalogs in force (1301-1319 by version, 1901 dictionaries, 1201): one row per code, "
                "compacted, so a consumer reads one current catalog; a version marker after each update",
    compacted=True,
)

CATALOG: tuple[TopicSpec, ...] = (HIS_EVENTS, HIS_RESULTS, VISITS, SETTLEMENT_FACTS, DLQ, RECON_COMMANDS, RECON_RESULTS,
                                  MOBILEPAY_CALLBACKS, COUNTER_REQUESTS, COUNTER_RESULTS, WORKINJURY_REQUESTS,
                                  WORKINJURY_RESULTS, WORKINJURY_FILINGS, WORKINJURY_VISITS, WORKINJURY_DEDUCTIONS,
                                  WORKINJURY_REVOCATIONS, WORKINJURY_INSTITUTIONS, UPLOAD_SOURCES, UPLOAD_RESULTS,
                                  PLATFORM_CATALOG)
_BY_ID = {spec.id: spec for spec in CATALOG}


def topic(topic_id: str, prefix: str = "") -> str:
    """The full name of a catalog topic."""
    return _BY_ID[topic_id].full_name(prefix)


def resolve_model(spec: TopicSpec) -> Any:
    module, _, attribute = spec.value_model.partition(":")
    return getattr(importlib.import_module(module), attribute)
