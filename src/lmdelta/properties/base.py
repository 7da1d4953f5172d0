"""The Property record: a named, described scorer of texts, its fixed map into judge scores in [0, 1],
and the presence view ("uses exclamation marks") derived from an amount ("exclamation marks")."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from lmdelta.properties.batch import Texts, as_texts

Kind = Literal["presence", "amount"]
Scorer = Callable[[Texts], np.ndarray]
"""Texts in (a tuple of str with shared analyses, see batch), one float per text out."""
NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
PRESENCE_PREFIX = "has_"


@dataclass(frozen=True)
class Scale:
    """A fixed, monotone (non-decreasing) map of raw values into [0, 1], the same for every text and
    every round: it never looks at the other values being scored. NaN stays NaN.

    identity    presence values 0/1 as they are
    saturating  x / (x + a) for x >= 0: 0 at 0, 0.5 at the typical value a, towards 1 as x grows
    linear      (x - a) / (b - a) clipped to [0, 1], for values with known bounds a..b
    logistic    1 / (1 + exp(-(x - a) / b)), for unbounded signed values centred near a
    """

    kind: Literal["identity", "saturating", "linear", "logistic"]
    a: float = 0.0
    b: float = 1.0

    def __post_init__(self) -> None:
        if self.kind == "saturating" and not self.a > 0:
            raise ValueError(f"a saturating scale needs a typical value a > 0, not {self.a}")
        if self.kind == "linear" and not self.b > self.a:
            raise ValueError(f"a linear scale needs bounds a < b, not {self.a}..{self.b}")
        if self.kind == "logistic" and not self.b > 0:
            raise ValueError(f"a logistic scale needs a width b > 0, not {self.b}")

    def __call__(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.kind == "saturating":
                clipped = np.maximum(x, 0.0)
                mapped = np.where(np.isposinf(clipped), 1.0, clipped / (clipped + self.a))
            elif self.kind == "linear":
                mapped = (x - self.a) / (self.b - self.a)
            elif self.kind == "logistic":
                mapped = 1.0 / (1.0 + np.exp(-(x - self.a) / self.b))
            else:
                mapped = x
        return np.where(np.isnan(x), np.nan, np.clip(mapped, 0.0, 1.0))


IDENTITY = Scale("identity")


def saturating(typical: float) -> Scale:
    """x / (x + typical): a count or length at its typical value scores 0.5."""
    return Scale("saturating", typical)


@dataclass(frozen=True)
class Property:
    """A named, described, interpretable property of a text and its scorer.

    kind "presence": the scorer returns 1.0 when a text has the property, else 0.0; `phrase` says it
    as a verb phrase about a side ("ends by asking the user a question").
    kind "amount": the scorer returns a real number per text in `bounds` (non-negative unless the
    bounds say otherwise: sentiment and readability are signed), measured in `unit`; `comparative`
    says "more of it" about a side's answers ("are longer"); `phrase`, when set, names the presence
    view (`presence_view`): the text has a non-zero amount.
    NaN only where the value is undefined for a text (e.g. readability of a text with no words).
    """

    name: str
    description: str
    kind: Kind
    unit: str
    scorer: Scorer = field(repr=False, compare=False)
    noun: str = ""
    phrase: str | None = None
    comparative: str = ""
    scale: Scale = IDENTITY
    bounds: tuple[float, float] = (0.0, math.inf)

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"property name {self.name!r} is not snake_case (a-z, 0-9, single underscores)")
        if self.kind not in ("presence", "amount"):
            raise ValueError(f"property {self.name}: kind must be 'presence' or 'amount', not {self.kind!r}")
        if self.kind == "presence" and (not self.phrase or self.scale != IDENTITY or self.bounds != (0.0, 1.0)):
            raise ValueError(f"presence property {self.name} needs a phrase, the identity scale and bounds (0, 1)")
        if self.kind == "amount" and not (self.noun or self.comparative):
            raise ValueError(f"amount property {self.name} needs a noun or a comparative")
        if self.kind == "amount" and self.phrase and not self.noun:
            raise ValueError(f"amount property {self.name} has a presence phrase, so it needs a noun as well")

    @property
    def more(self) -> str:
        """What a side's answers do when they have more of the amount: "are longer", "have more emoji"."""
        return self.comparative or f"have more {self.noun}"

    def score(self, texts: Iterable[str]) -> np.ndarray:
        """One float per text (see the class docstring), checked for shape and, for presence, values.
        Pass a batch.Texts to share tokenisation and sentence splitting across properties."""
        batch = as_texts(texts)
        values = batch.memo(self.scorer, lambda: self.scorer(batch))
        if values.shape != (len(batch),):
            raise ValueError(f"property {self.name} returned shape {values.shape} for {len(batch)} texts")
        if self.kind == "presence" and not np.all(np.isnan(values) | (values == 0.0) | (values == 1.0)):
            raise ValueError(f"presence property {self.name} returned values other than 0, 1 and NaN")
        return values.copy()

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """Raw values of this property mapped into judge scores in [0, 1] by its fixed `scale`."""
        return self.scale(values)

    def judge_scores(self, texts: Iterable[str]) -> np.ndarray:
        """The texts' judge scores in [0, 1]: `to_unit(score(texts))`."""
        return self.to_unit(self.score(texts))


def presence_view(prop: Property) -> Property:
    """The presence property "has a non-zero amount" of an amount property with a phrase: named
    has_<name>; a text whose amount is 0 or undefined (NaN) does not have it."""
    if prop.kind != "amount" or not prop.phrase:
        raise ValueError(f"property {prop.name} has no presence view (it is not an amount with a phrase)")
    amount = prop.scorer

    def present(batch: Texts) -> np.ndarray:
        return (batch.memo(amount, lambda: amount(batch)) > 0).astype(float)

    counted = prop.description[0].lower() + prop.description[1:].rstrip(".")
    return replace(
        prop,
        name=PRESENCE_PREFIX + prop.name,
        kind="presence",
        unit="",
        scorer=present,
        description=f"Whether the text has any {prop.noun} (counted as in {prop.name}: {counted}).",
        comparative="",
        scale=IDENTITY,
        bounds=(0.0, 1.0),
    )
