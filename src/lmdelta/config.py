"""Typed run configuration: one pydantic section per stage, loaded from YAML plus overrides.

Precedence is --set > environment (LMDELTA__SECTION__KEY) > file > defaults; `None` means unset.
Fields marked volatile (batch sizes, devices) cannot change results and stay out of fingerprints.
"""

from __future__ import annotations

import difflib
import logging
import os
import reprlib
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from lmdelta.config_base import DEFAULT_LM, VOLATILE, Section
from lmdelta.config_extra import BudgetConfig, FinetuneSection, GroundTruthConfig, LLMConfig, RoleConfig
from lmdelta.config_models import ModelSpec, ReasoningConfig
from lmdelta.config_prompts import CorpusColumns, CorpusConfig, GeneratedBankConfig, PromptsConfig
from lmdelta.config_yaml import parse_yaml
from lmdelta.credentials import redact_backend_args
from lmdelta.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_LM", "VOLATILE", "Section", "BudgetConfig", "FinetuneSection", "GroundTruthConfig", "LLMConfig",
           "RoleConfig", "RunConfig", "ModelSpec", "ReasoningConfig", "PromptsConfig", "CorpusConfig", "CorpusColumns",
           "GeneratedBankConfig", "load_config", "validate_config", "dump_config"]


class RunSection(Section):
    name: str | None = None
    """A name for the run, shown in status and reports."""
    seed: int = 0
    """Default seed for every stochastic step whose own section leaves `seed` unset."""


class GenerateConfig(Section):
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
    batch_size: int = Field(default=32, ge=1, json_schema_extra=VOLATILE)
    """Prompts decoded together; batches are bucketed by prompt length."""
    device: str = Field(default="auto", json_schema_extra=VOLATILE)
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps`."""


class EmbedConfig(Section):
    model: str = "embedded:all-MiniLM-L6-v2"
    """`embedded:all-MiniLM-L6-v2`, a sentence-transformers folder or Hub id, or `fake:NAME`."""
    normalize: bool = True
    """L2-normalise embeddings."""
    embed_prompts: bool = True
    """Also embed the prompts (needed for grouping by prompt embeddings)."""
    batch_size: int = Field(default=64, ge=1, json_schema_extra=VOLATILE)
    """Texts encoded together."""
    device: str = Field(default="auto", json_schema_extra=VOLATILE)
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps`."""
    cache_dir: str | None = Field(default=None, json_schema_extra=VOLATILE)
    """Where the shared embedding cache lives (default: $LMDELTA_CACHE_DIR or ~/.cache/lmdelta)."""


class GroupConfig(Section):
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


class LLMProposerConfig(Section):
    enabled: bool = True
    """Ask the proposer LLM (llm.proposer.model) for hypotheses; off when no proposer model is set."""
    texts_per_side: int = Field(default=10, ge=1)
    """Discovery answers per side shown in one proposal prompt."""
    per_scope: int = Field(default=2, ge=1)
    """Hypotheses asked for per group (1..k)."""
    instruction: str | None = None
    """What to look for (default: content and meaning, not surface form)."""


class ProposeConfig(Section):
    scopes: Literal["all", "groups", "both"] = "both"
    """Propose over all prompts pooled (`all`), per group (`groups`), or both."""
    min_discovery_prompts: int = Field(default=2, ge=1)
    """Groups with fewer discovery prompts are skipped (with the reason recorded)."""
    keywords: KeywordProposerConfig = Field(default_factory=KeywordProposerConfig)
    """Keyword-contrast proposer."""
    clusters: ClusterProposerConfig = Field(default_factory=ClusterProposerConfig)
    """Cluster over-representation proposer."""
    llm: LLMProposerConfig = Field(default_factory=LLMProposerConfig)
    """LLM proposer (needs llm.proposer.model)."""
    seed: int | None = None
    """Seed for clustering (default: run.seed)."""


class ValidateConfig(Section):
    judge: Literal["auto", "unitary", "pairwise", "presence"] = "auto"
    """`auto`: keyword/embedding judges for their hypotheses and the LLM unitary judge for LLM-proposed ones; otherwise that LLM judge for every hypothesis (needs llm.judge.model)."""
    extra_judges: list[str] = Field(default_factory=list)
    """More judge model strings scoring the same texts, for agreement statistics (not used in the test)."""
    generative: bool = False
    """Also test each hypothesis generatively: the judge model writes examples, scored by log p_b − log p_a."""
    generative_examples: int = Field(default=8, ge=2)
    """Examples per side for the generative test."""
    test: Literal["signflip"] = "signflip"
    """Paired sign-flip randomization test over prompts (unequal answer counts: balanced by a seeded subsample per prompt)."""
    n_resamples: int = Field(default=10_000, ge=1000)
    """Randomization draws (raised automatically so the smallest p-value stays below q / (10 m))."""
    bootstrap: int = Field(default=2000, ge=200, json_schema_extra=VOLATILE)
    """Ignored: intervals are t-based (docs/statistics.md §7); accepted so that older configs still load, with a warning when set."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of every interval (validated findings also get a selection-adjusted one)."""
    min_prompts: int = Field(default=5, ge=2)
    """Groups with fewer validation prompts are skipped (with the reason recorded)."""
    baseline: bool = True
    """Also report a bag-of-words logistic classifier's AUC on the same texts."""
    generalization: bool = True
    """Also test each group's hypotheses on other groups' validation prompts (an LLM judge scores a seeded sample of at most as many prompts as the group has), BH within that family."""
    examples: int = Field(default=3, ge=0)
    """Evidence texts kept per side and hypothesis."""
    seed: int | None = None
    """Seed for randomization and the balancing subsample (default: run.seed)."""

    @field_validator("test", mode="before")
    @classmethod
    def _wilcoxon_was_removed(cls, test: Any) -> Any:
        if test == "wilcoxon":
            raise ValueError("validate.test = wilcoxon was removed: Wilcoxon signed-rank tests a median (symmetry) "
                             "null, not the mean difference lmdelta reports, and rejected true nulls up to 27% of the "
                             "time under skewed differences and 43% with unequal answer counts at alpha 0.05 "
                             "(docs/statistics.md); use validate.test = signflip (the default), or delete the setting")
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
    """Null control: swap a and b on a seeded coin per prompt (each prompt's answers together; per text in unaligned corpora) and run propose and validate on that; nothing should validate."""


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
        validate: ValidateConfig = Field(default_factory=ValidateConfig)
        decide: DecideConfig = Field(default_factory=DecideConfig)
        controls: ControlsConfig = Field(default_factory=ControlsConfig)
        llm: LLMConfig = Field(default_factory=LLMConfig)
        budget: BudgetConfig = Field(default_factory=BudgetConfig)
        groundtruth: GroundTruthConfig = Field(default_factory=GroundTruthConfig)

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


def load_config(path: str | Path | None, overrides: list[str] = (), env: dict[str, str] | None = None) -> RunConfig:
    """Read a config file, apply environment and --set overrides, validate, resolve seeds and paths."""
    data: dict[str, Any] = _read_yaml(Path(path)) if path is not None else {}
    for dotted, value in _env_overrides(os.environ if env is None else env):
        _set_dotted(data, dotted, value)
    for item in overrides:
        dotted, value = _parse_override(item)
        _set_dotted(data, dotted, value)
    config = validate_config(data)
    _warn_about_credentials(config)
    _warn_about_ignored(config)
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    return _resolve_paths(config.resolved(), base)


def validate_config(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(_null_keys(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0]), _fix_for(exc.errors()[0])) from None


def _null_keys(value: Any) -> Any:
    """YAML reads the key in `null: true` as None; the field is called "null" (controls.null)."""
    if isinstance(value, dict):
        return {("null" if key is None else key): _null_keys(item) for key, item in value.items()}
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.", "Check the path, or start from configs/demo.yaml.")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), f"Config file {path}")
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"Config file {path} is not valid YAML{line}: {problem}.", "Fix the YAML syntax there.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections, not a {type(data).__name__}.",
                          "Write it as `section:` blocks such as `generate:` and `prompts:`.")
    return data


def _env_overrides(env: dict[str, str]) -> list[tuple[str, Any]]:
    found = []
    for name, raw in sorted(env.items()):
        if name.startswith("LMDELTA__"):
            dotted = ".".join(part.lower() for part in name[len("LMDELTA__"):].split("__"))
            found.append((dotted, _override_value(raw, f"Environment variable {name}") if raw else raw))
    return found


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"Override {item!r} is not of the form section.key=value.",
                          "Write it like --set generate.max_new_tokens=32.")
    return key.strip(), _override_value(raw, f"Override --set {key.strip()}") if raw.strip() else raw


def _override_value(raw: str, where: str) -> Any:
    """An override's value read as YAML (a number, list, mapping…), or the text itself when it is not YAML."""
    try:
        return parse_yaml(raw, where)
    except yaml.YAMLError:
        return raw


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"Cannot set {dotted}: {where} is a value, not a section.", "Check the key path.")
        node = child
    node[parts[-1]] = value


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"Config field {where} is not a known setting."
    if error["type"] == "missing":
        return f"Config field {where} is required but not set."
    given = error.get("input")
    shown = "" if isinstance(given, dict) else f" (got {_short_repr(given)})"
    return f"Config field {where} is invalid: {error['msg']}{shown}."


def _short_repr(value: Any) -> str:
    """repr() cut short: a value may be huge (a long list, aliases that repeat one list many times)."""
    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxlist, shortener.maxdict, shortener.maxstring = 2, 5, 5, 80
    text = shortener.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _fix_for(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    where = ".".join(loc)
    if error["type"] == "extra_forbidden":
        known = _known_fields(loc[:-1])
        near = difflib.get_close_matches(loc[-1], known, n=3)
        hint = f"Did you mean {', '.join('.'.join(loc[:-1] + [n]) for n in near)}? " if near else ""
        return f"{hint}Known fields here: {', '.join(known)}."
    if error["type"] == "string_type" and isinstance(error.get("input"), (dict, list)):
        return (f"The value was read as YAML, where `key: value` and {{...}} make a mapping: quote the text, "
                f"e.g. --set '{where}=\"Question: {{prompt}}\"' (in a file: {loc[-1]}: \"Question: {{prompt}}\").")
    return f"Set it in the config file or with --set {where}=VALUE."


def _known_fields(loc: list[str]) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in loc:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _resolve_paths(config: RunConfig, base: Path) -> RunConfig:
    """Make relative file paths absolute: relative to the config file if the file is there, else to cwd."""
    config.prompts.source = _source_path(config.prompts.source, base)
    if config.prompts.score_table is not None:
        config.prompts.score_table = str(_locate(config.prompts.score_table, base))
    if config.groundtruth.quirks_file is not None:
        config.groundtruth.quirks_file = str(_locate(config.groundtruth.quirks_file, base))
    for name in ("path", "a", "b"):
        value = getattr(config.corpus, name)
        if value is not None:
            setattr(config.corpus, name, str(_locate(value, base)))
    for side in ("a", "b"):
        spec: ModelSpec = getattr(config.generate, side)
        if spec.adapter:
            spec.adapter = str(_locate(spec.adapter, base))
        if _looks_like_path(spec.model):
            spec.model = str(_locate(spec.model, base))
    return config


def _source_path(source: str, base: Path) -> str:
    """prompts.source with its path (a file, or after `persona:` and the like) made absolute."""
    from lmdelta.errors import PromptBankError
    from lmdelta.sources.spec import parse_source

    try:
        spec = parse_source(source)
    except PromptBankError as exc:
        raise ConfigError(f"Config field prompts.source is invalid: {exc.problem}", exc.fix) from None
    if not spec.is_path:
        return source
    located = str(_locate(spec.location, base))
    return located if spec.kind == "file" else f"{spec.kind}:{located}"


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or os.sep in model and Path(model).expanduser().exists()


def _locate(raw: str, base: Path) -> Path:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    beside_config = base / path
    return beside_config.resolve() if beside_config.exists() else path.resolve()


def dump_config(config: RunConfig) -> str:
    """The config as YAML, with credential-named values (a key in backend_args.headers) redacted and
    ignored settings left out (a run's config.yaml, loaded again, should not warn about them)."""
    dumped = config.model_dump(mode="json", exclude={"validate": {"bootstrap"}})
    return yaml.safe_dump(redact_backend_args(dumped), sort_keys=False, allow_unicode=True)


def _warn_about_ignored(config: RunConfig) -> None:
    """Settings that load but do nothing: say so once, when the config sets them."""
    if "bootstrap" in config.validate.model_fields_set:
        log.warning("validate.bootstrap is ignored: intervals are t-based (docs/statistics.md §7); remove it")


def _warn_about_credentials(config: RunConfig) -> None:
    dumped = config.model_dump(mode="json")
    if redact_backend_args(dumped) != dumped:
        log.warning("The config holds a value named like a credential (e.g. in backend_args.headers). It is sent to "
                    "the provider but written to no file (config.yaml shows [redacted]), so re-running from a run's "
                    "config.yaml would not send it: prefer the provider's key variable or llm.key_file.")
