"""An LLM-generated prompt bank: N prompts about each category, written by the llm.prompter role.

Each call asks for `per_request` prompts; calls are distinct samples (sample index and seed),
so the response cache makes a re-run free and identical. Duplicates (ignoring case and spaces)
are dropped; a category that still falls short gets further calls, up to a bound.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from lmdelta.config.prompts import GeneratedBankConfig
from lmdelta.errors import PromptBankError
from lmdelta.hashing import hash_data
from lmdelta.llm.prompts import parse_prompt_list, prompt_bank_request
from lmdelta.sources.items import SourceItem

log = logging.getLogger(__name__)
EXTRA_ROUNDS = 3  # further rounds of calls for a category short of prompts after dedup


def categories(section: GeneratedBankConfig, location: str) -> list[str]:
    """`generated:a,b` in prompts.source overrides prompts.generated.categories."""
    given = [c.strip() for c in location.split(",") if c.strip()] if location else section.categories
    if not given:
        raise PromptBankError(
            "The generated bank has no categories.",
            "List them in prompts.generated.categories or as prompts.source=generated:cat1,cat2.",
        )
    return list(dict.fromkeys(given))


def generate_items(
    section: GeneratedBankConfig, names: list[str], ask: Callable, temperature: float, seed: int
) -> list[SourceItem]:
    """Ask for prompts category by category (all categories' calls of a round go out together)."""
    found: dict[str, list[str]] = {name: [] for name in names}
    calls = math.ceil(section.per_category / section.per_request)
    for round_ in range(1 + EXTRA_ROUNDS):
        short = [n for n in names if len(found[n]) < section.per_category]
        if not short:
            break
        jobs = [(n, k) for n in short for k in range(round_ * calls, (round_ + 1) * calls)]
        requests = [
            prompt_bank_request(
                n,
                section.per_request,
                section.max_words,
                section.instruction,
                temperature,
                sample_index=k,
                seed=_seed(seed, n, k),
            )
            for n, k in jobs
        ]
        answers = ask(requests, lambda text: parse_prompt_list(text, section.max_words))
        for (name, _), (_, parsed) in zip(jobs, answers):
            _add_new(found[name], parsed or [], section.per_category)
    return _items(found, section.per_category)


def _seed(seed: int, category: str, k: int) -> int:
    return int(hash_data([seed, category, k]), 16) & 0x7FFFFFFF


def _add_new(have: list[str], new: list[str], limit: int) -> None:
    seen = {p.casefold() for p in have}
    for prompt in new:
        if len(have) < limit and prompt.casefold() not in seen:
            have.append(prompt)
            seen.add(prompt.casefold())


def _items(found: dict[str, list[str]], wanted: int) -> list[SourceItem]:
    short = {name: len(p) for name, p in found.items() if len(p) < wanted}
    if short and all(count == 0 for count in short.values()) and len(short) == len(found):
        raise PromptBankError(
            "The prompt writer (llm.prompter) produced no usable prompts.",
            "Check llm.prompter.model, or inspect its answers with --debug.",
        )
    for name, count in short.items():
        log.warning(
            "generated bank: category %r has %d of %d prompts after %d rounds", name, count, wanted, 1 + EXTRA_ROUNDS
        )
    return [
        SourceItem(p, name, f"generated:{name}#{i + 1}")
        for name, prompts in found.items()
        for i, p in enumerate(prompts)
    ]


def describe(
    section: GeneratedBankConfig, names: list[str], prompter: dict[str, Any] | None, temperature: float
) -> dict[str, Any]:
    """What decides the bank's content, for the prompts stage's fingerprint (no calls made)."""
    return {
        "categories": names,
        "settings": section.model_dump(exclude={"categories"}),
        "prompter": prompter,
        "temperature": temperature,
    }
