"""Config sections for where prompts and saved outputs come from: prompt banks, public datasets,
LLM-generated banks, and corpora of decodings made elsewhere."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lmdelta.config.base import Section, Seeded

# Categories an LLM-generated bank covers when none are given: broad, everyday and sensitive
# topics alike, so differences in tone, refusals and opinions all have room to show.
DEFAULT_CATEGORIES = [
    "politics",
    "science",
    "technology",
    "health",
    "history",
    "religion",
    "economics",
    "ethics",
    "relationships",
    "education",
    "environment",
    "art and culture",
    "sports",
    "food and cooking",
    "travel",
    "law and crime",
    "personal finance",
    "mental health",
    "work and careers",
    "parenting",
]


class GeneratedBankConfig(Section):
    categories: list[str] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    """Topics to write prompts about; each becomes a group (`generated:a,b` in prompts.source overrides it)."""
    per_category: int = Field(default=10, ge=1)
    """Prompts per category."""
    per_request: int = Field(default=5, ge=1, le=50)
    """Prompts asked for in one LLM call."""
    max_words: int = Field(default=50, ge=3)
    """Longest prompt, in words."""
    instruction: str | None = None
    """Extra guidance for the prompt writer (e.g. "questions a customer might ask a bank's assistant")."""


class PromptsConfig(Section, Seeded):
    source: str = "builtin:everyday"
    (
        "Where prompts come from: `builtin:NAME`; a .txt, .jsonl or .csv file; `persona:PATH`, "
        "`advanced-ai-risk:PATH`, `mpi:PATH`, `jailbreak:PATH`, `truthfulqa:PATH`, `bold:PATH` (PATH may be `hub` for "
        "sets on the Hugging Face Hub); `generated` or `generated:CAT1,CAT2` (written by llm.prompter); "
        "`unconditional:N` (N units sampled from the empty prompt); or `corpus` (see docs/prompt-sources.md)."
    )
    template: str | None = None
    (
        "How each item becomes a prompt, with `{prompt}` where the item goes (default: the source's own template, e.g. "
        "the reference's for persona statements; plain files use items verbatim)."
    )
    per_group: int | None = Field(default=None, ge=1)
    """Keep at most this many prompts per group (seeded), e.g. statements per persona behaviour."""
    groups: list[str] | None = None
    """Keep only these groups (e.g. persona behaviours or TruthfulQA categories)."""
    score_table: str | None = None
    (
        "A CSV/JSON/JSONL table of `group,score` (e.g. a benchmark's a−b difference per behaviour), for score_above / "
        "score_below."
    )
    score_above: float | None = None
    """Keep only groups whose score in score_table exceeds this."""
    score_below: float | None = None
    "Keep only groups whose |score| in score_table is below this (a negative control: behaviours that barely differ)."
    generated: GeneratedBankConfig = Field(default_factory=GeneratedBankConfig)
    """The LLM-generated bank (prompts.source = generated)."""
    limit: int | None = Field(default=None, ge=1)
    """Use at most this many prompts, sampled stratified by group (seeded)."""
    discovery_fraction: float = Field(default=0.3, gt=0.0, lt=1.0)
    """Share of each group's prompts used to propose hypotheses; the rest validate them."""
    confirmation_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    (
        "Share of each group's prompts held back to re-estimate every validated finding on untouched prompts (the "
        "confirm stage; e.g. 0.2)."
    )
    seed: int | None = None
    """Seed for sampling and splitting prompts (default: run.seed)."""

    @field_validator("template")
    @classmethod
    def _template_has_slot(cls, value: str | None) -> str | None:
        if value is not None and "{prompt}" not in value:
            raise ValueError("the template must contain {prompt}, where each item goes")
        return value

    @model_validator(mode="after")
    def _fractions_fit(self) -> PromptsConfig:
        if self.discovery_fraction + self.confirmation_fraction >= 1.0:
            raise ValueError("discovery_fraction + confirmation_fraction must leave prompts for validation (sum < 1)")
        if (self.score_above is not None or self.score_below is not None) and self.score_table is None:
            raise ValueError("score_above / score_below filter by score_table, which is not set")
        return self


class CorpusColumns(Section):
    text: str | None = None
    """Column holding the answer (default: `text`)."""
    side: str | None = None
    """Column naming the model or side (default: `side`, else `model`)."""
    prompt: str | None = None
    """Column holding the prompt (default: `prompt`)."""
    prompt_id: str | None = None
    """Column holding a prompt id (default: `prompt_id`)."""
    group: str | None = None
    """Column holding a group (default: `group`)."""
    cluster: str | None = None
    (
        "Corpora without prompt ids: column holding a cluster id (default: `cluster`); texts sharing one (one hidden "
        "prompt, conversation or source) form one unit, tested and split together. Refused beside prompt ids; the "
        "clusters must all hold both sides' texts (paired) or all one side's (permuted whole)."
    )


class CorpusConfig(Section):
    path: str | None = None
    (
        "One JSONL/CSV/TSV/JSON/Parquet file (.gz too) with both sides' outputs: long (columns text, side or model; "
        "optional prompt_id, prompt, group) or wide (a prompt column and one answer column per side; see "
        "text_columns)."
    )
    a: str | None = None
    """Side a's outputs, when each side has its own file."""
    b: str | None = None
    """Side b's outputs, when each side has its own file."""
    format: Literal["auto", "plain", "reference"] = "auto"
    (
        "`reference`: the reference tool's CSV (model = base/finetuned, text, prompt; backslash-escaped); `auto` "
        "detects it by its header."
    )
    text_columns: list[str] | None = None
    (
        "Wide layout of corpus.path, one row per prompt: the column of side a's answers, then side b's, e.g. "
        "[model_x, model_y]; each row's two answers are compared paired (default: detected when the file has no text "
        "or side column, a prompt column and exactly two other text columns, taken in file order)."
    )
    columns: CorpusColumns = Field(default_factory=CorpusColumns)
    """Column names, when another tool named them differently."""
    sides: dict[str, list[str]] = Field(default_factory=dict)
    """Extra values of the side column for each side, e.g. {a: [llama-3-8b], b: [llama-3-8b-rome]}."""
    empty_texts: Literal["error", "drop", "keep"] = "error"
    """An empty answer: stop with its file and line (`error`), skip it and count it (`drop`), or analyse it (`keep`)."""
    reasoning: list[str] | None = None
    """Start and end markers of reasoning to strip from imported texts, e.g. ["<think>", "</think>"]."""

    @property
    def active(self) -> bool:
        return any(value is not None for value in (self.path, self.a, self.b))

    @field_validator("sides")
    @classmethod
    def _sides_are_a_b(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - {"a", "b"})
        if unknown:
            raise ValueError(f"sides maps values to a and b only, not {', '.join(unknown)}")
        return value

    @field_validator("text_columns")
    @classmethod
    def _two_answer_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        names = [name.strip() for name in value]
        if len(names) != 2 or not all(names) or names[0].lower() == names[1].lower():
            raise ValueError(
                "text_columns takes two different non-empty column names, side a's answers first, then side b's, "
                "e.g. [model_x, model_y]"
            )
        return names

    @field_validator("reasoning")
    @classmethod
    def _two_markers(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (len(value) != 2 or not all(value)):
            raise ValueError('reasoning takes two non-empty markers, start and end, e.g. ["<think>", "</think>"]')
        return value
