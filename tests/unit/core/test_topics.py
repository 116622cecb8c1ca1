"""The topic catalog (yibao.core.topics): names, partitions, keys and value models."""

from __future__ import annotations

import importlib
import re

import pytest
from pydantic import BaseModel, TypeAdapter

from yibao.core.topics import CATALOG, TopicSpec, resolve_model, topic

#: topics whose catalog entry is known to be wrong today (the lead fixes; remove the entry then)
_KNOWN_WRONG: dict[str, str] = {}


def test_every_topic_name_is_unique() -> None:
    names = [spec.name for spec in CATALOG]
    assert len(names) == len(set(names))


def test_every_topic_id_is_unique() -> None:
    ids = [spec.id for spec in CATALOG]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.id)
def test_every_topic_name_is_versioned(spec: TopicSpec) -> None:
    assert re.fullmatch(r"yibao(\.[a-z0-9_-]+)+\.v[1-9][0-9]*", spec.name), spec.name


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.id)
def test_every_topic_has_at_least_one_partition(spec: TopicSpec) -> None:
    assert spec.partitions >= 1


@pytest.mark.parametrize("topic_id", ["his_events", "his_results", "visits"])
def test_visit_scoped_topics_are_keyed_by_the_his_visit_id(topic_id: str) -> None:
    assert next(spec for spec in CATALOG if spec.id == topic_id).key == "HIS visit id"


def test_a_prefix_is_prepended_to_the_name() -> None:
    assert topic("dlq") == "yibao.dlq.v1"
    assert topic("dlq", "hospital1.") == "hospital1.yibao.dlq.v1"


@pytest.mark.parametrize(
    "spec",
    [pytest.param(spec, id=spec.id, marks=pytest.mark.xfail(strict=True, reason=_KNOWN_WRONG[spec.id]))
     if spec.id in _KNOWN_WRONG else pytest.param(spec, id=spec.id) for spec in CATALOG],
)
def test_every_value_model_that_exists_today_resolves(spec: TopicSpec) -> None:
    module = spec.value_model.partition(":")[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            pytest.skip(f"{module} is not written yet")
        raise
    model = resolve_model(spec)
    # a pydantic model, a TypeAdapter, or a type pydantic can build one from (an Annotated union)
    if not isinstance(model, TypeAdapter) and not (isinstance(model, type) and issubclass(model, BaseModel)):
        TypeAdapter(model)
