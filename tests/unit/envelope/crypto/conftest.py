"""Fixtures for the crypto tests: backends that exist here, a GB/T key pair, and keys that trip lstrip("04")."""

from __future__ import annotations

import pytest

from yibao.envelope.crypto import BACKEND_NAMES, available_backends, get_backend

#: GB/T 32918.5-2017 Annex A key pair (recommended curve), as in ../shared/spec/crypto.md
GBT_PRIVATE = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
GBT_PUBLIC = (
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)

#: key pairs whose x starts with "04", "4" and "00": pure gmssl's lstrip("04") would corrupt each of them.
#: Found by deriving d = SM3("trap-i") mod (n-2) + 1 for i = 0, 1, … (test_keys checks that d·G is this x||y).
TRAP_KEYS = {
    "x starts with 04": (
        "FD06BDDFE7FA75860E351B732B32F0C80E91BA3EB8E46CA2DD678660A12460E0",
        "0468EAB6F4C71E6D0C30FC19329EC614FB5C624E3D608051F45D6A3D7588F941"
        "2618B249C6D9D37CC9D51E24CD456BA64ED6F962FCE1B1DFA73408EB5C697D63",
    ),
    "x starts with 4": (
        "CC82364A170646B8979085C86E6642F27ECBEC4F8FF9B1F9CF05ED589CC49C89",
        "4CE390806EFBD67BE55A427D9CDA359CB715A7CBC64A04BF2DCA7FFD5C457EA4"
        "2FEB62A148FADF950A5F3B7C091CDC71E0D22A973D22FB668F9EABAD0F437E6C",
    ),
    "x starts with 00": (
        "53F4088A69F700A5DD1D1609D1CF0DFD59EBE1240B5F54EA6BEBC03662E2D8F5",
        "00D3146829F1474ABF1D54543715409FDA44C5D7E0F15DE50C396122A611A703"
        "5429C6D8874B08F4B414632A6E7CD9D3A228757AD62FB45FBC32CB5A52E6CA52",
    ),
}


def _backend_params() -> list:
    here = set(available_backends())
    return [
        pytest.param(name, id=name, marks=() if name in here else pytest.mark.skip(reason=f"{name} not installed"))
        for name in BACKEND_NAMES
    ]


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest):
    """Each SM2 backend in turn."""
    return get_backend(request.param)


@pytest.fixture(params=[(a, b) for a in BACKEND_NAMES for b in BACKEND_NAMES if a != b],
                ids=lambda p: f"{p[0]}->{p[1]}")
def backend_pair(request: pytest.FixtureRequest):
    """(producer, consumer): one backend signs/encrypts, the other verifies/decrypts."""
    here = set(available_backends())
    if not set(request.param) <= here:
        pytest.skip("needs both backends installed")
    return get_backend(request.param[0]), get_backend(request.param[1])


@pytest.fixture
def gbt_keypair() -> tuple[str, str]:
    """(private, public x||y) of GB/T 32918.5 Annex A."""
    return GBT_PRIVATE, GBT_PUBLIC


@pytest.fixture(params=sorted(TRAP_KEYS))
def trap_keypair(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(private, public x||y) whose x starts with characters lstrip("04") would eat."""
    return TRAP_KEYS[request.param]


@pytest.fixture
def trap_keys() -> dict[str, tuple[str, str]]:
    return dict(TRAP_KEYS)
