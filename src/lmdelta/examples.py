"""The example configs shipped inside the package (configs/ in the repository), for `lmdelta init`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from lmdelta.errors import ConfigError

DEFAULT = "demo"


def example_names() -> list[str]:
    folder = resources.files("lmdelta") / "configs"
    names = [entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml")]
    return sorted(name for name in names if not name.endswith("-script"))  # a fake LLM's script, not a config


def example_text(name: str) -> str:
    names = example_names()
    if name.removesuffix(".yaml") not in names:
        raise ConfigError(f"There is no example config called {name!r}.", f"Choose one of: {', '.join(names)}.")
    return (resources.files("lmdelta") / "configs" / f"{name.removesuffix('.yaml')}.yaml").read_text(encoding="utf-8")


def write_example(name: str, target: Path, force: bool = False) -> Path:
    """Copy an example config to `target` (a file, or a folder to put NAME.yaml in); never over a file unasked."""
    text = example_text(name)
    path = target / f"{name.removesuffix('.yaml')}.yaml" if target.is_dir() else target
    if path.exists() and not force:
        raise ConfigError(f"{path} exists already.", "Pass another path with -o, or --force to overwrite it.")
    path.write_text(text, encoding="utf-8")
    return path
