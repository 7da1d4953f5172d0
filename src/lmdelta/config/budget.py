"""The run's spending limits: LLM cost and tokens, checked before each call so a run stops cleanly
and resumes when a later run raises them."""

from __future__ import annotations

from pydantic import Field

from lmdelta.config.base import VOLATILE, Section


class BudgetConfig(Section):
    usd: float | None = Field(default=None, gt=0, json_schema_extra=VOLATILE)
    (
        "Stop cleanly (and resumably) before LLM spending would pass this many US dollars (every paid model needs a "
        "price)."
    )
    tokens: int | None = Field(default=None, gt=0, json_schema_extra=VOLATILE)
    """Stop cleanly (and resumably) before LLM calls would pass this many input + output tokens, priced or not."""
    judge_calls: int | None = Field(default=None, gt=0, json_schema_extra=VOLATILE)
    (
        "Sequential validation: stop cleanly (and resumably) before a round would judge more than this many "
        "(hypothesis, text) pairs in all."
    )
    generated_tokens: int | None = Field(default=None, gt=0, json_schema_extra=VOLATILE)
    (
        "Sequential validation: stop cleanly (and resumably) before a round's answers would take the validation "
        "answers past this many generated tokens."
    )
