"""SM2 ciphertext layouts: C1C3C2 or C1C2C3, C1 with or without the 04 prefix, and GmSSL's DER form.

C1 is the ephemeral point (x1||y1, 64 bytes, optionally preceded by 0x04), C3 the 32-byte SM3 check value,
C2 the masked message (as long as the plaintext). GB/T 32918.4-2016 orders C1C3C2; older code and pure gmssl
(by default) use C1C2C3. Platforms differ, so both are settings.

Reading with ``prefix04=None`` detects the prefix: a 0x04 byte followed by a point of the curve means a prefix;
otherwise the first 64 bytes must be the point. An x1 that itself starts with 0x04 (the GB/T vector's does)
is therefore read correctly either way: without a prefix, shifting by one byte gives a point on the curve with
probability about 2^-256.

GmSSL (gmssl-pyx) speaks ``SEQUENCE {INTEGER x, INTEGER y, OCTET STRING C3, OCTET STRING C2}`` (GM/T 0009);
a small strict DER reader/writer for exactly that structure is here, so no ASN.1 library is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto import curve
from yibao.envelope.errors import CryptoError

__all__ = [
    "Mode",
    "MODES",
    "Sm2Ciphertext",
    "check_mode",
    "parse_ciphertext",
    "serialize_ciphertext",
    "ciphertext_to_der",
    "ciphertext_from_der",
]

Mode = Literal["C1C3C2", "C1C2C3"]
MODES: tuple[str, ...] = ("C1C3C2", "C1C2C3")

_POINT = 64
_C3 = 32


@dataclass(frozen=True, slots=True)
class Sm2Ciphertext:
    """The three parts of an SM2 ciphertext, layout-independent."""

    x1: int
    y1: int
    c3: bytes
    c2: bytes

    @property
    def c1(self) -> bytes:
        return self.x1.to_bytes(32, "big") + self.y1.to_bytes(32, "big")


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ConfigurationError(f"SM2 ciphertext mode must be one of {MODES}, not {mode!r}")
    return mode  # type: ignore[return-value]


def _point_at(data: bytes, offset: int) -> tuple[int, int] | None:
    if len(data) < offset + _POINT:
        return None
    x = int.from_bytes(data[offset:offset + 32], "big")
    y = int.from_bytes(data[offset + 32:offset + _POINT], "big")
    return (x, y) if curve.is_on_curve(x, y) else None


def parse_ciphertext(data: bytes, *, mode: str = "C1C3C2", prefix04: bool | None = None) -> Sm2Ciphertext:
    """Split raw ciphertext bytes; raises :class:`CryptoError` when C1 is not a curve point or it is too short."""
    mode = check_mode(mode)
    if not isinstance(data, (bytes, bytearray)):
        raise CryptoError("SM2 ciphertext must be bytes")
    data = bytes(data)
    if prefix04 is None:
        point = _point_at(data, 1) if data[:1] == b"\x04" else None
        offset = 1 if point is not None else 0
        if point is None:
            point = _point_at(data, 0)
    else:
        offset = 1 if prefix04 else 0
        if prefix04 and data[:1] != b"\x04":
            raise CryptoError("SM2 ciphertext: expected the 04 prefix before C1")
        point = _point_at(data, offset)
    if point is None:
        raise CryptoError("SM2 ciphertext: C1 is not a point of the curve (wrong layout or tampered)")
    body = data[offset + _POINT:]
    if len(body) < _C3 + 1:
        raise CryptoError("SM2 ciphertext too short")
    if mode == "C1C3C2":
        c3, c2 = body[:_C3], body[_C3:]
    else:
        c2, c3 = body[:-_C3], body[-_C3:]
    return Sm2Ciphertext(point[0], point[1], c3, c2)


def serialize_ciphertext(ct: Sm2Ciphertext, *, mode: str = "C1C3C2", prefix04: bool = True) -> bytes:
    mode = check_mode(mode)
    head = (b"\x04" if prefix04 else b"") + ct.c1
    return head + (ct.c3 + ct.c2 if mode == "C1C3C2" else ct.c2 + ct.c3)


# --- DER, only as much as GM/T 0009 SM2 ciphertext needs -------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(value)) + value


def _der_uint(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return _der_tlv(0x02, raw)


def ciphertext_to_der(ct: Sm2Ciphertext) -> bytes:
    body = _der_uint(ct.x1) + _der_uint(ct.y1) + _der_tlv(0x04, ct.c3) + _der_tlv(0x04, ct.c2)
    return _der_tlv(0x30, body)


def _read_tlv(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    if pos + 2 > len(data) or data[pos] != tag:
        raise CryptoError("SM2 DER ciphertext: unexpected structure")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise CryptoError("SM2 DER ciphertext: bad length")
        length = int.from_bytes(data[pos:pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise CryptoError("SM2 DER ciphertext: non-minimal length")
        pos += count
    end = pos + length
    if end > len(data):
        raise CryptoError("SM2 DER ciphertext: truncated")
    return data[pos:end], end


def _read_uint(data: bytes, pos: int) -> tuple[int, int]:
    raw, pos = _read_tlv(data, pos, 0x02)
    if not raw or raw[0] & 0x80 or (len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80):
        raise CryptoError("SM2 DER ciphertext: bad integer")
    return int.from_bytes(raw, "big"), pos


def ciphertext_from_der(der: bytes) -> Sm2Ciphertext:
    """Parse GmSSL's DER ciphertext (strict: no trailing bytes, minimal integers, C1 on the curve)."""
    body, end = _read_tlv(bytes(der), 0, 0x30)
    if end != len(der):
        raise CryptoError("SM2 DER ciphertext: trailing bytes")
    x, pos = _read_uint(body, 0)
    y, pos = _read_uint(body, pos)
    c3, pos = _read_tlv(body, pos, 0x04)
    c2, pos = _read_tlv(body, pos, 0x04)
    if pos != len(body) or len(c3) != _C3 or not c2:
        raise CryptoError("SM2 DER ciphertext: unexpected structure")
    if not curve.is_on_curve(x, y):
        raise CryptoError("SM2 DER ciphertext: C1 is not a point of the curve")
    return Sm2Ciphertext(x, y, c3, c2)
