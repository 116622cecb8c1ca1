"""Patient identity (seed 003): the settlement type a patient chooses (自费, 本地医保, 省直, 市直, 区直, 省内异地, 省外异地,
公费及特约) checked against 1101 and 医保区划 before HIS records it, and the 区划 lookup the channels offer.

* **Rules** — ``data/settle_types.yaml`` (or ``identity_rules``): each 医保 type says which 参保地 it allows
  (the hospital's own 统筹区 and its districts, another 统筹区 of the province, another province, or a list) and,
  for 市直/区直/公费, the contract units (合同单位) it has.
* **Check** — 1101 (through the national client: a query, sent again when its answer is lost) with the patient's
  certificate: an insured patient whose 参保地 fits the type is verified; otherwise refused with the reason and the
  type the platform's answer points to (``suggested``). 自费 needs no 1101.
* **定点 / 未定点** — for 本地医保 the platform decides whether the patient is 定点 here: **5302** (人员定点信息查询,
  with the psn_no 1101 answered and the rules' ``designation.biz_appy_type``) lists the person's valid 定点; the
  hospital is the patient's 定点 when one of them, valid today, names its fixmedins_code. A type with
  ``designation: designated`` / ``undesignated`` (the patient's own choice) that the platform contradicts is refused,
  naming the choice and the type to choose (:func:`decide_designation`, free of I/O); ``designation: ask`` (the type
  where "定点/未定点由接口判断") is verified either way and the verdict says which.
* **One visit** (挂号回执: ``his_visit_id`` + ``registered_type``): 医保 may become 自费 for one registration, never
  自费 → 医保.
* **医保区划** — the 1901 dictionary ``admdvs`` (setting ``admdvs_dictionary``), downloaded once and kept
  ``admdvs_refresh_s``; parents follow the codes (province XX0000, city XXXX00, district XXXXXX, 省本级 XX9900).

Nothing personal is answered: the verdict names types, 险种 and 区划 only.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from yibao.core import clock
from yibao.core.errors import ConfigurationError
from yibao.envelope.errors import BusinessRejection, PlatformError
from yibao.mobilepay.models import IdentityBody

__all__ = ["SettleType", "SettleRules", "Designation", "load_rules", "IdentityService", "classify_admdvs", "parent_of",
           "designated_here", "decide_designation"]

SHIPPED = Path(__file__).resolve().parent / "data" / "settle_types.yaml"


class SettleType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    insured: bool = True
    admdvs: Literal["local", "province", "other"] | list[str] | None = None
    contract_units: list[str] = Field(default_factory=list)
    #: 定点/未定点 (5302): the patient's choice (designated | undesignated), or ask (the platform decides, the verdict
    #: says which); none: not asked
    designation: Literal["designated", "undesignated", "ask"] | None = None
    note: str | None = None


class Designation(BaseModel):
    """How 5302 is asked: the 业务申请类型 (1901 ``biz_appy_type``) of the 定点 that makes a patient 定点 here."""

    model_config = ConfigDict(extra="forbid")

    biz_appy_type: str = Field(min_length=1, max_length=3)
    note: str | None = None


class SettleRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    local_admdvs: str = Field(pattern=r"^\d{6}$")
    designation: Designation | None = None
    types: dict[str, SettleType]

    @model_validator(mode="after")
    def _designation_needs_its_query(self) -> "SettleRules":
        asking = [name for name, t in self.types.items() if t.designation is not None]
        if asking and self.designation is None:
            raise ValueError(f"types {', '.join(asking)} ask 定点/未定点: designation.biz_appy_type (5302) is needed")
        return self

    def allows(self, name: str, admdvs: str) -> bool:
        kind = self.types[name].admdvs
        area = classify_admdvs(admdvs, self.local_admdvs)
        if kind is None:
            return True
        if isinstance(kind, list):
            return admdvs in kind
        return area == kind

    def suggest(self, admdvs: str) -> str | None:
        """The first insured type whose 参保地 rule takes this 参保地 (no contract unit, no 定点 choice needed)."""
        for name, t in self.types.items():
            if t.insured and not t.contract_units and t.designation in (None, "ask") and self.allows(name, admdvs):
                return name
        return None

    def sibling(self, name: str, designation: str) -> str | None:
        """The type like ``name`` (same 参保地 rule and contract units) whose 定点 choice is ``designation``."""
        chosen = self.types[name]
        for other, t in self.types.items():
            if (t.designation == designation and t.admdvs == chosen.admdvs
                    and t.contract_units == chosen.contract_units):
                return other
        return None


def designated_here(rows: Iterable[Any], fixmedins_code: str, today: _dt.date) -> bool:
    """Whether 5302's rows make the patient 定点 at this hospital today: a row naming its fixmedins_code whose
    begndate ≤ today ≤ enddate (an empty enddate is open)."""
    for row in rows:
        if not isinstance(row, dict) or str(row.get("fixmedins_code") or "") != fixmedins_code:
            continue
        begin, end = _day(row.get("begndate")), _day(row.get("enddate"))
        if begin is not None and begin > today:
            continue
        if end is not None and end < today:
            continue
        return True
    return False


def _day(value: Any) -> _dt.date | None:
    text = str(value or "")[:10]
    try:
        return _dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def decide_designation(rules: SettleRules, name: str, designated: bool) -> dict[str, Any]:
    """The verdict's part about 定点/未定点: what the platform says, and — when the patient chose the other — the
    refusal naming their choice and the type to choose."""
    chosen = rules.types[name]
    found = "designated" if designated else "undesignated"
    out: dict[str, Any] = {"designation": found}
    if chosen.designation in (None, "ask") or chosen.designation == found:
        return out
    other = rules.sibling(name, found)
    where = ("the platform lists this hospital among the patient's valid 定点 (5302)" if designated
             else "the platform lists no valid 定点 of the patient at this hospital (5302)")
    hint = f": choose {rules.types[other].label}" if other else ""
    return {**out, "verified": False, "reason_code": "designation_differs",
            "reason": f"{chosen.label} was chosen, but {where}{hint}", "suggested": other}


def load_rules(path: str | None = None) -> SettleRules:
    source = Path(path) if path else SHIPPED
    try:
        return SettleRules.model_validate(yaml.safe_load(source.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"settlement-type rules {source}: cannot be used ({type(exc).__name__})") from None


def parent_of(code: str) -> str | None:
    """The 区划 a code belongs to: district → city, city or 省本级 → province, province → None."""
    if code.endswith("0000"):
        return None
    if code.endswith("00"):
        return code[:2] + "0000"
    return code[:4] + "00"


def classify_admdvs(admdvs: str, local: str) -> str:
    """local (the hospital's 统筹区 or one of its districts), province (another of the province), or other."""
    if admdvs == local or parent_of(admdvs) == local or admdvs[:4] == local[:4]:
        return "local"
    if admdvs[:2] == local[:2]:
        return "province"
    return "other"


class IdentityService:
    def __init__(self, rules: SettleRules, client_factory: Any, *, dictionary: str = "admdvs",
                 refresh_s: float = 86400.0, fixmedins_code: str = "") -> None:
        self.rules = rules
        self.fixmedins_code = fixmedins_code  #: this hospital's 定点医药机构编号 (whose 定点 5302 must list)
        self._client_factory = client_factory
        self._client: Any = None
        self.dictionary = dictionary
        self.refresh_s = refresh_s
        self._admdvs: dict[str, str] = {}
        self._admdvs_at = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def build(cls, settings: Any, runtime: Any) -> IdentityService:
        rules = load_rules(settings.identity_rules or None)

        from yibao.envelope.settings import PlatformSettings

        platform = PlatformSettings()

        def client() -> Any:
            from yibao.core.deployment import Deployment
            from yibao.envelope.client import NationalClient

            return NationalClient(platform, engine=runtime.engine,
                                  service=Deployment.of(runtime.engine).scoped("mobilepay"))

        return cls(rules, client, dictionary=settings.admdvs_dictionary, refresh_s=settings.admdvs_refresh_s,
                   fixmedins_code=platform.fixmedins_code)

    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # --- 区划 --------------------------------------------------------------------------------------------------

    async def names(self) -> dict[str, str]:
        async with self._lock:
            if not self._admdvs or time.monotonic() - self._admdvs_at > self.refresh_s:
                reply = await self.client().call("1901", {"data": {"type": self.dictionary}})
                rows = (reply.output or {}).get("list") or []
                self._admdvs = {str(r.get("nat_dic_val_code")): str(r.get("nat_dic_val_name") or "")
                                for r in rows if isinstance(r, dict) and str(r.get("vali_flag", "1")) == "1"}
                self._admdvs_at = time.monotonic()
            return self._admdvs

    async def admdvs(self, parent: str | None) -> dict[str, Any]:
        names = await self.names()
        items = [{"code": code, "name": name, "parent": parent_of(code)} for code, name in sorted(names.items())
                 if parent_of(code) == parent]
        return {"parent": parent, "parent_name": names.get(parent or "", None), "items": items}

    # --- checks ------------------------------------------------------------------------------------------------

    async def check(self, body: IdentityBody) -> dict[str, Any]:
        rules = self.rules
        chosen = rules.types.get(body.settle_type)
        base: dict[str, Any] = {"settle_type": body.settle_type, "rules_version": rules.version}
        if chosen is None:
            return {**base, "verified": False, "reason_code": "unknown_type",
                    "reason": f"settle_type: one of {', '.join(rules.types)}"}
        if body.his_visit_id and body.registered_type:
            registered = rules.types.get(body.registered_type)
            if registered is not None and not registered.insured and chosen.insured:
                return {**base, "verified": False, "reason_code": "self_pay_to_insurance",
                        "reason": "a visit registered as 自费 never becomes 医保 (医保 → 自费 only)"}
        if chosen.contract_units and body.contract_unit not in chosen.contract_units:
            return {**base, "verified": False, "reason_code": "contract_unit",
                    "reason": f"contract_unit: one of {', '.join(chosen.contract_units)}"}
        if not chosen.insured:
            return {**base, "verified": True, "insured": False}
        try:
            data = {"mdtrt_cert_type": body.mdtrt_cert_type, "mdtrt_cert_no": body.mdtrt_cert_no}
            if body.mdtrt_cert_type == "02":
                data.update(psn_cert_type="01", certno=body.mdtrt_cert_no)
            reply = await self.client().call("1101", {"data": data})
        except BusinessRejection as exc:
            return {**base, "verified": False, "reason_code": "not_insured",
                    "reason": f"1101: {exc.err_msg[:200]}"}
        except PlatformError as exc:
            return {**base, "verified": False, "reason_code": "platform_unavailable",
                    "reason": f"1101 could not be asked now ({type(exc).__name__}); try again"}
        insured = [i for i in (reply.output or {}).get("insuinfo") or [] if isinstance(i, dict)
                   and str(i.get("psn_insu_stas", "1")) == "1"]
        if not insured:
            return {**base, "verified": False, "reason_code": "not_insured", "reason": "1101: no active insurance"}
        info = insured[0]
        admdvs = str(info.get("insuplc_admdvs") or "")
        names = await self._names_or_empty()
        out = {**base, "insutype": info.get("insutype"), "insuplc_admdvs": admdvs,
               "insuplc_name": names.get(admdvs), "area": classify_admdvs(admdvs, rules.local_admdvs)}
        if body.insuplc_admdvs and body.insuplc_admdvs != admdvs:
            return {**out, "verified": False, "reason_code": "admdvs_differs",
                    "reason": "insuplc_admdvs: the platform knows another 参保地 for this patient",
                    "suggested": rules.suggest(admdvs)}
        if not rules.allows(body.settle_type, admdvs):
            return {**out, "verified": False, "reason_code": "type_differs",
                    "reason": f"{chosen.label} does not take this 参保地", "suggested": rules.suggest(admdvs)}
        if chosen.designation is not None:
            assert rules.designation is not None
            psn_no = str(((reply.output or {}).get("baseinfo") or {}).get("psn_no") or "")
            if not psn_no:
                return {**out, "verified": False, "reason_code": "designation_unknown",
                        "reason": "定点/未定点 could not be decided: 1101 named no psn_no to ask 5302 with"}
            try:
                fixed = await self.client().call("5302", {"data": {
                    "psn_no": psn_no, "biz_appy_type": rules.designation.biz_appy_type}}, insuplc_admdvs=admdvs)
            except BusinessRejection as exc:
                return {**out, "verified": False, "reason_code": "designation_unknown",
                        "reason": f"定点/未定点 could not be decided (5302: {exc.err_msg[:200]})"}
            except PlatformError as exc:
                return {**out, "verified": False, "reason_code": "platform_unavailable",
                        "reason": f"5302 could not be asked now ({type(exc).__name__}); try again"}
            rows = (fixed.output or {}).get("psnfixmedin") or []
            decided = decide_designation(rules, body.settle_type,
                                         designated_here(rows, self.fixmedins_code, clock.now().date()))
            out.update(decided)
            if decided.get("verified") is False:
                return out
        return {**out, "verified": True, "insured": True}

    async def _names_or_empty(self) -> dict[str, str]:
        try:
            return await self.names()
        except PlatformError:
            return {}
