"""Retention and key rotation on the real databases: `yibao data purge` deletes the personal data the policy says
is old enough and nothing else; `yibao data reencrypt` re-seals everything under the current key."""

from __future__ import annotations

import datetime as _dt

import pytest
from sqlalchemy import func, insert, select, update

from yibao.cli.main import main
from yibao.core import clock
from yibao.core.atrest import DataCipher
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import inbox, outbox, parked_work
from yibao.core.deployment import Deployment, bind
from yibao.core.messaging.deadletter import DeadLetter, park_in_table, parked_letters
from yibao.core.messaging.inbox import first_time
from yibao.core.messaging.outbox import enqueue
from yibao.core.retention import RetentionPolicy, purge

pytestmark = [pytest.mark.integration]

OLD = clock.now() - _dt.timedelta(days=40)
RECENT = clock.now() - _dt.timedelta(days=2)
K1 = "k1:00112233445566778899aabbccddeeff"
K2 = "k2:ffeeddccbbaa99887766554433221100"


@pytest.fixture
def engine(any_db_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    upgrade(any_db_url)
    monkeypatch.setenv("DATABASE_URL", any_db_url)
    for name in ("YIBAO_TOPIC_PREFIX", "YIBAO_DATA_KEYS", "YIBAO_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    engine = make_engine(any_db_url)
    yield engine
    engine.dispose()


def _letter(n: int) -> DeadLetter:
    return DeadLetter.of(service="ingest", reason_code="x", reason="r", topic="t", partition=0, offset=n, key=b"k",
                         value=f'{{"psn_name": "张三{n}"}}'.encode())


def _fill(engine) -> None:  # type: ignore[no-untyped-def]
    """Rows of every age and state: what the policy must take and what it must leave."""
    with engine.begin() as conn:
        for n, (created, published) in enumerate([(OLD, OLD), (OLD, None), (RECENT, RECENT), (OLD, RECENT)]):
            enqueue(conn, producer="ingest", topic="t", key="k", value=f"row{n}")
            conn.execute(update(outbox).where(outbox.c.payload.like(f"%row{n}"))
                         .values(created_at=created, published_at=published))
        conn.execute(insert(inbox), [{"consumer": "ingest", "event_id": f"old{n}", "received_at": OLD}
                                     for n in range(3)] + [{"consumer": "ingest", "event_id": "new", "received_at": RECENT}])
        for n in range(4):
            park_in_table(conn, _letter(n))
        ids = conn.execute(select(parked_work.c.id).order_by(parked_work.c.id)).scalars().all()
        conn.execute(update(parked_work).where(parked_work.c.id == ids[0]).values(replayed_at=OLD))
        conn.execute(update(parked_work).where(parked_work.c.id == ids[1]).values(replayed_at=RECENT))
        # ids[2], ids[3] wait for a person: never purged, however old
        conn.execute(update(parked_work).where(parked_work.c.id == ids[2]).values(created_at=OLD))


def _count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_the_purge_deletes_only_what_is_older_than_the_retention(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    core = ("outbox", "inbox", "parked_work")  # (tables other parts register, e.g. chain_calls, purge on their own)
    dry = purge(engine, RetentionPolicy(days=30), dry_run=True)
    assert {k: dry[k] for k in core} == {"outbox": 1, "inbox": 3, "parked_work": 1}
    assert _count(engine, outbox) == 4, "a dry run changes nothing"
    done = purge(engine, RetentionPolicy(days=30))
    assert {k: done[k] for k in core} == {"outbox": 1, "inbox": 3, "parked_work": 1}
    with engine.connect() as conn:
        left = sorted(conn.execute(select(outbox.c.payload)).scalars())
        assert left == ["row1", "row2", "row3"], "pending and recently published rows stay"
        assert conn.execute(select(inbox.c.event_id)).scalars().all() == ["new"]
    assert _count(engine, parked_work) == 3, "parked work waiting for a person stays"
    again = purge(engine, RetentionPolicy(days=30))
    assert {k: again[k] for k in core} == {"outbox": 0, "inbox": 0, "parked_work": 0}


def test_retention_zero_keeps_everything(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    assert purge(engine, RetentionPolicy(days=0)) == {}
    assert _count(engine, inbox) == 4


def test_a_deployment_purges_only_its_own_rows(engine) -> None:  # type: ignore[no-untyped-def]
    other = bind(engine, Deployment(prefix="other."))
    with other.begin() as conn:
        first_time(conn, "ingest", "theirs")
        conn.execute(update(inbox).values(received_at=OLD))
    assert purge(bind(engine, Deployment(prefix="mine.")), RetentionPolicy(days=30))["inbox"] == 0
    assert purge(other, RetentionPolicy(days=30))["inbox"] == 1


def test_yibao_data_purge_applies_the_retention_setting(engine, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _fill(engine)
    monkeypatch.setenv("YIBAO_RETENTION_DAYS", "30")
    assert main(["data", "purge", "--dry-run"]) == 0
    assert "would delete outbox 1, inbox 3, parked_work 1" in capsys.readouterr().out
    assert main(["data", "purge"]) == 0
    assert "deleted outbox 1, inbox 3, parked_work 1" in capsys.readouterr().out
    assert main(["data", "purge", "--days", "1"]) == 0
    assert "deleted outbox 2" in capsys.readouterr().out


def test_yibao_data_reencrypt_reseals_everything_under_the_new_key(engine, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    plain_rows = engine
    _fill(plain_rows)  # written before encryption was switched on: plain
    sealed_k1 = bind(engine, Deployment(cipher=DataCipher.from_secret(K1)))
    with sealed_k1.begin() as conn:
        enqueue(conn, producer="ingest", topic="t", key="k", value='{"psn_name": "李四"}')
        park_in_table(conn, _letter(9))

    monkeypatch.setenv("YIBAO_DATA_KEYS", f"{K2},{K1}")  # rotation: k2 first, k1 kept to open the old rows
    assert main(["data", "reencrypt", "--dry-run"]) == 0
    assert "outbox.payload: would re-seal 5" in capsys.readouterr().out
    assert main(["data", "reencrypt"]) == 0
    out = capsys.readouterr().out
    assert "outbox.payload: re-sealed 5, already current 0, cannot open 0" in out
    assert "parked_work.payload: re-sealed 5" in out

    only_k2 = bind(engine, Deployment(cipher=DataCipher.from_secret(K2)))  # the old key is gone now
    with only_k2.connect() as conn:
        payloads = conn.execute(select(outbox.c.payload)).scalars().all()
        assert all(p.startswith("yb1.k2.") for p in payloads)
        assert "李四" not in "".join(payloads)
        opened = sorted(Deployment.of(conn).cipher.open(p) for p in payloads)
        assert '{"psn_name": "李四"}' in opened and "row0" in opened
        letters, unreadable = parked_letters(conn, waiting_only=False)
        assert unreadable == 0 and len(letters) == 5
    assert main(["data", "reencrypt"]) == 0
    assert "re-sealed 0, already current 5" in capsys.readouterr().out


def test_yibao_data_reencrypt_without_a_key_says_so(engine, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["data", "reencrypt"]) == 2
    assert "no data key configured" in capsys.readouterr().out


def test_every_worker_applies_the_retention_policy_on_a_timer(stack, kafka_bootstrap: str, prefix: str,  # type: ignore[no-untyped-def]
                                                              tmp_path) -> None:
    from support.ingest import IngestDeployment
    from support.outages import poll
    from support.stack import new_database

    url = new_database(stack, tmp_path)
    upgrade(url)
    engine = bind(make_engine(url), Deployment(prefix=prefix))
    with engine.begin() as conn:
        first_time(conn, "ingest", "an-old-event")
        conn.execute(update(inbox).values(received_at=OLD))
    deployment = IngestDeployment(prefix, kafka_bootstrap, url)
    import asyncio

    asyncio.run(deployment.create_cdc_topics())
    worker = deployment.worker(tmp_path / "ingest.log", YIBAO_RETENTION_INTERVAL_S="1",
                               YIBAO_RETENTION_DAYS="30").start()
    try:
        poll(lambda: _count(engine, inbox) == 0, 60, "the worker's retention timer to purge the old inbox row")
    finally:
        worker.stop()
        engine.dispose()
    assert "retention purge" in worker.log_path.read_text()
