"""The chaos run's random kills take every worker kind once before any twice, so even a short soak kills each."""

from __future__ import annotations

import random

from yibao.stack.chaos import victim

WORKERS = ("ingest", "registration", "settlement", "reconciliation")


def test_every_worker_kind_is_killed_once_before_any_is_killed_twice() -> None:
    for seed in range(20):
        rng, killed = random.Random(seed), set()
        first = []
        for _ in WORKERS:
            name = victim(rng, WORKERS, killed)
            killed.add(name)
            first.append(name)
        assert sorted(first) == sorted(WORKERS)
        assert victim(rng, WORKERS, killed) in WORKERS  # then any
