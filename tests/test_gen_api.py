"""The API generation backend against a scripted loopback server speaking the OpenAI wire format:
chat and text-completions requests, seeds, retries, failures, two-stage reasoning, keys, cache."""

from __future__ import annotations

import re
from typing import Any

import llm_servers
import pytest
from llm_servers import ScriptedServer, openai_error, openai_reply

from lmdelta.backends.generators.reasoning import answer_seed
from lmdelta.backends.protocols import GenerationRequest, SamplingSettings
from lmdelta.config import LLMConfig, ModelSpec
from lmdelta.errors import ConfigError, StageError
from lmdelta.llm.served import APIGenerator, ServedModels, api_seed, served_identity

ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OPENROUTER_API_KEY",
    "OPENAI_COMPATIBLE_API_KEY",
)
SETTINGS = SamplingSettings(max_new_tokens=33, temperature=0.7, top_p=0.9)
THINK = {"start": "<think>\n", "end": "</think>", "max_tokens": 50}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No real key or endpoint from the developer's shell may reach a test (or the network)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    # One wire for both OpenAI endpoints: chat completions and text completions.
    monkeypatch.setitem(llm_servers.ROUTES, "openai-any", re.compile(r"^/v1/(chat/)?completions$"))


def server(*script: tuple, responder: Any = None) -> ScriptedServer:
    return ScriptedServer("openai-any", list(script), responder=responder)


def completion_reply(text: str, *, finish_reason: str = "stop", completion_tokens: int = 4) -> dict[str, Any]:
    """A canonical 200 body of POST /v1/completions."""
    return {
        "id": "cmpl-test",
        "object": "text_completion",
        "created": 1700000000,
        "model": "qwen-test",
        "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": 9, "completion_tokens": completion_tokens, "total_tokens": 9 + completion_tokens},
    }


def echo(received) -> tuple:
    """Answers a chat request with its user message, counting words as tokens."""
    prompt = received.body["messages"][-1]["content"]
    text = f"answer to {prompt}"
    return ("json", 200, openai_reply(text, completion_tokens=len(text.split())))


def requests(*prompts: str) -> list[GenerationRequest]:
    return [
        GenerationRequest(key=f"k{i}", prompt_id=f"p{i}", prompt=p, index=i % 2, seed=(7 << 40) + 1_000_003 * (i + 1))
        for i, p in enumerate(prompts)
    ]


def generator(url: str, cache_dir, *, llm: LLMConfig | None = None, **spec: Any) -> APIGenerator:
    """A generator on the scripted server, with fast retries and one call at a time (the scripted
    responder answers the latest request, so concurrent calls could swap answers)."""
    from lmdelta.llm.limiter import ConcurrencyLimiter
    from lmdelta.llm.retry import RetryPolicy

    ref = f"openai-compatible/qwen-test@{url}/v1"
    model = ModelSpec(model=f"api:{ref}", **spec)
    llm = llm or LLMConfig(max_attempts=3)
    gen = APIGenerator(model, ref, {"backend": "api"}, llm, cache_dir)
    gen.client.limiter = ConcurrencyLimiter(1, "test")
    gen.client.retry = RetryPolicy(max_attempts=llm.max_attempts, base_delay=0.01, jitter=False)
    return gen


def test_chat_requests_carry_system_seed_and_sampling(isolated_cache):
    batch = requests("How do tides work?", "Name a colour.", "Why is the sky blue?")
    with server(responder=echo) as srv:
        gen = generator(srv.url, isolated_cache, system_prompt="Be brief.")
        out = gen.generate(batch, SETTINGS)
        gen.close()
    assert [g.text for g in out] == [f"answer to {r.prompt}" for r in batch]
    assert gen.client.ledger.entry("generate", "generator").requests == 3
    assert [g.n_tokens for g in out] == [len(g.text.split()) for g in out]
    assert all(g.finish_reason == "stop" and g.reasoning is None for g in out)
    assert len(srv.requests) == 3
    by_prompt = {rec.body["messages"][-1]["content"]: rec for rec in srv.requests}
    for request in batch:
        rec = by_prompt[request.prompt]
        assert rec.path == "/v1/chat/completions"
        body = rec.body
        assert body["model"] == "qwen-test"
        assert body["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": request.prompt},
        ]
        assert body["seed"] == request.seed % 2**31 and 0 <= body["seed"] < 2**31
        assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["max_tokens"] == 33
        assert "stop" not in body


def test_no_system_message_top_p_one_omitted_and_length_finish(isolated_cache):
    reply = openai_reply("cut sh", finish_reason="length", completion_tokens=33)
    with server(("json", 200, reply)) as srv:
        gen = generator(srv.url, isolated_cache)
        [out] = gen.generate(requests("Tell a long story."), SamplingSettings(33, 0.0, 1.0))
    body = srv.last.body
    assert body["messages"] == [{"role": "user", "content": "Tell a long story."}]
    assert "top_p" not in body and body["temperature"] == 0.0
    assert out.finish_reason == "length" and out.n_tokens == 33 and out.text == "cut sh"


def test_chat_template_off_sends_raw_text_to_completions(isolated_cache):
    with server(("json", 200, completion_reply(" Paris.", completion_tokens=2))) as srv:
        gen = generator(srv.url, isolated_cache, chat_template=False, system_prompt="You are a geographer.")
        [out] = gen.generate(requests("The capital of France is"), SETTINGS)
    assert srv.last.path == "/v1/completions"
    body = srv.last.body
    assert body["prompt"] == "You are a geographer.\n\nThe capital of France is"
    assert "messages" not in body and body["model"] == "qwen-test"
    assert body["max_tokens"] == 33 and body["seed"] == api_seed(requests("x")[0].seed)
    assert out.text == "Paris." and out.n_tokens == 2 and out.finish_reason == "stop"


def test_rate_limit_with_retry_after_is_retried(isolated_cache):
    limited = ("json", 429, openai_error(429, "slow down", type_="rate_limit_error"), {"retry-after-ms": "50"})
    with server(limited, ("json", 200, openai_reply("fine"))) as srv:
        gen = generator(srv.url, isolated_cache)
        [out] = gen.generate(requests("Hello?"), SETTINGS)
    assert out.text == "fine"
    assert len(srv.requests) == 2
    assert srv.requests[0].body == srv.requests[1].body


def test_a_server_that_keeps_failing_stops_the_stage(isolated_cache):
    boom = ("json", 500, openai_error(500, "model crashed", type_="server_error"))
    with server(boom, boom, boom, boom) as srv:
        gen = generator(srv.url, isolated_cache, llm=LLMConfig(max_attempts=2))
        with pytest.raises(StageError) as err:
            gen.generate(requests("one", "two"), SETTINGS)
    assert len(srv.requests) == 4  # two attempts per request, then give up
    assert "2 of 2 calls" in str(err.value) and "model crashed" in str(err.value)
    assert "run the same command again" in err.value.fix


def test_one_failed_call_fails_the_batch_after_the_others_finish(isolated_cache):
    def answer(received):
        prompt = received.body["messages"][-1]["content"]
        if prompt == "bad":
            return ("json", 500, openai_error(500, "worker crashed on this prompt", type_="server_error"))
        return ("json", 200, openai_reply("ok"))

    with server(responder=answer) as srv:
        gen = generator(srv.url, isolated_cache, llm=LLMConfig(max_attempts=1))
        with pytest.raises(StageError, match="1 of 3 calls"):
            gen.generate(requests("good", "bad", "also good"), SETTINGS)
        assert len(srv.requests) == 3
        # The good answers are cached: a rerun does not call the server for them.
        with pytest.raises(StageError):
            gen.generate(requests("good", "bad", "also good"), SETTINGS)
        assert len(srv.requests) == 4


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (404, "not_found"), (400, "bad_request")])
def test_a_rejected_key_or_model_stops_generation_without_sending_the_rest(isolated_cache, monkeypatch, status, kind):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-test-rejected-1111")
    rejected = ("json", status, openai_error(status, "Incorrect API key provided: sk-test-rejected-1111"))
    with server(responder=lambda received: rejected) as srv:
        gen = generator(srv.url, isolated_cache)
        with pytest.raises(StageError) as err:
            gen.generate(requests("one", "two", "three"), SETTINGS)
    assert len(srv.requests) == 1  # one call at a time: the first refusal stops the batch
    message = str(err.value)
    assert f"failed with {kind}" in message and "2 more were not sent" in message and "qwen-test" in message
    assert "OPENAI_COMPATIBLE_API_KEY" in message and "sk-test-rejected" not in message


def test_two_stage_reasoning_on_completions(isolated_cache):
    def answer(received):
        body = received.body
        if body.get("stop") == ["</think>"]:
            return ("json", 200, completion_reply("the sum of 2 and 2", completion_tokens=6))
        return ("json", 200, completion_reply(" It is 4.", completion_tokens=3))

    with server(responder=answer) as srv:
        gen = generator(srv.url, isolated_cache, chat_template=False, reasoning=THINK)
        [out] = gen.generate(requests("What is 2+2?"), SamplingSettings(20, 0.0, 1.0))
    think, final = srv.requests
    assert think.body["prompt"] == "What is 2+2?<think>\n" and think.body["max_tokens"] == 50
    assert final.body["prompt"] == "What is 2+2?<think>\nthe sum of 2 and 2</think>"
    assert final.body["max_tokens"] == 20 and "stop" not in final.body
    seed = requests("x")[0].seed
    assert think.body["seed"] == api_seed(seed) and final.body["seed"] == api_seed(answer_seed(seed))
    assert out.reasoning == "the sum of 2 and 2" and out.reasoning_tokens == 6
    assert out.text == "It is 4." and out.n_tokens == 3 and out.finish_reason == "stop"


def test_reasoning_over_chat_is_one_call_split_at_the_marker(isolated_cache):
    replies = [
        ("json", 200, openai_reply("<think>carry the one</think>\n\nIt is 4.", completion_tokens=10)),
        ("json", 200, openai_reply("It is 4.", completion_tokens=4)),
        ("json", 200, openai_reply("<think>still going", finish_reason="length", completion_tokens=70)),
        (
            "json",
            200,
            openai_reply("Paris is the capital, and it has a long", finish_reason="length", completion_tokens=70),
        ),
    ]
    with server(*replies) as srv:
        gen = generator(srv.url, isolated_cache, reasoning=THINK)
        split, plain, unfinished, truncated = gen.generate(requests("a", "b", "c", "d"), SamplingSettings(20, 0.0, 1.0))
    assert {rec.body["max_tokens"] for rec in srv.requests} == {70}
    assert "stop" not in srv.requests[0].body
    assert (split.reasoning, split.text) == ("carry the one", "It is 4.")
    assert split.n_tokens + split.reasoning_tokens == 10 and split.reasoning_tokens > split.n_tokens
    # No marker and a natural stop: the server returned the answer alone (a reasoning parser).
    assert (plain.reasoning, plain.text, plain.n_tokens) == (None, "It is 4.", 4)
    # Cut off while thinking: all reasoning, no answer.
    assert (unfinished.reasoning, unfinished.text, unfinished.finish_reason) == ("still going", "", "length")
    # Cut off while answering (the server parsed the thinking out): a truncated answer, not thinking.
    assert (truncated.reasoning, truncated.text, truncated.finish_reason) == (
        None,
        "Paris is the capital, and it has a long",
        "length",
    )


def test_seed_and_answer_are_the_same_across_reruns(isolated_cache):
    batch = requests("Same prompt every time.")
    with server(("json", 200, openai_reply("first answer", completion_tokens=5))) as srv:
        first = generator(srv.url, isolated_cache).generate(batch, SETTINGS)
        # A fresh generator (a rerun) sends the same request: the cache answers, server untouched.
        second = generator(srv.url, isolated_cache).generate(batch, SETTINGS)
    assert len(srv.requests) == 1
    assert first == second and second[0].n_tokens == 5
    assert srv.last.body["seed"] == api_seed(batch[0].seed)
    assert api_seed(batch[0].seed) == api_seed(batch[0].seed) and api_seed(-3) == 2**31 - 3


def test_served_identity_names_provider_url_and_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-secret-value-1234")
    ref = "openai-compatible/qwen-test@http://127.0.0.1:9/v1"
    chat = served_identity(ref, ModelSpec(model=f"api:{ref}"), LLMConfig())
    raw = served_identity(ref, ModelSpec(model=f"api:{ref}", chat_template=False), None)
    assert chat == {
        "provider": "openai-compatible",
        "model": "qwen-test",
        "base_url": "http://127.0.0.1:9/v1",
        "endpoint": "chat",
    }
    assert raw["endpoint"] == "completions" and raw["base_url"] == chat["base_url"]
    assert "sk-secret" not in repr(chat) + repr(raw)


def test_served_identity_holds_extra_headers_but_no_credential(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-secret-value-1234")
    ref = "openai-compatible/qwen-test@http://127.0.0.1:9/v1"
    headers = {"X-Variant": "lora-7", "Authorization": "Bearer sk-secret-value-1234"}
    for chat_template in (None, False):
        spec = ModelSpec(model=f"api:{ref}", chat_template=chat_template, backend_args={"headers": headers})
        identity = served_identity(ref, spec, LLMConfig())
        assert identity["headers"] == {"x-variant": "lora-7"} and "sk-secret" not in repr(identity)


@pytest.mark.parametrize("chat_template", [None, False])
def test_missing_key_fails_in_served_identity(chat_template):
    spec = ModelSpec(model="api:openai/gpt-4o-mini", chat_template=chat_template)
    with pytest.raises(ConfigError, match="No API key for openai") as err:
        served_identity("openai/gpt-4o-mini", spec, LLMConfig())
    assert "OPENAI_API_KEY" in str(err.value)


def test_key_file_from_llm_config_is_used(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("openai: sk-from-file-0000\n")
    key_file.chmod(0o600)
    identity = served_identity(
        "openai/gpt-4o-mini", ModelSpec(model="api:openai/gpt-4o-mini"), LLMConfig(key_file=str(key_file))
    )
    assert identity["provider"] == "openai" and "sk-from-file" not in repr(identity)


def test_completions_only_for_openai_style_providers(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    spec = ModelSpec(model="api:anthropic/claude-test", chat_template=False)
    with pytest.raises(ConfigError, match="no text-completions endpoint") as err:
        served_identity("anthropic/claude-test", spec, LLMConfig())
    assert "chat_template" in err.value.fix


def test_adapter_and_quantization_are_refused():
    ref = "openai-compatible/qwen-test@http://127.0.0.1:9/v1"
    with pytest.raises(ConfigError, match="adapter"):
        served_identity(ref, ModelSpec(model=f"api:{ref}", adapter="/some/adapter"), None)
    with pytest.raises(ConfigError, match="quantization"):
        served_identity(ref, ModelSpec(model=f"api:{ref}", quantization="4bit"), None)


def test_factory_builds_the_api_generator(isolated_cache):
    from lmdelta.backends.factory import build_generator, generator_identity

    with server(("json", 200, openai_reply("via the factory"))) as srv:
        spec = ModelSpec(model=f"api:openai-compatible/qwen-test@{srv.url}/v1")
        identity = generator_identity(spec, "cpu", isolated_cache, ServedModels(LLMConfig()))
        assert identity["backend"] == "api" and identity["served"]["endpoint"] == "chat"
        gen = build_generator(spec, identity, "cpu", isolated_cache, ServedModels(LLMConfig()))
        assert isinstance(gen, APIGenerator) and gen.prompt_length(requests("abcd")[0]) == 4
        [out] = gen.generate(requests("hi"), SETTINGS)
        gen.close()
    assert out.text == "via the factory"


def test_a_served_identity_names_the_model_canonically_and_needs_the_llm_layer(isolated_cache, monkeypatch):
    """backends' registry only recognises `api:`; the LLM layer reads the name, so the identity (and
    every cached answer's key) is the same however the provider is spelt."""
    from lmdelta.backends.factory import generator_identity
    from lmdelta.backends.registry import parse_model
    from lmdelta.errors import ModelNotFoundError

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234")
    served = ServedModels(LLMConfig())
    spelt = generator_identity(ModelSpec(model="api:OpenAI/gpt-4o-mini "), "cpu", isolated_cache, served)
    plain = generator_identity(ModelSpec(model="api:openai/gpt-4o-mini"), "cpu", isolated_cache, served)
    assert spelt == plain and plain["model"] == "api:openai/gpt-4o-mini" and plain["weights"] == "served"
    assert parse_model("openai-compatible/q@http://h:1/v1", "generator").kind == "api"
    with pytest.raises(ModelNotFoundError, match="needs no API"):
        generator_identity(ModelSpec(model="api:local/x"), "cpu", isolated_cache, served)
    with pytest.raises(ConfigError, match="served models cannot be used here"):
        generator_identity(ModelSpec(model="api:openai/gpt-4o-mini"), "cpu", isolated_cache)


def test_a_served_model_runs_through_the_pipeline_and_its_spending_is_counted(tmp_path, monkeypatch):
    """Side b served over HTTP (concurrent calls), side a local: answers, usage in the manifest, resume."""
    import json as jsonlib

    from conftest import fake_config

    from lmdelta import pipeline
    from lmdelta.config import load_config
    from lmdelta.rundir import RunDir, read_jsonl

    def sea(received):
        prompt = received.body["messages"][-1]["content"]
        text = f"The ocean says: {prompt.lower()} waves and tides"
        return ("json", 200, openai_reply(text, completion_tokens=len(text.split())))

    with server(responder=sea) as running:
        model = f"openai-compatible/served-model@{running.url}/v1"
        prices = jsonlib.dumps({"openai-compatible/served-model": {"input": 1.0, "output": 2.0}})
        config = load_config(
            fake_config(tmp_path, per_group=8),
            [f"generate.b.model={model}", "generate.b.backend_args={}", f"llm.prices={prices}", "controls.null=false"],
        )
        pipeline.run(config, RunDir(tmp_path / "run"))
        calls = len(running.requests)
        assert calls == 3 * 8 * 2  # every (prompt, sample) of side b, once
        samples = list(read_jsonl(tmp_path / "run/stages/generate/samples.jsonl"))
        b = [s for s in samples if s["side"] == "b"]
        assert len(b) == calls and all(s["text"].startswith("The ocean says: question") for s in b)
        usage = RunDir(tmp_path / "run").load_manifest().llm_usage
        assert usage["by_stage"]["generate"]["generator"]["calls"] == calls and usage["cost_usd"] > 0
        pipeline.run(config, RunDir(tmp_path / "run"))
        assert len(running.requests) == calls
        rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
        assert any(r["validated"] and "ocean" in r["description"] for r in rows)
