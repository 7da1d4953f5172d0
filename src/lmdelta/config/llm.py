"""Config sections for the assistant LLMs: one per role (proposer, judge, strong_judge, summariser, prompter) and
the settings every call shares (keys, concurrency, retries, prices, failure tolerance)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from lmdelta.config.base import VOLATILE, Section


class RoleConfig(Section):
    model: str | None = None
    (
        "`openai/…`, `anthropic/…`, `gemini/…`, `openrouter/…`, `openai-compatible/MODEL@URL`, `local/…` (unset: role "
        "unused)."
    )
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
    strong_judge: RoleConfig = Field(default_factory=RoleConfig)
    (
        "The judge cascade's strong judge: it scores the texts of a seeded sample of each hypothesis's validation "
        "prompts (validate.strong_share), the hypothesis's own judge scores all, and the test combines both by "
        "PPI++ (docs/llm.md, judge cascade). Unset: no cascade."
    )
    summariser: RoleConfig = Field(default_factory=RoleConfig)
    """The model that summarises themes."""
    prompter: RoleConfig = Field(default_factory=RoleConfig)
    """The model that writes prompt banks (prompts.source = generated)."""
    key_file: str | None = Field(default=None, json_schema_extra=VOLATILE)
    """A file with an API key, or lines `provider: key` (default: the provider's environment variable)."""
    concurrency: int = Field(default=16, ge=1, json_schema_extra=VOLATILE)
    """Calls in flight per connection (provider, server and key), shared by all stages."""
    max_attempts: int = Field(default=6, ge=1, json_schema_extra=VOLATILE)
    """Transport attempts per call (rate limits and transient errors)."""
    timeout: float = Field(default=120.0, gt=0, json_schema_extra=VOLATILE)
    """Seconds per attempt."""
    prices: dict[str, dict[str, float]] = Field(default_factory=dict, json_schema_extra=VOLATILE)
    (
        'USD per million tokens, e.g. {"openai/gpt-4.1-mini": {"input": 0.4, "output": 1.6}}, overriding the built-in '
        "table."
    )
    max_failure_share: float = Field(default=0.05, ge=0.0, le=1.0, json_schema_extra=VOLATILE)
    (
        "Stop a stage (resumably) when more than this share of a batch's LLM calls failed; unparseable answers, "
        "re-asked and counted apart, are left out."
    )

    @field_validator("prices", mode="before")
    @classmethod
    def _check_prices(cls, prices: Any) -> Any:
        for model, price in (prices or {}).items() if isinstance(prices, dict) else ():
            if not (
                isinstance(price, dict)
                and set(price) == {"input", "output"}
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in price.values())
            ):
                raise ValueError(
                    f"the price of {model} must be {{input: USD per million tokens, output: USD per "
                    f"million tokens}}, two numbers >= 0, e.g. {{input: 0.4, output: 1.6}}"
                )
        return prices
