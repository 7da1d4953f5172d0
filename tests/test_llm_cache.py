"""The LLM response cache: what goes into the key, what is stored, persistence, concurrency, no secrets."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lmdelta.llm.cache import ResponseCache, cache_key
from lmdelta.llm.client import ChatClient
from lmdelta.llm.fake import FakeProvider, reply
from lmdelta.llm.limiter import ConcurrencyLimiter
from lmdelta.llm.types import ChatRequest, ChatResponse, Message, Usage

REQUEST = ChatRequest(messages=(Message("system", "You are a judge."), Message("user", "Score this: hello")))
IDENTITY = {"provider": "openai", "model": "gpt-4o-mini", "base_url": "https://api.openai.com/v1"}


def client_for(provider: FakeProvider, cache: ResponseCache, **fields) -> ChatClient:
    return ChatClient(provider, cache=cache, limiter=ConcurrencyLimiter(4), **fields)


def test_key_is_stable_and_covers_every_field_that_changes_an_answer():
    key = cache_key(IDENTITY, REQUEST)
    assert key == cache_key(dict(reversed(IDENTITY.items())), REQUEST) and len(key) == 64
    variants = [
        cache_key({**IDENTITY, "model": "gpt-4.1-mini"}, REQUEST),
        cache_key({**IDENTITY, "base_url": "http://localhost:8000/v1"}, REQUEST),
        cache_key({**IDENTITY, "provider": "openrouter"}, REQUEST),
        cache_key(IDENTITY, replace(REQUEST, messages=REQUEST.messages[1:])),
        cache_key(IDENTITY, replace(REQUEST, messages=(REQUEST.messages[0], Message("user", "Score this: hello!")))),
        cache_key(IDENTITY, replace(REQUEST, messages=(Message("user", "You are a judge."), REQUEST.messages[1]))),
        cache_key(IDENTITY, replace(REQUEST, max_tokens=513)),
        cache_key(IDENTITY, replace(REQUEST, temperature=1.0)),
        cache_key(IDENTITY, replace(REQUEST, top_p=0.9)),
        cache_key(IDENTITY, replace(REQUEST, logprobs=5)),
        cache_key(IDENTITY, replace(REQUEST, stop=("\n",))),
        cache_key(IDENTITY, replace(REQUEST, seed=0)),
        cache_key(IDENTITY, replace(REQUEST, sample_index=1)),
    ]
    assert len({key, *variants}) == len(variants) + 1


def test_identity_naming_a_credential_is_refused():
    with pytest.raises(ValueError, match="credential"):
        cache_key({**IDENTITY, "api_key": "x"}, REQUEST)
    with pytest.raises(ValueError):
        cache_key({**IDENTITY, "accessToken": "x"}, REQUEST)
    cache_key({**IDENTITY, "tokenizer": "gpt2"}, REQUEST)  # not a credential
    with pytest.raises(ValueError, match="Authorization"):  # nested, e.g. headers that slipped through
        cache_key({**IDENTITY, "headers": {"x-variant": "a", "Authorization": "Bearer x"}}, REQUEST)


def test_round_trip_keeps_text_usage_finish_reason_and_logprobs(tmp_path):
    response = ChatResponse(
        text="Score: 80",
        usage=Usage(31, 4),
        finish_reason="length",
        logprobs=[{"Score": -0.01, "score": -4.6}, {":": -0.0}],
        model="gpt-4o-mini-2024-07-18",
    )
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        assert cache.get("k") is None
        assert cache.put("k", response)
        assert cache.get("k") == response
        assert cache.stats() == {
            "path": str(tmp_path / "llm.sqlite"),
            "entries": 1,
            "hits": 1,
            "misses": 1,
            "writes": 1,
        }
    with ResponseCache(tmp_path / "llm.sqlite") as reopened:  # persists across processes and runs
        assert reopened.get("k") == response


def test_content_filtered_reply_is_refused(tmp_path):
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        assert not cache.put("k", reply("", finish_reason="content_filter"))
        assert cache.get("k") is None and len(cache) == 0


def test_two_provider_identities_make_two_entries(tmp_path):
    small, large = FakeProvider(["small says 1"], model="m-small"), FakeProvider(["large says 2"], model="m-large")
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        first = client_for(small, cache).run([REQUEST])[0]
        second = client_for(large, cache).run([REQUEST])[0]
        assert len(cache) == 2
        again = client_for(FakeProvider([], model="m-large"), cache).run([REQUEST])[0]
    assert (first.text, second.text, again.text) == ("small says 1", "large says 2", "large says 2")
    assert not second.cached and again.cached


def test_timeout_is_not_part_of_the_key(tmp_path):
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        client_for(FakeProvider(["a"]), cache, timeout=30.0).run([REQUEST])
        hit = client_for(FakeProvider([]), cache, timeout=5.0).run([REQUEST])[0]
    assert hit.cached and hit.text == "a"


WRITER = """
import sys
from pathlib import Path
from lmdelta.llm.cache import ResponseCache
from lmdelta.llm.fake import reply
cache = ResponseCache(Path(sys.argv[1]))
for i in range(150):
    cache.put(f"{sys.argv[2]}-{i}", reply(f"answer {i}"))
cache.close()
"""


def test_concurrent_processes_share_one_file(tmp_path):
    path = tmp_path / "llm.sqlite"
    ResponseCache(path).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name]) for name in ("a", "b", "c")]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0]
    with ResponseCache(path) as cache:
        assert len(cache) == 450 and cache.get("b-149").text == "answer 149"


class KeyedFakeProvider(FakeProvider):
    """A provider holding its key the way real adapters do: in a private attribute, read from the env."""

    def __init__(self, api_key: str, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._api_key = api_key


def test_api_keys_never_reach_the_cache_file(tmp_path, monkeypatch):
    secret = "sk-test-Zq8XbW3kP1vN7mR4tY6uI0oL2"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    provider = KeyedFakeProvider(secret, responder=lambda r: reply(f"echo {r.messages[-1].content}"), model="m")
    with ResponseCache(tmp_path / "cache" / "llm.sqlite") as cache:
        client = client_for(provider, cache)
        results = client.run([REQUEST, replace(REQUEST, sample_index=1), replace(REQUEST, temperature=0.7)])
        assert all(r.ok for r in results)
        ledger_text = str(client.ledger.to_dict())
    files = [p for p in (tmp_path / "cache").iterdir() if p.is_file()]
    assert files and all(secret.encode() not in p.read_bytes() for p in files)
    assert secret not in ledger_text and secret not in str(client.identity)
    assert b"echo Score this: hello" in b"".join(p.read_bytes() for p in files)  # the check reads real content


def test_cache_lives_where_the_caller_says(tmp_path):
    path = Path(tmp_path) / "deep" / "dir" / "llm.sqlite"
    with ResponseCache(path) as cache:
        cache.put("k", reply("x"))
    assert path.is_file()


def test_a_broken_cache_costs_calls_not_answers(tmp_path, caplog):
    cache = ResponseCache(tmp_path / "llm.sqlite")
    cache.close()  # every read and write now fails with sqlite3.ProgrammingError
    provider = FakeProvider(["a", "b"])
    client = client_for(provider, cache)
    results = [client.run([REQUEST])[0] for _ in range(2)]  # one after the other: nothing to merge in flight
    assert [r.text for r in results] == ["a", "b"] and not any(r.cached for r in results)
    assert any("Could not read the LLM cache" in m for m in caplog.messages)
