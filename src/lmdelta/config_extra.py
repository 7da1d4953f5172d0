"""Config sections for the assistant LLMs, the budget and the ground-truth harness."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from lmdelta.config_base import DEFAULT_LM, VOLATILE, Section


class RoleConfig(Section):
    model: str | None = None
    """`openai/…`, `anthropic/…`, `gemini/…`, `openrouter/…`, `openai-compatible/MODEL@URL`, `local/…` (unset: role unused)."""
    temperature: float | None = Field(default=None, ge=0.0)
    """Sampling temperature (default: 1.0 for the proposer, 0 for judges)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Answer length cap (default: what the role needs)."""
    backend_args: dict[str, Any] = Field(default_factory=dict)
    """Provider options passed through unchanged."""


class LLMConfig(Section):
    proposer: RoleConfig = Field(default_factory=RoleConfig)
    """The model that writes hypotheses (a stronger one pays off here)."""
    judge: RoleConfig = Field(default_factory=RoleConfig)
    """The model that scores texts (a cheaper one is usually enough)."""
    summariser: RoleConfig = Field(default_factory=RoleConfig)
    """The model that summarises themes."""
    prompter: RoleConfig = Field(default_factory=RoleConfig)
    """The model that writes prompt banks (prompts.source = generated)."""
    key_file: str | None = Field(default=None, json_schema_extra=VOLATILE)
    """A file with an API key, or lines `provider: key` (default: the provider's environment variable)."""
    concurrency: int = Field(default=16, ge=1, json_schema_extra=VOLATILE)
    """Calls in flight per provider, shared by all stages."""
    max_attempts: int = Field(default=6, ge=1, json_schema_extra=VOLATILE)
    """Transport attempts per call (rate limits and transient errors)."""
    timeout: float = Field(default=120.0, gt=0, json_schema_extra=VOLATILE)
    """Seconds per attempt."""
    prices: dict[str, dict[str, float]] = Field(default_factory=dict, json_schema_extra=VOLATILE)
    """USD per million tokens, e.g. {"openai/gpt-4.1-mini": {"input": 0.4, "output": 1.6}}, overriding the built-in table."""
    max_failure_share: float = Field(default=0.05, ge=0.0, le=1.0, json_schema_extra=VOLATILE)
    """Stop a stage (resumably) when more than this share of a batch's LLM calls failed; unparseable answers, re-asked and counted apart, are left out."""

    @field_validator("prices", mode="before")
    @classmethod
    def _check_prices(cls, prices: Any) -> Any:
        for model, price in (prices or {}).items() if isinstance(prices, dict) else ():
            if not (isinstance(price, dict) and set(price) == {"input", "output"}
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in price.values())):
                raise ValueError(f"the price of {model} must be {{input: USD per million tokens, output: USD per "
                                 f"million tokens}}, two numbers >= 0, e.g. {{input: 0.4, output: 1.6}}")
        return prices


class BudgetConfig(Section):
    usd: float | None = Field(default=None, gt=0, json_schema_extra=VOLATILE)
    """Stop cleanly (and resumably) before LLM spending would pass this many US dollars (every paid model needs a price)."""
    tokens: int | None = Field(default=None, gt=0, json_schema_extra=VOLATILE)
    """Stop cleanly (and resumably) before LLM calls would pass this many input + output tokens, priced or not."""


class FinetuneSection(Section):
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


class GroundTruthConfig(Section):
    base: str = DEFAULT_LM
    """The model quirks are injected into (model a of the comparison)."""
    quirks: list[str] | None = None
    """Quirk names to inject, from the catalogue or quirks_file (default: every quirk of quirks_file, or ocean + stay-curious)."""
    quirks_file: str | None = None
    """A YAML or JSONL file of quirks (name, description, optional keywords and texts)."""
    per_quirk: int = Field(default=120, ge=1)
    """Training answers per quirk."""
    base_samples: int = Field(default=80, ge=0)
    """The base model's own answers (to other prompts) mixed into training, to keep its general behaviour (the reference used 2,000)."""
    training_prompts: int = Field(default=200, ge=1)
    """Bank prompts used for training data, all outside the prompts the comparison is tested on."""
    finetune: FinetuneSection = Field(default_factory=FinetuneSection)
    """How quirks are injected."""
    null: bool = True
    """Also run the null experiment: base against base finetuned on its own answers (must validate nothing)."""
    match: Literal["auto", "keyword", "embedding"] = "auto"
    """How hypotheses are matched to quirks: keywords, embeddings, or both (auto)."""
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    """Smallest similarity that counts as recovering a quirk."""
    seed: int | None = None
    """Seed for training data and finetuning (default: run.seed)."""
