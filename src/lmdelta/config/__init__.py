"""Typed run configuration: one pydantic section per stage, loaded from YAML plus overrides.

Each concept has its module (run, models, prompts, stages, llm, budget, groundtruth; load for
reading files and overrides); every public name is importable from `lmdelta.config` itself.
`config.source` holds the grammar of prompts.source, which load uses to resolve its paths.
Fields marked volatile (batch sizes, devices) cannot change results and stay out of fingerprints.
"""

from __future__ import annotations

from lmdelta.config.base import DEFAULT_LM, VOLATILE, Section
from lmdelta.config.budget import BudgetConfig
from lmdelta.config.execution import ExecutionConfig
from lmdelta.config.groundtruth import FinetuneSection, GroundTruthConfig
from lmdelta.config.llm import LLMConfig, RoleConfig
from lmdelta.config.load import dump_config, load_config, validate_config
from lmdelta.config.models import ModelSpec, ReasoningConfig
from lmdelta.config.prompts import CorpusColumns, CorpusConfig, GeneratedBankConfig, PromptsConfig
from lmdelta.config.run import RunConfig, RunSection
from lmdelta.config.stages import (
    ClusterProposerConfig,
    ControlsConfig,
    DecideConfig,
    DedupConfig,
    EmbedConfig,
    GenerateConfig,
    GroupConfig,
    KeywordProposerConfig,
    LLMProposerConfig,
    PropertyProposerConfig,
    ProposeConfig,
    ValidateConfig,
)

__all__ = [
    "DEFAULT_LM",
    "VOLATILE",
    "BudgetConfig",
    "ExecutionConfig",
    "ClusterProposerConfig",
    "ControlsConfig",
    "CorpusColumns",
    "CorpusConfig",
    "DecideConfig",
    "DedupConfig",
    "EmbedConfig",
    "FinetuneSection",
    "GenerateConfig",
    "GeneratedBankConfig",
    "GroundTruthConfig",
    "GroupConfig",
    "KeywordProposerConfig",
    "LLMConfig",
    "LLMProposerConfig",
    "PropertyProposerConfig",
    "ModelSpec",
    "PromptsConfig",
    "ProposeConfig",
    "ReasoningConfig",
    "RoleConfig",
    "RunConfig",
    "RunSection",
    "Section",
    "ValidateConfig",
    "dump_config",
    "load_config",
    "validate_config",
]
