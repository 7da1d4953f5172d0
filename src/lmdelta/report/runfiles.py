"""The run directory's side files (config.yaml, summary.json, manifest.json) read as the report's views need them:
a missing or damaged file reads as empty, so a view never fails on one; the log says which."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

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
