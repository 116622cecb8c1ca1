"""Settings of the registration worker (env prefix ``YIBAO_REGISTRATION_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from yibao.chains.runtime import ChainSettings

__all__ = ["RegistrationSettings"]


class RegistrationSettings(ChainSettings):
    model_config = SettingsConfigDict(env_prefix="YIBAO_REGISTRATION_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "registration"
    default_web_port: ClassVar[int] = 6061

    treatment_check: bool = Field(
        False, description="send 2001 (人员待遇享受检查) between 1101 and 2201/2401; where the province requires it"
    )
    treatment_check_blocks: bool = Field(
        True, description="with treatment_check: refuse the registration when 2001 says a benefit is not enjoyed "
                          "(trt_enjymnt_flag 0); false: only report it in the result's detail",
    )
    consultation_fee_rules: str = Field(
        "", description="诊查费统筹 rules: path of a YAML file replacing the shipped example "
                        "(yibao/registration/data/consultation_fee_rules.yaml); empty: the shipped file",
    )
    chronic_rules: str = Field(
        "", description="门诊慢特病 rules (which diagnoses are settled as 门特 when the patient holds a 备案): path of a "
                        "YAML file replacing the shipped example (yibao/registration/data/chronic_rules.yaml); empty: "
                        "the shipped file",
    )
    orphan_timeout_s: float = Field(
        900.0, description="how long a visit's events wait for its registration/admission event before HIS is told "
                           "they were rejected (cross-table order is not guaranteed, so some wait is normal)",
    )
    query_window_h: float = Field(
        24.0, description="5201/5303 look this many hours either side of the visit's begntime when resolving a "
                          "2201/2401/2402/2202/2404/2405 whose answer was lost",
    )
    discharge_wait_s: float = Field(
        120.0, description="how long a discharge waits for settlement to confirm the stay's charge lines are uploaded "
                           "(2301 is refused after 2402) before 2402 is sent anyway, with the reason in the result",
    )
