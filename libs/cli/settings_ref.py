"""``yibao settings``: the settings reference, generated from the settings classes themselves.

The README's settings section is the ``--markdown`` output of this command pasted between the markers
``<!-- settings:begin -->`` and ``<!-- settings:end -->``; a unit test compares the two, so the documentation
cannot drift from the code. Everything shown is static (environment variable names, types, defaults and
descriptions), never the values of the current environment: a reference must not print secrets, and the same
build must always print the same text.

Which classes: the library classes in :data:`LIBRARY_SETTINGS` plus every settings class defined in
``yibao.<service>.settings`` for each service of :data:`yibao.cli.worker.SERVICES` that has such a module, so a
new service's settings appear without touching this file. A class deriving from another listed class shows
only the settings it adds; the inherited ones are named under its prefix in one line.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, AliasPath, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    SecretsSettingsSource,
)

__all__ = [
    "add_arguments",
    "run",
    "LIBRARY_SETTINGS",
    "SettingRow",
    "SettingsSection",
    "settings_classes",
    "describe",
    "env_names",
    "env_prefixes",
    "render_text",
    "render_markdown",
]

#: settings classes of the libraries, as "module:attribute": the first is the base every service extends and is
#: shown first; the others follow the services' own classes.
LIBRARY_SETTINGS: tuple[str, ...] = (
    "yibao.core.settings:CommonSettings",
    "yibao.envelope.settings:PlatformSettings",
    "yibao.envelope.mobilepay.settings:MobilePaySettings",
    "yibao.envelope.mobilepay.wechat:WeChatSettings",
    "yibao.envelope.workinjury.settings:WorkInjuryPlatformSettings",
    "yibao.simulator.settings:SimulatorSettings",
)


@dataclass(frozen=True)
class SettingRow:
    """One setting as documented: how to set it, what it holds, what it is when unset."""

    field: str
    env: tuple[str, ...]
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class SettingsSection:
    """One settings class: its own settings, and the names of those it inherits from a listed class."""

    cls: type[BaseSettings]
    prefix: str
    fallback_prefixes: tuple[str, ...]
    rows: tuple[SettingRow, ...]
    inherited_from: type[BaseSettings] | None
    inherited_env: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.cls.__name__

    @property
    def module(self) -> str:
        return self.cls.__module__

    @property
    def summary(self) -> str:
        """First paragraph of the class docstring, on one line (a class without its own docstring: empty)."""
        doc = self.cls.__dict__.get("__doc__") or ""
        return " ".join(doc.strip().split("\n\n", 1)[0].split())


# --- which classes -----------------------------------------------------------------------------------------


def _load(reference: str) -> type[BaseSettings]:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _service_modules() -> Iterator[types.ModuleType]:
    """``yibao.<service>.settings`` of every service that has one (a service not written yet has none)."""
    from yibao.cli.worker import SERVICES

    for package in SERVICES.values():
        name = f"{package}.settings"
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # only "this module (or its package) does not exist" is skipped; a broken import inside it is a bug
            if exc.name and name.startswith(exc.name):
                continue
            raise


def _defined_in(module: types.ModuleType) -> list[type[BaseSettings]]:
    """Settings classes defined (not merely imported) in a module, in source order."""
    return [
        value for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings
        and value.__module__ == module.__name__
    ]


def settings_classes() -> list[type[BaseSettings]]:
    """Every documented settings class: the base, the services' own, then the other libraries'."""
    base, *libraries = (_load(ref) for ref in LIBRARY_SETTINGS)
    ordered: list[type[BaseSettings]] = [base]
    for module in _service_modules():
        ordered.extend(_defined_in(module))
    ordered.extend(libraries)
    unique: list[type[BaseSettings]] = []
    for cls in ordered:
        if cls not in unique:
            unique.append(cls)
    return unique


# --- one field ---------------------------------------------------------------------------------------------


def _prefix(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix") or "")


def env_prefixes(cls: type[BaseSettings]) -> tuple[str, ...]:
    """The prefixes the class reads the environment with, in order of precedence: its own, then fallbacks.

    Asked of the class's own ``settings_customise_sources`` (CommonSettings adds a global ``YIBAO_`` source
    after a service's), so the reference follows whatever the classes really do.
    """
    sources = cls.settings_customise_sources(
        cls, InitSettingsSource(cls, init_kwargs={}), EnvSettingsSource(cls), DotEnvSettingsSource(cls),
        SecretsSettingsSource(cls),
    )
    prefixes = [
        str(source.env_prefix or "") for source in sources
        if isinstance(source, EnvSettingsSource) and not isinstance(source, DotEnvSettingsSource)
    ]
    return tuple(dict.fromkeys(prefixes)) or (_prefix(cls),)


def env_names(cls: type[BaseSettings], name: str, field: FieldInfo, prefix: str | None = None) -> tuple[str, ...]:
    """The environment variables pydantic-settings reads for a field through a source with ``prefix``.

    An alias (``validation_alias`` or ``alias``) replaces prefix + name, as in pydantic-settings; without one
    the name is the prefix (default: the class's ``env_prefix``) + the field name. Case-insensitive classes are
    shown upper-case.
    """
    alias = field.validation_alias if field.validation_alias is not None else field.alias
    names: list[str] = []
    if isinstance(alias, str):
        names.append(alias)
    elif isinstance(alias, AliasChoices):
        for choice in alias.choices:
            if isinstance(choice, str):
                names.append(choice)
            elif isinstance(choice, AliasPath) and isinstance(choice.path[0], str):
                names.append(choice.path[0])
    elif isinstance(alias, AliasPath) and isinstance(alias.path[0], str):
        names.append(alias.path[0])
    if not names:
        names.append((_prefix(cls) if prefix is None else prefix) + name)
    if not cls.model_config.get("case_sensitive", False):
        names = [n.upper() for n in names]
    return tuple(dict.fromkeys(names))


def _type_name(annotation: Any) -> str:
    """A short, readable type: ``str``, ``int | None``, ``list[str]``, ``none | tif | api``."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(str(v) for v in typing.get_args(annotation))
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(str(member.value) for member in annotation)
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in typing.get_args(annotation))


def _default_text(field: FieldInfo) -> str:
    """The default as one would write it in the environment (JSON for lists, objects and booleans)."""
    if _is_secret(field.annotation):
        return "(secret)"
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
        # a nested model (a service composing PlatformSettings): its own table documents it; building one here
        # would read the environment
        return f"(see {field.annotation.__name__})"
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:  # a factory that needs the other values: not static, say so
            return "(computed)"
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "(unset)"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, (bool, list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def describe(cls: type[BaseSettings], parent: type[BaseSettings] | None = None) -> SettingsSection:
    """The reference of one class; with ``parent``, only the fields the class declares itself are rows."""
    own = (set(cls.model_fields) - set(parent.model_fields)) if parent is not None else set(cls.model_fields)
    rows: list[SettingRow] = []
    inherited: list[str] = []
    for name, field in cls.model_fields.items():
        names = env_names(cls, name, field)
        if name in own:
            rows.append(SettingRow(
                field=name, env=names, type=_type_name(field.annotation), default=_default_text(field),
                description=" ".join((field.description or "").split()),
            ))
        elif parent is not None and names != env_names(parent, name, parent.model_fields[name]):
            inherited.extend(names)
    prefix, *fallbacks = env_prefixes(cls)
    return SettingsSection(cls=cls, prefix=prefix, fallback_prefixes=tuple(fallbacks), rows=tuple(rows),
                           inherited_from=parent, inherited_env=tuple(inherited))


def _sections() -> list[SettingsSection]:
    classes = settings_classes()
    sections = []
    for cls in classes:
        parent = next((c for c in cls.__mro__[1:] if c in classes), None)
        sections.append(describe(cls, parent))
    return sections


# --- output ------------------------------------------------------------------------------------------------


def _service_facts(section: SettingsSection) -> str:
    """ClassVars a worker's settings carry (service name, default port): useful next to its table."""
    service = section.cls.__dict__.get("service_name")
    port = getattr(section.cls, "default_web_port", None)
    if section.inherited_from is None or service is None:  # the base class is no service of its own
        return ""
    return f"service `{service}`, metrics/health port {port} unless `web_port` is set"


def _fallback_note(section: SettingsSection) -> str:
    if not section.fallback_prefixes:
        return ""
    names = " then ".join(f"`{p}<NAME>`" for p in section.fallback_prefixes)
    return f"; a setting not given under this prefix is read from {names}"


def _heirs(section: SettingsSection, sections: list[SettingsSection]) -> list[str]:
    return [other.title for other in sections if other.inherited_from is section.cls]


def render_text(sections: list[SettingsSection]) -> str:
    lines: list[str] = []
    for section in sections:
        lines.append(f"{section.title} ({section.module}), env prefix {section.prefix or '(none)'}"
                     + _fallback_note(section).replace("`", ""))
        if section.summary:
            lines.append(f"  {section.summary}")
        facts = _service_facts(section)
        if facts:
            lines.append(f"  {facts.replace('`', '')}")
        heirs = _heirs(section, sections)
        if heirs:
            lines.append(f"  also read by {', '.join(heirs)}, each under its own prefix")
        for row in section.rows:
            lines.append(f"  {', '.join(row.env)}  [{row.type}]  default: {row.default}")
            if row.description:
                lines.append(f"      {row.description}")
        if section.inherited_from is not None and section.inherited_env:
            lines.append(f"  also every {section.inherited_from.__name__} setting: {', '.join(section.inherited_env)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(sections: list[SettingsSection]) -> str:
    """One table per class, headed by the class name, its module and its env prefix."""
    blocks: list[str] = []
    for section in sections:
        prefix = f"`{section.prefix}`" if section.prefix else "none"
        lines = [f"### {section.title}", "", f"`{section.module}` — env prefix {prefix}{_fallback_note(section)}"]
        if section.summary:
            lines[-1] += f". {_cell(section.summary)}"
        facts = _service_facts(section)
        if facts:
            lines[-1] += f" ({facts})"
        heirs = _heirs(section, sections)
        if heirs:
            lines[-1] += f" Also read by {', '.join(heirs)}, each under its own prefix."
        lines += ["", "| variable | type | default | description |", "|---|---|---|---|"]
        for row in section.rows:
            env = "<br>".join(f"`{name}`" for name in row.env)
            lines.append(f"| {env} | `{_cell(row.type)}` | `{_cell(row.default)}` | {_cell(row.description)} |")
        if section.inherited_from is not None and section.inherited_env:
            names = ", ".join(f"`{name}`" for name in section.inherited_env)
            lines += ["", f"Also every {section.inherited_from.__name__} setting under this prefix: {names}."]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


# --- the command -------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--markdown", action="store_true",
        help="one Markdown table per class (the README's, between <!-- settings:begin/end -->)",
    )


def run(args: argparse.Namespace) -> int:
    sections = _sections()
    print(render_markdown(sections) if args.markdown else render_text(sections), end="")
    return 0
