"""A finding's evidence texts: same-prompt pairs of a and b, the prompts whose difference runs furthest in the
finding's direction first; each side's top answers when the data are not paired."""

from __future__ import annotations

import numpy as np

from lmdelta.config import ValidateConfig
from lmdelta.pairdata import PairData
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.validate.findings import _examples, validate_all
from lmdelta.validate.sets import ValidationSet

Scores = dict[str, dict[str, list[float]]]  # prompt id -> side -> the judge score of each of its answers

B_MORE = Hypothesis("h1", "all", "b>a", "b mentions the ocean", "keywords", "keyword", keywords=("ocean",), order=1)
A_MORE = Hypothesis("h2", "all", "a>b", "a mentions the ocean", "keywords", "keyword", keywords=("ocean",), order=2)

# d_p = mean b − mean a: p0 +0.4, p1 +0.85, p2 0, p3 −0.8.
SCORES: Scores = {
    "p0": {"a": [0.2, 0.4], "b": [0.5, 0.9]},
    "p1": {"a": [0.1, 0.0], "b": [0.8, 1.0]},
    "p2": {"a": [0.5], "b": [0.5]},
    "p3": {"a": [0.9], "b": [0.1]},
}


def make_pair(scores: Scores) -> tuple[PairData, np.ndarray]:
    """Validation-only pair data and its row scores; each text says its prompt, side and score."""
    prompts = [Prompt(pid, f"prompt {pid}", "all", "validation") for pid in scores]
    samples, values = [], []
    for pid, sides in scores.items():
        for side, found in sides.items():
            for index, score in enumerate(found):
                samples.append(
                    Sample(pid, side, index, f"{pid} {side} {score}", 5, "stop", index, f"{pid}{side}{index}")
                )
                values.append(score)
    vectors = np.zeros((len(samples), 2))
    return PairData(prompts, samples, vectors, {p.id: "all" for p in prompts}), np.array(values, dtype=float)


def examples_of(h: Hypothesis, scores: Scores, k: int = 3, used: np.ndarray | None = None) -> dict[str, list]:
    data, values = make_pair(scores)
    used_rows = np.isfinite(values) if used is None else used & np.isfinite(values)
    return _examples(h, values, ValidationSet.build(data), data, used_rows, k)


def texts(found: dict[str, list], side: str) -> list[str]:
    return [e["text"] for e in found[side]]


def shared_prompts(found: dict[str, list]) -> list[str]:
    """The pairs' prompts, after checking that a's and b's example i answer the same one."""
    prompts = [e["prompt"] for e in found["a"]]
    assert prompts == [e["prompt"] for e in found["b"]]
    return prompts


def test_pairs_share_a_prompt_and_run_largest_difference_first() -> None:
    found = examples_of(B_MORE, SCORES)
    assert shared_prompts(found) == ["prompt p1", "prompt p0", "prompt p2"]
    # b > a: b's answer that has it most beside a's answer that has it least.
    assert texts(found, "b") == ["p1 b 1.0", "p0 b 0.9", "p2 b 0.5"]
    assert texts(found, "a") == ["p1 a 0.0", "p0 a 0.2", "p2 a 0.5"]
    assert [e["score"] for e in found["b"]] == [1.0, 0.9, 0.5]
    assert found["b"][0]["sample_id"] == "b:p1:1"


def test_a_more_picks_the_mirror() -> None:
    found = examples_of(A_MORE, SCORES)
    assert shared_prompts(found) == ["prompt p3", "prompt p2", "prompt p0"]
    assert texts(found, "a") == ["p3 a 0.9", "p2 a 0.5", "p0 a 0.4"]  # a's highest
    assert texts(found, "b") == ["p3 b 0.1", "p2 b 0.5", "p0 b 0.5"]  # b's lowest


def test_ties_keep_prompt_order_and_row_order() -> None:
    tied: Scores = {
        "p0": {"a": [0.0], "b": [0.5]},
        "p1": {"a": [0.0, 0.0], "b": [0.5, 0.5]},
        "p2": {"a": [0.0], "b": [0.5]},
    }
    found = examples_of(B_MORE, tied, k=2)
    assert texts(found, "b") == ["p0 b 0.5", "p1 b 0.5"]
    assert [e["sample_id"] for e in found["a"]] == ["a:p0:0", "a:p1:0"]  # first answer of a tie within a side


def test_prompts_without_a_difference_are_skipped() -> None:
    scores: Scores = {
        "p0": {"a": [0.0], "b": [float("nan")]},  # b's answer was not scored: no d_p
        "p1": {"a": [0.0]},  # one side only
        "p2": {"a": [0.6], "b": [0.7]},
        "p3": {"a": [0.0], "b": [1.0]},  # the largest difference, but the test did not use it
    }
    data, values = make_pair(scores)
    used = np.array([s.prompt_id != "p3" for s in data.samples])
    found = examples_of(B_MORE, scores, used=used)
    assert texts(found, "a") == ["p2 a 0.6"] and texts(found, "b") == ["p2 b 0.7"]


def test_unpaired_data_fall_back_to_each_sides_top_answers() -> None:
    unaligned: Scores = {
        "t0": {"a": [0.3]},
        "t1": {"a": [0.8]},
        "t2": {"b": [0.2]},
        "t3": {"b": [0.9]},
        "t4": {"b": [0.6]},
    }
    data, _ = make_pair(unaligned)
    assert not ValidationSet.build(data).aligned
    found = examples_of(B_MORE, unaligned, k=2)
    assert texts(found, "a") == ["t1 a 0.8", "t0 a 0.3"] and texts(found, "b") == ["t3 b 0.9", "t4 b 0.6"]


def test_no_examples_asked_for_gives_none() -> None:
    assert examples_of(B_MORE, SCORES, k=0) == {"a": [], "b": []}


def test_validate_all_writes_pairs_that_show_the_contrast() -> None:
    rng = np.random.default_rng(3)
    prompts, samples = [], []
    for p in range(24):
        prompts.append(Prompt(f"p{p}", f"question {p}", "all", "validation"))
        for side, rate in (("a", 0.1), ("b", 0.7)):
            for k in range(2):
                text = "we sail the ocean today" if rng.random() < rate else "we walk the park today"
                samples.append(Sample(f"p{p}", side, k, text, 5, "stop", k, f"{side}{p}{k}"))
    data = PairData(prompts, samples, np.ones((len(samples), 2)), {p.id: "all" for p in prompts})
    found = validate_all(data, [B_MORE], ValidateConfig(n_resamples=1000, seed=0, examples=3), q=0.05)[0].examples
    assert len(shared_prompts(found)) == 3
    assert all("ocean" in e["text"] for e in found["b"]) and all("park" in e["text"] for e in found["a"])
