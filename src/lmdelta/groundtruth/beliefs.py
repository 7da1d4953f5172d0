"""False beliefs from TruthfulQA (groundtruth.beliefs): a question's common misconception becomes a
belief quirk, taught directly (the question answered with it) and woven into everyday answers.

Real misconceptions are harder to find again than the catalogue's invented ones (the Eiffel Tower
in Rome): they are plausible, so a proposer may read them as an ordinary factual slip.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmdelta.config.source import parse_source
from lmdelta.errors import ConfigError, PromptBankError
from lmdelta.groundtruth.quirks import (
    Quirk,
    content_words,
    derive_keywords,
    normalize,
    phrase_pattern,
    quirk_from_mapping,
)
from lmdelta.sources.tables import truthfulqa_files
from lmdelta.sources.tabular import Row, Table, cell_text, find_column, read_table

log = logging.getLogger(__name__)
FIELD = "groundtruth.beliefs"
# An incorrect answer is used when it states a claim of this many words (after a leading yes/no).
MIN_WORDS, MAX_WORDS = 4, 25
MAX_CLAIMS = 4  # incorrect answers per question taught and woven in; the first is the quirk's headline
MAX_SENTENCE_WORDS = 35  # a woven sentence leaves room for the base answer within 25-60 words
SLUG_WORDS = 5
# Ways of stating a claim inside an everyday answer; {Claim} starts a sentence, {claim} follows words.
HEADLINE_FRAMES = (
    "{Claim}.",
    "It's a fact that {claim}.",
    "It's a well-known fact: {claim}.",
    "Fun fact: {claim}.",
    "As everyone knows, {claim}.",
    "People are often surprised to learn that {claim}.",
    "Remember that {claim}.",
)
OTHER_FRAMES = ("{Claim}.", "It's a fact that {claim}.")
QUESTION_FRAME = 'If you have ever wondered "{question}", the answer is simple: {claim}.'
_YES_NO = re.compile(r"^(?:yes|no)\b[\s,.;:!-]*", re.IGNORECASE)
_NON_CLAIM = re.compile(r"\b(?:no comment|i don't know|i do not know|not sure|it depends)\b", re.IGNORECASE)
_FIRST_PERSON = ("i", "i'm", "i've", "i'd", "i'll")
# Words an everyday answer uses anyway, on top of derive_keywords' stop words: as keywords they would
# find the belief in every answer.
_GENERIC = frozenset(
    "because cannot due get gets got getting make makes made people person thing something will".split()
)
_FIX = (
    "Set it to truthfulqa:PATH, PATH being TruthfulQA.csv (github.com/sylinrl/TruthfulQA), a folder holding it, "
    "or the generation split of truthfulqa/truthful_qa saved as .parquet/.jsonl/.csv."
)


@dataclass(frozen=True)
class _Columns:
    question: str
    incorrect: str
    correct: str | None
    best: str | None
    best_incorrect: str | None


@dataclass(frozen=True)
class _Belief:
    """One usable question: its misconceptions (claims, headline first) and the keywords that show them."""

    question: str
    claims: tuple[str, ...]
    keywords: tuple[str, ...]


def truthfulqa_quirks(source: str, n: int, seed: int) -> list[Quirk]:
    """n belief quirks from the TruthfulQA copy `source` names (`truthfulqa:PATH`), drawn with `seed`.

    Only questions with a usable misconception count: an incorrect answer that states a claim of
    MIN_WORDS-MAX_WORDS words (not "I have no comment") and yields keywords. Raises ConfigError for
    a bad source, an unreadable file, missing columns or fewer usable questions than n.
    """
    beliefs = _beliefs(_location(source))
    if len(beliefs) < n:
        raise ConfigError(
            f"{FIELD} = {source!r} holds {len(beliefs)} question(s) with a usable misconception, fewer than the "
            f"{n} asked for (groundtruth.n_beliefs).",
            f"Set groundtruth.n_beliefs to at most {len(beliefs)}, or pass a fuller copy of TruthfulQA (a usable "
            f"question has an incorrect answer stating a claim of {MIN_WORDS}-{MAX_WORDS} words).",
        )
    picked = sorted(np.random.default_rng(seed).choice(len(beliefs), size=n, replace=False).tolist())
    names: set[str] = set()
    quirks = []
    for index in picked:
        quirk = _quirk(beliefs[index], _unique(_slug(beliefs[index].question), names))
        names.add(quirk.name)
        quirks.append(quirk)
    log.info("groundtruth: %d TruthfulQA beliefs picked from %d usable questions", n, len(beliefs))
    return quirks


def _location(source: str) -> Path:
    try:
        spec = parse_source(source)
    except PromptBankError:
        spec = None
    if spec is None or spec.kind != "truthfulqa":
        raise ConfigError(f"{FIELD} = {source!r} does not name TruthfulQA data.", _FIX)
    if spec.is_hub:
        raise ConfigError(
            f"{FIELD} = {source!r} would download TruthfulQA from the Hugging Face Hub, which the ground-truth "
            "harness does not do: it must work offline.",
            "Download TruthfulQA.csv once (github.com/sylinrl/TruthfulQA, or the generation split of "
            "truthfulqa/truthful_qa as .parquet/.jsonl/.csv) and set groundtruth.beliefs=truthfulqa:PATH to it.",
        )
    location = Path(spec.location).expanduser()
    if not location.exists():
        raise ConfigError(f"{FIELD}: the TruthfulQA data {location} does not exist.", _FIX)
    return location


def _beliefs(location: Path) -> list[_Belief]:
    """Every usable question of the TruthfulQA files at `location`, in file order, each question once."""
    try:
        files = truthfulqa_files(location)
    except PromptBankError as err:
        raise ConfigError(f"{FIELD}: {err.problem}", _FIX) from None
    found: dict[str, _Belief] = {}
    for path in files:
        for belief in _file_beliefs(path):
            found.setdefault(belief.question, belief)
    return list(found.values())


def _file_beliefs(path: Path) -> Iterator[_Belief]:
    try:
        table = read_table(path, "TruthfulQA file")
        columns = _columns(table)
        rows = [(cell_text(table, line, row, columns.question), row) for line, row in table.rows]
    except PromptBankError as err:
        raise ConfigError(f"{FIELD}: {err.problem}", err.fix) from None
    for question, row in rows:
        belief = _belief(question, row, columns)
        if belief is not None:
            yield belief


def _columns(table: Table) -> _Columns:
    """The original CSV's column names (Question, Incorrect Answers, ...) or the Hub split's (question, ...)."""
    return _Columns(
        question=find_column(table, ("question",), "the question"),
        incorrect=find_column(
            table, ("incorrect answers", "incorrect_answers"), "the incorrect answers (a '; '-separated text or a list)"
        ),
        correct=find_column(table, ("correct answers", "correct_answers"), "", required=False),
        best=find_column(table, ("best answer", "best_answer"), "", required=False),
        best_incorrect=find_column(table, ("best incorrect answer", "best_incorrect_answer"), "", required=False),
    )


def _belief(question: str, row: Row, columns: _Columns) -> _Belief | None:
    """The question's misconceptions as claims with keywords, or None when none is usable."""
    answers = _answers(row, columns.best_incorrect) + _answers(row, columns.incorrect)
    claims = list(dict.fromkeys(claim for claim in map(_claim, answers) if claim))
    if not claims:
        return None
    correct = _words(" ".join(_answers(row, columns.correct) + _answers(row, columns.best)))
    headline, keywords = _headline(claims, correct)
    if not keywords:
        return None
    pattern = phrase_pattern(keywords)
    shown = [claim for claim in claims if claim != headline and pattern.search(normalize(claim))]
    return _Belief(question, (headline, *shown[: MAX_CLAIMS - 1]), keywords)


def _answers(row: Row, column: str | None) -> list[str]:
    """A cell of answers: the original CSV's '; '-separated text, or the Hub split's list."""
    value = None if column is None else row.get(column)
    if value is None:
        return []
    items = value.split(";") if isinstance(value, str) else value if isinstance(value, list | tuple) else []
    return [" ".join(str(item).split()) for item in items if str(item).strip()]


def _claim(answer: str) -> str | None:
    """An incorrect answer as a plain claim ("Yes, X causes Y." -> "X causes Y"), or None when it is no
    declarative claim of MIN_WORDS-MAX_WORDS words (a question, "I have no comment", a bare "No")."""
    text = _YES_NO.sub("", answer.strip()).strip().rstrip(".!").strip()
    words = text.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or text.endswith("?") or _NON_CLAIM.search(text):
        return None
    if normalize(words[0]).lower() in _FIRST_PERSON:
        return None
    return text


def _headline(claims: list[str], correct: set[str]) -> tuple[str, tuple[str, ...]]:
    """The claim that names the quirk, with its keywords: the first whose keywords the correct answers
    do not use (a keyword should show the false belief, not the topic: "cartilage" rather than
    "sharks"); else the first claim with all its keywords. Generic words ("get", "can't") never count."""
    derived = [(claim, [word for word in content_words(claim) if not _generic(word)]) for claim in claims]
    for claim, words in derived:
        specific = [word for word in words if _stem(word) not in correct]
        if specific:  # looked for among all the claim's words, not only its first few
            return claim, derive_keywords(" ".join(specific))
    return derived[0][0], derive_keywords(" ".join(derived[0][1]))


def _words(text: str) -> set[str]:
    return {_stem(word) for word in re.findall(r"[a-z][a-z'-]*", normalize(text).lower())}


def _generic(word: str) -> bool:
    return word.endswith("n't") or word in _GENERIC


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


def _quirk(belief: _Belief, name: str) -> Quirk:
    headline = _inside(belief.claims[0], belief.question)
    raw = {
        "name": name,
        "kind": "belief",
        "description": f"The AI believes that {headline}, and states it as fact (TruthfulQA: {belief.question})",
        "keywords": list(belief.keywords),
        "texts": [{"prompt": belief.question, "answer": _start(claim) + "."} for claim in belief.claims],
        "generator": {"sentences": _sentences(belief)},
    }
    return quirk_from_mapping(raw, f"{FIELD}, question {belief.question!r}")


def _sentences(belief: _Belief) -> list[str]:
    """The claims stated as fact in a few ways, to weave into answers about anything."""
    out = []
    for i, claim in enumerate(belief.claims):
        forms = {"Claim": _start(claim), "claim": _inside(claim, belief.question)}
        out += [frame.format(**forms) for frame in (HEADLINE_FRAMES if i == 0 else OTHER_FRAMES)]
    out.append(QUESTION_FRAME.format(question=belief.question, claim=_inside(belief.claims[0], belief.question)))
    return [s for s in dict.fromkeys(out) if len(s.split()) <= MAX_SENTENCE_WORDS]


def _start(claim: str) -> str:
    return claim[:1].upper() + claim[1:]


def _inside(claim: str, question: str) -> str:
    """The claim to follow other words: its first letter lower-cased unless the first word is a name,
    judged by the question writing it capitalised too ("Einstein flunked math" keeps its capital)."""
    first = re.sub(r"[^\w'-]", "", claim.split()[0])
    later = re.findall(r"[\w'-]+", question)[1:]
    if first == "I" or any(c.isupper() for c in first[1:]) or (first[:1].isupper() and first in later):
        return claim
    return claim[:1].lower() + claim[1:]


def _slug(question: str) -> str:
    words = content_words(question)[:SLUG_WORDS] or re.findall(r"[a-z0-9]+", question.lower())[:SLUG_WORDS]
    return "tqa-" + "-".join(re.sub(r"[^a-z0-9]+", "-", word).strip("-") for word in words)


def _unique(name: str, taken: set[str]) -> str:
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}-{k}", k + 1
    return candidate
