"""Patient insurance identity (tender seed 003, 门诊患者医保身份识别): which insurance a visit uses, and how the
patient's settlement choice may change.

* **Which insurance.** 1101 lists the person's insurances (``insuinfo``). The visit uses the insutype HIS asked
  for when the person holds it validly, else the person's first valid one; none valid is a refusal HIS sees.
  The chosen row's ``insuplc_admdvs`` (参保地医保区划) is kept: every later call carrying psn_no must send it as
  the envelope's ``insuplc_admdvs`` (the platform refuses another), including for 异地 patients.
* **Settlement choice.** The patient chooses 医保 or 自费 for a registration (HIS ``settle_choice``). "医保可以改
  自费；自费不允许改医保": an insured registration may be switched to self-pay (the platform visit is then
  cancelled the way 退号 is), a self-pay registration is never switched to 医保.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.typed import output_model
from yibao.registration.state import Failure, Person

__all__ = [
    "VALID_INSU_STATUSES",
    "ChoiceChange",
    "is_valid_insurance",
    "choose_insurance",
    "choice_change",
]

#: psn_insu_stas values meaning insured now (dictionary psn_insu_stas: 1 正常参保); absent is taken as valid,
#: platforms that list only current insurances leave it out
VALID_INSU_STATUSES = frozenset({"1"})

ChoiceChange = Literal["same", "to_self_pay", "refused"]


def is_valid_insurance(row: Any) -> bool:
    """Whether a 1101 insuinfo row is an insurance the person holds now."""
    return row.psn_insu_stas is None or row.psn_insu_stas in VALID_INSU_STATUSES


def choose_insurance(output: dict[str, Any], requested_insutype: str | None, *, catalog: Any = None
                     ) -> Person | Failure:
    """The visit's person and insurance from a 1101 answer (read with the catalog's 1101 output model), or why
    there is none."""
    try:
        parsed: Any = output_model(catalog or Catalog.load(), "1101").model_validate(output)
    except ValidationError:
        parsed = None
    if parsed is None or parsed.baseinfo is None or not parsed.baseinfo.psn_no or any(
            not row.insutype or not row.insuplc_admdvs for row in parsed.insuinfo):
        return Failure(reason_code="bad_platform_answer", step_infno="1101",
                       reason="1101 answer has no readable baseinfo/insuinfo")
    valid = [row for row in parsed.insuinfo if is_valid_insurance(row)]
    if not valid:
        return Failure(reason_code="no_valid_insurance", step_infno="1101",
                       reason="1101: the person has no valid insurance (参保状态); register as self-pay (自费)")
    chosen = next((row for row in valid if requested_insutype and row.insutype == requested_insutype), valid[0])
    base = parsed.baseinfo
    return Person(psn_no=base.psn_no, insutype=chosen.insutype, insuplc_admdvs=chosen.insuplc_admdvs,
                  psn_cert_type=base.psn_cert_type, psn_type=chosen.psn_type, age=base.age)


def choice_change(current_self_pay: bool, new_choice: str) -> ChoiceChange:
    """What a later registration event's ``settle_choice`` asks of a visit whose current choice is known."""
    wants_self_pay = new_choice == "self_pay"
    if wants_self_pay == current_self_pay:
        return "same"
    return "to_self_pay" if wants_self_pay else "refused"
