"""The generalisation test: does a group's hypothesis hold on the validation prompts of the other
groups? Also which prompts an LLM judge scores, so that test has texts to run on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from lmdelta.config import ValidateConfig
from lmdelta.hashing import child_seed
from lmdelta.records import Finding, Hypothesis
from lmdelta.validate.sets import ValidationSet
from lmdelta.validate.significance import hypothesis_tests


def judged_prompts(hypotheses: list[Hypothesis], vs: ValidationSet, config: ValidateConfig) -> list[np.ndarray]:
    """The prompts whose texts an LLM judge scores, per hypothesis: its scope and, for a group's
    hypothesis under validate.generalization, a seeded sample of other groups' prompts for its
    generalisation test, no more than its group has, so those calls at most double its cost.
    (Offline judges score every text: they are free.)"""
    samples: dict[str, np.ndarray] = {}
    out = []
    for h in hypotheses:
        inside = vs.scope(h.group)
        if config.generalization and h.group != "all":
            if h.group not in samples:
                samples[h.group] = generalization_sample(vs, h.group, config.resolved_seed)
            inside = inside | samples[h.group]
        out.append(inside)
    return out


def generalization_sample(vs: ValidationSet, group: str, seed: int) -> np.ndarray:
    """Prompt mask of min(other groups' prompts, the group's prompts) prompts of other groups, drawn
    without replacement by a generator seeded from validate.seed and the group: every hypothesis of
    a group is generalised to the same prompts, whatever else was tested."""
    outside = np.flatnonzero(vs.scope(group, inside=False))
    size = min(outside.size, int(vs.scope(group).sum()))
    rng = np.random.default_rng(child_seed(seed, "generalization", group))
    mask = np.zeros(len(vs.prompt_ids), dtype=bool)
    mask[rng.choice(outside, size=size, replace=False)] = True
    return mask


def add_generalization(
    results: list[Finding],
    scores: Sequence[np.ndarray],
    paired: tuple[np.ndarray, np.ndarray] | None,
    hypotheses: list[Hypothesis],
    vs: ValidationSet,
    config: ValidateConfig,
    n_resamples: int,
) -> list[Finding]:
    """Test each group's hypothesis on the validation prompts of every other group (same subsample)."""
    outside = [vs.scope(h.group, inside=False) if h.group != "all" else None for h in hypotheses]
    checks = hypothesis_tests(scores, paired, outside, hypotheses, vs, config, n_resamples)
    out = []
    for result, check, mask in zip(results, checks, outside):
        has_data = mask is not None and check["n_units"] > 0
        out.append(
            replace(
                result,
                generalization_p=check["p_value"] if has_data else None,
                generalization_effect=check["statistic"] if has_data else None,
                generalization_units=check["n_units"] if has_data else 0,
            )
        )
    return out
