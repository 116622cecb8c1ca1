"""Who may act: OIDC/JWT verification, static tokens, roles, four eyes."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from support.finance_auth import AUDIENCE, ISSUER, USERS, IdentityProvider, token, unsigned_token, write_static_tokens
from yibao.core.errors import ConfigurationError
from yibao.reconciliation.auth import (
    PERMISSIONS,
    Authenticator,
    OidcVerifier,
    Principal,
    StaticTokens,
    authorize,
    bearer_token,
    check_four_eyes,
)
from yibao.reconciliation.errors import FourEyesViolation, NotAuthenticated, PermissionDenied


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def oidc(idp: IdentityProvider) -> OidcVerifier:
    return OidcVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256", "ES256"], leeway_s=30,
                        jwks_file=idp.jwks_path, roles_claim="realm_access.roles")


# --- OIDC / JWT ----------------------------------------------------------------------------------------------


def test_a_good_rs256_token_names_the_user_and_roles(oidc, idp) -> None:
    principal = oidc.verify(idp.token("wang.approver"))
    assert principal == Principal("wang.approver", frozenset({"approver"}), "oidc")


def test_a_good_es256_token_is_accepted(oidc, idp) -> None:
    assert oidc.verify(idp.token("li.clerk", alg="ES256")).roles == {"clerk"}


def test_an_expired_token_is_refused(oidc, idp) -> None:
    with pytest.raises(NotAuthenticated, match="expired"):
        oidc.verify(idp.token(expires_in=-120))


def test_expiry_has_a_small_leeway(oidc, idp) -> None:
    assert oidc.verify(idp.token(expires_in=-10)).user == "li.clerk"


def test_a_token_not_valid_yet_is_refused(oidc, idp) -> None:
    with pytest.raises(NotAuthenticated, match="not valid yet"):
        oidc.verify(idp.token(not_before=600))


def test_a_token_of_another_issuer_is_refused(oidc, idp) -> None:
    with pytest.raises(NotAuthenticated, match="another issuer"):
        oidc.verify(idp.token(issuer="https://evil.example/"))


def test_a_token_for_another_audience_is_refused(oidc, idp) -> None:
    with pytest.raises(NotAuthenticated, match="another audience"):
        oidc.verify(idp.token(audience="some-other-app"))


def test_a_token_signed_with_another_key_is_refused(oidc, idp) -> None:
    with pytest.raises(NotAuthenticated, match="signature does not verify"):
        oidc.verify(idp.token(key=idp.other_rsa))


def test_a_token_naming_an_unknown_key_is_refused(oidc, idp) -> None:
    with pytest.raises(NotAuthenticated, match="kid"):
        oidc.verify(idp.token(key=idp.other_rsa, kid="rsa-unknown"))


def test_alg_none_is_refused(oidc) -> None:
    with pytest.raises(NotAuthenticated, match="alg none"):
        oidc.verify(unsigned_token())


def test_hs256_signed_with_the_public_key_is_refused(oidc, idp) -> None:
    """The classic key-confusion attack: the RSA public key used as an HMAC secret."""
    from cryptography.hazmat.primitives import serialization

    import jwt

    public_pem = idp.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 9999999999},
                        hashlib.sha256(public_pem).digest(), algorithm="HS256", headers={"kid": "rsa-1"})
    with pytest.raises(NotAuthenticated, match="HS256"):
        oidc.verify(forged)


def test_an_ec_key_cannot_verify_an_rs256_token(oidc, idp) -> None:
    with pytest.raises(NotAuthenticated):
        oidc.verify(idp.token(kid="ec-1"))


def test_a_token_without_a_required_claim_is_refused(oidc, idp) -> None:
    import jwt

    bare = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": 9999999999}, idp.rsa, algorithm="RS256",
                      headers={"kid": "rsa-1"})
    with pytest.raises(NotAuthenticated, match="sub"):
        oidc.verify(bare)


def test_garbage_is_not_a_jwt(oidc) -> None:
    with pytest.raises(NotAuthenticated, match="not a JWT"):
        oidc.verify("a.b.c")


def test_provider_roles_are_mapped_to_ours(idp) -> None:
    verifier = OidcVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"], jwks_file=idp.jwks_path,
                            roles_claim="groups", role_map={"finance-approvers": "approver"})
    principal = verifier.verify(idp.token("wang.approver", groups=["finance-approvers", "staff"]))
    assert principal.roles == {"approver"}


def test_the_keys_can_be_fetched_from_the_jwks_url(idp) -> None:
    body = json.dumps(idp.jwks).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        verifier = OidcVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256", "ES256"],
                                jwks_url=f"http://127.0.0.1:{server.server_port}/certs",
                                roles_claim="realm_access.roles")
        assert verifier.verify(idp.token("wang.approver", alg="ES256")).user == "wang.approver"
    finally:
        server.shutdown()


def test_oidc_needs_issuer_audience_and_keys(idp) -> None:
    with pytest.raises(ConfigurationError):
        OidcVerifier(issuer=ISSUER, audience="", algorithms=["RS256"], jwks_file=idp.jwks_path)
    with pytest.raises(ConfigurationError):
        OidcVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"])


def test_symmetric_or_none_algorithms_cannot_be_configured() -> None:
    from pydantic import ValidationError

    from yibao.reconciliation.settings import ReconciliationSettings

    for algs in (["HS256"], ["none"]):
        with pytest.raises(ValidationError):
            ReconciliationSettings(oidc_algorithms=algs)


# --- static tokens -------------------------------------------------------------------------------------------


def test_a_static_token_names_its_user_and_roles(tmp_path) -> None:
    tokens = StaticTokens(write_static_tokens(tmp_path))
    assert tokens.verify(token("zhao.both")) == Principal("zhao.both", frozenset({"clerk", "approver"}), "static")
    assert tokens.verify(token("sun.ops")).roles == {"ops"}  # given as token_sha256 in the file


def test_an_unknown_static_token_is_refused_without_echoing_it(tmp_path) -> None:
    tokens = StaticTokens(write_static_tokens(tmp_path))
    with pytest.raises(NotAuthenticated) as caught:
        tokens.verify("static-token-guessed-0123456789")
    assert "guessed" not in str(caught.value)


def test_the_static_tokens_file_is_read_again_when_it_changes(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("users:\n  - {user: a, roles: [clerk], token: first-token-0123456789}\n")
    tokens = StaticTokens(path)
    assert tokens.verify("first-token-0123456789").user == "a"
    path.write_text("users:\n  - {user: b, roles: [approver], token: second-token-0123456789abc}\n")
    assert tokens.verify("second-token-0123456789abc").user == "b"
    with pytest.raises(NotAuthenticated):
        tokens.verify("first-token-0123456789")


@pytest.mark.parametrize("content, message", [
    ("users: nope", "list"),
    ("users:\n  - {roles: [clerk], token: aaaaaaaaaaaaaaaaaaaa}", "user"),
    ("users:\n  - {user: a, roles: [clerk], token: short}", "at least 16"),
    ("users:\n  - {user: a, roles: [boss], token: aaaaaaaaaaaaaaaaaaaa}", "unknown roles"),
    ("users:\n  - {user: a, roles: [clerk], token_sha256: abc}", "64 hex"),
    ("users:\n  - {user: a, roles: [clerk]}", "exactly one"),
    ("users:\n  - {user: a, roles: [clerk], token: aaaaaaaaaaaaaaaaaaaa}\n  - {user: A, roles: [ops], "
     "token: bbbbbbbbbbbbbbbbbbbbbb}", "twice"),
])
def test_a_bad_static_tokens_file_is_refused_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        StaticTokens(path)


def test_the_authenticator_sends_jwts_to_oidc_and_the_rest_to_static_tokens(tmp_path, idp) -> None:
    auth = Authenticator(static=StaticTokens(write_static_tokens(tmp_path)),
                         oidc=OidcVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256", "ES256"],
                                           jwks_file=idp.jwks_path, roles_claim="realm_access.roles"))
    assert auth.verify(idp.token("wang.approver")).method == "oidc"
    assert auth.verify(token("li.clerk")).method == "static"
    assert auth.modes() == ["oidc", "static"]


def test_with_nothing_configured_nobody_gets_in() -> None:
    with pytest.raises(NotAuthenticated, match="configured"):
        Authenticator().verify(token("li.clerk"))


def test_an_oidc_token_is_refused_when_oidc_is_off(tmp_path, idp) -> None:
    auth = Authenticator(static=StaticTokens(write_static_tokens(tmp_path)))
    with pytest.raises(NotAuthenticated):
        auth.verify(idp.token())


def test_the_authorization_header_must_be_a_bearer_token() -> None:
    assert bearer_token(None) is None and bearer_token("Bearer abc") == "abc"
    with pytest.raises(NotAuthenticated):
        bearer_token("Basic dXNlcjpwYXNz")


# --- roles and four eyes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("user, allowed", [
    ("li.clerk", {"run.trigger", "run.read", "personal.read", "report.download"}),
    ("wang.approver", {"run.read", "personal.read", "repair.decide", "report.download", "audit.read"}),
    ("sun.ops", {"run.read", "audit.read"}),
])
def test_each_role_allows_what_the_readme_says(user: str, allowed: set[str]) -> None:
    principal = Principal(user, frozenset(USERS[user][0]), "static")
    assert {p for p in PERMISSIONS if principal.can(p)} == allowed


def test_a_missing_role_is_refused_naming_the_role_needed() -> None:
    clerk = Principal("li.clerk", frozenset({"clerk"}), "static")
    with pytest.raises(PermissionDenied, match="approver role is needed"):
        authorize(clerk, "repair.decide")
    assert authorize(clerk, "run.trigger") == "clerk"


def test_a_user_without_any_of_our_roles_may_do_nothing(idp, oidc) -> None:
    nobody = oidc.verify(idp.token("x", roles=["staff"]))
    assert nobody.roles == frozenset()
    for permission in PERMISSIONS:
        with pytest.raises(PermissionDenied):
            authorize(nobody, permission)


def test_four_eyes_refuses_the_requester_of_the_run() -> None:
    with pytest.raises(FourEyesViolation, match="another approver"):
        check_four_eyes("zhao.both", "Zhao.Both", "R1")
    check_four_eyes("wang.approver", "zhao.both", "R1")
    check_four_eyes("wang.approver", None, "R1")
