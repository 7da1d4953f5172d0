"""The exceptions lmdelta raises on purpose, each with a message that says what to do next.

    LmdeltaError            base: a problem the user can fix; the CLI prints it without a traceback
    ├── ConfigError         a config file, field or --set override is invalid
    ├── ModelNotFoundError  a model string resolves to nothing (with near matches)
    ├── PromptBankError     a prompt bank is missing, empty, malformed or has duplicate ids
    ├── RunDirError         a run directory is unusable (other tool version, not a run directory)
    ├── DependencyError     an optional package is missing (names the pip extra)
    └── StageError          a stage could not finish; finished work is kept
"""

from __future__ import annotations


class LmdeltaError(Exception):
    """A problem with the user's input or environment, with a fix.

    `str(err)` is one paragraph: what is wrong, then what to do about it.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} {fix}")


class ConfigError(LmdeltaError):
    """A config file, field or override is invalid."""


class ModelNotFoundError(LmdeltaError):
    """A model string does not name a model that can be loaded here."""


class PromptBankError(LmdeltaError):
    """A prompt bank cannot be used as it is."""


class RunDirError(LmdeltaError):
    """A run directory cannot be used for this run."""


class DependencyError(LmdeltaError):
    """An optional dependency is missing."""


class StageError(LmdeltaError):
    """A stage could not finish."""
