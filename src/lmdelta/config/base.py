"""The base of every config section: strict, self-documenting, with volatile fields marked, and the
default language model every side and harness falls back to."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

VOLATILE = {"volatile": True}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)

    def result_fields(self) -> dict[str, Any]:
        """The fields that can change a stage's output (everything not marked volatile)."""
        data = {}
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra
            if isinstance(extra, dict) and extra.get("volatile"):
                continue
            value = getattr(self, name)
            data[name] = value.result_fields() if isinstance(value, Section) else _plain(value)
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


DEFAULT_LM = "embedded:smollm2-135m-instruct"
