"""lmdelta from Python: `compare(...)` runs a comparison and returns its findings; `open_run(DIR)` reads one.

    import lmdelta
    result = lmdelta.compare("answers.csv", text_columns=["model_x", "model_y"], validate={"mode": "sequential"})
    result.validated            # the validated findings, as dicts (the records of hypotheses.jsonl)
    result.to_pandas()          # every tested hypothesis as a DataFrame (pandas installed)
    result.report()             # the HTML report; displays inline in Jupyter

`import lmdelta` does not load this module: the package root reads these names from it on first use.
"""

from __future__ import annotations

import html
import json
import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmdelta.config import load_config
from lmdelta.errors import ConfigError, RunDirError
from lmdelta.hashing import hash_text
from lmdelta.inputs import RUNS, Inputs, as_override_strings, default_run_dir, point_latest
from lmdelta.live import LiveDisplay
from lmdelta.pipeline import run as run_pipeline
from lmdelta.progress import choose, listening, on_events
from lmdelta.report.table import findings_table
from lmdelta.rundir import RunDir, atomic_write_text, read_jsonl

log = logging.getLogger("lmdelta")


@dataclass
class Comparison:
    """A finished (or partly finished) comparison: its findings, summary and run directory."""

    run_dir: Path
    findings: list[dict[str, Any]] = field(repr=False)  # every tested hypothesis of the main comparison
    summary: dict[str, Any] = field(repr=False)
    null_findings: list[dict[str, Any]] = field(repr=False, default_factory=list)  # the null control's

    @property
    def validated(self) -> list[dict[str, Any]]:
        return [row for row in self.findings if row.get("validated")]

    def to_pandas(self, validated_only: bool = False) -> Any:
        """The findings as a pandas DataFrame, one row per tested hypothesis (nested fields stay objects)."""
        try:
            import pandas as pd  # heavy, optional
        except ImportError:
            raise ConfigError(
                "to_pandas() needs pandas, which is not installed.",
                "pip install pandas (or read Comparison.findings, a list of dicts).",
            ) from None
        return pd.DataFrame(self.validated if validated_only else self.findings)

    def table(self, width: int = 100) -> str:
        """The terminal table `lmdelta run` prints: headline, warnings, one line per validated claim."""
        return findings_table(self.run_dir, width=width)

    def report(self) -> Report:
        """The run's HTML report (written by the report stage): `.path`, and inline display in Jupyter."""
        path = RunDir(self.run_dir).report_path
        if not path.exists():
            raise RunDirError(
                f"{self.run_dir} has no report yet (the report stage has not run).",
                "Finish the run: call lmdelta.compare again with the same arguments, or lmdelta run.",
            )
        return Report(path)

    def __repr__(self) -> str:
        return f"Comparison({str(self.run_dir)!r}: {len(self.findings)} tested, {len(self.validated)} validated)"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(row.get('description', '')))}</td><td>{html.escape(str(row.get('group', '')))}"
            f"</td><td>{_number(row.get('effect'))}</td><td>{_number(row.get('q_value'), 'e')}</td></tr>"
            for row in self.validated
        )
        head = html.escape(repr(self))
        table = f"<table><tr><th>finding</th><th>group</th><th>effect</th><th>q</th></tr>{rows}</table>" if rows else ""
        return f"<div><p><code>{head}</code></p>{table}</div>"


@dataclass(frozen=True)
class Report:
    """A report file; Jupyter shows it inline (a sandboxed frame: the report runs no network requests)."""

    path: Path

    def html(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def _repr_html_(self) -> str:
        frame = html.escape(self.html(), quote=True)
        return f'<iframe srcdoc="{frame}" sandbox="allow-scripts" style="width:100%;height:640px;border:0"></iframe>'


def _number(value: Any, style: str = "f") -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{value:.2e}" if style == "e" else f"{value:.3f}"


def open_run(run_dir: str | Path) -> Comparison:
    """Read an existing run directory (its findings so far, its summary)."""
    files = RunDir(run_dir)
    if not files.exists():
        raise RunDirError(
            f"{run_dir} is not an lmdelta run directory (no manifest).",
            "Pass the folder a run wrote (e.g. runs/latest), or start one with lmdelta.compare.",
        )
    return Comparison(
        Path(run_dir),
        _rows(files.findings_path("main")),
        json.loads(files.summary_path.read_text()) if files.summary_path.exists() else {},
        _rows(files.findings_path("null")),
    )


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(path)) if path.exists() else []


# Short names compare() takes for the fields people set most (any field works by its dotted name too).
ALIASES = {
    "a_label": "generate.a.label",
    "b_label": "generate.b.label",
    "text_columns": "corpus.text_columns",
    "limit": "prompts.limit",
}


def compare(
    data: Any = None,
    *,
    a: str | None = None,
    b: str | None = None,
    config: str | Path | None = None,
    run_dir: str | Path | None = None,
    progress: Progress = True,
    **settings: Any,
) -> Comparison:
    """Compare two models (`a=`, `b=`) or two sets of saved outputs (`data`), and return the findings.

    `data`: a corpus file (JSONL, CSV, Parquet; long or wide), a pair of files (side a's, side b's), or a
    table in memory — a pandas DataFrame, a Hugging Face `datasets.Dataset` or a list of dicts — saved under
    runs/inputs/ by content, so the same table resumes the same run. `config`: a YAML config to start from.
    `settings`: any config field, as `validate={"mode": "sequential"}`, `validate__mode="sequential"` or
    `**{"validate.mode": "sequential"}`, and the short names `a_label`, `b_label`, `text_columns` (a wide
    table's two answer columns) and `limit` (prompts). `progress`: show how far the run is on stderr (a live
    display on a terminal, log lines in a notebook or a pipe), or pass a function to receive each progress line
    (e.g. a tqdm bar's `set_description`), or `lmdelta.progress.on_events(fn)` to receive ProgressEvents.
    Re-running with the same arguments resumes the run; errors say what is wrong and how to fix it.
    """
    corpus = _corpus_files(data)
    values = {**Inputs(a, b, corpus).overrides(config is not None), **dict(_flatten(settings))}
    loaded = load_config(config, as_override_strings(values))
    folder = Path(run_dir) if run_dir is not None else default_run_dir(loaded, config)
    files = RunDir(folder)
    files.check_usable()
    with _progress(progress), files.lock():
        if run_dir is None:
            point_latest(folder)
        run_pipeline(loaded, files)
    return open_run(folder)


def _corpus_files(data: Any) -> list[str]:
    if data is None:
        return []
    if isinstance(data, str | Path):
        return [str(data)]
    if isinstance(data, tuple | list) and data and all(isinstance(item, str | Path) for item in data):
        return [str(item) for item in data]
    return [str(_save_table(data))]


def _save_table(data: Any) -> Path:
    """A table in memory as JSONL under runs/inputs/, named by its content."""
    rows = _records(data)
    if not rows:
        raise ConfigError(
            "The table passed to compare() has no rows.", "Pass a table with one row per answer or prompt."
        )
    text = "".join(json.dumps(_plain(row), ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    path = RUNS / "inputs" / f"table-{hash_text(text)[:12]}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    return path


def _records(data: Any) -> list[dict[str, Any]]:
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return list(data.to_dict(orient="records"))
    if hasattr(data, "column_names") and hasattr(data, "features"):  # a datasets.Dataset
        return [dict(row) for row in data]
    if isinstance(data, list) and all(isinstance(row, Mapping) for row in data):
        return [dict(row) for row in data]
    raise ConfigError(
        f"compare() cannot read data of type {type(data).__name__}.",
        "Pass a file path, a pair of paths, a pandas DataFrame, a datasets.Dataset or a list of dicts.",
    )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready cells: numpy numbers as Python numbers, NaN (pandas' missing value) as null."""
    out = {}
    for key, value in row.items():
        if hasattr(value, "item") and not isinstance(value, str | bytes):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[str(key)] = value
    return out


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """validate={"mode": "sequential"} and validate__mode="sequential" both → ("validate.mode", "sequential")."""
    for key, value in settings.items():
        dotted = prefix + (ALIASES.get(key, key) if not prefix else key).replace("__", ".")
        if isinstance(value, Mapping) and not _is_value_mapping(dotted):
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted, value


VALUE_MAPPINGS = ("backend_args", "prices", "sides")  # fields whose value is a mapping, not a section


def _is_value_mapping(dotted: str) -> bool:
    return dotted.rpartition(".")[2] in VALUE_MAPPINGS


Progress = bool | Callable[[str], None] | on_events


class _CallbackHandler(logging.Handler):
    """Hands each stage log line to a function (a notebook widget, a tqdm bar's set_description, a logger)."""

    def __init__(self, callback: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        self.callback(record.getMessage())


def _progress(progress: Progress) -> AbstractContextManager[object]:
    """While a comparison runs, show how far it is: with True, when nothing else shows lmdelta's log lines, as a
    live display on a terminal or as the lines on stderr elsewhere (a notebook, a pipe); to a function of each
    line; or to a function of each ProgressEvent (`on_events(fn)`)."""
    if isinstance(progress, on_events):
        return listening(progress)
    if callable(progress):
        return _lines_to(_CallbackHandler(progress))
    if not progress or log.handlers:
        return nullcontext()
    if choose("auto", sys.stderr) == "bar":
        return LiveDisplay()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    return _lines_to(handler)


@contextmanager
def _lines_to(handler: logging.Handler) -> Iterator[None]:
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
