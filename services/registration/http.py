"""The 诊查费统筹 endpoint kiosks and the WeChat channel call before the patient pays (seed 000 §6.5), served on
the registration worker's own web port (faust's web server, next to /metrics and /healthz):

    POST /consultation-fee/quote   {"reg_type": "01", "med_type": "11", "insutype": "310", "reg_fee": "10.00"}
      → 200 {"reg_fee": "10.00", "pooled": "7.00", "self_paid": "3.00", "rule": "ordinary-employee",
             "ratio": "0.7", "rules_version": "example-1"}
      → 400 {"error": "<field>: <rule>"}   (bad JSON, unknown field, float-free amounts are fine: 10.5 is read exactly)
    GET  /consultation-fee/rules   the rules in force (version, description, rules)

``insutype`` absent or null means a self-pay patient (nothing pooled). Amounts travel as text, exact to the cent;
JSON numbers are read as exact decimals too. The same rules price the counter's registrations, so every channel
quotes the same split. The handlers are plain functions of the request body (:func:`quote_response`), so they are
tested without a server.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from yibao.hisevents.models import validation_reason
from yibao.registration.consultation_fee import FeeRules, QuoteInputError

__all__ = ["QUOTE_PATH", "RULES_PATH", "QuoteRequest", "quote_response", "rules_response", "install"]

QUOTE_PATH = "/consultation-fee/quote"
RULES_PATH = "/consultation-fee/rules"


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
        return value


def quote_response(rules: FeeRules, body: bytes) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a quote request."""
    try:
        data = json.loads(body or b"null", parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return 400, {"error": "the body is not JSON"}
    if not isinstance(data, dict):
        return 400, {"error": "expected a JSON object {reg_type, med_type, insutype, reg_fee}"}
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
            status, payload = quote_response(rules, await request.read())
            return self.json(payload, status=status)

    @app.page(RULES_PATH)
    class ConsultationFeeRules(View):  # type: ignore[misc]
        async def get(self, request: Any) -> Any:
            status, payload = rules_response(rules)
            return self.json(payload, status=status)
