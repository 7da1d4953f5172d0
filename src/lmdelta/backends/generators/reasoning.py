"""Two-stage decoding for reasoning models on transformers: think within a budget, close the
thinking with the end marker (forced when the model has not written it), then answer.

The answer stage continues from token ids (prompt ids + thinking ids + marker ids), never from
re-tokenised decoded text, so the chat template's special tokens and the BOS are exactly those
of the first stage. The thinking is returned for inspection; only the answer is analysed.
"""

from __future__ import annotations

from typing import Any

from lmdelta.backends.protocols import Generation, SamplingSettings
from lmdelta.backends.textformat import continuation_ids

ANSWER_SEED_STEP = 0x9E3779B97F4A7C15  # the answer stage's seed differs from the thinking stage's


def answer_seed(seed: int) -> int:
    return (seed + ANSWER_SEED_STEP) & ((1 << 63) - 1)


def two_stage(
    generator: Any, prompts: list[list[int]], seeds: list[int], settings: SamplingSettings
) -> list[Generation]:
    spec = generator.spec.reasoning
    think = SamplingSettings(spec.max_tokens, settings.temperature, settings.top_p)
    rows = generator._sample(prompts, seeds, think, stop_strings=[spec.end])
    closed = [close_thinking(generator, row, spec.end) for row in rows]
    thoughts = [ids for ids, _ in closed]
    continued = [prompt + thought for prompt, thought in zip(prompts, thoughts)]
    answers = generator._sample(continued, [answer_seed(s) for s in seeds], settings)
    out = []
    for (thought, by_model), answer in zip(closed, answers):
        finished = generator._finish(answer, settings.max_new_tokens)
        text = generator.tokenizer.decode(thought, skip_special_tokens=True)
        reasoning = _without_markers(text, spec.start, spec.end)
        out.append(
            Generation(finished.text, finished.n_tokens, finished.finish_reason, reasoning, len(thought), by_model)
        )
    return out


def close_thinking(generator: Any, row: list[int], end: str) -> tuple[list[int], bool]:
    """The thinking's token ids through the end marker, and whether the model wrote the marker:
    cut just after the model's own marker, or (no marker within the budget, or a stop token
    first) the thinking plus the encoded marker."""
    stop = next((i for i, token in enumerate(row) if token in generator.eos_ids), len(row))
    tokens = row[:stop]
    cut = _marker_end(generator.tokenizer, tokens, end)
    if cut is not None:
        return tokens[:cut], True
    return tokens + continuation_ids(generator.tokenizer, end), False


def _marker_end(tokenizer: Any, tokens: list[int], end: str) -> int | None:
    """The smallest k such that tokens[:k] decodes to a text containing `end` (binary search)."""

    def has(k: int) -> bool:
        return end in tokenizer.decode(tokens[:k], skip_special_tokens=False)

    if not tokens or not has(len(tokens)):
        return None
    low, high = 1, len(tokens)
    while low < high:
        middle = (low + high) // 2
        if has(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _without_markers(text: str, start: str | None, end: str) -> str:
    for marker in (start, end):
        if marker and marker.strip():
            text = text.replace(marker.strip(), "")
    return text.strip()
