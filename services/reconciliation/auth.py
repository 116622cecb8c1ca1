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

import hashlib
import hmac
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from yibao.core.errors import ConfigurationError

from .errors import FourEyesViolation, NotAuthenticated, PermissionDenied

__all__ = [
    "ROLES",
    "PERMISSIONS",
    "Principal",
    "authorize",
    "check_four_eyes",
    "StaticTokens",
    "OidcVerifier",
    "Authenticator",
    "bearer_token",
    "token_digest",
    "looks_like_jwt",
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

#: a token longer than this is not a token (and is not hashed)
MAX_TOKEN_CHARS = 8192
#: static tokens shorter than this are refused when the file is read
MIN_STATIC_TOKEN_CHARS = 16


@dataclass(frozen=True)
class Principal:
    """An authenticated user: ``user`` as the identity provider or the token file names them."""

    user: str
    roles: frozenset[str]
    method: str  #: oidc | static | command | cli

    def can(self, permission: str) -> bool:
        return bool(self.roles & PERMISSIONS[permission])

    def role_for(self, permission: str) -> str:
        """The role that grants ``permission`` (the first in :data:`ROLES` order), for the audit row."""
        for role in ROLES:
            if role in self.roles and role in PERMISSIONS[permission]:
                return role
        return ",".join(sorted(self.roles))

    @property
    def roles_text(self) -> str:
        return ",".join(r for r in ROLES if r in self.roles) or "-"


_WHAT = {
    "run.trigger": "trigger a reconciliation run",
    "run.read": "read reconciliation runs",
    "personal.read": "see personal data",
    "repair.decide": "approve or reject repairs",
    "report.download": "download reports",
    "audit.read": "read the audit log",
}


def authorize(principal: Principal, permission: str) -> str:
    """The role granting ``permission``; PermissionDenied naming the roles needed otherwise."""
    if principal.can(permission):
        return principal.role_for(permission)
    needed = " or ".join(sorted(PERMISSIONS[permission]))
    raise PermissionDenied(f"{principal.user} ({principal.roles_text}) may not {_WHAT[permission]}: "
                           f"the {needed} role is needed")


def check_four_eyes(user: str, requested_by: str | None, run_id: str) -> None:
    """Refuse a decision on a run's repairs by the user who requested that run."""
    if requested_by and user.strip().casefold() == requested_by.strip().casefold():
        raise FourEyesViolation(f"four eyes: {user} requested run {run_id}, so another approver must approve "
                                "or reject its repairs")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).digest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header; None when there is none; NotAuthenticated when the
    header is there but is not a bearer credential."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and all(token.split("."))


def _read_structured(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{what} {path} cannot be read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON: both are accepted
    except yaml.YAMLError:
        raise ConfigurationError(f"{what} {path} is neither YAML nor JSON") from None


def _roles(value: Any, where: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
        raise ConfigurationError(f"{where}: roles must be a non-empty list of {', '.join(ROLES)}")
    wrong = sorted(set(value) - set(ROLES))
    if wrong:
        raise ConfigurationError(f"{where}: unknown roles {wrong}; ours are {', '.join(ROLES)}")
    return frozenset(value)


@dataclass(frozen=True)
class _StaticUser:
    user: str
    roles: frozenset[str]
    digest: bytes = field(repr=False)


class StaticTokens:
    """The static-token users, read from a secret file (and read again when the file changes).

    File (YAML or JSON)::

        users:
          - user: li.na
            roles: [clerk]
            token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
          - user: wang.fang
            roles: [approver]
            token: a-long-random-secret-of-at-least-16-characters
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._users: tuple[_StaticUser, ...] = ()
        self._load()

    @staticmethod
    def parse(data: Any, where: str) -> tuple[_StaticUser, ...]:
        entries = data.get("users") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise ConfigurationError(f"{where}: expected a list 'users' of {{user, roles, token}}")
        users: list[_StaticUser] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries, start=1):
            at = f"{where} user #{i}"
            if not isinstance(entry, dict) or not isinstance(entry.get("user"), str) or not entry["user"].strip():
                raise ConfigurationError(f"{at}: 'user' (a name) is required")
            name = entry["user"].strip()
            if name.casefold() in seen:
                raise ConfigurationError(f"{at}: user {name} is listed twice")
            seen.add(name.casefold())
            token, hashed = entry.get("token"), entry.get("token_sha256")
            if (token is None) == (hashed is None):
                raise ConfigurationError(f"{at} ({name}): give exactly one of token or token_sha256")
            if token is not None:
                if not isinstance(token, str) or len(token) < MIN_STATIC_TOKEN_CHARS:
                    raise ConfigurationError(f"{at} ({name}): the token must be text of at least "
                                             f"{MIN_STATIC_TOKEN_CHARS} characters")
                digest = token_digest(token)
            else:
                try:
                    digest = bytes.fromhex(str(hashed))
                except ValueError:
                    digest = b""
                if len(digest) != 32:
                    raise ConfigurationError(f"{at} ({name}): token_sha256 must be 64 hex digits")
            users.append(_StaticUser(name, _roles(entry.get("roles"), f"{at} ({name})"), digest))
        return tuple(users)

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise ConfigurationError(f"static tokens file {self.path} cannot be read: {exc.strerror}") from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return
        users = self.parse(_read_structured(self.path, "static tokens file"), f"static tokens file {self.path}")
        self._users, self._stamp = users, stamp

    def verify(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise NotAuthenticated("unknown token")
        with self._lock:
            try:
                self._load()
            except ConfigurationError:
                pass  # a file being rewritten: the users read last stay in force
            users = self._users
        presented = token_digest(token)
        found: _StaticUser | None = None
        for user in users:  # every entry is compared, so the time taken does not tell which matched
            if hmac.compare_digest(presented, user.digest):
                found = user
        if found is None:
            raise NotAuthenticated("unknown token")
        return Principal(found.user, found.roles, "static")


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


class OidcVerifier:
    """Verifies the identity provider's JWTs (PyJWT with its ``crypto`` extra for RSA and EC keys)."""

    def __init__(self, *, issuer: str, audience: str, algorithms: Iterable[str], leeway_s: float = 60.0,
                 jwks_url: str = "", jwks_file: Path | None = None, user_claim: str = "preferred_username",
                 roles_claim: str = "roles", role_map: Mapping[str, str] | None = None,
                 cache_s: float = 300.0) -> None:
        import jwt

        if not issuer or not audience:
            raise ConfigurationError("OIDC needs both oidc_issuer and oidc_audience")
        if not jwks_url and jwks_file is None:
            raise ConfigurationError("OIDC needs oidc_jwks_url or oidc_jwks_file")
        self.issuer, self.audience = issuer, audience
        self.algorithms = [a for a in algorithms]
        self.leeway_s = leeway_s
        self.user_claim, self.roles_claim = user_claim, roles_claim
        self.role_map = dict(role_map or {})
        self.jwks_file = Path(jwks_file) if jwks_file is not None else None
        self._file_keys: tuple[float, Any] | None = None
        self._client = (jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=int(cache_s), timeout=10)
                        if jwks_url and self.jwks_file is None else None)

    def _key_from_file(self, kid: str | None) -> Any:
        import jwt

        assert self.jwks_file is not None
        try:
            mtime = self.jwks_file.stat().st_mtime
        except OSError as exc:
            raise ConfigurationError(f"JWKS file {self.jwks_file} cannot be read: {exc.strerror}") from None
        if self._file_keys is None or self._file_keys[0] != mtime:
            try:
                keys = jwt.PyJWKSet.from_dict(json.loads(self.jwks_file.read_text(encoding="utf-8")))
            except (ValueError, jwt.PyJWKSetError, jwt.InvalidKeyError) as exc:
                raise ConfigurationError(f"JWKS file {self.jwks_file} is not a key set: {exc}") from None
            self._file_keys = (mtime, keys)
        keyset = self._file_keys[1]
        candidates = [k for k in keyset.keys if kid is None or k.key_id == kid]
        if not candidates:
            raise NotAuthenticated("the token's signing key (kid) is not among the provider's keys")
        return candidates[0]

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; NotAuthenticated saying what is wrong otherwise (blocking: the JWKS
        may be fetched)."""
        import jwt

        if len(token) > MAX_TOKEN_CHARS:
            raise NotAuthenticated("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise NotAuthenticated("not a JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise NotAuthenticated("unsigned tokens (alg none) are refused")
        if alg not in self.algorithms:
            raise NotAuthenticated(f"tokens signed with {alg[:20]} are refused; accepted: "
                                   f"{', '.join(self.algorithms)}")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        try:
            if self._client is not None:
                key = self._client.get_signing_key(kid) if kid else self._client.get_signing_key_from_jwt(token)
            else:
                key = self._key_from_file(kid)
        except jwt.PyJWKClientConnectionError:
            raise NotAuthenticated("the identity provider's keys (JWKS) cannot be fetched now") from None
        except jwt.PyJWKClientError:
            raise NotAuthenticated("the token's signing key (kid) is not among the provider's keys") from None
        family = {"RS": "RSA", "PS": "RSA", "ES": "EC"}[alg[:2]]
        if getattr(key, "key_type", family) != family:
            raise NotAuthenticated(f"the signing key is not an {family} key, as {alg} needs")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway_s, options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise NotAuthenticated("the token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated("the token was issued by another issuer") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated("the token is meant for another audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise NotAuthenticated(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise NotAuthenticated("the token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise NotAuthenticated(f"the token is not valid: {type(exc).__name__}") from None
        user = claims.get(self.user_claim) or claims.get("sub")
        if not isinstance(user, str) or not user.strip():
            raise NotAuthenticated(f"the token names no user ({self.user_claim} / sub)")
        return Principal(user.strip()[:128], self._our_roles(_claim(claims, self.roles_claim)), "oidc")

    def _our_roles(self, value: Any) -> frozenset[str]:
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, list):
            return frozenset()
        names = [v for v in value if isinstance(v, str)]
        if self.role_map:
            return frozenset(self.role_map[n] for n in names if n in self.role_map)
        return frozenset(n for n in names if n in ROLES)


class Authenticator:
    """Both modes behind one call: a JWT goes to the OIDC verifier, anything else to the static tokens."""

    def __init__(self, *, static: StaticTokens | None = None, oidc: OidcVerifier | None = None) -> None:
        self.static, self.oidc = static, oidc

    @classmethod
    def from_settings(cls, settings: Any) -> "Authenticator":
        static = StaticTokens(settings.auth_static_tokens_file) if settings.auth_static_tokens_file else None
        oidc = None
        if settings.oidc_issuer:
            oidc = OidcVerifier(
                issuer=settings.oidc_issuer, audience=settings.oidc_audience, algorithms=settings.oidc_algorithms,
                leeway_s=settings.oidc_leeway_s, jwks_url=settings.oidc_jwks_url,
                jwks_file=settings.oidc_jwks_file, user_claim=settings.oidc_user_claim,
                roles_claim=settings.oidc_roles_claim, role_map=settings.oidc_role_map,
                cache_s=settings.oidc_jwks_cache_s)
        return cls(static=static, oidc=oidc)

    @property
    def enabled(self) -> bool:
        return self.static is not None or self.oidc is not None

    def modes(self) -> list[str]:
        return [m for m, on in (("oidc", self.oidc is not None), ("static", self.static is not None)) if on]

    def verify(self, token: str) -> Principal:
        """Blocking (an OIDC key may be fetched): call it in a thread from async code."""
        if not self.enabled:
            raise NotAuthenticated("no way to log in is configured (set auth_static_tokens_file or oidc_issuer)")
        if looks_like_jwt(token) and self.oidc is not None:
            principal = self.oidc.verify(token)
        elif self.static is not None:
            principal = self.static.verify(token)
        else:
            raise NotAuthenticated("unknown token")
        return principal  # a user holding none of our roles is known, and refused (403) by authorize

    async def averify(self, token: str) -> Principal:
        import asyncio

        if self.oidc is not None and looks_like_jwt(token):
            return await asyncio.to_thread(self.verify, token)
        return self.verify(token)

