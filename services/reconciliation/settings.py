"""Settings of the reconciliation worker (env prefix ``YIBAO_RECONCILIATION_``).

Everything a finance office or a province changes is here: when the daily run fires, which statement keys are
always asked even when the hospital ledger has nothing for them (a platform-only entry can be the only entry of
its key), the per-row result codes of the 3202 result file (they differ between provinces), which repairs need
a finance approval, and where reports are written.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from yibao.core.settings import AccessSettings

__all__ = ["ReconciliationSettings", "DIFFERENCE_CLASSES", "DEFAULT_ROW_CODES"]

#: the difference classes a 3202 result row can be sorted into ("consistent" is not a difference)
DIFFERENCE_CLASSES: tuple[str, ...] = ("platform_only", "his_only", "amount_mismatch", "status_mismatch")
#: the mobile-pay reconciliation's classes (yibao.reconciliation.mobile.MOBILE_CLASSES)
MOBILE_DIFFERENCE_CLASSES: tuple[str, ...] = ("mp_paid_not_in_his", "mp_in_his_not_paid", "mp_amount_mismatch",
                                              "mp_refund_not_in_his", "mp_refund_not_on_platform",
                                              "mp_cash_not_in_his", "mp_cash_mismatch", "mp_wechat_refund_not_in_his",
                                              "mp_wechat_refund_not_on_wechat", "mp_wechat_refund_mismatch",
                                              "mp_refund_only_in_his", "mp_cash_refund_only_in_his")

#: 3202 result-file stmt_rslt codes → class, as the national platform (and the simulator) use them:
#: 0 一致, 1 平台有医院无, 2 医院有平台无, 3 金额不一致, 4 状态不一致. Provinces that number them differently
#: override the whole table (JSON object) in YIBAO_RECONCILIATION_ROW_CODES.
DEFAULT_ROW_CODES: dict[str, str] = {
    "0": "consistent",
    "1": "platform_only",
    "2": "his_only",
    "3": "amount_mismatch",
    "4": "status_mismatch",
}


class ReconciliationSettings(AccessSettings):
    """The reconciliation worker: daily 3201/3202 against the national platform, repairs and reports."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_RECONCILIATION_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "reconciliation"
    default_web_port: ClassVar[int] = 6066

    # --- schedule --------------------------------------------------------------------------------------
    schedule_enabled: bool = Field(True, description="run once a day by itself (the previous day)")
    schedule_at: str = Field("02:30", description="time of the daily run, HH:MM Asia/Shanghai")
    schedule_days_back: int = Field(1, description="the daily run reconciles this many days ago (1: yesterday)")

    # --- statement keys --------------------------------------------------------------------------------
    insutypes: list[str] = Field(
        default_factory=lambda: ["310", "390"],
        description="险种 always asked by 3201, besides those in the hospital ledger (JSON list)",
    )
    clr_types: list[str] = Field(
        default_factory=lambda: ["11", "21"],
        description="清算类别 always asked by 3201 (11 门诊, 21 住院), besides those in the ledger (JSON list)",
    )
    setl_optins: list[str] = Field(
        default_factory=list,
        description="清算经办机构 always asked by 3201 besides those in the ledger; empty: the platform "
        "setting mdtrtarea_admvs (JSON list)",
    )
    optins_lookback_days: int = Field(
        90, description="清算经办机构 seen in the ledger this many days back (and in our settlement calls of the "
        "period) are asked too, so a 单边账 of a 参保地 with no other entry that day is not missed",
    )
    statement_mode: Literal["net", "split"] = Field(
        "net",
        description="3201 with refd_setl_flag empty (settlements and cancellations together, net) or one call "
        "per flag (split: 0 settlements, 1 cancellations)",
    )
    row_codes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ROW_CODES),
        description="3202 result stmt_rslt code → consistent, platform_only, his_only, amount_mismatch, "
        "status_mismatch (JSON object)",
    )

    # --- repairs and approval --------------------------------------------------------------------------
    auto_approve_classes: list[str] = Field(
        default_factory=list,
        description="difference classes whose money-moving repairs apply without a finance approval when "
        "their amount is at most auto_approve_max_amount (JSON list; empty: every such repair is approved)",
    )
    auto_approve_max_amount: Decimal = Field(
        Decimal("0.00"), description="largest amount (yuan) a repair may move without an approval"
    )
    reversal_same_day_only: bool = Field(
        True, description="2601 冲正 only on the day of the original transaction (the usual platform rule)"
    )
    reversible_infnos: list[str] | None = Field(
        None, description="transactions 2601 may reverse; unset: the catalog's (transactions marked reversible, as "
                          "the province file leaves them)",
    )
    apply_repairs_in_run: bool = Field(
        True, description="apply approved (and auto-approved) repairs during the run, then re-check"
    )

    # --- the mobile-pay reconciliation (yibao.reconciliation.mobile) ---------------------------------------
    mobile_schedule_enabled: bool = Field(
        True, description="run the mobile-pay reconciliation once a day by itself (the previous day), when mobile "
                          "pay is configured (YIBAO_MP_*)")
    mobile_schedule_at: str = Field("03:30", description="time of the daily mobile-pay run, HH:MM Asia/Shanghai")
    mobile_lookback_days: int = Field(
        2, ge=0, description="orders made this many days before the period are asked too (paid or refunded late)")
    mobile_refund_via: Literal["6203", "2208"] = Field(
        "6203", description="how a mobile 单边账 paid on the platform is refunded: 6203 医保退费, or the counter's "
                            "2208 (where the province requires it, so the patient need not scan again) then 6203 "
                            "CASH for the cash part")

    # --- runs and reports ------------------------------------------------------------------------------
    reports_dir: Path = Field(Path("reports/reconciliation"), description="where run reports are written")
    run_stale_after_s: float = Field(
        900.0, description="a running run without progress for this long is taken as dead (its days freed)"
    )
    platform_call_timeout_s: float = Field(
        120.0, description="a platform call of a run (3201/3202/9101/9102/5203/2601) longer than this fails it"
    )

    # --- who may act (logging in, roles clerk/approver/ops: AccessSettings): signed commands, the console --
    command_keys_file: Path | None = Field(
        None, description="a secret YAML/JSON file of the keys commands on yibao.recon.commands.v1 are signed "
        "with, each {key_id, user, roles, secret}; unset: every command is refused",
    )
    command_max_age_s: float = Field(300.0, gt=0, description="a signed command older than this is refused")
    command_clock_skew_s: float = Field(60.0, ge=0, description="a signed command dated this far ahead is accepted")
    console_enabled: bool = Field(True, description="serve the finance web console under /console")
    console_session_ttl_s: float = Field(28800.0, gt=0, description="a console login lasts at most this long")
    console_idle_timeout_s: float = Field(1800.0, gt=0, description="a console login unused this long ends")
    console_cookie_secure: bool = Field(
        True, description="console cookies are Secure (HTTPS only); false only for plain-HTTP test set-ups"
    )
    max_body_bytes: int = Field(65536, gt=0, description="largest request body the API and console read")
    cli_user: str = Field("", description="yibao recon: the user the CLI acts as (its commands are signed)")
    cli_key_id: str = Field("", description="yibao recon: the key id it signs with (default: cli_user)")
    cli_key_file: Path | None = Field(None, description="yibao recon: a secret file holding the signing secret "
                                      "of cli_key_id")
    cli_token_file: Path | None = Field(None, description="yibao recon --worker: a secret file holding the bearer "
                                        "token it sends")

    def cli_secret(self, which: str) -> str:
        """The CLI's signing key (``key``) or bearer token (``token``) read from its secret file ('' if unset)."""
        path = self.cli_key_file if which == "key" else self.cli_token_file
        if path is None:
            return ""
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            from yibao.core.errors import ConfigurationError

            raise ConfigurationError(f"the CLI's {which} file {path} cannot be read: {exc.strerror}") from None

    @field_validator("oidc_role_map")
    @classmethod
    def _our_roles(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted({v for v in value.values() if v not in ("clerk", "approver", "ops")})
        if wrong:
            raise ValueError(f"oidc_role_map: unknown roles {wrong}; ours are clerk, approver, ops")
        return value

    @field_validator("schedule_at", "mobile_schedule_at")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        try:
            _dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError("schedule_at must be HH:MM") from None
        return value

    @field_validator("row_codes")
    @classmethod
    def _known_classes(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {"consistent", *DIFFERENCE_CLASSES}
        wrong = sorted({v for v in value.values() if v not in allowed})
        if wrong:
            raise ValueError(f"row_codes: unknown classes {wrong}; allowed: {sorted(allowed)}")
        return {str(k): v for k, v in value.items()}

    @field_validator("auto_approve_classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        wrong = sorted(set(value) - set(DIFFERENCE_CLASSES) - set(MOBILE_DIFFERENCE_CLASSES))
        if wrong:
            raise ValueError(f"auto_approve_classes: unknown classes {wrong}")
        return value

    @field_validator("auto_approve_max_amount", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError("auto_approve_max_amount must not be a float; give it as text")
        return value

    def schedule_time(self) -> _dt.time:
        return _dt.time.fromisoformat(self.schedule_at)
