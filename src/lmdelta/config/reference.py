"""Render the config reference (docs/configuration.md) from the pydantic models' docstrings."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lmdelta.config.base import Section
from lmdelta.config.run import RunConfig


def reference_markdown() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the code by `lmdelta config --reference`; do not edit by hand.",
        "",
        "A config is a YAML file of sections. Any field can be overridden with",
        "`--set section.key=value` or an environment variable `LMDELTA__SECTION__KEY=value`",
        "(precedence: --set > environment > file > defaults). Unset (`null`) seeds take `run.seed`.",
        "Fields marked *volatile* cannot change results: changing them never re-runs a stage.",
        "",
    ]
    for name, field in RunConfig.model_fields.items():
        section = _section_type(field)
        if section is not None:  # every field of RunConfig is a section
            lines += _section(name, section)
    return "\n".join(lines) + "\n"


def _section_type(field: FieldInfo) -> type[Section] | None:
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def _section(path: str, model: type[Section]) -> list[str]:
    lines = [f"## `{path}`", "", "| field | default | meaning |", "|---|---|---|"]
    nested: list[tuple[str, type[Section]]] = []
    for name, field in model.model_fields.items():
        section = _section_type(field)
        if section is not None:
            nested.append((f"{path}.{name}", section))
            lines.append(f"| `{name}` | (section) | {_one_line(field.description)} See `{path}.{name}` below. |")
            continue
        volatile = isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("volatile")
        meaning = _one_line(field.description).replace("|", "\\|") + (" *volatile*" if volatile else "")
        lines.append(f"| `{name}` | `{_default(field)}` | {meaning} |")
    lines.append("")
    for child_path, child in nested:
        lines += _section(child_path, child)
    return lines


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "…"
    return "null" if value is None else str(value).replace("|", "\\|")


def _one_line(description: str | None) -> str:
    """A docstring wrapped over several lines, as one table cell."""
    return " ".join((description or "").split())
