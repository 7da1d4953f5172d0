"""The transformers generator on a tiny random-init Llama: seeds, batching, templates."""

import pytest

from lmdelta.backends.factory import build_generator, generator_identity
from lmdelta.backends.protocols import GenerationRequest, SamplingSettings
from lmdelta.config import ModelSpec

PROMPTS = [
    "how do tides work",
    "a cat sat on the mat and then the dog ran off to the park",
    "poem",
    "cooking pasta needs salt water",
]


def make(tiny_model, tmp_path, **spec):
    spec = ModelSpec(model=str(tiny_model), dtype="float32", **spec)
    return build_generator(spec, generator_identity(spec, "cpu", tmp_path), "cpu", tmp_path)


def reqs(seeds=(11, 12, 13, 14)):
    return [
        GenerationRequest(key=str(i), prompt_id=str(i), prompt=p, index=0, seed=s)
        for i, (p, s) in enumerate(zip(PROMPTS, seeds))
    ]


SAMPLED = SamplingSettings(max_new_tokens=12, temperature=1.0, top_p=0.9)


def test_answers_do_not_depend_on_batch_composition(tiny_model, tmp_path):
    generator = make(tiny_model, tmp_path)
    batch = [g.text for g in generator.generate(reqs(), SAMPLED)]
    alone = [generator.generate([r], SAMPLED)[0].text for r in reqs()]
    reversed_batch = [g.text for g in generator.generate(reqs()[::-1], SAMPLED)][::-1]
    assert batch == alone == reversed_batch


def test_seed_decides_the_sample(tiny_model, tmp_path):
    generator = make(tiny_model, tmp_path)
    first = [g.text for g in generator.generate(reqs(), SAMPLED)]
    assert first == [g.text for g in generator.generate(reqs(), SAMPLED)]
    other = [g.text for g in generator.generate(reqs(seeds=(21, 22, 23, 24)), SAMPLED)]
    assert other != first


def test_greedy_ignores_seed(tiny_model, tmp_path):
    generator = make(tiny_model, tmp_path)
    greedy = SamplingSettings(max_new_tokens=8, temperature=0.0, top_p=1.0)
    assert [g.text for g in generator.generate(reqs(), greedy)] == [
        g.text for g in generator.generate(reqs(seeds=(1, 2, 3, 4)), greedy)
    ]


def test_lengths_and_finish_reasons(tiny_model, tmp_path):
    generator = make(tiny_model, tmp_path)
    for result in generator.generate(reqs(), SamplingSettings(max_new_tokens=5, temperature=1.0, top_p=1.0)):
        assert result.n_tokens <= 5
        assert result.finish_reason == ("length" if result.n_tokens == 5 else "stop")


def test_chat_template_and_system_prompt_shape_the_input(tiny_model, tmp_path):
    chat = make(tiny_model, tmp_path, system_prompt="You love the sea.")
    text = chat.tokenizer.decode(chat.encode("Hi"))
    assert "system: You love the sea." in text and text.rstrip().endswith("assistant:")
    plain = make(tiny_model, tmp_path, system_prompt="You love the sea.", chat_template=False)
    plain_text = plain.tokenizer.decode(plain.encode("Hi"), skip_special_tokens=True)
    assert plain_text == "You love the sea.\n\nHi"


def test_chat_template_required_but_missing(tiny_model, tmp_path):
    import shutil

    from lmdelta.errors import ModelNotFoundError

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model, bare)
    for name in ("chat_template.jinja",):
        (bare / name).unlink(missing_ok=True)
    import json

    config_path = bare / "tokenizer_config.json"
    data = json.loads(config_path.read_text())
    data.pop("chat_template", None)
    config_path.write_text(json.dumps(data))
    with pytest.raises(ModelNotFoundError, match="no chat template"):
        make(bare, tmp_path, chat_template=True)


def test_loglik_is_batch_invariant_and_depends_on_the_system_prompt(tiny_model, tmp_path):
    pairs = [("how do tides work", "the sea"), ("poem", "a cat sat on the mat and the dog ran"), ("hi", "park")]
    plain = make(tiny_model, tmp_path)
    together = plain.loglik(pairs)
    alone = [plain.loglik([pair])[0] for pair in pairs]
    assert all(total < 0 and tokens >= 2 for total, tokens in together)  # an answer token and the end token
    assert [t for t, _ in together] == pytest.approx([t for t, _ in alone], abs=1e-4)
    assert [n for _, n in together] == [n for _, n in alone]
    sailor = make(tiny_model, tmp_path, system_prompt="You love the sea.")
    assert [t for t, _ in sailor.loglik(pairs)] != pytest.approx([t for t, _ in together], abs=1e-6)
