"""Checks on a corpus that no single row shows: the same rows twice (a file appended to itself),
one prompt_id naming two different prompts, clusters that mix paired and one-sided; and artefacts of
how the texts were exported (literal escape sequences, Penn Treebank tokenisation), which are kept
with a warning that the prompts stage records. Each says what to fix.
"""

from __future__ import annotations

import hashlib
import logging
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np

from lmdelta.errors import PromptBankError
from lmdelta.hashing import canonical_json
from lmdelta.sources.tabular import Table
from lmdelta.words import CONTRACTION, TREEBANK_TOKEN, escapes

log = logging.getLogger(__name__)
MIN_BLOCK = 5  # repeated consecutive rows that make a copied block, not repeated samples
ARTEFACT_SHARE = 0.05  # a side holds an export artefact when this share of its texts show it …
ARTEFACT_MIN_TEXTS = 3  # … and at least this many texts


def check_repeated_rows(table: Table, unit_columns: tuple[str, ...]) -> None:
    """Refuse a run of rows that repeats earlier rows exactly, in order (every column equal; at
    least MIN_BLOCK rows, holding two different rows, and in an aligned corpus two different
    prompts): a copy that would count every answer in it twice. Other exact repeats are kept,
    with a warning: identical answers to one prompt can be real samples (short or greedy ones)."""
    keys = [_row_key(record) for _, record in table.rows]
    first: dict[bytes, int] = {}
    repeats = 0
    for index, key in enumerate(keys):
        original = first.setdefault(key, index)
        if original == index:
            continue
        repeats += 1
        if _copied_block(table, keys, original, index, unit_columns):
            raise _block_error(table, keys, original, index)
    if repeats:
        log.warning(
            "corpus %s: %d rows repeat an earlier row exactly; kept as repeated samples (add a column such "
            "as `sample` to tell them apart)",
            table.path,
            repeats,
        )


def _row_key(record: Mapping[str, Any]) -> bytes:
    """A row's content as a 128-bit digest of its canonical JSON: equal rows, equal keys (49 bytes a row held,
    not the row's text again: a million-row corpus would hold a gigabyte of keys)."""
    return hashlib.blake2b(canonical_json(record).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _copied_block(table: Table, keys: list[bytes], original: int, copy: int, unit_columns: tuple[str, ...]) -> bool:
    length = _run_length(keys, original, copy, limit=MIN_BLOCK)
    if length < MIN_BLOCK or len(set(keys[copy : copy + length])) < 2:
        return False
    if not unit_columns:
        return True
    units = {tuple(str(record.get(c)) for c in unit_columns) for _, record in table.rows[copy : copy + length]}
    return len(units) >= 2


def _run_length(keys: list[bytes], original: int, copy: int, limit: int | None = None) -> int:
    """How many rows from `copy` on equal those from `original` on (the original ending before the copy)."""
    length = 0
    while (
        copy + length < len(keys)
        and original + length < copy
        and keys[copy + length] == keys[original + length]
        and (limit is None or length < limit)
    ):
        length += 1
    return length


def _block_error(table: Table, keys: list[bytes], original: int, copy: int) -> PromptBankError:
    length = _run_length(keys, original, copy)
    line = [line for line, _ in table.rows]
    first, second = (f"{line[start]}–{line[start + length - 1]}" for start in (original, copy))
    unit = f"{table.unit}s"
    return PromptBankError(
        f"Corpus file {table.path} repeats {unit} {first} exactly as {unit} {second} ({length} rows in the same "
        "order): the same rows twice, as from a file appended to itself, would count every answer in them twice.",
        f"Delete the second copy ({unit} {second}); if the rows are really repeated samples, add a column that "
        "tells them apart (e.g. `sample`: 0, 1, …).",
    )


class PromptedRow(Protocol):
    @property
    def side(self) -> str: ...
    @property
    def prompt_id(self) -> str | None: ...
    @property
    def prompt(self) -> str | None: ...
    @property
    def where(self) -> str: ...


def check_prompt_ids(keys: np.ndarray, prompts: np.ndarray, row: Callable[[int], PromptedRow]) -> None:
    """Refuse a prompt_id given to two different prompt texts on one side: their answers would be
    compared as answers to one prompt. (The sides may word one prompt differently, e.g. each
    model's chat template around it, so only texts within a side are compared.) `keys` numbers each
    row's (side, prompt_id), -1 for a row without a prompt id or prompt text; `prompts` numbers its
    prompt text (equal numbers, equal texts); `row(i)` is row i, for the message."""
    held = np.flatnonzero(keys >= 0)
    order = held[np.argsort(keys[held], kind="stable")]  # rows by key, each key's rows in file order
    if not order.size:
        return
    first = order[run_firsts(keys[order])]  # each row's key's first row
    clashing = np.flatnonzero(prompts[order] != prompts[first])
    if clashing.size:
        at = clashing[np.argmin(order[clashing])]  # the first row in the file that clashes
        raise _prompt_id_error(row(int(order[at])), row(int(first[at])))


def run_firsts(ordered: np.ndarray) -> np.ndarray:
    """For each position of a sorted array, the position where its run of equal values starts."""
    starts = np.ones(ordered.size, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    return np.maximum.accumulate(np.where(starts, np.arange(ordered.size), 0))


def _prompt_id_error(row: PromptedRow, first: PromptedRow) -> PromptBankError:
    return PromptBankError(
        f"{row.where} gives prompt_id {row.prompt_id!r} to the prompt {_short(row.prompt or '')!r}, but "
        f"{first.where} gave it to {_short(first.prompt or '')!r} (both side {row.side}): answers to two different "
        "prompts would be compared as answers to one.",
        "Give each prompt its own prompt_id, or correct the prompt text so both rows name the same prompt.",
    )


def check_cluster_sides(sides_by_cluster: dict[str, set[str]], where: str = "The corpus") -> None:
    """Refuse clusters of which some hold both sides' texts and others one side's only. All paired:
    a sign-flip over clusters; all one-sided: whole clusters permuted. A mix has no clear unit, and
    one mixed cluster would make the whole comparison paired, over that cluster alone."""
    both = sorted(cluster for cluster, sides in sides_by_cluster.items() if len(sides) == 2)
    if not both or len(both) == len(sides_by_cluster):
        return
    one = len(sides_by_cluster) - len(both)
    raise PromptBankError(
        f"{where} has {len(both)} cluster{'s' if len(both) != 1 else ''} holding texts of both sides (e.g. "
        f"{both[0]!r}) and {one} holding texts of one side only: clusters are compared paired when every one "
        "holds both sides, or permuted whole when every one holds a single side's texts, not a mix.",
        "Give each cluster texts of one side (e.g. prefix the cluster id with the side) to permute whole "
        "clusters, or give prompt ids (prompt_id or prompt columns) for a paired comparison.",
    )


def _short(text: str) -> str:
    return textwrap.shorten(text, 60, placeholder="…")


# ---- export artefacts ----

ArtefactKind = Literal["escapes", "pretokenised"]
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)  # code may hold \n on purpose
_SPACED_PUNCTUATION = re.compile(r"(?<=\w) [,.](?=\s|$)")  # "word , word ." (not French " !", " ?")
_SPACED_MIN = 2  # a stray " ," is a typo; two make a text look tokenised


@dataclass(frozen=True)
class TextArtefact:
    """An artefact of how the corpus's texts were exported, seen in a share of one or both sides'
    texts: literal escape sequences ("escapes") or Penn Treebank tokenisation ("pretokenised").
    lmdelta's word counting reads through it (lmdelta.words); the warning says what else it can touch."""

    kind: ArtefactKind
    affected: dict[str, int]  # texts showing it, per side
    texts: dict[str, int]  # texts, per side
    marks: dict[str, int]  # what was found and how often: "\\n": 345, "n't": 12, " ,": 200
    example: str  # an excerpt around one occurrence, on example_side
    example_side: str
    one_sided: bool  # one side shows it in under half the other's share: a confound between the sides
    message: str  # the warning, as logged

    def share(self, side: str) -> float:
        """The share of a side's texts that show it."""
        return self.affected[side] / self.texts[side] if self.texts[side] else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> TextArtefact:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def _escape_marks(text: str) -> list[tuple[int, str]]:
    """Literal escape sequences outside code, with where they sit."""
    prose = _CODE.sub(lambda m: " " * len(m.group(0)), text) if "`" in text else text
    if "\\" not in prose:
        return []
    found = escapes(prose)
    return [(prose.find(found[0]), mark) for mark in found] if found else []


def _treebank_marks(text: str) -> list[tuple[int, str]]:
    """Split contractions, Treebank quote and bracket tokens, and (from two on) punctuation spaced off words."""
    # Each pattern is searched only where the text holds a string every match of it holds (most texts hold none).
    marks = []
    if "'" in text or "’" in text:
        marks = [(m.start(), m.group(1).lower().replace("’", "'")) for m in CONTRACTION.finditer(text)]
    if "``" in text or "''" in text or "B-" in text:
        marks += [(m.start(), m.group(0)) for m in TREEBANK_TOKEN.finditer(text)]
    spaced = []
    if " ," in text or " ." in text:
        spaced = [(m.start(), m.group(0)) for m in _SPACED_PUNCTUATION.finditer(text)]
    return sorted(marks + (spaced if len(spaced) >= _SPACED_MIN else []))


_FINDERS: dict[ArtefactKind, Callable[[str], list[tuple[int, str]]]] = {
    "escapes": _escape_marks,
    "pretokenised": _treebank_marks,
}


def find_artefacts(texts: Mapping[str, Sequence[str]], labels: Mapping[str, str]) -> list[TextArtefact]:
    """The export artefacts that at least ARTEFACT_SHARE (and ARTEFACT_MIN_TEXTS) of one side's texts show."""
    found = [_artefact(kind, finder, texts) for kind, finder in _FINDERS.items()]
    return [replace(artefact, message=_message(artefact, labels)) for artefact in found if artefact is not None]


def _artefact(
    kind: ArtefactKind, finder: Callable[[str], list[tuple[int, str]]], texts: Mapping[str, Sequence[str]]
) -> TextArtefact | None:
    """The artefact `finder` sees, when enough of a side's texts show it (its message left empty)."""
    affected = {side: 0 for side in texts}
    marks: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for side, side_texts in texts.items():
        for text in side_texts:
            found = finder(text)
            if found:
                affected[side] += 1
                marks.update(mark for _, mark in found)
                examples.setdefault(side, _excerpt(text, found[0][0]))
    counts = {side: len(side_texts) for side, side_texts in texts.items()}
    shares = {side: affected[side] / counts[side] if counts[side] else 0.0 for side in texts}
    if not any(affected[side] >= ARTEFACT_MIN_TEXTS and shares[side] >= ARTEFACT_SHARE for side in texts):
        return None
    worst = max(shares, key=lambda side: shares[side])
    one_sided = min(shares.values()) < shares[worst] / 2
    return TextArtefact(kind, affected, counts, dict(marks.most_common()), examples[worst], worst, one_sided, "")


def _excerpt(text: str, at: int, width: int = 30) -> str:
    start, end = max(at - width, 0), min(at + width, len(text))
    return ("…" if start else "") + text[start:end].replace("\n", " ") + ("…" if end < len(text) else "")


_WHAT = {
    "escapes": 'hold literal escape sequences (a line break, tab, quote or accent written as \\n, \\t, \\", '
    "\\u00e9: two or more characters)",
    "pretokenised": "look pre-tokenised, Penn Treebank style (contractions split off their word, as in "
    "\"ca n't\" and \"it 's\"; punctuation spaced off words; `` '' -LRB- for quotes and brackets)",
}
_DONE = {
    "escapes": "lmdelta decodes them before it counts words and symbols (keyword proposer and judge), so they "
    'make no keyword such as "n"',
    "pretokenised": "lmdelta joins split contractions again (ca n't → can't) and reads `` '' -LRB- as the "
    'characters they stand for before it counts words and symbols, so they make no keyword such as "ca" or '
    '"n\'t"; the spaces before punctuation stay',
}
_FIX = {
    "escapes": "decode the escapes in the export (write each text itself, not its escaped form: e.g. json.loads "
    "on a JSON string) and run again",
    "pretokenised": "export the original texts, or detokenise them (e.g. sacremoses' MosesDetokenizer or nltk's "
    "TreebankWordDetokenizer), and run again",
}


def _message(artefact: TextArtefact, labels: Mapping[str, str]) -> str:
    sides = sorted(artefact.texts, key=lambda side: -artefact.share(side))
    shares = "; ".join(
        f"{_side(side, labels)}: {artefact.affected[side]} of {artefact.texts[side]} texts ({artefact.share(side):.1%})"
        for side in sides
    )
    marks = ", ".join(f"“{mark}” ×{count}" for mark, count in list(artefact.marks.items())[:5])
    text = (
        f"corpus: texts {_WHAT[artefact.kind]} — {shares}; found {marks}; e.g. {_side(artefact.example_side, labels)}: "
        f"“{artefact.example}”. {_DONE[artefact.kind]}; the other judges, the text properties and the embeddings "
        "see the texts as they are."
    )
    if artefact.one_sided:
        text += (
            f" Only {_side(sides[0], labels)} is affected (or far more than the other): a difference in form that "
            "comes from the export, not from the models, is itself a confound — findings about length, punctuation, "
            "layout or style may reflect it."
        )
    return f"{text} Fix: {_FIX[artefact.kind]}."


def _side(side: str, labels: Mapping[str, str]) -> str:
    label = labels.get(side, side)
    return f"side {side}" if label == side else f"side {side} ({label})"


def warn_artefacts(texts: Mapping[str, Sequence[str]], labels: Mapping[str, str]) -> list[TextArtefact]:
    """find_artefacts, each found logged as a warning."""
    found = find_artefacts(texts, labels)
    for artefact in found:
        log.warning("%s", artefact.message)
    return found
