"""工伤保险跨省异地就医: the work-injury platform's digital envelope (SM4 data, SM2-wrapped key, SM2 signature)
its per-call record limits, and the client the chains call (:class:`WorkInjuryClient`: catalog validation, the
envelope, outcome classification, the call log). The wire layout is configurable (:mod:`.settings`); facts in
../shared/spec/workinjury.md.
"""

from __future__ import annotations

from yibao.envelope.workinjury.client import WorkInjuryClient, WorkInjuryResponse
from yibao.envelope.workinjury.codec import WorkInjuryCodec, WorkInjuryMessage
from yibao.envelope.workinjury.limits import check_record_limits, record_limit
from yibao.envelope.workinjury.settings import WorkInjuryFieldNames, WorkInjuryPlatformSettings, WorkInjurySettings

__all__ = [
    "WorkInjuryClient",
    "WorkInjuryResponse",
    "WorkInjuryPlatformSettings",
    "WorkInjuryCodec",
    "WorkInjuryMessage",
    "WorkInjuryFieldNames",
    "WorkInjurySettings",
    "check_record_limits",
    "record_limit",
]
