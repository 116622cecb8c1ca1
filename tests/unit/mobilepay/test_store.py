"""How a mobile-pay visit is stored: its state sealed at rest with the deployment's data key, like every chain's."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from yibao.core.atrest import DataCipher, SealedDataError
from yibao.core.db.schema import chain_visits
from yibao.core.deployment import Deployment, bind
from yibao.mobilepay import store
from yibao.simulator import Simulator

from unit.mobilepay.harness import Harness

KEY = "k1:0123456789abcdeffedcba9876543210"


def _stored(engine: Engine, key: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(chain_visits.c.state).where(chain_visits.c.service == "mobilepay",
                                                               chain_visits.c.visit_key == key)).scalar_one()


async def test_a_visits_state_is_sealed_at_rest_with_the_data_key_and_still_loads(sqlite_engine: Engine,
                                                                                   sim: Simulator) -> None:
    sealed = bind(sqlite_engine, Deployment(cipher=DataCipher.from_secret(KEY)))
    h = Harness(sealed, sim)
    v = h.visit("30.00", "12.50")
    order_id = h.order(v, "C1", pay_now=True)
    await h.drain()
    h.callbacks()
    await h.drain()
    text = _stored(sqlite_engine, v.key)
    assert DataCipher.is_sealed(text)
    for secret in (v.person.certno, v.person.psn_name, v.person.psn_no):
        assert secret not in text
    assert h.get(v, order_id).phase == "settled", "the chain went on through sealed states"
    with sealed.connect() as conn:
        st = store.load_state(conn, v.key)
    assert st is not None and st.order(order_id).phase == "settled"
    assert st.patient.certno == v.person.certno
    [result] = h.results(v)
    assert result.kind == "settled"


async def test_a_state_stored_in_clear_before_the_key_was_configured_still_loads_and_is_sealed_when_written(
        sqlite_engine: Engine, sim: Simulator) -> None:
    plain = Harness(sqlite_engine, sim)
    v = plain.visit("20.00")
    assert not DataCipher.is_sealed(_stored(sqlite_engine, v.key)), "no key: plain, as the demo runs"
    sealed = bind(sqlite_engine, Deployment(cipher=DataCipher.from_secret(KEY)))
    with sealed.connect() as conn:
        st = store.load_state(conn, v.key)
    assert st is not None and st.patient.certno == v.person.certno
    h = Harness(sealed, sim)
    order_id = h.order(v, "C1", pay_now=True)
    await h.drain()
    assert h.get(v, order_id).phase == "paid"
    text = _stored(sqlite_engine, v.key)
    assert DataCipher.is_sealed(text) and v.person.certno not in text


def test_a_sealed_state_is_not_opened_under_another_key(sqlite_engine: Engine, sim: Simulator) -> None:
    v = Harness(bind(sqlite_engine, Deployment(cipher=DataCipher.from_secret(KEY))), sim).visit("20.00")
    other = bind(sqlite_engine, Deployment(cipher=DataCipher.from_secret("k9:ffeeddccbbaa99887766554433221100")))
    with other.connect() as conn, pytest.raises(SealedDataError):
        store.load_state(conn, v.key)
