"""What to compare when there is no config file (or on top of one): two models, or saved outputs, given as
plain arguments; and where a run lives when no run directory is named.

Shared by the command line (`lmdelta run --a MODEL --b MODEL`, `lmdelta run --corpus FILE`) and the Python
API (`lmdelta.compare`). Light on purpose: the command line imports it at start-up."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmdelta.errors import ConfigError
from lmdelta.hashing import hash_text

if TYPE_CHECKING:
    from lmdelta.config import RunConfig

RUNS = Path("runs")
LATEST = "latest"
# Without a config file, a corpus comparison gets these settings (those of configs/corpus-pair.yaml).
CORPUS_DEFAULTS = {"prompts.source": "corpus", "group.by": "bank", "controls.null": True}


@dataclass(frozen=True)
class Inputs:
    """The comparison named by arguments: model specs, corpus files, labels and limits (None: not given)."""

    a: str | None = None
    b: str | None = None
    corpus: Sequence[str] = ()
    a_label: str | None = None
    b_label: str | None = None
    text_columns: Sequence[str] | None = None
    limit: int | None = None

    def overrides(self, has_config: bool) -> dict[str, Any]:
        """Config fields these arguments set (dotted keys, typed values)."""
        self.check(has_config)
        values: dict[str, Any] = {}
        if self.corpus:
            values.update({} if has_config else CORPUS_DEFAULTS)
            values["prompts.source"] = "corpus"
            files = [str(path) for path in self.corpus]
            values.update(
                {"corpus.path": files[0]} if len(files) == 1 else {"corpus.a": files[0], "corpus.b": files[1]}
            )
        optional = {
            "generate.a.model": self.a,
            "generate.b.model": self.b,
            "generate.a.label": self.a_label,
            "generate.b.label": self.b_label,
            "corpus.text_columns": list(self.text_columns) if self.text_columns else None,
            "prompts.limit": self.limit,
        }
        values.update({key: value for key, value in optional.items() if value is not None})
        return values

    def check(self, has_config: bool) -> None:
        if len(self.corpus) > 2:
            raise ConfigError(
                f"{len(self.corpus)} corpus files were given; a comparison reads one file holding both sides or two.",
                "Pass --corpus FILE once (both sides, a side column or two text columns) or twice (side a, then b).",
            )
        if self.corpus and (self.a or self.b):
            raise ConfigError(
                "Both models (--a/--b) and saved outputs (--corpus) were given.",
                "Compare two models, or two sets of saved outputs: drop one of them.",
            )
        if not has_config and not self.corpus and not (self.a and self.b):
            raise ConfigError(
                "Nothing to compare: no config file, no models and no corpus.",
                "Give a config (lmdelta run CONFIG), two models (--a MODEL --b MODEL) or saved outputs "
                "(--corpus FILE); `lmdelta init` writes an example config.",
            )


def as_override_strings(values: Mapping[str, Any]) -> list[str]:
    """--set strings for typed values: JSON is YAML, so each value reads back as itself."""
    return [f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in values.items()]


def default_run_dir(config: RunConfig, config_path: str | Path | None) -> Path:
    """runs/NAME-KEY: NAME the config's run.name, else its file name, else "corpus" or "models"; KEY a short
    hash of what is compared (the prompt source, corpus files and columns, and each side's model, adapter,
    revision and system prompt), so another comparison under the same name gets a folder of its own, and
    the same comparison resumes its own."""
    sides = {
        side: {
            "model": spec.model,
            "adapter": spec.adapter,
            "revision": spec.revision,
            "system_prompt": spec.system_prompt,
            "quantization": spec.quantization,
        }
        for side, spec in (("a", config.generate.a), ("b", config.generate.b))
    }
    corpus = config.corpus
    what = {
        "source": config.prompts.source,
        "corpus": [corpus.path, corpus.a, corpus.b, corpus.text_columns],
        "sides": sides if not corpus.active else None,
    }
    fallback = "corpus" if corpus.active or config.uses_corpus else "models"
    name = config.run.name or (Path(config_path).stem if config_path is not None else fallback)
    return RUNS / f"{_slug(name)}-{hash_text(json.dumps(what, sort_keys=True))[:8]}"


def _slug(name: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name.strip())
    return kept.strip("-.") or "run"


def point_latest(run_dir: Path) -> None:
    """Make runs/latest a link to the run directory (best effort: a file system without links keeps none)."""
    link = run_dir.parent / LATEST
    if run_dir.name == LATEST or not run_dir.parent.is_dir():
        return
    try:
        if link.is_symlink() or link.exists():
            if not link.is_symlink():
                return  # a real folder called latest: not ours to replace
            link.unlink()
        os.symlink(run_dir.name, link, target_is_directory=True)
    except OSError:
        pass
