"""One stage's view of the assistant LLMs: a client per role, one ledger, one budget.

Spending is summed across stages and resumes from the run manifest, so `budget.usd` and
`budget.tokens` cap the whole run; a stage that reaches one stops with a StageError and resumes
when re-run (its finished calls are in the response cache and cost nothing the second time).
A stage stops the same way when its answers cannot be trusted as complete: a rejected key or an
unknown model (types.FATAL), an outage, or more failed calls than `llm.max_failure_share`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from lmdelta import execution
from lmdelta.backends.registry import parse_model
from lmdelta.errors import ConfigError, StageError
from lmdelta.llm.cache import ResponseCache
from lmdelta.llm.client import ChatClient
from lmdelta.llm.limiter import Connection, limiter_for
from lmdelta.llm.pricing import Budget, CostLedger, PriceTable
from lmdelta.llm.progress import BatchProgress
from lmdelta.llm.providers import build_provider, key_source, parse_model_string
from lmdelta.llm.providers.local_chat import LocalChat
from lmdelta.llm.providers.ray_chat import RayChat
from lmdelta.llm.retry import RetryPolicy
from lmdelta.llm.types import FATAL, CallResult

log = logging.getLogger(__name__)
# Failures past the retry budget: the provider is down or overloaded. One stops the stage.
OUTAGE = frozenset({"rate_limit", "transient", "timeout", "unknown"})
# Failures left out of the failure share (llm.max_failure_share): unparseable answers are re-asked and
# counted apart, a budget refusal stops the stage with its own message.
NOT_COUNTED = frozenset({"unparseable", "budget"})
# Every role, with its default temperature: the judges score at 0, the writers sample.
DEFAULT_TEMPERATURE = {"proposer": 1.0, "judge": 0.0, "strong_judge": 0.0, "summariser": 0.3, "prompter": 1.0}


class LLMSession:
    def __init__(self, config, stage: str, cache_dir: Path, run_dir=None) -> None:
        check_budget_pricing(config)
        self.config = config
        self.stage = stage
        self.cache_dir = cache_dir
        self.run_dir = run_dir
        manifest = run_dir.load_manifest() if run_dir is not None else None
        record = manifest.stage(stage) if manifest is not None else None
        self._base_total = (manifest.llm_usage if manifest is not None else None) or {}
        self._base_stage = (record.llm if record is not None else None) or {}
        self.ledger = CostLedger(overrides=config.llm.prices)
        self.budget = _remaining_budget(config.budget, self._base_total)
        self._cache: ResponseCache | None = None
        self._providers: dict[tuple[str, str], Any] = {}

    def has(self, role: str) -> bool:
        return getattr(self.config.llm, role).model is not None

    def temperature(self, role: str) -> float:
        value = getattr(self.config.llm, role).temperature
        return DEFAULT_TEMPERATURE[role] if value is None else value

    def model(self, role: str) -> str:
        model = getattr(self.config.llm, role).model
        if model is None:
            raise ConfigError(
                f"This run needs an LLM for the {role} role, but llm.{role}.model is not set.",
                f"Set llm.{role}.model, e.g. --set llm.{role}.model=openai/gpt-4.1-mini.",
            )
        return model

    def asker(self, role: str, model: str | None = None):
        """A function (requests, parse) -> [(CallResult, parsed)] for a role (or another model in it).

        Each batch runs in its own event loop with a fresh provider, closed at the end, because
        SDK clients are bound to the loop that made them; cache, ledger and budget are shared.
        """
        model = model or self.model(role)
        backend_args = getattr(self.config.llm, role).backend_args

        def ask(requests, parse):
            client = self.client_for(role, model, backend_args)
            progress = BatchProgress(f"{self.stage} {role}", len(requests), lambda: self.ledger.total().cost_usd)

            async def ask_all():
                try:
                    return await asyncio.gather(*(progress.track(client.ask_parsed(r, parse)) for r in requests))
                finally:
                    await client.provider.aclose()

            answers = asyncio.run(ask_all()) if requests else []
            self._stop_on_failures(model, [result for result, _ in answers])
            return answers

        return ask

    def _stop_on_failures(self, model: str, results: list[CallResult]) -> None:
        """Stop the stage, keeping what is paid, when a batch's answers cannot be trusted as complete:
        a fatal error (bad key, unknown model, refused request), an outage past the retry budget,
        a spent budget, or more failures than llm.max_failure_share allows.

        Unparseable answers are none of these; they are dropped and counted by the caller.
        """
        fatal = [r for r in results if r.error_kind in FATAL]
        outage = [r for r in results if r.error_kind in OUTAGE]
        if fatal or outage:
            self.flush()
        if fatal:
            raise fatal_stop(model, results, self.stage, self.config.llm.key_file)
        if outage:
            first = outage[0]
            raise StageError(
                f"{len(outage)} of {len(results)} calls to {model} failed after retries "
                f"({first.error_kind}: {first.error_message}); stage {self.stage} stopped.",
                "Run the same command again when the provider answers: finished calls come from the cache.",
            )
        if self.budget.exhausted:
            self.check()
        self._stop_on_failure_share(model, results)

    def _stop_on_failure_share(self, model: str, results: list[CallResult]) -> None:
        failed = [r for r in results if not r.ok and r.error_kind not in NOT_COUNTED]
        share = self.config.llm.max_failure_share
        if not failed or len(failed) <= share * len(results):
            return
        self.flush()
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(Counter(r.error_kind for r in failed).items()))
        raise StageError(
            f"{len(failed)} of {len(results)} calls to {model} failed ({kinds}; first: "
            f"{failed[0].error_message}), more than llm.max_failure_share = {share:g} allows; "
            f"stage {self.stage} stopped rather than report results missing them.",
            "Run the same command again to retry the failed calls (finished ones come from the "
            "cache). If the same calls keep failing (e.g. a content filter), use another model or "
            "raise llm.max_failure_share.",
        )

    def client_for(self, role: str, model: str, backend_args: dict[str, Any]):
        llm = self.config.llm
        if (role, model) not in self._providers:
            # One provider per (role, model) for the whole stage: HTTP adapters reopen their SDK
            # client in each new event loop, and a local model stays loaded.
            self._providers[(role, model)] = self._provider(model, backend_args)
        if self._cache is None:
            self._cache = ResponseCache(self.cache_dir / "llm.sqlite")
        return make_client(self._providers[(role, model)], llm, self._cache, self.ledger, self.budget, self.stage, role)

    def _provider(self, model: str, backend_args: dict[str, Any]):
        """The model's adapter; a local model on a Ray run is served by Ray workers (its pool ends with the stage)."""
        provider = build_provider(model, key_file=self.config.llm.key_file, backend_args=backend_args)
        if isinstance(provider, LocalChat) and execution.on_ray(self.config.execution):
            return RayChat(parse_model_string(model).model, dict(backend_args), self.config.execution)
        return provider

    def flush(self) -> None:
        """Record this stage's spending in the manifest: per stage and for the whole run, over resumes."""
        if self.run_dir is None:
            return
        usage = self.usage()
        self.run_dir.record_llm_usage(self.stage, _add(self._base_total, usage), _add(self._base_stage, usage))

    def check(self) -> None:
        """Stop the stage cleanly once the budget is spent (re-running resumes from the cache)."""
        self.flush()
        if not self.budget.exhausted:
            return
        if self.budget.exhausted_by == "tokens":
            cap, example = f"budget.tokens = {self.config.budget.tokens:,}", "--set budget.tokens=2000000"
        else:
            cap, example = f"budget.usd = {self.config.budget.usd}", "--set budget.usd=20"
        raise StageError(
            f"The LLM budget ({cap}) is spent; stage {self.stage} stopped before finishing.",
            f"Raise it (e.g. {example}) and run the same command again: answers already paid "
            "for come from the cache at no cost.",
        )

    def usage(self) -> dict[str, Any]:
        return self.ledger.to_dict()


def _remaining_budget(section, spent: dict[str, Any]) -> Budget:
    """The run's caps less what earlier stages and interrupted runs of this configuration spent."""
    usd = float(spent.get("cost_usd", 0.0) or 0.0)
    tokens = int(spent.get("input_tokens", 0) or 0) + int(spent.get("output_tokens", 0) or 0)
    return Budget(
        None if section.usd is None else max(section.usd - usd, 0.0),
        None if section.tokens is None else max(section.tokens - tokens, 0),
    )


def check_budget_pricing(config) -> None:
    """With budget.usd set, refuse up front a run whose paid models have no price: their calls would
    count as $0 and the budget could never stop them. `local/` and `fake/` models are free. No network."""
    if config.budget.usd is None:
        return
    table = PriceTable(config.llm.prices)
    names = dict.fromkeys(_price_name(m) for m in paid_models(config))  # `api:` names come as written
    unpriced = [name for name in names if name and not _priced(table, name)]
    if not unpriced:
        return
    example = f"--set 'llm.prices={{\"{unpriced[0]}\": {{input: 0.5, output: 1.5}}}}'"
    its = "its" if len(unpriced) == 1 else "their"
    raise ConfigError(
        f"budget.usd is set, but no price is known for {', '.join(unpriced)}: {its} calls would count "
        "as $0, so the budget could not stop them.",
        f"Give {its} price in USD per million tokens, e.g. {example} (input: 0, output: 0 for a free "
        "server of your own), or remove budget.usd (budget.tokens caps the tokens of any model).",
    )


def paid_models(config) -> list[str]:
    """Every model string the run may call through the LLM client: assistant roles, extra judges and
    served generators (`api:…`), in config order, each once."""
    models = [getattr(config.llm, role).model for role in DEFAULT_TEMPERATURE] + list(config.validate.extra_judges)
    if not config.uses_corpus:
        for side in ("a", "b"):
            ref = parse_model(getattr(config.generate, side).model, "generator")
            models.append(ref.name if ref.kind == "api" else None)
    return list(dict.fromkeys(m for m in models if m))


def _price_name(model: str) -> str | None:
    """`provider/model` as llm.prices names it (no server URL); None for fake models, which cost nothing."""
    if _is_fake(model):
        return None
    spec = parse_model_string(model)
    return f"{spec.provider}/{spec.model}"


def _is_fake(model: str) -> bool:
    return model.partition("/")[0].strip().lower() == "fake"


def _priced(table: PriceTable, name: str) -> bool:
    provider, _, model = name.partition("/")
    return table.lookup(provider, model) is not None


def fatal_stop(model: str, results: list[CallResult], stage: str, key_file=None) -> StageError:
    """The StageError for a batch that hit an error every other call would get too (types.FATAL)."""
    sent = [r for r in results if r.error_kind in FATAL and not r.merged]
    unsent = sum(r.error_kind == "halted" or (r.error_kind in FATAL and r.merged) for r in results)
    first = sent[0]
    not_sent = f"; {unsent} more {'was' if unsent == 1 else 'were'} not sent" if unsent else ""
    problem = (
        f"{len(sent)} of {len(results)} calls to {model} failed with {first.error_kind} "
        f"({first.error_message}){not_sent}. Stage {stage} stopped."
    )
    source = key_source(model, key_file)
    key = f"the API key (read from {source})" if source else "the server's settings"
    fixes: dict[str | None, str] = {  # by the kinds in FATAL
        "auth": f"The provider rejected the key: check {key}; it must be valid for this provider and "
        f"server, with credit left, and allowed to use {model}.",
        "not_found": f"The provider does not know {model}: check the model name and the server URL, "
        f"and that {key} may use it.",
        "bad_request": f"The provider refused the request itself: check the model name {model}, its "
        f"backend_args and max_tokens, and {key}.",
    }
    fix = fixes[first.error_kind]
    if _is_fake(model):
        fix = (
            f"{model} answers from its script or built-in rules only: add a rule or a reply for this prompt "
            "(see docs/llm-providers.md, fake models)."
        )
    return StageError(problem, fix + " Then run the same command again: finished calls come from the cache.")


def make_client(provider, llm, cache, ledger, budget, stage: str, role: str):
    """A ChatClient with the run's LLM settings (concurrency per connection, attempts, timeout)."""
    return ChatClient(
        provider,
        cache=cache,
        limiter=limiter_for(Connection.of(provider), concurrency(provider, llm)),
        retry=RetryPolicy(max_attempts=llm.max_attempts),
        ledger=ledger,
        budget=budget,
        timeout=llm.timeout,
    ).with_labels(stage=stage, role=role)


def concurrency(provider, llm) -> int:
    """In-flight calls to `provider`: `llm.concurrency`, unless the provider knows how many calls it serves at
    once (RayChat: its workers' batches); a `llm.concurrency` the config sets still caps that."""
    own = getattr(provider, "concurrency", None)
    if own is None:
        return llm.concurrency
    return min(own, llm.concurrency) if "concurrency" in llm.model_fields_set else own


def role_identity(config, role: str) -> dict[str, Any] | None:
    """The provider identity of a role's model (checks the model string and the key; no network).

    Part of stage fingerprints: the same model string behind another base URL is another model.
    """
    section = getattr(config.llm, role)
    if section.model is None:
        return None
    provider = build_provider(section.model, key_file=config.llm.key_file, backend_args=section.backend_args)
    return dict(provider.identity())


def _add(base: Any, extra: Any) -> Any:
    """Sum two usage records leaf by leaf (numbers add, nested mappings merge)."""
    if isinstance(base, dict) and isinstance(extra, dict):
        return {k: _add(base.get(k), extra.get(k)) for k in base.keys() | extra.keys()}
    if base is None:
        return extra
    if extra is None:
        return base
    if isinstance(base, (int, float)) and isinstance(extra, (int, float)) and not isinstance(base, bool):
        return base + extra
    return extra
