"""The proposal order (the online-FDR order): per scope each scope proposer in turn, then each batch
proposer once over all the scopes; every proposer prepared once per comparison."""

from __future__ import annotations

from typing import Any

import numpy as np
from test_propose_scopes import grouped_pair

from lmdelta.config import RunConfig
from lmdelta.pairdata import PairData
from lmdelta.records import Hypothesis
from lmdelta.stages import propose


def _hypothesis(name: str, scope: str) -> Hypothesis:
    return Hypothesis("", scope, "b>a", f"{name} in {scope}", name, "llm", property=name)


class ScopeStub:
    def __init__(self, name: str, prepared: list[str]) -> None:
        self.name = name
        self.prepared = prepared

    def prepare(self, data: PairData, config: RunConfig) -> ScopeStub:
        self.prepared.append(self.name)
        return self

    def propose(self, data: PairData, scope: str, rows: np.ndarray, config: RunConfig) -> list[Hypothesis]:
        assert all(data.samples[i].prompt_id.startswith(scope) or scope == "all" for i in rows)
        return [_hypothesis(self.name, scope)]


class BatchStub:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def prepare(self, config: RunConfig, session: Any) -> BatchStub:
        return self

    def propose_scopes(
        self, data: PairData, scopes: dict[str, np.ndarray], config: RunConfig, search: Any = None
    ) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
        self.asked.append(list(scopes))
        found = [_hypothesis("batch", scope) for scope in scopes if scope != "g2"]
        return found, [{"group": "g2", "rule": "proposer failed", "reason": "no reply"}]


def test_proposers_are_asked_scope_by_scope_then_in_one_batch(monkeypatch):
    prepared: list[str] = []
    batch = BatchStub()

    def turned_off(data, config):
        return None

    monkeypatch.setattr(
        propose,
        "SCOPE_PROPOSERS",
        (ScopeStub("first", prepared).prepare, turned_off, ScopeStub("second", prepared).prepare),
    )
    monkeypatch.setattr(propose, "BATCH_PROPOSERS", (batch.prepare, lambda config, session: None))
    one_round = RunConfig.model_validate({"propose": {"rounds": 1}})  # rounds: tests/test_search.py
    found, skipped = propose.propose_all(grouped_pair({"g1": 9, "g2": 9}), one_round)
    assert [(h.id, h.order, h.proposer, h.group) for h in found] == [
        ("h001", 1, "first", "all"),
        ("h002", 2, "second", "all"),
        ("h003", 3, "first", "g1"),
        ("h004", 4, "second", "g1"),
        ("h005", 5, "first", "g2"),
        ("h006", 6, "second", "g2"),
        ("h007", 7, "batch", "all"),
        ("h008", 8, "batch", "g1"),
    ]
    assert prepared == ["first", "second"] and batch.asked == [["all", "g1", "g2"]]
    assert skipped == [{"group": "g2", "rule": "proposer failed", "reason": "no reply"}]


def test_no_scope_to_propose_in_asks_no_batch_proposer(monkeypatch):
    batch = BatchStub()
    monkeypatch.setattr(propose, "BATCH_PROPOSERS", (batch.prepare,))
    found, skipped = propose.propose_all(grouped_pair({"g1": 2}), RunConfig())
    assert found == [] and batch.asked == [] and skipped[0]["group"] == "all"
