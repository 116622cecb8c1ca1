"""Who is asking, and what they may do: identities, roles and four eyes for finance's actions.

Two ways to prove an identity, usable together:

* **OIDC/JWT bearer tokens** from the hospital's identity provider. The signature is verified with the
  provider's keys (JWKS, fetched from ``oidc_jwks_url`` and cached, or read from ``oidc_jwks_file``), only with
  the asymmetric algorithms configured (RS256 and ES256 by default: ``none`` and HS* are never accepted, so a
  public key can never be used as an HMAC secret), and the issuer, audience, expiry and not-before are checked
  with a small leeway. The user is the ``oidc_user_claim`` (else ``sub``); the roles come from
  ``oidc_roles_claim`` (a dotted path), mapped through ``oidc_role_map``.
* **Static tokens** for small sites: a secret file lists users, each bound to roles and a token (or its
  SHA-256). A presented token is hashed and compared with every user's in constant time; tokens are never
  logged, stored in clear by us, or echoed in an error.

Roles and what they allow (:data:`PERMISSIONS` is the one place this is decided):

=============  =====================================================================================
``clerk``      triggers runs; reads runs, differences (with psn_no) and downloads reports
``approver``   approves or rejects repairs (never of a run they requested: four eyes); reads as a clerk
``ops``        reads runs and differences with personal data masked, and the audit log; nothing else
=============  =====================================================================================

Four eyes: :func:`check_four_eyes` refuses a decision on a run by the user who requested it.
"""

from __future__ import annotations

from typing import Any

from yibao.core import access
from yibao.core.access import (
    MAX_TOKEN_CHARS,
    MIN_STATIC_TOKEN_CHARS,
    bearer_token,
    looks_like_jwt,
    token_digest,
)
from yibao.core.access import read_structured as _read_structured

from .errors import FourEyesViolation

__all__ = [
    "ROLES",
    "PERMISSIONS",
    "POLICY",
    "Principal",
    "authorize",
    "check_four_eyes",
    "StaticTokens",
    "OidcVerifier",
    "Authenticator",
    "bearer_token",
    "token_digest",
    "looks_like_jwt",
    "MAX_TOKEN_CHARS",
    "MIN_STATIC_TOKEN_CHARS",
]

ROLES: tuple[str, ...] = ("clerk", "approver", "ops")

#: permission → the roles that hold it
PERMISSIONS: dict[str, frozenset[str]] = {
    "run.trigger": frozenset({"clerk"}),
    "run.read": frozenset({"clerk", "approver", "ops"}),
    "personal.read": frozenset({"clerk", "approver"}),
    "repair.decide": frozenset({"approver"}),
    "report.download": frozenset({"clerk", "approver"}),
    "audit.read": frozenset({"approver", "ops"}),
}

_WHAT = {
    "run.trigger": "trigger a reconciliation run",
    "run.read": "read reconciliation runs",
    "personal.read": "see personal data",
    "repair.decide": "approve or reject repairs",
    "report.download": "download reports",
    "audit.read": "read the audit log",
}


class Principal(access.Principal):
    """An authenticated finance user (the identity machinery is :mod:`yibao.core.access`'s)."""

    def can(self, permission: str) -> bool:
        return POLICY.can(self, permission)

    def role_for(self, permission: str) -> str:
        """The role that grants ``permission`` (the first in :data:`ROLES` order), for the audit row."""
        return POLICY.role_for(self, permission)

    @property
    def roles_text(self) -> str:
        return POLICY.roles_text(self)


POLICY = access.Policy(ROLES, PERMISSIONS, _WHAT, principal=Principal)


def authorize(principal: access.Principal, permission: str) -> str:
    """The role granting ``permission``; PermissionDenied naming the roles needed otherwise."""
    return POLICY.authorize(principal, permission)


def check_four_eyes(user: str, requested_by: str | None, run_id: str) -> None:
    """Refuse a decision on a run's repairs by the user who requested that run."""
    if requested_by and user.strip().casefold() == requested_by.strip().casefold():
        raise FourEyesViolation(f"four eyes: {user} requested run {run_id}, so another approver must approve "
                                "or reject its repairs")


def _roles(value: Any, where: str) -> frozenset[str]:
    return POLICY.parse_roles(value, where)


class StaticTokens(access.StaticTokens):
    """Finance's static-token users (roles clerk, approver, ops)."""

    def __init__(self, path: Any) -> None:
        super().__init__(path, POLICY)


class OidcVerifier(access.OidcVerifier):
    """Finance's identity provider (roles clerk, approver, ops)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(policy=POLICY, **kwargs)


class Authenticator(access.Authenticator):
    @classmethod
    def from_settings(cls, settings: Any, policy: access.Policy = POLICY) -> "Authenticator":  # type: ignore[override]
        built = access.Authenticator.from_settings(settings, policy)
        return cls(static=built.static, oidc=built.oidc)
