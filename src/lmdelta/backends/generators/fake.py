"""A deterministic stand-in for a language model, for tests and dry runs of the pipeline.

`fake:words` answers with words drawn from a vocabulary, echoes a few words of the prompt (so
answers to one prompt are correlated, as real ones are), and mentions `topic_words` in a share
`topic_rate` of its answers. Every answer depends only on its request's seed and prompt.

For kill-and-resume tests, LMDELTA_FAKE_STALL_AFTER=N makes a generator stop answering (sleep
until the process is stopped) once it has answered N requests: the test then interrupts a run
at a known point instead of racing it. It is read from the environment, so answers and their
cache keys do not depend on it.
"""

from __future__ import annotations

import math
import os
import re
import time
from typing import Any

import numpy as np

from lmdelta.backends.protocols import FinishReason, Generation, GenerationRequest, SamplingSettings

VOCAB = (
    "the a it is was and but so then very quite often good simple useful clear warm quick "
    "answer idea way time day people place thing water light home work friend plan food "
    "walk talk read write make keep try start finish help learn share"
).split()


class FakeGenerator:
    def __init__(self, name: str, args: dict[str, Any], identity: dict[str, Any]) -> None:
        self.identity = identity
        self.vocab = list(args.get("vocab", VOCAB))
        self.topic_words = list(args.get("topic_words", []))
        self.topic_rate = float(args.get("topic_rate", 0.0))
        self.length = int(args.get("length", 12))
        self.delay = float(args.get("delay", 0.0))
        self.stall_after = int(os.environ.get("LMDELTA_FAKE_STALL_AFTER", "0")) or None
        self.answered = 0

    def prompt_length(self, request: GenerationRequest) -> int:
        return len(request.prompt.split())

    def generate(self, requests: list[GenerationRequest], settings: SamplingSettings) -> list[Generation]:
        if self.delay:
            time.sleep(self.delay * len(requests))
        while self.stall_after is not None and self.answered >= self.stall_after:
            time.sleep(0.05)
        self.answered += len(requests)
        return [self._answer(request, settings) for request in requests]

    def _answer(self, request: GenerationRequest, settings: SamplingSettings) -> Generation:
        rng = np.random.default_rng(request.seed)
        echoed = [w for w in re.findall(r"[a-z]+", request.prompt.lower()) if len(w) > 3][:3]
        words = echoed + list(rng.choice(self.vocab, size=self.length))
        if self.topic_words and rng.random() < self.topic_rate:
            words.insert(int(rng.integers(len(words))), str(rng.choice(self.topic_words)))
        words = words[: settings.max_new_tokens]
        reason: FinishReason = "length" if len(words) == settings.max_new_tokens else "stop"
        return Generation(text=" ".join(words).capitalize() + ".", n_tokens=len(words), finish_reason=reason)

    def loglik(self, pairs: list[tuple[str, str]]) -> list[tuple[float, int]]:
        """A stand-in likelihood, (sum, words): every word costs log(1/len(vocab)); topic words are cheap
        when this fake mentions them (so a topic-loving fake "prefers" texts about its topic)."""
        base = -math.log(len(self.vocab))
        bonus = math.log(1 + 20 * self.topic_rate) if self.topic_words else 0.0
        topic = {w.lower() for w in self.topic_words}
        return [
            (
                sum(base + (bonus if w.strip(".,!?").lower() in topic else 0.0) for w in answer.split()),
                max(1, len(answer.split())),
            )
            for _, answer in pairs
        ]

    def close(self) -> None:
        pass
