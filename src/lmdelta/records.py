"""The records that cross stages and the run directory: prompts, samples, hypotheses, findings and the
manifest. Frozen, singular, JSON round-trippable."""

from __future__ import annotations

import enum
import sys
from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any, Final, Literal

from lmdelta.jsonvalues import plain

Side = Literal["a", "b"]
SIDES: tuple[Side, Side] = ("a", "b")
Split = Literal["discovery", "validation", "confirmation"]
Unit = Literal["cluster", "text"]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt (or, in corpus mode, a unit of texts). Slotted, and its group, split and unit strings shared: a
    corpus run holds a million of them (391 → 237 bytes each, tracemalloc over 100,000 of the 2M run)."""

    id: str
    text: str
    group: str | None = None
    split: Split | None = None
    unit: Unit | None = None  # corpus mode: the id names a cluster of texts or one text (None: a prompt)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.unit is None:  # a prompt's record (and so a bank's fingerprint) as before the field existed
            del data["unit"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prompt:
        group, split, unit = (_shared(data.get(name)) for name in ("group", "split", "unit"))
        return cls(id=data["id"], text=data["text"], group=group, split=split, unit=unit)


def _shared(value: Any) -> Any:
    """A string every record holding it shares (one object per value), anything else as it is."""
    return sys.intern(value) if type(value) is str else value


@dataclass(frozen=True, slots=True)
class Sample:
    """One model's answer to one prompt. `key` is the content address of the request. Slotted, and its repeated
    strings shared, because a run holds every answer: 755 → 646 bytes per answer (tracemalloc, 20,000 answers)."""

    prompt_id: str
    side: Side
    index: int
    text: str
    n_tokens: int
    finish_reason: Literal["stop", "length"]
    seed: int
    key: str

    @property
    def id(self) -> str:
        return f"{self.side}:{self.prompt_id}:{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        fields = {name: data[name] for name in cls.__dataclass_fields__}
        for name in ("prompt_id", "side", "finish_reason"):  # one string per prompt, per side, per reason
            if type(fields[name]) is str:
                fields[name] = sys.intern(fields[name])
        return cls(**fields)


@dataclass(frozen=True)
class Hypothesis:
    """A proposed difference, made from discovery prompts only; `judge` says how to score a text."""

    id: str
    group: str
    direction: Literal["b>a", "a>b"]
    description: str
    proposer: str
    judge: Literal["keyword", "embedding", "llm", "property"]
    keywords: tuple[str, ...] = ()
    property: str | None = None  # the hypothesis stated without either side, for blind judges
    prototype: tuple[float, ...] | None = None
    evidence: dict[str, list[str]] | None = None
    provenance: dict[str, Any] | None = None
    order: int = 0
    # The text property the "property" judge scores (lmdelta.properties): its name, and for a user property
    # its config entry, so validate and confirm rebuild the scorer without reading propose's config.
    measure: str | None = None
    measure_spec: dict[str, Any] | None = None

    def content_key(self) -> list[Any]:
        """What the hypothesis claims and how it is scored, without its id or place in the proposal
        order: the same hypothesis gets the same key whatever else was proposed. The side-free
        property stands for the description when there is one (the description names the sides'
        labels); the prototype is rounded as to_dict writes it, so one read back from disk keys the same.
        The measure is appended only when there is one, so other hypotheses key as before it existed."""
        claim = self.property if self.property is not None else self.description
        key = [self.group, self.direction, self.judge, list(self.keywords), claim, _rounded(self.prototype)]
        return key if self.measure is None else [*key, self.measure, self.measure_spec]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keywords"] = list(self.keywords)
        data["prototype"] = _rounded(self.prototype)
        for name in ("measure", "measure_spec"):  # rows without a measure are written as before the fields existed
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hypothesis:
        fields: dict[str, Any] = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        fields["keywords"] = tuple(data.get("keywords") or ())
        fields["prototype"] = None if data.get("prototype") is None else tuple(data["prototype"])
        return cls(**fields)


def _rounded(prototype: tuple[float, ...] | None) -> list[float] | None:
    return None if prototype is None else [round(x, 6) for x in prototype]


# --- findings: what validate, decide and the report write per tested hypothesis -------------------


class Unset(enum.Enum):
    """A field a row does not have because the step that writes it did not run (validate.baseline
    off, a row not decided yet), unlike None: the step ran and had no value. Never written; falsy."""

    UNSET = "unset"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET
Direction = Literal["b>a", "a>b"]
DIRECTIONS: tuple[Direction, Direction] = ("b>a", "a>b")
TestUnit = Literal["prompt", "cluster", "text", "none"]
Interval = list[float | None]  # [low, high] as the files hold it; either end None when there is none
Example = dict[str, Any]  # {"sample_id", "prompt", "text", "score"}: a validation answer that shows the finding


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One tested hypothesis: the row of validate's results.jsonl, decide's decisions.jsonl and the run's
    hypotheses.jsonl and null_control.jsonl, in that order of growth.

    The field order is the key order of those files. Fields that only some rows have default to UNSET and
    are not written: the measured property and its numbers (property judges only), the sequential test
    (validate.mode = sequential), the judge cascade (llm.strong_judge), the generalisation
    test (validate.generalization), judge agreement
    (validate.extra_judges), the lexical baseline (validate.baseline), the generative test
    (validate.generative), the decisions (decide) and the replication (the report stage, from confirm).
    Numbers are held as the files hold them: finite floats or None, plain Python types.
    """

    # The hypothesis (Hypothesis's fields without its prototype); `judge` names the judge that scored it.
    id: str
    group: str
    direction: Direction
    description: str
    proposer: str
    judge: str
    keywords: list[str]
    property: str | None
    evidence: dict[str, list[str]] | None
    provenance: dict[str, Any] | None
    order: int
    measure: str | Unset = UNSET  # the property a property judge scored (Hypothesis.measure)
    measure_spec: dict[str, Any] | Unset = UNSET  # a user property's config entry
    # Its test on the validation prompts (or texts, or clusters: `unit`).
    statistic: float | None
    p_value: float | None
    n_prompts: int
    n_units: int
    unit: TestUnit
    test: str
    n_subsample_dropped: int
    smallest_p: float | None
    # The sequential test (validate.mode = sequential; then p_value is its anytime-valid p = 1 / the largest
    # capital): the betting e-value at stopping, the round it stopped after, why ("rejected", "futile", "cap",
    # "exhausted") and the confidence sequence for the mean difference there.
    e_value: float | None | Unset = UNSET
    stop_round: int | Unset = UNSET
    stop_reason: str | Unset = UNSET
    confidence_sequence: Interval | Unset = UNSET
    # The judge cascade (llm.strong_judge set; fixed mode): the test above and the effect below are PPI++'s
    # (p-value, estimate of the strong judge's mean difference, its interval and standard error), from the
    # hypothesis's own (cheap) judge on every prompt and the strong judge on a seeded sample of them. Here: the
    # texts the strong judge was asked to score and the prompts labelled; the judges' agreement on those prompts'
    # differences (n, sign_agreement, correlation, and cheap_weight, the PPI++ lambda); and the cheap judge's own
    # p-value and effect. auc, prevalences and examples stay the cheap judge's.
    strong_calls: int | Unset = UNSET
    strong_prompts: int | Unset = UNSET
    cascade_agreement: dict[str, Any] | Unset = UNSET
    cheap_p_value: float | None | Unset = UNSET
    cheap_effect: float | None | Unset = UNSET
    # Its effects, each with an interval or the reason it has none.
    effect: float | None
    effect_ci: Interval
    effect_se: float | None
    effect_df: float | None
    effect_ci_note: str | None
    auc: float | None
    auc_ci: Interval
    auc_ci_note: str | None
    ci_level: float
    assumption: str
    n_texts: int
    n_dropped: int
    prevalence_a: float | None
    prevalence_b: float | None
    prevalence_a_ci: Interval
    prevalence_b_ci: Interval
    prevalence_ci_note: str | None
    # For a property judge, the property in its own unit on the texts tested: the statistic ("median",
    # "mean" or "share" of answers), its value on each side, and the unit ("words"; "" for a share), so a
    # report can say "median 182 vs 131 words". The test itself runs on the judge's [0, 1] scores.
    measure_statistic: str | Unset = UNSET
    measure_a: float | None | Unset = UNSET
    measure_b: float | None | Unset = UNSET
    measure_unit: str | Unset = UNSET
    examples: dict[str, list[Example]]
    # The generalisation test on other groups' prompts (validate.generalization).
    generalization_p: float | None | Unset = UNSET
    generalization_effect: float | None | Unset = UNSET
    generalization_units: int | Unset = UNSET
    clustering_warning: str | None
    judge_agreement: dict[str, dict[str, Any]] | Unset = UNSET  # per extra judge (validate.extra_judges)
    baseline_auc: float | None | Unset = UNSET  # of the finding's scope (validate.baseline)
    # The generative test (validate.generative).
    generative_p: float | None | Unset = UNSET
    generative_effect: float | None | Unset = UNSET
    generative_n: int | Unset = UNSET
    # The decisions (decide): every procedure's, `validated` the primary one's, and the secondary families'.
    bh_reject: bool | Unset = UNSET
    by_reject: bool | Unset = UNSET
    online_reject: bool | Unset = UNSET
    online_level: float | Unset = UNSET
    online_procedure: str | Unset = UNSET
    q_value: float | None | Unset = UNSET
    validated: bool | Unset = UNSET
    procedure: str | Unset = UNSET  # the procedure whose decision `validated` is ("BH", "e-BH", "SAFFRON", …)
    effect_ci_fcr: Interval | None | Unset = UNSET
    fcr_level: float | None | Unset = UNSET
    generalization_q: float | None | Unset = UNSET
    generalization_validated: bool | None | Unset = UNSET
    generative_q: float | None | Unset = UNSET
    generative_validated: bool | None | Unset = UNSET
    # The re-estimate on the confirmation prompts (the report stage; None: not validated, or no confirmation split).
    replication: Replication | None | Unset = UNSET

    def __post_init__(self) -> None:
        for name in _names(Finding):
            value = getattr(self, name)
            if value is not UNSET and not isinstance(value, Replication):
                object.__setattr__(self, name, plain(value))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every key a row can have, in file order."""
        return _names(cls)

    @classmethod
    def of(cls, hypothesis: Hypothesis, **measured: Any) -> Finding:
        """The finding of a hypothesis: its fields (without the prototype, which only its judge needs) and
        `measured`."""
        fields = {name: value for name, value in hypothesis.to_dict().items() if name != "prototype"}
        return cls(**{**fields, **measured})

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in _names(Finding):
            value = getattr(self, name)
            if isinstance(value, Replication):
                value = {k: v for k, v in value.to_dict().items() if k != "id"}
            if value is not UNSET:
                data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        fields = {name: data[name] for name in _names(cls) if name in data}
        replication = fields.get("replication")
        if isinstance(replication, dict):
            fields["replication"] = Replication.from_dict({"id": data["id"], **replication})
        try:
            return cls(**fields)
        except TypeError as err:  # a required field is missing: a row another version wrote, or an edited file
            raise ValueError(f"a finding row without every field a finding needs ({err})") from None


@dataclass(frozen=True, kw_only=True)
class Replication:
    """A validated finding re-estimated on the confirmation prompts with validation's judge and test: the row
    of confirm's replications.jsonl, and (without its id) a finding's `replication`. Every field but the
    last four is the Finding's of the same name, measured on the confirmation view."""

    id: str
    effect: float | None
    effect_ci: Interval
    effect_se: float | None
    effect_df: float | None
    effect_ci_note: str | None
    ci_level: float
    auc: float | None
    auc_ci: Interval
    auc_ci_note: str | None
    prevalence_a: float | None
    prevalence_b: float | None
    prevalence_a_ci: Interval
    prevalence_b_ci: Interval
    prevalence_ci_note: str | None
    statistic: float | None
    p_value: float | None
    n_prompts: int
    n_texts: int
    n_units: int
    unit: TestUnit
    n_dropped: int
    n_subsample_dropped: int
    test: str
    judge: str
    # The decision in the replication family (BH at decide.q over the validated findings that could replicate).
    q_value: float | None
    replicated: bool
    status: Literal["replicated", "not replicated", "not testable"]
    note: str | None

    def __post_init__(self) -> None:
        for name in _names(Replication):
            object.__setattr__(self, name, plain(getattr(self, name)))

    @classmethod
    def of(cls, finding: Finding, **decision: Any) -> Replication:
        """The replication of a finding from its test on the confirmation view and the replication decision."""
        measured = {name: getattr(finding, name) for name in _names(cls) if name not in decision}
        return cls(**measured, **decision)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _names(Replication)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Replication:
        return cls(**{name: data[name] for name in _names(cls)})


# --- given hypotheses ----------------------------------------------------------------------------------

# The `proposer` of the hypotheses read from a file (propose.given, lmdelta.given): a confirmatory family of their
# own, decided apart from the proposed ones (stages.decide).
GIVEN: Final = "given"


# --- skipped scopes: propose's skipped.jsonl rows {"group", "reason", "rule"?} --------------------------

# The `rule` of a scope whose LLM proposer call failed: a scope proposed in, not one left out.
PROPOSER_FAILED: Final = "proposer failed"


def _names(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclass_fields(record))


# --- the manifest: what the run directory records about each stage ------------------------------

StageStatus = Literal["running", "interrupted", "complete"]


@dataclass(frozen=True, kw_only=True)
class StageRecord:
    """One stage in manifest.json: where it stands, the fingerprint and material it ran with, what it did
    (counts, seconds and LLM spending, summed over resumes of one configuration) and the outputs it
    wrote. Unset fields are not written; keys another lmdelta version wrote are kept in `other`."""

    status: StageStatus | None = None
    fingerprint: str | None = None
    material: dict[str, Any] | None = None
    seconds: float | None = None
    started: str | None = None
    llm: dict[str, Any] | None = None
    counts: dict[str, Any] | None = None
    last_run_seconds: float | None = None
    finished: str | None = None
    outputs: dict[str, dict[str, Any]] | None = None
    other: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _known_then_other(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageRecord:
        return cls(**_split_known(cls, data))


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """manifest.json: the tool and run format that wrote the run directory, each stage's record and the
    run's LLM spending. Unset fields are not written; keys another lmdelta version wrote are kept."""

    tool: str = "lmdelta"
    version: str | None = None
    format: int | None = None
    stages: dict[str, StageRecord] = field(default_factory=dict)
    created: str | None = None
    updated: str | None = None
    llm_usage: dict[str, Any] | None = None
    other: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> StageRecord | None:
        return self.stages.get(name)

    def with_stage(self, name: str, record: StageRecord) -> Manifest:
        return replace(self, stages={**self.stages, name: record})

    def to_dict(self) -> dict[str, Any]:
        data = _known_then_other(self)
        data["stages"] = {name: record.to_dict() for name, record in self.stages.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = _split_known(cls, data)
        stages = known.get("stages")
        known["stages"] = (
            {name: StageRecord.from_dict(record) for name, record in stages.items() if isinstance(record, dict)}
            if isinstance(stages, dict)
            else {}
        )
        return cls(**known)


def _known_then_other(record: Any) -> dict[str, Any]:
    data = {name: getattr(record, name) for name in _names(type(record)) if name != "other"}
    return {**{k: v for k, v in data.items() if v is not None}, **record.other}


def _split_known(record: type, data: dict[str, Any]) -> dict[str, Any]:
    names = set(_names(record)) - {"other"}
    return {**{k: v for k, v in data.items() if k in names}, "other": {k: v for k, v in data.items() if k not in names}}
