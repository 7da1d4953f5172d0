"""How text becomes a local transformers model's input, in one place for generation (transformers
and vLLM), finetuning and the local chat provider, so all three feed a model the same token ids.

The chat template (generation prompt, or a continued assistant prefill) with the system message
merged into the first other message when the template refuses a system role; plain text (system
prompt, blank line, prompt) for models without a template; token ids with or without the
tokenizer's special tokens; stop and padding ids; the reasoning markers of a finished text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lmdelta.config import ModelSpec
from lmdelta.errors import ModelNotFoundError

log = logging.getLogger(__name__)

ChatMessage = dict[str, str]  # {"role": ..., "content": ...}, the form chat templates take


# ---- text ----


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_text(tokenizer: Any, messages: Sequence[ChatMessage]) -> str:
    """The exact text the model continues: the template's generation prompt after the messages, or,
    when the last message is the assistant's, that message continued (a prefill). A template that
    refuses a system role (they raise errors of their own kinds) gets the system text, every system
    message joined by a blank line, in front of the first other message instead."""
    messages = [dict(m) for m in messages]
    prefill = bool(messages) and messages[-1]["role"] == "assistant"
    options = {"continue_final_message": True} if prefill else {"add_generation_prompt": True}
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, **options)
    except Exception:
        merged = _system_merged(messages)
        if merged is None:
            raise
        log.warning("the chat template rejects a system message; prefixing it to the user message")
        return tokenizer.apply_chat_template(merged, tokenize=False, **options)


def _system_merged(messages: list[ChatMessage]) -> list[ChatMessage] | None:
    """The messages without system ones, their text prefixed to the first other message; None when
    there is no system text or nothing to prefix it to (then the template's own error stands)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    if not system or not rest:
        return None
    return [{"role": rest[0]["role"], "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]


def prompt_messages(system: str | None, prompt: str) -> list[ChatMessage]:
    """One prompt as chat messages: the system prompt (when set and not empty), then the user's."""
    user = {"role": "user", "content": prompt}
    return [{"role": "system", "content": system}, user] if system else [user]


def plain_text(system: str | None, prompt: str) -> str:
    """One prompt without a chat template: the system prompt, a blank line, the prompt."""
    return f"{system}\n\n{prompt}" if system else prompt


def format_prompt(tokenizer: Any, system: str | None, prompt: str, chat: bool) -> str:
    return chat_text(tokenizer, prompt_messages(system, prompt)) if chat else plain_text(system, prompt)


# ---- token ids ----


def encode(tokenizer: Any, text: str, chat: bool) -> list[int]:
    """Token ids of a formatted text. A chat template writes its own special tokens (a BOS…), so
    none are added to its text; plain text gets the tokenizer's usual ones."""
    return list(tokenizer(text, add_special_tokens=not chat)["input_ids"])


def prompt_ids(tokenizer: Any, system: str | None, prompt: str, chat: bool) -> list[int]:
    return encode(tokenizer, format_prompt(tokenizer, system, prompt, chat), chat)


def continuation_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of text that follows other tokens: no special tokens added."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def answer_ids(tokenizer: Any, answer: str, eos: list[int]) -> list[int]:
    """An answer's token ids and the first stop token after it, as it is scored and trained on."""
    return continuation_ids(tokenizer, answer) + eos[:1]


def eos_ids(generation_config: Any, tokenizer: Any) -> list[int]:
    """The tokens that end an answer: the model's generation config's (`model.generation_config`,
    or the one in its folder; None for none), else the tokenizer's EOS."""
    eos = getattr(generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = eos if isinstance(eos, list) else [eos]
    return [int(i) for i in ids if i is not None]


def pad_id(tokenizer: Any, eos: list[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]


def left_pad(rows: list[list[int]], pad: int) -> tuple[list[list[int]], list[list[int]]]:
    """(ids, attention mask) of rows padded on the left to the longest, so every row ends where
    generation continues it."""
    width = max(len(row) for row in rows)
    ids = [[pad] * (width - len(row)) + row for row in rows]
    mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
    return ids, mask


# ---- a generation side's prompt (ModelSpec: system prompt, chat template switch, reasoning) ----


def use_chat_template(spec: ModelSpec, tokenizer: Any) -> bool:
    has_template = has_chat_template(tokenizer)
    if spec.chat_template and not has_template:
        raise ModelNotFoundError(
            f"chat_template is on for {spec.model}, but its tokenizer has no chat template.",
            "Set chat_template: false for this side, or use the model's instruct version.",
        )
    return has_template if spec.chat_template is None else spec.chat_template


def prompt_text(spec: ModelSpec, tokenizer: Any, prompt: str, chat: bool) -> str:
    """The exact text the model continues (special tokens included when the template has them)."""
    text = format_prompt(tokenizer, spec.system_prompt, prompt, chat)
    return text + opening(spec, text) if spec.reasoning.enabled else text


def opening(spec: ModelSpec, text: str) -> str:
    """reasoning.start, unless the formatted prompt already ends with it (chat templates of
    reasoning models, such as DeepSeek-R1's, open the thinking themselves)."""
    start = spec.reasoning.start or ""
    if start.strip() and text.rstrip().endswith(start.strip()):
        return ""
    return start


def encode_prompt(spec: ModelSpec, tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    """Token ids of prompt_text."""
    ids = encode(tokenizer, prompt_text(spec, tokenizer, prompt, chat), chat)
    if ids:
        return ids
    # The empty prompt (unconditional sampling): the model starts from its BOS token, or its EOS
    # (which GPT-2-style models use as the start of a text) when it has none.
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [int(start)]


# ---- reasoning in a finished text ----


def split_reasoning(text: str, start: str | None, end: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a text that may hold `start … end`. Without `end` the whole text is
    reasoning that never finished, and the answer is empty."""
    head, found, tail = text.partition(end)
    if not found:
        return _strip_start(text, start).strip(), ""
    return _strip_start(head, start).strip(), tail.strip()


def _strip_start(text: str, start: str | None) -> str:
    if start and start.strip() and start.strip() in text:
        return text.split(start.strip(), 1)[1]
    return text
