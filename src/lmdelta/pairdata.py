"""The data one comparison works on: prompts with splits and groups, both sides' samples, vectors.

The main comparison is a against b; the null control is the same data with a and b swapped at
random per prompt (STATISTICS.md §6), where every difference the pipeline validates is false.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from lmdelta import heap
from lmdelta.hashing import child_seed
from lmdelta.properties.batch import Texts
from lmdelta.records import Prompt
from lmdelta.sampletable import SampleTable

VECTOR_CHUNK = 65_536  # rows of vectors copied out of the mapped file between two releases of its pages
NULL_LABELS = {"a": "relabelled a", "b": "relabelled b"}


@dataclass
class PairData:
    prompts: list[Prompt]
    samples: SampleTable  # any sequence of Sample given is made a table
    vectors: np.ndarray
    groups: dict[str, str]
    labels: dict[str, str] = field(default_factory=lambda: {"a": "a", "b": "b"})
    # Per sample, how much it counts for the offline proposers (None: all 1). Later search rounds weight
    # down the discovery texts earlier hypotheses already explain (lmdelta.diversity).
    weights: np.ndarray | None = None
    # Analyses of the same texts that every view of these samples shares (a search round's weighted view and
    # the null control keep the texts, so they keep this dict): what is costly to compute is computed once.
    shared: dict[object, object] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.samples = SampleTable.of(self.samples)

    def texts(self, rows: np.ndarray) -> Texts:
        """The rows' texts as one Texts batch, the same object (with its scored properties) for every view
        of these samples: the property and cluster proposers of the main comparison and of the null control
        score the discovery answers once between them, not four times."""
        key = ("texts", len(self.samples), np.asarray(rows, dtype=np.int64).tobytes())
        found = self.shared.get(key)
        if not isinstance(found, Texts):
            found = self.shared[key] = Texts(self.samples.texts(rows))
        return found

    def strings(self, rows: np.ndarray) -> list[str]:
        """The rows' texts. When every row is a discovery answer they are the discovery batch's strings (`texts`),
        which the proposers and the search loop share: the table decodes a new string at every read, and four
        readers of 600,000 discovery answers each would hold their own 0.2 GB of them."""
        rows = np.asarray(rows, dtype=np.int64)
        if not rows.size:
            return []
        found = self._discovery_position[rows]
        if found.min() < 0:
            return self.samples.texts(rows)
        batch = self.texts(self.rows("discovery"))
        return [batch[i] for i in found.tolist()]

    @cached_property
    def _discovery_position(self) -> np.ndarray:
        """Each sample's place among the discovery rows (-1: not a discovery answer)."""
        discovery = self.rows("discovery")
        position = np.full(len(self.samples), -1, dtype=np.int64)
        position[discovery] = np.arange(len(discovery))
        return position

    def release_analyses(self) -> None:
        """The shared text batches keep their scored properties and drop their token-level analyses (the
        proposers call this once every one of them has scored what it needs)."""
        for found in self.shared.values():
            if isinstance(found, Texts):
                found.drop_analyses()

    def vectors_of(self, rows: np.ndarray) -> np.ndarray:
        """The rows' vectors, copied out of the (memory-mapped) vectors VECTOR_CHUNK rows at a time, the pages read for
        each chunk let go before the next: at 2,000,000 answers the file is 0.5 GB, and the discovery rows touch nearly
        every page of it (rows in order touch one stretch of the file per chunk)."""
        rows = np.asarray(rows, dtype=np.intp)
        found = np.empty((len(rows), self.vectors.shape[-1]), dtype=self.vectors.dtype)
        for start in range(0, len(rows), VECTOR_CHUNK):
            found[start : start + VECTOR_CHUNK] = self.vectors[rows[start : start + VECTOR_CHUNK]]
            heap.release_mapped(self.vectors)
        return found

    def weight(self, rows: np.ndarray) -> np.ndarray:
        """The rows' weights (all 1 unless a search round set them)."""
        return np.ones(len(rows)) if self.weights is None else self.weights[np.asarray(rows, dtype=int)]

    @cached_property
    def prompt_by_id(self) -> dict[str, Prompt]:
        return {p.id: p for p in self.prompts}

    def rows(self, split: str, group: str | None = None) -> np.ndarray:
        """Indices of samples whose prompt is in `split` (and `group`, unless None or "all")."""
        splits, groups = self._sample_labels
        keep = splits == split
        if group not in (None, "all"):
            keep &= groups == group
        return np.flatnonzero(keep).astype(int)

    @cached_property
    def _sample_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Each sample's prompt split ("" for a prompt not in this view) and group, read once: `rows` is asked
        per scope, split and search round, and a loop over every sample each time grows with the run."""
        (units, codes), prompts = self.samples.prompt_index(), self.prompt_by_id
        splits = np.array([getattr(prompts.get(p), "split", "") for p in units], dtype=object)
        groups = np.array([self.groups.get(p) for p in units], dtype=object)
        return splits[codes], groups[codes]

    def group_names(self) -> list[str]:
        return sorted(set(self.groups.values()))

    def shares_prompts(self) -> bool:
        """True when some prompt has answers from both sides (else the corpora are unaligned)."""
        return bool(self.samples.paired_prompts().size)


def null_pair(data: PairData, seed: int) -> PairData:
    """The null control: each prompt's answers swap sides on a fair coin, all of them together; the
    coin is a hash of the seed and the prompt's id, so it does not depend on which other prompts exist.

    A prompt keeps its pairing and its k answers per side, so the null control runs the same tests
    as the main comparison at any k; each prompt's b − a difference keeps its size and gets a random
    sign, so a real difference averages out while a prompt × model interaction stays. Discovery and
    validation prompts draw their own coins, so what is proposed says nothing about what is tested.
    Unaligned corpora make each text its own prompt, so there each text swaps on its own coin (and a
    cluster of texts, when it is one unit, swaps whole, keeping the unaligned test's unit intact).
    """
    units, codes = data.samples.prompt_index()
    swapped = np.array([_coin(seed, unit) for unit in units], dtype=bool)
    samples = data.samples.with_swapped(swapped[codes] if len(codes) else np.zeros(0, dtype=bool))
    return PairData(data.prompts, samples, data.vectors, data.groups, labels=dict(NULL_LABELS), shared=data.shared)


def held_out_view(data: PairData, split: str = "confirmation") -> PairData:
    """The same answers with `split`'s prompts in the validation role and no other prompt in any role.

    The validation code tests whatever the validation prompts are; on this view it re-estimates on
    prompts that played no part in proposing or selecting a hypothesis (STATISTICS.md §3). Samples
    and vectors are shared, row for row; answers to prompts of other splits are simply not reached.
    """
    return replace(
        data, prompts=[replace(prompt, split="validation") for prompt in data.prompts if prompt.split == split]
    )


def split_prompts(data: PairData, split: str) -> int:
    """How many prompts of `split` have an answer in the data (of either side)."""
    units, codes = data.samples.prompt_index()
    answered = {units[c] for c in np.unique(codes).tolist()}
    return sum(prompt.split == split and prompt.id in answered for prompt in data.prompts)


def _coin(seed: int, unit: str) -> bool:
    """A fair coin for one unit from the run seed (any int) and the unit's id alone, so a prompt
    missing from the data, or one added, leaves every other prompt's coin where it was."""
    return child_seed(seed, "null control", unit) % 2 == 1
