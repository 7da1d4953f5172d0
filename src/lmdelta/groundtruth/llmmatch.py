"""Matching validated findings to injected quirks with the assistant LLM (`groundtruth.match = llm`), and
how often that matcher agrees with the keyword/embedding one, so a scorecard shows what the choice changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from lmdelta import execution
from lmdelta.backends.embedded import cache_root
from lmdelta.config import RunConfig
from lmdelta.errors import ConfigError, StageError
from lmdelta.groundtruth.quirks import Quirk
from lmdelta.groundtruth.score import match
from lmdelta.llm import prompts
from lmdelta.llm.session import LLMSession
from lmdelta.llm.types import CallResult
from lmdelta.rundir import RunDir

STAGE = "groundtruth"  # the name its LLM usage is recorded under in the manifest
ROLE = "judge"
# The LLM's similarity is 1.0 (describes) or 0.0; a matrix of it is thresholded here.
DECISION = 0.5
SHOWN = 300  # characters of an unusable answer quoted in the error


def llm_similarity(
    config: RunConfig, run_dir: RunDir | None, quirks: Sequence[Quirk], rows: list[dict[str, Any]]
) -> np.ndarray:
    """(quirk, finding) → 1.0 where the judge says the finding describes the quirk, else 0.0.

    One request per quirk lists every finding, so the judge can pick a narrower or differently worded
    finding ("b uses 'whale' more" for "brings up the ocean and sea life") that keywords and embeddings
    miss. `rows` are validated findings (description, optional property and keywords), best first;
    `run_dir` (a RunDir, or None) receives the usage under the stage "groundtruth". Answers are cached.
    """
    check_judge(config)
    sim = np.zeros((len(quirks), len(rows)))
    if not quirks or not rows:
        return sim
    session = LLMSession(config, STAGE, cache_root(config.embed.cache_dir), run_dir)
    model = session.model(ROLE)
    findings = [finding_text(row) for row in rows]
    requests = [
        prompts.quirk_match_request(quirk.description, findings, session.temperature(ROLE), config.llm.judge.max_tokens)
        for quirk in quirks
    ]
    try:
        answers = session.asker(ROLE)(requests, partial(prompts.parse_numbers, n=len(rows)))
    finally:
        session.flush()
        execution.release()  # a local model served on Ray (outside any stage): its workers end here
    for qi, (quirk, (result, numbers)) in enumerate(zip(quirks, answers)):
        if not result.ok:
            raise unanswered(quirk, result, model)
        sim[qi, [number - 1 for number in numbers]] = 1.0
    return sim


def check_judge(config: RunConfig) -> None:
    """The LLM matcher needs a judge model; say so before anything is sent or scored."""
    if config.llm.judge.model is None:
        raise ConfigError(
            "groundtruth.match is llm, but llm.judge.model is not set: no model decides which findings "
            "describe which quirk.",
            "Set it, e.g. --set llm.judge.model=openai/gpt-4.1-mini, or match findings without an LLM "
            "with --set groundtruth.match=auto (keywords and embeddings).",
        )


def finding_text(row: dict[str, Any]) -> str:
    """A finding as the judge reads it: its description, then the property and keywords it was tested with."""
    details = []
    if row.get("property"):
        details.append(f"property: {row['property']}")
    if row.get("keywords"):
        details.append("keywords: " + ", ".join(str(k) for k in row["keywords"]))
    description = row.get("description") or row.get("property") or ""
    return f"{description} ({'; '.join(details)})" if details else description


def unanswered(quirk: Quirk, result: CallResult, model: str) -> StageError:
    """The error for a quirk the judge gave no usable answer for; scoring it 0 would hide a recovery."""
    answer = " ".join((result.text or "").split())
    quoted = f"; its last answer was {answer[:SHOWN]!r}" if answer else ""
    problem = (
        f"The judge {model} gave no usable answer for quirk {quirk.name!r} "
        f"({result.error_kind}: {result.error_message}){quoted}."
    )
    if result.error_kind != "unparseable":
        return StageError(problem, "Run the same command again: answers already received come from the cache.")
    cut = result.finish_reason == "length"
    fix = (
        "The answer was cut off: raise llm.judge.max_tokens and run again. "
        if cut
        else "It must be a JSON list of finding numbers, e.g. [2, 5] or []. "
    )
    return StageError(
        problem,
        fix + "Or use another judge model (llm.judge.model), or --set groundtruth.match=auto to match "
        "with keywords and embeddings.",
    )


def agreement(
    llm_sim: np.ndarray,
    other_sim: np.ndarray,
    threshold: float,
    *,
    quirk_names: Sequence[str] | None = None,
    row_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """How often the LLM matcher (llm_sim ≥ 0.5) and another (other_sim ≥ threshold) decide a
    (quirk, finding) pair alike, with Cohen's kappa (agreement beyond chance), and per quirk whether
    both recover it after one-to-one matching, and by the same finding.

    Quirks are named by `quirk_names` and findings by `row_ids` when given, else by their index.
    """
    if llm_sim.shape != other_sim.shape:
        raise ValueError(f"the two similarity matrices differ in shape: {llm_sim.shape} vs {other_sim.shape}")
    llm_yes, other_yes = llm_sim >= DECISION, other_sim >= threshold
    table = {
        "both": int(np.sum(llm_yes & other_yes)),
        "llm_only": int(np.sum(llm_yes & ~other_yes)),
        "other_only": int(np.sum(~llm_yes & other_yes)),
        "neither": int(np.sum(~llm_yes & ~other_yes)),
    }
    pairs = int(llm_sim.size)
    per_quirk = recovery_agreement(llm_sim, other_sim, threshold, quirk_names, row_ids)
    return {
        "pairs": pairs,
        **table,
        "agreement": (table["both"] + table["neither"]) / pairs if pairs else None,
        "kappa": cohen_kappa(table["both"], table["llm_only"], table["other_only"], table["neither"]),
        "threshold": threshold,
        "quirks_same": sum(entry["same"] for entry in per_quirk),
        "quirks": per_quirk,
    }


def recovery_agreement(
    llm_sim: np.ndarray,
    other_sim: np.ndarray,
    threshold: float,
    quirk_names: Sequence[str] | None,
    row_ids: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """Per quirk, the finding each matcher recovers it with (None: not recovered); `same` when both or
    neither recover it, `same_finding` when that is also by the same finding."""
    by_llm, by_other = dict(match(llm_sim, DECISION)), dict(match(other_sim, threshold))

    def finding(index: int | None) -> str | int | None:
        if index is None:
            return None
        return row_ids[index] if row_ids is not None else index

    out = []
    for qi in range(llm_sim.shape[0]):
        llm, other = by_llm.get(qi), by_other.get(qi)
        out.append(
            {
                "quirk": quirk_names[qi] if quirk_names is not None else qi,
                "llm": finding(llm),
                "other": finding(other),
                "same": (llm is None) == (other is None),
                "same_finding": llm == other,
            }
        )
    return out


def cohen_kappa(both: int, first_only: int, second_only: int, neither: int) -> float | None:
    """Cohen's kappa of two yes/no raters from their 2×2 table: (observed − chance) / (1 − chance), where
    chance is the agreement of independent raters with the same yes-rates. None when it is 0/0: no items,
    or both raters give one and the same answer throughout (chance agreement is then total).

    Computed on counts (every term × n²) so the undefined case is found exactly, not by a float compare.
    """
    n = both + first_only + second_only + neither
    first_yes, second_yes = both + first_only, both + second_only
    chance = first_yes * second_yes + (n - first_yes) * (n - second_yes)
    if n * n == chance:
        return None
    return (n * (both + neither) - chance) / (n * n - chance)
