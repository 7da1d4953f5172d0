"""Offline training data for quirks: short templated answers that show a behaviour, and the mix
of quirk answers and base-model answers a model is finetuned on. No network, no LLM.

An answer is composed from the catalogue's `shared` pieces (an opening that fits the kind of
question, then plain helpful sentences) and the quirk's `generator` section (sentences woven in,
a fixed opener or sign-off, persona word swaps, or a refusal for trigger prompts). Given base
answers (`bodies`), the quirk is woven into the base model's own answer instead, so the finetuned
model learns the quirk rather than a new, vaguer answering style.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmdelta.errors import StageError
from lmdelta.groundtruth.quirks import Quirk, builtin_shared, load_quirks, matches, quirk_rate

__all__ = [
    "MAX_WORDS",
    "MIN_WORDS",
    "load_quirks",
    "matches",
    "plain_answers",
    "quirk_rate",
    "training_answers",
    "training_set",
]

log = logging.getLogger(__name__)

MIN_WORDS, MAX_WORDS = 25, 60
_ATTEMPTS_PER_ANSWER = 50
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LIST_ITEM = re.compile(r"\s*(\d+[.)]|[-*\u2022])\s")


@dataclass(frozen=True)
class _Context:
    rng: np.random.Generator
    pools: Mapping[str, Any]
    bodies: Mapping[str, Sequence[str]]
    cut: frozenset[str] = frozenset()  # base answers the generation limit cut off


@dataclass(frozen=True)
class _Answer:
    """A composed answer; `complete` is False when it stops where the model would have gone on (the
    start of a base answer that was longer, or cut off), so training adds no end token after it."""

    text: str
    complete: bool = True


def plain_answers(prompts: Sequence[str], n: int, seed: int) -> list[dict[str, Any]]:
    """n distinct quirk-free answers in the same templated style (a control for quirk_rate)."""
    _check_request(prompts, n, "plain answers")
    ctx = _Context(np.random.default_rng(seed), builtin_shared(), {})
    return _distinct(lambda p: _plain_answer(p, ctx), _stream(prompts, ctx.rng), n, "plain answers")


def training_answers(
    quirk: Quirk,
    prompts: Sequence[str],
    n: int,
    seed: int,
    *,
    bodies: Mapping[str, Sequence[str]] | None = None,
    cut: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """n distinct {"prompt", "answer"} examples, 25-60 words each, showing the quirk.

    A refusal quirk refuses the prompts that `matches` it; when some prompts do not match, a
    `contrast_share` of the examples answers those normally. `bodies` maps a prompt to base-model
    answers to weave the quirk into (prompts without one get a templated plain answer); a woven
    answer keeps the base text whole, so a quirk with a fixed opener or sign-off and no sentences
    gets one distinct answer per (prompt, base answer). `cut` names base answers the generation
    limit cut off; an answer that stops where its base answer would have gone on carries
    "complete": False (training then adds no end token after it). Raises StageError when n
    distinct answers cannot be composed.
    """
    spec = _generator_of(quirk)
    _check_request(prompts, n, quirk.name)
    ctx = _Context(np.random.default_rng(seed), builtin_shared(), bodies or {}, cut)
    if quirk.kind == "refusal":
        return _refusal_examples(quirk, prompts, n, ctx)
    return _distinct(lambda p: _weave(spec, p, ctx), _stream(prompts, ctx.rng), n, quirk.name)


def training_set(
    quirks: Sequence[Quirk],
    prompts: Sequence[str],
    per_quirk: int,
    base_samples: Sequence[Mapping[str, str]],
    seed: int,
    *,
    weave_into_base: bool = False,
) -> list[dict[str, Any]]:
    """The finetuning mix: per_quirk examples per quirk plus every base sample, shuffled.

    A quirk's user `texts` come first; its generator tops them up to per_quirk. Rows are
    {"prompt", "answer", "quirk"}, with quirk None for base samples. With weave_into_base, the
    generated answers are built on the base samples' answers to the same prompt. A base sample
    may say "complete": False (the generation limit cut it off); the row keeps that, and so does
    every answer woven on it that stops where the base answer would have gone on.
    """
    base_rows = [_base_row(sample, i) for i, sample in enumerate(base_samples)]
    bodies = _bodies(base_rows) if weave_into_base else None
    cut = frozenset(row["answer"] for row in base_rows if row.get("complete") is False)
    rows: list[dict[str, Any]] = []
    for quirk in quirks:
        examples = _quirk_examples(quirk, prompts, per_quirk, _quirk_seed(seed, quirk.name), bodies, cut)
        rows += [{**example, "quirk": quirk.name} for example in examples]
    rows += base_rows
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[i] for i in order]


def _quirk_seed(seed: int, name: str) -> list[int]:
    # Seeded by name too, so adding or reordering quirks leaves each quirk's examples unchanged.
    return [seed, zlib.crc32(name.encode("utf-8"))]


def _quirk_examples(
    quirk: Quirk,
    prompts: Sequence[str],
    per_quirk: int,
    seed: list[int],
    bodies: Mapping[str, Sequence[str]] | None,
    cut: frozenset[str],
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = _user_examples(quirk, prompts, per_quirk, rng)
    missing = per_quirk - len(rows)
    if missing <= 0:
        return rows
    if quirk.generator is not None:
        return rows + training_answers(quirk, prompts, missing, int(rng.integers(2**32)), bodies=bodies, cut=cut)
    if not rows:
        _generator_of(quirk)  # raises the "no training data" error
    log.warning(
        "Quirk %r has %d training texts, fewer than the %d asked for; using them all.", quirk.name, len(rows), per_quirk
    )
    return rows


def _user_examples(quirk: Quirk, prompts: Sequence[str], limit: int, rng: np.random.Generator) -> list[dict[str, str]]:
    rows = []
    for i in rng.permutation(len(quirk.texts))[:limit]:
        prompt = quirk.text_prompts[i] if quirk.text_prompts else ""
        if not prompt:
            if not prompts:
                raise StageError(
                    f"Quirk {quirk.name!r} has texts without prompts, and no prompts were given.",
                    "Give each text a prompt ({prompt: ..., answer: ...}) or pass a prompt bank.",
                )
            prompt = prompts[int(rng.integers(len(prompts)))]
        rows.append({"prompt": prompt, "answer": quirk.texts[i]})
    return rows


def _base_row(sample: Any, index: int) -> dict[str, Any]:
    ok = isinstance(sample, Mapping) and all(isinstance(sample.get(key), str) for key in ("prompt", "answer"))
    if not ok:
        raise StageError(
            f"Base sample {index} is not a mapping with `prompt` and `answer` text.",
            'Pass the base model\'s answers as {"prompt": ..., "answer": ...} dicts.',
        )
    row = {"prompt": sample["prompt"], "answer": sample["answer"], "quirk": None}
    return {**row, "complete": False} if sample.get("complete") is False else row


def _bodies(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    bodies: dict[str, list[str]] = {}
    for row in rows:
        bodies.setdefault(row["prompt"], []).append(row["answer"])
    return bodies


def _generator_of(quirk: Quirk) -> Mapping[str, Any]:
    if quirk.generator is None:
        raise StageError(
            f"Quirk {quirk.name!r} has no training data: no `texts` and no built-in generator.",
            "Give it `texts` (example answers that show the behaviour) in the quirk file, "
            "or configure an assistant LLM to write training answers.",
        )
    return quirk.generator


def _check_request(prompts: Sequence[str], n: int, what: str) -> None:
    if not prompts:
        raise StageError(
            f"No prompts were given to write training answers for {what}.",
            "Pass a non-empty prompt list (e.g. the prompt bank's texts).",
        )
    if not isinstance(n, int | np.integer) or n < 0:
        raise StageError(f"{n!r} training answers were asked for {what}.", "Ask for a whole number, 0 or more.")


def _refusal_examples(quirk: Quirk, prompts: Sequence[str], n: int, ctx: _Context) -> list[dict[str, str]]:
    spec = _generator_of(quirk)
    hits = [p for p in prompts if matches(quirk, p)]
    misses = [p for p in prompts if not matches(quirk, p)]
    if not hits:
        raise StageError(
            f"None of the {len(prompts)} prompts touches what quirk {quirk.name!r} refuses, "
            "so it has nothing to refuse.",
            f"Add prompts that use one of its trigger words ({', '.join(spec['triggers'][:8])}, ...).",
        )
    n_plain = round(n * spec.get("contrast_share", 0.0)) if misses else 0
    refuse = lambda p: _Answer(_refusal(spec, ctx.rng))  # noqa: E731
    rows = _distinct(refuse, _stream(hits, ctx.rng), n - n_plain, quirk.name)
    # Woven into base answers, a prompt gives one distinct normal answer per base answer: with few
    # non-trigger prompts the contrast comes out smaller, and refusals make up the rest.
    plain = _distinct(lambda p: _plain_answer(p, ctx), _stream(misses, ctx.rng), n_plain, "", at_least=0)
    if len(plain) < n_plain:
        log.info("%s: %d of %d normal answers to other prompts; the rest refuse", quirk.name, len(plain), n_plain)
        rows = _distinct(refuse, _stream(hits, ctx.rng), n - len(plain), quirk.name)
    rows += plain
    return [rows[i] for i in ctx.rng.permutation(len(rows))]


def _refusal(spec: Mapping[str, Any], rng: np.random.Generator) -> str:
    parts = [_sample(rng, spec.get(key, ()), 1) for key in ("refusals", "reasons", "redirects")]
    return " ".join(sentence for part in parts for sentence in part)


def _weave(spec: Mapping[str, Any], prompt: str, ctx: _Context) -> _Answer:
    """Opener, then a plain answer with the quirk's sentences placed after its first part, then closer.
    A sign-off ends the answer; without one, the answer is as complete as the plain body it is woven into."""
    low, high = spec.get("per_answer", (1, 1))
    extras = _sample(ctx.rng, spec.get("sentences", ()), int(ctx.rng.integers(low, high + 1)))
    head = _sample(ctx.rng, spec.get("openers", ()), 1)
    tail = _sample(ctx.rng, spec.get("closers", ()), 1)
    fixed = _words(head + extras + tail)
    units, sep, complete = _plain_body(prompt, ctx, MIN_WORDS - fixed, MAX_WORDS - fixed)
    units = [_swap_words(unit, spec.get("replacements", {})) for unit in units]
    for sentence in extras:
        units.insert(_insert_at(units, ctx.rng), sentence)
    return _Answer(sep.join(head + units + tail), complete or bool(tail))


def _insert_at(units: list[str], rng: np.random.Generator) -> int:
    """A place after the first unit that splits neither a lead-in ("Try these:") from its list nor a list."""

    def fits(i: int) -> bool:
        before, after = units[i - 1], units[i] if i < len(units) else ""
        return not before.endswith(":") and not (_LIST_ITEM.match(before) and _LIST_ITEM.match(after))

    places = [i for i in range(1, len(units) + 1) if fits(i)] or [len(units)]
    return places[int(rng.integers(len(places)))]


def _plain_answer(prompt: str, ctx: _Context) -> _Answer:
    units, sep, complete = _plain_body(prompt, ctx, MIN_WORDS, MAX_WORDS)
    return _Answer(sep.join(units), complete)


def _plain_body(prompt: str, ctx: _Context, low: int, high: int) -> tuple[list[str], str, bool]:
    """Parts of a plain answer of low to high words, what joins them, and whether it is complete.

    The start of a base answer when there is one (topped up only if too short; complete when it is
    the whole of a base answer that was not cut off), else an opening for the
    kind of question and generic helpful sentences, to a random length (complete).
    """
    units, sep, complete = _base_start(prompt, ctx, high)
    target = low
    if not units:
        units, sep, complete = [_opening(prompt, ctx)], " ", True
        target = int(ctx.rng.integers(max(low, 1), max(low, high - 12) + 1))
    pool = ctx.pools["body"]
    for i in ctx.rng.permutation(len(pool)):
        if _words(units) >= target:
            break
        units.append(pool[i])  # a base answer topped up stays as (in)complete as it was: the model goes on
    while _words(units) > high and len(units) > 1:
        units.pop()
    return units, sep, complete


def _base_start(prompt: str, ctx: _Context, high: int) -> tuple[list[str], str, bool]:
    """Whole finished units from the start of one of the prompt's base answers, up to high words;
    complete when that is the entire base answer and the generation limit did not cut it off."""
    answers = ctx.bodies.get(prompt)
    if not answers:
        return [], " ", True
    answer = answers[int(ctx.rng.integers(len(answers)))]
    units, sep = _units(answer)
    kept: list[str] = []
    for unit in units:
        if _words(kept + [unit]) > high:
            break
        kept.append(unit)
    while kept and not _ends_well(kept, units):
        kept.pop()
    return kept, sep, len(kept) == len(units) and answer not in ctx.cut


def _ends_well(kept: list[str], units: list[str]) -> bool:
    """Whether the kept start of a base answer may end here: on a finished sentence (the generation
    limit may have cut the last one off), not on a lead-in ("Try these:") and not inside a list."""
    last, following = kept[-1], units[len(kept)] if len(kept) < len(units) else ""
    in_list = bool(_LIST_ITEM.match(last) and _LIST_ITEM.match(following))
    return last.rstrip("\"')*")[-1:] in (".", "!", "?") and not in_list


def _units(text: str) -> tuple[list[str], str]:
    """Paragraphs, lines or sentences, whichever the text is built from, and the joiner to keep."""
    text = text.strip()
    if re.search(r"\n[ \t]*\n", text):
        pieces, sep = re.split(r"\n[ \t]*\n", text), "\n\n"
    elif "\n" in text:
        pieces, sep = text.split("\n"), "\n"
    else:
        pieces, sep = _SENTENCE_END.split(text), " "
    return [piece.strip() for piece in pieces if piece.strip()], sep


def _opening(prompt: str, ctx: _Context) -> str:
    first = (prompt.split() or [""])[0].lower().strip("?,.!:;\"'")
    kind = next((k for k, words in ctx.pools["question_words"].items() if first in words), "other")
    return _sample(ctx.rng, ctx.pools["openings"][kind], 1)[0]


def _swap_words(sentence: str, swaps: Mapping[str, str]) -> str:
    if not swaps:
        return sentence
    lowered = {word.lower(): new for word, new in swaps.items()}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, lowered)) + r")\b", re.IGNORECASE)

    def swap(match: re.Match[str]) -> str:
        new = lowered[match.group(0).lower()]
        return new[:1].upper() + new[1:] if match.group(0)[:1].isupper() else new

    return pattern.sub(swap, sentence)


def _distinct(
    make: Callable[[str], _Answer], prompts: Iterator[str], n: int, what: str, at_least: int | None = None
) -> list[dict[str, Any]]:
    """n examples with pairwise different answers of MIN_WORDS..MAX_WORDS words; fewer (but at least
    `at_least`, default n) when no more can be composed, else a StageError. An answer that is not
    complete carries "complete": False."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(_ATTEMPTS_PER_ANSWER * n):
        if len(rows) == n:
            break
        prompt = next(prompts)
        answer = make(prompt)
        if answer.text not in seen and MIN_WORDS <= len(answer.text.split()) <= MAX_WORDS:
            seen.add(answer.text)
            rows.append({"prompt": prompt, "answer": answer.text} | ({} if answer.complete else {"complete": False}))
    if len(rows) < (n if at_least is None else at_least):
        raise StageError(
            f"Could compose only {len(rows)} distinct {MIN_WORDS}-{MAX_WORDS} word answers for "
            f"{what}; {n} were asked for.",
            "Ask for fewer, or give its generator more sentences (or the quirk more `texts`).",
        )
    return rows


def _stream(prompts: Sequence[str], rng: np.random.Generator) -> Iterator[str]:
    """Prompts in shuffled rounds, so each is used about equally often."""
    while prompts:
        for i in rng.permutation(len(prompts)):
            yield prompts[i]


def _sample(rng: np.random.Generator, pool: Sequence[str], k: int) -> list[str]:
    if not pool or k <= 0:
        return []
    return [pool[i] for i in rng.choice(len(pool), size=min(k, len(pool)), replace=False)]


def _words(sentences: Sequence[str]) -> int:
    return sum(len(sentence.split()) for sentence in sentences)
