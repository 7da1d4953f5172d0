"""Render a finished (or partly finished) run directory into one self-contained HTML report.

Reads only files inside the run directory, so a copied run can be re-rendered offline at any time.
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from pydantic import ValidationError

from lmdelta import __version__
from lmdelta.config.prompts import CorpusConfig
from lmdelta.errors import RunDirError
from lmdelta.jsonvalues import finite
from lmdelta.records import Finding
from lmdelta.report import curve, forest, prevalence
from lmdelta.report.data_warnings import read_data_warnings
from lmdelta.report.evidence import examples_view
from lmdelta.report.filters import (
    DASH,
    DEFAULT_CI_LEVEL,
    ci_bar,
    fmt_ci,
    fmt_decision,
    fmt_int,
    fmt_level,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_seconds,
    fmt_signed,
    highlight,
)
from lmdelta.report.limits import CANNOT_SEE, LLM_DOCS, LLM_ROLES, run_limits
from lmdelta.report.measure import raw_summary
from lmdelta.report.merge import POOLED, MergedFinding, merge_findings
from lmdelta.report.null_control import LEVEL as NULL_LEVEL
from lmdelta.report.null_control import NOMINAL, summarize_null
from lmdelta.report.rounds import search_line, validation_rounds
from lmdelta.report.runfiles import load_json, load_yaml
from lmdelta.report.stagecounts import counts_in_words
from lmdelta.report.themes_view import themes_context
from lmdelta.report.weights_view import weights_context
from lmdelta.rundir import RunDir, atomic_write_text, read_jsonl
from lmdelta.sources.corpus import side_values

logger = logging.getLogger(__name__)

DEFAULT_Q = 0.05
DEFAULT_PRIMARY = "bh"
PROCEDURES = {"bh": "Benjamini–Hochberg", "by": "Benjamini–Yekutieli", "online": "online FDR"}
E_PROCEDURES = {  # validate.mode = sequential: decided on the betting e-values
    "e-BH": "e-BH on sequential betting e-values",
    "e-LOND": "online FDR, e-LOND on sequential betting e-values",
}

# The template reads a finding's fields (records.Finding) from each row; rows written by older or
# partial runs may lack some, and the template runs with StrictUndefined so a typo there fails loudly
# instead of rendering blank.
_FIELDS = Finding.names()
HOW_TO_REPLICATE = "prompts.confirmation_fraction"


def render_report(run_dir: Path) -> Path:
    """Write RUN_DIR/report.html atomically and return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is not a directory.", "Pass the --run-dir of an lmdelta run.")
    html = _environment().from_string(_template_source()).render(**build_context(run_dir))
    out = RunDir(run_dir).report_path
    atomic_write_text(out, html)
    logger.info("wrote %s", out)
    return out


# ---------------------------------------------------------------- loading the run


def build_context(run_dir: Path) -> dict[str, Any]:
    """Everything the template shows, gathered from the run directory's files."""
    files = RunDir(run_dir)
    config = load_yaml(files.config_path)
    manifest = load_json(files.manifest_path)
    summary = load_json(files.summary_path)
    primary = str(summary.get("primary") or _dig(config, "decide", "primary") or DEFAULT_PRIMARY).lower()
    q = finite(summary.get("q"))
    q = q if q is not None else finite(_dig(config, "decide", "q"))
    q = q if q is not None else DEFAULT_Q
    ci_level = finite(_dig(config, "validate", "ci_level")) or DEFAULT_CI_LEVEL
    hypotheses = _load_rows(files.findings_path("main"), primary, ci_level)
    null = _load_rows(files.findings_path("null"), primary, ci_level)
    main = _dict(summary.get("main"))
    counts = _counts(summary, hypotheses)
    findings = _findings_context(hypotheses)
    sides = _sides(config)
    return {
        "run_dir": str(run_dir),
        "sides": sides,
        "version": manifest.get("version") or __version__,
        "renderer_version": __version__,
        "run_date": _run_date(manifest),
        "q": q,
        "primary": primary,
        "procedure": _procedure_name(primary, hypotheses or []),
        "hypotheses": hypotheses,
        "validated": _by_p([h for h in hypotheses or [] if h["validated"]]),
        "null": null,
        "counts": counts,
        "m_tested": counts["tested"] if counts else 0,
        "ci_level": ci_level,
        "fcr_level": _fcr_level(main, hypotheses),
        "replication": _replication_summary(main.get("replication"), hypotheses),
        "how_to_replicate": HOW_TO_REPLICATE,
        "clustering_warnings": sorted({h["clustering_warning"] for h in hypotheses or [] if h["clustering_warning"]}),
        "baselines": _baselines(hypotheses),
        "null_control": summarize_null(null, _dict(summary.get("null"))),
        "nominal": NOMINAL,
        "null_level": NULL_LEVEL,
        "skipped_scopes": _skipped(_dict(summary.get("main")).get("skipped_groups")),
        "stages": _stages(manifest),
        "rounds": validation_rounds(files),
        "search": search_line(files),
        "spent": _spent(summary),
        "llm_usage": _llm_usage(manifest),
        "scorecard": load_json(files.scorecard_path) or None,
        "curve": _curve(run_dir, load_json(files.scorecard_path)),
        **findings,
        **_overview_plots(findings["merged"], sides),
        "themes": themes_context(run_dir, hypotheses, findings["merged"]),
        "weights": weights_context(run_dir),
        "limits": run_limits(config, hypotheses),
        "cannot_see": CANNOT_SEE,
        "llm_roles": LLM_ROLES,
        "llm_docs": LLM_DOCS,
        "data_warnings": read_data_warnings(run_dir),
    }


def _curve(run_dir: Path, card: Any) -> dict[str, Any] | None:
    """The ground-truth run's recovery-against-compute curve (groundtruth.budgets): its points and SVG."""
    name = card.get("curve") if isinstance(card, dict) else None
    points = load_json(run_dir / name).get("points") if isinstance(name, str) and "/" not in name else None
    if not isinstance(points, list) or not points:
        return None
    return {"points": points, "svg": Markup(curve.svg(points))}


def _overview_plots(merged: list[MergedFinding], sides: dict[str, dict[str, Any]]) -> dict[str, Markup]:
    """The overview: every validated finding's effect and interval, and its prevalence a → b (each SVG empty when
    there is nothing to draw)."""
    a, b = sides["a"]["label"], sides["b"]["label"]
    return {
        "forest_plot": Markup(forest.svg(forest.forest_rows(merged), a, b)),
        "prevalence_plot": Markup(prevalence.svg(prevalence.prevalence_rows(merged), a, b)),
    }


def _findings_context(rows: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The validated claims, each once with its scopes (`merged`), and the card each validated row is shown on
    (`card_of`, by the row's anchor): a claim validated in several groups has one card."""
    merged = merge_findings(rows or [])
    card_of = {row["anchor"]: finding.lead["anchor"] for finding in merged for row in finding.rows}
    groups = sorted({str(row["group"]) for row in rows or [] if row["group"] and row["group"] != POOLED})
    return {"merged": merged, "card_of": card_of, "pooled": POOLED, "groups": groups}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _skipped(value: Any) -> list[dict[str, str]]:
    """The scopes the main comparison did not propose in, with the reason (decide's summary)."""
    return [
        {"group": str(entry.get("group")), "reason": str(entry.get("reason") or DASH)}
        for entry in value or []
        if isinstance(entry, dict) and entry.get("group")
    ]


def _llm_usage(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of LLM spending: the whole run first, then per stage and role."""
    usage = manifest.get("llm_usage")
    if not isinstance(usage, dict) or not usage:
        return []
    rows = [{"where": "whole run", **_usage_row(usage)}]
    for stage, roles in sorted((usage.get("by_stage") or {}).items()):
        for role, entry in sorted(roles.items()):
            rows.append({"where": f"{stage} / {role}", **_usage_row(entry)})
    return rows


def _usage_row(entry: dict[str, Any]) -> dict[str, Any]:
    failures = entry.get("failures") or {}
    return {
        "requests": entry.get("requests", 0),
        "calls": entry.get("calls", 0),
        "cached": entry.get("cached", 0),
        "failed": sum(failures.values()) if isinstance(failures, dict) else 0,
        "reasks": entry.get("reasks", 0),
        "tokens": f"{entry.get('input_tokens', 0)} / {entry.get('output_tokens', 0)}",
        "cost": f"${float(entry.get('cost_usd') or 0.0):.4f}",
    }


def _load_rows(path: Path, primary: str, ci_level: float = DEFAULT_CI_LEVEL) -> list[dict[str, Any]] | None:
    """Normalised hypothesis rows, sorted by p-value; None when the file does not exist."""
    if not path.exists():
        return None
    return _by_p([_normalize(row, primary, ci_level) for row in read_jsonl(path)])


def _normalize(row: dict[str, Any], primary: str, ci_level: float = DEFAULT_CI_LEVEL) -> dict[str, Any]:
    view = {field: _clean(row.get(field)) for field in _FIELDS}
    if not isinstance(view["validated"], bool):
        view["validated"] = bool(view.get(f"{primary}_reject"))
    view["keywords"] = [k for k in view["keywords"] or [] if isinstance(k, str) and k.strip()]
    for name in ("effect_ci", "auc_ci", "effect_ci_fcr", "prevalence_a_ci", "prevalence_b_ci"):
        view[name] = _interval(view[name])
    view["ci_level"] = finite(view["ci_level"]) or ci_level
    view["fcr_level"] = finite(view["fcr_level"])
    for name in ("generalization_validated", "generative_validated"):
        view[name] = view[name] if isinstance(view[name], bool) else None
    view["clustering_warning"] = str(view["clustering_warning"]) if view["clustering_warning"] else None
    view["replication"] = _replication(view["replication"], view["ci_level"])
    view["examples"] = examples_view(row.get("examples"))
    view["measure"] = _text(row.get("measure"))
    view["raw"] = raw_summary(row)
    view["anchor"] = "h-" + re.sub(r"[^A-Za-z0-9_-]+", "-", str(view["id"] or view["order"] or "x"))
    return view


def _replication(value: Any, ci_level: float) -> dict[str, Any] | None:
    """A row's re-estimate on the confirmation prompts (the confirm stage's fields), or None."""
    if not isinstance(value, dict):
        return None
    replicated = value.get("replicated") is True
    status = value.get("status")
    if status not in ("replicated", "not replicated", "not testable"):  # written before `status` existed
        status = "replicated" if replicated else "not replicated"
    return {
        "status": status,
        "replicated": replicated,
        "effect": finite(value.get("effect")),
        "effect_ci": _interval(value.get("effect_ci")),
        "effect_ci_note": _text(value.get("effect_ci_note")),
        "ci_level": finite(value.get("ci_level")) or ci_level,
        "auc": finite(value.get("auc")),
        "auc_ci": _interval(value.get("auc_ci")),
        "p_value": finite(value.get("p_value")),
        "q_value": finite(value.get("q_value")),
        "n_prompts": finite(value.get("n_prompts")),
        "n_texts": finite(value.get("n_texts")),
        "prevalence_a": finite(value.get("prevalence_a")),
        "prevalence_b": finite(value.get("prevalence_b")),
        "note": _text(value.get("note")),
        "test": _text(value.get("test")),
    }


def _replication_summary(value: Any, rows: list[dict[str, Any]] | None) -> dict[str, Any]:
    """What the confirm stage did: `run` (with counts), `not run` (with the reason) or `absent` (a run made
    before the stage existed, or one still going)."""
    if not isinstance(value, dict) or value.get("status") not in ("run", "not run"):
        if any(row["replication"] for row in rows or []):
            replicated = sum(1 for row in rows or [] if row["replication"] and row["replication"]["replicated"])
            return {
                "status": "run",
                "reason": None,
                "hint": None,
                "confirmation_prompts": None,
                "tested": None,
                "not_testable": None,
                "replicated": replicated,
                "validated": None,
                "q": None,
            }
        return {"status": "absent", "reason": None, "hint": None}
    found = {
        key: value.get(key)
        for key in ("status", "confirmation_prompts", "tested", "not_testable", "replicated", "validated")
    }
    return {
        **found,
        "reason": _text(value.get("reason")),
        "hint": _text(value.get("hint")),
        "q": finite(value.get("q")),
    }


def _fcr_level(main: dict[str, Any], rows: list[dict[str, Any]] | None) -> float | None:
    """The level of the validated findings' selection-adjusted intervals (summary.json, else any row)."""
    level = finite(main.get("fcr_level"))
    return level if level is not None else next((row["fcr_level"] for row in rows or [] if row["fcr_level"]), None)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _clean(value: Any) -> Any:
    """NaN anywhere (JSON allows it as an extension) means 'no value', the same as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _interval(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    low, high = finite(value[0]), finite(value[1])
    return None if low is None or high is None else (low, high)


def _baselines(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The lexical baseline once per group. It is computed per group (scope) on all of that group's
    validation texts, so it describes how far a and b differ in word use there, not any one finding."""
    seen: dict[str, float] = {}
    for row in rows or []:
        auc = finite(row["baseline_auc"])
        group = str(row["group"] or "all")
        if auc is not None and group not in seen:
            seen[group] = auc
    return [{"group": group, "auc": auc} for group, auc in sorted(seen.items())]


def _by_p(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(row: dict[str, Any]) -> tuple[float, float]:
        p = finite(row["p_value"])
        order = finite(row["order"])
        return (p if p is not None else math.inf, order if order is not None else math.inf)

    return sorted(rows, key=key)


def _counts(summary: dict[str, Any], rows: list[dict[str, Any]] | None) -> dict[str, int] | None:
    """Tested/validated counts: summary.json wins (its main comparison's entry, or the flat counts of older runs),
    because it is what the decide stage concluded: `tested` there counts the hypotheses with a p-value."""
    for source in (_dict(summary.get("main")), summary):
        tested, validated = source.get("tested"), source.get("validated")
        if isinstance(tested, int) and isinstance(validated, int):
            return {"tested": tested, "validated": validated}
    if rows is None:
        return None
    return {"tested": len(rows), "validated": sum(1 for row in rows if row["validated"])}


def _sides(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each side is: a model (with its system prompt and adapter) or, in corpus mode, saved outputs.

    In corpus mode generate.a/b.model keep their unused defaults, so they must not be shown."""
    sections = {side: _dig(config, "generate", side) for side in ("a", "b")}
    sections = {side: section if isinstance(section, dict) else {} for side, section in sections.items()}
    labels = {side: str(section.get("label") or side) for side, section in sections.items()}
    corpus = _dig(config, "corpus")
    corpus = corpus if isinstance(corpus, dict) else {}
    in_corpus = any(corpus.get(key) for key in ("path", "a", "b")) or _dig(config, "prompts", "source") == "corpus"
    sides: dict[str, dict[str, Any]] = {}
    for side, section in sections.items():
        sides[side] = {
            "label": labels[side],
            "model": None,
            "revision": None,
            "adapter": None,
            "system_prompt": None,
            "corpus": None,
            "corpus_values": [],
        }
        if in_corpus:
            sides[side].update(_corpus_side(corpus, side, labels))
        else:
            sides[side].update(
                {
                    key: str(section[key]) if section.get(key) else None
                    for key in ("model", "revision", "adapter", "system_prompt")
                }
            )
    return sides


def _corpus_side(corpus: dict[str, Any], side: str, labels: dict[str, str]) -> dict[str, Any]:
    """The corpus file holding this side's texts and, for a file holding both sides, the values of its
    side column that count as this side (read as lmdelta.sources.corpus reads them)."""
    if not corpus.get("path"):
        return {"corpus": str(corpus[side]) if corpus.get(side) else None, "corpus_values": []}
    try:
        options = CorpusConfig.model_validate(corpus)
    except ValidationError:  # a config.yaml from another version: the file name is still worth showing
        options = CorpusConfig()
    if options.text_columns:  # a wide file: each side's answers are a column of their own
        return {"corpus": f"{corpus['path']} (column {options.text_columns['ab'.index(side)]})", "corpus_values": []}
    known = side_values(labels, options, options.format == "reference")
    return {"corpus": str(corpus["path"]), "corpus_values": sorted(value for value, s in known.items() if s == side)}


def _run_date(manifest: dict[str, Any]) -> str | None:
    for key in ("updated", "created", "started"):
        if manifest.get(key):
            return str(manifest[key])
    return None


def _stages(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    stages = manifest.get("stages")
    if not isinstance(stages, dict):
        return []
    return [
        {
            "name": name,
            "status": str(record.get("status") or DASH),
            "seconds": finite(record.get("seconds")),
            "counts": counts_in_words(record["counts"]) if isinstance(record.get("counts"), dict) else DASH,
        }
        for name, record in stages.items()
        if isinstance(record, dict)
    ]


def _spent(summary: dict[str, Any]) -> dict[str, Any] | None:
    """Generated tokens per split and judge calls, from summary.json (None for runs before they were counted)."""
    tokens = _dict(summary.get("tokens_generated"))
    calls = _dict(summary.get("judge_calls"))
    if not tokens:
        return None
    by_split = [(split, _dict(v).get("total")) for split, v in tokens.items() if split != "total"]
    return {
        "tokens": [(split, n) for split, n in by_split if isinstance(n, int)],
        "total": _dict(tokens.get("total")).get("total"),
        "judged_pairs": calls.get("validation_pairs"),
        "llm_calls": calls.get("llm_total"),
        "mode": summary.get("mode") or "fixed",
    }


def _procedure_name(primary: str, rows: list[dict[str, Any]]) -> str:
    decided_by = next((row.get("procedure") for row in rows if row.get("procedure") in E_PROCEDURES), None)
    if decided_by:
        return E_PROCEDURES[decided_by]
    if primary == "online":
        named = next((row["online_procedure"] for row in rows if row["online_procedure"]), None)
        return f"online FDR, {named}" if named else PROCEDURES["online"]
    return PROCEDURES.get(primary, primary)


def _dig(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


# ---------------------------------------------------------------- template


def _template_source() -> str:
    resource = importlib.resources.files("lmdelta") / "report" / "templates" / "report.html.j2"
    return resource.read_text(encoding="utf-8")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(
        {
            "num": fmt_num,
            "signed": fmt_signed,
            "pval": fmt_p,
            "pct": fmt_pct,
            "int": fmt_int,
            "ci": fmt_ci,
            "level": fmt_level,
            "decision": fmt_decision,
            "seconds": fmt_seconds,
            "highlight": highlight,
        }
    )
    env.globals.update({"ci_bar": ci_bar, "DASH": DASH})
    return env
