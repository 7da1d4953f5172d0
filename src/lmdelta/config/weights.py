"""The `weights` section: the weight-difference analysis of the two models (docs/weights.md), run as a stage when
both sides are model weights on this machine, and by `lmdelta weights A B` on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from lmdelta.config.base import Section


class WeightsConfig(Section):
    run: Literal["auto", "always", "never"] = "auto"
    (
        "`auto`: the `weights` stage runs when both sides are weights loaded in this process (a local folder, a "
        "Hugging Face id or an embedded model; side b may add a LoRA adapter to side a's model) and they differ; "
        "`always`: refuse a run where it cannot; `never`: never."
    )
    top_k: int = Field(default=16, ge=1, le=1024)
    """Singular values kept per matrix (raised to the largest energy rank when that is bigger)."""
    align_k: int = Field(default=8, ge=1, le=256)
    """Size of the subspaces compared: ΔW's top singular vectors against W_a's own top ones."""
    energy_ranks: list[int] = Field(default_factory=lambda: [1, 8])
    """The r of "share of ‖ΔW‖² in the top r singular values" (a LoRA adapter's rank is added)."""
    lora_rank: int | None = Field(default=None, ge=1)
    """A LoRA rank to add to energy_ranks when side b is a merged LoRA finetune (adapters report theirs)."""
    exact_max_dim: int = Field(default=1024, ge=1)
    """Matrices whose smaller side is at most this get an exact SVD; larger ones a randomised one."""
    power_iterations: int = Field(default=7, ge=0, le=50)
    """Power iterations of the randomised SVD (more: slower, more accurate on flat spectra)."""
    oversamples: int = Field(default=10, ge=0, le=1000)
    """Extra random directions of the randomised SVD beyond the values kept."""
    seed: int = 0
    """Seed of the randomised SVD; each matrix draws from (seed, its name), so order does not matter."""
    skip_mismatched: bool = False
    """Analyse the matrices whose shapes agree and list the others, instead of stopping at a mismatch."""
    top_changed: int = Field(default=20, ge=1)
    """Matrices listed in the summary's top-changed table."""
    null_summary: Path | None = None
    """weights_summary.json of a null finetune (base trained on its own answers) to compare against."""

    def ranks(self, lora_rank: int | None = None) -> list[int]:
        """The energy ranks to report, sorted, with a LoRA rank added when one is known."""
        extra = [r for r in (lora_rank, self.lora_rank) if r is not None]
        return sorted({*self.energy_ranks, *extra})
