"""Which scopes propose proposes in: group scopes where even a perfect result could not be validated are left out."""

from __future__ import annotations

import json

import numpy as np
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import RunConfig, load_config
from lmdelta.pairdata import PairData
from lmdelta.records import PROPOSER_FAILED as FAILED
from lmdelta.records import Prompt, Sample
from lmdelta.report.null_control import summarize_null
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stages import propose
from lmdelta.stages.contract import reads
from lmdelta.stages.propose import UNREACHABLE, _log_skipped, plan_scopes, unreachable_groups

STRONG = {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.8}}


def grouped_pair(n_validation: dict[str, int], n_discovery: int = 3, aligned: bool = True) -> PairData:
    prompts, samples = [], []
    for group, n in n_validation.items():
        for i in range(n_discovery + n):
            pid = f"{group}-{i}"
            prompts.append(Prompt(pid, f"prompt {pid}", group, "discovery" if i < n_discovery else "validation"))
            for side in ("a", "b"):
                samples.append(
                    Sample(
                        pid if aligned else f"{pid}-{side}", side, 0, f"{side} says {i}", 3, "stop", i, f"{side}{pid}"
                    )
                )
    if not aligned:  # every text its own prompt, as unaligned corpora are read
        prompts = [
            Prompt(
                s.prompt_id,
                "",
                s.prompt_id.split("-")[0],
                "discovery" if int(s.prompt_id.split("-")[1]) < n_discovery else "validation",
            )
            for s in samples
        ]
    return PairData(prompts, samples, np.ones((len(samples), 2)), {p.id: p.group for p in prompts})


def test_a_perfect_result_must_be_able_to_pass_q_over_the_scopes_proposed_in():
    twelve = {f"g{i:02d}": 7 for i in range(12)}  # the demo: 12 groups of 7 validation prompts
    assert unreachable_groups(twelve, 0.05, pooled=True) == {name: 13 for name in twelve}  # 2^-7 > 0.05 / 13
    assert unreachable_groups({"big": 12, "mid": 9, "c": 7, "d": 7}, 0.05, pooled=True) == {}  # 2^-7 <= 0.05 / 5
    assert unreachable_groups({"big": 9, "c": 7, "d": 7}, 0.02, pooled=True) == {"c": 4, "d": 4}
    assert unreachable_groups({"x": 3}, 0.25, pooled=True) == {}  # 2^-3 = 0.25 / 2: a perfect result just passes
    assert unreachable_groups({}, 0.05, pooled=True) == {}


def test_groups_of_equal_size_are_kept_or_left_out_together():
    """Five of the twelve would pass if S counted only those kept; picking them by name would be arbitrary."""
    assert len(unreachable_groups({f"g{i:02d}": 7 for i in range(12)}, 0.05, pooled=True)) == 12


def test_plan_records_the_rule_and_keeps_the_pooled_scope():
    chosen, skipped = plan_scopes(grouped_pair({"g1": 9, "g2": 7, "g3": 7}), RunConfig(decide={"q": 0.02}))
    assert chosen == ["all", "g1"]
    assert [(s["group"], s["rule"], s["n_validation_prompts"], s["scopes"]) for s in skipped] == [
        ("g2", UNREACHABLE, 7, 4),
        ("g3", UNREACHABLE, 7, 4),
    ]
    assert skipped[0]["reason"].startswith(
        "7 validation prompts: even a perfect result (p = 2^-7 = 0.0078) would be above q / 4 = 0.005"
    )


def test_unaligned_corpora_have_no_such_bound():
    """A text-level test's p-value is not bounded by 2^-(prompts): nothing is left out for it."""
    chosen, skipped = plan_scopes(
        grouped_pair({"g1": 9, "g2": 7, "g3": 7}, aligned=False), RunConfig(decide={"q": 0.02})
    )
    assert chosen == ["all", "g1", "g2", "g3"] and skipped == []


def test_the_run_says_so_once_and_records_it_for_both_comparisons(tmp_path, caplog):
    caplog.set_level("INFO", logger="lmdelta")
    path = fake_config(tmp_path, per_group=10, generate__b=STRONG, decide__q=0.02)  # 3 groups of 7 validation prompts
    pipeline.run(load_config(path), RunDir(tmp_path / "run"))
    lines = [r.getMessage() for r in caplog.records if "not proposing in" in r.getMessage()]
    assert len(lines) == 1 and "propose: not proposing in 3 group(s)" in lines[0]
    assert lines[0].endswith("7 validation prompts, 2^-7 = 0.0078 > 0.02 / 4 = 0.005: g0, g1, g2")
    assert not [r for r in caplog.records if "skipping group" in r.getMessage()]
    propose_dir = tmp_path / "run" / "stages" / "propose"
    for name in ("skipped.jsonl", "null_skipped.jsonl"):
        unreachable = [s["group"] for s in read_jsonl(propose_dir / name) if s.get("rule") == UNREACHABLE]
        assert unreachable == ["g0", "g1", "g2"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {s["group"] for s in summary["main"]["skipped_groups"]} == {"g0", "g1", "g2"}
    assert {r["group"] for r in read_jsonl(tmp_path / "run" / "hypotheses.jsonl")} == {"all"}
    assert "3 scopes not proposed in" in (tmp_path / "run" / "report.html").read_text()


def test_q_min_prompts_and_the_seed_re_run_propose(tmp_path):
    pinned = [f"{section}.seed=3" for section in ("prompts", "generate", "group", "propose", "validate")]
    path = fake_config(tmp_path, per_group=10, generate__b=STRONG)
    run_dir = RunDir(tmp_path / "run")
    pipeline.run(load_config(path, pinned), run_dir)

    def reason(*overrides):
        return pipeline.plan(load_config(path, [*pinned, *overrides]), run_dir, tmp_path / "cache").reason["propose"]

    assert reason() is None
    assert reason("decide.q=0.02") == "changed: decide.q: 0.05 → 0.02"
    assert reason("validate.min_prompts=6") == "changed: validate.min_prompts: 5 → 6"
    assert reason("run.seed=4") == "changed: run.seed: 3 → 4"  # the null control's relabelling
    assert "decide.q" not in reads(propose, RunConfig(propose={"scopes": "all"}))  # no group scope: q cannot matter
    assert "run.seed" not in reads(propose, RunConfig(controls={"null": False}))  # no null control to relabel


def test_a_failed_llm_proposer_call_in_the_pooled_scope_is_not_a_pooled_scope_left_out(caplog):
    """The log line re-derived pooled coverage from the skipped list, where a failed call for "all" sits."""
    caplog.set_level("INFO", logger="lmdelta")
    config = RunConfig(decide={"q": 0.02})
    chosen, skipped = plan_scopes(grouped_pair({"g1": 9, "g2": 7, "g3": 7}), config)
    assert "all" in chosen and skipped
    skipped.append({"group": "all", "rule": FAILED, "reason": "LLM proposer failed (timeout): no reply"})
    _log_skipped({"main": skipped}, config)
    line = next(r.getMessage() for r in caplog.records if "not proposing in" in r.getMessage())
    assert "the pooled scope still covers their prompts" in line


def test_the_null_controls_reason_does_not_count_failed_proposer_calls_as_scopes_left_out():
    failed = {"group": "all", "rule": FAILED, "reason": "LLM proposer failed (timeout): no reply"}
    alone = summarize_null([], {"tested": 0, "validated": 0, "skipped_groups": [failed]}).reason
    assert "scopes left out" not in alone and "the LLM proposer failed in: all" in alone
    left_out = {"group": "g2", "rule": UNREACHABLE, "reason": "7 validation prompts: too few"}
    both = summarize_null([], {"tested": 0, "validated": 0, "skipped_groups": [failed, left_out]}).reason
    assert "(scopes left out: g2: 7 validation prompts: too few; the LLM proposer failed in: all)" in both
