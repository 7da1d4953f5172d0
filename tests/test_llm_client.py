"""ChatClient against the scripted FakeProvider: retries, timeouts, budget, re-asks, concurrency, ledger.

No network, no real waiting: backoff sleeps go to a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from lmdelta.llm.cache import ResponseCache
from lmdelta.llm.client import REASK_STRIDE, ChatClient
from lmdelta.llm.fake import FakeProvider, ScriptExhausted, reply
from lmdelta.llm.limiter import (
    ConcurrencyLimiter,
    Connection,
    LimiterRegistry,
    configure_limits,
    limiter_for,
    reset_limiters,
)
from lmdelta.llm.pricing import Budget, CostLedger, PriceTable
from lmdelta.llm.retry import RetryPolicy
from lmdelta.llm.types import ChatRequest, Message, ProviderError, Usage


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def ask(text: str = "Is this text polite? Answer 0-100.", **fields) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),), **fields)


def policy(time: FakeTime, **fields) -> RetryPolicy:
    return RetryPolicy(sleep=time.sleep, clock=time.clock, rng=random.Random(0), **fields)


def client_for(provider: FakeProvider, time: FakeTime | None = None, **fields) -> ChatClient:
    time = time or FakeTime()
    fields.setdefault("retry", policy(time))
    fields.setdefault("limiter", ConcurrencyLimiter(8, clock=time.clock, sleep=time.sleep))
    return ChatClient(provider, **fields)


def test_rate_limit_then_success_honours_retry_after():
    time = FakeTime()
    provider = FakeProvider([ProviderError("rate_limit", "slow down", retry_after=7.0, status=429), "42"])
    result = client_for(provider, time).run([ask()])[0]
    assert result.ok and result.text == "42" and result.attempts == 2
    assert time.sleeps == [7.0]  # the jittered backoff (< 1 s) is raised to Retry-After
    assert len(provider.calls) == 2


def test_retry_after_pauses_every_call_of_the_provider():
    time = FakeTime()
    limiter = ConcurrencyLimiter(4, clock=time.clock, sleep=time.sleep)
    provider = FakeProvider([ProviderError("rate_limit", "RPM", retry_after=5.0), "x"])
    assert client_for(provider, time, limiter=limiter).run([ask()])[0].ok
    assert limiter.pauses == 1 and time.now == 5.0

    async def later_call():
        limiter.pause(2.0)
        async with limiter:  # a call that had not started waits the pause out
            return time.now

    assert asyncio.run(later_call()) == 7.0 and time.sleeps == [5.0, 2.0] and limiter.in_flight == 0


def test_server_errors_beyond_the_attempt_limit_give_a_typed_failure():
    time = FakeTime()
    provider = FakeProvider([ProviderError("transient", "HTTP 500", status=500)] * 5)
    result = client_for(provider, time, retry=policy(time, max_attempts=3)).run([ask()])[0]
    assert not result.ok and result.error_kind == "transient" and result.attempts == 3
    assert result.text is None and "500" in result.error_message
    assert len(provider.calls) == 3 and len(time.sleeps) == 2
    assert all(0 <= s <= 2.0 for s in time.sleeps)  # full jitter under base_delay * 2**(k-1)


def test_retry_budget_stops_retries_in_wall_clock_time():
    time = FakeTime()
    provider = FakeProvider([ProviderError("rate_limit", "quota", retry_after=30.0)] * 3)
    result = client_for(provider, time, retry=policy(time, budget_seconds=45.0)).run([ask()])[0]
    # waits 30 s once; the second Retry-After (30 s) no longer fits the 15 s left
    assert result.error_kind == "rate_limit" and result.attempts == 2 and time.sleeps == [30.0]


def test_a_retry_after_beyond_the_budget_fails_fast_and_pauses_nothing():
    time = FakeTime()
    limiter = ConcurrencyLimiter(4, clock=time.clock, sleep=time.sleep)
    provider = FakeProvider([ProviderError("rate_limit", "daily quota", retry_after=86_400.0), "later"])
    client = client_for(provider, time, limiter=limiter)
    first, second = client.run([ask("a")])[0], client.run([ask("b")])[0]
    assert first.error_kind == "rate_limit" and first.attempts == 1
    assert second.ok and limiter.pauses == 0 and time.sleeps == []


def test_timeout_is_a_retryable_typed_failure():
    time = FakeTime()
    provider = FakeProvider(["late", "late"], latency=5.0)  # real asyncio.sleep, cut short by the timeout
    client = client_for(provider, time, retry=policy(time, max_attempts=2), timeout=0.02)
    result = client.run([ask()])[0]
    assert not result.ok and result.error_kind == "timeout" and result.attempts == 2
    assert len(provider.calls) == 2


def test_auth_error_is_not_retried():
    time = FakeTime()
    provider = FakeProvider([ProviderError("auth", "invalid API key", status=401)])
    result = client_for(provider, time).run([ask()])[0]
    assert result.error_kind == "auth" and result.attempts == 1 and time.sleeps == []


def test_unexpected_provider_exception_becomes_unknown():
    def broken(request):
        raise KeyError("choices")

    result = client_for(FakeProvider(responder=broken)).run([ask()])[0]
    assert not result.ok and result.error_kind == "unknown" and result.attempts == 1
    assert "KeyError" in result.error_message


def test_fake_fails_loudly_when_its_script_runs_out():
    with pytest.raises(BaseExceptionGroup) as caught:
        client_for(FakeProvider(["only one"])).run([ask("a"), ask("b")])
    assert caught.group_contains(ScriptExhausted)


def test_cache_hit_on_second_identical_call(tmp_path):
    provider = FakeProvider(["73"])
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        client = client_for(provider, cache=cache)
        first, second = client.run([ask()])[0], client.run([ask()])[0]
    assert first.ok and not first.cached and first.attempts == 1
    assert second.ok and second.cached and second.text == "73"
    assert second.attempts == 0 and second.cost_usd == 0.0 and second.usage == Usage()
    assert len(provider.calls) == 1
    assert client.ledger.total().cached == 1 and client.ledger.total().calls == 1


def test_failed_and_filtered_results_are_not_cached(tmp_path):
    filtered = reply("I can't", finish_reason="content_filter")
    provider = FakeProvider([ProviderError("bad_request", "too long", status=400), filtered, "fine"])
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        client = client_for(provider, cache=cache)
        failed = client.run([ask()])[0]
        blocked = client.run([ask()])[0]
        assert len(cache) == 0
        answered = client.run([ask()])[0]
        assert len(cache) == 1
    assert failed.error_kind == "bad_request"
    assert not blocked.ok and blocked.error_kind == "content_filter" and blocked.text == "I can't"
    assert answered.ok and not answered.cached and len(provider.calls) == 3
    assert client.ledger.total().failures == {"bad_request": 1, "content_filter": 1}


def test_budget_stops_before_the_call_that_could_exceed_it(tmp_path):
    # $1 per output token; each request may produce 2 tokens, so it reserves $2 (inputs are free).
    prices = PriceTable({"fake/judge": {"input": 0.0, "output": 1_000_000.0}})
    provider = FakeProvider(responder=lambda request: reply("7", output_tokens=1), model="judge")
    budget, ledger = Budget(usd=5.0), CostLedger()
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        client = client_for(
            provider, prices=prices, budget=budget, ledger=ledger, cache=cache, limiter=ConcurrencyLimiter(1)
        )
        results = client.run([ask(f"text {i}", max_tokens=2) for i in range(6)])
        again = client.run([ask("text 0", max_tokens=2)])[0]
    assert [r.ok for r in results] == [True] * 4 + [False] * 2  # 4th: $3 spent + $2 reserved = $5, not over
    assert {r.error_kind for r in results[4:]} == {"budget"} and results[4].attempts == 0
    assert len(provider.calls) == 4 and budget.exhausted
    assert ledger.total().cost_usd == pytest.approx(4.0) and budget.spent == pytest.approx(4.0)
    assert ledger.total().failures == {"budget": 2}
    assert again.ok and again.cached  # cached answers are still served once the budget is spent
    assert budget.reserved == pytest.approx(0.0)


def test_budget_holds_under_concurrency():
    prices = PriceTable({"fake/judge": {"input": 0.0, "output": 1_000_000.0}})
    provider = FakeProvider(responder=lambda request: reply("7", output_tokens=1), model="judge", latency=0.001)
    budget = Budget(usd=10.0)
    results = client_for(provider, prices=prices, budget=budget).run([ask(f"t{i}", max_tokens=2) for i in range(40)])
    assert budget.spent <= 10.0 and sum(r.ok for r in results) == len(provider.calls) == int(budget.spent)


def parse_score(text: str) -> int:
    value = int(text.strip())  # int() raises ValueError on non-numbers
    if not 0 <= value <= 100:
        raise ValueError(f"score {value} outside 0-100")
    return value


def test_ask_parsed_reasks_with_new_sample_index_and_counts_reasks():
    provider = FakeProvider(["maybe?", "about 7", "64"])
    client = client_for(provider).with_labels(stage="validate", role="judge")
    result, score = asyncio.run(client.ask_parsed(ask(sample_index=3, seed=11), parse_score))
    assert result.ok and score == 64
    assert [r.sample_index for r in provider.calls] == [3, 3 + REASK_STRIDE, 3 + 2 * REASK_STRIDE]
    assert [r.seed for r in provider.calls] == [11, 12, 13]
    entry = client.ledger.entry("validate", "judge")
    assert entry.reasks == 2 and entry.retries == 0 and entry.requests == 3 and entry.failures == {}


def test_ask_parsed_gives_unparseable_after_max_reasks():
    provider = FakeProvider(["no", "still no", "150"])
    client = client_for(provider).with_labels(stage="validate", role="judge")
    result, score = asyncio.run(client.ask_parsed(ask(), parse_score, max_reasks=2))
    assert score is None and not result.ok and result.error_kind == "unparseable"
    assert result.text == "150" and "outside 0-100" in result.error_message
    entry = client.ledger.entry("validate", "judge")
    assert entry.reasks == 2 and entry.failures == {"unparseable": 1} and len(provider.calls) == 3


def test_ask_parsed_does_not_reask_transport_failures():
    client = client_for(FakeProvider([ProviderError("auth", "bad key")]))
    result, score = asyncio.run(client.ask_parsed(ask(), parse_score))
    assert result.error_kind == "auth" and score is None
    assert client.ledger.total().reasks == 0 and client.ledger.total().failures == {"auth": 1}


def test_ask_parsed_replays_from_cache_without_calls(tmp_path):
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        first = client_for(FakeProvider(["nope", "12"]), cache=cache)
        assert asyncio.run(first.ask_parsed(ask(), parse_score))[1] == 12
        replay = client_for(FakeProvider([]), cache=cache)  # an empty script: any call would fail loudly
        result, score = asyncio.run(replay.ask_parsed(ask(), parse_score))
    assert score == 12 and result.cached and replay.ledger.total().reasks == 1


def test_call_many_keeps_order_and_respects_the_concurrency_limit():
    rng = random.Random(5)
    latencies = {f"q{i}": rng.uniform(0.001, 0.01) for i in range(30)}
    provider = FakeProvider(
        responder=lambda r: r.messages[0].content.upper(), latency=lambda r: latencies[r.messages[0].content]
    )
    limiter = ConcurrencyLimiter(3)
    results = client_for(provider, limiter=limiter).run([ask(f"q{i}") for i in range(30)])
    assert [r.text for r in results] == [f"Q{i}" for i in range(30)]
    assert provider.max_in_flight == 3 and limiter.peak == 3 and limiter.in_flight == 0


def test_limiter_is_shared_per_provider_and_works_across_event_loops():
    registry = LimiterRegistry({"fake": 2})
    limiter = registry.get("fake")
    assert registry.get("fake") is limiter and limiter.limit == 2
    assert registry.get("openai").limit == 32 and registry.get("unheard-of").limit == 8
    assert limiter_for("fake") is limiter_for("fake")
    provider = FakeProvider(responder=lambda r: "ok", latency=0.001)
    client = client_for(provider, limiter=limiter)
    for _ in range(2):  # two asyncio.run calls: each loop gets its own semaphore
        assert all(r.ok for r in client.run([ask(f"x{i}") for i in range(6)]))
    assert provider.max_in_flight == 2 and provider.closed == 2


def test_ledger_sums_per_stage_and_role():
    prices = PriceTable({"fake/m": {"input": 1.0, "output": 2.0}})
    ledger = CostLedger()
    base = client_for(
        FakeProvider(responder=lambda r: reply("a b c", input_tokens=1000), model="m"), ledger=ledger, prices=prices
    )
    proposer = base.with_labels(stage="propose", role="proposer")
    judge = base.with_labels(stage="validate", role="judge")
    proposer.run([ask("p1"), ask("p2")])
    judge.run([ask(f"j{i}") for i in range(3)])
    report = ledger.to_dict()
    assert report["by_stage"]["propose"]["proposer"]["requests"] == 2
    assert report["by_stage"]["validate"]["judge"]["input_tokens"] == 3000
    assert report["by_stage"]["validate"]["judge"]["output_tokens"] == 9
    assert ledger.entry("propose", "proposer").cost_usd == pytest.approx(2 * (1000 * 1.0 + 3 * 2.0) / 1e6)
    total = ledger.total()
    assert total.requests == 5 and total.calls == 5 and total.input_tokens == 5000
    assert total.cost_usd == pytest.approx(5 * 0.001006)
    assert report["cost_usd"] == pytest.approx(0.00503) and report["unpriced_models"] == []
    assert report["requests"] == 5 and report["failures"] == {}


def test_ledger_carries_the_run_price_table():
    ledger = CostLedger({"fake/m": {"input": 0.0, "output": 1_000_000.0}})
    client = client_for(FakeProvider([reply("a b", output_tokens=2)], model="m"), ledger=ledger)
    assert client.prices is ledger.prices and client.run([ask()])[0].cost_usd == pytest.approx(2.0)
    with pytest.raises(ValueError):
        CostLedger({"x/y": {"input": 1, "output": 1}}, prices=PriceTable())


def test_unknown_model_costs_nothing_is_flagged_and_warned_once(caplog):
    caplog.set_level(logging.WARNING, logger="lmdelta.llm.pricing")
    client = client_for(FakeProvider(responder=lambda r: "x", model="mystery", name="vendor"))
    results = client.run([ask("a"), ask("b")])
    assert all(r.ok and r.cost_usd == 0.0 for r in results)
    assert client.ledger.total().unpriced_calls == 2
    assert client.ledger.to_dict()["unpriced_models"] == ["mystery"]
    assert sum("vendor/mystery" in m for m in caplog.messages) == 1


def test_price_table_lookup_overrides_and_snapshots():
    table = PriceTable({"openai/gpt-4o-mini": {"input": 1.0, "output": 1.0}})
    assert table.lookup("openai", "gpt-4o-mini").input == 1.0
    assert table.lookup("openai", "gpt-4.1-mini-2025-04-14") == table.lookup("openai", "gpt-4.1-mini")
    assert table.lookup("anthropic", "claude-sonnet-4-20250514").output == 15.0
    assert table.lookup("openrouter", "google/gemini-x") is None
    assert table.lookup("openrouter", "openai/gpt-4.1").input == 2.0
    cost, priced = table.cost("gemini", "gemini-2.5-flash", Usage(1_000_000, 1_000_000))
    assert priced and cost == pytest.approx(2.80)
    with pytest.raises(ValueError, match="input"):
        PriceTable({"x/y": {"in": 1}})


def test_retry_policy_decisions_are_seeded_and_bounded():
    error = ProviderError("transient", "503")
    a, b = RetryPolicy(seed=1), RetryPolicy(seed=1)
    assert [a.delay(error, k, 0.0) for k in range(1, 6)] == [b.delay(error, k, 0.0) for k in range(1, 6)]
    steady = RetryPolicy(jitter=False, base_delay=1.0, max_delay=5.0)
    assert [steady.delay(error, k, 0.0) for k in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert steady.delay(error, 6, 0.0) is None  # max_attempts=6 reached
    assert steady.delay(error, 3, 299.0) == 1.0  # capped by the budget left
    assert steady.delay(error, 1, 300.0) is None
    assert steady.delay(ProviderError("not_found", "no such model"), 1, 0.0) is None
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# ---- identical requests in flight share one call (issue #10 item 12) ----


def test_identical_requests_in_flight_share_one_provider_call(tmp_path):
    provider = FakeProvider(responder=lambda r: r.messages[0].content.upper(), latency=0.001)
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        client = client_for(provider, cache=cache).with_labels(stage="validate", role="judge")
        results = client.run([ask("same")] * 5 + [ask("other")])
    assert [r.text for r in results] == ["SAME"] * 5 + ["OTHER"]
    assert len(provider.calls) == 2
    assert [r.merged for r in results] == [False] + [True] * 4 + [False]
    assert all(r.cached and r.attempts == 0 and r.cost_usd == 0.0 for r in results[1:5])
    entry = client.ledger.entry("validate", "judge")
    assert (entry.requests, entry.calls, entry.cached, entry.merged) == (6, 2, 4, 4)


def test_requests_waiting_on_a_failed_call_fail_too_without_sending():
    time = FakeTime()
    provider = FakeProvider([ProviderError("transient", "HTTP 503", status=503)] * 2)
    client = client_for(provider, time, retry=policy(time, max_attempts=2))
    results = client.run([ask("same")] * 3)
    assert len(provider.calls) == 2  # the first request's two attempts, nothing for the others
    assert [r.error_kind for r in results] == ["transient"] * 3 and [r.attempts for r in results] == [2, 0, 0]
    assert not any(r.cached for r in results) and client.ledger.total().failures == {"transient": 3}


def test_requests_waiting_on_a_call_that_blew_up_do_not_hang():
    with pytest.raises(BaseExceptionGroup) as caught:
        client_for(FakeProvider([])).run([ask("same")] * 3)
    assert caught.group_contains(ScriptExhausted)


def test_merging_is_per_batch_and_later_batches_read_the_cache(tmp_path):
    provider = FakeProvider(["first"])
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        client = client_for(provider, cache=cache)
        assert client.run([ask()] * 2)[1].merged
        again = client.run([ask()])[0]
    assert again.cached and not again.merged and len(provider.calls) == 1


# ---- a fatal error stops the batch from sending (issue #10 item 7) ----


def test_after_a_fatal_error_the_batch_sends_nothing_more():
    provider = FakeProvider(responder=lambda r: ProviderError("auth", "HTTP 401 invalid key", status=401))
    client = client_for(provider, limiter=ConcurrencyLimiter(1))
    results = client.run([ask(f"q{i}") for i in range(20)])
    assert len(provider.calls) == 1
    assert results[0].error_kind == "auth" and {r.error_kind for r in results[1:]} == {"halted"}
    assert all(r.attempts == 0 and "HTTP 401" in r.error_message for r in results[1:])
    assert client.ledger.total().calls == 1


def test_a_fatal_error_also_ends_retries_in_progress():
    time = FakeTime()

    def answer(request):
        return (
            ProviderError("not_found", "no such model")
            if request.messages[0].content == "b"
            else (ProviderError("transient", "HTTP 503"))
        )

    provider = FakeProvider(responder=answer)
    results = client_for(provider, time).run([ask("a"), ask("b")])
    assert [r.error_kind for r in results] == ["halted", "not_found"]
    assert 1 <= results[0].attempts < 6  # retried until "b" failed, then not again


# ---- budget.tokens counts every model, priced or not ----


def test_a_token_budget_stops_calls_to_an_unpriced_model():
    provider = FakeProvider(responder=lambda r: reply("7", input_tokens=10, output_tokens=1), model="mystery")
    budget = Budget(tokens=60)
    # each request is estimated at ceil(3 / 3) + 8 in + 10 out = 19 tokens and uses 11
    results = client_for(provider, budget=budget, limiter=ConcurrencyLimiter(1)).run(
        [ask(f"q{i:02d}", max_tokens=10) for i in range(6)]
    )
    assert [r.ok for r in results] == [True] * 4 + [False] * 2 and len(provider.calls) == 4
    assert budget.spent_tokens == 44 and budget.reserved_tokens == 0 and budget.exhausted_by == "tokens"
    assert "token budget of 60" in results[4].error_message and budget.spent == 0.0


# ---- process-wide limiters (issue #10 item 5) ----


def test_a_new_limit_for_a_provider_applies_to_later_batches():
    registry = LimiterRegistry()
    limiter = registry.get("fake", 2)
    assert registry.get("fake", 5) is limiter and limiter.limit == 5
    provider = FakeProvider(responder=lambda r: "ok", latency=0.001)
    assert all(r.ok for r in client_for(provider, limiter=limiter).run([ask(f"x{i}") for i in range(10)]))
    assert provider.max_in_flight == 5
    with pytest.raises(ValueError):
        registry.get("fake", 0)


def test_limiters_are_per_connection_with_the_provider_types_default():
    registry = LimiterRegistry({"openai-compatible": 3})
    one, other = Connection("openai-compatible", "http://a:1/v1"), Connection("openai-compatible", "http://b:1/v1")
    assert registry.get(one) is registry.get(Connection("openai-compatible", "http://a:1/v1"))
    assert registry.get(one) is not registry.get(other) and registry.get(other).limit == 3
    assert registry.get(Connection("openai-compatible", "http://a:1/v1", account="abc")) is not registry.get(one)
    assert registry.get("openai-compatible") is registry.get(Connection("openai-compatible"))
    # A client's default limiter follows its provider's server.
    a, b = FakeProvider(base_url="http://a:1/v1"), FakeProvider(base_url="http://b:1/v1")
    assert ChatClient(a).limiter is ChatClient(FakeProvider(base_url="http://a:1/v1")).limiter
    assert ChatClient(a).limiter is not ChatClient(b).limiter and ChatClient(b).limiter.name == "fake@http://b:1/v1"


def test_reset_limiters_forgets_pauses_and_limits():
    time = FakeTime()
    paused = limiter_for("fake", 3)
    paused.pause(60.0)
    configure_limits({"openai": 2})
    reset_limiters()
    fresh = limiter_for("fake")
    assert fresh is not paused and fresh.limit == 64 and limiter_for("openai").limit == 32
    assert fresh._resume_at == float("-inf") and time.sleeps == []


def test_a_reply_cut_inside_a_character_is_made_storable(tmp_path):
    """Half of a surrogate pair (a reply cut inside an emoji) cannot be written as UTF-8: it becomes U+FFFD."""
    provider = FakeProvider(["waves \ud83c"])
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        result = client_for(provider, cache=cache).run([ask()])[0]
    assert result.ok and result.text == "waves \ufffd"
    result.text.encode("utf-8")
