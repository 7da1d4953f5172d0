"""Provider adapters against scripted loopback servers (through the real SDKs), model-string
parsing and keys, and the local chat model on a tiny random-init Llama."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from llm_servers import (
    anthropic_error,
    anthropic_reply,
    anthropic_server,
    gemini_error,
    gemini_reply,
    gemini_server,
    openai_error,
    openai_reply,
    openai_server,
)

from lmdelta.config import LLMConfig
from lmdelta.errors import ConfigError, DependencyError
from lmdelta.llm.cache import cache_key
from lmdelta.llm.client import ChatClient
from lmdelta.llm.providers import build_provider, parse_model_string, retry_after_seconds
from lmdelta.llm.providers.openai_completions import build_completions_provider
from lmdelta.llm.session import make_client
from lmdelta.llm.types import ChatRequest, Message, ProviderError

KEY = "sk-test-SECRET-4f9c2a77e1"
SHORT = 0.3  # client timeout for the timeout cases (seconds)
ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_AUTH_TOKEN",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "OPENROUTER_API_KEY",
    "OPENAI_COMPATIBLE_API_KEY",
)

REQUEST = ChatRequest(
    messages=(Message("system", "You are terse."), Message("user", "Say hi.")),
    max_tokens=77,
    temperature=0.0,
    stop=("END",),
    seed=5,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No real key or endpoint from the developer's shell may reach a test (or the network)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def run(coroutine):
    return asyncio.run(coroutine)


async def call(provider, request: ChatRequest = REQUEST):
    try:
        return await provider.complete(request)
    finally:
        await provider.aclose()


def failure(provider, request: ChatRequest = REQUEST) -> ProviderError:
    with pytest.raises(ProviderError) as err:
        run(call(provider, request))
    return err.value


# ---- the five HTTP providers, described once ----


@dataclass
class Wire:
    provider: str
    server: Callable[..., Any]
    reply: Callable[..., dict]
    error: Callable[[int, str], dict]
    build: Callable[[Any, str, float], Any]  # (monkeypatch, server url, timeout) -> provider
    key_header: Callable[[dict[str, str]], str]
    check_body: Callable[[Any], None]


def _openai_body(received) -> None:
    body = received.body
    assert received.path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi."}]
    assert body["max_tokens"] == 77 and "max_completion_tokens" not in body
    assert body["temperature"] == 0.0 and body["stop"] == ["END"] and body["seed"] == 5
    assert "logprobs" not in body


def _anthropic_body(received) -> None:
    body = received.body
    assert body["model"] == "claude-test"
    assert body["system"] == "You are terse."
    assert body["messages"] == [{"role": "user", "content": "Say hi."}]
    assert body["max_tokens"] == 77 and body["stop_sequences"] == ["END"]
    # API version 2026-10-21 answers 400 to any sampling parameter, so none is sent.
    assert "temperature" not in body and "top_p" not in body
    from anthropic._constants import ANTHROPIC_API_VERSION

    assert received.headers["anthropic-version"] == ANTHROPIC_API_VERSION >= "2026-10-21"


def _gemini_body(received) -> None:
    body = received.body
    assert received.path == "/v1beta/models/gemini-test:generateContent"
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Say hi."}]}]
    config = body["generationConfig"]
    assert config["maxOutputTokens"] == 77 and config["temperature"] == 0.0
    assert config["stopSequences"] == ["END"] and config["seed"] == 5
    assert "responseLogprobs" not in config


def _openai_like(provider: str, model_string: str, env: str, via: str) -> Wire:
    def build(monkeypatch, url, timeout):
        monkeypatch.setenv(env, KEY)
        args = {"backend_args": {"timeout": timeout}}
        if via == "env":
            monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
            return build_provider(model_string, **args)
        if via == "kwarg":
            return build_provider(model_string, base_url=f"{url}/v1", **args)
        return build_provider(model_string.format(url=url), **args)

    def body(received):
        _openai_body(received)
        assert received.body["model"] == model_string.split("/", 1)[1].split("@")[0]

    return Wire(
        provider,
        openai_server,
        openai_reply,
        lambda status, message: openai_error(status, message),
        build,
        lambda headers: headers["authorization"],
        body,
    )


def _anthropic_build(monkeypatch, url, timeout):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return build_provider("anthropic/claude-test", base_url=url, backend_args={"timeout": timeout})


def _gemini_build(monkeypatch, url, timeout):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    return build_provider("gemini/gemini-test", base_url=url, backend_args={"timeout": timeout})


ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}

WIRES = {
    "openai": _openai_like("openai", "openai/gpt-test", "OPENAI_API_KEY", via="env"),
    "openrouter": _openai_like("openrouter", "openrouter/meta/llama-test", "OPENROUTER_API_KEY", via="kwarg"),
    "openai-compatible": _openai_like(
        "openai-compatible", "openai-compatible/qwen-test@{url}/v1", "OPENAI_COMPATIBLE_API_KEY", via="string"
    ),
    "anthropic": Wire(
        "anthropic",
        anthropic_server,
        anthropic_reply,
        lambda status, message: anthropic_error(ANTHROPIC_TYPES[status], message),
        _anthropic_build,
        lambda h: h.get("x-api-key") or h["authorization"],
        _anthropic_body,
    ),
    "gemini": Wire(
        "gemini",
        gemini_server,
        gemini_reply,
        lambda status, message: gemini_error(status, GEMINI_STATUS[status], message),
        _gemini_build,
        lambda headers: headers["x-goog-api-key"],
        _gemini_body,
    ),
}
ALL = pytest.mark.parametrize("wire", list(WIRES.values()), ids=list(WIRES))


def _assert_no_key(provider, *texts: str) -> None:
    for text in (repr(provider), str(provider.identity()), *texts):
        assert KEY not in text


@ALL
def test_answer_with_usage_and_request_translation(wire, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with wire.server(("json", 200, wire.reply("Hi there."))) as server:
        provider = wire.build(monkeypatch, server.url, 5.0)
        reply = run(call(provider))
    assert reply.text == "Hi there." and reply.finish_reason == "stop"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.logprobs is None and reply.model
    wire.check_body(server.last)
    assert KEY in wire.key_header(server.last.headers)  # sent where the vendor expects it …
    _assert_no_key(provider, caplog.text)  # … and nowhere else
    assert provider.identity()["provider"] == wire.provider


@ALL
def test_provider_works_again_after_aclose_in_a_new_event_loop(wire, monkeypatch):
    # llm.client closes a provider when its event loop ends and calls it again from the next one.
    with wire.server(("json", 200, wire.reply("one")), ("json", 200, wire.reply("two"))) as server:
        provider = wire.build(monkeypatch, server.url, 5.0)
        assert run(call(provider)).text == "one"
        assert run(call(provider)).text == "two"


@ALL
def test_rate_limit_carries_retry_after(wire, monkeypatch):
    with wire.server(("json", 429, wire.error(429, "slow down"), {"retry-after": "7"})) as server:
        err = failure(wire.build(monkeypatch, server.url, 5.0))
    assert err.kind == "rate_limit" and err.retry_after == 7 and err.status == 429 and err.retryable


@ALL
def test_server_error_is_transient(wire, monkeypatch):
    with wire.server(("json", 500, wire.error(500, "boom"))) as server:
        err = failure(wire.build(monkeypatch, server.url, 5.0))
    assert err.kind == "transient" and err.status == 500 and "boom" in err.message


@ALL
def test_slow_server_is_a_timeout(wire, monkeypatch):
    with wire.server(("delay", 3.0), ("json", 200, wire.reply())) as server:
        err = failure(wire.build(monkeypatch, server.url, SHORT))
    assert err.kind == "timeout" and err.retryable
    assert len(server.requests) == 1  # the SDK did not retry on its own


@ALL
def test_malformed_json_is_transient(wire, monkeypatch):
    with wire.server(("raw", 200, b'{"id": "x", "choices": [{"mess')) as server:
        err = failure(wire.build(monkeypatch, server.url, 5.0))
    assert err.kind == "transient"


@ALL
def test_bad_key_is_auth_and_the_key_is_redacted(wire, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    status = 400 if wire.provider == "gemini" else 401
    body = wire.error(status, f"Incorrect API key provided: {KEY}.")
    if wire.provider == "gemini":  # Gemini answers a bad key with 400 + reason API_KEY_INVALID
        body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    with wire.server(("json", status, body)) as server:
        provider = wire.build(monkeypatch, server.url, 5.0)
        err = failure(provider)
    assert err.kind == "auth" and not err.retryable
    assert "[redacted]" in err.message
    _assert_no_key(provider, err.message, str(err), repr(err.args), caplog.text)


def test_openai_logprobs_and_served_model(monkeypatch):
    alternatives = [{"Hi": -0.1, "Hello": -2.5}, {".": -0.01, "!": -4.6}]
    request = ChatRequest(messages=(Message("user", "Say hi."),), logprobs=2)
    with openai_server(("json", 200, openai_reply("Hi.", logprobs=alternatives, model="gpt-test-2025-01"))) as server:
        reply = run(call(WIRES["openai"].build(monkeypatch, server.url, 5.0), request))
    assert reply.logprobs == alternatives and reply.model == "gpt-test-2025-01"
    assert server.last.body["logprobs"] is True and server.last.body["top_logprobs"] == 2


def test_gemini_logprobs(monkeypatch):
    alternatives = [{"Hi": -0.2, "Hey": -1.9}]
    request = ChatRequest(messages=(Message("user", "Say hi."),), logprobs=2)
    with gemini_server(("json", 200, gemini_reply("Hi", logprobs=alternatives))) as server:
        reply = run(call(_gemini_build(monkeypatch, server.url, 5.0), request))
    assert reply.logprobs == alternatives
    config = server.last.body["generationConfig"]
    assert config["responseLogprobs"] is True and config["logprobs"] == 2


def test_openai_max_completion_tokens_for_openai_itself(monkeypatch):
    from lmdelta.llm.providers.openai_chat import OpenAIChat

    assert OpenAIChat("gpt-test", api_key=KEY)._params(REQUEST)["max_completion_tokens"] == 77
    with openai_server(("json", 200, openai_reply())) as server:
        provider = OpenAIChat(
            "gpt-test", api_key=KEY, base_url=f"{server.url}/v1", max_tokens_field="max_completion_tokens"
        )
        run(call(provider))
    assert server.last.body["max_completion_tokens"] == 77 and "max_tokens" not in server.last.body


@pytest.mark.parametrize(
    "wire, step",
    [
        (
            "openai",
            (
                "json",
                400,
                openai_error(
                    400, "Your request was rejected as a result of our safety system.", code="content_policy_violation"
                ),
            ),
        ),
        (
            "anthropic",
            ("json", 400, anthropic_error("invalid_request_error", "Output blocked by content filtering policy")),
        ),
        ("gemini", ("json", 400, gemini_error(400, "INVALID_ARGUMENT", "Request blocked by content policy"))),
    ],
)
def test_content_policy_rejection_is_content_filter(wire, step, monkeypatch):
    with WIRES[wire].server(step) as server:
        err = failure(WIRES[wire].build(monkeypatch, server.url, 5.0))
    assert err.kind == "content_filter" and not err.retryable


@pytest.mark.parametrize(
    "wire, body",
    [
        ("openai", openai_reply("", finish_reason="content_filter")),
        ("anthropic", anthropic_reply("", stop_reason="refusal")),
        ("gemini", gemini_reply("", finish_reason="SAFETY")),
        ("gemini", {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 4}}),
    ],
)
def test_filtered_answer_has_content_filter_finish(wire, body, monkeypatch):
    with WIRES[wire].server(("json", 200, body)) as server:
        reply = run(call(WIRES[wire].build(monkeypatch, server.url, 5.0)))
    assert reply.finish_reason == "content_filter" and reply.text == ""


@pytest.mark.parametrize(
    "wire, body, finish",
    [
        ("openai", openai_reply(finish_reason="length"), "length"),
        ("anthropic", anthropic_reply(stop_reason="max_tokens"), "length"),
        ("anthropic", anthropic_reply(stop_reason="stop_sequence"), "stop"),
        ("gemini", gemini_reply(finish_reason="MAX_TOKENS"), "length"),
    ],
)
def test_length_and_stop_finish(wire, body, finish, monkeypatch):
    with WIRES[wire].server(("json", 200, body)) as server:
        assert run(call(WIRES[wire].build(monkeypatch, server.url, 5.0))).finish_reason == finish


def test_more_error_kinds(monkeypatch):
    with anthropic_server(("json", 529, anthropic_error("overloaded_error", "busy"), {"retry-after": "2"})) as server:
        err = failure(_anthropic_build(monkeypatch, server.url, 5.0))
    assert err.kind == "transient" and err.retry_after == 2
    retry_info = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]
    with gemini_server(("json", 429, gemini_error(429, "RESOURCE_EXHAUSTED", "quota", retry_info))) as server:
        err = failure(_gemini_build(monkeypatch, server.url, 5.0))
    assert err.kind == "rate_limit" and err.retry_after == 12
    with openai_server(("json", 404, openai_error(404, "The model does not exist"))) as server:
        err = failure(WIRES["openai"].build(monkeypatch, server.url, 5.0))
    assert err.kind == "not_found"
    with openai_server(("json", 400, openai_error(400, "max_tokens is too large"))) as server:
        err = failure(WIRES["openai"].build(monkeypatch, server.url, 5.0))
    assert err.kind == "bad_request"


def test_retry_after_forms():
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds({"Retry-After": later}) <= 30
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "soon"}) is None and retry_after_seconds({}) is None


def test_scripted_server_fails_loudly_when_its_script_runs_out(monkeypatch):
    server = openai_server()
    with server:
        err = failure(WIRES["openai"].build(monkeypatch, server.url, 5.0))
        assert err.status == 599
        with pytest.raises(AssertionError, match="script ran out"):
            server.check()
        server.failures.clear()


# ---- model strings, keys, options ----


@pytest.mark.parametrize(
    "text, provider, model, base_url",
    [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini", None),
        ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", None),
        ("gemini/gemini-2.5-flash", "gemini", "gemini-2.5-flash", None),
        ("OpenRouter/meta-llama/llama-3.1-8b-instruct", "openrouter", "meta-llama/llama-3.1-8b-instruct", None),
        (
            "openai-compatible/qwen2.5@http://localhost:8000/v1/",
            "openai-compatible",
            "qwen2.5",
            "http://localhost:8000/v1",
        ),
        ("openai-compatible/org/m@v2@https://h:1/v1", "openai-compatible", "org/m@v2", "https://h:1/v1"),
        ("local/embedded:smollm2-135m-instruct", "local", "embedded:smollm2-135m-instruct", None),
        ("local//models/my-chat", "local", "/models/my-chat", None),
        ("local/", "local", "embedded:smollm2-135m-instruct", None),
    ],
)
def test_parse_model_string_forms(text, provider, model, base_url):
    spec = parse_model_string(text)
    assert (spec.provider, spec.model, spec.base_url) == (provider, model, base_url)


@pytest.mark.parametrize(
    "text, hint",
    [
        ("opnai/gpt-4o", "Did you mean openai/gpt-4o?"),
        ("antropic/claude-x", "Did you mean anthropic/claude-x?"),
        ("google/gemini-2.5-pro", "Did you mean gemini/gemini-2.5-pro?"),
        ("vllm/qwen", "Did you mean openai-compatible/qwen?"),
        ("gpt-4o", "Did you mean openai/gpt-4o?"),
        ("claude-sonnet-4-5", "Did you mean anthropic/claude-sonnet-4-5?"),
        ("openrouter/gpt-4o", "ORG/MODEL"),
        ("openai-compatible/qwen@localhost:8000", "not an http(s) URL"),
        ("openai/", "names no model"),
    ],
)
def test_bad_model_strings_say_what_to_write(text, hint):
    with pytest.raises(ConfigError) as err:
        parse_model_string(text)
    assert hint in str(err.value)
    if "Did you mean" in hint:
        assert "openai-compatible" in str(err.value)  # and lists the valid prefixes


def test_fake_points_to_the_fake_module_unless_overridden():
    with pytest.raises(ConfigError, match="lmdelta.llm.fake"):
        build_provider("fake/echo")
    seen = {}

    def factory(spec, **kwargs):
        seen.update(spec=spec, **kwargs)
        return "a fake provider"

    assert build_provider("fake/echo", providers={"fake": factory}, backend_args={"x": 1}) == "a fake provider"
    assert seen["spec"].model == "echo" and seen["options"] == {"x": 1}


@pytest.mark.parametrize(
    "model_string, variables",
    [
        ("openai/gpt-4o", "OPENAI_API_KEY"),
        ("anthropic/claude-x", "ANTHROPIC_API_KEY"),
        ("gemini/gemini-x", "GEMINI_API_KEY or GOOGLE_API_KEY"),
        ("openrouter/org/model", "OPENROUTER_API_KEY"),
    ],
)
def test_missing_key_names_the_variable_and_the_key_file(model_string, variables):
    with pytest.raises(ConfigError) as err:
        build_provider(model_string)
    assert variables in str(err.value) and "key file" in str(err.value)


def test_key_file_whole_file_and_labelled_lines(tmp_path, monkeypatch):
    whole = tmp_path / "openai.key"
    whole.write_text(f"  {KEY}\n")
    whole.chmod(0o600)
    assert build_provider("openai/gpt-4o", key_file=whole)._secret.reveal() == KEY
    labelled = tmp_path / "keys.txt"
    labelled.write_text(f'# my keys\nanthropic: {KEY}\nGEMINI_API_KEY="{KEY}x"\n')
    labelled.chmod(0o600)
    assert build_provider("anthropic/claude-x", key_file=labelled)._secret.reveal() == KEY
    assert build_provider("gemini/gemini-x", key_file=labelled)._secret.reveal() == KEY + "x"
    with pytest.raises(ConfigError, match="no `openai: KEY` line"):
        build_provider("openai/gpt-4o", key_file=labelled)
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")  # the file lacks openai: the environment fills in
    assert build_provider("openai/gpt-4o", key_file=labelled)._secret.reveal() == "from-env"


def test_broken_key_file_never_quotes_its_content(tmp_path):
    broken = tmp_path / "keys.txt"
    broken.write_text(f"{KEY} and more words\nsecond line\n")
    with pytest.raises(ConfigError) as err:
        build_provider("openai/gpt-4o", key_file=broken)
    assert KEY not in str(err.value)
    with pytest.raises(ConfigError, match="Cannot read the key file"):
        build_provider("openai/gpt-4o", key_file=tmp_path / "missing.key")


def test_openai_compatible_needs_no_key_and_never_gets_the_openai_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with openai_server(("json", 200, openai_reply())) as server:
        provider = build_provider(f"openai-compatible/qwen@{server.url}/v1")
        run(call(provider))
    assert KEY not in server.last.headers["authorization"]
    with pytest.raises(ConfigError, match="which server"):
        build_provider("openai-compatible/qwen")


def test_openai_base_url_env_points_openai_at_a_local_server_without_key(monkeypatch):
    with openai_server(("json", 200, openai_reply())) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        provider = build_provider("openai/my-local-model")
        assert provider.identity() == {"provider": "openai", "model": "my-local-model", "base_url": f"{server.url}/v1"}
        run(call(provider))
    assert server.last.body["model"] == "my-local-model"


def test_extra_headers_are_part_of_the_identity_but_credentials_never(monkeypatch):
    """A header can select another model on the server (an adapter, a variant): a header-only change
    must not reuse cached answers (issue #10 item 10). Credential headers stay out of keys and manifests."""
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEY)
    url = "openai-compatible/qwen@http://127.0.0.1:9/v1"
    plain = build_provider(url)
    lora = build_provider(
        url,
        backend_args={
            "headers": {
                "X-Variant": "lora-7",
                "Authorization": f"Bearer {KEY}",
                "x-api-key": "k2",
                "Cookie": "s=1",
                "X-Echo": KEY,
            }
        },
    )
    other = build_provider(url, backend_args={"headers": {"x-variant": "lora-8"}})
    assert lora.identity()["headers"] == {"x-variant": "lora-7"} and "headers" not in plain.identity()
    keys = {cache_key(provider.identity(), REQUEST) for provider in (plain, lora, other)}
    assert len(keys) == 3
    assert KEY not in repr(lora.identity()) and "k2" not in repr(lora.identity())
    raw = build_completions_provider(url, backend_args={"headers": {"X-Variant": "lora-7"}})
    assert raw.identity()["headers"] == {"x-variant": "lora-7"} and raw.identity()["endpoint"] == "completions"


def test_unknown_backend_args_suggest_near_names(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(ConfigError, match="Did you mean 'timeout'"):
        build_provider("openai/gpt-4o", backend_args={"timeuot": 3})


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setitem(sys.modules, "anthropic", None)  # makes `import anthropic` fail
    with pytest.raises(DependencyError, match=r"pip install 'lmdelta\[llm\]'"):
        build_provider("anthropic/claude-x")


def test_anthropic_older_api_version_sends_sampling_parameters(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    request = ChatRequest(messages=(Message("user", "hi"),), temperature=0.0, top_p=0.9)
    with anthropic_server(("json", 200, anthropic_reply())) as server:
        provider = build_provider("anthropic/claude-x", base_url=server.url, backend_args={"api_version": "2023-06-01"})
        run(call(provider, request))
    assert server.last.headers["anthropic-version"] == "2023-06-01"
    assert server.last.body["temperature"] == 0.0 and server.last.body["top_p"] == 0.9
    assert provider.identity()["api_version"] == "2023-06-01"


# ---- local transformers chat model ----


@pytest.fixture(scope="module")
def tiny_chat_folder(tmp_path_factory):
    from conftest import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"))


def test_local_chat_answers_with_usage_and_logprobs(tiny_chat_folder):
    from lmdelta.backends.embedded import cache_root
    from lmdelta.filehash import folder_sha256

    provider = build_provider(f"local/{tiny_chat_folder}")
    identity = provider.identity()
    assert identity["weights"] == folder_sha256(tiny_chat_folder, cache_root()) and identity["provider"] == "local"
    request = ChatRequest(
        messages=(Message("system", "Be brief."), Message("user", "how do tides work?")), max_tokens=6, logprobs=3
    )
    reply = run(call(provider, request))
    assert isinstance(reply.text, str) and reply.usage.input_tokens > 5
    assert 1 <= reply.usage.output_tokens <= 6 and reply.finish_reason in ("stop", "length")
    assert reply.logprobs is not None and 1 <= len(reply.logprobs) <= 6
    assert all(1 <= len(step) <= 4 and all(lp <= 0 for lp in step.values()) for step in reply.logprobs)
    plain = run(call(build_provider(f"local/{tiny_chat_folder}"), ChatRequest(request.messages, max_tokens=6)))
    assert plain.logprobs is None and plain.text == reply.text  # greedy: the same answer


def test_local_chat_batches_concurrent_requests(tiny_chat_folder):
    provider = build_provider(f"local/{tiny_chat_folder}", backend_args={"batch_window_ms": 20})
    prompts = ["the cat sat", "how do tides work", "write a poem", "the cat sat"]
    requests = [ChatRequest(messages=(Message("user", p),), max_tokens=4 + i) for i, p in enumerate(prompts)]

    async def both():
        together = await asyncio.gather(*(provider.complete(r) for r in requests))
        calls = provider.generate_calls
        alone = [await provider.complete(r) for r in requests]
        await provider.aclose()
        return together, calls, alone

    together, calls, alone = run(both())
    assert calls == 1  # four concurrent requests, one generate() call
    assert [r.usage.output_tokens <= 4 + i for i, r in enumerate(together)] == [True] * 4
    assert [r.text for r in together] == [r.text for r in alone]  # batching does not change greedy answers


def test_local_chat_sampling_is_seeded(tiny_chat_folder):
    provider = build_provider(f"local/{tiny_chat_folder}")
    request = ChatRequest(messages=(Message("user", "the cat sat"),), max_tokens=8, temperature=1.0, seed=3)

    async def sample():
        first = await provider.complete(request)
        again = await provider.complete(request)
        others = [
            await provider.complete(
                ChatRequest(request.messages, max_tokens=8, temperature=1.0, seed=3, sample_index=i)
            )
            for i in range(1, 4)
        ]
        await provider.aclose()
        return first, again, others

    first, again, others = run(sample())
    assert first.text == again.text
    assert run(call(provider, request)).text == first.text  # reusable after aclose, from a new loop
    assert any(o.text != first.text for o in others)


def test_local_model_strings_are_checked_early(tmp_path):
    from lmdelta.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        build_provider("local/embedded:smolm2-135m-instruct")
    with pytest.raises(ConfigError, match="no base_url"):
        build_provider(f"local/{tmp_path}", base_url="http://localhost:1")


# ---- concurrency limits per connection: provider + server + key (issue 12 item 6) ----


def test_each_server_gets_its_own_limiter_and_clients_of_one_server_share_it():
    def client(model_string):
        return ChatClient(build_provider(model_string))

    one = client("openai-compatible/judge@http://127.0.0.1:8001/v1")
    same_server = client("openai-compatible/other-model@http://127.0.0.1:8001/v1/")
    other_server = client("openai-compatible/judge@http://127.0.0.1:8002/v1")
    assert one.limiter is same_server.limiter and one.limiter is not other_server.limiter
    assert one.limiter.limit == other_server.limiter.limit == 8  # the provider's default, for each server
    assert one.limiter.name == "openai-compatible@http://127.0.0.1:8001/v1"
    # llm.concurrency applies to each connection, and the run's clients share the process-wide limiters.
    llm = LLMConfig(concurrency=3)
    made = make_client(
        build_provider("openai-compatible/judge@http://127.0.0.1:8001/v1"), llm, None, None, None, "validate", "judge"
    )
    assert made.limiter is one.limiter and one.limiter.limit == 3 and other_server.limiter.limit == 8


def test_two_keys_for_one_server_get_two_limiters_named_without_the_key(monkeypatch):
    model = "openai-compatible/judge@http://127.0.0.1:8001/v1"
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEY)
    first, again = (ChatClient(build_provider(model)) for _ in range(2))
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEY + "-other-account")
    other = ChatClient(build_provider(model))
    assert first.limiter is again.limiter and first.limiter is not other.limiter
    assert KEY not in first.limiter.name and KEY not in repr(first.limiter)
    assert first.provider.account and KEY not in first.provider.account
