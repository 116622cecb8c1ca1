"""Personal data at rest in the bridge's own tables: SM4-GCM with rotatable keys, or an explicit plain mode.

A :class:`DataCipher` turns text into a sealed token and back::

    yb1.<key id>.<base64url(nonce 12 bytes ‖ SM4-GCM ciphertext ‖ tag 16 bytes)>

SM4 (GB/T 32907) in GCM mode from ``cryptography`` — authenticated: a wrong key or a changed byte is an error,
never garbage. The additional authenticated data is ``yb1.<key id>`` (a token cannot be passed off under
another key id). A fresh random nonce per token.

Keys come from one secret, ``YIBAO_DATA_KEYS`` (or the file ``yibao_data_keys`` in ``YIBAO_SECRETS_DIR``)::

    k2:00112233445566778899aabbccddeeff,k1:ffeeddccbbaa99887766554433221100

``<id>:<32 hex digits>`` entries separated by commas: the **first** key seals, **every** key opens. To rotate,
put a new key first and keep the old ones; ``yibao data reencrypt`` re-seals every stored value under the first
key; then the old keys can go.

With no key configured the cipher is **plain**: :meth:`DataCipher.seal` returns the text unchanged. That is the
embedded demo's mode; it is stated in every worker's ``/readyz`` (``data_at_rest``) and logged as a warning at
start. :meth:`DataCipher.open` accepts both sealed and plain values in either mode (text that does not start
with ``yb1.`` is plain), so turning encryption on needs no migration and ``yibao data reencrypt`` seals old plain
rows.

Where it is applied: ``outbox.payload`` (sealed by :func:`yibao.core.messaging.outbox.enqueue`, opened by the
relay before publishing), ``parked_work.payload`` (dead letters and parked outbox rows) and the services' columns
listed in :data:`yibao.core.reseal.SEALED_COLUMNS` (chain states, upload records, rx feedback, the counter's rows). The cipher of a
deployment travels with its database engine: ``Deployment.of(conn).cipher`` (see :mod:`yibao.core.deployment`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from yibao.core.errors import ConfigurationError, YibaoError

__all__ = ["DataCipher", "SealedDataError", "PLAIN", "TOKEN_PREFIX"]

TOKEN_PREFIX = "yb1."
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_NONCE = 12
_TAG = 16


class SealedDataError(YibaoError):
    """A sealed value cannot be opened: its key is not configured, or it was altered."""

    code = "sealed_data"


class DataCipher:
    """Seals and opens text with the deployment's data keys (see the module's documentation)."""

    def __init__(self, keys: Mapping[str, bytes] | None = None, *, current: str | None = None) -> None:
        self._keys: dict[str, bytes] = dict(keys or {})
        for key_id, key in self._keys.items():
            if not _KEY_ID.match(key_id):
                raise ConfigurationError(f"data key id {key_id!r}: 1-16 letters, digits, '_' or '-'")
            if len(key) != 16:
                raise ConfigurationError(f"data key {key_id}: an SM4 key is 16 bytes (32 hex digits)")
        if current is None and self._keys:
            current = next(iter(self._keys))
        if current is not None and current not in self._keys:
            raise ConfigurationError(f"data key {current!r} is not among the configured keys")
        self._current = current

    # --- construction ---------------------------------------------------------------------------------------

    @classmethod
    def from_secret(cls, secret: str | None) -> "DataCipher":
        """From ``id:hex,id:hex`` (first seals). Empty or None: the plain cipher."""
        if secret is None or not secret.strip():
            return PLAIN
        keys: dict[str, bytes] = {}
        for position, entry in enumerate(part.strip() for part in secret.split(",")):
            if not entry:
                continue
            key_id, sep, hex_key = entry.partition(":")
            key_id, hex_key = key_id.strip(), hex_key.strip()
            if not sep:
                raise ConfigurationError(f"data keys: entry {position + 1} is not '<id>:<32 hex digits>'")
            if key_id in keys:
                raise ConfigurationError(f"data keys: key id {key_id!r} given twice")
            try:
                keys[key_id] = binascii.unhexlify(hex_key)
            except (binascii.Error, ValueError):
                raise ConfigurationError(f"data keys: key {key_id!r} is not hexadecimal") from None
        return cls(keys) if keys else PLAIN

    @classmethod
    def from_settings(cls, settings: object) -> "DataCipher":
        """From a settings object's ``data_keys`` (a SecretStr or None)."""
        secret = getattr(settings, "data_keys", None)
        return cls.from_secret(secret.get_secret_value() if secret is not None else None)

    # --- what it is -----------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._current is not None

    @property
    def current_key_id(self) -> str | None:
        return self._current

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def describe(self) -> str:
        """For readiness and logs: the mode and key ids, never a key."""
        if not self.enabled:
            return "plain: no data key configured (personal data is stored unencrypted)"
        others = [k for k in self._keys if k != self._current]
        return f"sm4-gcm: sealing with key {self._current}" + (f", opening also {', '.join(others)}" if others else "")

    def __repr__(self) -> str:
        return f"DataCipher({self.describe()!r})"

    # --- sealing --------------------------------------------------------------------------------------------

    @staticmethod
    def is_sealed(stored: str | None) -> bool:
        return bool(stored) and stored.startswith(TOKEN_PREFIX)  # type: ignore[union-attr]

    @staticmethod
    def key_id_of(stored: str) -> str | None:
        """The key id a sealed value names (None for plain text)."""
        if not DataCipher.is_sealed(stored):
            return None
        return stored[len(TOKEN_PREFIX):].split(".", 1)[0]

    def seal(self, text: str) -> str:
        """The text sealed under the current key; unchanged in plain mode."""
        if self._current is None:
            return text
        key_id = self._current
        nonce = os.urandom(_NONCE)
        encryptor = Cipher(algorithms.SM4(self._keys[key_id]), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(f"{TOKEN_PREFIX}{key_id}".encode())
        body = encryptor.update(text.encode("utf-8")) + encryptor.finalize()
        token = base64.urlsafe_b64encode(nonce + body + encryptor.tag).decode().rstrip("=")
        return f"{TOKEN_PREFIX}{key_id}.{token}"

    def open(self, stored: str) -> str:
        """The text of a stored value: a sealed value is opened with its key, plain text is returned as it is.

        Raises :class:`SealedDataError` when the key is not configured or the value was altered."""
        if not self.is_sealed(stored):
            return stored
        key_id, sep, token = stored[len(TOKEN_PREFIX):].partition(".")
        key = self._keys.get(key_id)
        if not sep or key is None:
            raise SealedDataError(f"sealed with data key {key_id!r}, which is not configured")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise SealedDataError(f"sealed value (key {key_id}) is not valid base64") from None
        if len(raw) < _NONCE + _TAG:
            raise SealedDataError(f"sealed value (key {key_id}) is too short")
        nonce, body, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
        decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(f"{TOKEN_PREFIX}{key_id}".encode())
        try:
            return (decryptor.update(body) + decryptor.finalize()).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise SealedDataError(f"sealed value (key {key_id}) was altered or the key is wrong") from None

    def needs_reseal(self, stored: str | None) -> bool:
        """Whether ``yibao data reencrypt`` would change this value (plain text, or sealed under an old key)."""
        if stored is None or self._current is None:
            return False
        return self.key_id_of(stored) != self._current

    def reseal(self, stored: str) -> str:
        """Open with whatever key sealed it, seal under the current key."""
        return self.seal(self.open(stored))


#: the cipher of a deployment without data keys: stores text as it is
PLAIN = DataCipher()
