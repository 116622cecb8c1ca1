"""Identities for the finance tests: a static-token file, command signing keys, and an identity provider stand-in
(RSA and EC key pairs, a JWKS file, tokens signed with them) — everything a test needs without a real IdP."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

#: user → (roles, static token)
USERS: dict[str, tuple[list[str], str]] = {
    "li.clerk": (["clerk"], "static-token-li-clerk-0123456789"),
    "wang.approver": (["approver"], "static-token-wang-approver-0123456789"),
    "zhao.both": (["clerk", "approver"], "static-token-zhao-both-0123456789"),
    "sun.ops": (["ops"], "static-token-sun-ops-0123456789"),
}

#: user → (key id, secret) of command signing keys
KEYS: dict[str, tuple[str, str]] = {user: (f"{user}-key", f"signing-secret-of-{user}-0123456789abcdef")
                                    for user in USERS}

ISSUER = "https://idp.hospital.test/realms/finance"
AUDIENCE = "yibao-reconciliation"


def token(user: str) -> str:
    return USERS[user][1]


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def write_static_tokens(directory: Path) -> Path:
    path = directory / "finance-tokens.yaml"
    entries = []
    for user, (roles, secret) in USERS.items():
        if user == "sun.ops":  # one user's token given as its SHA-256, as a careful site would
            import hashlib

            entries.append({"user": user, "roles": roles, "token_sha256": hashlib.sha256(secret.encode()).hexdigest()})
        else:
            entries.append({"user": user, "roles": roles, "token": secret})
    path.write_text(json.dumps({"users": entries}, indent=1))
    return path


def write_command_keys(directory: Path) -> Path:
    path = directory / "finance-command-keys.yaml"
    path.write_text(json.dumps({"keys": [{"key_id": k, "user": u, "roles": USERS[u][0], "secret": s}
                                         for u, (k, s) in KEYS.items()]}, indent=1))
    return path


def cli_env(user: str, directory: Path) -> dict[str, str]:
    """The settings that make ``yibao recon`` act as ``user`` (its key and token in secret files)."""
    key_id, secret = KEYS[user]
    key_file, token_file = directory / f"{user}.key", directory / f"{user}.token"
    key_file.write_text(secret + "\n")
    token_file.write_text(token(user) + "\n")
    return {"YIBAO_RECONCILIATION_CLI_USER": user, "YIBAO_RECONCILIATION_CLI_KEY_ID": key_id,
            "YIBAO_RECONCILIATION_CLI_KEY_FILE": str(key_file), "YIBAO_RECONCILIATION_CLI_TOKEN_FILE": str(token_file)}


@dataclass
class IdentityProvider:
    """Key pairs and a JWKS file, and tokens signed like the hospital's provider signs them."""

    directory: Path

    def __post_init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_jwk.update(kid="rsa-1", use="sig", alg="RS256")
        ec_jwk.update(kid="ec-1", use="sig", alg="ES256")
        self.jwks = {"keys": [rsa_jwk, ec_jwk]}
        self.jwks_path = self.directory / "jwks.json"
        self.jwks_path.write_text(json.dumps(self.jwks))

    def token(self, user: str = "li.clerk", roles: list[str] | None = None, *, alg: str = "RS256",
              issuer: str = ISSUER, audience: str = AUDIENCE, expires_in: float = 300, not_before: float | None = None,
              key: Any = None, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"iss": issuer, "aud": audience, "sub": f"sub-{user}", "preferred_username": user,
                                   "iat": now, "exp": now + int(expires_in),
                                   "realm_access": {"roles": roles if roles is not None else USERS[user][0]}}
        if not_before is not None:
            payload["nbf"] = now + int(not_before)
        payload.update(claims)
        signing_key = key or (self.rsa if alg.startswith(("RS", "PS")) else self.ec)
        kid = kid or ("rsa-1" if alg.startswith(("RS", "PS")) else "ec-1")
        return jwt.encode(payload, signing_key, algorithm=alg, headers={"kid": kid})

    def settings(self) -> dict[str, Any]:
        return {"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, "oidc_jwks_file": self.jwks_path,
                "oidc_roles_claim": "realm_access.roles"}

    def env(self) -> dict[str, str]:
        return {"YIBAO_RECONCILIATION_OIDC_ISSUER": ISSUER, "YIBAO_RECONCILIATION_OIDC_AUDIENCE": AUDIENCE,
                "YIBAO_RECONCILIATION_OIDC_JWKS_FILE": str(self.jwks_path),
                "YIBAO_RECONCILIATION_OIDC_ROLES_CLAIM": "realm_access.roles"}


def unsigned_token(user: str = "li.clerk") -> str:
    """alg none: a token anybody can write."""
    import base64

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return (part({"alg": "none", "typ": "JWT"}) + "." + part({"iss": ISSUER, "aud": AUDIENCE, "sub": user,
                                                               "preferred_username": user, "exp": now + 300,
                                                               "realm_access": {"roles": ["approver"]}}) + ".")
