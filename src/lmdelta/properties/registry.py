"""Finding properties by name: the built-in catalogue, and a Registry that adds a run's own.

A Registry is an ordinary object a run builds (no module-level state): it starts with the catalogue
and its presence views, and takes user properties from Python (`register`) or from config entries
(`register_spec`), refusing a name that is taken.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lmdelta.errors import ConfigError
from lmdelta.properties.base import PRESENCE_PREFIX, Property, presence_view
from lmdelta.properties.batch import as_texts
from lmdelta.properties.catalogue import CATALOGUE, PRESENCE_VIEWS
from lmdelta.properties.user import from_spec


class Registry:
    """Properties by name, in the order they were added (the catalogue first)."""

    def __init__(self, properties: Iterable[Property] = (*CATALOGUE, *PRESENCE_VIEWS)) -> None:
        self._by_name: dict[str, Property] = {}
        for prop in properties:
            self.register(prop)

    def register(self, prop: Property) -> Property:
        """Add a property (any Python scorer); ConfigError if its name is taken."""
        if not isinstance(prop, Property):
            raise TypeError(f"register takes a Property, not {type(prop).__name__}")
        if prop.name in self._by_name:
            raise ConfigError(
                f"A property named {prop.name} already exists.",
                "Choose another name for yours (Registry().names lists the built-in ones).",
            )
        self._by_name[prop.name] = prop
        return prop

    def register_spec(self, spec: Mapping[str, Any]) -> Property:
        """Add a user property from a config entry (see properties.user)."""
        return self.register(from_spec(spec))

    def get(self, name: str) -> Property:
        """The property of that name; ConfigError with near matches if there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            near = difflib.get_close_matches(str(name), self._by_name, n=3)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(
                f"There is no property named {name!r}.{hint}", f"Choose one of: {', '.join(self._by_name)}."
            ) from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __iter__(self) -> Iterator[Property]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def get(name: str) -> Property:
    """A built-in property (catalogue or has_<name> presence view) by name."""
    return Registry().get(name)


def score_all(properties: Iterable[Property], texts: Iterable[str]) -> dict[str, np.ndarray]:
    """Each property's raw values for the texts, by name, sharing one batch's tokenisation and sentences."""
    batch = as_texts(texts)
    return {prop.name: prop.score(batch) for prop in properties}


def with_user_properties(specs: Iterable[Mapping[str, Any]]) -> Registry:
    """The catalogue and its presence views, then each user property from its config entry (see
    properties.user) followed by its has_<name> presence view when it counts matches."""
    registry = Registry()
    for spec in specs:
        prop = registry.register_spec(spec)
        if prop.kind == "amount" and prop.phrase:
            registry.register(presence_view(prop))
    return registry


def select(registry: Registry, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> tuple[Property, ...]:
    """The registry's properties named in `include` (every one when it is empty) less those named in
    `exclude`, in registry order. A base name covers its has_<name> presence view as well; a has_<name>
    covers the view alone. ConfigError, with near matches, for a name the registry does not hold."""
    for name in (*include, *exclude):
        registry.get(name)
    return tuple(
        prop
        for prop in registry
        if (not include or _named(prop, include, registry)) and not _named(prop, exclude, registry)
    )


def _named(prop: Property, names: Sequence[str], registry: Registry) -> bool:
    base = prop.name.removeprefix(PRESENCE_PREFIX)
    return prop.name in names or (base != prop.name and base in registry and base in names)


def build(name: str, spec: Mapping[str, Any] | None = None) -> Property:
    """The property a hypothesis names: a built-in one (catalogue or presence view) when there is no
    spec, else the user property its config entry defines, or that one's has_<name> presence view."""
    if spec is None:
        return get(name)
    prop = from_spec(spec)
    if name == prop.name:
        return prop
    if name == PRESENCE_PREFIX + prop.name and prop.kind == "amount" and prop.phrase:
        return presence_view(prop)
    raise ConfigError(
        f"The property {name!r} is neither the user property {prop.name!r} nor its presence view.",
        "The hypothesis was written by another lmdelta version or edited: propose again.",
    )
