"""Faults, switchable per run and per transaction, reproducible by seed, counted when they fire.

A rule is ``TARGET:KIND:PROBABILITY[:PARAM]`` (CLI ``--fault``, setting ``faults``, admin ``PUT /admin/faults``):

* TARGET — an infno (``2207``), ``*`` for every national transaction, a mobile-pay number (``6202``), or
  ``callback`` for the settlement-result callbacks;
* KIND —
  ``latency`` (PARAM: ``200`` fixed ms, ``50-300`` uniform ms, ``exp100`` exponential with mean 100 ms),
  ``business_error`` (infcode -1 without doing anything), ``http_5xx`` (PARAM: status, default 503; nothing
  done), ``reset`` (the connection is closed without an answer; nothing done),
  ``commit_then_timeout`` (the work is done, the reply held for settings.hold_s, then the connection dropped),
  ``drop_reply`` (the work is done, the connection closed at once without an answer),
  for ``callback``: ``duplicate`` (delivered twice), ``late`` (PARAM: seconds before the first attempt),
  ``lose`` (never delivered) and ``partial`` (delivered without the final status: ordStas 2, no amounts);
  for ``6203``: ``expire`` (the refund answers refStatus EXP, nothing moved);
  for ``wechat``: ``abandon`` (the patient never pays the cash part of a WeChat order) and ``partial_notify`` (the
  payment notification comes without mix_pay_status: the hospital must query);
  for ``wechat_refund`` (WeChat Pay's 申请退款, ``POST /v3/refund/domestic/refunds``): the before and after kinds
  (``wechat_refund:drop_reply:1`` — the cash is refunded, the answer lost: the hospital asks 退款查询);
  ``*`` never matches WeChat Pay's targets;
* PROBABILITY — 0..1.

Each rule draws from its own ``random.Random`` seeded by (run seed, rule text), one draw per matching call, so
the n-th call of a transaction meets the same faults on every run with the same seed.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

from .errors import SimulatorConfigError

__all__ = ["FaultRule", "FaultPlan", "Decision", "KINDS", "BEFORE_KINDS", "AFTER_KINDS", "CALLBACK_KINDS",
           "MOBILE_KINDS"]

BEFORE_KINDS = ("business_error", "http_5xx", "reset")
AFTER_KINDS = ("commit_then_timeout", "drop_reply")
CALLBACK_KINDS = ("duplicate", "late", "lose", "partial")
#: mobile-pay faults of one transaction: the kind and the transaction it applies to
MOBILE_KINDS = {"expire": "6203", "abandon": "wechat", "partial_notify": "wechat"}
KINDS = ("latency", *BEFORE_KINDS, *AFTER_KINDS, *CALLBACK_KINDS, *MOBILE_KINDS)


@dataclass
class FaultRule:
    target: str
    kind: str
    probability: float
    param: str = ""

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        parts = text.strip().split(":", 3)
        if len(parts) < 3:
            raise SimulatorConfigError(f"fault rule {text!r}: expected TARGET:KIND:PROBABILITY[:PARAM]")
        target, kind, prob = parts[0], parts[1], parts[2]
        if kind not in KINDS:
            raise SimulatorConfigError(f"fault rule {text!r}: unknown kind (one of {', '.join(KINDS)})")
        if (kind in CALLBACK_KINDS) != (target == "callback"):
            raise SimulatorConfigError(f"fault rule {text!r}: {'/'.join(CALLBACK_KINDS)} apply to target "
                                       "'callback' only")
        if target == "wechat_refund" and kind not in ("latency", *BEFORE_KINDS, *AFTER_KINDS):
            raise SimulatorConfigError(f"fault rule {text!r}: wechat_refund takes latency and the before/after kinds")
        if kind in MOBILE_KINDS and target != MOBILE_KINDS[kind]:
            raise SimulatorConfigError(f"fault rule {text!r}: {kind} applies to target {MOBILE_KINDS[kind]} only")
        try:
            probability = float(prob)
        except ValueError:
            raise SimulatorConfigError(f"fault rule {text!r}: probability is not a number") from None
        if not 0 <= probability <= 1:
            raise SimulatorConfigError(f"fault rule {text!r}: probability outside 0..1")
        rule = cls(target, kind, probability, parts[3] if len(parts) > 3 else "")
        rule.latency_s(random.Random(0))  # validate the parameter now, not on the first call
        return rule

    def text(self) -> str:
        return f"{self.target}:{self.kind}:{self.probability}" + (f":{self.param}" if self.param else "")

    def matches(self, target: str) -> bool:
        if self.target == "callback" or target == "callback" or target.startswith("wechat"):
            return self.target == target
        return self.target in ("*", target)

    def latency_s(self, rng: random.Random) -> float:
        if self.kind == "late":
            return float(self.param or 2.0)
        if self.kind != "latency":
            return 0.0
        p = self.param or "100"
        try:
            if p.startswith("exp"):
                return rng.expovariate(1000.0 / float(p[3:]))
            if "-" in p:
                low, high = (float(x) for x in p.split("-", 1))
                return rng.uniform(low, high) / 1000.0
            return float(p) / 1000.0
        except ValueError:
            raise SimulatorConfigError(f"fault rule {self.text()!r}: bad latency parameter") from None


@dataclass
class Decision:
    """What the faults decided for one call."""

    delay_s: float = 0.0
    before: str = ""  # business_error | http_5xx | reset | ""
    after: str = ""  # commit_then_timeout | drop_reply | ""
    status: int = 503
    duplicate: bool = False
    lose: bool = False  #: callback: never delivered
    partial: bool = False  #: callback: without the final status
    expire: bool = False  #: 6203: refStatus EXP
    abandon: bool = False  #: wechat: the cash part is never paid
    partial_notify: bool = False  #: wechat: the notification lacks mix_pay_status
    fired: list[str] = field(default_factory=list)


class FaultPlan:
    def __init__(self, seed: int, rules: list[str] | None = None) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.rules: list[FaultRule] = []
        self._rngs: list[random.Random] = []
        self.set_rules(rules or [])

    def set_rules(self, rules: list[str]) -> None:
        parsed = [FaultRule.parse(r) for r in rules]
        with self._lock:
            self.rules = parsed
            self._rngs = [random.Random(f"{self.seed}/{i}/{r.text()}") for i, r in enumerate(parsed)]

    def reset_counters(self) -> None:
        with self._lock:
            self.counters.clear()
            self.calls.clear()
            self._rngs = [random.Random(f"{self.seed}/{i}/{r.text()}") for i, r in enumerate(self.rules)]

    def decide(self, target: str) -> Decision:
        decision = Decision()
        with self._lock:
            self.calls[target] += 1
            for rule, rng in zip(self.rules, self._rngs):
                if not rule.matches(target):
                    continue
                hit = rng.random() < rule.probability
                delay = rule.latency_s(rng) if rule.kind in ("latency", "late") else 0.0
                if not hit:
                    continue
                if rule.kind in ("latency", "late"):
                    decision.delay_s += delay
                elif rule.kind in BEFORE_KINDS:
                    if decision.before:
                        continue
                    decision.before = rule.kind
                    if rule.kind == "http_5xx":
                        decision.status = int(rule.param or 503)
                elif rule.kind in AFTER_KINDS:
                    if decision.after:
                        continue
                    decision.after = rule.kind
                elif rule.kind in ("duplicate", "lose", "partial", "expire", "abandon", "partial_notify"):
                    setattr(decision, rule.kind, True)
                decision.fired.append(rule.kind)
                self.counters[f"{target}:{rule.kind}"] += 1
        return decision

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {"seed": self.seed, "rules": [r.text() for r in self.rules],
                    "counters": dict(self.counters), "calls": dict(self.calls)}
