"""The comparisons a run makes, read back from the run directory: the main one (a against b) from the
prompts, generate, embed and group stages' outputs, and the null control built from it."""

from __future__ import annotations

from lmdelta.config import RunConfig
from lmdelta.pairdata import PairData, null_pair
from lmdelta.stages import embed, generate, group, prompts
from lmdelta.stages.contract import StageContext


def load_pair(ctx: StageContext, config: RunConfig) -> PairData:
    """The main comparison from the run directory's generate, embed and group outputs."""
    return PairData(
        prompts=prompts.load(ctx),
        samples=generate.load(ctx),
        vectors=embed.load_samples(ctx),
        groups=group.load(ctx),
        labels={"a": config.label("a"), "b": config.label("b")},
    )


def comparisons_names(config: RunConfig) -> list[str]:
    return ["main", "null"] if config.controls.null else ["main"]


def comparisons(data: PairData, config: RunConfig) -> dict[str, PairData]:
    out = {"main": data}
    if config.controls.null:
        out["null"] = null_pair(data, config.run.seed)
    return out
