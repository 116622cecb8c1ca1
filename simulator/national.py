"""The national platform's brain: envelope rules, msgid bookkeeping and dispatch to the transaction handlers.

Transport-free: the HTTP layer (http_platform.py) hands it a decoded envelope and gets the response envelope
back, so every rule is tested without a socket. Order of checks, as a platform applies them: envelope
shape → institution known → msgid unused → sign-in → 参保地 present and right → catalog → business rule.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yibao.core import clock

from .calls import Call
from .envelope_rules import check_envelope, input_has_psn_no
from .errors import PlatformRefusal
from .platform_clock import PlatformClock
from .policy import DEFAULT_POLICY, SettlementPolicy
from .settings import SimulatorSettings
from .state import Ledger, MessageRecord

__all__ = ["NationalPlatform", "Outcome", "Handler", "HANDLERS", "ts17"]

log = logging.getLogger(__name__)

Handler = Callable[[Call], dict[str, Any]]

#: infno -> handler; filled by the handler modules (imported at the bottom)
HANDLERS: dict[str, Handler] = {}


def ts17(when: dt.datetime) -> str:
    """``yyyyMMddHHmmssSSS`` (refmsg_time, respond_time)."""
    when = clock.as_shanghai(when)
    return when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"


@dataclass
class Outcome:
    """The response envelope, plus the file bytes when the answer is a 9102 stream."""

    response: dict[str, Any]
    file: tuple[str, bytes] | None = None
    msgid: str = ""
    infno: str = ""

    @property
    def ok(self) -> bool:
        return str(self.response.get("infcode")) == "0"


class NationalPlatform:
    def __init__(
        self,
        settings: SimulatorSettings,
        ledger: Ledger,
        platform_clock: PlatformClock | None = None,
        policy: SettlementPolicy = DEFAULT_POLICY,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.clock = platform_clock or PlatformClock()
        self.policy = policy
        self._catalog: Any = None
        self._catalog_loaded = False

    # --- identifiers ---------------------------------------------------------------------------------------
    def new_id(self, width: int = 8) -> str:
        """admdvs(6) + yyyyMMddHHmmss(14) + serial: unique within a run by construction."""
        now = self.clock.now()
        return f"{self.settings.admdvs}{now:%Y%m%d%H%M%S}{self.clock.serial() % 10**width:0{width}d}"

    def _refmsgid(self, now: dt.datetime) -> str:
        return f"{self.settings.admdvs}{now:%Y%m%d%H%M%S}{self.clock.serial() % 10**10:010d}"

    # --- catalog ---------------------------------------------------------------------------------------------
    def catalog(self) -> Any:
        """yibao.envelope.catalog when installed (validates inputs as the platform would), else None."""
        if not self._catalog_loaded:
            self._catalog_loaded = True
            if not self.settings.validate_with_catalog:
                return None
            try:
                from yibao.envelope.catalog import Catalog  # type: ignore[import-not-found]

                self._catalog = Catalog.load(self.settings.catalog_province or None)
            except Exception as exc:  # noqa: BLE001 - absent or broken catalog: run on our own checks
                log.warning("catalog unavailable, validating with the simulator's own rules: %s", type(exc).__name__)
                self._catalog = None
        return self._catalog

    def reversible(self, infno: str) -> bool:
        """Whether 2601 may reverse ``infno``: the setting, else the catalog's fact (the same one the bridge reads)."""
        if self.settings.reversible_infnos is not None:
            return infno in self.settings.reversible_infnos
        from yibao.envelope.catalog import Catalog

        catalog = self.catalog() or Catalog.load(self.settings.catalog_province or None)
        return infno in catalog and catalog.transaction(infno).reversible

    def _validate_with_catalog(self, infno: str, payload: dict[str, Any]) -> str | None:
        """The first rule of the catalog's field list (the bridge's own data, province applied) the input breaks.

        Every transaction served is validated this way when the catalog has its field list; one without (not yet
        catalogued) is left to the handler's own checks."""
        catalog = self.catalog()
        if catalog is None or infno not in catalog or not catalog.has_schema(infno):
            return None
        from yibao.envelope.errors import EnvelopeValidationError

        try:
            catalog.validate_input(infno, payload)
        except EnvelopeValidationError as exc:
            return f"input.{exc.path}: {exc.rule}" if exc.path else f"input: {exc.rule}"
        return None

    def _unsupported(self) -> str:
        """How the platform words a transaction it does not serve (the catalog's wording, province applied)."""
        from yibao.envelope.catalog import Catalog

        catalog = self.catalog() or Catalog.load(self.settings.catalog_province or None)
        try:
            phrase = catalog.wording("unsupported_transaction")[0]
        except Exception:  # noqa: BLE001 - a catalog without that list: the plain words
            phrase = "交易编号不存在"
        return f"envelope.infno: {phrase} (transaction not supported by this platform)"

    # --- responses -------------------------------------------------------------------------------------------
    def _infcode(self, ok: bool) -> int | str:
        code = 0 if ok else -1
        return str(code) if self.settings.infcode_as_string else code

    def answer(self, received: dt.datetime, *, output: dict[str, Any] | None = None, err_msg: str = "") -> dict:
        now = self.clock.now()
        return {
            "infcode": self._infcode(not err_msg),
            "inf_refmsgid": self._refmsgid(now),
            "refmsg_time": ts17(received),
            "respond_time": ts17(now),
            "err_msg": err_msg[:200],
            "output": output if output is not None else {},
            "warn_msg": "",
        }

    # --- the entry point -------------------------------------------------------------------------------------
    def process(
        self,
        envelope: Any,
        *,
        file_bytes: bytes | None = None,
        file_name: str = "",
        forced_error: str | None = None,
    ) -> Outcome:
        received = self.clock.now()
        if not isinstance(envelope, dict):
            return Outcome(self.answer(received, err_msg="request body is not a JSON envelope object"))
        problem = check_envelope(envelope)
        infno = str(envelope.get("infno") or "")
        msgid = str(envelope.get("msgid") or "")
        if problem:
            return Outcome(self.answer(received, err_msg=f"[{infno or '?'}] {problem}"), infno=infno)
        fixmedins_code = str(envelope["fixmedins_code"])
        with self.ledger.lock:
            if fixmedins_code not in self.ledger.institutions:
                return self._fail(received, infno, msgid, "envelope.fixmedins_code: unknown institution (定点医药机构不存在)")
            if msgid in self.ledger.messages:
                return self._fail(received, infno, msgid, "envelope.msgid: already used (报文ID重复)")
            record = MessageRecord(msgid=msgid, infno=infno, fixmedins_code=fixmedins_code, received=received)
            self.ledger.messages[msgid] = record
            try:
                self._check_session(envelope, infno, fixmedins_code)
                payload: dict[str, Any] = envelope["input"]
                self._check_insuplc(envelope, infno, payload)
                handler = HANDLERS.get(infno)
                if handler is None:
                    raise PlatformRefusal(infno, self._unsupported())
                problem = self._validate_with_catalog(infno, payload)
                if problem:
                    raise PlatformRefusal(infno, problem)
                if forced_error:
                    raise PlatformRefusal(infno, forced_error)
                catalog = self.catalog()
                if catalog is not None:  # the province's spellings (dscgTime, REFD_SETL_FLAG …) → the names
                    payload = catalog.read_input(infno, payload)
                call = Call(self, infno, msgid, fixmedins_code, envelope, payload, received, record,
                            file_bytes=file_bytes, file_name=file_name)
                output = handler(call)
                if catalog is not None:  # answered as this province's platform spells it (2401 under result …)
                    output = catalog.write_output(infno, output)
            except PlatformRefusal as exc:
                record.infcode = -1
                record.effect = {"error": exc.err_msg}
                return Outcome(self.answer(received, err_msg=exc.err_msg), msgid=msgid, infno=infno)
            file = call.extra.get("file")
            return Outcome(self.answer(received, output=output), file=file, msgid=msgid, infno=infno)

    def _fail(self, received: dt.datetime, infno: str, msgid: str, message: str) -> Outcome:
        return Outcome(self.answer(received, err_msg=f"[{infno}] {message}"), msgid=msgid, infno=infno)

    def _check_session(self, env: dict[str, Any], infno: str, fixmedins_code: str) -> None:
        if infno == "9001" or not self.settings.require_sign_in:
            return
        sign_no = str(env.get("sign_no") or "")
        if not sign_no:
            raise PlatformRefusal(infno, "envelope.sign_no: required (9001 签到 first)")
        session = self.ledger.sessions.get(sign_no)
        if session is None or session.fixmedins_code != fixmedins_code:
            raise PlatformRefusal(infno, "envelope.sign_no: unknown sign-in serial (签到编号无效)")
        if not session.active:
            raise PlatformRefusal(infno, "envelope.sign_no: signed out (已签退), sign in again with 9001")

    def _check_insuplc(self, env: dict[str, Any], infno: str, payload: dict[str, Any]) -> None:
        psn_no = input_has_psn_no(payload)
        if not psn_no:
            return
        insuplc = str(env.get("insuplc_admdvs") or "")
        if not insuplc:
            raise PlatformRefusal(infno, "envelope.insuplc_admdvs: required when the input carries psn_no")
        person = self.ledger.persons.get(psn_no)
        if person is not None and person.insuplc_admdvs != insuplc:
            raise PlatformRefusal(infno, "envelope.insuplc_admdvs: not the person's 参保地 (from 1101 insuinfo)")


# the handler modules add their transactions to HANDLERS
from . import counter, inpatient, outpatient, queries, reconcile, reversal, uploads, visit_queries  # noqa: E402

for _module in (outpatient, inpatient, queries, visit_queries, reconcile, reversal, uploads, counter):
    _module.register(HANDLERS)
