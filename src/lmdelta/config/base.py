"""The base of every config section: strict, self-documenting, with volatile fields marked, and the
default language model every side and harness falls back to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonDict

from lmdelta.errors import ConfigError

VOLATILE: JsonDict = {"volatile": True}


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


class Seeded:
    """For a section with a `seed` field of its own: unset (None) until RunConfig.resolved() fills it
    from run.seed, so code that draws from it reads `resolved_seed`, an int."""

    # Declared for the type checker only: each section declares the field itself, where its
    # docstring documents it and its position orders the config reference.
    if TYPE_CHECKING:
        seed: int | None

    @property
    def resolved_seed(self) -> int:
        if self.seed is None:
            raise ConfigError(
                f"{type(self).__name__}.seed is unset.",
                "Load the config with load_config, or call RunConfig.resolved(): it fills unset seeds from run.seed.",
            )
        return self.seed


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


DEFAULT_LM = "embedded:smollm2-135m-instruct"
