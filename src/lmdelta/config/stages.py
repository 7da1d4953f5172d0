"""Config sections of the pipeline's stages, one per stage and named like it: generate, embed,
group, propose (and its proposers), validate, decide, and the controls run beside them."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from lmdelta.config.base import VOLATILE, Section, Seeded
from lmdelta.config.models import ModelSpec
from lmdelta.errors import ConfigError
from lmdelta.properties import Property, select, with_user_properties


class GenerateConfig(Section, Seeded):
    a: ModelSpec = Field(default_factory=ModelSpec)
    """Model a, the reference side."""
    b: ModelSpec = Field(default_factory=ModelSpec)
    """Model b, the side whose differences from a are reported."""
    samples_per_prompt: int = Field(default=1, ge=1, le=100_000)
    """Answers per prompt and side."""
    max_new_tokens: int = Field(default=64, ge=1)
    """Upper bound on the tokens of one answer."""
    temperature: float = Field(default=1.0, ge=0.0)
    """Sampling temperature; 0 decodes greedily."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    seed: int | None = None
    """Seed from which each (side, prompt, sample) draws its own seed (default: run.seed)."""
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(default="auto", json_schema_extra=VOLATILE)
    """Answers decoded together: a transformers model's continuous batch (a finished answer's row takes the next
    request); a batch of similar prompt length on other backends. `auto`: 128 rows for a continuous batch on a CPU
    (fewer where their keys and values would pass 2 GiB; never fewer than 32), 32 otherwise."""
    device: str = Field(default="auto", json_schema_extra=VOLATILE)
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps`."""

    @field_validator("batch_size", mode="before")
    @classmethod
    def _rows(cls, size: Any) -> Any:
        if size == "auto" or (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
            return size
        raise ValueError("generate.batch_size takes a whole number of answers (1 or more) or auto")


class EmbedConfig(Section):
    model: str = "embedded:all-MiniLM-L6-v2"
    """`embedded:all-MiniLM-L6-v2`, a sentence-transformers folder or Hub id, or `fake:NAME`."""
    normalize: bool = True
    """L2-normalise embeddings."""
    backend: Literal["auto", "sentence-transformers", "numpy"] = "auto"
    """`auto`: sentence-transformers (torch) when the `[models]` extra is installed, else lmdelta's NumPy encoder
    (BERT-family models such as all-MiniLM-L6-v2 only; the same vectors to ~1e-6, 2-4x slower on CPU)."""
    embed_prompts: bool = True
    """Also embed the prompts (needed for grouping by prompt embeddings)."""
    batch_size: int = Field(default=64, ge=1, json_schema_extra=VOLATILE)
    """Texts encoded together."""
    device: str = Field(default="auto", json_schema_extra=VOLATILE)
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps`."""
    cache_dir: str | None = Field(default=None, json_schema_extra=VOLATILE)
    """Where the shared embedding cache lives (default: $LMDELTA_CACHE_DIR or ~/.cache/lmdelta)."""


class GroupConfig(Section, Seeded):
    by: Literal["bank", "kmeans", "none"] = "bank"
    """`bank`: the prompt bank's groups; `kmeans`: size-balanced k-means over prompt embeddings; `none`: one group."""
    n_groups: int = Field(default=8, ge=1)
    """Number of groups for `kmeans`."""
    response_clusters: int | None = Field(default=None, ge=2)
    """Also cluster a+b responses jointly into this many clusters (unset: skip)."""
    seed: int | None = None
    """Seed for clustering (default: run.seed)."""


class KeywordProposerConfig(Section):
    enabled: bool = True
    """Propose "one side uses these words in more answers" hypotheses."""
    max_ngram: int = Field(default=3, ge=1, le=3)
    """Longest n-gram considered."""
    per_scope: int = Field(default=3, ge=1)
    """At most this many keyword hypotheses per group and direction."""
    min_z: float = Field(default=1.5, ge=0.0)
    """Smallest log-odds z-score (on discovery data) worth testing."""
    min_texts: int = Field(default=3, ge=1)
    """The favoured side must use the n-gram in at least this many discovery answers."""
    prior_strength: float = Field(default=10.0, gt=0.0)
    """Pseudo-texts of the Dirichlet prior (shrinks rare n-grams)."""
    symbols: bool = True
    """Also contrast punctuation and symbols ("!", "**", "—", emoji; "!!!" also as itself); off: words only."""


class ClusterProposerConfig(Section):
    enabled: bool = True
    """Propose "one side's answers fall more often in this cluster" hypotheses."""
    k: int = Field(default=8, ge=2)
    """Clusters per group (fewer when a group has few answers)."""
    per_scope: int = Field(default=2, ge=1)
    """At most this many cluster hypotheses per group."""
    min_size: int = Field(default=6, ge=2)
    """Smallest cluster considered."""
    min_share: float = Field(default=0.7, gt=0.5, lt=1.0)
    """The favoured side's balanced share of the cluster must reach this."""
    within_prompt: bool = True
    (
        "Cluster how each answer differs from its prompt's answers (its embedding minus the mean of the two sides' "
        "mean embeddings for that prompt), so clusters gather kinds of difference rather than topics; off, or in "
        "corpora without shared prompts: the answers' own embeddings (where both sides' answers to a prompt share "
        "its topic, and so every cluster)."
    )
    properties: int = Field(default=2, ge=0)
    """Text properties named in a cluster's description, those that set its answers apart most (0: none)."""


class PropertyProposerConfig(Section):
    enabled: bool = True
    (
        'Propose "one side\'s answers are longer / use more exclamation marks / …" hypotheses from the text '
        "properties (docs/properties.md), each validated with the property itself as the judge."
    )
    per_scope: int = Field(default=8, ge=1)
    """At most this many property hypotheses per group, the strongest on discovery data first."""
    max_p: float = Field(default=0.05, gt=0.0, le=1.0)
    (
        "Screening on discovery data: the largest two-sided p-value of a paired t test on the per-prompt "
        "differences (a Welch t test over texts in unaligned corpora)."
    )
    min_effect: float = Field(default=0.2, ge=0.0)
    """Screening on discovery data: the smallest standardized difference, |mean difference| / its sd."""
    include: list[str] = Field(default_factory=list)
    """Property names to consider (empty: all); a name covers its `has_<name>` presence view too."""
    exclude: list[str] = Field(default_factory=list)
    """Property names never proposed; a name covers its `has_<name>` presence view too."""
    custom: list[dict[str, Any]] = Field(default_factory=list)
    """Your own properties: each {name, description, regex or lexicon, count?, phrase?, noun?} (docs/properties.md)."""

    @model_validator(mode="after")
    def _known_properties(self) -> Self:
        self.chosen()
        return self

    def chosen(self) -> tuple[Property, ...]:
        """The properties to propose from: the catalogue and the custom ones, filtered by include and
        exclude; ConfigError naming the field for a bad custom entry or an unknown name."""
        try:
            registry = with_user_properties(self.custom)
        except ConfigError as exc:
            raise ConfigError(f"Config field propose.properties.custom is invalid: {exc.problem}", exc.fix) from None
        try:
            return select(registry, self.include, self.exclude)
        except ConfigError as exc:
            field = "include" if any(name not in registry for name in self.include) else "exclude"
            raise ConfigError(f"Config field propose.properties.{field} is invalid: {exc.problem}", exc.fix) from None


class LLMProposerConfig(Section):
    enabled: bool = True
    """Ask the proposer LLM (llm.proposer.model) for hypotheses; off when no proposer model is set."""
    texts_per_side: int = Field(default=10, ge=1)
    """Discovery answers per side shown in one proposal prompt."""
    per_scope: int = Field(default=2, ge=1)
    """Hypotheses asked for per group (1..k)."""
    instruction: str | None = None
    """What to look for (default: content and meaning, not surface form)."""


class DedupConfig(Section):
    enabled: bool = True
    """Drop (or, two keyword hypotheses, merge) a hypothesis that repeats an earlier one of its scope and direction."""
    similarity: float = Field(default=0.85, gt=0.0, le=1.0)
    (
        "Near-duplicate when the cosine similarity of the two side-free claims' embeddings reaches this "
        "(MiniLM: near-identical wording 0.85+, restatements in other words 0.56-0.74, unrelated claims 0.25-0.47)."
    )
    overlap: float = Field(default=0.6, gt=0.0, le=1.0)
    (
        "Or when the discovery texts the two fire on overlap this much (Jaccard: shared texts over texts either "
        "fires on; keyword, presence-property and cluster hypotheses)."
    )
    max_keywords: int = Field(default=6, ge=1)
    """A merged keyword hypothesis keeps at most this many keywords."""


class ProposeConfig(Section, Seeded):
    scopes: Literal["all", "groups", "both"] = "both"
    """Propose over all prompts pooled (`all`), per group (`groups`), or both."""
    min_discovery_prompts: int = Field(default=2, ge=1)
    """Groups with fewer discovery prompts are skipped (with the reason recorded)."""
    keywords: KeywordProposerConfig = Field(default_factory=KeywordProposerConfig)
    """Keyword-contrast proposer."""
    clusters: ClusterProposerConfig = Field(default_factory=ClusterProposerConfig)
    """Cluster over-representation proposer."""
    properties: PropertyProposerConfig = Field(default_factory=PropertyProposerConfig)
    """Text-property proposer (length, punctuation, markdown, tone, … and your own)."""
    llm: LLMProposerConfig = Field(default_factory=LLMProposerConfig)
    """LLM proposer (needs llm.proposer.model)."""
    seed: int | None = None
    """Seed for clustering (default: run.seed)."""
    rounds: int = Field(default=3, ge=1, le=20)
    (
        "Rounds of proposing on the discovery answers (at most this many; the loop stops by itself when a round "
        "adds no new distinct hypothesis). After each round the texts the hypotheses so far fire on are explained "
        "away (weighted down) for the offline proposers, and the LLM proposer is told what was proposed "
        "(docs/search.md)."
    )
    first_share: float = Field(default=1.0, gt=0.0, le=1.0)
    (
        "Rounds: the share of the discovery prompts answered before the first round (in a seeded order); each "
        "later round answers an equal part of the rest before it proposes, so answers are generated only while "
        "rounds find something new (1: every discovery prompt answered up front)."
    )
    explain_weight: float = Field(default=0.25, ge=0.0, le=1.0)
    """Rounds: the weight a discovery text keeps in later rounds once an earlier hypothesis fires on it (1: none)."""
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    """Label diversification: near-duplicate hypotheses are merged or dropped before any test."""
    given: str | None = None
    (
        "A YAML or JSONL file of hypotheses to test as given (description, direction, optional keywords, judge; "
        "`lmdelta findings export` writes one): a confirmatory family of its own, decided by BH "
        "(e-BH in sequential mode), beside or instead of the proposed ones (docs/given.md)."
    )


class ValidateConfig(Section, Seeded):
    judge: Literal["auto", "unitary", "pairwise", "presence"] = "auto"
    (
        "`auto`: keyword/embedding judges for their hypotheses and the LLM unitary judge for LLM-proposed ones; "
        "otherwise that LLM judge for every hypothesis (needs llm.judge.model)."
    )
    extra_judges: list[str] = Field(default_factory=list)
    """More judge model strings scoring the same texts, for agreement statistics (not used in the test)."""
    generative: bool = False
    """Also test each hypothesis generatively: the judge model writes examples, scored by log p_b − log p_a."""
    generative_examples: int = Field(default=8, ge=2)
    """Examples per side for the generative test."""
    test: Literal["signflip"] = "signflip"
    (
        "Paired sign-flip randomization test over prompts (unequal answer counts: balanced by a seeded subsample per "
        "prompt)."
    )
    n_resamples: int = Field(default=10_000, ge=1000)
    """Randomization draws (raised automatically so the smallest p-value stays below q / (10 m))."""
    bootstrap: int = Field(default=2000, ge=200, json_schema_extra=VOLATILE)
    (
        "Ignored: intervals are t-based (docs/statistics.md §7); accepted so that older configs still load, with a "
        "warning when set."
    )
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of every interval (validated findings also get a selection-adjusted one)."""
    min_prompts: int = Field(default=5, ge=2)
    """Groups with fewer validation prompts are skipped (with the reason recorded)."""
    baseline: bool = True
    """Also report a bag-of-words logistic classifier's AUC on the same texts."""
    generalization: bool = True
    (
        "Also test each group's hypotheses on other groups' validation prompts (an LLM judge scores a seeded sample of "
        "at most as many prompts as the group has), BH within that family."
    )
    examples: int = Field(default=3, ge=0)
    """Evidence texts kept per side and hypothesis."""
    seed: int | None = None
    """Seed for randomization and the balancing subsample (default: run.seed)."""
    mode: Literal["auto", "fixed", "sequential"] = "auto"
    (
        "`fixed`: every validation prompt is answered and judged for every hypothesis, sign-flip tests, BH. "
        "`sequential`: prompts in rounds, answered and judged only while some hypothesis in their scope is "
        "undecided; betting e-processes, e-BH (docs/statistics.md §9.1, docs/adaptive.md). `auto`: sequential "
        "when the validation split has at least auto_prompts prompts paired by prompt and there is generation or "
        "an LLM judge to save (no judge cascade), fixed otherwise; the run's log and --dry-run say which and why."
    )
    auto_prompts: int = Field(default=1000, ge=2, json_schema_extra=VOLATILE)
    (
        "`auto`: the fewest validation prompts for the sequential mode. Below a few hundred the fixed test finds "
        "more (an e-value must pass m/q); from about 1,000 the sequential mode keeps most of its power at a "
        "fraction of the cost (docs/adaptive.md, choosing a mode). Not fingerprinted itself: the mode it picks is."
    )
    first_round: int = Field(default=16, ge=2)
    """Sequential: in-scope prompts per hypothesis in the first round."""
    growth: float = Field(default=1.5, ge=1.0, le=10.0)
    """Sequential: each round gives every undecided hypothesis this many times the prompts of the last."""
    max_round: int | None = Field(default=128, ge=1)
    (
        "Sequential: at most this many new in-scope prompts per hypothesis in one round, or a sixteenth of those it "
        "has been given once that is more (unset: rounds keep growing). A group is answered until its slowest "
        "hypothesis stops, and a round's prompts are answered whole, so smaller late rounds spend fewer tokens past "
        "the last decision (at 20,000 prompts: 7.4× fewer tokens than the fixed protocol against 6.6× without it, "
        "the same power) for more rounds, i.e. smaller generation batches."
    )
    max_prompts: int | None = Field(default=None, ge=2)
    """Sequential: at most this many in-scope prompts per hypothesis (unset: the whole validation split)."""
    min_effect: float = Field(default=0.1, ge=0.0, lt=10.0)
    (
        "Sequential: a hypothesis stops as futile once its confidence sequence rules out every mean difference "
        "of at least this many standard deviations of its per-prompt differences, in its direction (a standardized "
        "effect: judges score on scales of their own; 0: once it rules out the direction)."
    )
    futility_alpha: float = Field(default=0.2, gt=0.0, le=0.5)
    (
        "Sequential: futility is read from a one-sided confidence sequence at level 1 − this, tuned for the prompts "
        "a bound of min_effect needs; it never adds a rejection, so it costs no validity, and a real effect of at "
        "least min_effect is stopped with probability at most this."
    )
    answers_per_prompt: int | None = Field(default=1, ge=1)
    (
        "Sequential: answers per validation prompt and side to start with (unset: generate.samples_per_prompt); "
        "a fresh prompt tells more than another answer to a seen one."
    )
    max_answers_per_prompt: int | None = Field(default=None, ge=1, le=1000)
    (
        "Sequential: a hypothesis whose scope has too few prompts left for the evidence it still needs takes up to "
        "this many answers per prompt and side for its next prompts, where answers to one prompt differ enough for "
        "more of them to help (docs/adaptive.md). Unset, or at most answers_per_prompt: the depth stays fixed (on "
        "three demo runs deeper answers cost 1.7× the validation tokens and changed no finding). Corpus runs read "
        "every saved answer."
    )
    strong_share: float = Field(default=0.1, gt=0.0, le=1.0)
    (
        "Judge cascade (llm.strong_judge.model set): the expected share of each hypothesis's "
        "in-scope validation prompts whose texts the strong judge scores, drawn by a seeded coin per prompt "
        "(at least 20 prompts expected, all of them below that); PPI++ combines them with the hypothesis's own judge."
    )
    strong_labels: Literal["uniform", "active"] = "uniform"
    (
        "Judge cascade: `uniform` labels every prompt with probability strong_share; `active` labels prompts "
        "the cheap judge is unsure of more often (probability proportional to sqrt(m(1 − m)), m the mean of the "
        "prompt's cheap scores, at least a fifth of the uniform rate), same expected count; fixed mode only."
    )

    @field_validator("test", mode="before")
    @classmethod
    def _wilcoxon_was_removed(cls, test: Any) -> Any:
        if test == "wilcoxon":
            raise ValueError(
                "validate.test = wilcoxon was removed: Wilcoxon signed-rank tests a median (symmetry) "
                "null, not the mean difference lmdelta reports, and rejected true nulls up to 27% of the "
                "time under skewed differences and 43% with unequal answer counts at alpha 0.05 "
                "(docs/statistics.md); use validate.test = signflip (the default), or delete the setting"
            )
        return test


class DecideConfig(Section):
    q: float = Field(default=0.05, gt=0.0, lt=1.0)
    """Target false discovery rate."""
    primary: Literal["bh", "by", "online"] = "bh"
    """Which procedure's rejections count as validated."""
    online: Literal["saffron", "addis", "lord++"] = "saffron"
    """Online procedure run over the hypotheses in proposal order."""


class ControlsConfig(Section):
    null: bool = True
    (
        "Null control: swap a and b on a seeded coin per prompt (each prompt's answers together; per text in unaligned "
        "corpora) and run propose and validate on that; nothing should validate."
    )
