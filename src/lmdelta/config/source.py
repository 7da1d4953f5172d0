"""The grammar of prompts.source: `builtin:NAME`, a file, `KIND:PATH` for a public dataset (PATH may
be `hub`), `generated[:CAT,…]`, `unconditional[:N]` or `corpus`. Loading what it names is sources' job."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from lmdelta.errors import PromptBankError

# Public prompt sets a source may name: kind → its Hugging Face Hub dataset id, or None when it is not on
# the Hub (only a local copy works). The loader of each lives in lmdelta.sources (LOADERS).
DATASETS: dict[str, str | None] = {
    "persona": "Anthropic/model-written-evals",
    "advanced-ai-risk": "Anthropic/model-written-evals",
    "mpi": None,
    "jailbreak": None,
    "truthfulqa": "truthfulqa/truthful_qa",
    "bold": "AmazonScience/bold",
}
KINDS = ("builtin", "generated", "corpus", "unconditional", *DATASETS)
UNCONDITIONAL_UNITS = 100
HUB = "hub"


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "builtin", "file", "generated", "corpus", "unconditional", or a DATASETS key
    location: str  # the name, path, `hub`, comma-separated categories, or the number of units

    @property
    def is_hub(self) -> bool:
        """`KIND:hub` or `KIND:hub@REVISION`."""
        return self.kind in DATASETS and (self.location == HUB or self.location.startswith(HUB + "@"))

    @property
    def hub_revision(self) -> str | None:
        return self.location.partition("@")[2] or None if self.is_hub else None

    @property
    def is_path(self) -> bool:
        """Whether `location` is a file system path (relative paths resolve against the config file)."""
        return self.kind == "file" or (self.kind in DATASETS and not self.is_hub)


def parse_source(source: str) -> SourceSpec:
    text = source.strip()
    if not text:
        raise PromptBankError("prompts.source is empty.", "Set it to a bank, e.g. builtin:everyday or persona:PATH.")
    if text == "corpus":
        return SourceSpec("corpus", "")
    if text == "generated" or text.startswith("generated:"):
        return SourceSpec("generated", text.partition(":")[2])
    if text == "unconditional" or text.startswith("unconditional:"):
        return SourceSpec("unconditional", str(_units(text.partition(":")[2], text)))
    kind, sep, rest = text.partition(":")
    if sep and kind == "builtin":
        return SourceSpec("builtin", rest)
    if sep and kind in DATASETS:
        if not rest.strip():
            on_hub = f" or {kind}:hub" if DATASETS[kind] else ""
            raise PromptBankError(
                f"prompts.source {text!r} names no folder or file after {kind}:.",
                f"Write {kind}:PATH (a local copy){on_hub}.",
            )
        return SourceSpec(kind, rest.strip())
    if sep and len(kind) > 1 and "/" not in kind and "\\" not in kind:
        near = difflib.get_close_matches(kind.lower(), KINDS, n=1, cutoff=0.6)
        hint = f"Did you mean {near[0]}:{rest}? " if near else ""
        raise PromptBankError(
            f"prompts.source {text!r} starts with the unknown kind {kind!r}.",
            f"{hint}Kinds: {', '.join(k + ':' for k in KINDS)} or a file path (.txt, .jsonl, .csv).",
        )
    return SourceSpec("file", text)


def _units(raw: str, text: str) -> int:
    """unconditional:N — N independent units of samples_per_prompt answers each (default 100)."""
    if not raw.strip():
        return UNCONDITIONAL_UNITS
    if not raw.strip().isdigit() or int(raw) < 2:
        raise PromptBankError(
            f"prompts.source {text!r}: the number of units must be a whole number of at least 2.",
            "Write it like unconditional:200 (200 units of generate.samples_per_prompt answers).",
        )
    return int(raw)
