"""Settings of the counter worker (env prefix ``YIBAO_COUNTER_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from yibao.chains.runtime import ChainSettings
from yibao.core.settings import AccessSettings

__all__ = ["CounterSettings"]


class CounterSettings(ChainSettings, AccessSettings):
    """The counter: queries for HIS, kiosks and WeChat; 备案; 核酸 batch settlement; settlement slips. Who may import
    and export 核酸 batches logs in as :class:`~yibao.core.settings.AccessSettings` says (roles lab, finance, ops)."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_COUNTER_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "counter"
    default_web_port: ClassVar[int] = 6068

    # --- queries -------------------------------------------------------------------------------------------
    query_timeout_s: float = Field(10.0, gt=0, le=120, description="a query's budget when the asker gives none "
                                                                     "(HTTP and topic alike)")
    query_timeout_max_s: float = Field(30.0, gt=0, le=120, description="the largest budget an asker may ask for")
    query_concurrency: int = Field(16, ge=1, description="queries of the request topic answered at once")
    dictionary_cache_s: float = Field(86400.0, ge=0, description="1901 字典 answers are kept this long (0: never)")
    institution_cache_s: float = Field(86400.0, ge=0, description="1201 医药机构 answers are kept this long (0: never)")
    # --- 备案 -------------------------------------------------------------------------------------------------
    transfer_infno: Literal["2501", "2501A"] = Field(
        "2501", description="转院备案 as the province has it: 2501, or 2501A (中山 and others: with the visit the "
        "transfer comes from)")
    orphan_timeout_s: float = Field(900.0, description="how long a revocation waits for the filing it names before "
                                                       "HIS is told it names none")
    # --- 核酸 batch -----------------------------------------------------------------------------------------------
    batch_max_bytes: int = Field(5 * 1024 * 1024, gt=0, description="largest 核酸 workbook accepted")
    batch_max_rows: int = Field(5000, gt=0, description="most people in one 核酸 workbook")
    batch_med_type: str = Field("11", max_length=6, description="医疗类别 of a 核酸 visit")
    batch_dept_code: str = Field("HS01", description="科室 the 核酸 visits are registered in (code)")
    batch_dept_name: str = Field("核酸检测门诊", description="科室 the 核酸 visits are registered in (name)")
    batch_caty: str = Field("A03", description="科别 of that 科室")
    batch_doctor_code: str = Field("HS0001", description="医师 the 核酸 visits are registered with (2201 atddr_no)")
    batch_doctor_name: str = Field("核酸采样医师", description="that 医师's name (2201 dr_name)")
    batch_diag_code: str = Field("Z11.500", description="诊断 uploaded for a 核酸 visit (2203)")
    batch_diag_name: str = Field("病毒性疾病的特殊筛查", description="its name")
    batch_acct_used_flag: Literal["0", "1"] = Field("0", description="个人账户 used for 核酸 settlements")
    # --- the slip -------------------------------------------------------------------------------------------------
    slip_title: str = Field("医疗保障基金结算单", description="the slip's heading")
    hospital_name: str = Field("", description="the hospital's name on the slip (default: the platform setting's "
                                               "fixmedins_name)")
