"""reconciliation: the hospital-side ledger, runs and their day locks, 3201 statements, differences and repairs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.schema import Id
from yibao.core.db.types import Money, ShanghaiDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recon_ledger",
        sa.Column("setl_id", sa.String(30), nullable=False),
        sa.Column("his_visit_id", sa.String(80), nullable=False),
        sa.Column("visit_kind", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("producer", sa.String(64), nullable=False),
        sa.Column("mdtrt_id", sa.String(30), nullable=True),
        sa.Column("psn_no", sa.String(30), nullable=True),
        sa.Column("insutype", sa.String(6), nullable=False),
        sa.Column("clr_type", sa.String(6), nullable=False),
        sa.Column("setl_optins", sa.String(6), nullable=False),
        sa.Column("refd_setl_flag", sa.String(1), nullable=False),
        sa.Column("orig_setl_id", sa.String(30), nullable=True),
        sa.Column("msgid", sa.String(40), nullable=True),
        sa.Column("setl_time", ShanghaiDateTime(), nullable=False),
        sa.Column("medfee_sumamt", Money(), nullable=False),
        sa.Column("fund_pay_sumamt", Money(), nullable=False),
        sa.Column("acct_pay", Money(), nullable=False),
        sa.Column("psn_cash_pay", Money(), nullable=False),
        sa.Column("split", sa.Text(), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(96), nullable=False),
        sa.Column("received_at", ShanghaiDateTime(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("setl_id", name="pk_recon_ledger"),
    )
    op.create_index("ix_recon_ledger_key", "recon_ledger", ["clr_type", "setl_optins", "setl_time"])
    op.create_index("ix_recon_ledger_time", "recon_ledger", ["setl_time"])
    op.create_table(
        "recon_runs",
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=True),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("insutype", sa.String(6), nullable=True),
        sa.Column("clr_type", sa.String(6), nullable=True),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("step", sa.String(40), nullable=True),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.Column("heartbeat_at", ShanghaiDateTime(), nullable=False),
        sa.Column("finished_at", ShanghaiDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_recon_runs"),
    )
    op.create_index("ix_recon_runs_period", "recon_runs", ["date_from", "date_to"])
    op.create_table(
        "recon_locks",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("taken_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_recon_locks"),
    )
    op.create_table(
        "recon_statements",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("phase", sa.String(12), nullable=False),
        sa.Column("insutype", sa.String(6), nullable=False),
        sa.Column("clr_type", sa.String(6), nullable=False),
        sa.Column("setl_optins", sa.String(6), nullable=False),
        sa.Column("refd_setl_flag", sa.String(1), nullable=True),
        sa.Column("medfee_sumamt", Money(), nullable=False),
        sa.Column("fund_pay_sumamt", Money(), nullable=False),
        sa.Column("acct_pay", Money(), nullable=False),
        sa.Column("setl_cnt", sa.Integer(), nullable=False),
        sa.Column("stmt_rslt", sa.String(6), nullable=False),
        sa.Column("stmt_rslt_dscr", sa.Text(), nullable=True),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recon_statements"),
    )
    op.create_index("ix_recon_statements_run", "recon_statements", ["run_id", "phase"])
    op.create_table(
        "recon_differences",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("diff_class", sa.String(24), nullable=False),
        sa.Column("row_code", sa.String(6), nullable=False),
        sa.Column("clr_type", sa.String(6), nullable=False),
        sa.Column("setl_optins", sa.String(6), nullable=False),
        sa.Column("setl_id", sa.String(30), nullable=False),
        sa.Column("mdtrt_id", sa.String(30), nullable=True),
        sa.Column("psn_no", sa.String(30), nullable=True),
        sa.Column("msgid", sa.String(40), nullable=True),
        sa.Column("refd_setl_flag", sa.String(1), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("his_visit_id", sa.String(80), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("his_medfee_sumamt", Money(), nullable=True),
        sa.Column("his_fund_pay_sumamt", Money(), nullable=True),
        sa.Column("his_acct_pay", Money(), nullable=True),
        sa.Column("plat_medfee_sumamt", Money(), nullable=True),
        sa.Column("plat_fund_pay_sumamt", Money(), nullable=True),
        sa.Column("plat_acct_pay", Money(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("action", sa.String(24), nullable=True),
        sa.Column("amount", Money(), nullable=True),
        sa.Column("needs_approval", sa.Integer(), nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", ShanghaiDateTime(), nullable=True),
        sa.Column("approval_reason", sa.Text(), nullable=True),
        sa.Column("repair_msgid", sa.String(40), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("first_seen_at", ShanghaiDateTime(), nullable=False),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.Column("resolved_at", ShanghaiDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recon_differences"),
        sa.UniqueConstraint("run_id", "setl_id", name="uq_recon_differences_run_id_setl_id"),
    )
    op.create_index("ix_recon_differences_setl", "recon_differences", ["setl_id"])
    op.create_index("ix_recon_differences_status", "recon_differences", ["status", "diff_class"])


def downgrade() -> None:
    op.drop_index("ix_recon_differences_status", table_name="recon_differences")
    op.drop_index("ix_recon_differences_setl", table_name="recon_differences")
    op.drop_table("recon_differences")
    op.drop_index("ix_recon_statements_run", table_name="recon_statements")
    op.drop_table("recon_statements")
    op.drop_table("recon_locks")
    op.drop_index("ix_recon_runs_period", table_name="recon_runs")
    op.drop_table("recon_runs")
    op.drop_index("ix_recon_ledger_time", table_name="recon_ledger")
    op.drop_index("ix_recon_ledger_key", table_name="recon_ledger")
    op.drop_table("recon_ledger")
