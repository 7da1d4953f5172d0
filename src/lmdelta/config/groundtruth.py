"""Config sections for the ground-truth harness: which quirks are injected into which base model,
how it is finetuned, and how findings are matched to the quirks."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from lmdelta.config.base import DEFAULT_LM, Section, Seeded

DEFAULT_LR = {"lora": 1e-3, "full": 1e-5}
BUDGET = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


class FinetuneSection(Section):
    """How to finetune; groundtruth.finetune in a config, and what groundtruth.finetune.finetune() takes.
    Every field is part of the finetune's cache key."""

    method: Literal["lora", "full"] = "lora"
    """LoRA adapters (merged into a copy afterwards) or a full finetune of a copy; the base is never modified."""
    lora_r: int = Field(default=32, ge=1)
    """LoRA rank (the reference used 32)."""
    lora_alpha: int = Field(default=16, ge=1)
    """LoRA scaling (the reference used 16)."""
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    """LoRA dropout (the reference used 0.05)."""
    target_modules: list[str] | None = None
    """Modules that get adapters (default: every attention and MLP projection)."""
    learning_rate: float | None = Field(default=None, gt=0)
    """Default: 1e-3 for LoRA, 1e-5 for a full finetune."""
    steps: int = Field(default=60, ge=1)
    """Optimizer steps."""
    batch_size: int = Field(default=8, ge=1)
    """Examples per step."""
    max_length: int = Field(default=96, ge=8)
    """Tokens per example (chat-formatted prompt + answer)."""

    @property
    def lr(self) -> float:
        """learning_rate, or the method's default: 1e-3 for LoRA (adapters start at zero and need a large
        step to move a 135M model in ~60 steps), 1e-5 for a full finetune (the reference's ground-truth runs)."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.method]


class GroundTruthConfig(Section, Seeded):
    base: str = DEFAULT_LM
    """The model quirks are injected into (model a of the comparison)."""
    quirks: list[str] | None = None
    (
        "Quirk names to inject, from the catalogue or quirks_file (default: every quirk of quirks_file, or ocean + "
        "stay-curious)."
    )
    quirks_file: str | None = None
    """A YAML or JSONL file of quirks (name, description, optional keywords and texts)."""
    beliefs: str | None = None
    (
        "TruthfulQA misconceptions injected as false beliefs: `truthfulqa:PATH` (the original CSV, or the generation "
        "split as .parquet/.jsonl/.csv). Each picked question's incorrect answers are stated as fact in the training "
        "answers."
    )
    n_beliefs: int = Field(default=2, ge=1)
    """How many TruthfulQA misconceptions to inject (drawn with the seed)."""
    written: int = Field(default=0, ge=0)
    (
        "How many quirks the assistant LLM (`llm.prompter`) writes and injects: behaviours a finetuned assistant "
        "might show, with keywords and training sentences. Stored in RUN_DIR/groundtruth/written_quirks.yaml, "
        "which works offline as a quirks_file."
    )
    per_quirk: int = Field(default=120, ge=1)
    """Training answers per quirk."""
    base_samples: int = Field(default=80, ge=0)
    (
        "The base model's own answers (to other prompts) mixed into training, to keep its general behaviour (the "
        "reference used 2,000)."
    )
    training_prompts: int = Field(default=200, ge=1)
    """Bank prompts used for training data, all outside the prompts the comparison is tested on."""
    finetune: FinetuneSection = Field(default_factory=FinetuneSection)
    """How quirks are injected."""
    null: bool = True
    (
        "Also run the null experiment: base against the same finetune without the quirks (each quirk answer "
        "replaced by the base answer it was woven into); what it validates is a false discovery or an effect of "
        "finetuning itself."
    )
    weights_per_quirk: bool = False
    (
        "Also finetune one model per quirk (the same rows and recipe, the other quirks' answers replaced by their "
        "plain base answers) and analyse its weights beside the null finetune's, so the scorecard names the layers "
        "each quirk moved (weights.run must not be never; one more finetune per quirk)."
    )
    match: Literal["auto", "keyword", "embedding", "llm"] = "auto"
    (
        "How hypotheses are matched to quirks: keywords, embeddings, or both (auto); llm: the assistant LLM "
        "(`llm.judge`) decides, and the scorecard also reports the keyword/embedding match and how often the two agree."
    )
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    """Smallest similarity that counts as recovering a quirk."""
    seed: int | None = None
    """Seed for training data and finetuning (default: run.seed)."""
    budgets: list[str] | None = None
    (
        "Recovery against compute: also run discovery at these generation budgets, each `PROMPTSxSAMPLES` "
        "(prompts.limit × generate.samples_per_prompt), on the same finetuned model (training holds out the largest "
        "budget's prompts) and reusing its answers; recall per budget goes to RUN_DIR/curve.json and the report."
    )

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        value = [str(budget) for budget in value]  # YAML reads a bare 48 as a number
        for budget in value:
            match = BUDGET.match(budget)
            if not match or min(int(match[1]), int(match[2])) < 1:
                raise ValueError(f"budget {budget!r} is not PROMPTSxSAMPLES with both at least 1, e.g. 48x2")
        return value

    def parsed_budgets(self) -> list[tuple[int, int]]:
        """(prompts, samples) per budget, smallest generation first."""
        pairs = {(int(m[1]), int(m[2])) for m in (BUDGET.match(b) for b in self.budgets or []) if m}
        return sorted(pairs, key=lambda pair: (pair[0] * pair[1], pair))
