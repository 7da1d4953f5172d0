"""One stage's view of the assistant LLMs: a client per role, one ledger, one budget.

Spending is summed across stages and resumes from the run manifest, so `budget.usd` caps the
whole run; a stage that reaches it stops with a StageError and resumes when re-run (its
finished calls are in the response cache and cost nothing the second time).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lmdelta.errors import ConfigError, StageError

log = logging.getLogger(__name__)
OUTAGE = frozenset({"rate_limit", "transient", "timeout", "unknown"})
DEFAULT_TEMPERATURE = {"proposer": 1.0, "judge": 0.0, "summariser": 0.3, "prompter": 1.0}


class LLMSession:
    def __init__(self, config, stage: str, cache_dir: Path, run_dir=None) -> None:
        from lmdelta.llm.pricing import Budget, CostLedger

        self.config = config
        self.stage = stage
        self.cache_dir = cache_dir
        self.run_dir = run_dir
        manifest = run_dir.load_manifest() if run_dir is not None else {}
        self._base_total = manifest.get("llm_usage", {})
        self._base_stage = manifest.get("stages", {}).get(stage, {}).get("llm", {})
        self.ledger = CostLedger(overrides=config.llm.prices)
        cap = config.budget.usd
        spent = float(self._base_total.get("cost_usd", 0.0) or 0.0)
        self.budget = Budget(None if cap is None else max(cap - spent, 0.0))
        self._cache = None
        self._providers: dict[tuple[str, str], Any] = {}

    def has(self, role: str) -> bool:
        return getattr(self.config.llm, role).model is not None

    def temperature(self, role: str) -> float:
        value = getattr(self.config.llm, role).temperature
        return DEFAULT_TEMPERATURE[role] if value is None else value

    def model(self, role: str) -> str:
        model = getattr(self.config.llm, role).model
        if model is None:
            raise ConfigError(f"This run needs an LLM for the {role} role, but llm.{role}.model is not set.",
                              f"Set llm.{role}.model, e.g. --set llm.{role}.model=openai/gpt-4.1-mini.")
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

            async def ask_all():
                try:
                    return await asyncio.gather(*(client.ask_parsed(r, parse) for r in requests))
                finally:
                    await client.provider.aclose()
            answers = asyncio.run(ask_all()) if requests else []
            self._stop_on_outage(model, answers)
            return answers
        return ask

    def _stop_on_outage(self, model: str, answers) -> None:
        """Calls that failed past the retry budget mean the provider is down: stop, keep what is paid.

        Unparseable answers are not outages; they are dropped and counted by the caller.
        """
        failed = [result for result, _ in answers if not result.ok and result.error_kind in OUTAGE]
        if not failed:
            return
        self.flush()
        first = failed[0]
        raise StageError(f"{len(failed)} of {len(answers)} calls to {model} failed after retries "
                         f"({first.error_kind}: {first.error_message}); stage {self.stage} stopped.",
                         "Run the same command again when the provider answers: finished calls come from the cache.")

    def client_for(self, role: str, model: str, backend_args: dict[str, Any]):
        from lmdelta.llm.cache import ResponseCache
        from lmdelta.llm.providers import build_provider

        llm = self.config.llm
        if (role, model) not in self._providers:
            # One provider per (role, model) for the whole stage: HTTP adapters reopen their SDK
            # client in each new event loop, and a local model stays loaded.
            self._providers[(role, model)] = build_provider(model, key_file=llm.key_file, backend_args=backend_args)
        if self._cache is None:
            self._cache = ResponseCache(self.cache_dir / "llm.sqlite")
        return make_client(self._providers[(role, model)], llm, self._cache, self.ledger, self.budget,
                           self.stage, role)

    def flush(self) -> None:
        """Record this stage's spending in the manifest: per stage and for the whole run, over resumes."""
        if self.run_dir is None:
            return
        usage = self.usage()
        manifest = self.run_dir.load_manifest()
        manifest["llm_usage"] = _add(self._base_total, usage)
        manifest.setdefault("stages", {}).setdefault(self.stage, {})["llm"] = _add(self._base_stage, usage)
        self.run_dir.save_manifest(manifest)

    def check(self) -> None:
        """Stop the stage cleanly once the budget is spent (re-running resumes from the cache)."""
        self.flush()
        if self.budget.exhausted:
            raise StageError(f"The LLM budget (budget.usd = {self.config.budget.usd}) is spent; "
                             f"stage {self.stage} stopped before finishing.",
                             "Raise budget.usd (e.g. --set budget.usd=20) and run the same command again: "
                             "answers already paid for come from the cache at no cost.")

    def usage(self) -> dict[str, Any]:
        return self.ledger.to_dict()


def make_client(provider, llm, cache, ledger, budget, stage: str, role: str):
    """A ChatClient with the run's LLM settings (concurrency per provider, attempts, timeout)."""
    from lmdelta.llm.client import ChatClient
    from lmdelta.llm.limiter import limiter_for
    from lmdelta.llm.retry import RetryPolicy

    return ChatClient(provider, cache=cache, limiter=limiter_for(provider.name, llm.concurrency),
                      retry=RetryPolicy(max_attempts=llm.max_attempts), ledger=ledger, budget=budget,
                      stage=stage, role=role, timeout=llm.timeout)


def role_identity(config, role: str) -> dict[str, Any] | None:
    """The provider identity of a role's model (checks the model string and the key; no network).

    Part of stage fingerprints: the same model string behind another base URL is another model.
    """
    from lmdelta.llm.providers import build_provider

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
