"""A deterministic synthetic population: the same seed always gives the same people.

The HIS generator registers these people and the platform simulator answers 1101 (人员信息获取) from the very
same ``population(seed, size)``, so every patient the fake HIS sends exists on the fake platform.

Everything is synthetic: names are random combinations, certnos are random birth dates and sequence numbers on
real region codes with a *valid* GB 11643 check digit (the platform and HIS both validate it), phone numbers are
random. ``random.Random(seed)`` is right here: this is reproducible test data, not identifiers or secrets.

Codes: insutype 310 职工基本医疗保险 / 390 城乡居民基本医疗保险 / 340 离休人员医疗保障; psn_type values are
illustrative (the province's 1901 dictionary is authoritative); gend 1 男 / 2 女 (GB/T 2261.1).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import random
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from yibao.fakedata.names import BIRTH_REGIONS, GIVEN_CHARS, INSURANCE_AREAS, LOCAL_ADMDVS, SURNAMES

__all__ = ["Person", "population", "certno_check_digit", "is_valid_certno", "REFERENCE_DATE"]

#: ages are computed against this fixed day so the population never changes with the calendar
REFERENCE_DATE = _dt.date(2025, 1, 1)

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def certno_check_digit(first17: str) -> str:
    """GB 11643-1999 check digit: weighted sum of the first 17 digits mod 11, mapped through 1 0 X 9 8 … 2."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("the first 17 characters of a certno must be digits")
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def is_valid_certno(certno: str) -> bool:
    if len(certno) != 18 or not certno[:17].isdigit():
        return False
    try:
        _dt.date(int(certno[6:10]), int(certno[10:12]), int(certno[12:14]))
    except ValueError:
        return False
    return certno_check_digit(certno[:17]) == certno[17].upper()


class Person(BaseModel):
    """An insured person as HIS and platform both know them (1101 baseinfo + insuinfo, plus cards)."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    psn_no: str = Field(min_length=1, max_length=30)
    certno: str = Field(repr=False, min_length=18, max_length=18)
    psn_cert_type: str = "01"
    psn_name: str = Field(repr=False)
    gend: Literal["1", "2"]
    naty: str = "01"
    brdy: _dt.date
    phone: str = Field(repr=False)
    insutype: Literal["310", "390", "340"]
    psn_type: str
    insuplc_admdvs: str = Field(min_length=6, max_length=6)
    psn_insu_date: _dt.date
    emp_name: str | None = None
    balc: Decimal = Field(description="personal account balance (职工 only; residents have 0.00)")
    card_sn: str = Field(repr=False)
    ec_token: str = Field(repr=False, description="医保电子凭证 token (mdtrt_cert_type 01)")

    def age_on(self, day: _dt.date = REFERENCE_DATE) -> int:
        return day.year - self.brdy.year - ((day.month, day.day) < (self.brdy.month, self.brdy.day))

    @property
    def is_local(self) -> bool:
        return self.insuplc_admdvs[:4] == LOCAL_ADMDVS[:4]


_EMPLOYERS = (
    "佛山市禅城区某某制造有限公司", "广东某某陶瓷股份有限公司", "佛山市南海区某某物流有限公司",
    "某某银行佛山分行", "佛山市某某中学", "佛山市顺德区某某电器有限公司", "某某建设集团有限公司",
)


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _birth_date(rng: random.Random) -> _dt.date:
    start = _dt.date(1935, 1, 1).toordinal()
    end = _dt.date(2023, 12, 31).toordinal()
    return _dt.date.fromordinal(rng.randint(start, end))


def _name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2, 2))))
    return rng.choice(SURNAMES) + given


def _token(seed: int, index: int, purpose: str, length: int) -> str:
    return hashlib.sha256(f"yibao-fakedata:{seed}:{index}:{purpose}".encode()).hexdigest()[:length].upper()


def population(seed: int, size: int, *, local_admdvs: str = LOCAL_ADMDVS) -> list[Person]:
    """``size`` synthetic insured people, identical for identical (seed, size); a longer list extends a shorter
    one (person i depends only on seed and i). psn_no, certno and card_sn are unique within the population."""
    if size < 0:
        raise ValueError("size must not be negative")
    areas = ((local_admdvs, INSURANCE_AREAS[0][1]),) + tuple(a for a in INSURANCE_AREAS if a[0] != local_admdvs)
    people: list[Person] = []
    used_certnos: set[str] = set()
    for i in range(size):
        rng = random.Random(f"{seed}:{i}")
        gend: Literal["1", "2"] = rng.choice(("1", "2"))
        while True:
            brdy = _birth_date(rng)
            seq = rng.randint(0, 99) * 10 + rng.choice((1, 3, 5, 7, 9) if gend == "1" else (0, 2, 4, 6, 8))
            first17 = f"{rng.choice(BIRTH_REGIONS)}{brdy:%Y%m%d}{seq:03d}"
            certno = first17 + certno_check_digit(first17)
            if certno not in used_certnos:
                used_certnos.add(certno)
                break
        admdvs = _weighted(rng, areas)
        age = REFERENCE_DATE.year - brdy.year
        if age >= 90 and rng.random() < 0.3:
            insutype, psn_type = "340", "13"  # 离休
        elif age >= 18 and rng.random() < 0.6:
            insutype, psn_type = "310", ("12" if age >= 60 else "11")  # 职工: 退休 / 在职
        else:
            insutype, psn_type = "390", ("21" if age >= 18 else "22")  # 居民: 成年 / 未成年
        balc = (
            Decimal(rng.randint(0, 800_000)).scaleb(-2) if insutype in ("310", "340") else Decimal("0.00")
        )
        insu_start = max(brdy, _dt.date(1998, 12, 1)) + _dt.timedelta(days=rng.randint(0, 3000))
        people.append(
            Person(
                psn_no=f"{admdvs[:4]}{seed % 10000:04d}{i + 1:012d}",
                certno=certno,
                psn_name=_name(rng),
                gend=gend,
                brdy=brdy,
                phone=f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}",
                insutype=insutype,
                psn_type=psn_type,
                insuplc_admdvs=admdvs,
                psn_insu_date=min(insu_start, REFERENCE_DATE),
                emp_name=rng.choice(_EMPLOYERS) if insutype == "310" and psn_type == "11" else None,
                balc=balc,
                card_sn=f"{admdvs}D156000005{_token(seed, i, 'card', 16)}",
                ec_token=f"{admdvs}{_token(seed, i, 'ec', 38)}",  # 44 chars: within mdtrt_cert_no(50)
            )
        )
    return people
