"""A finding's evidence texts as the report shows them: each side's examples, and the same examples as
same-prompt pairs where validate wrote them that way (validate.findings picks the prompts whose difference
runs furthest in the finding's direction)."""

from __future__ import annotations

from typing import Any

from lmdelta.jsonvalues import finite

PROMPT_CHARS = 160  # a paired example's prompt, folded past this: the answers are what the reader compares


def examples_view(value: Any) -> dict[str, Any]:
    """Each side's examples, and the same examples as same-prompt pairs where they are that (else [])."""
    value = value if isinstance(value, dict) else {}
    sides = {side: [_example(e) for e in value.get(side) or [] if isinstance(e, dict)] for side in ("a", "b")}
    return {**sides, "pairs": _pairs(sides["a"], sides["b"])}


def _pairs(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """validate writes paired evidence as a[i] and b[i] answering one prompt; the report knows it by the prompt
    text, equal and not empty at every index. Otherwise (unaligned corpora, a run from before paired evidence)
    the two sides are independent lists and [] says so."""
    if not a or len(a) != len(b) or any(not x["prompt"] or x["prompt"] != y["prompt"] for x, y in zip(a, b)):
        return []
    return [{"prompt": x["prompt"], "short": _clip(x["prompt"]), "a": x, "b": y} for x, y in zip(a, b)]


def _clip(text: str, limit: int = PROMPT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _example(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "sample_id": entry.get("sample_id"),
        "prompt": str(entry.get("prompt") or ""),
        "text": str(entry.get("text") or ""),
        "score": finite(entry.get("score")),
    }
