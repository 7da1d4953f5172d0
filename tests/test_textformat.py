"""One prompt, the same token ids wherever lmdelta feeds it to a local model: the HF generator, the
finetuning data and the local chat provider all encode through `backends.textformat`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lmdelta.backends import textformat
from lmdelta.backends.factory import build_generator, generator_identity
from lmdelta.config import ModelSpec
from lmdelta.groundtruth import finetune
from lmdelta.llm.providers import local_chat
from lmdelta.llm.types import ChatRequest, Message

PROMPT = "how do tides work"
ANSWER = "the cat sat"
# Like Gemma's: a system message is an error, so the system prompt goes in front of the user's.
NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
    "<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def generator(tiny_model, tmp_path, system, chat_template):
    spec = ModelSpec(model=str(tiny_model), system_prompt=system, chat_template=chat_template, dtype="float32")
    return build_generator(spec, generator_identity(spec, "cpu", tmp_path), "cpu", tmp_path)


def finetune_ids(gen, system, chat) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) of one training example, as finetuning encodes it."""
    job = SimpleNamespace(chat_template=chat, system_prompt=system, config=SimpleNamespace(max_length=10_000))
    [(ids, labels)] = finetune._encode_all(gen.tokenizer, gen.model, [{"prompt": PROMPT, "answer": ANSWER}], job)
    n_prompt = labels.count(-100)
    return ids[:n_prompt], ids[n_prompt:]


def chat_ids(tokenizer, system) -> list[int]:
    messages = ((Message("system", system),) if system else ()) + (Message("user", PROMPT),)
    return local_chat._encode(tokenizer, ChatRequest(messages=messages))


@pytest.mark.parametrize("template", ["own", "refuses system"])
@pytest.mark.parametrize("system", [None, "Be brief."])
def test_generation_finetuning_and_local_chat_encode_a_chat_prompt_alike(tiny_model, tmp_path, template, system):
    gen = generator(tiny_model, tmp_path, system, chat_template=True)
    if template == "refuses system":
        gen.tokenizer.chat_template = NO_SYSTEM
    generated = gen.encode(PROMPT)
    trained, answer = finetune_ids(gen, system, chat=True)
    assert generated == trained == chat_ids(gen.tokenizer, system)
    assert generated == textformat.prompt_ids(gen.tokenizer, system, PROMPT, chat=True)
    assert answer == textformat.answer_ids(gen.tokenizer, ANSWER, gen.eos_ids)  # what loglik scores, too
    text = gen.tokenizer.decode(generated)
    assert (f"user: {system}\n\n{PROMPT}" in text) == (system is not None and template == "refuses system")
    gen.close()


@pytest.mark.parametrize("system", [None, "Be brief."])
def test_without_a_chat_template_generation_and_finetuning_use_the_plain_prefix(tiny_model, tmp_path, system):
    gen = generator(tiny_model, tmp_path, system, chat_template=False)
    trained, _ = finetune_ids(gen, system, chat=False)
    assert (
        gen.encode(PROMPT)
        == trained
        == textformat.encode(gen.tokenizer, textformat.plain_text(system, PROMPT), chat=False)
    )
    assert gen.tokenizer.decode(trained, skip_special_tokens=True) == (f"{system}\n\n{PROMPT}" if system else PROMPT)
    gen.close()


def test_a_template_refusing_system_merges_every_system_message_into_the_first_other():
    seen = []

    class Tokenizer:
        def apply_chat_template(self, messages, tokenize, **options):
            seen.append((messages, options))
            if any(m["role"] == "system" for m in messages):
                raise ValueError("no system role")
            return "|".join(f"{m['role']}={m['content']}" for m in messages)

    messages = [
        {"role": "system", "content": "A"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "B"},
        {"role": "assistant", "content": "Sure,"},
    ]
    assert textformat.chat_text(Tokenizer(), messages) == "user=A\n\nB\n\nhi|assistant=Sure,"
    assert seen[-1][1] == {"continue_final_message": True}  # an assistant prefill is continued
    with pytest.raises(ValueError):  # nothing to merge into: the template's own error stands
        textformat.chat_text(Tokenizer(), [{"role": "system", "content": "A"}])
