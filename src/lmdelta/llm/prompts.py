"""Prompt builders and answer parsers for the LLM roles. Prompt text lives in templates/*.md.

Builders are pure (records in, ChatRequest out) so golden-file tests pin every prompt; parsers
raise ValueError on anything they cannot read, which the client turns into a counted re-ask.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from lmdelta.llm.types import ChatRequest, Message


@cache
def template(name: str) -> str:
    return (resources.files("lmdelta") / "llm" / "templates" / f"{name}.md").read_text(encoding="utf-8")


def _numbered(texts: list[str]) -> str:
    return "\n".join(f"{i}. {' '.join(t.split())}" for i, t in enumerate(texts, start=1))


def propose_request(
    texts_a: list[str],
    texts_b: list[str],
    k: int,
    instruction: str | None = None,
    temperature: float = 1.0,
    max_tokens: int = 1200,
    sample_index: int = 0,
    exhausted: list[str] | None = None,
) -> ChatRequest:
    body = template("propose").format(
        instruction=(instruction or template("propose_instruction")).strip(),
        exhausted=_exhausted(exhausted or []),
        texts_a=_numbered(texts_a),
        texts_b=_numbered(texts_b),
        k=k,
    )
    return ChatRequest(
        (Message("user", body),), max_tokens=max_tokens, temperature=temperature, sample_index=sample_index
    )


def _exhausted(claims: list[str]) -> str:
    """The directions an earlier search round already proposed (empty in the first round: the request
    reads as it did before rounds existed)."""
    if not claims:
        return ""
    listed = "\n".join(f"- {' '.join(c.split())}" for c in claims)
    return (
        "\n\nThese differences were already proposed. Do not repeat them or restate them in other words; "
        f"look for differences of another kind:\n{listed}"
    )


def parse_hypotheses(text: str) -> list[dict[str, str]]:
    """The proposer's JSON list; items without a usable direction and property are refused."""
    items = _json_value(text, "[")
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of hypotheses")
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        direction = str(item.get("direction", "")).strip().lower().replace(" ", "")
        prop, description = str(item.get("property", "")).strip(), str(item.get("description", "")).strip()
        if direction in ("b>a", "a>b") and prop:
            out.append({"direction": direction, "property": prop, "description": description or prop})
    if not out:
        raise ValueError("no hypothesis with a direction (b>a or a>b) and a property")
    return out


def unitary_request(prop: str, text: str, temperature: float = 0.0) -> ChatRequest:
    body = template("judge_unitary").format(property=prop, text=text)
    return ChatRequest((Message("user", body),), max_tokens=8, temperature=temperature)


def parse_score(text: str) -> float:
    """An integer 0..100 → [0, 1]. Anything else is unparseable, never a silent 0.5."""
    match = re.fullmatch(r"\s*(\d{1,3})(?:\s*/\s*100)?\s*\.?\s*", text)
    if not match or int(match.group(1)) > 100:
        raise ValueError(f"not a score from 0 to 100: {text[:40]!r}")
    return int(match.group(1)) / 100.0


def pairwise_request(prop: str, first: str, second: str, temperature: float = 0.0) -> ChatRequest:
    body = template("judge_pairwise").format(property=prop, first=first, second=second)
    return ChatRequest((Message("user", body),), max_tokens=4, temperature=temperature)


def parse_choice(text: str) -> int:
    match = re.fullmatch(r"\s*(?:text\s*)?([12])\s*\.?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"not 1 or 2: {text[:40]!r}")
    return int(match.group(1))


def presence_request(prop: str, text: str, logprobs: int | None = 5, temperature: float = 0.0) -> ChatRequest:
    body = template("judge_presence").format(property=prop, text=text)
    return ChatRequest((Message("user", body),), max_tokens=2, temperature=temperature, logprobs=logprobs)


def parse_presence(text: str, logprobs: list[dict[str, float]] | None = None) -> float:
    """P(yes) from the first token's logprobs when given, else 1.0 / 0.0 from the word."""
    if logprobs:
        p_yes, p_no = _first_token_mass(logprobs[0])
        if p_yes + p_no > 0:
            return p_yes / (p_yes + p_no)
    word = text.strip().lower().rstrip(".!")
    if word in ("yes", "no"):
        return 1.0 if word == "yes" else 0.0
    raise ValueError(f"not yes or no: {text[:40]!r}")


def _first_token_mass(alternatives: dict[str, float]) -> tuple[float, float]:
    p_yes = sum(math.exp(lp) for tok, lp in alternatives.items() if tok.strip().lower() == "yes")
    p_no = sum(math.exp(lp) for tok, lp in alternatives.items() if tok.strip().lower() == "no")
    return p_yes, p_no


def examples_request(prop: str, present: bool, n: int, temperature: float = 1.0, sample_index: int = 0) -> ChatRequest:
    polarity = "shows" if present else "does not show (while staying natural and on topic)"
    count = "one short example" if n == 1 else f"{n} short examples"
    body = template("examples").format(count=count, polarity=polarity, property=prop)
    return ChatRequest((Message("user", body),), max_tokens=160 * n, temperature=temperature, sample_index=sample_index)


def parse_examples(text: str) -> list[dict[str, str]]:
    items = _json_value(text, "[")
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of examples")
    out = [
        {"prompt": str(i["prompt"]), "answer": str(i["answer"])}
        for i in items
        if isinstance(i, dict) and i.get("prompt") and i.get("answer")
    ]
    if not out:
        raise ValueError("no example with both a prompt and an answer")
    return out


def quirk_match_request(
    behaviour: str, findings: list[str], temperature: float = 0.0, max_tokens: int | None = None
) -> ChatRequest:
    """Which of the numbered findings describe one injected behaviour (groundtruth.match = llm)."""
    body = template("groundtruth_match").format(behaviour=" ".join(behaviour.split()), findings=_numbered(findings))
    # A list of numbers: a few tokens per finding, with room for a fence or a short preamble.
    limit = max_tokens if max_tokens is not None else 40 + 6 * len(findings)
    return ChatRequest((Message("user", body),), max_tokens=limit, temperature=temperature)


def parse_numbers(text: str, n: int) -> list[int]:
    """A JSON list of finding numbers from 1 to n, sorted and each once; [] is an answer (none match).
    No list, a non-integer or a number out of range is unparseable, never a silent empty match."""
    items = _json_value(text, "[")
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of finding numbers")
    bad = [item for item in items if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= n]
    if bad:
        raise ValueError(f"not finding numbers from 1 to {n}: {bad[:3]!r}")
    return sorted(set(items))


def _json_value(text: str, opener: str) -> Any:
    """The outermost JSON value starting at the first `opener`, tolerating prose or fences around it."""
    start = text.find(opener)
    if start < 0:
        raise ValueError("no JSON found")
    closer = "]" if opener == "[" else "}"
    end = text.rfind(closer)
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg}") from None


def prompt_bank_request(
    category: str,
    n: int,
    max_words: int,
    instruction: str | None = None,
    temperature: float = 1.0,
    sample_index: int = 0,
    seed: int | None = None,
) -> ChatRequest:
    body = template("prompt_bank").format(
        n=n, category=category, max_words=max_words, instruction=(instruction or "").strip()
    )
    return ChatRequest(
        (Message("user", body),), max_tokens=80 * n + 200, temperature=temperature, sample_index=sample_index, seed=seed
    )


def parse_prompt_list(text: str, max_words: int) -> list[str]:
    """The prompt writer's JSON list of strings; over-long and empty items are dropped, none left is unparseable."""
    items = _json_value(text, "[")
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of prompt strings")
    prompts = [" ".join(str(item).split()) for item in items if isinstance(item, str)]
    kept = [p for p in prompts if p and len(p.split()) <= max_words]
    if not kept:
        raise ValueError(f"no prompt of 1..{max_words} words in the list")
    return kept


@dataclass(frozen=True)
class QuirkShape:
    """What a written quirk must look like: the kinds it may have, how many training sentences (min,
    max) and how long each may be. The request asks for it and groundtruth.written checks it."""

    kinds: tuple[str, ...]
    sentences: tuple[int, int]
    max_words: int


def quirk_writing_request(
    n: int,
    taken: list[tuple[str, str]],
    shape: QuirkShape,
    temperature: float = 1.0,
    max_tokens: int | None = None,
    sample_index: int = 0,
    seed: int | None = None,
) -> ChatRequest:
    """Ask for n behaviours a finetuned assistant might show (groundtruth.written), each with keywords
    and training sentences; `taken` lists the (name, description) of quirks already in use, so the
    new ones differ from them."""
    body = template("groundtruth_write").format(
        n=n,
        taken="\n".join(f"- {name}: {' '.join(description.split())}" for name, description in taken) or "- (none)",
        kinds=", ".join(shape.kinds),
        min_sentences=shape.sentences[0],
        max_sentences=shape.sentences[1],
        max_words=shape.max_words,
    )
    # A behaviour's sentences run to a few hundred tokens; the default leaves room for the longest.
    limit = max_tokens if max_tokens is not None else 200 + 2 * shape.max_words * shape.sentences[1] * n
    return ChatRequest(
        (Message("user", body),), max_tokens=limit, temperature=temperature, sample_index=sample_index, seed=seed
    )


def parse_quirk_items(text: str) -> list[dict[str, Any]]:
    """The quirk writer's JSON list of objects; whether each is a usable quirk is checked by the caller
    (groundtruth.written), which drops bad items one by one rather than re-asking for all of them."""
    items = _json_value(text, "[")
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of behaviours")
    out = [item for item in items if isinstance(item, dict)]
    if not out:
        raise ValueError("no behaviour object in the list")
    return out


def summary_request(a: str, b: str, themes: list[str], temperature: float = 0.3, max_tokens: int = 400) -> ChatRequest:
    """Ask llm.summariser for a short plain-language summary of the themes (lmdelta.themes.briefs), strongest first."""
    body = template("summarise").format(a=a, b=b, n=len(themes), themes=_numbered_blocks(themes))
    return ChatRequest((Message("user", body),), max_tokens=max_tokens, temperature=temperature)


def _numbered_blocks(blocks: list[str]) -> str:
    """Numbered blocks that may span lines (unlike _numbered, which folds each text onto one line)."""
    return "\n".join(f"{i}. {block.strip()}" for i, block in enumerate(blocks, start=1))


MAX_SUMMARY_CHARS = 2000


def parse_summary(text: str) -> str:
    """The summary as one paragraph (whitespace folded), at most MAX_SUMMARY_CHARS; nothing left is unparseable.
    The text stays untrusted: the report escapes it, the terminal strips control sequences."""
    folded = " ".join(text.replace("```", " ").split()).strip("\"' ")
    if not folded:
        raise ValueError("an empty summary")
    if len(folded) > MAX_SUMMARY_CHARS:
        cut = folded[:MAX_SUMMARY_CHARS]
        end = cut.rfind(". ")
        folded = cut[: end + 1] if end > 0 else cut.rstrip() + "…"
    return folded
