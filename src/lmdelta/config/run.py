"""The whole run's config: the `run` section and RunConfig, which holds one section per stage plus
the shared ones (prompts, corpus, llm, budget, groundtruth) and fills unset seeds from run.seed."""

from __future__ import annotations

import warnings

from pydantic import Field

from lmdelta.config.base import Section
from lmdelta.config.budget import BudgetConfig
from lmdelta.config.execution import ExecutionConfig
from lmdelta.config.groundtruth import GroundTruthConfig
from lmdelta.config.llm import LLMConfig
from lmdelta.config.prompts import CorpusConfig, PromptsConfig
from lmdelta.config.stages import (
    ControlsConfig,
    DecideConfig,
    EmbedConfig,
    GenerateConfig,
    GroupConfig,
    ProposeConfig,
    ValidateConfig,
)
from lmdelta.config.weights import WeightsConfig


class RunSection(Section):
    name: str | None = None
    """A name for the run, shown in status and reports."""
    seed: int = 0
    """Default seed for every stochastic step whose own section leaves `seed` unset."""


# A stage, its config section and its run-dir folder share one name, so the section is called
# `validate` although that shadows pydantic's deprecated BaseModel.validate classmethod.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "validate"', category=UserWarning)

    class RunConfig(Section):
        run: RunSection = Field(default_factory=RunSection)
        prompts: PromptsConfig = Field(default_factory=PromptsConfig)
        corpus: CorpusConfig = Field(default_factory=CorpusConfig)
        generate: GenerateConfig = Field(default_factory=GenerateConfig)
        embed: EmbedConfig = Field(default_factory=EmbedConfig)
        group: GroupConfig = Field(default_factory=GroupConfig)
        propose: ProposeConfig = Field(default_factory=ProposeConfig)
        validate: ValidateConfig = Field(default_factory=ValidateConfig)  # type: ignore[assignment]  # shadows BaseModel.validate, see above
        decide: DecideConfig = Field(default_factory=DecideConfig)
        controls: ControlsConfig = Field(default_factory=ControlsConfig)
        llm: LLMConfig = Field(default_factory=LLMConfig)
        budget: BudgetConfig = Field(default_factory=BudgetConfig)
        execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
        groundtruth: GroundTruthConfig = Field(default_factory=GroundTruthConfig)
        weights: WeightsConfig = Field(default_factory=WeightsConfig)

        def resolved(self) -> RunConfig:
            """A copy with every unset seed filled in from run.seed."""
            copy = self.model_copy(deep=True)
            for section in (copy.prompts, copy.generate, copy.group, copy.propose, copy.validate, copy.groundtruth):
                if section.seed is None:
                    section.seed = copy.run.seed
            return copy

        @property
        def uses_corpus(self) -> bool:
            """Corpus mode: saved outputs replace generation (prompts.source=corpus or a corpus file set)."""
            return self.prompts.source == "corpus" or self.corpus.active

        def label(self, side: str) -> str:
            return getattr(self.generate, side).label or side
