"""lmdelta: find, in plain language, how two language models behave differently.

Every finding is backed by a test on held-out prompts with the false-discovery rate
controlled. Heavy dependencies are imported lazily, inside the functions that need them.

    import lmdelta
    result = lmdelta.compare("answers.csv", text_columns=["model_x", "model_y"])

The Python API (docs/python-api.md) lives in lmdelta.api; the names below are read from it on first
use (PEP 562), so importing lmdelta (and `lmdelta --help`) loads nothing heavy.
"""

from typing import Any

__version__ = "0.1.0"

# Run directories record this; a run directory with another format is refused, not guessed at.
RUN_FORMAT = 1

API = ("Comparison", "Report", "compare", "open_run")
__all__ = ["RUN_FORMAT", "__version__", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        from lmdelta import api  # facade: the API loads the pipeline, so it is read on first use

        return getattr(api, name)
    raise AttributeError(f"module 'lmdelta' has no attribute {name!r}")
