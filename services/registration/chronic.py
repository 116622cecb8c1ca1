"""门诊慢特病 (seed 003): the visit's diagnosis decides whether it is settled as 门特 — pure rules, the list is data.

诊断“高血压” with a 高血压 备案 → 门特 (med_type 14, dise_codg the 备案's opsp_dise_code); 诊断“感冒” → 普通门诊. The
rules (:class:`ChronicRules`, ``data/chronic_rules.yaml``, replaced by the setting ``chronic_rules``) map
diagnosis code prefixes to 门慢门特病种; the patient's 备案 come from 5301 (人员慢特病备案查询), asked once per visit
and only when a diagnosis falls under a listed disease (:func:`needs_filings`). :func:`decide` then gives the
2203 med_type / dise_codg / dise_name, which settlement uses in turn (its 2206/2207 med_type is the 2203's).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.core.errors import ConfigurationError

__all__ = ["Disease", "ChronicRules", "Filing", "Decision", "load_rules", "needs_filings", "decide", "filings_of"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Disease(_Model):
    opsp_dise_code: str = Field(min_length=1, max_length=30)
    name: str
    diag_prefixes: list[str] = Field(min_length=1)

    def matches(self, diag_code: str) -> bool:
        code = diag_code.strip().upper()
        return any(code.startswith(p.upper()) for p in self.diag_prefixes)


class ChronicRules(_Model):
    version: str
    chronic_med_type: str = "14"
    ordinary_med_type: str = "11"
    applies_to: list[str] = Field(default_factory=lambda: ["11", "14"])
    diseases: list[Disease] = Field(default_factory=list)

    def candidates(self, diag_codes: Iterable[str]) -> list[Disease]:
        """The listed diseases the diagnoses fall under, in diagnosis order."""
        out: list[Disease] = []
        for code in diag_codes:
            for disease in self.diseases:
                if disease.matches(code) and disease not in out:
                    out.append(disease)
        return out


class Filing(_Model):
    """A valid 慢特病 备案 of the patient, as 5301 lists it."""

    opsp_dise_code: str
    opsp_dise_name: str = ""
    begndate: str | None = None
    enddate: str | None = None

    def valid_on(self, day: _dt.date) -> bool:
        return (self.begndate or "0001-01-01")[:10] <= day.isoformat() <= (self.enddate or "9999-12-31")[:10]


class Decision(_Model):
    med_type: str
    dise_codg: str | None = None
    dise_name: str | None = None
    chronic: bool = False
    why: str


def filings_of(output: dict[str, Any]) -> list[Filing]:
    """The 备案 rows of a 5301 answer (node feedetail; a single object is read as one row)."""
    rows = output.get("feedetail")
    if isinstance(rows, dict):
        rows = [rows]
    out = []
    for row in rows or []:
        if isinstance(row, dict) and row.get("opsp_dise_code"):
            out.append(Filing(opsp_dise_code=str(row["opsp_dise_code"]),
                              opsp_dise_name=str(row.get("opsp_dise_name") or ""),
                              begndate=str(row["begndate"]) if row.get("begndate") else None,
                              enddate=str(row["enddate"]) if row.get("enddate") else None))
    return out


def needs_filings(rules: ChronicRules, his_med_type: str | None, diag_codes: list[str]) -> bool:
    """Whether the patient's 备案 must be asked for (5301) before the visit information goes up."""
    return (his_med_type or "") in rules.applies_to and bool(rules.candidates(diag_codes))


def decide(rules: ChronicRules, his_med_type: str | None, diag_codes: list[str], filings: list[Filing] | None,
           day: _dt.date) -> Decision | None:
    """The 2203 med_type and disease of the visit; None: leave HIS's values (a med_type the rules do not touch)."""
    if (his_med_type or "") not in rules.applies_to:
        return None
    for disease in rules.candidates(diag_codes):
        held = next((f for f in filings or [] if f.opsp_dise_code == disease.opsp_dise_code and f.valid_on(day)),
                    None)
        if held is not None:
            return Decision(med_type=rules.chronic_med_type, dise_codg=held.opsp_dise_code,
                            dise_name=held.opsp_dise_name or disease.name, chronic=True,
                            why=f"诊断属{disease.name}，且有有效的慢特病备案")
    if rules.candidates(diag_codes):
        return Decision(med_type=rules.ordinary_med_type, why="诊断属门慢门特病种，但无有效备案：按普通门诊结算")
    return Decision(med_type=rules.ordinary_med_type, why="诊断不属门慢门特病种：按普通门诊结算")


@lru_cache(maxsize=8)
def load_rules(path: str | None = None) -> ChronicRules:
    """The rules of ``path`` (YAML), or the shipped example; ConfigurationError naming the file if wrong."""
    where = path or "yibao/registration/data/chronic_rules.yaml"
    try:
        text = Path(path).read_text(encoding="utf-8") if path else (
            resources.files("yibao.registration") / "data" / "chronic_rules.yaml").read_text(encoding="utf-8")
        return ChronicRules.model_validate(yaml.safe_load(text))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"chronic rules {where}: cannot be read ({type(exc).__name__})") from None
    except ValidationError as exc:
        raise ConfigurationError(f"chronic rules {where}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
