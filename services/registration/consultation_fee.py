"""诊查费统筹 (tender seed 000 §6.5): the share of a registration fee the 医保 fund pays, by 挂号性质 and 医疗类型.

The rules are data — a YAML file shipped in the package (``data/consultation_fee_rules.yaml``, an example) and
replaceable by a hospital's own (setting ``consultation_fee_rules``). The file is validated when it is loaded,
so a mistake stops the worker at start-up instead of mispricing a registration:

* every rule has a unique ``id``, a ``ratio`` in [0, 1] with at most 4 decimals, an optional ``cap`` ≥ 0 in
  cents; unknown keys are refused (a typo such as ``ration`` must not silently mean "no ratio");
* numbers are read as exact decimals — YAML's ``0.7`` becomes ``Decimal("0.7")``, never the float 0.69999…;
* the first matching rule wins, so a rule wholly covered by an earlier one can never apply: that is refused too.

The same :class:`FeeRules` serves the counter (the registered HisResult's ``detail``) and the kiosk/WeChat
endpoint (:mod:`yibao.registration.http`), so every channel quotes the same amounts.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from yibao.core import money
from yibao.core.errors import ConfigurationError, InputError

__all__ = [
    "SHIPPED_RULES",
    "ANY",
    "FeeRule",
    "FeeRules",
    "Quote",
    "ConsultationFeeRulesError",
    "QuoteInputError",
    "load_rules",
    "rules_from_text",
]

SHIPPED_RULES = Path(__file__).resolve().parent / "data" / "consultation_fee_rules.yaml"
#: the wildcard of reg_type / med_type
ANY = "*"


class ConsultationFeeRulesError(ConfigurationError):
    """The 诊查费统筹 rules file is missing or wrong (names the rule and the field)."""

    code = "consultation_fee_rules"


class QuoteInputError(InputError):
    """A quote was asked with an impossible input (a negative fee, a missing code)."""

    code = "bad_quote_request"


class _DecimalLoader(yaml.SafeLoader):
    """YAML with exact decimals: a float literal becomes the Decimal of its text."""


def _decimal_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = loader.construct_scalar(node)
    try:
        value = Decimal(str(text).replace("_", ""))
    except InvalidOperation:
        raise ConsultationFeeRulesError(f"line {node.start_mark.line + 1}: not a decimal number") from None
    if not value.is_finite():
        raise ConsultationFeeRulesError(f"line {node.start_mark.line + 1}: infinite or NaN amounts are refused")
    return value


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal_float)


def _exact(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("floats are refused; write the number as text or a decimal literal")
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


class Quote(BaseModel):
    """The split of one registration fee."""

    model_config = ConfigDict(frozen=True)

    reg_fee: Decimal
    pooled: Decimal  #: paid by the 医保 fund
    self_paid: Decimal  #: paid by the patient
    rule: str | None  #: id of the rule applied; None when no rule matched (nothing pooled)
    ratio: Decimal

    def as_detail(self) -> dict[str, str | None]:
        """JSON-ready, amounts as exact text."""
        return {"reg_fee": str(self.reg_fee), "pooled": str(self.pooled), "self_paid": str(self.self_paid),
                "rule": self.rule, "ratio": str(self.ratio)}


class FeeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    label: str = ""
    reg_type: str = Field(ANY, min_length=1)
    med_type: str = Field(ANY, min_length=1)
    insutypes: tuple[str, ...] = ()  #: empty: any insutype
    ratio: Decimal
    cap: Decimal | None = None

    @field_validator("reg_type", "med_type", mode="before")
    @classmethod
    def _code_text(cls, value: Any) -> Any:
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            raise ValueError("write codes as quoted text (\"01\", not 01: the leading zero would be lost)")
        return value

    @field_validator("insutypes", mode="before")
    @classmethod
    def _insutypes_text(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and any(not isinstance(v, str) for v in value):
            raise ValueError("write insutypes as quoted text (\"310\")")
        return value

    @field_validator("ratio", "cap", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        return _exact(value)

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value <= Decimal(1):
            raise ValueError("ratio must be between 0 and 1")
        if value != value.quantize(money.RATIO):
            raise ValueError("ratio has more than 4 decimals")
        return value

    @field_validator("cap")
    @classmethod
    def _cap(cls, value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        if value < 0:
            raise ValueError("cap must not be negative")
        if value != value.quantize(money.MONEY):
            raise ValueError("cap has more than 2 decimals (cents)")
        return money.money(value)

    def matches(self, reg_type: str | None, med_type: str | None, insutype: str) -> bool:
        return ((self.reg_type == ANY or self.reg_type == reg_type)
                and (self.med_type == ANY or self.med_type == med_type)
                and (not self.insutypes or insutype in self.insutypes))

    def covers(self, other: FeeRule) -> bool:
        """Whether every case ``other`` matches is matched by this rule too."""
        return ((self.reg_type == ANY or self.reg_type == other.reg_type)
                and (self.med_type == ANY or self.med_type == other.med_type)
                and (not self.insutypes or (bool(other.insutypes) and set(other.insutypes) <= set(self.insutypes))))


class FeeRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    description: str = ""
    rules: tuple[FeeRule, ...]

    @model_validator(mode="after")
    def _consistent(self) -> FeeRules:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise ValueError(f"rules[{i}]: id {rule.id!r} is used twice")
            seen.add(rule.id)
            for earlier in self.rules[:i]:
                if earlier.covers(rule):
                    raise ValueError(f"rules[{i}] ({rule.id}) can never apply: rule {earlier.id!r} above it "
                                     "matches every case it matches (put the narrower rule first)")
        return self

    def rule_for(self, reg_type: str | None, med_type: str | None, insutype: str) -> FeeRule | None:
        return next((r for r in self.rules if r.matches(reg_type, med_type, insutype)), None)

    def quote(self, *, reg_fee: Decimal, reg_type: str | None, med_type: str | None,
              insutype: str | None) -> Quote:
        """Split ``reg_fee``. ``insutype`` None means a self-pay (自费) patient: nothing is pooled."""
        try:
            fee = money.money(_exact(reg_fee))
        except (TypeError, ValueError) as exc:
            raise QuoteInputError(f"reg_fee: {exc}") from None
        if fee < 0:
            raise QuoteInputError("reg_fee: must not be negative")
        if insutype is None:
            return Quote(reg_fee=fee, pooled=money.ZERO, self_paid=fee, rule=None, ratio=Decimal("0"))
        rule = self.rule_for(reg_type, med_type, insutype)
        if rule is None:
            return Quote(reg_fee=fee, pooled=money.ZERO, self_paid=fee, rule=None, ratio=Decimal("0"))
        pooled = (fee * rule.ratio).quantize(money.MONEY, rounding=ROUND_HALF_UP)
        if rule.cap is not None:
            pooled = min(pooled, rule.cap)
        return Quote(reg_fee=fee, pooled=pooled, self_paid=fee - pooled, rule=rule.id, ratio=rule.ratio)


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(file)"
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def rules_from_text(text: str, *, origin: str = "rules") -> FeeRules:
    """Parse and validate rules from YAML text. Raises :class:`ConsultationFeeRulesError`."""
    try:
        data = yaml.load(text, Loader=_DecimalLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConsultationFeeRulesError(f"{origin}: not YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConsultationFeeRulesError(f"{origin}: expected a mapping with version and rules")
    try:
        return FeeRules.model_validate(data)
    except ValidationError as exc:
        raise ConsultationFeeRulesError(f"{origin}: {_reason(exc)}") from None


@lru_cache(maxsize=8)
def _load(path: str) -> FeeRules:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConsultationFeeRulesError(f"{file}: cannot read the 诊查费 rules ({type(exc).__name__})") from None
    return rules_from_text(text, origin=file.name)


def load_rules(path: str | Path | None = None) -> FeeRules:
    """The rules at ``path`` (empty/None: the shipped example), validated; cached per path."""
    return _load(str(Path(path).resolve()) if path else str(SHIPPED_RULES))
