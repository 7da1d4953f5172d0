"""How a prompt becomes model input, shared by every local backend (transformers, vLLM): the
chat template with `add_generation_prompt=True` and an optional system message, or a plain
text prefix; then the opening of reasoning for two-stage decoding. Also splitting reasoning
out of a finished text, for backends that return one string."""

from __future__ import annotations

import logging
from typing import Any

from lmdelta.config import ModelSpec
from lmdelta.errors import ModelNotFoundError

log = logging.getLogger(__name__)


def use_chat_template(spec: ModelSpec, tokenizer: Any) -> bool:
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if spec.chat_template and not has_template:
        raise ModelNotFoundError(f"chat_template is on for {spec.model}, but its tokenizer has no chat template.",
                                 "Set chat_template: false for this side, or use the model's instruct version.")
    return has_template if spec.chat_template is None else spec.chat_template


def prompt_text(spec: ModelSpec, tokenizer: Any, prompt: str, chat: bool) -> str:
    """The exact text the model continues (special tokens included when the template has them)."""
    system = spec.system_prompt
    if chat:
        text = _chat_text(tokenizer, system, prompt)
    else:
        text = f"{system}\n\n{prompt}" if system else prompt
    return text + opening(spec, text) if spec.reasoning.enabled else text


def opening(spec: ModelSpec, text: str) -> str:
    """reasoning.start, unless the formatted prompt already ends with it (chat templates of
    reasoning models, such as DeepSeek-R1's, open the thinking themselves)."""
    start = spec.reasoning.start or ""
    if start.strip() and text.rstrip().endswith(start.strip()):
        return ""
    return start


def encode_prompt(spec: ModelSpec, tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    """Token ids of prompt_text. A chat template writes its own special tokens, so none are added then."""
    text = prompt_text(spec, tokenizer, prompt, chat)
    ids = list(tokenizer(text, add_special_tokens=not chat)["input_ids"])
    if ids:
        return ids
    # The empty prompt (unconditional sampling): the model starts from its BOS token, or its EOS
    # (which GPT-2-style models use as the start of a text) when it has none.
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [int(start)]


def _chat_text(tokenizer: Any, system: str | None, prompt: str) -> str:
    messages = [{"role": "user", "content": prompt}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception:  # templates that reject a system role raise template errors of their own kinds
        if not system:
            raise
        log.warning("the chat template rejects a system message; prefixing it to the user message")
        merged = [{"role": "user", "content": f"{system}\n\n{prompt}"}]
        return tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)


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
