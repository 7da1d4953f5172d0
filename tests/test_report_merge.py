"""One finding per claim: the grouping of finding rows by what they claim, the limits of an offline run, the data
warnings read from the run directory and a property finding's raw summary (pure functions over rows and files)."""

from __future__ import annotations

import json
from pathlib import Path

from lmdelta.report.data_warnings import read_data_warnings
from lmdelta.report.limits import run_limits
from lmdelta.report.measure import raw_summary
from lmdelta.report.merge import content_key, merge_findings


def _row(group: str, *, validated: bool = True, p: float = 0.01, **fields) -> dict:
    row = {
        "id": f"{group}-{fields.get('order', 0)}",
        "group": group,
        "direction": "b>a",
        "description": "b uses “important” in more answers than a"
        + ("" if group == "all" else f" (prompts about {group})"),
        "proposer": "keywords",
        "judge": "keyword",
        "keywords": ["important"],
        "property": "uses the word or phrase “important”",
        "order": 0,
        "p_value": p,
        "validated": validated,
    }
    return {**row, **fields}


def test_the_same_keyword_in_four_groups_is_one_finding_with_every_scope() -> None:
    rows = [
        _row("finance", p=0.004, order=3),
        _row("medicine", p=0.001, order=1),
        _row("open_qa", p=0.02, order=2),
        _row("reddit", p=0.3, validated=False, order=4),
        _row("all", p=0.002, order=0),
        _row("finance", keywords=["however"], p=0.01, order=5),
    ]
    merged = merge_findings(rows)
    assert len(merged) == 2
    important = merged[0]
    assert [r["group"] for r in important.rows] == ["finance", "medicine", "open_qa", "reddit", "all"]
    assert important.lead["group"] == "all"  # the pooled scope leads when it is validated
    assert len(important.validated) == 4 and important.scope_phrase() == "in 3 of 4 groups and pooled"
    assert important.description() == "b uses “important” in more answers than a"
    assert not merged[1].merged and merged[1].scope_phrase() == ""
    assert merged[1].description().endswith("(prompts about finance)")


def test_without_a_validated_pooled_scope_the_strongest_group_leads() -> None:
    rows = [_row("finance", p=0.004), _row("medicine", p=0.001), _row("all", p=0.2, validated=False)]
    (merged,) = merge_findings(rows)
    assert merged.lead["group"] == "medicine" and merged.scope_phrase() == "in 2 groups"
    assert merged.groups_phrase() == "in 2 groups"
    assert merged.description() == "b uses “important” in more answers than a"


def test_claims_never_validated_anywhere_are_left_out_and_order_is_by_the_best_p() -> None:
    rows = [
        _row("g1", keywords=["alpha"], p=0.03),
        _row("g1", keywords=["beta"], p=0.5, validated=False),
        _row("g2", keywords=["gamma"], p=0.001),
        _row("g3", keywords=["alpha"], p=0.002),
    ]
    merged = merge_findings(rows)
    assert [m.lead["keywords"] for m in merged] == [["gamma"], ["alpha"]]
    assert [r["group"] for r in merged[1].rows] == ["g1", "g3"]


def test_the_key_is_the_claim_not_the_scope() -> None:
    base = _row("g1")
    assert content_key(base) == content_key(_row("g2", id="other", order=9, p=0.9, description="other words"))
    assert content_key(base) == content_key(_row("g2", keywords=["Important "]))  # case and spaces
    assert content_key(base) != content_key(_row("g2", direction="a>b"))
    assert content_key(base) != content_key(_row("g2", proposer="llm", judge="llm"))
    prop = {"proposer": "properties", "judge": "property", "direction": "b>a", "measure": "word_count"}
    assert content_key({**prop, "group": "g1", "description": "median 182 vs 131 words"}) == content_key(
        {**prop, "group": "g2", "description": "median 90 vs 80 words"}
    )
    assert content_key({**prop, "group": "g1"}) != content_key({**prop, "group": "g2", "measure": "exclamations"})
    llm = {"proposer": "llm", "judge": "llm", "direction": "b>a", "keywords": []}
    assert content_key({**llm, "property": "is formal", "description": "x (prompts about g1)"}) == content_key(
        {**llm, "property": "is formal", "description": "x (prompts about g2)"}
    )
    assert content_key({**llm, "property": "is formal"}) != content_key({**llm, "property": "is terse"})


def test_answer_clusters_of_different_scopes_are_never_merged() -> None:
    cluster = {"proposer": "clusters", "judge": "embedding", "keywords": ["ocean"], "validated": True}
    rows = [{**cluster, "id": "h1", "group": "g1"}, {**cluster, "id": "h2", "group": "g2"}]
    assert len(merge_findings(rows)) == 2


def test_an_offline_run_has_limits_and_one_with_an_llm_proposer_has_none() -> None:
    offline = {"llm": {"proposer": {"model": None}}, "propose": {"keywords": {"enabled": True}, "clusters": {}}}
    limits = run_limits(offline, [_row("g1")])
    assert limits is not None and limits.proposers == ("keywords", "clusters")
    line = limits.line()
    assert "no LLM proposer ran" in line and "factual accuracy" in line
    assert "llm.proposer.model" in line and "llm.judge.model" in line and "docs/llm.md" in line
    with_llm = {**offline, "llm": {"proposer": {"model": "openai/gpt-4.1-mini"}}}
    assert run_limits(with_llm, []) is None
    switched_off = {**with_llm, "propose": {"llm": {"enabled": False}, "properties": {"enabled": True}}}
    assert run_limits(switched_off, []).proposers == ("properties",)
    assert run_limits(offline, [_row("g1", proposer="llm", judge="llm")]) is None
    assert run_limits({}, [_row("g1")]).proposers == ("keywords",)  # no config.yaml: the rows say what ran
    assert run_limits({}, None) is None
    assert run_limits(offline, [_row("g1", proposer="my-own")]) is None  # an unknown proposer may see more


def test_data_warnings_are_the_messages_of_the_recorded_artefacts(tmp_path: Path) -> None:
    folder = tmp_path / "stages" / "prompts"
    folder.mkdir(parents=True)
    artefacts = [
        {"kind": "pretokenised", "message": "corpus: texts look pre-tokenised (“ca n't”) Fix: detokenise."},
        {"kind": "escapes", "message": "corpus: texts hold literal escape sequences (\\n)"},
        {"kind": "escapes", "message": "corpus: texts hold literal escape sequences (\\n)"},
        {"kind": "escapes", "message": ""},
    ]
    (folder / "artefacts.jsonl").write_text("".join(json.dumps(row) + "\n" for row in artefacts))
    assert read_data_warnings(tmp_path) == [
        "corpus: texts look pre-tokenised (“ca n't”) Fix: detokenise.",
        "corpus: texts hold literal escape sequences (\\n)",
    ]
    (folder / "artefacts.jsonl").write_text("{")
    assert read_data_warnings(tmp_path) == []
    assert read_data_warnings(tmp_path / "nowhere") == []


def test_a_property_finding_has_its_raw_summary_and_others_have_none() -> None:
    row = {"measure": "word_count", "measure_statistic": "median", "measure_a": 131.0, "measure_b": 182.0}
    assert raw_summary({**row, "measure_unit": "words"}).text() == "median 131 → 182 words"
    assert raw_summary({**row, "measure_statistic": "mean", "measure_a": 0.4167}).text() == "mean 0.417 → 182"
    share = {"measure_statistic": "share", "measure_a": 0.12, "measure_b": 0.41, "measure_unit": ""}
    assert raw_summary(share).text() == "12% → 41% of answers"
    assert raw_summary(_row("g1")) is None and raw_summary({**row, "measure_b": None}) is None
