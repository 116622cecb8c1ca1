"""Canonical JSON and sorted pairs: the one rendering both sides of a signature must agree on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from yibao.envelope.crypto.canonical import canonical_json, loads_exact, sorted_pairs
from yibao.envelope.errors import EnvelopeValidationError


def test_rendering_survives_a_decode_and_re_render_unchanged() -> None:
    value = {"b": [Decimal("0.10"), 3, True, None, "中"], "a": {"y": Decimal("-1.000"), "x": "\n"}}
    text = canonical_json(value)
    assert text == '{"a":{"x":"\\n","y":-1.000},"b":[0.10,3,true,null,"中"]}'
    assert canonical_json(loads_exact(text)) == text


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity")])
def test_non_finite_decimals_are_refused(bad: Decimal) -> None:
    with pytest.raises(EnvelopeValidationError, match="finite"):
        canonical_json({"amt": bad})


@pytest.mark.parametrize("bad", [{1: "x"}, {"a": {None: 1}}])
def test_non_string_keys_are_refused(bad) -> None:
    with pytest.raises(EnvelopeValidationError, match="keys must be strings"):
        canonical_json(bad)


def test_unsupported_types_are_refused_with_their_path() -> None:
    with pytest.raises(EnvelopeValidationError) as info:
        canonical_json({"when": object()}, infno="6201")
    assert (info.value.infno, info.value.path) == ("6201", "data.when")


def test_sorted_pairs_skips_excluded_and_empty_fields() -> None:
    assert sorted_pairs({"b": "2", "a": "", "sign": "s", "c": 0}, exclude=["sign"]) == "b=2&c=0"
