"""The corpus export artefacts the prompts stage recorded (literal escape sequences, pre-tokenised text), read for
the report and the terminal. Read defensively: a run without them, or from another version, has none."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from lmdelta.rundir import ARTEFACTS, RunDir

logger = logging.getLogger(__name__)
STAGE = "prompts"  # the stage that checks the corpus and records what looks like an export artefact


def read_data_warnings(run_dir: Path) -> list[str]:
    """The warning of each artefact in the prompts stage's artefacts.jsonl (sources.corpus_checks.TextArtefact rows:
    their `message`), once each, in file order; none when the file is missing or cannot be read."""
    path = RunDir(run_dir).stage_dir(STAGE) / ARTEFACTS
    rows = _rows(path) if path.is_file() else []
    return list(dict.fromkeys(text for text in map(_message, rows) if text))


def _rows(path: Path) -> list[Any]:
    try:
        # "\n" only: json.dumps leaves U+2028 and U+0085 unescaped, and str.splitlines() would cut a row there
        return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        logger.warning("%s is not readable JSON lines; the report shows no data warnings from it", path)
        return []


def _message(row: Any) -> str | None:
    message = row.get("message") if isinstance(row, dict) else None
    return message.strip() or None if isinstance(message, str) else None
