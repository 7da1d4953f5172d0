"""Test every proposed hypothesis on validation prompts (and the null control's, when on).

Writes results.jsonl / null_results.jsonl: per hypothesis its test, p-value, effect with CI,
AUC with CI, prevalences, counts, baseline AUC, generalisation test, evidence texts and (unaligned
corpora without cluster ids) a warning when the texts look clustered.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from lmdelta import judges
from lmdelta.backends.factory import build_loglik_generator
from lmdelta.backends.registry import parse_model
from lmdelta.config import RunConfig
from lmdelta.errors import ConfigError
from lmdelta.judges.llm import agreement
from lmdelta.llm.session import LLMSession, role_identity
from lmdelta.pairdata import PairData
from lmdelta.records import UNSET, Finding, Hypothesis
from lmdelta.rundir import RESULTS, read_jsonl, write_jsonl
from lmdelta.stages import generate, propose, rounds
from lmdelta.stages.contract import Read, StageContext, StageResult
from lmdelta.stages.pairs import comparisons, comparisons_names, load_pair
from lmdelta.validate.baseline import add_baselines
from lmdelta.validate.cascade import StrongJudge, cascade_all
from lmdelta.validate.findings import validate_all
from lmdelta.validate.generative import score_and_test, write_examples
from lmdelta.validate.sets import ValidationSet
from lmdelta.validate.significance import resamples_for

VERSION = 9  # 9: the bag-of-words baseline of a scope past 20,000 prompts is fitted on a seeded sample of 20,000
# 8: Monte Carlo signs drawn a block of 1,024 resamples at a time (no P x R matrix)
# 7: sequential answers per prompt grow where prompts run short (validate.max_answers_per_prompt)
# 6: evidence as same-prompt pairs (largest directional d_p first)
# 5: sequential findings state the e-process's assumption; 4: validate.mode = sequential, judged_pairs
# 3: decide.q in the fingerprint as a declared read (was `q` in identity)
READS: tuple[str | Read, ...] = (
    "decide.q",  # the resample count depends on q
    Read("decide.primary", when=lambda config: config.validate.mode == "sequential"),  # when a hypothesis stops
)
log = logging.getLogger(__name__)


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if config.llm.judge.model:
        found["judge"] = role_identity(config, "judge")
    if config.llm.strong_judge.model:
        found["strong_judge"] = role_identity(config, "strong_judge")
    return found


def check(config: RunConfig) -> None:
    """Refuse, before any stage runs (and in --dry-run), what could only fail once validation starts."""
    section, llm = config.validate, config.llm
    needs_judge = [
        (section.judge != "auto", f"validate.judge = {section.judge} scores every hypothesis with it"),
        (bool(section.extra_judges), "validate.extra_judges are compared with it"),
        (
            config.propose.llm.enabled and llm.proposer.model is not None,
            "the hypotheses the LLM proposer writes are scored by it",
        ),
    ]
    for needed, why in needs_judge:
        if needed and llm.judge.model is None:
            raise ConfigError(
                f"This run needs an LLM judge ({why}), but llm.judge.model is not set.",
                "Set llm.judge.model (e.g. --set llm.judge.model=openai/gpt-4.1-mini), or turn that option off.",
            )
    if section.generative:
        _check_generative(config)
    if llm.strong_judge.model is not None and section.mode == "sequential" and section.strong_labels == "active":
        raise ConfigError(
            "validate.strong_labels = active, but validate.mode = sequential: active labelling sets each prompt's "
            "probability from every prompt's cheap scores, which a round does not have yet.",
            "Set validate.strong_labels=uniform for the sequential cascade, or validate.mode=fixed.",
        )


def _check_generative(config: RunConfig) -> None:
    if config.uses_corpus:
        raise ConfigError(
            "validate.generative scores texts under both models, but this run compares saved corpora.",
            "Turn validate.generative off in corpus mode.",
        )
    if config.llm.proposer.model is None and config.llm.judge.model is None:
        raise ConfigError(
            "validate.generative asks an LLM to write example texts, but neither llm.proposer.model "
            "nor llm.judge.model is set.",
            "Set one of them, or turn validate.generative off.",
        )
    _check_loglik_backends(config)


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    counts: dict[str, Any] = {}
    session = _session(ctx, config)
    judge = session.asker("judge") if session is not None and session.has("judge") else None
    tested: dict[str, list[Finding]] = {}
    if config.validate.mode == "sequential":
        families = {name: propose.load(ctx, name) for name in comparisons_names(config)}
        strong = _strong(session)
        tested, counts["sequential"], data = rounds.run_sequential(ctx, config, families, judge, strong)
    else:
        data = load_pair(ctx, config)
    warned = False
    for name, pair in comparisons(data, config).items():
        hypotheses = propose.load(ctx, name)
        if name in tested:
            results = tested[name]
        else:
            results = validate_all(pair, hypotheses, config.validate, config.decide.q, judge)
            if session is not None and session.has("strong_judge"):
                results = add_cascade(results, pair, hypotheses, config, session)
        if session is not None:
            session.check()
        if config.validate.extra_judges and session is not None:
            results = add_agreement(results, pair, hypotheses, config, session)
        if config.validate.baseline:
            results = add_baselines(results, pair, config.validate.resolved_seed)
        if config.validate.generative and name == "main" and session is not None:
            results = add_generative(ctx, results, hypotheses, config, session)
        write_jsonl(ctx.output(RESULTS, name), (r.to_dict() for r in results))
        counts[name] = {
            "tested": sum(r.n_units > 0 for r in results),
            "untestable": sum(r.n_units == 0 for r in results),
        }
        if name not in tested:
            counts[name]["judged_pairs"] = judged_pairs(pair, hypotheses)
        if any(r.strong_calls is not UNSET for r in results):
            counts[name]["strong_calls"] = sum(r.strong_calls for r in results if isinstance(r.strong_calls, int))
        log.info("validate %s: %d hypotheses tested", name, counts[name]["tested"])
        warned = _warn_once(results, warned)
    return StageResult(counts)


def judged_pairs(pair: PairData, hypotheses: list[Hypothesis]) -> int:
    """The fixed protocol's (hypothesis, text) pairs judged: every validation text in each hypothesis's scope."""
    vs = ValidationSet.build(pair)
    return int(sum(vs.scope(h.group)[vs.prompt_of_row].sum() for h in hypotheses))


def _warn_once(results: list[Finding], warned: bool) -> bool:
    """Log the first comparison's clustering warning only (the null control relabels the same texts)."""
    warning = results[0].clustering_warning if results else None
    if warning and not warned:
        log.warning("validate: %s", warning)
    return warned or bool(warning)


def _session(ctx: StageContext, config: RunConfig) -> LLMSession | None:
    """An LLM session when any hypothesis or option needs the judge model."""
    section = config.validate
    needs = (
        section.judge != "auto"
        or section.extra_judges
        or section.generative
        or config.llm.strong_judge.model is not None
        or any(h.judge == "llm" for name in comparisons_names(config) for h in propose.load(ctx, name))
    )
    if not needs:
        return None
    return LLMSession(config, "validate", ctx.cache_dir, ctx.run_dir)


def add_agreement(
    results: list[Finding], pair: PairData, hypotheses: list[Hypothesis], config: RunConfig, session: LLMSession
) -> list[Finding]:
    """The findings with each extra judge's agreement with the main judge, scoring the same texts."""
    vs = ValidationSet.build(pair)
    texts = pair.samples.text_rows(vs.rows)
    mode = "unitary" if config.validate.judge == "auto" else config.validate.judge
    vectors = judges.judge_vectors(pair, vs.rows, hypotheses, config.validate.judge)
    main = judges.score_hypotheses(hypotheses, vs, texts, vectors, config.validate.judge, session.asker("judge"))
    found: list[dict[str, dict[str, Any]]] = [{} for _ in results]
    for model in config.validate.extra_judges:
        other = judges.score_hypotheses(hypotheses, vs, texts, vectors, mode, session.asker("judge", model))
        for by_model, ours, theirs in zip(found, main, other):
            by_model[model] = agreement(ours, theirs)
        session.check()
    return [replace(result, judge_agreement=by_model) for result, by_model in zip(results, found)]


def _strong(session: LLMSession | None) -> StrongJudge | None:
    """The judge cascade's strong judge (llm.strong_judge), when one is set."""
    if session is None or not session.has("strong_judge"):
        return None
    role = "strong_judge"
    return StrongJudge(session.asker(role), session.model(role), session.temperature(role))


def add_cascade(
    results: list[Finding], pair: PairData, hypotheses: list[Hypothesis], config: RunConfig, session: LLMSession
) -> list[Finding]:
    """The findings tested by the judge cascade: their own judge on every prompt, llm.strong_judge on a seeded
    sample, combined by PPI++ (lmdelta.validate.cascade)."""
    strong = _strong(session)
    if strong is None:
        return results
    cheap = session.asker("judge") if session.has("judge") else None
    found = cascade_all(results, pair, hypotheses, config.validate, cheap, strong)
    session.check()
    return found


def add_generative(
    ctx: StageContext, results: list[Finding], hypotheses: list[Hypothesis], config: RunConfig, session: LLMSession
) -> list[Finding]:
    """The findings with the judge-free check: assistant-written examples scored by log p_b − log p_a
    (see lmdelta.validate.generative)."""
    _check_generative(config)
    role = "proposer" if session.has("proposer") else "judge"
    examples = write_examples(hypotheses, session.asker(role), config.validate.generative_examples, 1.0)
    session.check()
    identities = generate.identity(ctx, config)
    sides = {
        side: build_loglik_generator(
            getattr(config.generate, side), identities[side], config.generate.device, ctx.cache_dir
        )
        for side in ("a", "b")
    }
    try:
        # A family of its own (BH at q over the run's generative tests): the same Monte Carlo floor as the primary.
        n_resamples = resamples_for(config.validate, len(hypotheses), config.decide.q)
        found = score_and_test(hypotheses, examples, sides["a"], sides["b"], n_resamples, config.validate.resolved_seed)
    finally:
        for generator in sides.values():
            generator.close()
    return [replace(result, **extra) for result, extra in zip(results, found)]


def _check_loglik_backends(config: RunConfig) -> None:
    """Log-likelihood scoring runs the models in process (transformers): not served or vLLM models."""
    for side in ("a", "b"):
        model = getattr(config.generate, side).model
        if parse_model(model, "generator").kind in ("api", "vllm"):
            raise ConfigError(
                f"validate.generative scores texts by log-likelihood under both models, but side {side} "
                f"({model}) is served by {model.split(':')[0]}, which lmdelta cannot score.",
                "Turn validate.generative off, or load that model with transformers (no api:/vllm: prefix).",
            )


def load_answers(ctx: StageContext, config: RunConfig) -> PairData:
    """The main comparison over every answer validation used: generate's (fixed mode, corpus mode), or those the
    sequential rounds stored (read back, nothing generated)."""
    return rounds.stored_pair(ctx, config) if generate.sequential(config) else load_pair(ctx, config)


def load(ctx: StageContext, comparison: str = "main") -> list[Finding]:
    return [Finding.from_dict(row) for row in read_jsonl(ctx.input("validate", RESULTS, comparison))]
