"""How each catalog is read (data/catalogs.yaml): a file's column positions, a paged query's key fields."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from yibao.upload_scheduler.errors import LaneConfigError

__all__ = ["CatalogLayout", "load_layouts"]


class CatalogLayout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    infno: str = ""
    mode: Literal["file", "paged", "medins"]
    name: str
    #: file: the least columns a row has; the positions of key, ver, vali_flag, rid
    columns: int | None = Field(None, ge=1, le=500)
    key: int | list[str]
    ver: int | None = None
    vali_flag: int | None = None
    rid: int | None = None

    @model_validator(mode="after")
    def _coherent(self) -> CatalogLayout:
        if self.mode == "file":
            if not isinstance(self.key, int) or self.ver is None or self.columns is None:
                raise ValueError("a file catalog names columns and the positions of key and ver")
            for name in ("key", "ver", "vali_flag", "rid"):
                pos = getattr(self, name)
                if pos is not None and pos >= self.columns:
                    raise ValueError(f"{name} at {pos} is beyond the {self.columns} columns")
        elif not isinstance(self.key, list) or not self.key:
            raise ValueError("a paged catalog names its key fields")
        return self


def load_layouts(path: Path | None = None) -> dict[str, CatalogLayout]:
    if path is None:
        text = resources.files("yibao.upload_scheduler.data").joinpath("catalogs.yaml").read_text(encoding="utf-8")
        where = "data/catalogs.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise LaneConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
        where = str(path)
    try:
        raw = yaml.safe_load(text) or {}
        layouts = {str(k): CatalogLayout.model_validate(v).model_copy(update={"infno": str(k)})
                   for k, v in (raw.get("catalogs") or {}).items()}
    except (yaml.YAMLError, AttributeError) as exc:
        raise LaneConfigError(f"{where}: not a catalogs file ({exc.__class__.__name__})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LaneConfigError(f"{where}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    return layouts
