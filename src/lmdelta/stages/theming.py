"""The report stage's themes: the validated findings grouped (lmdelta.themes), summarised by llm.summariser or
extractively, written to stages/report/themes.json for the HTML report and the terminal table.

What it reads: each finding's claim embedded with the run's embedder (cached), and, for findings with an offline
judge (keyword, property, embedding), the validation answers that judge fires on, re-scored here (free). LLM-judged
findings are grouped by their claims only: their verdicts would cost a call per text.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from lmdelta import judges
from lmdelta.config import RunConfig
from lmdelta.diversity import OFFLINE_JUDGES
from lmdelta.diversity import firing_sets as diversity_firing_sets
from lmdelta.llm import prompts
from lmdelta.llm.session import LLMSession
from lmdelta.records import Finding
from lmdelta.rundir import THEMES, atomic_write_text
from lmdelta.stages import embed, propose, validate
from lmdelta.stages.contract import StageContext
from lmdelta.themes import Summary, Theme, Themes, briefs, build_themes, claim_text, extractive_summary, round_lines

SUMMARY_TOKENS = 400  # 3 to 6 sentences, with room to spare (llm.summariser.max_tokens overrides)
log = logging.getLogger(__name__)


def write_themes(ctx: StageContext, config: RunConfig, findings: list[Finding]) -> Themes:
    """Themes of the main comparison's validated findings (`findings`: all of its rows), written to themes.json."""
    validated = [finding for finding in findings if finding.validated]
    vectors = claim_vectors(ctx, config, validated)
    found = build_themes(validated, vectors, firing_sets(ctx, config, validated))
    labels = {"a": config.label("a"), "b": config.label("b")}
    result = Themes(tuple(found), summarise(ctx, config, found, labels), tuple(round_lines(findings, found)))
    atomic_write_text(ctx.output(THEMES), json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    log.info("report: %d validated findings in %d themes", len(validated), len(found))
    return result


def claim_vectors(ctx: StageContext, config: RunConfig, findings: list[Finding]) -> np.ndarray | None:
    if not findings:
        return None
    return embed.embed_texts(ctx, config, [claim_text(finding) for finding in findings])


def firing_sets(ctx: StageContext, config: RunConfig, findings: list[Finding]) -> list[np.ndarray | None]:
    """Per finding, the validation answers its hypothesis's offline judge fires on (booleans over one list of
    answers); None for an LLM judge, or a finding whose hypothesis propose did not write."""
    by_id = {h.id: h for h in propose.load(ctx, "main")}
    hypotheses = [by_id.get(finding.id) for finding in findings]
    if not any(h is not None and h.judge in OFFLINE_JUDGES for h in hypotheses):
        return [None] * len(findings)
    pair = validate.load_answers(ctx, config)
    rows = pair.rows("validation")
    known = [i for i, h in enumerate(hypotheses) if h is not None]
    found = [h for h in hypotheses if h is not None]
    texts, vectors = pair.samples.texts(rows), judges.judge_vectors(pair, rows, found, "auto")
    out: list[np.ndarray | None] = [None] * len(findings)
    # All at once: each offline judge reads the answers once, not once per finding.
    for i, fired in zip(known, diversity_firing_sets(found, texts, vectors)):
        out[i] = fired
    return out


def summarise(ctx: StageContext, config: RunConfig, themes: list[Theme], labels: dict[str, str]) -> Summary:
    """llm.summariser's summary of the themes when it is set (one call), else the extractive one; an answer that
    cannot be used (empty, refused) falls back to the extractive summary, saying why."""
    extractive = extractive_summary(themes, labels)
    if config.llm.summariser.model is None or not themes:
        return Summary(extractive, "extractive")
    session = LLMSession(config, "report", ctx.cache_dir, ctx.run_dir)
    request = prompts.summary_request(
        labels["a"],
        labels["b"],
        briefs(themes),
        session.temperature("summariser"),
        config.llm.summariser.max_tokens or SUMMARY_TOKENS,
    )
    [(result, text)] = session.asker("summariser")([request], prompts.parse_summary)
    session.check()
    model = session.model("summariser")
    if not result.ok:
        note = f"the summariser's answer could not be used ({result.error_kind}: {result.error_message})"
        log.warning("report: %s; the summary is extractive", note)
        return Summary(extractive, "extractive", model, note)
    return Summary(text, "llm", model)
