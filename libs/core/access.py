"""Who is asking: identities for the people who act through a worker's HTTP API (finance, the lab, ops), and the
rows that record what they did.

One machinery, each service its own roles (a :class:`Policy`: the roles, the permissions they hold, how an action
is named in a refusal). Two ways to prove an identity, usable together:

* **OIDC/JWT bearer tokens** from the hospital's identity provider. The signature is verified with the
  provider's keys (JWKS, fetched from a URL and cached, or read from a file), only with the asymmetric algorithms
  configured (``none`` and HS* are never accepted, so a public key can never be used as an HMAC secret), and the
  issuer, audience, expiry and not-before are checked with a small leeway. The user is the user claim (else
  ``sub``); the roles come from the roles claim (a dotted path), mapped through a role map.
* **Static tokens** for small sites: a secret file lists users, each bound to roles and a token (or its
  SHA-256). A presented token is hashed and compared with every user's in constant time; tokens are never
  logged, stored in clear, or echoed in an error.

Used by reconciliation (clerk, approver, ops) and the counter (its 核酸 batch imports and exports). Errors:
:class:`NotAuthenticated` (401) and :class:`PermissionDenied` (403), both :class:`AuthError`. An audit row's
common columns come from :func:`audit_values` (who, in which role, how, from where; masked and cut to size).
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

from yibao.core import clock
from yibao.core.errors import ConfigurationError, YibaoError
from yibao.core.privacy import mask_text

__all__ = [
    "AuthError",
    "NotAuthenticated",
    "PermissionDenied",
    "Principal",
    "Policy",
    "StaticTokens",
    "OidcVerifier",
    "Authenticator",
    "Actor",
    "ANONYMOUS",
    "audit_values",
    "bearer_token",
    "token_digest",
    "looks_like_jwt",
    "read_structured",
    "MAX_TOKEN_CHARS",
    "MIN_STATIC_TOKEN_CHARS",
]

#: a token longer than this is not a token (and is not hashed)
MAX_TOKEN_CHARS = 8192
#: static tokens shorter than this are refused when the file is read
MIN_STATIC_TOKEN_CHARS = 16


class AuthError(YibaoError):
    """Who is asking, and whether they may: the base of the HTTP APIs' 401 and 403 answers."""

    code = "auth"
    status = 403


class NotAuthenticated(AuthError):
    """No credential, or one that does not verify (unknown token, bad signature, expired, wrong issuer …): 401.

    The message says what is wrong with the credential, never the credential itself."""

    code = "unauthenticated"
    status = 401


class PermissionDenied(AuthError):
    """An authenticated user whose roles do not allow the action: 403."""

    code = "forbidden"
    status = 403


@dataclass(frozen=True)
class Principal:
    """An authenticated user: ``user`` as the identity provider or the token file names them."""

    user: str
    roles: frozenset[str]
    method: str  #: oidc | static | command | cli | session


@dataclass(frozen=True)
class Policy:
    """A service's roles and what they allow: ``permissions`` maps a permission to the roles holding it, ``what``
    names the action in a refusal; ``principal`` is the class verified users are made of (a service may add
    methods)."""

    roles: tuple[str, ...]
    permissions: Mapping[str, frozenset[str]]
    what: Mapping[str, str]
    principal: type[Principal] = Principal

    def make(self, user: str, roles: Iterable[str], method: str) -> Principal:
        return self.principal(user, frozenset(roles), method)

    def can(self, principal: Principal, permission: str) -> bool:
        return bool(principal.roles & self.permissions[permission])

    def role_for(self, principal: Principal, permission: str) -> str:
        """The role that grants ``permission`` (the first in :attr:`roles` order), for the audit row."""
        for role in self.roles:
            if role in principal.roles and role in self.permissions[permission]:
                return role
        return ",".join(sorted(principal.roles))

    def roles_text(self, principal: Principal) -> str:
        return ",".join(r for r in self.roles if r in principal.roles) or "-"

    def authorize(self, principal: Principal, permission: str) -> str:
        """The role granting ``permission``; PermissionDenied naming the roles needed otherwise."""
        if self.can(principal, permission):
            return self.role_for(principal, permission)
        needed = " or ".join(sorted(self.permissions[permission]))
        raise PermissionDenied(f"{principal.user} ({self.roles_text(principal)}) may not {self.what[permission]}: "
                               f"the {needed} role is needed")

    def parse_roles(self, value: Any, where: str) -> frozenset[str]:
        """Roles as a configuration file gives them (a name or a list), checked against :attr:`roles`."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
            raise ConfigurationError(f"{where}: roles must be a non-empty list of {', '.join(self.roles)}")
        wrong = sorted(set(value) - set(self.roles))
        if wrong:
            raise ConfigurationError(f"{where}: unknown roles {wrong}; ours are {', '.join(self.roles)}")
        return frozenset(value)


@dataclass(frozen=True)
class Actor:
    """Who acts and from where, as an audit row names them."""

    user: str
    role: str
    method: str
    source: str

    def as_role(self, role: str) -> "Actor":
        return Actor(self.user, role, self.method, self.source)


def ANONYMOUS(source: str) -> Actor:  # noqa: N802 - reads as a constant at the call site
    return Actor("-", "-", "none", source)


def audit_values(actor: Actor, action: str, outcome: str, *, status: int | None = None,
                 detail: str | None = None) -> dict[str, Any]:
    """The columns every audit table has (at, actor, role, method, action, outcome, status, source, detail), cut to
    their sizes; ``detail`` masked (tokens and personal data are never written)."""
    return {"at": clock.now(), "actor": (actor.user or "-")[:128], "role": (actor.role or "-")[:64],
            "method": actor.method[:16], "action": action[:32], "outcome": outcome[:16], "status": status,
            "source": (actor.source or "-")[:200], "detail": mask_text(detail)[:2000] if detail else None}


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


def read_structured(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{what} {path} cannot be read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON: both are accepted
    except yaml.YAMLError:
        raise ConfigurationError(f"{what} {path} is neither YAML nor JSON") from None




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

    def __init__(self, path: Path, policy: Policy) -> None:
        self.path = Path(path)
        self.policy = policy
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._users: tuple[_StaticUser, ...] = ()
        self._load()

    def parse(self, data: Any, where: str) -> tuple[_StaticUser, ...]:
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
            users.append(_StaticUser(name, self.policy.parse_roles(entry.get("roles"), f"{at} ({name})"), digest))
        return tuple(users)

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise ConfigurationError(f"static tokens file {self.path} cannot be read: {exc.strerror}") from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return
        users = self.parse(read_structured(self.path, "static tokens file"), f"static tokens file {self.path}")
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
        return self.policy.make(found.user, found.roles, "static")


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


class OidcVerifier:
    """Verifies the identity provider's JWTs (PyJWT with its ``crypto`` extra for RSA and EC keys)."""

    def __init__(self, *, policy: Policy, issuer: str, audience: str, algorithms: Iterable[str],
                 leeway_s: float = 60.0,
                 jwks_url: str = "", jwks_file: Path | None = None, user_claim: str = "preferred_username",
                 roles_claim: str = "roles", role_map: Mapping[str, str] | None = None,
                 cache_s: float = 300.0) -> None:
        import jwt

        if not issuer or not audience:
            raise ConfigurationError("OIDC needs both oidc_issuer and oidc_audience")
        if not jwks_url and jwks_file is None:
            raise ConfigurationError("OIDC needs oidc_jwks_url or oidc_jwks_file")
        self.policy = policy
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
        return self.policy.make(user.strip()[:128], self._our_roles(_claim(claims, self.roles_claim)), "oidc")

    def _our_roles(self, value: Any) -> frozenset[str]:
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, list):
            return frozenset()
        names = [v for v in value if isinstance(v, str)]
        if self.role_map:
            return frozenset(self.role_map[n] for n in names if n in self.role_map)
        return frozenset(n for n in names if n in self.policy.roles)


class Authenticator:
    """Both modes behind one call: a JWT goes to the OIDC verifier, anything else to the static tokens."""

    def __init__(self, *, static: StaticTokens | None = None, oidc: OidcVerifier | None = None) -> None:
        self.static, self.oidc = static, oidc

    @classmethod
    def from_settings(cls, settings: Any, policy: Policy) -> "Authenticator":
        """From a service's settings (auth_static_tokens_file, oidc_issuer, oidc_audience, oidc_algorithms,
        oidc_leeway_s, oidc_jwks_url, oidc_jwks_file, oidc_user_claim, oidc_roles_claim, oidc_role_map,
        oidc_jwks_cache_s)."""
        static = StaticTokens(settings.auth_static_tokens_file, policy) if settings.auth_static_tokens_file else None
        oidc = None
        if settings.oidc_issuer:
            oidc = OidcVerifier(
                policy=policy, issuer=settings.oidc_issuer, audience=settings.oidc_audience,
                algorithms=settings.oidc_algorithms,
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

