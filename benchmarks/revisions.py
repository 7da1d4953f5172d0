"""Another revision's source tree, for benchmarks that run a baseline beside the current code."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def baseline_source(revision: str, scratch: Path) -> Path:
    """The src folder of `revision` of this repository, extracted once under `scratch` (git archive; the checkout
    itself is left alone). Run a variant on it with PYTHONPATH set to the folder returned."""
    target = Path(scratch) / f"baseline-{revision}"
    if not (target / "src" / "lmdelta").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", revision, "src"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"
