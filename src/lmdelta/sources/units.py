"""A corpus's comparison units (its prompts; unaligned, its clusters or its texts), and the prompts and samples the
prompts stage writes for them, read from the corpus's columns."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lmdelta.errors import PromptBankError
from lmdelta.hashing import hash_data, hash_text
from lmdelta.records import Prompt, Sample, Unit
from lmdelta.sampletable import Codes
from lmdelta.sources.corpus_checks import run_firsts
from lmdelta.sources.corpustable import CorpusTable


def is_aligned(rows: CorpusTable) -> bool:
    """Aligned when every row names its prompt; a mix is refused, since it has no clear unit."""
    return _complete(rows, "prompt_id") is not None


def _complete(rows: CorpusTable, column: str) -> Codes[str | None] | None:
    """A column's codes (prompt_id or cluster) when every row has a value, None when no row has one; a mix is
    refused."""
    codes = rows.codes(column)
    counts = np.bincount(codes.codes, minlength=len(codes.values))
    held = [value for value, count in zip(codes.values, counts.tolist()) if count]
    if None not in held:
        return codes
    if held == [None]:
        return None
    missing = rows.where(int(np.argmax(codes.codes == codes.values.index(None))))
    if column == "prompt_id":
        raise PromptBankError(
            f"{missing} has no prompt_id or prompt, but other rows do.",
            "Give every row its prompt (paired comparison) or none (text-by-text comparison).",
        )
    raise PromptBankError(
        f"{missing} has no cluster id, but other rows do.",
        "Give every row its cluster (a text that stands alone can have a cluster of its own).",
    )


def unit_kind(rows: CorpusTable) -> Unit | None:
    """What the corpus's unit ids name: None (prompts: aligned), "cluster" or "text" (unaligned)."""
    if is_aligned(rows):
        return None
    return "cluster" if _complete(rows, "cluster") is not None else "text"


def units(rows: CorpusTable) -> list[str]:
    """The comparison unit of each row: its prompt id; unaligned, its cluster (all texts of a cluster,
    of either side, are one unit: tested and split together), else an id of its own."""
    names, codes = _unit_codes(rows)
    return [names[code] for code in codes.tolist()]


def _unit_codes(rows: CorpusTable) -> tuple[list[str], np.ndarray]:
    """Each unit's id, and each row's unit as a number into them (units(rows), without a string a row)."""
    prompt_ids = _complete(rows, "prompt_id")
    if prompt_ids is not None:
        return [value or "" for value in prompt_ids.values], prompt_ids.codes
    clusters = _complete(rows, "cluster")
    if clusters is not None:
        return ["c-" + hash_text(value)[:12] if value else "" for value in clusters.values], clusters.codes
    seen: dict[str, int] = {}
    names = []
    for side, text in zip(rows.sides(), rows.texts()):
        base = "t-" + hash_text(f"{side}\0{text}")[:12]
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names, np.arange(len(names))


def cluster_ids(rows: CorpusTable) -> list[str] | None:
    """Every row's cluster id, or None when no row has one; a mix is refused."""
    clusters = _complete(rows, "cluster")
    return None if clusters is None else [value or "" for value in clusters.many()]


def corpus_samples(rows: CorpusTable, kept: set[str]) -> Iterator[Sample]:
    """The saved answers of the units in `kept`, in file order, as samples: numbered per unit and side,
    keyed by their content (as generated answers are). Made one at a time, as they are read."""
    names, codes = _unit_codes(rows)
    chosen = np.flatnonzero(np.array([name in kept for name in names], dtype=bool)[codes])
    sides = rows.side_codes()
    is_b = sides.codes[chosen] == (sides.values.index("b") if "b" in sides.values else -1)
    numbers = _numbered(codes[chosen].astype(np.int64) * 2 + is_b)
    for row, number, text in zip(chosen.tolist(), numbers.tolist(), rows.texts(chosen)):
        unit, side = names[codes[row]], sides.get(row)
        key = hash_data([side, unit, number, text], length=32)
        yield Sample(unit, side, number, text, len(text.split()), "stop", 0, key)  # type: ignore[arg-type]


def _numbered(keys: np.ndarray) -> np.ndarray:
    """Each element's number among the elements with its key, counting from 0 in order."""
    order = np.argsort(keys, kind="stable")
    numbers = np.empty(len(keys), dtype=np.int64)
    numbers[order] = np.arange(len(keys)) - run_firsts(keys[order])
    return numbers


def corpus_prompts(rows: CorpusTable) -> list[Prompt]:
    """One Prompt per unit (the prompt text when known), groups from the `group` column; unaligned,
    each says whether it stands for a cluster or a text (Prompt.unit), for the tests to name their unit."""
    kind = unit_kind(rows)
    names, codes = _unit_codes(rows)
    first = np.sort(np.unique(codes, return_index=True)[1])
    prompts, groups = rows.codes("prompt"), rows.codes("group")
    return [Prompt(names[codes[i]], prompts.get(i) or "", groups.get(i), unit=kind) for i in first.tolist()]
