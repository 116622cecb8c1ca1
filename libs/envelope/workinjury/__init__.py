"""工伤保险跨省异地就医: the work-injury platform's digital envelope (SM4 data, SM2-wrapped key, SM2 signature)
and its per-call record limits. The wire layout is configurable (:mod:`.settings`); facts in
../shared/spec/workinjury.md.
"""

from __future__ import annotations

from yibao.envelope.workinjury.codec import WorkInjuryCodec, WorkInjuryMessage
from yibao.envelope.workinjury.limits import check_record_limits, record_limit
from yibao.envelope.workinjury.settings import WorkInjuryFieldNames, WorkInjurySettings

__all__ = [
    "WorkInjuryCodec",
    "WorkInjuryMessage",
    "WorkInjuryFieldNames",
    "WorkInjurySettings",
    "check_record_limits",
    "record_limit",
]
