"""The vLLM generation backend without vLLM: a fake `vllm` module records what the generator asks
of the engine (engine arguments, token-id prompts, one SamplingParams per request) and answers
like vLLM's RequestOutput. A real-GPU smoke test runs with --run-gpu where vLLM is installed."""

from __future__ import annotations

import random
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lmdelta.backends.generators.reasoning import answer_seed
from lmdelta.backends.protocols import GenerationRequest, SamplingSettings
from lmdelta.config import ModelSpec
from lmdelta.errors import ConfigError, DependencyError

EOS = 2
SETTINGS = SamplingSettings(max_new_tokens=12, temperature=0.8, top_p=0.9)
IDENTITY = {"backend": "vllm", "dtype": "bfloat16"}


@dataclass
class CompletionOutput:
    text: str
    token_ids: list[int]
    finish_reason: str


@dataclass
class RequestOutput:
    outputs: list[CompletionOutput]


class SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.__dict__.update(kwargs)


def seeded_answer(prompt_ids: list[int], params: SamplingParams) -> tuple[list[int], str]:
    """Up to five tokens drawn from the request's seed, then EOS (or cut off at max_tokens)."""
    rng = random.Random(params.seed)
    tokens = [rng.randrange(4, 300) for _ in range(5)]
    if len(tokens) >= params.max_tokens:
        return tokens[: params.max_tokens], "length"
    return tokens + [EOS], "stop"


@dataclass
class Engine:
    """What the fake vllm.LLM saw, shared with the test."""

    responder: Callable[[list[int], SamplingParams], tuple[list[int], str]] = seeded_answer
    tokenizer: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[list[list[int]], list[SamplingParams]]] = field(default_factory=list)


@pytest.fixture
def engine(monkeypatch) -> Engine:
    """Installs a fake `vllm` module in sys.modules and returns its recorder."""
    state = Engine()

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            state.kwargs = kwargs

        def get_tokenizer(self):
            from transformers import AutoTokenizer

            if state.tokenizer is None:
                state.tokenizer = AutoTokenizer.from_pretrained(state.kwargs["model"])
            return state.tokenizer

        def generate(self, prompts, params, use_tqdm=True):
            assert isinstance(params, list) and len(params) == len(prompts)
            ids = [list(p["prompt_token_ids"]) for p in prompts]
            state.calls.append((ids, params))
            out = []
            for prompt, sampling in zip(ids, params):
                tokens, reason = state.responder(prompt, sampling)
                text = self.get_tokenizer().decode(tokens, skip_special_tokens=True)
                out.append(RequestOutput([CompletionOutput(text, tokens, reason)]))
            return out

    module = types.ModuleType("vllm")
    module.LLM = LLM
    module.SamplingParams = SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    return state


def requests(*prompts: str) -> list[GenerationRequest]:
    return [
        GenerationRequest(key=f"k{i}", prompt_id=f"p{i}", prompt=p, index=0, seed=(5 << 50) + 7919 * i)
        for i, p in enumerate(prompts)
    ]


def build(folder: Path, **spec: Any):
    from lmdelta.backends.generators.vllm import VLLMGenerator

    return VLLMGenerator(ModelSpec(model=f"vllm:{folder}", **spec), str(folder), dict(IDENTITY))


def test_engine_arguments(engine, tiny_model):
    build(tiny_model, revision="abc123", backend_args={"gpu_memory_utilization": 0.5, "enforce_eager": True})
    assert engine.kwargs == {
        "model": str(tiny_model),
        "revision": "abc123",
        "tokenizer_revision": "abc123",
        "trust_remote_code": False,
        "dtype": "bfloat16",
        "seed": 0,
        "gpu_memory_utilization": 0.5,
        "enforce_eager": True,
    }


def test_quantization_maps_to_bitsandbytes_in_four_bit_only(engine, tiny_model):
    build(tiny_model, quantization="4bit", trust_remote_code=True)
    assert engine.kwargs["quantization"] == "bitsandbytes" and engine.kwargs["trust_remote_code"] is True
    with pytest.raises(ConfigError, match="4-bit only"):
        build(tiny_model, quantization="8bit")


def test_backend_args_cannot_override_config_fields(engine, tiny_model):
    with pytest.raises(ConfigError, match="dtype") as err:
        build(tiny_model, backend_args={"dtype": "float16"})
    assert "fields" in err.value.fix


def test_adapter_is_refused(engine, tiny_model):
    with pytest.raises(ConfigError, match="adapters"):
        build(tiny_model, adapter=str(tiny_model))


def test_one_seeded_sampling_params_per_request(engine, tiny_model):
    batch = requests("how do tides work", "write a poem", "cooking pasta")
    out = build(tiny_model).generate(batch, SETTINGS)
    [(_, params)] = engine.calls
    assert [p.seed for p in params] == [r.seed % 2**31 for r in batch]
    assert len({p.seed for p in params}) == 3 and all(0 <= p.seed < 2**31 for p in params)
    for p in params:
        assert (p.temperature, p.top_p, p.max_tokens, p.stop_token_ids) == (0.8, 0.9, 12, [EOS])
        assert "stop" not in p.kwargs
    assert all(g.finish_reason == "stop" and g.n_tokens == 5 and g.text for g in out)


def test_an_answer_does_not_depend_on_its_batch(engine, tiny_model):
    gen = build(tiny_model)
    batch = requests("how do tides work", "write a poem", "cooking pasta")
    together = gen.generate(batch, SETTINGS)
    alone = gen.generate(batch[1:2], SETTINGS)
    assert together[1] == alone[0]


def test_greedy_at_temperature_zero(engine, tiny_model):
    build(tiny_model).generate(requests("hello"), SamplingSettings(12, 0.0, 0.5))
    [(_, [params])] = engine.calls
    assert params.temperature == 0.0 and params.top_p == 1.0


def test_prompts_are_token_ids_identical_to_the_transformers_backend(engine, tiny_model):
    from lmdelta.backends.generators.hf import HFGenerator

    prompt = "how do tides work in the ocean"
    for spec in ({}, {"system_prompt": "be brief"}, {"chat_template": False, "system_prompt": "be brief"}):
        engine.calls.clear()
        gen = build(tiny_model, **spec)
        gen.generate(requests(prompt), SETTINGS)
        hf = HFGenerator(ModelSpec(model=str(tiny_model), **spec), str(tiny_model), {"dtype": "float32"}, "cpu")
        [([sent], _)] = engine.calls
        assert sent == hf.encode(prompt)
        assert gen.prompt_length(requests(prompt)[0]) == len(sent)
    chat = engine.tokenizer.decode(build(tiny_model).encode(prompt))
    assert chat == f"<s>user: {prompt}\nassistant:"


def test_decoding_like_the_transformers_backend(engine, tiny_model):
    tokenizer_ids = {}

    def respond(prompt, params):
        words = engine.tokenizer(" the cat sat", add_special_tokens=False)["input_ids"]
        tokenizer_ids["words"] = words
        if params.seed % 2:
            return words + [EOS], "stop"
        return words, "length"

    engine.responder = respond
    batch = [GenerationRequest("k0", "p0", "one", 0, seed=2), GenerationRequest("k1", "p1", "two", 0, seed=3)]
    cut, stopped = build(tiny_model).generate(batch, SETTINGS)
    assert cut.text == stopped.text == "the cat sat"
    assert cut.n_tokens == stopped.n_tokens == len(tokenizer_ids["words"])
    assert (cut.finish_reason, stopped.finish_reason) == ("length", "stop")


THINK = {"start": "<think>", "end": "</think>", "max_tokens": 40}


def two_stage_responder(engine: Engine, thought: str, tail: str = "", cut: bool = False):
    """Stage 1 thinks `thought`, writes the end marker (unless `cut`) and then `tail`; stage 2 answers."""

    def ids(text: str) -> list[int]:
        return engine.tokenizer(text, add_special_tokens=False)["input_ids"]

    def respond(prompt, params):
        if params.kwargs.get("stop") == ["</think>"]:
            if cut:
                return ids(thought), "length"
            return ids(thought) + ids("</think>") + (ids(tail) if tail else []), "stop"
        return ids(" the answer") + [EOS], "stop"

    return respond


@pytest.mark.parametrize("tail", ["", " and more"])
def test_two_stage_prompt_is_prompt_thinking_and_end_marker_ids(engine, tiny_model, tail):
    engine.responder = two_stage_responder(engine, " the cat sat on the mat", tail)
    gen = build(tiny_model, reasoning=THINK)
    [out] = gen.generate(requests("how do tides work"), SETTINGS)
    (think_prompts, think_params), (answer_prompts, answer_params) = engine.calls
    head = gen.encode("how do tides work")
    assert engine.tokenizer.decode(head).endswith("assistant:<think>")
    thought = engine.tokenizer(" the cat sat on the mat", add_special_tokens=False)["input_ids"]
    end = engine.tokenizer("</think>", add_special_tokens=False)["input_ids"]
    assert think_prompts == [head] and answer_prompts == [head + thought + end]
    assert think_params[0].max_tokens == 40 and think_params[0].stop == ["</think>"]
    assert think_params[0].skip_special_tokens is False and think_params[0].stop_token_ids == [EOS]
    assert answer_params[0].max_tokens == 12 and "stop" not in answer_params[0].kwargs
    seed = requests("x")[0].seed
    assert think_params[0].seed == seed % 2**31 and answer_params[0].seed == answer_seed(seed) % 2**31
    assert out.reasoning == "the cat sat on the mat" and out.reasoning_tokens == len(thought) + len(end)
    assert out.text == "the answer" and out.finish_reason == "stop"


def test_thinking_cut_at_its_budget_still_gets_the_marker(engine, tiny_model):
    engine.responder = two_stage_responder(engine, " the dog ran to the park", cut=True)
    gen = build(tiny_model, reasoning=THINK)
    [out] = gen.generate(requests("hello"), SETTINGS)
    thought = engine.tokenizer(" the dog ran to the park", add_special_tokens=False)["input_ids"]
    end = engine.tokenizer("</think>", add_special_tokens=False)["input_ids"]
    assert engine.calls[1][0] == [gen.encode("hello") + thought + end]
    assert out.reasoning == "the dog ran to the park" and out.text == "the answer"


def test_a_special_token_marker_is_kept_as_its_token(engine, tiny_model):
    from transformers import AutoTokenizer

    engine.tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    engine.tokenizer.add_special_tokens({"additional_special_tokens": ["</think>"]})
    end_id = engine.tokenizer.convert_tokens_to_ids("</think>")
    engine.responder = two_stage_responder(engine, " the cat sat")
    gen = build(tiny_model, reasoning=THINK)
    [out] = gen.generate(requests("hello"), SETTINGS)
    (_, [think]), ([answer_prompt], _) = engine.calls
    assert think.stop_token_ids == [EOS, end_id]
    thought = engine.tokenizer(" the cat sat", add_special_tokens=False)["input_ids"]
    # The decoded thinking drops special tokens; its ids must not, or the marker is lost.
    assert answer_prompt == gen.encode("hello") + thought + [end_id]
    assert out.reasoning == "the cat sat" and out.reasoning_tokens == len(thought) + 1


def test_missing_vllm_is_a_dependency_error(monkeypatch, tiny_model):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(DependencyError, match="needs vLLM") as err:
        build(tiny_model)
    assert "lmdelta[vllm]" in err.value.fix and "CUDA" in err.value.fix


def test_importing_the_backend_and_factory_does_not_import_vllm():
    code = (
        "import sys, lmdelta.backends.generators.vllm, lmdelta.backends.factory; "
        "assert 'vllm' not in sys.modules, 'vllm was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_factory_builds_the_vllm_generator(engine, tiny_model, isolated_cache):
    from lmdelta.backends.factory import build_generator
    from lmdelta.backends.generators.vllm import VLLMGenerator

    spec = ModelSpec(model=f"vllm:{tiny_model}")
    gen = build_generator(spec, dict(IDENTITY), "cuda", isolated_cache)
    assert isinstance(gen, VLLMGenerator) and engine.kwargs["model"] == str(tiny_model)
    gen.close()
    assert gen.llm is None


GPU_ARGS = {"gpu_memory_utilization": 0.2, "enforce_eager": True, "max_model_len": 256}


def gpu_tiny_model(tmp_path: Path) -> Path:
    """A tiny model folder vLLM can serve, on a machine with vLLM and a CUDA GPU (else the test is skipped)."""
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from conftest import build_tiny_model

    return build_tiny_model(tmp_path / "tiny", hidden=256)  # head size 64, which vLLM's kernels support


@pytest.mark.gpu
def test_real_vllm_generation(tmp_path):
    from lmdelta.backends.generators.vllm import VLLMGenerator

    folder = gpu_tiny_model(tmp_path)
    spec = ModelSpec(model=f"vllm:{folder}", backend_args=GPU_ARGS)
    gen = VLLMGenerator(spec, str(folder), {"dtype": "bfloat16"})
    try:
        batch = requests("how do tides work", "write a short poem")
        first = gen.generate(batch, SamplingSettings(8, 1.0, 1.0))
        again = gen.generate(batch, SamplingSettings(8, 1.0, 1.0))
    finally:
        gen.close()
    assert len(first) == 2 and all(0 < g.n_tokens <= 8 for g in first)
    assert again == first  # seeded per request: a rerun reproduces every answer
