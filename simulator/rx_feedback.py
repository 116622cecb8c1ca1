"""The prescription centre calling the hospital back (``direction: in`` in the catalog): once a 7101 电子处方上传 is
accepted, a pharmacy reviews the prescription and the platform posts 7102 处方审核结果反馈 to the hospital; an
approved prescription is then bought, and 7103 处方购药结果反馈 follows with what was dispensed and how it was
settled. Off unless ``rx_feedback_url`` is set (existing runs are unaffected).

The review's verdict is a rule (:meth:`RxFeedback.approves`): a prescription whose hosp_rxno matches
``rx_reject_pattern`` is rejected; else a seeded share ``rx_reject_ratio`` is (the same prescription gets the same
verdict on every run). The codes of the verdict (``rx_approved_code``/``rx_rejected_code``) are assumed: no public
code list of rx_chk_stas_codg exists.

Each message goes to the hospital's URL with the shared token (``rx_feedback_token`` in
``rx_feedback_token_header``) after ``rx_review_delay_s`` (7102) and ``rx_purchase_delay_s`` more (7103). A hospital
that does not answer (no connection, a 5xx, a body that is not an envelope) is asked again with the same msgid, up to
``rx_feedback_max_attempts`` times with a doubling delay; an answer — infcode 0, or -1 with its err_msg, or a 401/403
— ends the delivery. Every attempt is kept on the upload ledger (``GET /admin/uploads`` → ``rx_feedback``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import httpx

from yibao.core import clock

from .deliveries import Deliveries
from . import wire
from .uploads import uploads_of

if TYPE_CHECKING:
    from .national import NationalPlatform
    from .settings import SimulatorSettings

__all__ = ["RxFeedback", "review_input", "purchase_input"]

log = logging.getLogger(__name__)

_CENT = Decimal("0.01")
_FOUR = Decimal("0.0001")
#: the fund's share of a purchase the simulator settles (the rest: half personal account, half cash)
_FUND_SHARE = Decimal("0.70")


def review_input(settings: SimulatorSettings, hi_rxno: str, approved: bool, when: Any) -> dict[str, Any]:
    """The 7102 input: the reviewing pharmacy, its pharmacists, the verdict and when."""
    return {"data": {
        "hi_rxno": hi_rxno, "fixmedins_name": settings.rx_pharmacy_name, "fixmedins_code": settings.rx_pharmacy_code,
        "phar_cert_type": "01", "phar_certno": "440100199001010022", "phar_name": "审方药师甲",
        "phar_prac_cert_no": "YSZG2024000001", "rchk_phar_cert_type": "01", "rchk_phar_certno": "440100198801010033",
        "rchk_phar_name": "复核药师乙",
        "rx_chk_stas_codg": settings.rx_approved_code if approved else settings.rx_rejected_code,
        "rx_chk_opnn": "审核通过" if approved else "审核不通过：用法用量超出说明书范围（模拟）",
        "rx_chk_time": clock.format_datetime(when)}}


def purchase_input(settings: SimulatorSettings, hi_rxno: str, prescription: dict[str, Any], when: Any) -> dict[str, Any]:
    """The 7103 input: every drug of the prescription (rxdrugdetail) dispensed, and the settlement's totals — the
    fund pays 70%, the rest is half personal account, half cash. Exact decimals throughout."""
    lines = []
    for i, d in enumerate(x for x in prescription.get("rxdrugdetail") or [] if isinstance(x, dict)):
        pric = Decimal(str(d.get("drug_pric") or "12.50")).quantize(_FOUR)
        cnt = Decimal(str(d.get("drug_cnt") or 1)).quantize(_FOUR)
        lines.append({
            "medins_drug_no": str(d.get("fixmedins_hilist_id") or d.get("med_list_codg") or f"D{i}")[:36],
            "drug_genname": str(d.get("drug_genname") or "")[:100],
            "drug_prodname": str(d.get("drug_prodname") or d.get("drug_genname") or "")[:100],
            "drug_dosform": str(d.get("drug_dosform") or "片剂")[:50], "drug_spec": str(d.get("drug_spec") or "-")[:50],
            "drug_totlcnt": cnt, "aprvno": "国药准字H00000000", "bchno": f"B{hi_rxno[-8:]}{i:02d}",
            "fixmedins_code": settings.rx_pharmacy_code[:50], "fixmedins_name": settings.rx_pharmacy_name[:50],
            "manu_lot_num": "L20240101", "prdr_name": str(d.get("prdr_name") or "模拟制药有限公司")[:100],
            "pric": pric, "total_unit": str(d.get("drug_cnt_unit") or "盒")[:20],
            "sumamt": (pric * cnt).quantize(_CENT, ROUND_HALF_UP)})
    total = sum((x["sumamt"] for x in lines), Decimal("0.00"))
    fund = (total * _FUND_SHARE).quantize(_CENT, ROUND_HALF_UP)
    own = total - fund
    acct = (own / 2).quantize(_CENT, ROUND_DOWN)
    return {"data": {"hi_rxno": hi_rxno, "fund_pay_sumamt": fund, "psn_part_amt": own, "acct_pay": acct,
                     "psn_cash_pay": own - acct, "setl_time": clock.format_datetime(when)},
            "seltdelts": lines}


class RxFeedback(Deliveries):
    """Posts 7102 (and 7103 for approved prescriptions) to the hospital for every 7101 the platform accepted."""

    def __init__(self, settings: SimulatorSettings, national: NationalPlatform) -> None:
        super().__init__()
        self.settings = settings
        self.national = national
        self._pattern = re.compile(settings.rx_reject_pattern) if settings.rx_reject_pattern else None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.rx_feedback_url)

    # --- the rule ----------------------------------------------------------------------------------------------
    def approves(self, hosp_rxno: str) -> bool:
        """The pharmacy's verdict: rejected when hosp_rxno matches ``rx_reject_pattern``, else rejected for a seeded
        share ``rx_reject_ratio`` of prescriptions, else approved."""
        if self._pattern is not None and self._pattern.search(hosp_rxno):
            return False
        ratio = self.settings.rx_reject_ratio
        if ratio <= 0:
            return True
        draw = int(hashlib.sha256(f"{self.settings.seed}|{hosp_rxno}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return draw >= ratio

    # --- scheduling --------------------------------------------------------------------------------------------
    def schedule_accepted(self) -> None:
        """Start the feedback of every 7101 accepted since the last call (the platform's HTTP face calls this after
        each request; the uploads handler queues them)."""
        up = uploads_of(self.national.ledger)
        with up.lock:
            accepted, up.rx_accepted = list(up.rx_accepted), []
        if not accepted or not self.enabled:
            return
        for hi_rxno, hosp_rxno, fixmedins_code, content in accepted:
            self._start(self._feedback(hi_rxno, hosp_rxno, fixmedins_code, content))

    async def _feedback(self, hi_rxno: str, hosp_rxno: str, fixmedins_code: str, content: dict[str, Any]) -> None:
        s = self.settings
        await asyncio.sleep(s.rx_review_delay_s)
        approved = self.approves(hosp_rxno)
        answer = await self.deliver("7102", fixmedins_code, hi_rxno,
                                    review_input(s, hi_rxno, approved, self.national.clock.now()),
                                    verdict="approved" if approved else "rejected")
        if not approved or answer is None:
            return
        await asyncio.sleep(s.rx_purchase_delay_s)
        await self.deliver("7103", fixmedins_code, hi_rxno, purchase_input(s, hi_rxno, content, self.national.clock.now()))

    def envelope(self, infno: str, fixmedins_code: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The national envelope, as the platform addresses the institution: a platform msgid (30 characters)."""
        return {"infno": infno, "msgid": self.national.new_id(10), "mdtrtarea_admvs": self.settings.admdvs,
                "insuplc_admdvs": "", "recer_sys_code": "CFLZ", "dev_no": "", "dev_safe_info": "", "cainfo": "",
                "signtype": "", "infver": "V1.0", "opter_type": "1", "opter": "CFLZ", "opter_name": "处方流转中心",
                "inf_time": clock.format_datetime(self.national.clock.now()), "fixmedins_code": fixmedins_code,
                "fixmedins_name": "", "sign_no": "", "input": payload}

    async def deliver(self, infno: str, fixmedins_code: str, hi_rxno: str, payload: dict[str, Any], *,
                      verdict: str | None = None, envelope: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Post one message until the hospital answers; its answer (None: it never did)."""
        s = self.settings
        env = envelope or self.envelope(infno, fixmedins_code, payload)
        headers = {"content-type": "application/json;charset=UTF-8"}
        if s.rx_feedback_token:
            headers[s.rx_feedback_token_header] = s.rx_feedback_token
        delay = s.rx_feedback_retry_s
        for attempt in range(1, s.rx_feedback_max_attempts + 1):
            entry: dict[str, Any] = {"infno": infno, "msgid": env["msgid"], "hi_rxno": hi_rxno, "attempt": attempt,
                                     "verdict": verdict, "data": env["input"].get("data"),
                                     "time": clock.format_datetime(clock.now())}
            answer: dict[str, Any] | None = None
            try:
                response = await self._http.post(s.rx_feedback_url, content=wire.dumps_bytes(env), headers=headers)
                entry["http_status"] = response.status_code
                body = wire.loads(response.content) if response.content else None
                if isinstance(body, dict) and "infcode" in body and (response.status_code < 500):
                    answer = body
            except httpx.HTTPError as exc:
                entry["error"] = type(exc).__name__
            except ValueError:
                entry["error"] = "not an envelope"
            if answer is not None:
                entry.update(infcode=answer.get("infcode"), err_msg=answer.get("err_msg"))
            self._keep(entry)
            if answer is not None:
                return answer
            if attempt < s.rx_feedback_max_attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        log.warning("rx feedback given up", extra={"fields": {"infno": infno, "msgid": env["msgid"],
                                                               "attempts": s.rx_feedback_max_attempts}})
        return None

    def _keep(self, entry: dict[str, Any]) -> None:
        up = uploads_of(self.national.ledger)
        with up.lock:
            up.rx_feedback.append(entry)
