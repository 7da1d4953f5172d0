"""`validate.mode: auto`: the fixed or the sequential protocol, chosen before the run from what it holds.

The sequential mode (anytime-valid e-processes, e-BH) answers and judges only what undecided
hypotheses need: on large validation splits it costs a fraction of the fixed protocol's tokens and
judge calls at nearly its power (docs/statistics.md table 11b, docs/benchmarks.md "Adaptive
validation"). On a few dozen prompts an e-value cannot reach e-BH's first bar (m/q) while the exact
sign-flip test + BH can, so there the fixed protocol finds far more. `auto` takes the sequential mode
when it has something to save and room to work:

- the validation split has at least `validate.auto_prompts` prompts,
- the answers are paired by prompt (prompt runs; aligned corpora),
- there is something costly to save: answers to generate, or an LLM judge to pay (a corpus judged
  offline costs next to nothing, and the fixed test is exact),
- and no judge cascade is set (llm.strong_judge: it finds small differences far more often in fixed mode).

The choice is made once per run, from the prompts stage's own selection (no model is loaded), and the
rest of the pipeline sees the chosen mode, so an `auto` run fingerprints like the mode it chose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from lmdelta.config import RunConfig
from lmdelta.config.source import parse_source
from lmdelta.records import Prompt
from lmdelta.sources.units import corpus_prompts, is_aligned
from lmdelta.stages.prompts import _splits, corpus_rows, narrow, select, source_prompts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    mode: str  # "fixed" or "sequential"
    reason: str


Stored = Callable[[], "list[Prompt] | None"]  # a corpus run's prompts as its reused prompts stage holds them


def resolve(config: RunConfig, countable: bool = True, stored: Stored | None = None) -> RunConfig:
    """The config with validate.mode = auto replaced by the mode `choose` picks (unchanged otherwise).
    `countable=False` (a dry run whose prompt data is not here): fixed, for the checks only, said nowhere.
    `stored`: where a corpus's prompts are counted, the prompts stage's output when it will be reused (None
    when it will run), so that a re-run does not parse the corpus again."""
    if config.validate.mode != "auto":
        return config
    choice = choose(config, stored) if countable else Choice("fixed", "the prompts cannot be counted here")
    if countable:
        log.info("validate.mode auto → %s: %s", choice.mode, choice.reason)
    return config.model_copy(update={"validate": config.validate.model_copy(update={"mode": choice.mode})})


def choose(config: RunConfig, stored: Stored | None = None) -> Choice:
    """What `auto` picks for this run, and why (one line, for the log and --dry-run)."""
    section = config.validate
    if section.mode != "auto":
        return Choice(section.mode, f"validate.mode = {section.mode}")
    if config.llm.strong_judge.model is not None:
        return Choice(
            "fixed",
            "the judge cascade (llm.strong_judge) finds small differences far more often in fixed mode "
            "(validate.mode=sequential runs it as an e-process that stops early on large ones)",
        )
    if config.uses_corpus and config.llm.judge.model is None:
        return Choice("fixed", "the corpus's texts exist and its judges are offline: nothing costly to save")
    counted = _validation_prompts(config, stored)  # unreadable data: the prompts stage's own error, with its fix
    if counted is None:
        return Choice("fixed", "the corpus's answers are not paired by prompt")
    threshold = section.auto_prompts
    if counted < threshold:
        return Choice("fixed", f"{counted:,} validation prompts, under validate.auto_prompts = {threshold:,}")
    return Choice("sequential", f"{counted:,} validation prompts, at least validate.auto_prompts = {threshold:,}")


def _validation_prompts(config: RunConfig, stored: Stored | None = None) -> int | None:
    """Validation prompts the run will hold; None for a corpus whose sides share no prompts."""
    section = config.prompts
    kept = stored() if stored is not None and config.uses_corpus else None
    if kept is not None:  # the prompts stage's own selection, as it wrote it: units of texts when unaligned
        if any(prompt.unit is not None for prompt in kept):
            return None
        prompts = kept
    elif config.uses_corpus:
        rows = corpus_rows(config)
        if not is_aligned(rows):
            return None
        prompts = select(narrow(corpus_prompts(rows), section), section)
    elif parse_source(section.source).kind == "generated":  # written at run time: the planned count
        planned = len(section.generated.categories) * section.generated.per_category
        return _splits(min(planned, section.limit or planned), section).count("validation")
    else:
        prompts = select(narrow(source_prompts(config), section), section)
    return sum(p.split == "validation" for p in prompts)
