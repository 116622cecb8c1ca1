"""The interface every SM2 implementation offers, so envelopes never care which library does the work.

Conventions shared by all backends:

* keys are hex strings (see :mod:`yibao.envelope.crypto.keys`);
* signatures are SM3withSM2 over ``SM3(Z(uid) || message)``, returned raw r||s (64 bytes);
* ``verify`` answers False for anything that does not verify — bad key, bad length, r or s out of range,
  wrong message — and never raises for a bad signature;
* ciphertexts are raw bytes in the layout asked for (``mode``, ``prefix04``); ``decrypt`` checks C3 and raises
  :class:`~yibao.envelope.errors.CryptoError` on a wrong key, wrong layout or tampering, never returns garbage;
  ``prefix04=None`` on decrypt detects the prefix;
* every nonce and ephemeral key comes from a cryptographic source (``secrets`` or GmSSL's generator).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from yibao.envelope.crypto.ciphertext_format import Mode
from yibao.envelope.crypto.sm2_common import DEFAULT_UID

__all__ = ["SM2Backend", "DEFAULT_UID", "Mode"]


@runtime_checkable
class SM2Backend(Protocol):
    """SM2 sign/verify/encrypt/decrypt with hex keys and raw byte outputs."""

    name: str

    def sign(self, private_key: str, message: bytes, *, uid: bytes = DEFAULT_UID) -> bytes:
        """Raw r||s (64 bytes) of SM3withSM2 over ``message`` with user id ``uid``."""
        ...

    def verify(self, public_key: str, message: bytes, signature: bytes, *, uid: bytes = DEFAULT_UID) -> bool:
        """True only for a valid raw r||s signature; False for any bad input."""
        ...

    def encrypt(self, public_key: str, plaintext: bytes, *, mode: Mode = "C1C3C2", prefix04: bool = True) -> bytes:
        """SM2 public-key encryption, C1 (with or without 04) then C3/C2 in ``mode`` order."""
        ...

    def decrypt(self, private_key: str, ciphertext: bytes, *, mode: Mode = "C1C3C2",
                prefix04: bool | None = None) -> bytes:
        """Inverse of :meth:`encrypt`; raises CryptoError when C3 does not check."""
        ...
