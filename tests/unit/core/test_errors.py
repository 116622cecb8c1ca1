"""The exception hierarchy (yibao.core.errors, yibao.envelope.errors): one root, one code per class."""

from __future__ import annotations

import re
from types import ModuleType

import pytest

import yibao.core.errors as core_errors
import yibao.envelope.errors as envelope_errors
from yibao.core.errors import YibaoError

MODULES = (core_errors, envelope_errors)


def _classes(module: ModuleType) -> list[type[BaseException]]:
    return [value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__]


ALL = [cls for module in MODULES for cls in _classes(module)]


def test_both_modules_define_errors() -> None:
    assert YibaoError in ALL and envelope_errors.UnknownOutcome in ALL


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_every_error_derives_from_yibao_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, YibaoError)


def test_every_error_has_a_distinct_code() -> None:
    codes = [cls.code for cls in ALL]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    assert duplicates == []


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_every_code_is_a_short_machine_readable_word(cls: type[YibaoError]) -> None:
    assert re.fullmatch(r"[a-z][a-z_]{1,39}", cls.code)


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_every_error_is_exported(module: ModuleType) -> None:
    assert {cls.__name__ for cls in _classes(module)} <= set(module.__all__)


def test_a_code_can_be_given_per_instance_without_changing_the_class() -> None:
    error = core_errors.InputError("mapping: column X missing", code="missing_column")
    assert error.code == "missing_column" and core_errors.InputError.code == "bad_input"
    assert error.reason == "mapping: column X missing"
