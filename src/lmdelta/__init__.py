"""lmdelta: find, in plain language, how two language models behave differently.

Every finding is backed by a test on held-out prompts with the false-discovery rate
controlled. Heavy dependencies are imported lazily, inside the functions that need them.
"""

__version__ = "0.1.0"

# Run directories record this; a run directory with another format is refused, not guessed at.
RUN_FORMAT = 1
