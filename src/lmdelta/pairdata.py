"""The data one comparison works on: prompts with splits and groups, both sides' samples, vectors.

The main comparison is a against b; the null control is a against a, made by splitting a's
samples of each prompt into two halves (independent seeds, identical model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lmdelta.records import Prompt, Sample


@dataclass
class PairData:
    prompts: list[Prompt]
    samples: list[Sample]
    vectors: np.ndarray
    groups: dict[str, str]
    labels: dict[str, str] = field(default_factory=lambda: {"a": "a", "b": "b"})

    @cached_property
    def prompt_by_id(self) -> dict[str, Prompt]:
        return {p.id: p for p in self.prompts}

    def rows(self, split: str, group: str | None = None) -> np.ndarray:
        """Indices of samples whose prompt is in `split` (and `group`, unless None or "all")."""
        keep = []
        for row, sample in enumerate(self.samples):
            prompt = self.prompt_by_id.get(sample.prompt_id)
            if prompt is None or prompt.split != split:
                continue
            if group not in (None, "all") and self.groups.get(sample.prompt_id) != group:
                continue
            keep.append(row)
        return np.asarray(keep, dtype=int)

    def group_names(self) -> list[str]:
        return sorted(set(self.groups.values()))


def null_pair(data: PairData) -> PairData:
    """a against a: per prompt, a's samples with even index become side a, odd become side b."""
    rows, samples = [], []
    for row, sample in enumerate(data.samples):
        if sample.side != "a":
            continue
        side = "a" if sample.index % 2 == 0 else "b"
        samples.append(Sample(sample.prompt_id, side, sample.index // 2, sample.text, sample.n_tokens,
                              sample.finish_reason, sample.seed, sample.key))
        rows.append(row)
    label = data.labels["a"]
    return PairData(data.prompts, samples, data.vectors[rows], data.groups,
                    labels={"a": f"{label} (even samples)", "b": f"{label} (odd samples)"})


def load_pair(ctx, config) -> PairData:
    """The main comparison from the run directory's generate, embed and group outputs."""
    from lmdelta.stages import embed, generate, group, prompts

    return PairData(prompts=prompts.load(ctx), samples=generate.load(ctx), vectors=embed.load_samples(ctx),
                    groups=group.load(ctx), labels={"a": config.label("a"), "b": config.label("b")})
