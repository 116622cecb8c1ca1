"""Mapping files shipped with yibao-bridge (one YAML per HIS vendor); see README.md in this folder."""

__all__: list[str] = []
