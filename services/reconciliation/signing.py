"""Signed commands on ``yibao.recon.commands.v1``: who issued a command is proven, not claimed.

A command is a JSON object (:class:`~yibao.reconciliation.models.ReconCommand`) carrying its issuer (``by``),
the role it acts in (``role``), the key it is signed with (``key_id``), when it was issued (``issued_at``), a
random ``nonce`` and ``signature``: HMAC-SHA256 (hex) over the UTF-8 bytes of the object *without* its
signature, serialised canonically — keys sorted, no whitespace, non-ASCII kept (``json.dumps(obj,
sort_keys=True, separators=(",", ":"), ensure_ascii=False)``), so any language can sign one.

The worker keeps the keys in a secret file (``command_keys_file``), each bound to one user and their roles::

    keys:
      - key_id: li.na-2026
        user: li.na
        roles: [clerk]
        secret: <at least 32 random characters>

A command acts only when the signature verifies with its key, ``by`` is the key's user, ``role`` is one of the
key's roles and allows the command (run: clerk; approve/reject: approver), it was issued less than
``command_max_age_s`` ago (and not more than ``command_clock_skew_s`` ahead), and its nonce was not used by
another command. Anything else is parked with the reason and never acts. A nonce is recorded when the command
is accepted and marked done when it has acted: a Kafka redelivery (or a replay of the same bytes) finds it done
and acts no more; a retry after a transient failure finds it accepted and carries on.

Why HMAC with per-user keys rather than binding commands to Kafka principals: the bridge also runs on brokers
without SASL/ACLs (the embedded broker, small sites), a Kafka principal names a client application rather
than the finance user who approves, and a signature keeps proving its issuer in the dead-letter topic and in a
replay. Broker ACLs (deploy/) restrict who may write to the topic on top of this.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from yibao.core import clock
from yibao.core.db.schema import recon_command_nonces
from yibao.core.errors import ConfigurationError

from .auth import ROLES, Principal, _read_structured, _roles
from .errors import BadCommand, ForgedCommand
from .models import ReconCommand

__all__ = [
    "SIG_ALG",
    "CommandKey",
    "CommandKeys",
    "VerifiedCommand",
    "canonical_bytes",
    "sign",
    "signed_command",
    "verify_command",
    "claim_nonce",
    "finish_nonce",
    "purge_nonces",
    "ROLE_OF_KIND",
    "MAX_COMMAND_BYTES",
]

SIG_ALG = "HMAC-SHA256"
MIN_SECRET_CHARS = 32
MAX_COMMAND_BYTES = 65536
#: the role a command of each kind must be issued in
ROLE_OF_KIND: dict[str, str] = {"run": "clerk", "approve": "approver", "reject": "approver"}
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class CommandKey:
    key_id: str
    user: str
    roles: frozenset[str]
    secret: bytes = field(repr=False)


class CommandKeys:
    """The signing keys, read from a secret file and read again when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._keys: dict[str, CommandKey] = {}
        self._load()

    @classmethod
    def of(cls, keys: dict[str, CommandKey]) -> "CommandKeys":
        obj = cls.__new__(cls)
        obj.path, obj._lock, obj._stamp, obj._keys = Path("-"), threading.Lock(), None, dict(keys)
        return obj

    @staticmethod
    def parse(data: Any, where: str) -> dict[str, CommandKey]:
        entries = data.get("keys") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise ConfigurationError(f"{where}: expected a list 'keys' of {{key_id, user, roles, secret}}")
        keys: dict[str, CommandKey] = {}
        for i, entry in enumerate(entries, start=1):
            at = f"{where} key #{i}"
            if not isinstance(entry, dict):
                raise ConfigurationError(f"{at}: expected {{key_id, user, roles, secret}}")
            key_id, user, secret = entry.get("key_id"), entry.get("user"), entry.get("secret")
            if not isinstance(key_id, str) or not key_id.strip() or len(key_id) > 64:
                raise ConfigurationError(f"{at}: key_id (at most 64 characters) is required")
            if key_id in keys:
                raise ConfigurationError(f"{at}: key_id {key_id} is listed twice")
            if not isinstance(user, str) or not user.strip():
                raise ConfigurationError(f"{at} ({key_id}): user is required")
            if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
                raise ConfigurationError(f"{at} ({key_id}): the secret must be at least {MIN_SECRET_CHARS} "
                                         "characters")
            keys[key_id] = CommandKey(key_id, user.strip(), _roles(entry.get("roles"), f"{at} ({key_id})"),
                                      secret.encode())
        return keys

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise ConfigurationError(f"command keys file {self.path} cannot be read: {exc.strerror}") from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            self._keys = self.parse(_read_structured(self.path, "command keys file"),
                                    f"command keys file {self.path}")
            self._stamp = stamp

    def get(self, key_id: str) -> CommandKey | None:
        with self._lock:
            if self._stamp is not None:
                try:
                    self._load()
                except ConfigurationError:
                    pass  # being rewritten: the keys read last stay in force
            return self._keys.get(key_id)


def canonical_bytes(obj: dict[str, Any]) -> bytes:
    """What is signed: the command without its signature, keys sorted, no whitespace, UTF-8."""
    unsigned = {k: v for k, v in obj.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(obj: dict[str, Any], secret: bytes | str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, canonical_bytes(obj), hashlib.sha256).hexdigest()


def signed_command(command: ReconCommand, *, key_id: str, secret: bytes | str, role: str | None = None) -> bytes:
    """The bytes to publish: ``command`` completed with role, key id, a fresh nonce, and signed."""
    role = role or ROLE_OF_KIND[command.kind]
    filled = command.model_copy(update={"role": role, "key_id": key_id, "sig_alg": SIG_ALG,
                                        "nonce": command.nonce or secrets.token_urlsafe(24), "signature": None})
    obj = json.loads(filled.model_dump_json(exclude_none=True))
    obj["signature"] = sign(obj, secret)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class VerifiedCommand:
    command: ReconCommand
    principal: Principal
    role: str
    nonce: str
    digest: str


def _parse(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise BadCommand("an empty command message")
    if len(value) > MAX_COMMAND_BYTES:
        raise BadCommand(f"a command of {len(value)} bytes; at most {MAX_COMMAND_BYTES}")
    try:
        obj = json.loads(value, parse_constant=lambda c: _refuse(c))
    except (RecursionError, UnicodeDecodeError, ValueError):
        raise BadCommand("not a reconciliation command: not a JSON object") from None
    if not isinstance(obj, dict):
        raise BadCommand("not a reconciliation command: not a JSON object")
    return obj


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def verify_command(value: bytes | None, keys: CommandKeys | None, *, now: _dt.datetime | None = None,
                   max_age_s: float = 300.0, clock_skew_s: float = 60.0) -> VerifiedCommand:
    """The command and who issued it — or ForgedCommand / BadCommand (both bad input: parked) saying why."""
    obj = _parse(value)
    signature, key_id = obj.get("signature"), obj.get("key_id")
    if not signature or not key_id:
        raise ForgedCommand("unsigned command: signature and key_id are required (yibao recon signs its "
                            "commands; see the reconciliation README)")
    if keys is None:
        raise ForgedCommand("no command keys are configured on this worker (command_keys_file): every command "
                            "is refused")
    if not isinstance(key_id, str) or not isinstance(signature, str) or not re.fullmatch(r"[0-9a-f]{64}",
                                                                                         signature):
        raise ForgedCommand("signature must be 64 lower-case hex digits and key_id text")
    if obj.get("sig_alg", SIG_ALG) != SIG_ALG:
        raise ForgedCommand(f"sig_alg must be {SIG_ALG}")
    key = keys.get(key_id)
    if key is None:
        raise ForgedCommand(f"unknown signing key {key_id[:64]!r}")
    if not hmac.compare_digest(sign(obj, key.secret), signature):
        raise ForgedCommand(f"the signature does not verify with key {key_id}: forged or altered")
    try:
        command = ReconCommand.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "command"
        raise BadCommand(f"not a reconciliation command: {where}: {first.get('msg')}") from None
    if not command.by or command.by.strip().casefold() != key.user.casefold():
        raise ForgedCommand(f"key {key_id} belongs to {key.user}, but the command names {command.by!r} as issuer")
    role = command.role or ""
    if role not in key.roles:
        raise ForgedCommand(f"{key.user} does not hold the role {role!r} named in the command "
                            f"(key {key_id}: {', '.join(r for r in ROLES if r in key.roles)})")
    needed = ROLE_OF_KIND[command.kind]
    if role != needed:
        raise ForgedCommand(f"a {command.kind} command must be issued in the {needed} role, not {role!r}")
    if not command.nonce or not _NONCE.match(command.nonce):
        raise ForgedCommand("nonce: 16-64 characters of A-Z a-z 0-9 _ - are required")
    now = now or clock.now()
    age = (now - command.issued_at).total_seconds()
    if age > max_age_s:
        raise ForgedCommand(f"issued at {clock.format_datetime(command.issued_at)}, {age:.0f} s ago: older than "
                            f"{max_age_s:g} s (a replay, or issue it again)")
    if -age > clock_skew_s:
        raise ForgedCommand(f"issued at {clock.format_datetime(command.issued_at)}, in the future: check the "
                            "issuer's clock")
    digest = hashlib.sha256(canonical_bytes(obj)).hexdigest()
    return VerifiedCommand(command, Principal(key.user, key.roles, "command"), role, command.nonce, digest)


def claim_nonce(conn: Connection, verified: VerifiedCommand, key_id: str) -> str:
    """``new`` (first sight), ``retry`` (accepted before, not done: carry on) or ``done`` (acted already).
    A nonce already used by different bytes is a replay: ForgedCommand."""
    values = {"nonce": verified.nonce, "key_id": key_id[:64], "command_id": verified.command.command_id,
              "digest": verified.digest, "state": "accepted", "seen_at": clock.now()}
    stmt: Any = (postgresql.insert(recon_command_nonces) if conn.dialect.name == "postgresql"
                 else sqlite.insert(recon_command_nonces))
    inserted = conn.execute(stmt.values(**values).on_conflict_do_nothing()
                            .returning(recon_command_nonces.c.nonce)).first()
    if inserted is not None:
        return "new"
    row = conn.execute(select(recon_command_nonces).where(recon_command_nonces.c.nonce == verified.nonce)).one()
    if row.digest != verified.digest:
        raise ForgedCommand(f"nonce already used by command {row.command_id}: a replay, refused")
    return "done" if row.state == "done" else "retry"


def finish_nonce(conn: Connection, nonce: str) -> None:
    conn.execute(update(recon_command_nonces).where(recon_command_nonces.c.nonce == nonce).values(state="done"))


def purge_nonces(conn: Connection, older_than: _dt.datetime) -> int:
    """Nonces older than the accepted age can go: their commands are refused as stale anyway."""
    return conn.execute(delete(recon_command_nonces).where(recon_command_nonces.c.seen_at < older_than)).rowcount
