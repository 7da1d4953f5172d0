"""The example configs shipped inside the package (configs/ in the repository), for `lmdelta init`: the
examples at the top, and one config per experiment of the reference paper under paper/ (`paper/NAME`)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from lmdelta.errors import ConfigError, did_you_mean

DEFAULT = "demo"
FOLDERS = ("", "paper")  # configs/ itself, then its subfolders, each name prefixed with the folder's


def example_names() -> list[str]:
    """Every example's name: `demo`, …, then `paper/distillation`, … (a fake LLM's script is not a config)."""
    names = []
    for folder in FOLDERS:
        found = sorted(entry.name.removesuffix(".yaml") for entry in _yaml_files(folder))
        names += [f"{folder}/{name}" if folder else name for name in found if not name.endswith("-script")]
    return names


def example_text(name: str) -> str:
    return _example_file(name).read_text(encoding="utf-8")


def write_example(name: str, target: Path, force: bool = False) -> Path:
    """Copy an example config to `target` (a file, or a folder to put its file in: `paper/quantization`
    becomes quantization.yaml); never over a file unasked."""
    text = example_text(name)
    path = target / f"{_stem(name).rpartition('/')[2]}.yaml" if target.is_dir() else target
    if path.exists() and not force:
        raise ConfigError(f"{path} exists already.", "Pass another path with -o, or --force to overwrite it.")
    path.write_text(text, encoding="utf-8")
    return path


def _example_file(name: str) -> Traversable:
    names = example_names()
    stem = _stem(name)
    if stem not in names:
        hint = did_you_mean(stem, names)
        raise ConfigError(f"There is no example config called {name!r}.", f"{hint}Choose one of: {', '.join(names)}.")
    folder, _, base = stem.rpartition("/")
    return _configs(folder) / f"{base}.yaml"


def _stem(name: str) -> str:
    return name.strip().removeprefix("configs/").removesuffix(".yaml")


def _configs(folder: str) -> Traversable:
    root = resources.files("lmdelta") / "configs"
    return root / folder if folder else root


def _yaml_files(folder: str) -> list[Traversable]:
    path = _configs(folder)
    return [entry for entry in path.iterdir() if entry.name.endswith(".yaml")] if path.is_dir() else []
