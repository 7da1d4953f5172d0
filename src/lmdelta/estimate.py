"""What a run will cost before it runs (`lmdelta run --dry-run`, and the live view's overall time left):
generated tokens, LLM calls and dollars as upper bounds the config implies, and times where lmdelta knows
the speed (the embedded models on a CPU, measured in docs/benchmarks.md); elsewhere it says it cannot know.

Pure arithmetic on the config and the prompt counts the preview has already read; no model, no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmdelta.config import RunConfig
from lmdelta.llm.pricing import PriceTable
from lmdelta.llm.providers.registry import parse_model_string

# Measured on a 2-core CPU without bf16 (docs/benchmarks.md): SmolLM2-135M generating in float32 with 32 rows in
# flight (benchmarks/generation.py --rows 32, 2026-12-05; the default's 128 rows gave 245-267 tokens/s, but a run
# with fewer answers than that to give fills fewer), all-MiniLM-L6-v2 embedding answer-length texts
# (benchmarks/embedding.py). A faster machine finishes sooner: these are the slow end.
GENERATED_TOKENS_PER_S = {"embedded:smollm2-135m-instruct": 178.8}
EMBEDDED_TEXTS_PER_S = {"embedded:all-MiniLM-L6-v2": 28.9}
# One LLM judgement: the instruction, the hypothesis and one text in; a short verdict out (the judge templates).
JUDGE_TOKENS_IN, JUDGE_TOKENS_OUT = 350, 40
PROPOSAL_TOKENS_IN, PROPOSAL_TOKENS_OUT = 4000, 800
CALL_SECONDS = 2.0  # a typical hosted call's latency; calls run llm.concurrency at a time


@dataclass
class Estimate:
    generated_tokens: int = 0  # at most, both sides
    texts: int = 0  # answers to embed, both sides
    llm_calls: dict[str, int] = field(default_factory=dict)  # role -> at most this many
    usd: float | None = None  # at list prices; None when no LLM is paid or a model has no price
    seconds: dict[str, float] = field(default_factory=dict)  # pipeline stage -> expected seconds, where known


def estimate(config: RunConfig, answered_prompts: int, validation_texts: int, n_scopes: int) -> Estimate:
    """`answered_prompts`: prompts each side answers (0 for a corpus); `validation_texts`: texts of both sides on
    validation prompts; `n_scopes`: the groups and the pooled scope hypotheses are proposed in."""
    k = config.generate.samples_per_prompt
    out = Estimate(generated_tokens=2 * answered_prompts * k * config.generate.max_new_tokens)
    out.texts = 2 * answered_prompts * k if not config.uses_corpus else validation_texts
    _times(config, out)
    _llm(config, out, validation_texts, n_scopes)
    return out


def _times(config: RunConfig, out: Estimate) -> None:
    rates = [GENERATED_TOKENS_PER_S.get(str(getattr(config.generate, side).model)) for side in ("a", "b")]
    if out.generated_tokens and all(rates):
        out.seconds["generate"] = sum(out.generated_tokens / 2 / rate for rate in rates if rate)
    elif out.generated_tokens and all(_is_fake(getattr(config.generate, s).model) for s in ("a", "b")):
        out.seconds["generate"] = 0.0
    embed_rate = EMBEDDED_TEXTS_PER_S.get(config.embed.model)
    if embed_rate:
        out.seconds["embed"] = out.texts / embed_rate
    elif config.embed.model.startswith("fake:"):
        out.seconds["embed"] = 0.0


def _llm(config: RunConfig, out: Estimate, validation_texts: int, n_scopes: int) -> None:
    rounds = config.propose.rounds
    if config.llm.proposer.model and config.propose.llm.enabled:
        out.llm_calls["proposer"] = n_scopes * rounds
    if config.llm.judge.model and (config.validate.judge != "auto" or "proposer" in out.llm_calls):
        hypotheses = _judged_hypotheses(config, n_scopes, rounds)
        out.llm_calls["judge"] = hypotheses * validation_texts
    if out.llm_calls:
        out.usd = _usd(config, out.llm_calls)
    for role, stage in (("proposer", "propose"), ("judge", "validate")):
        if role in out.llm_calls:
            out.seconds[stage] = out.llm_calls[role] * CALL_SECONDS / config.llm.concurrency


def _judged_hypotheses(config: RunConfig, n_scopes: int, rounds: int) -> int:
    """LLM-proposed hypotheses at most (the judge `auto` judges only those), or every proposal otherwise."""
    llm = config.propose.llm.per_scope if config.llm.proposer.model and config.propose.llm.enabled else 0
    if config.validate.judge == "auto":
        return llm * n_scopes * rounds
    offline = config.propose.keywords.per_scope + config.propose.clusters.per_scope
    return (llm + offline) * n_scopes * rounds


def _usd(config: RunConfig, calls: dict[str, int]) -> float | None:
    table, total = PriceTable(config.llm.prices), 0.0
    tokens = {"proposer": (PROPOSAL_TOKENS_IN, PROPOSAL_TOKENS_OUT), "judge": (JUDGE_TOKENS_IN, JUDGE_TOKENS_OUT)}
    for role, n in calls.items():
        model = getattr(config.llm, role).model
        if model is None or _is_fake(model):
            continue
        spec = parse_model_string(model)
        price = table.lookup(spec.provider, spec.model)
        if price is None:
            return None
        tokens_in, tokens_out = tokens[role]
        total += n * (tokens_in * price.input + tokens_out * price.output) / 1_000_000
    return total


def _is_fake(model: str) -> bool:
    return model.strip().lower().startswith(("fake:", "fake/"))


def lines(found: Estimate) -> list[str]:
    """The dry-run's cost lines."""
    out = []
    if found.llm_calls:
        calls = ", ".join(f"{role} ≤ {n:,}" for role, n in found.llm_calls.items())
        money = f", ≤ ${found.usd:,.2f} at list prices" if found.usd else ""
        unpriced = " (a model has no known price: set llm.prices)" if found.usd is None else ""
        out.append(f"LLM calls: {calls}{money}{unpriced}")
    machine = {stage: s for stage, s in found.seconds.items() if s > 0 and stage in ("generate", "embed")}
    unknown = found.generated_tokens and "generate" not in found.seconds
    if machine:
        parts = ", ".join(f"{stage} ~{duration(s)}" for stage, s in machine.items())
        also = "; generation depends on the models and hardware" if unknown else ""
        out.append(f"time: {parts} on a 2-core CPU (measured rates; faster hardware takes less){also}")
    elif unknown:
        out.append("time: generation speed depends on the models and hardware (not known before the run)")
    llm = found.seconds.get("propose", 0.0) + found.seconds.get("validate", 0.0)
    if llm:
        out.append(f"time: LLM calls ~{duration(llm)} at ~{CALL_SECONDS:.0f} s a call, llm.concurrency at once")
    return out


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
