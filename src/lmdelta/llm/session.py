"""One stage's view of the assistant LLMs: a client per role, one ledger, one budget.

Spending is summed across stages and resumes from the run manifest, so `budget.usd` caps the
whole run; a stage that reaches it stops with a StageError and resumes when re-run (its
finished calls are in the response cache and cost nothing the second time).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lmdelta.errors import ConfigError, StageError

log = logging.getLogger(__name__)
DEFAULT_TEMPERATURE = {"proposer": 1.0, "judge": 0.0, "summariser": 0.3}


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
        self._clients: dict[tuple[str, str], Any] = {}

    def has(self, role: str) -> bool:
        return getattr(self.config.llm, role).model is not None

    def temperature(self, role: str) -> float:
        value = getattr(self.config.llm, role).temperature
        return DEFAULT_TEMPERATURE[role] if value is None else value

    def client(self, role: str, model: str | None = None):
        """The client for a role (or for another model in that role, e.g. an extra judge)."""
        section = getattr(self.config.llm, role)
        model = model or section.model
        if model is None:
            raise ConfigError(f"This run needs an LLM for the {role} role, but llm.{role}.model is not set.",
                              f"Set llm.{role}.model, e.g. --set llm.{role}.model=openai/gpt-4.1-mini.")
        key = (role, model)
        if key not in self._clients:
            self._clients[key] = self._build(role, model, section.backend_args)
        return self._clients[key]

    def _build(self, role: str, model: str, backend_args: dict[str, Any]):
        from lmdelta.llm.cache import ResponseCache
        from lmdelta.llm.client import ChatClient
        from lmdelta.llm.limiter import limiter_for
        from lmdelta.llm.providers import build_provider
        from lmdelta.llm.retry import RetryPolicy

        llm = self.config.llm
        provider = build_provider(model, key_file=llm.key_file, backend_args=backend_args)
        return ChatClient(provider, cache=ResponseCache(self.cache_dir / "llm.sqlite"),
                          limiter=limiter_for(provider.name, llm.concurrency),
                          retry=RetryPolicy(max_attempts=llm.max_attempts), ledger=self.ledger, budget=self.budget,
                          stage=self.stage, role=role, timeout=llm.timeout)

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
