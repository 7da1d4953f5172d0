"""The validate stage in sequential mode (validate.mode = sequential): validation in rounds.

Each hypothesis reads the validation prompts of its scope in one seeded order fixed in advance
(validate.sequential.round_order). Round r gives every hypothesis still undecided the first n_r prompts
of its scope (n_1 = validate.first_round, then × validate.growth but at most validate.max_round new ones
a round, at most validate.max_prompts in all); only the prompts some undecided hypothesis needs are
answered (both sides, appended to this stage's own answer store, keyed like generate's) and embedded,
and only their texts are judged for the hypotheses that need them. A hypothesis takes
validate.answers_per_prompt answers a side from each of its prompts, and more (up to
validate.max_answers_per_prompt) for its next prompts when its scope has too few left for the evidence
it still needs (validate.sequential.Depth); it reads only the first answers it asked for, whatever depth
other hypotheses asked of a prompt. After each round a hypothesis's betting e-process and confidence
sequence decide whether it stops: rejected, futile, at its cap, or out of prompts
(validate.sequential.assess). A decided hypothesis costs nothing more.

Resumable: answers are appended batch by batch, vectors and LLM verdicts are cached, and a rerun replays
the rounds from the stored answers (the same seeded order gives the same decisions), so nothing is
generated or paid twice. A budget (budget.generated_tokens, budget.judge_calls) stops the stage before
the round that would pass it; raising it resumes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lmdelta import judges, progress
from lmdelta.config import RunConfig
from lmdelta.errors import StageError
from lmdelta.judges.inputs import Ask
from lmdelta.pairdata import PairData
from lmdelta.records import GIVEN, Finding, Hypothesis, Prompt
from lmdelta.rundir import ITEMS, ROUNDS, VALIDATION_ITEMS, atomic_write_text
from lmdelta.sampletable import SampleTable
from lmdelta.stages import embed, generate, group, prompts
from lmdelta.stages.contract import StageContext
from lmdelta.stages.pairs import comparisons, load_pair
from lmdelta.validate.cascade import StrongJudge
from lmdelta.validate.cascade_rounds import CascadeRounds, Strong, finding_fields, label_share
from lmdelta.validate.findings import validate_all
from lmdelta.validate.sequential import (
    Depth,
    Outcome,
    Rounds,
    Stopping,
    assess,
    round_order,
    settled_threshold,
    stop_thresholds,
    within_share,
)
from lmdelta.validate.sets import ValidationSet, balanced_differences, pair_differences, subsample_seed

TEST = "betting e-process"
ASSUMPTION = (
    "the prompts are drawn at random from a larger population and taken in a seeded order fixed in advance; "
    "under the null the mean per-prompt difference d_p is zero (no symmetry needed); answers to one prompt may "
    "be arbitrarily correlated; valid whenever the rounds stop"
)
MAX_E = 1e300  # the files hold finite numbers: a larger capital is stored as this (it rejects all the same)
EVERY = 1 << 30  # "every answer there is": the depth of a corpus run, whose answers exist already
log = logging.getLogger(__name__)


@dataclass
class Family:
    """One comparison's hypotheses and where each stands."""

    name: str
    hypotheses: list[Hypothesis]
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)  # prompts of its scope the hypothesis has been given
    judged: dict[str, int] = field(default_factory=dict)  # texts judged per hypothesis (its prefix only grows)
    sure: dict[str, float] = field(default_factory=dict)  # static stop thresholds (e-LOND's, per place)
    online: bool = False
    # Per hypothesis, the answers a side it reads from its prompts: (end, m) segments in its scope's order.
    depths: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    deeper: dict[str, int] = field(default_factory=dict)  # the depth for its next prompts, when not the start
    strong: dict[str, Strong] = field(default_factory=dict)  # the judge cascade's side, per hypothesis

    def __post_init__(self) -> None:
        self.sure = {h.id: float(len(self.hypotheses)) for h in self.hypotheses}

    def set_thresholds(self, q: float, online: bool) -> None:
        """The e-value past which each hypothesis's decision cannot change (validate.sequential.stop_thresholds);
        the given hypotheses (propose.given) are decided by e-BH within their own family, so theirs count them alone."""
        ranked = sorted(self.hypotheses, key=lambda h: h.order)
        proposed = [h for h in ranked if h.proposer != GIVEN]
        given = [h for h in ranked if h.proposer == GIVEN]
        self.online = online
        self.sure = {h.id: sure for h, sure in zip(proposed, stop_thresholds(len(proposed), q, online))}
        self.sure.update({h.id: sure for h, sure in zip(given, stop_thresholds(len(given), q))})

    def threshold(self, h: Hypothesis, q: float) -> float:
        """Where `h` may stop as rejected now. Under e-BH the bar falls as others settle
        (validate.sequential.settled_threshold, counted within h's own e-BH family: proposed or given);
        e-LOND's per-place levels are static."""
        if self.online and h.proposer != GIVEN:
            return self.sure[h.id]
        kin = [k for k in self.hypotheses if (k.proposer == GIVEN) == (h.proposer == GIVEN)]
        settled = sum(self.outcomes.get(k.id) is not None and self.outcomes[k.id].reason == "rejected" for k in kin)
        return settled_threshold(len(kin), q, settled)

    def live(self) -> list[Hypothesis]:
        return [h for h in self.hypotheses if self.outcomes.get(h.id) is None or self.outcomes[h.id].reason == "live"]

    def depth(self, h: Hypothesis, start: int) -> int:
        """The answers a side `h` takes from its next prompts."""
        return self.deeper.get(h.id, start)

    def read(self, h: Hypothesis, scope: list[str], end: int | None = None) -> dict[str, int]:
        """Prompt → the answers a side `h` reads from it, over the first `end` prompts of its scope it has been
        given (default: all of them)."""
        found: dict[str, int] = {}
        begin = 0
        for stop, m in self.depths.get(h.id, []):
            found.update((pid, m) for pid in scope[begin:stop])
            begin = stop
        return found if end is None else {pid: found[pid] for pid in scope[:end] if pid in found}


class Answers:
    """The validation answers generated so far (both sides), with their vectors."""

    def __init__(self, ctx: StageContext, config: RunConfig) -> None:
        self.ctx, self.config = ctx, config
        self.samples = SampleTable.of([])
        self.vectors = np.zeros((0, 1), dtype=np.float32)
        self.held: dict[str, int] = {}  # prompt → answers a side held
        self.corpus = config.uses_corpus
        self.tokens = {"a": 0, "b": 0}
        if config.uses_corpus:
            self._import(load_pair(ctx, config))

    def _import(self, data: PairData) -> None:
        """Corpus mode: the saved validation answers are all there already; rounds only save judging."""
        rows = data.rows("validation")
        if not data.shares_prompts():
            raise StageError(
                "validate.mode = sequential tests per-prompt differences, but these corpora share no prompts "
                "(each text is its own unit).",
                "Set validate.mode=fixed for unaligned corpora.",
            )
        self.samples = data.samples.take(rows)
        self.vectors = data.vectors[rows]
        for prompt_id, index in zip(self.samples.prompt_ids(), self.samples.indices().tolist()):
            self.held[prompt_id] = max(self.held.get(prompt_id, 0), index + 1)

    @property
    def answered(self) -> set[str]:
        return set(self.held)

    def missing(self, needed: dict[str, int]) -> int:
        """Answers a side still to generate for `needed` (prompt → answers a side)."""
        return 0 if self.corpus else sum(max(0, m - self.held.get(pid, 0)) for pid, m in needed.items())

    def ensure(self, needed: list[tuple[Prompt, int]]) -> None:
        """Give every prompt of `needed` its answers a side (generated, or read back), and embed the new ones."""
        by_depth: dict[int, list[Prompt]] = {}
        for prompt, m in [] if self.corpus else needed:
            if m > self.held.get(prompt.id, 0):
                by_depth.setdefault(m, []).append(prompt)
        for m, fresh in sorted(by_depth.items()):
            # Answers the generate stage stored (a fixed run of this config in this directory) are reused by key.
            items, known = self.ctx.output(VALIDATION_ITEMS), self.ctx.input("generate", ITEMS)
            found, _ = generate.answer(self.ctx, self.config, fresh, m, items, known)
            found = [s for s in found if s.index >= self.held.get(s.prompt_id, 0)]
            vectors = embed.embed_texts(self.ctx, self.config, [s.text for s in found])
            self.vectors = vectors if not self.samples else np.concatenate([self.vectors, vectors])
            self.samples += found
            self.held.update((p.id, m) for p in fresh)
            for sample in found:
                self.tokens[sample.side] += sample.n_tokens

    def pair(self, bank: list[Prompt], groups: dict[str, str], keep: dict[str, int] | None = None) -> PairData:
        """The comparison over the answers so far, or over the first keep[prompt] answers a side of `keep`'s prompts."""
        indices, prompt_ids = self.samples.indices().tolist(), self.samples.prompt_ids()
        rows = [i for i, (n, p) in enumerate(zip(indices, prompt_ids)) if keep is None or n < keep.get(p, 0)]
        labels = {"a": self.config.label("a"), "b": self.config.label("b")}
        return PairData(bank, self.samples.take(rows), self.vectors[rows], groups, labels)


@dataclass
class Loop:
    """The rounds over every comparison: the prompt order per scope, the answers, the accounting."""

    ctx: StageContext
    config: RunConfig
    ask: Ask | None
    bank: list[Prompt]
    groups: dict[str, str]
    order: dict[str, list[str]]  # scope → its validation prompts in the rounds' order
    answers: Answers
    cascade: CascadeRounds | None = None
    log_rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def build(cls, ctx: StageContext, config: RunConfig, ask: Ask | None, strong: StrongJudge | None = None) -> Loop:
        bank, groups = prompts.load(ctx), group.load(ctx)
        ordered = round_order([p.id for p in bank if p.split == "validation"], config.validate.resolved_seed)
        order: dict[str, list[str]] = {}
        for pid in ordered:
            order.setdefault(groups.get(pid, "all"), []).append(pid)
        order["all"] = ordered  # the pooled scope (also when every prompt is in the one group "all")
        cascade = CascadeRounds(strong, config.validate) if strong is not None else None
        return cls(ctx, config, ask, bank, groups, order, Answers(ctx, config), cascade)

    def scope(self, h: Hypothesis) -> list[str]:
        return self.order.get(h.group, [])

    @property
    def start(self) -> int:
        """The answers a side every hypothesis starts with (a corpus run reads every saved answer)."""
        return EVERY if self.config.uses_corpus else first_answers(self.config)

    def run(self, families: list[Family]) -> None:
        boundaries = self.boundaries(families)
        meter = progress.Meter("validate rounds", len(boundaries), "rounds")
        by_id = {p.id: p for p in self.bank}
        for number, end in enumerate(boundaries, start=1):
            if not any(fam.live() for fam in families):
                break
            new_rows = self.give(families, end)
            needed: dict[str, int] = {}
            for fam in families:
                for h in fam.live():
                    for pid, m in fam.read(h, self.scope(h)).items():
                        needed[pid] = max(needed.get(pid, 0), m)
            self.check_budget(families, needed, new_rows)
            self.answers.ensure([(by_id[pid], needed[pid]) for pid in self.order["all"] if pid in needed])
            pairs = comparisons(self.answers.pair(self.bank, self.groups), self.config)
            for fam in families:
                self.step(fam, pair=pairs[fam.name], number=number, end=end, last=number == len(boundaries))
            self.record(number, end, families)
            meter.update(number)

    def give(self, families: list[Family], end: int) -> int:
        """Give every undecided hypothesis the first `end` prompts of its scope, its new ones at its current depth;
        returns the texts that will be judged for the first time (2 × depth per new prompt, and with the judge
        cascade the strong judge's expected share of them; for the budget)."""
        new_rows = 0
        for fam in families:
            for h in fam.live():
                segments = fam.depths.setdefault(h.id, [])
                begin, stop = (segments[-1][0] if segments else 0), min(end, len(self.scope(h)))
                if stop > begin:
                    depth = fam.depth(h, self.start)
                    segments.append((stop, depth))
                    rows = sum(2 * self.texts_at(pid, depth) for pid in self.scope(h)[begin:stop])
                    strong = label_share(self.config.validate, self.capped(h)) if self.cascade is not None else 0.0
                    new_rows += rows + round(strong * rows)  # the strong judge's expected calls too
        return new_rows

    def texts_at(self, pid: str, depth: int) -> int:
        """Texts a side judged for a hypothesis reading `pid` at `depth` (a corpus run: the answers it holds)."""
        return min(depth, self.answers.held.get(pid, 0)) if self.config.uses_corpus else depth

    def boundaries(self, families: list[Family]) -> list[int]:
        largest = max((len(self.scope(h)) for fam in families for h in fam.hypotheses), default=0)
        section = self.config.validate
        return Rounds(section.first_round, section.growth, section.max_prompts, section.max_round).boundaries(largest)

    def step(self, fam: Family, pair: PairData, number: int, end: int, last: bool) -> None:
        """Judge the texts the family's undecided hypotheses need this round, then assess each."""
        live = fam.live()
        if not live:
            return
        vs = ValidationSet.build(pair)
        position = {pid: k for k, pid in enumerate(vs.prompt_ids)}
        index = pair.samples.indices(vs.rows).astype(int)
        masks = [self._rows(vs, position, index, fam.read(h, self.scope(h))) for h in live]
        texts = pair.samples.text_rows(vs.rows)
        vectors = judges.judge_vectors(pair, vs.rows, live, self.config.validate.judge)
        found = judges.score_hypotheses(live, vs, texts, vectors, self.config.validate.judge, self.ask, judged=masks)
        scores = [np.where(mask, s, np.nan) for s, mask in zip(found, masks)]
        seed = self.config.validate.resolved_seed
        seeds = [subsample_seed(seed, h.content_key()) for h in live]
        D, _ = balanced_differences(scores, vs, seeds)
        section = self.config.validate
        if self.cascade is not None:
            states = [fam.strong.setdefault(h.id, Strong(label_share(section, self.capped(h)))) for h in live]
            self.cascade.ask(live, states, masks, vs, texts, vectors, seeds)
        for row, (h, mask) in enumerate(zip(live, masks)):
            sure = fam.threshold(h, self.config.decide.q)
            fam.judged[h.id] = int(mask.sum())
            ids = [pid for pid in self.scope(h)[:end] if pid in position]
            d = D[row, [position[pid] for pid in ids]]
            spread = None
            if self.cascade is not None:
                d, spread = self.cascade.evidence(h, fam.strong[h.id], ids, d)
            seen = [pid for pid, value in zip(ids, d) if np.isfinite(value)]
            d = d[np.isfinite(d)]
            scope_left = len(self.scope(h)) > end
            rule = Stopping(self.config.decide.q, sure, section.min_effect, section.futility_alpha, True, spread)
            outcome = assess(d, h.direction, rule, number, last=last or not scope_left, more=scope_left)
            fam.outcomes[h.id] = outcome
            fam.ends[h.id] = min(end, len(self.scope(h)))
            if outcome.reason == "live":
                self.deepen(fam, h, d, outcome.e_value, seen, (scores[row], vs, index))

    def capped(self, h: Hypothesis) -> int:
        """The prompts `h` may take: its scope, at most validate.max_prompts."""
        cap = self.config.validate.max_prompts
        return len(self.scope(h)) if cap is None else min(cap, len(self.scope(h)))

    def deepen(
        self,
        fam: Family,
        h: Hypothesis,
        d: np.ndarray,
        e_value: float,
        seen: list[str],
        texts: tuple[np.ndarray, ValidationSet, np.ndarray],
    ) -> None:
        """Choose the depth of `h`'s next prompts (validate.sequential.Depth) from its own evidence alone: its
        differences (on the prompts `seen`, read at their own depths), its e-value, its static bar (m/q: the
        settled bar moves with the other hypotheses), the prompts its scope has left, and the within-prompt
        share of its scores' variance (`texts`: its scores, the layout, each text's answer number). Off in corpus
        runs (every answer is read) and with the judge cascade (more answers do not shrink the labelling noise
        that dominates its terms)."""
        rule = Depth(self.start, max(self.start, most_answers(self.config)), self.config.validate.min_effect)
        if self.config.uses_corpus or self.cascade is not None or rule.most <= rule.start:
            return
        read = fam.read(h, self.scope(h))
        depths = np.array([read[pid] for pid in seen], dtype=int)
        within = within_share(pair_differences(*texts))
        left = self.capped(h) - fam.ends[h.id]
        fam.deeper[h.id] = rule.next(d, h.direction, e_value, fam.sure[h.id], left, depths, within)

    @staticmethod
    def _rows(vs: ValidationSet, position: dict[str, int], index: np.ndarray, read: dict[str, int]) -> np.ndarray:
        """The texts a hypothesis reads: the first read[prompt] answers a side of each prompt it has been given."""
        depth = np.zeros(len(vs.prompt_ids), dtype=int)
        for pid, m in read.items():
            if pid in position:
                depth[position[pid]] = m
        return index < depth[vs.prompt_of_row]

    def check_budget(self, families: list[Family], needed: dict[str, int], new_rows: int) -> None:
        """Stop before a round that would pass budget.generated_tokens or budget.judge_calls: `needed` holds the
        answers a side each prompt must have this round, `new_rows` the texts it will judge for the first time."""
        budget = self.config.budget
        missing = self.answers.missing(needed)
        if budget.generated_tokens is not None and missing:
            expected = sum(self.answers.tokens.values()) + missing * 2 * self._tokens_per_answer()
            if expected > budget.generated_tokens:
                raise _budget_stop("budget.generated_tokens", budget.generated_tokens, expected, "generated tokens")
        if budget.judge_calls is not None:
            expected_calls = self.judge_calls(families) + new_rows
            if expected_calls > budget.judge_calls:
                raise _budget_stop("budget.judge_calls", budget.judge_calls, expected_calls, "judge calls")

    def _tokens_per_answer(self) -> float:
        n = len(self.answers.samples)
        return sum(self.answers.tokens.values()) / n if n else float(self.config.generate.max_new_tokens)

    @staticmethod
    def judge_calls(families: list[Family]) -> int:
        """(hypothesis, text) pairs judged: by the hypotheses' own judges, and by the strong judge (cascade)."""
        return sum(sum(fam.judged.values()) + sum(s.calls for s in fam.strong.values()) for fam in families)

    def depths(self) -> dict[str, int]:
        """How many prompts hold how many answers a side ("1": 130, "4": 12)."""
        counts: dict[int, int] = {}
        for m in self.answers.held.values():
            counts[m] = counts.get(m, 0) + 1
        return {str(m): counts[m] for m in sorted(counts)}

    def record(self, number: int, end: int, families: list[Family]) -> None:
        """One line per round: how far into its scope an undecided hypothesis has read, what was answered and
        judged so far, and where the hypotheses stand."""
        row: dict[str, Any] = {
            "round": number,
            "scope_prompts": end,
            "prompts_answered": len(self.answers.answered),
            "answers_per_prompt": self.depths(),
            "tokens_generated": dict(self.answers.tokens),
            "judge_calls": self.judge_calls(families),
        }
        for fam in families:
            reasons = [fam.outcomes[h.id].reason for h in fam.hypotheses if h.id in fam.outcomes]
            row[fam.name] = {reason: reasons.count(reason) for reason in sorted(set(reasons))}
        self.log_rows.append(row)
        atomic_write_text(self.ctx.output(ROUNDS), "".join(json.dumps(r) + "\n" for r in self.log_rows))
        log.info(
            "validate round %d: %d prompts answered, %d judge calls, %s",
            number,
            row["prompts_answered"],
            row["judge_calls"],
            row.get("main", {}),
        )


def first_answers(config: RunConfig) -> int:
    """validate.answers_per_prompt, unset: generate.samples_per_prompt."""
    return config.validate.answers_per_prompt or config.generate.samples_per_prompt


def most_answers(config: RunConfig) -> int:
    """validate.max_answers_per_prompt, unset: the answers every hypothesis starts with (no deeper answers)."""
    return config.validate.max_answers_per_prompt or first_answers(config)


def _budget_stop(name: str, cap: int, expected: float, what: str) -> StageError:
    return StageError(
        f"The next validation round would take the run to about {expected:,.0f} {what}, past {name} = {cap:,}; "
        "validation stopped after the last whole round (its answers and verdicts are kept).",
        f"Raise it (e.g. --set {name}={2 * cap}) and run again: the run resumes where it stopped.",
    )


def run_sequential(
    ctx: StageContext,
    config: RunConfig,
    hypotheses: dict[str, list[Hypothesis]],
    ask: Ask | None,
    strong: StrongJudge | None = None,
) -> tuple[dict[str, list[Finding]], dict[str, Any], PairData]:
    """Every comparison's findings from validation in rounds (with `strong`, the judge cascade's), the counts
    for the manifest, and the main comparison over every validation answer the rounds used (for the baseline
    and judge agreement)."""
    loop = Loop.build(ctx, config, ask, strong)
    families = [Family(name, found) for name, found in hypotheses.items()]
    for fam in families:
        fam.set_thresholds(config.decide.q, config.decide.primary == "online")
    loop.run(families)
    results = {fam.name: findings(loop, fam) for fam in families}
    counts = {
        "rounds": len(loop.log_rows),
        "prompts_answered": len(loop.answers.answered),
        "validation_tokens": dict(loop.answers.tokens),
        "judge_calls": loop.judge_calls(families),
    }
    return results, counts, loop.answers.pair(loop.bank, loop.groups)


def stored_pair(ctx: StageContext, config: RunConfig) -> PairData:
    """The main comparison over the validation answers the rounds stored (in this stage's store, or in generate's
    when a fixed run of this config answered them first), read back without generating or judging anything."""
    bank, groups = prompts.load(ctx), group.load(ctx)
    wanted = [p for p in bank if p.split == "validation"]
    stores = [ctx.input("generate", ITEMS), ctx.input("validate", VALIDATION_ITEMS)]
    most = max(first_answers(config), most_answers(config))
    samples = generate.stored(ctx, config, wanted, most, stores)
    vectors = embed.embed_texts(ctx, config, [s.text for s in samples])
    labels = {"a": config.label("a"), "b": config.label("b")}
    return PairData(bank, SampleTable.of(samples), vectors, groups, labels)


def findings(loop: Loop, fam: Family) -> list[Finding]:
    """The family's Finding rows: each hypothesis's numbers on exactly the prompts its test used (validate_all
    on those prompts' answers, the generalisation test off), with the sequential test's fields."""
    by_texts: dict[tuple[str, tuple[tuple[int, int], ...]], list[Hypothesis]] = {}
    for h in fam.hypotheses:
        by_texts.setdefault((h.group, tuple(fam.depths.get(h.id, []))), []).append(h)
    section = loop.config.validate.model_copy(update={"generalization": False})
    found: dict[str, Finding] = {}
    for (_, _), members in by_texts.items():
        keep = fam.read(members[0], loop.scope(members[0]))
        pair = comparisons(loop.answers.pair(loop.bank, loop.groups, keep), loop.config)[fam.name]
        for h, result in zip(members, validate_all(pair, members, section, loop.config.decide.q, loop.ask)):
            found[h.id] = sequential_fields(result, fam.outcomes.get(h.id))
            state = fam.strong.get(h.id)
            if loop.cascade is not None and state is not None and state.read is not None and result.n_units:
                found[h.id] = finding_fields(found[h.id], state, *state.read, loop.cascade.strong.model)
    return [found[h.id] for h in fam.hypotheses]


def sequential_fields(result: Finding, outcome: Outcome | None) -> Finding:
    """A finding's test fields replaced by the sequential test's: the anytime-valid p-value, the e-value,
    where and why it stopped, and its confidence sequence as the effect's interval (a t interval is not
    valid after a data-dependent stop)."""
    if outcome is None or result.n_units == 0:
        return replace(result, e_value=None, stop_round=0, stop_reason="untestable", confidence_sequence=[None, None])
    cs: list[float | None] = [outcome.ci[0], outcome.ci[1]]
    return replace(
        result,
        test=TEST,
        p_value=outcome.p_value,
        smallest_p=None,
        e_value=min(outcome.e_value, MAX_E),
        stop_round=outcome.round,
        stop_reason=outcome.reason,
        confidence_sequence=cs,
        effect_ci=cs,
        effect_se=None,
        effect_df=None,
        effect_ci_note="confidence sequence (anytime-valid)",
        assumption=ASSUMPTION,
    )
