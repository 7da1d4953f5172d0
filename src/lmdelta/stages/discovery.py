"""Discovery answers in rounds (propose.first_share < 1, lmdelta.search.grows): the generate stage answers
the first round's discovery prompts; the propose stage answers each later round's before that round
proposes, appended to its own store (keyed like generate's, so answers a full run stored are reused)
and embedded through the shared cache. A round that finds nothing new ends the loop, and the
discovery prompts of the rounds after it are never answered.

Resumable like the validation rounds: answers are appended batch by batch, and a rerun reads back
what is stored, so nothing is generated twice.
"""

from __future__ import annotations

import numpy as np

from lmdelta import search
from lmdelta.config import RunConfig
from lmdelta.pairdata import PairData
from lmdelta.records import Sample
from lmdelta.rundir import DISCOVERY_ITEMS, ITEMS
from lmdelta.stages import embed, generate
from lmdelta.stages.contract import StageContext


class DiscoveryAnswers:
    """The main comparison as it grows round by round."""

    def __init__(self, ctx: StageContext, config: RunConfig, base: PairData) -> None:
        self.ctx, self.config, self.base = ctx, config, base
        self.schedule = search.discovery_schedule(base.prompts, config)
        self.samples: list[Sample] = []
        self.vectors = np.zeros((0, base.vectors.shape[-1]), dtype=base.vectors.dtype)
        self.answered = set(base.samples.prompt_ids())
        self.tokens = {"a": 0, "b": 0}
        self.generated = 0  # answers generated here (not read back from a store)

    def pair(self, number: int) -> PairData:
        """The comparison with every discovery prompt of round `number` answered (generating what is missing)."""
        due = self.schedule[min(number, len(self.schedule)) - 1]
        fresh = [p for p in due if p.id not in self.answered]
        if fresh:
            items, known = self.ctx.output(DISCOVERY_ITEMS), self.ctx.input("generate", ITEMS)
            found, counts = generate.answer(self.ctx, self.config, fresh, None, items, known)
            self.generated += sum(int((counts.get(side) or {}).get("generated", 0)) for side in ("a", "b"))
            vectors = embed.embed_texts(self.ctx, self.config, [s.text for s in found])
            self.vectors = np.concatenate([self.vectors, vectors.astype(self.vectors.dtype)])
            self.samples += found
            self.answered.update(p.id for p in fresh)
            for sample in found:
                self.tokens[sample.side] += sample.n_tokens
        base = self.base
        vectors = np.concatenate([base.vectors, self.vectors]) if self.samples else base.vectors
        return PairData(base.prompts, base.samples + self.samples, vectors, base.groups, base.labels)

    def counts(self) -> dict[str, object]:
        """What the rounds answered: discovery prompts (by generate and here) and the tokens generated here."""
        discovery = {p.id for p in self.base.prompts if p.split == "discovery"}
        return {
            "prompts_answered": len(discovery & self.answered),
            "prompts": len(discovery),
            "tokens": dict(self.tokens),
            "generated": self.generated,
        }
