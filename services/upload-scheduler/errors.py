"""The upload scheduler's exceptions (leaves of :mod:`yibao.core.errors`).

    YibaoError
    ├── ConfigurationError
    │   └── LaneConfigError        lanes.yaml / targets.yaml do not hold together (named file and entry)
    └── InputError                  bad input: the message is parked with the reason, never retried
        ├── UnknownLaneError        a source names a kind no lane uploads
        ├── RecordKeyError          a record without its business key (the path named)
        └── CatalogFileError        a catalog file that cannot be applied: its name and line; the catalog in
                                    force stays as it was
"""

from __future__ import annotations

from yibao.core.errors import ConfigurationError, InputError

__all__ = ["LaneConfigError", "UnknownLaneError", "RecordKeyError", "CatalogFileError"]


class LaneConfigError(ConfigurationError):
    code = "lane_config"


class UnknownLaneError(InputError):
    code = "unknown_lane"


class RecordKeyError(InputError):
    code = "record_key"


class CatalogFileError(InputError):
    """A catalog file refused: ``file_name`` and ``line`` (1-based; 0 when the file as a whole is wrong)."""

    code = "catalog_file"

    def __init__(self, infno: str, file_name: str, line: int, problem: str) -> None:
        self.infno, self.file_name, self.line, self.problem = infno, file_name, line, problem
        where = f"{file_name}, line {line}" if line else file_name
        super().__init__(f"{infno}: {where}: {problem}")
