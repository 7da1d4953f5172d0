"""The run directory's side files (config.yaml, summary.json, manifest.json, the weight analysis's) read as the
report's views need them: a missing or damaged file reads as empty, so a view never fails on one; the log says which."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from lmdelta.errors import RunDirError
from lmdelta.rundir import WEIGHTS, WEIGHTS_SUMMARY, read_jsonl

logger = logging.getLogger(__name__)


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        logger.warning("%s is not valid YAML; the report ignores it", path)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def load_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        logger.warning("%s is not valid JSON; the report ignores it", path)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def weights_files(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The weight analysis's summary and rows, from the run directory's root where the weights stage (and
    `lmdelta weights --run-dir`) writes them; ({}, []) without a summary, no rows when weights.jsonl is damaged."""
    summary = load_json(run_dir / WEIGHTS_SUMMARY)
    if not summary:
        return {}, []
    try:
        rows = [row for row in read_jsonl(run_dir / WEIGHTS) if isinstance(row, dict)]
    except (RunDirError, UnicodeDecodeError):
        logger.warning("%s is damaged; the report's weights section shows the summary only", run_dir / WEIGHTS)
        rows = []
    return summary, rows
