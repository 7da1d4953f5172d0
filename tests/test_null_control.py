"""The null control: a and b swapped at random per prompt, run through propose and validate (STATISTICS.md §6),
and how the report and the terminal describe what it found."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import RunConfig, ValidateConfig, load_config
from lmdelta.hashing import child_seed
from lmdelta.pairdata import PairData, null_pair
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.report.null_control import clopper_pearson, headline, ks_excess_small, summarize_null
from lmdelta.report.table import findings_table
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stages.propose import plan_scopes
from lmdelta.validate.findings import validate_all

STRONG = {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.8}}
OCEAN = Hypothesis("h1", "all", "b>a", "b mentions ocean", "keywords", "keyword", keywords=("ocean",), order=1)
CONFIG = ValidateConfig(n_resamples=1000, seed=0, generalization=False)


def make_pair(n_prompts=40, per_side=1, rate_a=0.1, rate_b=0.9, seed=0) -> PairData:
    """Every text unique (it names its side, prompt and index), so a relabelled sample can be traced back."""
    rng = np.random.default_rng(seed)
    prompts, samples = [], []
    for p in range(n_prompts):
        split = "discovery" if p % 8 < 2 else "validation"  # a quarter, in both groups
        prompts.append(Prompt(f"p{p}", f"prompt {p}", ("g1", "g2")[p % 2], split))
        for side, rate in (("a", rate_a), ("b", rate_b)):
            for k in range(per_side):
                place = "ocean" if rng.random() < rate else "park"
                samples.append(
                    Sample(
                        f"p{p}",
                        side,
                        k,
                        f"{side}{p}x{k} we walk the {place} today",
                        6,
                        "stop",
                        int(rng.integers(1 << 30)),
                        f"{side}{p}{k}",
                    )
                )
    vectors = np.array([[1.0, 0.0] if "ocean" in s.text else [0.0, 1.0] for s in samples])
    return PairData(prompts, samples, vectors, {p.id: p.group for p in prompts})


def unaligned_pair(n_texts=30) -> PairData:
    """Saved corpora without shared prompts: every text is its own prompt (as sources.corpus makes them)."""
    prompts, samples = [], []
    for i in range(n_texts):
        side = "a" if i % 2 else "b"
        prompts.append(Prompt(f"t{i}", "", "all", "discovery" if i % 3 == 0 else "validation"))
        samples.append(Sample(f"t{i}", side, 0, f"{side} text {i}", 3, "stop", i, f"k{i}"))
    return PairData(prompts, samples, np.eye(n_texts), {p.id: "all" for p in prompts})


def original_side(sample: Sample) -> str:
    return sample.text[0]


# ---------------------------------------------------------------- the relabelling


def test_each_prompt_swaps_as_a_whole_and_both_splits_are_relabelled():
    data = make_pair(per_side=3)
    null = null_pair(data, seed=7)
    assert [s.text for s in null.samples] == [s.text for s in data.samples] and null.vectors is data.vectors
    swapped_by_prompt: dict[str, set[bool]] = {}
    for sample in null.samples:
        swapped_by_prompt.setdefault(sample.prompt_id, set()).add(sample.side != original_side(sample))
    assert all(len(flags) == 1 for flags in swapped_by_prompt.values()), "a prompt's answers were split up"
    swapped = {pid for pid, flags in swapped_by_prompt.items() if flags == {True}}
    for split in ("discovery", "validation"):
        ids = {p.id for p in data.prompts if p.split == split}
        assert 0 < len(ids & swapped) < len(ids), f"{split} prompts are not relabelled at random"
    per_prompt = {(s.prompt_id, s.side) for s in null.samples}
    assert len(per_prompt) == 2 * len(data.prompts)  # every prompt still has 3 answers on each side
    assert null.labels == {"a": "relabelled a", "b": "relabelled b"}


def test_the_relabelling_follows_the_seed():
    data = make_pair()

    def swaps(seed):
        return [s.side for s in null_pair(data, seed).samples]

    assert swaps(1) == swaps(1) and swaps(1) != swaps(2)
    assert null_pair(data, -5).samples  # any int seeds it


def test_a_missing_prompt_leaves_every_other_prompts_coin_where_it_was():
    """Coins drawn in order of the sorted prompt ids shifted every later coin when one prompt was missing."""
    data = make_pair()
    fewer = PairData(data.prompts, [s for s in data.samples if s.prompt_id != "p0"], data.vectors, data.groups)
    sides = {s.key: s.side for s in null_pair(data, 11).samples}
    assert all(sides[s.key] == s.side for s in null_pair(fewer, 11).samples)


def test_child_seeds_are_stable_and_apart():
    assert child_seed(3, "null control", "p1") == child_seed(3, "null control", "p1") < 2**64
    assert (
        len(
            {
                child_seed(3, "null control", "p1"),
                child_seed(4, "null control", "p1"),
                child_seed(3, "null control", "p2"),
                child_seed(3, "balanced subsample", "p1"),
            }
        )
        == 4
    )
    assert child_seed(None, "x") == child_seed(0, "x")


def test_unaligned_corpora_are_relabelled_text_by_text():
    data = unaligned_pair()
    null = null_pair(data, seed=3)
    flips = [s.side != original_side(s) for s in null.samples]
    assert 0 < sum(flips) < len(flips)
    assert not null.shares_prompts()  # still unaligned: the text-level test runs, as in the main comparison


def test_with_one_sample_per_prompt_the_null_control_has_both_sides_everywhere():
    """The old control split a's samples in two halves: with one sample per prompt side b was empty."""
    null = null_pair(make_pair(per_side=1), seed=0)
    chosen, skipped = plan_scopes(null, RunConfig(validate={"min_prompts": 5}))
    assert chosen == ["all", "g1", "g2"] and skipped == []
    for split in ("discovery", "validation"):
        assert {null.samples[i].side for i in null.rows(split)} == {"a", "b"}


def test_a_real_difference_does_not_survive_the_relabelling():
    """Relabelled, a strong difference gives each prompt's difference a random sign: p-values stay valid."""
    data = make_pair(n_prompts=32, per_side=2, rate_a=0.05, rate_b=0.95)
    assert validate_all(data, [OCEAN], CONFIG, q=0.05)[0].p_value < 0.001
    p = np.array([validate_all(null_pair(data, seed), [OCEAN], CONFIG, q=0.05)[0].p_value for seed in range(150)])
    assert np.mean(p <= 0.05) <= 0.1 and 0.3 < np.mean(p) < 0.7


# ---------------------------------------------------------------- end to end


def test_at_one_sample_per_prompt_the_main_run_validates_and_the_null_control_tests_but_does_not(tmp_path):
    path = fake_config(tmp_path, per_group=16, generate__b=STRONG, generate__samples_per_prompt=1)
    pipeline.run(load_config(path), RunDir(tmp_path / "run"))
    root = tmp_path / "run"
    summary = json.loads((root / "summary.json").read_text())
    main = list(read_jsonl(root / "hypotheses.jsonl"))
    assert any(r["validated"] and r["keywords"][:1] == ["ocean"] and r["direction"] == "b>a" for r in main)
    null = list(read_jsonl(root / "null_control.jsonl"))
    tested = [r for r in null if r["p_value"] is not None]
    assert tested and summary["null"]["tested"] == len(tested) and summary["null"]["validated"] == 0
    assert not any(r["validated"] for r in null) and all("relabelled" in r["description"] for r in null)
    assert "sign-flip" in tested[0]["test"]  # the main comparison's test, at k = 1 too
    html = (root / "report.html").read_text()
    assert f'class="pill ok" href="#null">null control (random a/b relabelling): 0 of {len(tested)} validated' in html
    lines = findings_table(root).splitlines()
    assert lines[1].startswith(f"null control (a/b relabelled at random): 0 of {len(tested)} validated; p ≤ 0.05 in ")


# ---------------------------------------------------------------- what the report makes of it


def row(p, validated=False):
    return {"p_value": p, "validated": validated}


def test_off_when_it_did_not_run():
    assert summarize_null(None, None).status == "off" and headline(summarize_null(None, None)) is None


def test_nothing_tested_is_not_testable_with_the_reason_never_passed():
    skipped = [{"group": group, "reason": "6 validation prompts: too few"} for group in ("g1", "g2")]
    found = summarize_null([], {"tested": 0, "validated": 0, "skipped_groups": skipped})
    assert found.status == "untestable" and "g1, g2: 6 validation prompts: too few" in found.reason
    assert headline(found).startswith("null control: not testable (it proposed no hypotheses")
    assert "proposers found no difference" in summarize_null([], {"tested": 0, "validated": 0}).reason
    assert "none of its 2 hypotheses" in summarize_null([row(None), row(None)], {}).reason


def test_a_passed_null_control_describes_its_p_values():
    found = summarize_null([row(0.01), row(0.2), row(0.5), row(0.9), row(None)], {"tested": 4, "validated": 0})
    assert (found.status, found.tested, found.validated, found.small) == ("passed", 4, 0, 1)
    assert found.small_ci == pytest.approx((0.00631, 0.80591), abs=1e-4)
    assert found.ks == pytest.approx(0.3) and 0 < found.ks_p < 1 and not found.leans_small
    assert headline(found) == (
        "null control (a/b relabelled at random): 0 of 4 validated; p ≤ 0.05 in 1 of 4 "
        f"(25%, 95% CI 1%–81%), KS D+ = 0.30 (p = {found.ks_p:.2f})"
    )


def test_a_validated_null_hypothesis_fails_the_control_and_too_many_small_p_values_are_named():
    rows = [row(0.0001, True)] + [row(0.01)] * 9 + [row(0.6)] * 10
    found = summarize_null(rows, None)
    assert found.status == "failed" and found.validated == 1 and found.leans_small
    assert headline(found).startswith("null control FAILED (a/b relabelled at random, no real difference): 1 of 20")
    assert headline(found).endswith("more small p-values than chance allows")


def test_clopper_pearson_and_ks_against_known_values():
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 0.30850), abs=1e-5)
    assert clopper_pearson(10, 10) == pytest.approx((0.69150, 1.0), abs=1e-5)
    statistic, p = ks_excess_small([0.5])
    assert statistic == pytest.approx(0.5) and p == pytest.approx(0.5)


def test_the_null_control_and_weighted_views_share_the_scored_discovery_texts():
    """Main, null and a search round's weighted view hold the same texts: one batch, scored once."""
    from dataclasses import replace

    from lmdelta.properties import CATALOGUE

    data = make_pair()
    rows = data.rows("discovery")
    views = [data, null_pair(data, seed=3), replace(data, weights=np.full(len(data.samples), 0.5))]
    batches = [view.texts(rows) for view in views]
    assert all(batch is batches[0] for batch in batches)
    assert list(batches[0]) == [data.samples[i].text for i in rows]
    CATALOGUE[0].score(batches[0])
    assert CATALOGUE[0].scorer in views[1].texts(rows).__dict__["_results"]  # scored once, for every view
    assert data.texts(rows[:3]) is not batches[0]  # other rows, another batch


def test_released_analyses_keep_every_scored_property_for_every_view():
    """Once the proposers are prepared the texts' token-level analyses go; the scores stay, and a property scored
    after that computes what it needs again, to the same values."""
    from lmdelta.properties import CATALOGUE

    data = make_pair()
    rows = data.rows("discovery")
    batch = data.texts(rows)
    first = [prop.score(batch) for prop in CATALOGUE[:3]]
    assert "_tokenised" in batch.__dict__
    null_pair(data, seed=3).release_analyses()  # any view: they share the batches
    assert "_tokenised" not in batch.__dict__ and "prose" not in batch.__dict__
    scorers = set(batch.__dict__["_results"])
    assert all(prop.scorer in scorers for prop in CATALOGUE[:3])
    assert all(np.array_equal(prop.score(batch), old, equal_nan=True) for prop, old in zip(CATALOGUE[:3], first))
    late = CATALOGUE[-1].score(batch)  # not scored before the release: recomputed from the texts
    assert np.array_equal(late, CATALOGUE[-1].score(list(batch)), equal_nan=True)
