"""The relay's producer keeps every batch until the broker takes it (yibao.core.kafka.deliver_in_order): an
expired batch behind which a later one of its partition is delivered would reorder a visit's changes. The broker
restart that proves it end to end is tests/integration/core/test_outages.py."""

from __future__ import annotations

import asyncio
import math

import pytest
from aiokafka import AIOKafkaProducer

from yibao.core.errors import StackError
from yibao.core.kafka import deliver_in_order


def test_a_relay_producers_batches_never_expire() -> None:
    async def made() -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", request_timeout_ms=5000)

    producer = asyncio.run(made())
    assert producer._message_accumulator._batch_ttl == 5.0
    assert deliver_in_order(producer) is producer
    assert producer._message_accumulator._batch_ttl == math.inf


def test_an_aiokafka_without_the_batch_lifetime_is_refused_loudly() -> None:
    class Other:
        pass

    with pytest.raises(StackError, match="batch lifetime"):
        deliver_in_order(Other())  # type: ignore[arg-type]
