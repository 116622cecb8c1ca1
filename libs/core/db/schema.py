"""The one schema. Tables are grouped by the part of the system that owns them; a service reads and writes
only its own tables (its inbox/outbox rows are keyed by its consumer name). Migrations in
``yibao.core.db.migrations`` create exactly this; a test compares the two on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from yibao.core.db.types import Money, ShanghaiDateTime

__all__ = [
    "metadata",
    "Id",
    "inbox",
    "outbox",
    "ingest_held",
    "parked_work",
    "platform_calls",
    "msgid_slots",
    "signin_sessions",
    "chain_visits",
    "chain_calls",
    "fee_lines",
    "counter_batches",
    "counter_batch_rows",
    "counter_batch_rejects",
    "counter_slips",
    "counter_visits",
    "counter_audit",
    "workinjury_watch",
    "upload_records",
    "catalog_state",
    "catalog_versions",
    "catalog_items",
    "rx_feedback",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

#: surrogate keys: BIGINT on PostgreSQL, INTEGER (the rowid alias, so it autoincrements) on SQLite
Id = BigInteger().with_variant(Integer(), "sqlite")

# --- messaging: exactly-once effects from at-least-once delivery --------------------------------------------

#: idempotent consumers: a row per (consumer, event id) handled, written in the same transaction as the effect
inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("event_id", String(96), primary_key=True),
    Column("received_at", ShanghaiDateTime(), nullable=False),
    Index("ix_inbox_received_at", "received_at"),
)

#: transactional outbox: messages written with the state change, published afterwards by the relay
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("producer", String(64), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("msg_key", String(200), nullable=True),
    Column("payload", Text, nullable=False),
    Column("headers", Text, nullable=True),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("published_at", ShanghaiDateTime(), nullable=True),
    # the broker refused the row for good: parked in parked_work (published_at is set too, so no relay retries it)
    Column("parked_at", ShanghaiDateTime(), nullable=True),
    Index("ix_outbox_pending", "producer", "published_at", "id"),
)

#: ingest: canonical events held back until the HIS changes committed before them on other tables are handed on
#: (yibao.ingest.ordering); moved to the outbox in commit order (order_key), in the transaction that releases them
ingest_held = Table(
    "ingest_held",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("producer", String(64), nullable=False),
    Column("order_key", String(400), nullable=False),
    Column("source_topic", String(249), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("topic", String(249), nullable=False),
    Column("msg_key", String(200), nullable=True),
    Column("payload", Text, nullable=False),
    Column("headers", Text, nullable=True),
    Column("held_at", ShanghaiDateTime(), nullable=False),
    Index("ix_ingest_held_producer", "producer", "id"),
)

#: work a service could not do and will not retry by itself; replayed by `yibao replay` once fixed
parked_work = Table(
    "parked_work",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service", String(64), nullable=False),
    Column("reason_code", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("source_topic", String(249), nullable=True),
    Column("source_partition", Integer, nullable=True),
    Column("source_offset", BigInteger, nullable=True),
    Column("msg_key", String(200), nullable=True),
    Column("payload", Text, nullable=True),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("replayed_at", ShanghaiDateTime(), nullable=True),
    Index("ix_parked_work_open", "service", "replayed_at"),
)

# --- platform calls (libs/envelope) --------------------------------------------------------------------------

#: every call to a platform: what was sent (masked), when, how long, how it ended. Reconciliation reads it.
platform_calls = Table(
    "platform_calls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service", String(64), nullable=False),
    #: the deployment (its topic prefix; "" the default one) whose connection wrote the row: two deployments sharing
    #: a database read only their own calls (reconciliation, 3201/3202)
    Column("deployment", String(64), nullable=False, server_default=""),
    Column("platform", String(20), nullable=False),  # national | mobilepay | workinjury
    Column("infno", String(10), nullable=False),
    Column("msgid", String(40), nullable=True),
    Column("visit_key", String(80), nullable=True),
    Column("started_at", ShanghaiDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=True),
    Column("outcome", String(20), nullable=False),  # success | rejected | invalid | transport | unknown
    Column("infcode", String(10), nullable=True),
    Column("err_msg", Text, nullable=True),
    Column("input_masked", Text, nullable=True),
    Column("output_masked", Text, nullable=True),
    Column("omsgid", String(40), nullable=True),
    Column("oinfno", String(10), nullable=True),
    UniqueConstraint("msgid"),
    Index("ix_platform_calls_visit", "visit_key"),
    Index("ix_platform_calls_started", "started_at"),
)

#: msgid serial ranges leased by processes of one institution, so msgids are unique across replicas
msgid_slots = Table(
    "msgid_slots",
    metadata,
    Column("fixmedins_code", String(12), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("owner", String(120), nullable=False),
    Column("leased_at", ShanghaiDateTime(), nullable=False),
    Column("heartbeat_at", ShanghaiDateTime(), nullable=False),
)

#: 9001 签到 sessions shared by a service's workers (one sign_no per institution and operator)
signin_sessions = Table(
    "signin_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("fixmedins_code", String(12), nullable=False),
    Column("opter", String(30), nullable=False),
    Column("sign_no", String(30), nullable=False),
    Column("signed_in_at", ShanghaiDateTime(), nullable=False),
    Column("expires_at", ShanghaiDateTime(), nullable=False),
    Column("signed_out_at", ShanghaiDateTime(), nullable=True),
    Column("owner", String(120), nullable=True),
    Index("ix_signin_sessions_current", "fixmedins_code", "opter", "signed_out_at"),
)

# --- chains (services/registration, services/settlement; rows namespaced by service) ------------------------

#: one row per (service, HIS visit): the visit's chain state (JSON), its scheduling and its lease
chain_visits = Table(
    "chain_visits",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("visit_key", String(80), primary_key=True),
    Column("visit_kind", String(12), nullable=False),
    Column("status", String(16), nullable=False),  # ready | idle | waiting | parked
    Column("state", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("next_attempt_at", ShanghaiDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("lease_owner", String(120), nullable=True),
    Column("lease_until", ShanghaiDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    # the step call (chain_calls.id) journalled and not known to have ended: resolved before anything else
    Column("open_call", Id, nullable=True),
    Index("ix_chain_visits_due", "service", "status", "next_attempt_at"),
)

#: the journal of a chain's platform calls: written *before* sending (so a crash leaves a trace), then the outcome
chain_calls = Table(
    "chain_calls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service", String(64), nullable=False),
    Column("visit_key", String(80), nullable=False),
    Column("step", String(64), nullable=False),
    Column("infno", String(10), nullable=False),
    Column("msgid", String(40), nullable=True),
    Column("purpose", String(16), nullable=False),  # step | query | reversal
    Column("status", String(20), nullable=False),  # sent | ok | rejected | invalid | not_sent | unknown | resolved
    Column("resolution", String(40), nullable=True),  # how an unknown outcome was resolved
    Column("err_msg", Text, nullable=True),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Index("ix_chain_calls_visit", "service", "visit_key", "status"),
)

#: settlement: the HIS charge lines of a visit and where they stand on the platform
fee_lines = Table(
    "fee_lines",
    metadata,
    Column("scope", String(64), primary_key=True),  # the deployment's scoped service name (as chain_visits.service)
    Column("visit_key", String(80), primary_key=True),
    Column("feedetl_sn", String(30), primary_key=True),
    Column("seq", Integer, nullable=False),  # arrival order within the visit
    Column("init_feedetl_sn", String(30), nullable=True),
    Column("amount", Money(), nullable=False),
    Column("payload", Text, nullable=False),  # the canonical charge-line event (JSON)
    Column("status", String(16), nullable=False),  # pending | uploaded | settled | withdrawn
    Column("upload_msgid", String(40), nullable=True),
    Column("setl_id", String(30), nullable=True),
    Column("received_at", ShanghaiDateTime(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Index("ix_fee_lines_status", "scope", "visit_key", "status"),
)

# --- reconciliation (services/reconciliation) ---------------------------------------------------------------

from sqlalchemy import Date  # noqa: E402  (kept inside this block: the block is the reconciliation's append)

__all__ += ["recon_ledger", "recon_runs", "recon_locks", "recon_statements", "recon_differences"]

#: the hospital-side ledger: every settlement and cancellation HIS was told about (HisResult settled/refunded),
#: as 3201/3202 compare it with the platform's. A cancellation is its own entry (refd_setl_flag 1, negative).
recon_ledger = Table(
    "recon_ledger",
    metadata,
    Column("setl_id", String(30), primary_key=True),
    Column("his_visit_id", String(80), nullable=False),
    Column("visit_kind", String(12), nullable=False),
    Column("channel", String(20), nullable=False),  # national | mobilepay | …
    Column("producer", String(64), nullable=False),
    Column("mdtrt_id", String(30), nullable=True),
    Column("psn_no", String(30), nullable=True),
    Column("insutype", String(6), nullable=False),
    Column("clr_type", String(6), nullable=False),
    Column("setl_optins", String(6), nullable=False),
    Column("refd_setl_flag", String(1), nullable=False),
    Column("orig_setl_id", String(30), nullable=True),
    Column("msgid", String(40), nullable=True),
    Column("setl_time", ShanghaiDateTime(), nullable=False),
    Column("medfee_sumamt", Money(), nullable=False),
    Column("fund_pay_sumamt", Money(), nullable=False),
    Column("acct_pay", Money(), nullable=False),
    Column("psn_cash_pay", Money(), nullable=False),
    Column("split", Text, nullable=True),  # the whole split (JSON), to write a repair back to HIS
    Column("status", String(12), nullable=False),  # booked | voided
    Column("source", String(16), nullable=False),  # his_result | repair
    Column("message_id", String(96), nullable=False),
    Column("received_at", ShanghaiDateTime(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Index("ix_recon_ledger_key", "clr_type", "setl_optins", "setl_time"),
    Index("ix_recon_ledger_time", "setl_time"),
)

#: reconciliation runs: who asked, for which days and keys, where they stand
recon_runs = Table(
    "recon_runs",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("trigger", String(16), nullable=False),  # schedule | cli | http | command
    Column("requested_by", String(64), nullable=True),
    Column("date_from", Date, nullable=False),
    Column("date_to", Date, nullable=False),
    Column("insutype", String(6), nullable=True),
    Column("clr_type", String(6), nullable=True),
    Column("scope", String(12), nullable=False, server_default="national"),  # national (3201/3202) | mobile
    Column("state", String(24), nullable=False),
    Column("step", String(40), nullable=True),
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("message", Text, nullable=True),
    Column("summary", Text, nullable=True),  # JSON
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Column("heartbeat_at", ShanghaiDateTime(), nullable=False),
    Column("finished_at", ShanghaiDateTime(), nullable=True),
    Index("ix_recon_runs_period", "date_from", "date_to"),
)

#: one row per day a run (or an approval) is working on: overlapping runs are refused by the primary key
recon_locks = Table(
    "recon_locks",
    metadata,
    Column("day", Date, primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("taken_at", ShanghaiDateTime(), nullable=False),
)

#: 3201 totals sent and the platform's verdict, per run, phase (initial | recheck) and key
recon_statements = Table(
    "recon_statements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("phase", String(12), nullable=False),
    Column("insutype", String(6), nullable=False),
    Column("clr_type", String(6), nullable=False),
    Column("setl_optins", String(6), nullable=False),
    Column("refd_setl_flag", String(1), nullable=True),
    Column("medfee_sumamt", Money(), nullable=False),
    Column("fund_pay_sumamt", Money(), nullable=False),
    Column("acct_pay", Money(), nullable=False),
    Column("setl_cnt", Integer, nullable=False),
    Column("stmt_rslt", String(6), nullable=False),
    Column("stmt_rslt_dscr", Text, nullable=True),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Index("ix_recon_statements_run", "run_id", "phase"),
)

#: every difference a 3202 found, its class, its repair and the approval of that repair (who, when, why)
recon_differences = Table(
    "recon_differences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("diff_class", String(32), nullable=False),
    Column("row_code", String(6), nullable=False),
    Column("clr_type", String(6), nullable=False),
    Column("setl_optins", String(6), nullable=False),
    Column("setl_id", String(30), nullable=False),
    Column("mdtrt_id", String(30), nullable=True),
    Column("psn_no", String(30), nullable=True),
    Column("msgid", String(40), nullable=True),
    Column("refd_setl_flag", String(1), nullable=True),
    Column("channel", String(20), nullable=False),
    Column("his_visit_id", String(80), nullable=True),
    Column("memo", Text, nullable=True),
    Column("his_medfee_sumamt", Money(), nullable=True),
    Column("his_fund_pay_sumamt", Money(), nullable=True),
    Column("his_acct_pay", Money(), nullable=True),
    Column("plat_medfee_sumamt", Money(), nullable=True),
    Column("plat_fund_pay_sumamt", Money(), nullable=True),
    Column("plat_acct_pay", Money(), nullable=True),
    Column("status", String(20), nullable=False),
    Column("action", String(24), nullable=True),
    Column("amount", Money(), nullable=True),
    Column("needs_approval", Integer, nullable=False),
    Column("approved_by", String(64), nullable=True),
    Column("approved_at", ShanghaiDateTime(), nullable=True),
    Column("approval_reason", Text, nullable=True),
    Column("repair_msgid", String(40), nullable=True),
    Column("outcome", Text, nullable=True),
    Column("first_seen_at", ShanghaiDateTime(), nullable=False),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Column("resolved_at", ShanghaiDateTime(), nullable=True),
    UniqueConstraint("run_id", "setl_id"),
    Index("ix_recon_differences_setl", "setl_id"),
    Index("ix_recon_differences_status", "status", "diff_class"),
)

# --- finance: audit, signed commands, console sessions (services/reconciliation) ----------------------------

__all__ += ["recon_audit", "recon_command_nonces", "recon_sessions"]

def _audit_columns(*subject: Column) -> list[Column]:
    """The columns of an audit table of people logged in through :mod:`yibao.core.access` (filled by its
    ``audit_values``): when, who, in which role, how, what, then what it was done to (``subject``, the service's
    own columns), how it ended, from where and why."""
    return [
        Column("at", ShanghaiDateTime(), nullable=False),
        Column("actor", String(128), nullable=False),  # the user ("-" when nobody could be identified)
        Column("role", String(64), nullable=False),  # the role that allowed the action, or the roles held
        Column("method", String(16), nullable=False),  # oidc | static | session | command | cli | schedule | none
        Column("action", String(32), nullable=False),  # login, login_failed, trigger, approve, batch_import, …
        *subject,
        Column("outcome", String(16), nullable=False),  # ok | denied | refused | failed
        Column("status", Integer, nullable=True),  # the HTTP status answered, when over HTTP
        Column("source", String(200), nullable=False),  # client address, or topic/partition/offset of a command
        Column("detail", Text, nullable=True),  # the reason (never a token, never personal data)
    ]


#: every action finance (or anyone) takes or tries on reconciliation: who, in which role, what, on which run and
#: differences, when (Asia/Shanghai), from where, and how it ended. Rows are only ever added.
recon_audit = Table(
    "recon_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_audit_columns(Column("run_id", String(40), nullable=True),
                    Column("difference_ids", Text, nullable=True)),  # JSON list
    Index("ix_recon_audit_at", "at"),
    Index("ix_recon_audit_run", "run_id"),
)

#: nonces of signed commands: a nonce acts once; a redelivery of the same command is a duplicate
recon_command_nonces = Table(
    "recon_command_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("command_id", String(80), nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256 of the signed bytes
    Column("state", String(12), nullable=False),  # accepted | done
    Column("seen_at", ShanghaiDateTime(), nullable=False),
    Index("ix_recon_command_nonces_seen", "seen_at"),
)

#: logins to the finance console: the cookie holds a random token, the table its SHA-256
recon_sessions = Table(
    "recon_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("actor", String(128), nullable=False),
    Column("roles", String(64), nullable=False),  # comma-separated
    Column("method", String(16), nullable=False),  # how they logged in: static | oidc
    Column("csrf", String(64), nullable=False),
    Column("source", String(200), nullable=False),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("last_seen_at", ShanghaiDateTime(), nullable=False),
    Column("expires_at", ShanghaiDateTime(), nullable=False),
    Index("ix_recon_sessions_expires", "expires_at"),
)

# --- mobile pay (services/mobilepay) ------------------------------------------------------------------------

__all__ += ["mobilepay_orders", "mobilepay_visits", "mobilepay_audit"]

#: every mobile-pay order, indexed for what is asked without loading a visit: the channel's order (one platform
#: order per channel order id), the platform's payOrdId (callbacks), the order's visit. Written with the visit's
#: chain state, in the engine's transaction; the state holds the truth, this row follows it.
mobilepay_orders = Table(
    "mobilepay_orders",
    metadata,
    Column("scope", String(64), primary_key=True),  # the deployment's scoped service name (as chain_visits.service)
    Column("order_id", String(40), primary_key=True),
    Column("his_visit_id", String(80), nullable=False),
    Column("his_patient_id", String(64), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("channel_order_id", String(64), nullable=False),
    Column("version", String(6), nullable=False),  # 2.0 | 1.0
    Column("phase", String(20), nullable=False),
    Column("pay_ord_id", String(40), nullable=True),
    Column("med_org_ord", String(40), nullable=True),
    Column("total", Money(), nullable=False),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    UniqueConstraint("scope", "channel", "channel_order_id", name="uq_mobilepay_orders_channel_order"),
    Index("ix_mobilepay_orders_pay_ord_id", "scope", "pay_ord_id"),
    Index("ix_mobilepay_orders_visit", "scope", "his_visit_id"),
    Index("ix_mobilepay_orders_phase", "scope", "phase", "updated_at"),
)

#: the visits mobile pay knows, with what a patient may pay now (their pending charge lines), by patient
mobilepay_visits = Table(
    "mobilepay_visits",
    metadata,
    Column("scope", String(64), primary_key=True),  # the deployment's scoped service name (as chain_visits.service)
    Column("his_visit_id", String(80), primary_key=True),
    Column("his_patient_id", String(64), nullable=False),
    Column("pending_lines", Integer, nullable=False),
    Column("pending_total", Money(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Index("ix_mobilepay_visits_patient", "scope", "his_patient_id"),
)

#: every request a channel (or the platform's callback) made of mobile pay: who (the channel, and the operator it
#: names), what, on which order, how it ended. Money-moving requests write theirs in the transaction deciding them.
mobilepay_audit = Table(
    "mobilepay_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("scope", String(64), nullable=False),  # the deployment's scoped service name (as chain_visits.service)
    Column("at", ShanghaiDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),  # the channel ("platform" for callbacks, "-" when unknown)
    Column("operator", String(64), nullable=True),  # the person at the channel (a cashier), when named
    Column("role", String(32), nullable=False),  # the right that allowed the action (pay, refund, read …)
    Column("action", String(32), nullable=False),
    Column("order_id", String(40), nullable=True),
    Column("outcome", String(16), nullable=False),  # ok | refused | denied | failed
    Column("status", Integer, nullable=True),
    Column("source", String(200), nullable=False),
    Column("detail", Text, nullable=True),
    Index("ix_mobilepay_audit_at", "scope", "at"),
    Index("ix_mobilepay_audit_order", "scope", "order_id"),
)

# --- counter: 核酸 batch settlement, settlement slips, the counter's audit ---------------------------------------
# Every row carries the deployment's scope (the scoped service name, as chain_visits.service); personal data
# (names, certnos) sits in the sealed ``payload`` columns only.

#: a 核酸 (nucleic-acid test) Excel file imported by finance or the lab
counter_batches = Table(
    "counter_batches",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("batch_id", String(40), primary_key=True),
    Column("file_sha256", String(64), nullable=False),  # the same file again is the same batch
    Column("file_name", String(200), nullable=False),
    Column("imported_by", String(128), nullable=False),
    Column("imported_at", ShanghaiDateTime(), nullable=False),
    Column("rows_total", Integer, nullable=False),
    Column("rows_bad", Integer, nullable=False),
    UniqueConstraint("scope", "file_sha256", name="uq_counter_batches_file"),
)

#: one tested person of a batch, and where their registration → details → settlement stands
counter_batch_rows = Table(
    "counter_batch_rows",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("row_key", String(64), primary_key=True),  # the person × test date × item: settled once, whatever file
    Column("batch_id", String(40), nullable=False),
    Column("row_no", Integer, nullable=False),  # the Excel row number (1 = the header)
    Column("his_visit_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending | registered | settled | rejected | parked
    Column("reason", Text, nullable=True),
    Column("mdtrt_id", String(64), nullable=True),
    Column("setl_id", String(64), nullable=True),
    Column("medfee_sumamt", Money(), nullable=True),
    Column("fund_pay_sumamt", Money(), nullable=True),
    Column("psn_cash_pay", Money(), nullable=True),
    Column("payload", Text, nullable=False),  # the row as imported (JSON, sealed)
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Index("ix_counter_batch_rows_batch", "scope", "batch_id", "row_no"),
    Index("ix_counter_batch_rows_visit", "scope", "his_visit_id"),
)

#: rows of a file that could not be imported (bad input), with their row number and the reason
counter_batch_rejects = Table(
    "counter_batch_rejects",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("batch_id", String(40), primary_key=True),
    Column("row_no", Integer, primary_key=True),
    Column("reason", Text, nullable=False),
)

#: what a settlement slip (结算单) prints: the settled result and the visit's header, per setl_id
counter_slips = Table(
    "counter_slips",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("setl_id", String(64), primary_key=True),
    Column("his_visit_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # settled | refunded
    Column("payload", Text, nullable=False),  # the HisResult (JSON, sealed)
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Index("ix_counter_slips_visit", "scope", "his_visit_id"),
)

#: the visit facts a slip prints that the settlement result does not carry (name, number, department), from HIS
counter_visits = Table(
    "counter_visits",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("his_visit_id", String(64), primary_key=True),
    Column("payload", Text, nullable=False),  # JSON, sealed
    Column("updated_at", ShanghaiDateTime(), nullable=False),
)

#: every import, export and refused attempt at the counter's money-moving endpoints
counter_audit = Table(
    "counter_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("scope", String(64), nullable=False),
    *_audit_columns(Column("batch_id", String(40), nullable=True)),
    Index("ix_counter_audit_at", "scope", "at"),
)

# --- work injury (services/workinjury-sync) -----------------------------------------------------------------------

#: what the deadline gauges read: per case, the oldest HIS event still waiting for each upload (kind upload), and per
#: download stream the end of its last complete poll (kind download) — written with the case's state, in its unit
workinjury_watch = Table(
    "workinjury_watch",
    metadata,
    Column("scope", String(64), primary_key=True),  # the deployment's scoped service name (as chain_visits.service)
    Column("case_key", String(80), primary_key=True),
    Column("kind", String(10), primary_key=True),  # upload | download
    Column("item", String(10), primary_key=True),  # the transaction (GYU101 …, GYD001 …)
    Column("since", ShanghaiDateTime(), nullable=False),
    Index("ix_workinjury_watch_scope", "scope", "kind", "item"),
)

# --- upload scheduler: data uploads per record, and the platform's catalogs ------------------------------------

#: one record the platforms are owed (a 清单, a 病案首页, a purchase line …) and where it stands, per lane (the chain
#: visit of its target × kind × shard). The payload is sealed at rest (it holds names and certnos).
upload_records = Table(
    "upload_records",
    metadata,
    Column("scope", String(64), primary_key=True),  # the deployment's scoped service name (as chain_visits.service)
    Column("lane", String(80), primary_key=True),  # the chain visit key: <target>:<kind>[:<shard>]
    Column("record_key", String(160), primary_key=True),  # the business key (setl_id, mdtrt_sn, fixmedins_bchno …)
    Column("target", String(24), nullable=False),
    Column("kind", String(40), nullable=False),  # the lane's kind (a national infno, or a target's record kind)
    Column("his_visit_id", String(80), nullable=True),
    Column("insuplc_admdvs", String(6), nullable=True),  # the patient's 参保地: the envelope of a record with psn_no
    Column("revision", Integer, nullable=False),  # bumped by each new content from HIS (a fix)
    Column("status", String(16), nullable=False),  # pending | sent | accepted | rejected | parked | withdrawn
    Column("reason", Text, nullable=True),  # the platform's reason (rejected), ours (parked), what it waits for
    Column("reason_field", String(200), nullable=True),  # the field a local validation named
    Column("payload", Text, nullable=True),  # the record as HIS gave it (JSON, sealed); None: awaiting HIS content
    Column("payload_hash", String(64), nullable=True),
    Column("source_id", String(96), nullable=True),  # the source message of the current revision
    Column("batch_no", Integer, nullable=True),  # the lane's batch the record is in while sent
    Column("msgid", String(40), nullable=True),  # of the call that carried the latest revision
    Column("receipt", Text, nullable=True),  # what the platform answered for it (ids to quote later), JSON
    Column("sent_revision", Integer, nullable=True),
    Column("accepted_revision", Integer, nullable=True),
    Column("sends", Integer, nullable=False),  # calls that carried the record (lost answers resolved included)
    Column("occurred_at", ShanghaiDateTime(), nullable=False),  # the business event the deadline counts from
    Column("due_at", ShanghaiDateTime(), nullable=False),  # when the schedule sends it
    Column("deadline_at", ShanghaiDateTime(), nullable=True),  # by when the platform must have it
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
    Column("sent_at", ShanghaiDateTime(), nullable=True),
    Column("accepted_at", ShanghaiDateTime(), nullable=True),
    # the id the platform named the record by in its answer (7101's hi_rxno): what its feedback (7102/7103) quotes
    Column("platform_key", String(60), nullable=True),
    Index("ix_upload_records_lane_status", "scope", "lane", "status", "due_at"),
    Index("ix_upload_records_open", "scope", "status", "deadline_at"),
    Index("ix_upload_records_visit", "scope", "his_visit_id"),
    Index("ix_upload_records_platform_key", "scope", "kind", "platform_key"),
)

#: the version of each platform catalog in force (1301-1319, 1901 dictionaries, 1201) and who is syncing it
catalog_state = Table(
    "catalog_state",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("infno", String(8), primary_key=True),
    Column("ver", String(60), nullable=True),  # the newest version applied (13xx ver, or updt_time of a paged one)
    Column("rows", BigInteger, nullable=False),  # rows of the catalog in force
    Column("lease_owner", String(120), nullable=True),
    Column("lease_until", ShanghaiDateTime(), nullable=True),
    Column("last_success_at", ShanghaiDateTime(), nullable=True),
    Column("last_attempt_at", ShanghaiDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_at", ShanghaiDateTime(), nullable=False),
)

#: every catalog update applied — or refused (a corrupt file: its name and line), the catalog staying as it was
catalog_versions = Table(
    "catalog_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("scope", String(64), nullable=False),
    Column("infno", String(8), nullable=False),
    Column("ver", String(60), nullable=True),
    Column("prev_ver", String(60), nullable=True),
    Column("rows", BigInteger, nullable=False),
    Column("file_name", String(200), nullable=True),
    Column("status", String(12), nullable=False),  # applied | refused
    Column("error", Text, nullable=True),
    Column("created_at", ShanghaiDateTime(), nullable=False),
    Column("published_at", ShanghaiDateTime(), nullable=True),
    Index("ix_catalog_versions_infno", "scope", "infno", "id"),
)

#: the catalogs' rows in force: one per code, the newest version wins (the row kept as the platform sent it)
catalog_items = Table(
    "catalog_items",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("infno", String(8), primary_key=True),
    Column("code", String(120), primary_key=True),
    Column("ver", String(60), nullable=False),
    Column("rid", String(60), nullable=True),
    Column("vali_flag", String(3), nullable=True),
    Column("row", Text, nullable=False),  # the TXT line (tab-separated) or the JSON row of a paged query
    Column("version_id", BigInteger, nullable=False),  # catalog_versions.id that wrote it
    # no other index: an applied row costs one index entry (the publisher walks the primary key in code order)
    # pages filled to half: an update replacing a row finds room for its new version in the row's own page, a HOT
    # update without any index entry (migration 0018)
    postgresql_with={"fillfactor": 50},
)

#: what the platform told the hospital about a record it uploaded (7102 处方审核结果, 7103 处方购药结果): one row per
#: message the platform posted and the hospital accepted, keyed by the platform's msgid (a repeat is the same event)
rx_feedback = Table(
    "rx_feedback",
    metadata,
    Column("scope", String(64), primary_key=True),  # as upload_records.scope
    Column("msgid", String(40), primary_key=True),  # the platform's message id
    Column("infno", String(8), nullable=False),  # 7102 | 7103
    Column("hi_rxno", String(30), nullable=False),
    Column("lane", String(80), nullable=False),  # the 7101 record it concerns (upload_records lane, record_key)
    Column("record_key", String(160), nullable=False),
    Column("his_visit_id", String(80), nullable=True),
    Column("status", String(24), nullable=False),  # 7102: rx_chk_stas_codg as sent; 7103: purchased
    Column("pharmacy_code", String(50), nullable=True),  # the reviewing (7102) or dispensing (7103) institution
    Column("occurred_at", ShanghaiDateTime(), nullable=False),  # rx_chk_time | setl_time
    Column("received_at", ShanghaiDateTime(), nullable=False),
    Column("fund_pay_sumamt", Money(), nullable=True),  # 7103's settlement, exact
    Column("psn_part_amt", Money(), nullable=True),
    Column("acct_pay", Money(), nullable=True),
    Column("psn_cash_pay", Money(), nullable=True),
    Column("lines", Integer, nullable=True),  # 7103: drugs dispensed (seltdelts)
    Column("payload", Text, nullable=False),  # the input as received (JSON, sealed: pharmacists' names, certnos)
    Column("payload_hash", String(64), nullable=False),
    Index("ix_rx_feedback_record", "scope", "lane", "record_key", "received_at"),
    Index("ix_rx_feedback_hi_rxno", "scope", "hi_rxno"),
)
