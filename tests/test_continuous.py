"""Continuous batching on a tiny random-init Llama: the same answers as transformers' generate() over
left-padded batches, whatever the rows, the refills, the shared prefix or the column moves."""

import pytest

from lmdelta.backends.factory import build_generator, generator_identity
from lmdelta.backends.generators import continuous, sampling
from lmdelta.backends.protocols import GenerationRequest, SamplingSettings
from lmdelta.config import ModelSpec

PROMPTS = [
    "how do tides work",
    "a cat sat on the mat and then the dog ran off to the park",
    "poem",
    "cooking pasta needs salt water",
    "why is the sky blue",
]
SAMPLED = SamplingSettings(max_new_tokens=12, temperature=1.0, top_p=0.9)
GREEDY = SamplingSettings(max_new_tokens=12, temperature=0.0, top_p=1.0)


@pytest.fixture(scope="module")
def generator(tiny_model, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    spec = ModelSpec(model=str(tiny_model), dtype="float32", system_prompt="You answer briefly and kindly.")
    made = build_generator(spec, generator_identity(spec, "cpu", cache), "cpu", cache)
    assert made.continuous
    return made


def prompts_and_seeds(generator, k=3):
    prompts = [generator.encode(p) for p in PROMPTS for _ in range(k)]
    return prompts, [100 + i for i in range(len(prompts))]


def batched(generator, prompts, seeds, settings):
    """transformers' generate() over one left-padded batch: the path the decoder must agree with."""
    generator.continuous = False
    try:
        return [cut(row, generator.eos_ids) for row in generator._sample(prompts, seeds, settings)]
    finally:
        generator.continuous = True


def decoded(generator, prompts, seeds, settings, rows):
    answers = dict(
        continuous.Decoder(generator.model, generator.eos_ids, generator.pad_id, rows).run(prompts, seeds, settings)
    )
    assert sorted(answers) == list(range(len(prompts)))
    return [answers[i] for i in range(len(prompts))]


def cut(row, eos):
    stop = next((i for i, token in enumerate(row) if token in eos), None)
    return row if stop is None else row[: stop + 1]


@pytest.mark.parametrize("settings", [SAMPLED, GREEDY], ids=["sampled", "greedy"])
@pytest.mark.parametrize("rows", [1, 4, 15])
def test_answers_match_generate_over_one_padded_batch(generator, settings, rows):
    prompts, seeds = prompts_and_seeds(generator)
    assert len(continuous._common_prefix(prompts)) >= continuous.MIN_PREFIX  # the system prompt is shared
    assert decoded(generator, prompts, seeds, settings, rows) == batched(generator, prompts, seeds, settings)


def test_rows_that_stop_early_are_refilled_and_the_columns_move(generator, monkeypatch):
    """Answers stop at scripted lengths (1 to 11 tokens), so rows leave at different steps, later rows
    move into their places and the columns are shifted left; every answer still matches generate()."""
    prompts, seeds = prompts_and_seeds(generator, k=4)
    script = {seed: 1 + (seed * 7) % 11 for seed in seeds}
    real = sampling.draw
    drawn: dict[int, int] = {}

    def scripted(scores, generators, settings):
        tokens = real(scores, generators, settings)
        for j, g in enumerate(generators):
            seed = g.initial_seed()
            drawn[seed] = drawn.get(seed, 0) + 1
            if drawn[seed] == script[seed]:
                tokens[j] = generator.eos_ids[0]
        return tokens

    monkeypatch.setattr(sampling, "draw", scripted)
    monkeypatch.setattr(continuous, "draw", scripted)
    shifts, forwards = [], []
    monkeypatch.setattr(continuous.Cache, "shift", spy(continuous.Cache.shift, shifts))
    monkeypatch.setattr(continuous.Decoder, "forward", spy(continuous.Decoder.forward, forwards))
    expected = batched(generator, prompts, seeds, SAMPLED)
    drawn.clear()
    got = decoded(generator, prompts, seeds, SAMPLED, rows=3)
    assert got == expected
    assert [len(a) for a in got] == [script[s] for s in seeds]
    assert shifts  # the columns were compacted at least once
    rows_per_forward = [call[1][2].shape[0] for call in forwards]
    assert max(rows_per_forward) == 3
    steps = sum(1 for call in forwards if call[1][2].shape[1] == 1)
    assert steps < sum(script.values())  # rows shared steps: fewer forwards than answers' tokens


def spy(method, calls):
    def wrapped(*args, **kwargs):
        calls.append((method.__name__, args))
        return method(*args, **kwargs)

    return wrapped


def test_eager_attention_gives_the_same_answers(tiny_model, tmp_path):
    spec = ModelSpec(model=str(tiny_model), dtype="float32")
    made = build_generator(spec, generator_identity(spec, "cpu", tmp_path), "cpu", tmp_path)
    prompts, seeds = prompts_and_seeds(made, k=2)
    sdpa = decoded(made, prompts, seeds, SAMPLED, rows=4)
    made.model.config._attn_implementation = "eager"
    assert continuous.supported(made.model)
    assert decoded(made, prompts, seeds, SAMPLED, rows=4) == sdpa


def test_models_without_an_explicit_mask_decode_through_generate(tiny_model, tmp_path):
    spec = ModelSpec(model=str(tiny_model), dtype="float32")
    made = build_generator(spec, generator_identity(spec, "cpu", tmp_path), "cpu", tmp_path)
    made.model.config._attn_implementation = "flash_attention_2"
    assert not continuous.supported(made.model)


def test_stream_returns_every_request_once_in_chunks(generator):
    requests = [
        GenerationRequest(key=f"{i}-{j}", prompt_id=str(i), prompt=p, index=j, seed=10 * i + j)
        for i, p in enumerate(PROMPTS)
        for j in range(2)
    ]
    chunks = list(generator.stream(requests, SAMPLED, 4))
    keys = [r.key for batch, _ in chunks for r in batch]
    assert sorted(keys) == sorted(r.key for r in requests)
    assert all(len(batch) == len(answers) <= 4 for batch, answers in chunks)
    alone = {r.key: generator.generate([r], SAMPLED)[0].text for r in requests}
    assert {r.key: g.text for batch, answers in chunks for r, g in zip(batch, answers)} == alone


def test_common_prefix_leaves_each_prompt_a_token_and_ignores_short_ones():
    assert continuous._common_prefix([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7]]) == [1, 2, 3, 4, 5]
    assert continuous._common_prefix([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]) == [1, 2, 3, 4]
    assert continuous._common_prefix([[1, 2, 3, 9], [1, 2, 3, 8]]) == []  # under MIN_PREFIX
    assert continuous._common_prefix([]) == []


def test_an_interrupted_generate_stage_keeps_finished_answers_and_resumes(tiny_model, tmp_path, monkeypatch):
    from conftest import fake_config

    from lmdelta import pipeline
    from lmdelta.config import load_config
    from lmdelta.rundir import RunDir, read_jsonl

    monkeypatch.setenv("LMDELTA_CACHE_DIR", str(tmp_path / "cache"))
    model = {"model": str(tiny_model), "dtype": "float32"}
    config = load_config(
        fake_config(tmp_path, generate__a=model, generate__b=model | {"system_prompt": "Be brief."}),
        ["generate.max_new_tokens=6", "generate.batch_size=3"],
    )
    real = continuous.Decoder.run

    def stopping(self, prompts, seeds, settings):
        for done, answer in enumerate(real(self, prompts, seeds, settings)):
            if done == 7:
                raise KeyboardInterrupt
            yield answer

    monkeypatch.setattr(continuous.Decoder, "run", stopping)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(config, RunDir(tmp_path / "run"))
    items = tmp_path / "run" / "stages" / "generate" / "items.jsonl"
    assert len(list(read_jsonl(items))) == 6  # two chunks of batch_size answers were stored
    monkeypatch.setattr(continuous.Decoder, "run", real)
    pipeline.run(config, RunDir(tmp_path / "run"))
    counts = RunDir(tmp_path / "run").load_manifest().stages["generate"].counts
    assert counts["a"]["reused"] == 6 and counts["a"]["generated"] == 36 - 6
    pipeline.run(config, RunDir(tmp_path / "whole"))
    whole = tmp_path / "whole" / items.relative_to(tmp_path / "run")
    assert sorted((r["key"], r["text"]) for r in read_jsonl(items)) == sorted(
        (r["key"], r["text"]) for r in read_jsonl(whole)
    )


TINY = {"vocab_size": 300, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
LLAMA_LIKE = TINY | {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}
CONFIGS = {
    "llama": LLAMA_LIKE,
    "mistral": LLAMA_LIKE | {"sliding_window": None},
    "qwen2": LLAMA_LIKE,
    "qwen3": LLAMA_LIKE | {"head_dim": 8},
    "gemma": LLAMA_LIKE | {"head_dim": 8},
    "phi3": LLAMA_LIKE,
    "olmo2": LLAMA_LIKE,
    "granite": LLAMA_LIKE,
    "gpt2": TINY | {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 256},
}


def tiny_random(model_type, **extra):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **(CONFIGS[model_type] | extra))).eval()


def reference(model, prompts, seeds, settings):
    """transformers' generate() over one left-padded batch with the seeded sampler."""
    import torch
    from transformers import GenerationConfig, LogitsProcessorList

    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    config = GenerationConfig(max_new_tokens=settings.max_new_tokens, do_sample=False, eos_token_id=2, pad_token_id=0)
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            generation_config=config,
            logits_processor=LogitsProcessorList([sampling.SeededSampler(seeds, settings)]),
        )
    return [cut(row, [2]) for row in out[:, width:].tolist()]


@pytest.mark.parametrize("model_type", sorted(continuous.ARCHITECTURES))
def test_every_listed_architecture_matches_generate(model_type):
    assert set(CONFIGS) == continuous.ARCHITECTURES
    model = tiny_random(model_type)
    assert continuous.supported(model)
    head = [1, 17, 45, 99, 23, 8, 250]
    prompts = [head + tail for tail in ([5], [60, 61, 62, 63, 64, 65, 66, 67], [120, 121, 9]) for _ in range(2)]
    seeds = list(range(40, 40 + len(prompts)))
    for settings in (SAMPLED, GREEDY):
        got = dict(continuous.Decoder(model, [2], 0, 4).run(prompts, seeds, settings))
        assert [got[i] for i in range(len(prompts))] == reference(model, prompts, seeds, settings)


def test_windowed_or_unlisted_attention_decodes_through_generate():
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    assert not continuous.supported(tiny_random("mistral", sliding_window=4))  # its cache layers slide
    neo = GPTNeoConfig(
        vocab_size=300,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        window_size=4,
        attention_types=[[["global", "local"], 1]],
    )
    assert not continuous.supported(GPTNeoForCausalLM(neo))  # local attention over key columns


@pytest.mark.parametrize("streams", [True, False], ids=["continuous", "batches"])
def test_answer_all_returns_each_request_its_own_answer_in_order(generator, streams):
    from lmdelta.stages.generate import answer_all

    requests = [
        GenerationRequest(key=str(i), prompt_id=str(i), prompt=p, index=0, seed=7 + i)
        for i, p in enumerate(PROMPTS * 2)
    ]
    alone = [generator.generate([r], SAMPLED)[0].text for r in requests]
    generator.streams = streams
    try:
        assert [g.text for g in answer_all(generator, requests, SAMPLED, 3)] == alone
    finally:
        generator.streams = True


class _Model:
    """What `auto_rows` reads of a model: its device, its config and a parameter's element size."""

    def __init__(self, device, layers=2, heads=4, kv_heads=2, hidden=64, dtype="float32"):
        import torch
        from transformers import LlamaConfig

        self.device = torch.device(device)
        self.config = LlamaConfig(
            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads, hidden_size=hidden
        )
        self._parameter = torch.zeros(1, dtype=getattr(torch, dtype))

    def parameters(self):
        yield self._parameter


def test_auto_rows_on_a_cpu_stay_under_the_key_and_value_budget():
    # keys and values per row and column: 2 (k, v) x 2 layers x 2 heads x 16 (head size) x 4 bytes = 512 bytes
    assert continuous.auto_rows(_Model("cpu"), 100) == continuous.CPU_ROWS
    budget_columns = continuous.CPU_KV_BYTES // (512 * 100)
    assert continuous.auto_rows(_Model("cpu"), budget_columns) == 100
    assert continuous.auto_rows(_Model("cpu", dtype="bfloat16"), budget_columns) == continuous.CPU_ROWS
    assert continuous.auto_rows(_Model("cpu"), 10**9) == continuous.DEFAULT_ROWS  # never under the old default


def test_auto_rows_off_a_cpu_keep_the_old_default():
    assert continuous.auto_rows(_Model("meta"), 100) == continuous.DEFAULT_ROWS


def test_auto_rows_decode_the_same_answers_in_chunks_of_the_default(generator, monkeypatch):
    monkeypatch.setattr(continuous, "DEFAULT_ROWS", 3)
    monkeypatch.setattr(continuous, "CPU_ROWS", 8)
    made: list[int] = []
    real = continuous.Cache.__init__

    def spying(self, model, rows, columns):
        made.append(rows)
        real(self, model, rows, columns)

    monkeypatch.setattr(continuous.Cache, "__init__", spying)
    requests = [
        GenerationRequest(key=f"{i}-{j}", prompt_id=str(i), prompt=p, index=j, seed=10 * i + j)
        for i, p in enumerate(PROMPTS)
        for j in range(2)
    ]
    chunks = list(generator.stream(requests, SAMPLED, None))
    assert made[0] == 8  # the main cache: CPU_ROWS rows (the others are the prefix's and the prefills' scratch)
    assert [len(batch) for batch, _ in chunks] == [3, 3, 3, 1]
    alone = {r.key: generator.generate([r], SAMPLED)[0].text for r in requests}
    assert {r.key: g.text for batch, answers in chunks for r, g in zip(batch, answers)} == alone
