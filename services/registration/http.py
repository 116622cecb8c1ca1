"""The 诊查费统筹 endpoint kiosks and the WeChat channel call before the patient pays (seed 000 §6.5), served on
the registration worker's own web port (faust's web server, next to /metrics and /healthz):

    POST /consultation-fee/quote   {"reg_type": "01", "med_type": "11", "insutype": "310", "reg_fee": "10.00"}
      → 200 {"reg_fee": "10.00", "pooled": "7.00", "self_paid": "3.00", "rule": "ordinary-employee",
             "ratio": "0.7", "rules_version": "example-1"}
      → 400 {"error": "<field>: <rule>"}   (bad JSON, unknown field, float-free amounts are fine: 10.5 is read exactly)
      → 413 {"error": ...}                 (a body over 16 KiB)
    GET  /consultation-fee/rules   the rules in force (version, description, rules)

Malformed bodies are refused with a 4xx naming the problem, never a 500: the body is read by
:func:`yibao.core.web.read_json_object` (size, nesting, number length and exponent, NaN, duplicate fields), and
``reg_fee`` must be a finite, non-negative amount of at most 12 digits before the point and 2 after it — an
amount with more decimals is refused, never rounded.

``insutype`` absent or null means a self-pay patient (nothing pooled). Amounts travel as text, exact to the cent;
JSON numbers are read as exact decimals too. The same rules price the counter's registrations, so every channel
quotes the same split. The handlers are plain functions of the request body (:func:`quote_response`), so they are
tested without a server.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from yibao.core.web import BadRequest, read_body, read_json_object
from yibao.hisevents.models import validation_reason
from yibao.registration.consultation_fee import FeeRules, QuoteInputError

__all__ = ["QUOTE_PATH", "RULES_PATH", "QuoteRequest", "quote_response", "rules_response", "install"]

QUOTE_PATH = "/consultation-fee/quote"
RULES_PATH = "/consultation-fee/rules"
MAX_QUOTE_BODY = 16 * 1024
#: the largest registration fee a quote accepts: 12 digits before the point (the spec's money is 16,2)
MAX_FEE_DIGITS = 12
CENT = Decimal("0.01")


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

    reg_type: str | None = Field(None, max_length=20, description="挂号性质 (the HIS's code)")
    med_type: str | None = Field(None, max_length=6, description="医疗类别")
    insutype: str | None = Field(None, max_length=6, description="险种; absent: self-pay")
    reg_fee: Decimal

    @field_validator("reg_fee", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("floats are refused; send the amount as text")
        if isinstance(value, bool):
            raise ValueError("a boolean is not an amount")
        if isinstance(value, str) and len(value) > 40:
            raise ValueError("not an amount (more than 40 characters)")
        return value

    @field_validator("reg_fee")
    @classmethod
    def _an_amount(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("not a finite amount")
        if value.is_zero():
            return Decimal("0.00")  # -0, 0E+7: zero
        if value.adjusted() >= MAX_FEE_DIGITS:
            raise ValueError(f"larger than the largest amount a quote accepts ({MAX_FEE_DIGITS} digits before "
                             "the point)")
        if value < 0:
            raise ValueError("must not be negative")
        try:
            cents = value.quantize(CENT)
        except InvalidOperation:
            raise ValueError("not an amount in yuan and fen") from None
        if cents != value:
            raise ValueError("at most 2 decimal places (fen); the amount is not rounded for you")
        return cents


def quote_response(rules: FeeRules, body: bytes) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a quote request. Never raises for anything a client can send."""
    try:
        data = read_json_object(body, max_bytes=MAX_QUOTE_BODY)
    except BadRequest as exc:
        hint = " {reg_type, med_type, insutype, reg_fee}" if "JSON object" in str(exc) else ""
        return exc.status, {"error": f"{exc}{hint}"}
    try:
        request = QuoteRequest.model_validate(data)
    except ValidationError as exc:
        return 400, {"error": validation_reason(exc)}
    try:
        quote = rules.quote(reg_fee=request.reg_fee, reg_type=request.reg_type, med_type=request.med_type,
                            insutype=request.insutype or None)
    except QuoteInputError as exc:
        return 400, {"error": str(exc)}
    return 200, {**quote.as_detail(), "rules_version": rules.version}


def rules_response(rules: FeeRules) -> tuple[int, dict[str, Any]]:
    return 200, json.loads(rules.model_dump_json())


def install(app: Any, rules: FeeRules) -> None:
    """Add the endpoints to a faust app's web server."""
    from faust.web import View

    @app.page(QUOTE_PATH)
    class ConsultationFeeQuote(View):  # type: ignore[misc]
        async def post(self, request: Any) -> Any:
            try:
                body = await read_body(request, max_bytes=MAX_QUOTE_BODY)
            except BadRequest as exc:
                return self.json({"error": str(exc)}, status=exc.status)
            status, payload = quote_response(rules, body)
            return self.json(payload, status=status)

    @app.page(RULES_PATH)
    class ConsultationFeeRules(View):  # type: ignore[misc]
        async def get(self, request: Any) -> Any:
            status, payload = rules_response(rules)
            return self.json(payload, status=status)
