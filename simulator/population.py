"""The persons the platform knows: seeded from ``yibao.fakedata.people.population`` so that the HIS
generator's patients exist here too; persons can also be added through the admin API.

Until that library is present (it is built in parallel), a small seeded fallback generator of the same
shape is used so the simulator still runs; the fallback's people are fictitious and not valid id numbers.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from yibao.core.money import money

__all__ = ["SimPerson", "load_population", "person_from_any"]


@dataclass
class SimPerson:
    psn_no: str
    certno: str
    psn_name: str
    gend: str
    brdy: str
    insutype: str
    psn_type: str
    insuplc_admdvs: str
    balance: Decimal
    card_sn: str = ""
    ec_token: str = ""
    naty: str = "01"
    psn_cert_type: str = "01"
    cvlserv_flag: str = "0"
    emp_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def age(self, on: dt.date) -> int:
        born = dt.date.fromisoformat(self.brdy)
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["balance"] = str(self.balance)
        return data


def person_from_any(obj: Any) -> SimPerson:
    """Build from a fakedata Person, a mapping (admin API) or a SimPerson."""
    if isinstance(obj, SimPerson):
        return obj
    get = obj.get if isinstance(obj, dict) else (lambda k, d=None: getattr(obj, k, d))
    brdy = get("brdy", "1980-01-01")
    if isinstance(brdy, (dt.date, dt.datetime)):
        brdy = brdy.strftime("%Y-%m-%d")
    token = get("ec_token", None) or get("ectoken", None) or get("e_voucher_token", None) or get("evoucher", "")
    return SimPerson(
        psn_no=str(get("psn_no")),
        certno=str(get("certno", "")),
        psn_name=str(get("psn_name", "")),
        gend=str(get("gend", "1")),
        brdy=str(brdy),
        insutype=str(get("insutype", "310")),
        psn_type=str(get("psn_type", "11")),
        insuplc_admdvs=str(get("insuplc_admdvs", "440100")),
        balance=money(str(get("balance", None) if get("balance", None) is not None else get("balc", "0"))),
        card_sn=str(get("card_sn", "") or ""),
        ec_token=str(token or ""),
        naty=str(get("naty", "01") or "01"),
        cvlserv_flag=str(get("cvlserv_flag", "0") or "0"),
        emp_name=str(get("emp_name", "") or ""),
    )


def _fallback(seed: int, size: int) -> list[SimPerson]:
    rng = random.Random(f"sim-population/{seed}")
    people = []
    for i in range(size):
        year = rng.randint(1940, 2015)
        brdy = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
        people.append(
            SimPerson(
                psn_no=f"44000000000000{seed % 1000:03d}{i:05d}"[-20:],
                certno=f"440106{brdy:%Y%m%d}{i % 1000:03d}X",
                psn_name=f"测试{i:04d}",
                gend=str(rng.choice("12")),
                brdy=brdy.isoformat(),
                insutype=rng.choice(["310", "310", "390"]),
                psn_type=rng.choice(["11", "12", "15"]),
                insuplc_admdvs=rng.choice(["440100", "440106", "440300"]),
                balance=money(Decimal(rng.randint(0, 500000)) / 100),
                card_sn=f"C{seed % 100:02d}{i:07d}",
                ec_token=f"ect{seed % 100:02d}{i:010d}",
            )
        )
    return people


def load_population(seed: int, size: int) -> list[SimPerson]:
    """The seeded population (fakedata's when installed, the fallback otherwise)."""
    try:
        from yibao.fakedata.people import population  # type: ignore[import-not-found]
    except ImportError:
        return _fallback(seed, size)
    return [person_from_any(p) for p in population(seed, size)]
