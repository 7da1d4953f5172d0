"""What every judge is handed: the validation texts, their embeddings and prompt layout, and the way
to reach an LLM judge. Its own module so that each judge can name it and judges/__init__ can import each judge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lmdelta.llm.types import CallResult, ChatRequest
from lmdelta.properties.values import Values

# A batch of requests to an LLM role and the parser of its answers → [(CallResult, parsed)] in order
# (LLMSession.asker makes one).
Ask = Callable[[list[ChatRequest], Callable[[str], Any]], list[tuple[CallResult, Any]]]


class PromptLayout(Protocol):
    """Where each text sits: its prompt and side, and the prompts of a group (a ValidationSet)."""

    prompt_of_row: np.ndarray
    is_b: np.ndarray

    def scope(self, group: str, inside: bool = True) -> np.ndarray: ...


@dataclass(frozen=True)
class JudgeInput:
    """The texts to score and what judges need beyond the hypothesis; `llm_mode` is the LLM judge's
    way of asking ("unitary", "pairwise" or "presence"), `ask` None where no LLM judge is configured. `texts` may
    decode as they are read (sampletable.TextRows): judges index them, or read them in slices. `values`: the texts'
    property values, kept by the caller for later readers (None: the property judge keeps its own)."""

    texts: Sequence[str]
    vectors: np.ndarray
    layout: PromptLayout | None = None
    llm_mode: str = "unitary"
    ask: Ask | None = None
    temperature: float = 0.0
    values: Values | None = None
