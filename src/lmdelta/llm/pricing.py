"""What LLM calls cost: a price table with user overrides, a per-(stage, role) ledger, a budget.

The ledger goes into the run manifest; the budget stops a stage, resumably, before a call
that could take spending past the cap.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lmdelta.llm.types import CallResult, ChatRequest, Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    input: float  # USD per million input tokens
    output: float  # USD per million output tokens

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1_000_000


# Vendors' list prices for standard (non-batch, uncached-input) calls as published on their price
# pages in 2025, written down 2026-11-26 without a live check. Prices change and contracts differ:
# users override them (config `llm.prices`, {model: {input: x, output: y}}). Keys are
# "provider/model"; dated snapshots (…-2024-07-18, …-20250514) and "-latest" resolve to the base name.
LIST_PRICES: Mapping[str, Price] = {
    "openai/gpt-4o-mini": Price(0.15, 0.60),
    "openai/gpt-4o": Price(2.50, 10.00),
    "openai/gpt-4.1": Price(2.00, 8.00),
    "openai/gpt-4.1-mini": Price(0.40, 1.60),
    "openai/gpt-4.1-nano": Price(0.10, 0.40),
    "openai/gpt-5": Price(1.25, 10.00),
    "openai/gpt-5-mini": Price(0.25, 2.00),
    "openai/gpt-5-nano": Price(0.05, 0.40),
    "anthropic/claude-sonnet-4": Price(3.00, 15.00),
    "anthropic/claude-sonnet-4-0": Price(3.00, 15.00),
    "anthropic/claude-sonnet-4-5": Price(3.00, 15.00),
    "anthropic/claude-haiku-4-5": Price(1.00, 5.00),
    "anthropic/claude-3-5-haiku": Price(0.80, 4.00),
    "gemini/gemini-2.5-flash": Price(0.30, 2.50),
    "gemini/gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini/gemini-2.5-pro": Price(1.25, 10.00),  # prompts up to 200k tokens
}
# Models run in this process cost nothing per call: local ones, and the fake/ stand-ins a config can name.
# (Tests that use FakeProvider as a stand-in for a paid vendor price it explicitly, with an override.)
FREE_PROVIDERS = frozenset({"local", "fake"})
FREE = Price(0.0, 0.0)
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def _candidates(provider: str, model: str) -> list[str]:
    """Names to look up, most specific first. OpenRouter models are already "vendor/model"."""
    names = [f"{provider}/{model}", model]
    return names + [_SNAPSHOT.sub("", name) for name in names if _SNAPSHOT.search(name)]


def estimate_usage(request: ChatRequest) -> Usage:
    """An upper estimate of one call's tokens: ~3 characters a token in, all of max_tokens out."""
    chars = sum(len(m.content) for m in request.messages)
    return Usage(math.ceil(chars / 3) + 8 * len(request.messages), request.max_tokens)


def _parse_override(model: str, value: Mapping[str, float]) -> Price:
    try:
        return Price(float(value["input"]), float(value["output"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"price override for {model!r} must be {{input: USD per 1M tokens, output: USD per "
            f"1M tokens}}, got {value!r}"
        ) from err


class PriceTable:
    """Prices by model. Unknown models cost 0.0 and are reported as unpriced (warned once each)."""

    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self._prices = dict(LIST_PRICES)
        self._prices.update({m: _parse_override(m, v) for m, v in (overrides or {}).items()})
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def lookup(self, provider: str, model: str) -> Price | None:
        found = next((self._prices[n] for n in _candidates(provider, model) if n in self._prices), None)
        return FREE if found is None and provider in FREE_PROVIDERS else found

    def cost(self, provider: str, model: str, usage: Usage) -> tuple[float, bool]:
        """(USD, priced): priced is False when the model has no price, and then cost is 0.0."""
        price = self.lookup(provider, model)
        if price is None:
            self._warn_unpriced(f"{provider}/{model}")
            return 0.0, False
        return price.cost(usage), True

    def estimate(self, provider: str, model: str, request: ChatRequest) -> float:
        """An upper estimate of one call's cost, for the budget (see estimate_usage)."""
        price = self.lookup(provider, model)
        return 0.0 if price is None else price.cost(estimate_usage(request))

    def _warn_unpriced(self, name: str) -> None:
        with self._lock:
            if name in self._warned:
                return
            self._warned.add(name)
        log.warning("No price known for %s; its calls are counted at $0 (set llm.prices to price them).", name)


class Budget:
    """Caps on spending: `usd` in US dollars, `tokens` in input + output tokens of every model, priced
    or not (None: no cap). Calls reserve an upper estimate of both before going out.

    Reservations make the check hold under concurrency: in-flight calls count at their estimate
    until they settle at their real cost. The first refusal sets `exhausted` for good, and
    `exhausted_by` says which cap ("usd" or "tokens") refused.
    """

    def __init__(self, usd: float | None = None, tokens: int | None = None) -> None:
        self.usd = usd
        self.tokens = tokens
        self.spent = self.reserved = 0.0
        self.spent_tokens = self.reserved_tokens = 0
        self.exhausted = False
        self.exhausted_by: str | None = None
        self._lock = threading.Lock()

    def reserve(self, estimate: float, tokens: int = 0) -> bool:
        with self._lock:
            over = "usd" if self.usd is not None and self.spent + self.reserved + estimate > self.usd else None
            if over is None and self.tokens is not None:
                over = "tokens" if self.spent_tokens + self.reserved_tokens + tokens > self.tokens else None
            if self.exhausted or over:
                self.exhausted = True
                self.exhausted_by = self.exhausted_by or over
                return False
            self.reserved += estimate
            self.reserved_tokens += tokens
            return True

    def settle(self, estimate: float, cost: float, tokens_estimate: int = 0, tokens_used: int = 0) -> None:
        with self._lock:
            self.reserved -= estimate
            self.spent += cost
            self.reserved_tokens -= tokens_estimate
            self.spent_tokens += tokens_used

    def refusal(self) -> str:
        """Why a call was refused, for its error message."""
        if self.exhausted_by == "tokens":
            return f"the LLM token budget of {self.tokens:,} would be exceeded ({self.spent_tokens:,} tokens used)"
        return f"the LLM budget of ${self.usd:g} would be exceeded (spent ${self.spent:.4f})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "usd": self.usd,
            "spent_usd": round(self.spent, 6),
            "tokens": self.tokens,
            "spent_tokens": self.spent_tokens,
            "exhausted": self.exhausted,
        }


@dataclass
class LedgerEntry:
    """Counts for one (stage, role). `calls` are attempts that reached the provider.

    `cached` counts requests answered without a call of their own; `merged` is the part of them that
    shared the reply of an identical request in flight at the same time (the rest came from the cache).
    """

    requests: int = 0
    calls: int = 0
    retries: int = 0
    cached: int = 0
    merged: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    reasks: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def add(self, other: LedgerEntry) -> None:
        for name in (
            "requests",
            "calls",
            "retries",
            "cached",
            "merged",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "unpriced_calls",
            "reasks",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, count in other.failures.items():
            self.failures[kind] = self.failures.get(kind, 0) + count

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cost_usd": round(self.cost_usd, 6), "failures": dict(sorted(self.failures.items()))}


class CostLedger:
    """Calls, tokens, cost, cache hits, failures and re-asks per (stage, role); thread-safe.

    It carries the run's PriceTable (`prices`, or one built from `overrides`), so every client
    sharing the ledger prices alike and an unknown model is warned about once per run.
    """

    def __init__(
        self, overrides: Mapping[str, Mapping[str, float]] | None = None, *, prices: PriceTable | None = None
    ) -> None:
        if prices is not None and overrides:
            raise ValueError("give CostLedger either price overrides or a PriceTable, not both")
        self.prices = prices if prices is not None else PriceTable(overrides)
        self._entries: dict[tuple[str, str], LedgerEntry] = {}
        self._unpriced: set[str] = set()
        self._lock = threading.Lock()

    def _entry(self, stage: str, role: str) -> LedgerEntry:
        return self._entries.setdefault((stage, role), LedgerEntry())

    def record(self, stage: str, role: str, result: CallResult, *, model: str = "", priced: bool = True) -> None:
        """Account for one finished ChatClient.call."""
        with self._lock:
            entry = self._entry(stage, role)
            entry.requests += 1
            entry.calls += result.attempts
            entry.retries += max(0, result.attempts - 1)
            entry.cached += int(result.cached)
            entry.merged += int(result.merged)
            entry.input_tokens += result.usage.input_tokens
            entry.output_tokens += result.usage.output_tokens
            entry.cost_usd += result.cost_usd
            if not priced and result.attempts and not result.cached:
                entry.unpriced_calls += 1
                self._unpriced.add(model)
            if not result.ok and result.error_kind is not None:
                entry.failures[result.error_kind] = entry.failures.get(result.error_kind, 0) + 1

    def record_reask(self, stage: str, role: str) -> None:
        with self._lock:
            self._entry(stage, role).reasks += 1

    def record_failure(self, stage: str, role: str, kind: str) -> None:
        """A failure found after the call, e.g. an answer that never parsed ("unparseable")."""
        with self._lock:
            entry = self._entry(stage, role)
            entry.failures[kind] = entry.failures.get(kind, 0) + 1

    def entry(self, stage: str, role: str) -> LedgerEntry:
        """A copy of one (stage, role)'s counts (zeros if it made no calls)."""
        with self._lock:
            copy = LedgerEntry()
            copy.add(self._entries.get((stage, role), LedgerEntry()))
            return copy

    def total(self) -> LedgerEntry:
        with self._lock:
            total = LedgerEntry()
            for entry in self._entries.values():
                total.add(entry)
            return total

    def to_dict(self) -> dict[str, Any]:
        """For the run manifest: the totals at the top level (requests, calls, …, cost_usd, failures),
        then "by_stage": {stage: {role: the same counts}} and "unpriced_models": [...].

        Every count is a number in nested mappings, so records from resumed runs add leaf by leaf.
        """
        by_stage: dict[str, dict[str, Any]] = {}
        with self._lock:
            for (stage, role), entry in sorted(self._entries.items()):
                by_stage.setdefault(stage or "unspecified", {})[role or "unspecified"] = entry.to_dict()
            unpriced = sorted(self._unpriced)
        return {**self.total().to_dict(), "by_stage": by_stage, "unpriced_models": unpriced}
