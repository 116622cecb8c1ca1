"""msgid slots and sign-in sessions shared through the real database, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.envelope.signin import SigninManager, SigninStore

from unit.envelope.national.national_standins import allocate_in_processes

pytestmark = pytest.mark.integration


def test_msgid_is_unique_across_processes_sharing_the_database(any_db_url: str) -> None:
    upgrade(any_db_url)
    ids = allocate_in_processes(any_db_url, processes=4, per_process=2000, slots=4)
    assert len(ids) == 8000
    assert [m for m, n in Counter(ids).items() if n > 1] == []
    assert all(len(m) == 30 and m[12:].isdigit() for m in ids)


def test_workers_sharing_the_database_sign_in_once(any_db_url: str) -> None:
    upgrade(any_db_url)
    engines = [make_engine(any_db_url) for _ in range(4)]
    sign_ins: list[str] = []

    async def sign_in() -> str:
        await asyncio.sleep(0.05)  # a platform round trip, so that the other workers wait for it
        sign_ins.append(f"SN{len(sign_ins) + 1}")
        return sign_ins[-1]

    async def sign_out(sign_no: str) -> None:
        return None

    async def main() -> list[str]:
        managers = [SigninManager(SigninStore(engine, "H44010600001", "op1", f"worker-{i}"), sign_in, sign_out,
                                  poll_s=0.02)
                    for i, engine in enumerate(engines)]
        return await asyncio.gather(*(m.sign_no() for m in managers for _ in range(3)))

    try:
        results = asyncio.run(main())
    finally:
        for engine in engines:
            engine.dispose()
    assert sign_ins == ["SN1"]
    assert set(results) == {"SN1"}
