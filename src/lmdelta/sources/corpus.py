"""Saved corpora of model outputs, compared without any model: JSONL, CSV or Parquet files with
a `text` column, a `side` column (one file for both sides), and optional `prompt_id`, `prompt`
and `group` columns. Answers that share a prompt are compared paired; otherwise text by text.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmdelta.errors import DependencyError, PromptBankError
from lmdelta.hashing import hash_text

SIDE_WORDS = {"a": "a", "b": "b"}


@dataclass(frozen=True)
class CorpusRow:
    side: str
    text: str
    prompt_id: str | None
    prompt: str | None
    group: str | None
    where: str  # file and line, for messages


def load_corpus(path: str | None, path_a: str | None, path_b: str | None, labels: dict[str, str]) -> list[CorpusRow]:
    """Every row of the corpus files, with sides resolved to "a"/"b"; both sides must be present."""
    if path and (path_a or path_b):
        raise PromptBankError("corpus.path and corpus.a/corpus.b are both set.",
                              "Use corpus.path for one file holding both sides, or corpus.a and corpus.b, not both.")
    if path:
        rows = _read(Path(path), fixed_side=None, labels=labels)
    elif path_a and path_b:
        rows = _read(Path(path_a), "a", labels) + _read(Path(path_b), "b", labels)
    else:
        raise PromptBankError("Corpus mode needs both sides.", "Set corpus.a and corpus.b (one file per side), or corpus.path.")
    for side in ("a", "b"):
        if not any(r.side == side for r in rows):
            raise PromptBankError(f"The corpus has no texts for side {side} ({labels.get(side, side)}).",
                                  "Check the `side` column values, or the file given for that side.")
    return rows


def _read(path: Path, fixed_side: str | None, labels: dict[str, str]) -> list[CorpusRow]:
    if not path.exists():
        raise PromptBankError(f"Corpus file {path} does not exist.", "Check the path given in corpus.path / corpus.a / corpus.b.")
    try:
        records = _records(path)
    except UnicodeDecodeError as exc:
        raise PromptBankError(f"Corpus file {path} is not UTF-8 text (byte {exc.start}).", "Save it as UTF-8.") from None
    if not records:
        raise PromptBankError(f"Corpus file {path} holds no rows.", "Point to a file with a `text` column and at least one row.")
    return [_row(record, f"{path}:{line}", fixed_side, labels) for line, record in records]


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl(path)
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [(i, row) for i, row in enumerate(csv.DictReader(handle), start=2)]
    if suffix == ".parquet":
        return _parquet(path)
    raise PromptBankError(f"Corpus file {path} has the unsupported extension {suffix!r}.", "Use .jsonl, .csv or .parquet.")


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    from lmdelta.sources import json_lines

    records = json_lines(path.read_text(encoding="utf-8"), str(path))
    for number, record in records:
        if not isinstance(record, dict):
            raise PromptBankError(f"{path} line {number} is not a JSON object.", 'Write rows like {"side": "a", "text": "..."}.')
    return records


def _parquet(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DependencyError("Reading Parquet corpora needs pyarrow.", "Install it with `pip install pyarrow`.") from None
    return [(i, row) for i, row in enumerate(pq.read_table(path).to_pylist(), start=1)]


def _row(record: dict[str, Any], where: str, fixed_side: str | None, labels: dict[str, str]) -> CorpusRow:
    text = record.get("text")
    if not isinstance(text, str):
        found = ", ".join(sorted(record)) or "none"
        raise PromptBankError(f"{where} has no string `text` (columns: {found}).", "Every row needs the answer text in `text`.")
    side = fixed_side or _side(record.get("side", record.get("model")), where, labels)
    prompt = _optional(record.get("prompt"))
    prompt_id = _optional(record.get("prompt_id"))
    if prompt_id is None and prompt is not None:
        prompt_id = "p-" + hash_text(prompt)[:12]
    return CorpusRow(side, text, prompt_id, prompt, _optional(record.get("group")), where)


def _side(value: Any, where: str, labels: dict[str, str]) -> str:
    known = {**SIDE_WORDS, **{label.lower(): side for side, label in labels.items()}}
    if value is None or str(value).strip().lower() not in known:
        raise PromptBankError(f"{where} has side {value!r}, which is neither a nor b.",
                              f"Use a `side` column with values {', '.join(sorted(known))} "
                              "(labels come from generate.a.label / generate.b.label).")
    return known[str(value).strip().lower()]


def _optional(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None
    return str(value)


def is_aligned(rows: list[CorpusRow]) -> bool:
    """Aligned when every row names its prompt; a mix is refused, since it has no clear unit."""
    with_prompt = [r for r in rows if r.prompt_id is not None]
    if with_prompt and len(with_prompt) != len(rows):
        missing = next(r for r in rows if r.prompt_id is None)
        raise PromptBankError(f"{missing.where} has no prompt_id or prompt, but other rows do.",
                              "Give every row its prompt (paired comparison) or none (text-by-text comparison).")
    return bool(with_prompt)


def units(rows: list[CorpusRow]) -> list[str]:
    """The comparison unit of each row: its prompt id, or (unaligned) an id of its own."""
    if is_aligned(rows):
        return [r.prompt_id for r in rows]
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        base = "t-" + hash_text(f"{row.side}\0{row.text}")[:12]
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def corpus_prompts(rows: list[CorpusRow]):
    """One Prompt per unit (the prompt text when known), groups from the `group` column."""
    from lmdelta.records import Prompt

    prompts: dict[str, Prompt] = {}
    for row, unit in zip(rows, units(rows)):
        if unit not in prompts:
            prompts[unit] = Prompt(unit, row.prompt or "", row.group)
    return list(prompts.values())
