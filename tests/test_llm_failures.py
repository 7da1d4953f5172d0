"""When LLM calls cannot be trusted or paid for, the run stops with a message that says why:
a rejected key or unknown model (stop at once, stop sending), too many failed calls, a spent token
budget, a budget.usd that could not stop an unpriced model (refused before any call).

Session-level tests put a scripted FakeProvider behind the session; pipeline tests use a loopback
OpenAI-compatible server answering 401, as in the audit (reliability.md P2).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import fake_config
from llm_servers import ScriptedServer, openai_error

from lmdelta import pipeline
from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import ConfigError, StageError
from lmdelta.llm.fake import FakeProvider, reply
from lmdelta.llm.session import LLMSession, check_budget_pricing, paid_models
from lmdelta.llm.types import ChatRequest, Message, ProviderError
from lmdelta.rundir import RunDir

JUDGE = "openai-compatible/judge@http://127.0.0.1:9/v1"
KEY = "sk-test-rejected-0000"
REJECTED = ("json", 401, openai_error(401, f"Incorrect API key provided: {KEY}", code="invalid_api_key"))


def config_with(tmp_path, *overrides):
    return load_config(fake_config(tmp_path, per_group=16), list(overrides))


def session_with(provider, tmp_path, *overrides, cache: str = "cache") -> LLMSession:
    """A validate-stage session whose judge is `provider` (no server, no key needed)."""
    session = LLMSession(config_with(tmp_path, f"llm.judge.model={JUDGE}", *overrides), "validate", tmp_path / cache)
    session._providers[("judge", JUDGE)] = provider
    return session


def asks(n: int, max_tokens: int = 4) -> list[ChatRequest]:
    return [ChatRequest(messages=(Message("user", f"Score text {i}."),), max_tokens=max_tokens) for i in range(n)]


def integer(text: str) -> int:
    return int(text)


# ---- fatal errors: stop at once, stop sending (issue #10 item 7) ----


@pytest.mark.parametrize(
    ("kind", "advice"), [("auth", "rejected the key"), ("not_found", "model name"), ("bad_request", "model name")]
)
def test_a_fatal_error_stops_the_stage_and_the_batch_stops_sending(tmp_path, kind, advice):
    provider = FakeProvider(responder=lambda request: ProviderError(kind, f"HTTP 4xx ({kind})"))
    session = session_with(provider, tmp_path, "llm.concurrency=1")
    with pytest.raises(StageError) as err:
        session.asker("judge")(asks(50), integer)
    message = str(err.value)
    assert len(provider.calls) == 1  # the other 49 were never sent
    assert f"1 of 50 calls to {JUDGE} failed with {kind}" in message and "49 more were not sent" in message
    assert "OPENAI_COMPATIBLE_API_KEY" in message and advice in message
    assert "run the same command again" in err.value.fix
    assert session.ledger.total().failures == {kind: 1, "halted": 49}


def test_requests_merged_into_a_rejected_one_count_as_not_sent(tmp_path):
    provider = FakeProvider(responder=lambda request: ProviderError("auth", "HTTP 401"))
    with pytest.raises(StageError, match="1 of 6 calls .* failed with auth .*; 5 more were not sent"):
        session_with(provider, tmp_path).asker("judge")(asks(1) * 6, integer)
    assert len(provider.calls) == 1


def test_the_next_batch_sends_again_after_a_fatal_error(tmp_path):
    """The stop is per batch: a re-run (a new batch) tries the provider again."""
    provider = FakeProvider([ProviderError("auth", "HTTP 401"), "7"])
    session = session_with(provider, tmp_path, "llm.concurrency=1")
    with pytest.raises(StageError):
        session.asker("judge")(asks(1), integer)
    [(result, value)] = session.asker("judge")(asks(1), integer)
    assert result.ok and value == 7 and len(provider.calls) == 2


# ---- a share of failed calls (llm.max_failure_share) ----


def filtered_every(n: int):
    """A judge whose provider filters every n-th text (by its number) and scores the rest 7."""

    def answer(request):
        number = int(request.messages[0].content.split()[2].rstrip("."))
        return reply("", finish_reason="content_filter") if number % n == 0 else "7"

    return answer


def test_more_failures_than_the_allowed_share_stop_the_stage(tmp_path):
    session = session_with(FakeProvider(responder=filtered_every(10)), tmp_path)  # 2 of 20: 10 % > 5 %
    with pytest.raises(StageError, match="max_failure_share") as err:
        session.asker("judge")(asks(20), integer)
    assert "2 of 20 calls" in str(err.value) and "2 content_filter" in str(err.value)


def test_failures_within_the_allowed_share_are_dropped_and_counted(tmp_path):
    answers = session_with(FakeProvider(responder=filtered_every(20)), tmp_path).asker("judge")(asks(20), integer)
    assert sum(not result.ok for result, _ in answers) == 1  # 1 of 20 = 5 %: allowed
    looser = session_with(
        FakeProvider(responder=filtered_every(10)), tmp_path, "llm.max_failure_share=0.25", cache="other"
    )
    assert sum(not result.ok for result, _ in looser.asker("judge")(asks(20), integer)) == 2


def test_unparseable_answers_do_not_count_toward_the_failure_share(tmp_path):
    session = session_with(FakeProvider(responder=lambda request: "no idea"), tmp_path)
    answers = session.asker("judge")(asks(5), integer)
    assert {result.error_kind for result, _ in answers} == {"unparseable"}


# ---- budget.tokens ----


def test_a_token_budget_stops_the_stage_for_an_unpriced_model(tmp_path):
    # Each request reserves ceil(13 / 3) + 8 + 4 = 17 tokens and uses 10 + 1 = 11.
    provider = FakeProvider(responder=lambda request: reply("7", input_tokens=10, output_tokens=1))
    session = session_with(provider, tmp_path, "llm.concurrency=1", "budget.tokens=49")
    with pytest.raises(StageError, match="budget.tokens = 49") as err:
        session.asker("judge")(asks(10), integer)
    assert len(provider.calls) == 3 and session.budget.spent_tokens == 33  # a 4th could reach 33 + 17 > 49
    assert "--set budget.tokens=" in err.value.fix


def test_the_token_budget_resumes_from_what_the_run_spent(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.root.mkdir(parents=True)
    run_dir.record_llm_usage("propose", {"input_tokens": 30, "output_tokens": 5, "cost_usd": 0.0}, {})
    config = config_with(tmp_path, "budget.tokens=100")
    assert LLMSession(config, "validate", tmp_path / "cache", run_dir).budget.tokens == 65


# ---- budget.usd needs a price for every paid model (issue #10 item 2) ----


@pytest.mark.parametrize(
    ("model", "named"),
    [
        ("gemini/gemini-1.5-flash", "gemini/gemini-1.5-flash"),
        ("openrouter/meta-llama/llama-3.1-8b-instruct", "openrouter/meta-llama/llama-3.1-8b-instruct"),
        (JUDGE, "openai-compatible/judge"),
    ],
)
def test_budget_usd_refuses_an_unpriced_model_up_front(tmp_path, model, named):
    config = config_with(tmp_path, f"llm.judge.model={model}", "budget.usd=5")
    with pytest.raises(ConfigError) as err:
        check_budget_pricing(config)
    assert named in str(err.value) and "$0" in str(err.value)
    assert "llm.prices" in err.value.fix and "remove budget.usd" in err.value.fix
    with pytest.raises(ConfigError, match="no price"):
        LLMSession(config, "validate", tmp_path / "cache")


@pytest.mark.parametrize(
    "overrides",
    [
        ["budget.usd=5", f"llm.judge.model={JUDGE}", 'llm.prices={"openai-compatible/judge": {input: 0, output: 0}}'],
        [
            "budget.usd=5",
            "llm.judge.model=gemini/gemini-1.5-pro",
            'llm.prices={"gemini/gemini-1.5-pro": {input: 1.25, output: 5}}',
        ],
        [
            "budget.usd=5",
            "llm.judge.model=openai/gpt-4.1-mini-2025-04-14",
            "llm.proposer.model=local/embedded:smollm2-135m-instruct",
        ],
        [f"llm.judge.model={JUDGE}"],  # no budget.usd: nothing to protect
        [f"llm.judge.model={JUDGE}", "budget.tokens=1000"],  # a token cap needs no price
    ],
)
def test_priced_free_or_unbudgeted_models_pass_the_check(tmp_path, overrides):
    check_budget_pricing(config_with(tmp_path, *overrides))


def test_a_served_generator_needs_a_price_too(tmp_path):
    served = "openai-compatible/qwen@http://127.0.0.1:9/v1"
    config = config_with(tmp_path, f"generate.b.model=api:{served}", "budget.usd=5")
    assert paid_models(config) == [served]
    with pytest.raises(ConfigError, match="openai-compatible/qwen"):
        check_budget_pricing(config)


def test_an_unpriced_model_under_budget_usd_is_refused_before_any_call(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEY)
    with ScriptedServer("openai", []) as server:
        model = f"openai-compatible/judge-model@{server.url}/v1"
        config = config_with(
            tmp_path, f"llm.judge.model={model}", "validate.judge=unitary", "budget.usd=5", "controls.null=false"
        )
        with pytest.raises(ConfigError, match="openai-compatible/judge-model"):
            pipeline.run(config, RunDir(tmp_path / "run"))
    assert server.requests == []


# ---- the audit's scenario: a server that rejects the key (reliability.md P2) ----


def rejecting_run(tmp_path, server, *overrides):
    model = f"openai-compatible/judge-model@{server.url}/v1"
    prices = json.dumps({"openai-compatible/judge-model": {"input": 1.0, "output": 2.0}})
    return config_with(
        tmp_path,
        f"llm.judge.model={model}",
        f"llm.prices={prices}",
        "llm.concurrency=2",
        "controls.null=false",
        *overrides,
    )


def test_a_rejected_key_stops_the_judge_after_the_calls_in_flight(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEY)
    with ScriptedServer("openai", [], responder=lambda received: REJECTED) as server:
        with pytest.raises(StageError) as err:
            pipeline.run(rejecting_run(tmp_path, server, "validate.judge=unitary"), RunDir(tmp_path / "run"))
    assert 1 <= len(server.requests) <= 2  # the calls in flight when the first 401 came back; none after
    message = str(err.value)
    assert "judge-model" in message and "auth" in message and "OPENAI_COMPATIBLE_API_KEY" in message
    assert KEY not in message
    assert RunDir(tmp_path / "run").load_manifest().stages["validate"].status == "interrupted"


def test_a_rejected_key_stops_the_llm_proposer_instead_of_dropping_it(tmp_path, monkeypatch):
    """validate.judge = auto: before, the proposer's 401s went to skipped.jsonl and the run exited 0."""
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEY)
    with ScriptedServer("openai", [], responder=lambda received: REJECTED) as server:
        model = f"openai-compatible/judge-model@{server.url}/v1"
        prices = json.dumps({"openai-compatible/judge-model": {"input": 1.0, "output": 2.0}})
        settings = [
            f"llm.proposer.model={model}",
            f"llm.judge.model={model}",
            f"llm.prices={prices}",
            "llm.concurrency=2",
            "controls.null=false",
        ]
        result = CliRunner().invoke(
            main,
            [
                "run",
                str(fake_config(tmp_path, per_group=16)),
                "--run-dir",
                str(tmp_path / "run"),
                *(f"--set={s}" for s in settings),
            ],
        )
    assert result.exit_code != 0 and "OPENAI_COMPATIBLE_API_KEY" in result.output
    assert "failed with auth" in result.output and 1 <= len(server.requests) <= 2
    assert RunDir(tmp_path / "run").load_manifest().stages["propose"].status == "interrupted"
