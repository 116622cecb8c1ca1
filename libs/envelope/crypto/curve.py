"""The SM2 recommended curve (GB/T 32918.5-2017) and the little point arithmetic we need ourselves.

Why our own arithmetic at all: the GmSSL binding (gmssl-pyx) cannot derive a public key from a private one, yet
SM3withSM2 hashes the signer's public key into Z. We derive it here once per key (cached by the callers) and
use it for nothing secret-critical beyond that; signing, verifying and encryption run in the backends. It also
gives us the on-curve check that protects decryption from invalid-point input, and key generation when only the
pure-Python backend is installed.

Jacobian coordinates, double-and-add. Not constant time — neither is any pure-Python big-integer code; the
C backend is the one to use where timing side channels matter.
"""

from __future__ import annotations

__all__ = ["P", "A", "B", "N", "GX", "GY", "is_on_curve", "scalar_mult", "base_mult"]

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

_Jacobian = tuple[int, int, int]


def is_on_curve(x: int, y: int) -> bool:
    """True when (x, y) is an affine point of the curve (coordinates reduced mod p). The cofactor is 1, so
    being on the curve is all a public key or a C1 needs to be usable."""
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def _double(pt: _Jacobian | None) -> _Jacobian | None:
    if pt is None:
        return None
    x, y, z = pt
    if y == 0:
        return None
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = (3 * x * x + A * zz * zz) % P
    x3 = (m * m - 2 * s) % P
    y3 = (m * (s - x3) - 8 * yy * yy) % P
    z3 = 2 * y * z % P
    return x3, y3, z3


def _add(p1: _Jacobian | None, p2: _Jacobian | None) -> _Jacobian | None:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else None
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    z3 = h * z1 * z2 % P
    return x3, y3, z3


def scalar_mult(k: int, x: int, y: int) -> tuple[int, int] | None:
    """k·(x, y) in affine coordinates, or None for the point at infinity."""
    result: _Jacobian | None = None
    addend: _Jacobian | None = (x, y, 1)
    k %= N
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _double(addend)
        k >>= 1
    if result is None:
        return None
    xj, yj, zj = result
    z_inv = pow(zj, -1, P)
    z_inv2 = z_inv * z_inv % P
    return xj * z_inv2 % P, yj * z_inv2 * z_inv % P


def base_mult(k: int) -> tuple[int, int] | None:
    """k·G."""
    return scalar_mult(k, GX, GY)
