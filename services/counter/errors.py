"""The counter's exceptions (leaves of :mod:`yibao.core.errors`).

    InputError
    └── CounterInputError   a request, an event or a file the counter cannot act on; names the field (or the row)
        └── BatchFileError  a 核酸 file that is not a workbook of the template's columns (the whole file refused)
    ConfigurationError
    └── CounterConfigError  the counter's data files or settings are wrong
"""

from __future__ import annotations

from yibao.core.errors import ConfigurationError, InputError

__all__ = ["CounterInputError", "BatchFileError", "CounterConfigError"]


class CounterInputError(InputError):
    code = "counter_bad_input"


class BatchFileError(CounterInputError):
    code = "counter_bad_file"


class CounterConfigError(ConfigurationError):
    code = "counter_configuration"
