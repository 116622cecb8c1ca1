"""The simulator started in-process on free ports; envelopes built by hand (independent of libs/envelope)."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from yibao.core import clock
from yibao.simulator import Simulator, SimulatorSettings
from yibao.simulator.settings import DEFAULT_FIXMEDINS_CODE

CODE = DEFAULT_FIXMEDINS_CODE
_serial = itertools.count(1)


def msgid() -> str:
    return f"{CODE}{clock.now():%Y%m%d%H%M%S}{next(_serial) % 10000:04d}"


def envelope(infno: str, payload: dict[str, Any], *, sign_no: str = "", mid: str | None = None,
             insuplc: str = "") -> dict[str, Any]:
    return {"infno": infno, "msgid": mid or msgid(), "mdtrtarea_admvs": "440100", "insuplc_admdvs": insuplc,
            "recer_sys_code": "FSI_LOCAL", "dev_no": "", "dev_safe_info": "", "cainfo": "", "signtype": "",
            "infver": "V1.0", "opter_type": "1", "opter": "OP01", "opter_name": "收费员",
            "inf_time": clock.format_datetime(clock.now()), "fixmedins_code": CODE, "fixmedins_name": "测试医院",
            "sign_no": sign_no, "input": payload}


def body(env: dict[str, Any]) -> bytes:
    return json.dumps(env, ensure_ascii=False, default=str).encode("utf-8")


def loads(response: httpx.Response) -> dict[str, Any]:
    return json.loads(response.content, parse_float=Decimal)


def settings(**kw: Any) -> SimulatorSettings:
    return SimulatorSettings(**{"port": 0, "admin_port": 0, "population_size": 20, "validate_with_catalog": False,
                                "hold_s": 3.0, **kw})


@pytest.fixture
def start() -> Callable[..., Any]:
    """``async with start(**settings) as sim``"""
    return lambda **kw: Simulator(settings(**kw))


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(settings()) as s:
        yield s


async def sign_in(client: httpx.AsyncClient, sim: Simulator, headers: dict[str, str] | None = None) -> str:
    r = await client.post(sim.url + sim.settings.call_path, content=body(
        envelope("9001", {"signIn": {"opter_no": "OP01", "mac": "", "ip": "127.0.0.1"}})), headers=headers or {})
    return loads(r)["output"]["signinoutb"]["sign_no"]
