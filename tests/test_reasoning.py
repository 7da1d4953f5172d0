"""Two-stage decoding for reasoning models: think, close the thinking, answer from token ids."""

from lmdelta.backends.factory import build_generator, generator_identity
from lmdelta.backends.generators.reasoning import close_thinking
from lmdelta.backends.protocols import GenerationRequest, SamplingSettings
from lmdelta.backends.textformat import split_reasoning
from lmdelta.config import ModelSpec

SETTINGS = SamplingSettings(max_new_tokens=6, temperature=1.0, top_p=1.0)


def make(tiny_model, tmp_path, **reasoning):
    spec = ModelSpec(model=str(tiny_model), dtype="float32", reasoning=reasoning)
    return build_generator(spec, generator_identity(spec, "cpu", tmp_path), "cpu", tmp_path)


def requests():
    prompts = ["how do tides work", "write a short poem about the sea", "cooking pasta"]
    return [GenerationRequest(str(i), str(i), p, 0, 100 + i) for i, p in enumerate(prompts)]


def test_thinking_is_closed_and_the_answer_continues_from_token_ids(tiny_model, tmp_path):
    generator = make(tiny_model, tmp_path, start="<think>\n", end="</think>", max_tokens=5)
    seen = []
    original = generator._sample

    def recording(prompts, seeds, settings, stop_strings=None):
        seen.append((prompts, settings.max_new_tokens, stop_strings))
        return original(prompts, seeds, settings, stop_strings)

    generator._sample = recording
    results = generator.generate(requests(), SETTINGS)
    (think_inputs, think_budget, stops), (answer_inputs, answer_budget, _) = seen
    assert think_budget == 5 and stops == ["</think>"] and answer_budget == 6
    marker = generator.tokenizer("</think>", add_special_tokens=False)["input_ids"]
    for prompt, continued, result in zip(think_inputs, answer_inputs, results):
        assert generator.tokenizer.decode(prompt).endswith("assistant:<think>\n")
        assert continued[: len(prompt)] == prompt  # the prompt is never re-tokenised
        assert continued[-len(marker) :] == marker  # a random model never writes the marker: it is forced
        assert result.reasoning is not None and "</think>" not in result.reasoning
        assert result.reasoning_tokens == len(continued) - len(prompt)
        assert result.reasoning_closed is False
        assert result.n_tokens <= 6


def test_two_stage_answers_are_batch_invariant_and_seeded(tiny_model, tmp_path):
    generator = make(tiny_model, tmp_path, end="</think>", max_tokens=4)
    batch = generator.generate(requests(), SETTINGS)
    alone = [generator.generate([r], SETTINGS)[0] for r in requests()]
    assert [(g.text, g.reasoning) for g in batch] == [(g.text, g.reasoning) for g in alone]


def test_the_models_own_marker_cuts_the_thinking(tiny_model, tmp_path):
    generator = make(tiny_model, tmp_path, end="</think>", max_tokens=4)
    tokenizer = generator.tokenizer
    thinking = tokenizer("the sea is", add_special_tokens=False)["input_ids"]
    marker = tokenizer("</think>", add_special_tokens=False)["input_ids"]
    after = tokenizer(" hello", add_special_tokens=False)["input_ids"]
    assert close_thinking(generator, thinking + marker + after, "</think>") == (thinking + marker, True)
    eos = generator.eos_ids[0]
    assert close_thinking(generator, thinking + [eos] + after, "</think>") == (thinking + marker, False)


def test_reasoning_changes_the_cache_identity_only_when_on(tiny_model, tmp_path):
    plain = generator_identity(ModelSpec(model=str(tiny_model)), "cpu", tmp_path)
    thinking = generator_identity(ModelSpec(model=str(tiny_model), reasoning={"end": "</think>"}), "cpu", tmp_path)
    assert "reasoning" not in plain and thinking["reasoning"]["end"] == "</think>"


def test_split_reasoning_of_a_single_text():
    assert split_reasoning("<think>\nwaves are wind</think>\n\nTides come from the moon.", "<think>\n", "</think>") == (
        "waves are wind",
        "Tides come from the moon.",
    )
    assert split_reasoning("still thinking about it", None, "</think>") == ("still thinking about it", "")


def test_the_generate_stage_keeps_the_thinking_and_counts_forced_ends(tiny_model, tmp_path, caplog):
    import yaml
    from conftest import write_bank

    from lmdelta import pipeline
    from lmdelta.config import load_config
    from lmdelta.rundir import RunDir, read_jsonl

    bank = write_bank(tmp_path / "bank.jsonl", n_groups=2, per_group=3)
    config = {
        "prompts": {"source": str(bank)},
        "embed": {"model": "fake:hashing"},
        "generate": {
            "a": {"model": str(tiny_model), "dtype": "float32"},
            "b": {"model": str(tiny_model), "dtype": "float32", "reasoning": {"end": "</think>", "max_tokens": 3}},
            "max_new_tokens": 4,
            "samples_per_prompt": 2,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with caplog.at_level("WARNING", logger="lmdelta"):
        pipeline.run(load_config(path, ["controls.null=false"]), RunDir(tmp_path / "run"))
    items = list(read_jsonl(tmp_path / "run/stages/generate/items.jsonl"))
    b = [row for row in items if row["side"] == "b"]
    assert all("reasoning" in row and row["reasoning_closed"] is False for row in b)
    assert not any("reasoning" in row for row in items if row["side"] == "a")
    samples = list(read_jsonl(tmp_path / "run/stages/generate/samples.jsonl"))
    assert all("reasoning" not in s for s in samples)  # the analysis never sees the thinking
    counts = RunDir(tmp_path / "run").load_manifest().stages["generate"].counts["b"]
    assert counts["reasoning_forced"] == 12 and counts["reasoning_tokens_mean"] > 3
    assert "without the end marker" in caplog.text


def test_a_template_that_opens_the_thinking_is_not_opened_twice(tiny_model, tmp_path):
    from lmdelta.backends.textformat import prompt_text

    generator = make(tiny_model, tmp_path, start="<think>\n", end="</think>")
    generator.tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:<think>\n{% endif %}"
    )
    text = prompt_text(generator.spec, generator.tokenizer, "hi", chat=True)
    assert text.endswith("assistant:<think>\n") and text.count("<think>") == 1
