"""Answers per prompt that grow where a hypothesis's prompts run short (validate.sequential.Depth): when the
rule deepens and when it does not, the within-prompt share it reads, and the type-I error of the e-process
when the depth is chosen from the prompts seen (seeded simulations, fast)."""

import numpy as np
import pytest
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.records import Hypothesis
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stages.rounds import Family, Loop
from lmdelta.validate.sequential import Depth, Rounds, Stopping, assess, growth, within_share
from lmdelta.validate.sets import ValidationSet, pair_differences

RULE = Depth(start=1, most=4, min_effect=0.1)
ONE, TWO = np.ones(16, dtype=int), np.full(16, 2)  # the depth each seen prompt was read at
EAGER = Depth(start=1, most=4, min_effect=0.0)  # deepens on any estimate a standard error past zero


def sparse(hits: int, n: int) -> np.ndarray:
    """n per-prompt differences of one answer a side: `hits` prompts where only b shows the property."""
    d = np.zeros(n)
    d[:hits] = 1.0
    return d


# 16 prompts, one answer a side, both sides show the property at times: b alone on 6, a alone on 2.
NOISY = np.array([1.0] * 6 + [-1.0] * 2 + [0.0] * 8)


def test_a_promising_hypothesis_short_of_prompts_takes_deeper_answers():
    # mean 0.25, sd 0.68: e = 2 -> 280 takes about 84 prompts at one answer a side, 47 at two, 39 at three;
    # planned on half that growth (PLAN_SHARE), 168, 94 and 78
    assert RULE.next(NOISY, "b>a", 2.0, 280.0, left=100, depths=ONE, within=None) == 2
    assert RULE.next(NOISY, "b>a", 2.0, 280.0, left=400, depths=ONE, within=None) == 1  # prompts enough: stay
    assert RULE.next(NOISY, "b>a", 2.0, 280.0, left=16, depths=ONE, within=None) == 1  # no depth is enough: stay


def test_deeper_answers_are_worth_less_where_the_stake_nears_its_cap():
    # 3 of 16 prompts, nothing against: the Kelly stake (0.9) is past the test's cap (0.75) already, so halving
    # the variance adds less growth than where the stake is free
    assert growth(0.17, 0.16) == pytest.approx(0.75 * 0.17 - 0.75**2 * (0.16 + 0.17**2) / 2)
    assert growth(0.17, 0.08) / growth(0.17, 0.16) < 1.35
    assert RULE.next(sparse(3, 16), "b>a", 2.0, 280.0, left=100, depths=ONE, within=None) == 2
    assert RULE.next(sparse(3, 16), "b>a", 2.0, 280.0, left=100, depths=ONE, within=0.6) == 1


def test_no_deeper_answers_for_the_wrong_direction_a_null_looking_estimate_or_no_room():
    assert RULE.next(-NOISY, "b>a", 1.0, 280.0, left=100, depths=ONE, within=None) == 1
    assert RULE.next(NOISY, "a>b", 1.0, 280.0, left=100, depths=ONE, within=None) == 1
    noise = np.array([1.0, -1.0] * 8 + [1.0])  # mean 1/17, far less than a standard error past min_effect
    assert RULE.next(noise, "b>a", 1.0, 280.0, left=100, depths=ONE, within=None) == 1
    assert RULE.next(NOISY, "b>a", 2.0, 280.0, left=0, depths=ONE, within=None) == 1
    assert Depth(2, 2).next(NOISY, "b>a", 2.0, 280.0, left=100, depths=TWO, within=None) == 2  # a fixed depth
    assert RULE.next(NOISY[:1], "b>a", 2.0, 280.0, left=100, depths=ONE, within=None) == 1  # too little seen


def test_answers_to_one_prompt_that_agree_make_deeper_answers_worthless():
    # within 0: the difference is all between prompts, so more answers to a prompt change nothing
    assert RULE.next(NOISY, "b>a", 2.0, 280.0, left=150, depths=ONE, within=0.0) == 1
    assert RULE.next(NOISY, "b>a", 2.0, 280.0, left=150, depths=ONE, within=0.3) == 1
    assert RULE.next(NOISY, "b>a", 2.0, 280.0, left=150, depths=ONE, within=0.6) == 2


def test_within_share_reads_the_variance_inside_prompts():
    rng = np.random.default_rng(3)
    alike = [np.full(3, rng.normal()) for _ in range(40)]  # answers to a prompt identical: nothing within
    apart = [rng.normal(size=3) for _ in range(40)]  # no prompt effect: everything within
    assert within_share(alike) == pytest.approx(0.0, abs=1e-12)
    assert 0.8 < within_share(apart) <= 1.0
    assert within_share(apart[:7]) is None  # too few prompts with two pairs
    assert within_share([np.zeros(2)] * 10) is None  # no variance at all


def test_pair_differences_pair_answer_i_of_each_side_and_skip_single_pairs():
    # prompt 0: two pairs; prompt 1: one pair; prompt 2: two a answers, one b answer
    prompt_of_row = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    is_b = np.array([False, False, True, True, False, True, False, False, True])
    index = np.array([0, 1, 0, 1, 0, 0, 0, 1, 0])
    vs = ValidationSet(np.arange(9), ["p0", "p1", "p2"], prompt_of_row, is_b, np.array(["all"] * 3))
    scores = np.array([0.1, 0.2, 0.5, 0.9, 0.0, 1.0, 0.3, 0.3, 0.3])
    (only,) = pair_differences(scores, vs, index)
    assert np.allclose(only, [0.4, 0.7])
    scores[3] = np.nan  # a NaN score leaves prompt 0 one finite pair
    assert pair_differences(scores, vs, index) == []


def rejections(n_sets: int, prompts: int, deepen: str, seed: int = 7) -> tuple[float, float]:
    """Share of null data sets whose e-process reaches 1/alpha at some round's end, a hypothesis alone,
    one answer a side growing to four by `deepen`:
    - "rule": Depth.next from the prompts seen, for the prompts not yet seen (predictable, as the stage does),
      with min_effect 0 so that null data sets deepen often;
    - "peek": the wrong way, deeper answers for exactly the prompts whose first pair favoured a (diluting them).
    Null: per prompt, logit P(b shows it) = eta + u and logit P(a shows it) = eta - u, u symmetric about 0,
    so the mean of d_p over prompts is zero while single prompts differ (a weak null with ICC)."""
    rng = np.random.default_rng(seed)
    rounds = Rounds(16, 1.5).boundaries(prompts)
    rule = Stopping(0.05, 20.0, 0.1, 0.2, standardized=True)
    hits, deepened = 0, 0
    for _ in range(n_sets):
        eta = rng.normal(-1.0, 1.5, prompts)
        u = rng.normal(0.0, 0.7, prompts)
        p_b, p_a = 1 / (1 + np.exp(-(eta + u))), 1 / (1 + np.exp(-(eta - u)))
        first_b, first_a = rng.random(prompts) < p_b, rng.random(prompts) < p_a
        more_b, more_a = rng.random((prompts, 3)) < p_b[:, None], rng.random((prompts, 3)) < p_a[:, None]
        d, read = np.zeros(prompts), np.ones(prompts, dtype=int)
        depth, begin = 1, 0
        for number, end in enumerate(rounds, start=1):
            for p in range(begin, end):
                m = depth if deepen == "rule" else (4 if first_a[p] > first_b[p] else 1)
                b = np.concatenate([[first_b[p]], more_b[p, : m - 1]]).mean()
                a = np.concatenate([[first_a[p]], more_a[p, : m - 1]]).mean()
                d[p], read[p] = b - a, m
            outcome = assess(d[:end], "b>a", rule, number, last=end == prompts, more=False)
            if outcome.reason == "rejected":
                hits += 1
                break
            if outcome.reason != "live":
                break
            depth = EAGER.next(d[:end], "b>a", outcome.e_value, 20.0, prompts - end, read[:end], None)
            deepened += depth > 1 and end < prompts
            begin = end
    return hits / n_sets, deepened / n_sets


def test_choosing_the_depth_from_the_prompts_seen_keeps_the_type_one_error():
    # The stage's way stays under alpha; choosing answers after seeing a prompt's first pair does not.
    rate, deepened = rejections(300, 128, "rule")
    assert rate <= 0.05 and deepened > 0.1  # the rule did deepen, in the rounds of over a tenth of the data sets
    assert rejections(300, 128, "peek")[0] > 0.1


def test_a_hypothesis_reads_only_the_answers_it_asked_for():
    """Depths are per hypothesis and per stretch of its scope; a prompt another hypothesis answered deeper
    still gives this one only its own first answers (so its data never depend on the others' choices)."""
    h = Hypothesis("h1", "all", "b>a", "d", "keyword", "keyword", keywords=("x",))
    fam = Family("main", [h])
    fam.depths["h1"] = [(2, 1), (5, 3)]
    scope = [f"p{i}" for i in range(6)]
    assert fam.read(h, scope) == {"p0": 1, "p1": 1, "p2": 3, "p3": 3, "p4": 3}
    assert fam.read(h, scope, end=3) == {"p0": 1, "p1": 1, "p2": 3}
    # p0 and p2 hold four answers a side (another hypothesis asked for them), p5 was never given to h1
    prompt_of_row = np.repeat([0, 2, 5], 8)
    is_b = np.tile(np.repeat([False, True], 4), 3)
    index = np.tile(np.arange(4), 6)
    vs = ValidationSet(np.arange(24), ["p0", "p1", "p2", "p3", "p4", "p5"], prompt_of_row, is_b, np.array(["all"] * 6))
    position = {pid: k for k, pid in enumerate(vs.prompt_ids)}
    rows = Loop._rows(vs, position, index, fam.read(h, scope))
    assert rows.reshape(3, 2, 4).sum(axis=2).tolist() == [[1, 1], [3, 3], [0, 0]]


def test_the_stage_answers_deeper_where_the_rule_says_and_a_rerun_generates_nothing(tmp_path, monkeypatch):
    """The stage's mechanics, with the rule forced to deepen every live hypothesis after its first round:
    the extra answers are generated for the later prompts only (answer keys stay unique), a hypothesis's test
    reads the texts of its own depths, and a rerun of the stage replays the rounds from the stored answers."""
    monkeypatch.setattr(Depth, "next", lambda self, *args, **kwargs: self.most)
    overrides = ["validate.mode=sequential", "validate.max_answers_per_prompt=3"]
    run = RunDir(tmp_path / "run")
    pipeline.run(load_config(fake_config(tmp_path, per_group=40), overrides), run)
    items = run.stage_file("validate", "validation_items.jsonl")
    answered = list(read_jsonl(items))
    depth: dict[str, int] = {}
    for row in answered:
        depth[row["prompt_id"]] = max(depth.get(row["prompt_id"], 0), row["index"] + 1)
    assert set(depth.values()) == {1, 3} and len({row["key"] for row in answered}) == len(answered)
    log = list(read_jsonl(run.stage_file("validate", "rounds.jsonl")))
    assert log[0]["answers_per_prompt"] == {"1": log[0]["prompts_answered"]}
    assert log[-1]["answers_per_prompt"] == {str(m): list(depth.values()).count(m) for m in (1, 3)}
    found = [f for f in read_jsonl(run.findings_path()) if f["n_units"]]
    assert any(f["n_texts"] > 2 * f["n_units"] for f in found)  # some tests read three answers a side
    assert all(f["n_texts"] <= 6 * f["n_units"] for f in found)
    pipeline.run(load_config(fake_config(tmp_path, per_group=40), [*overrides, "decide.q=0.1"]), run)
    assert len(list(read_jsonl(items))) == len(answered)  # validate re-ran; every answer came from the store
