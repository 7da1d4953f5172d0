"""The records that flow between stages. Frozen, singular, JSON round-trippable."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Side = Literal["a", "b"]
SIDES: tuple[Side, Side] = ("a", "b")
Split = Literal["discovery", "validation", "confirmation"]
Unit = Literal["cluster", "text"]


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    group: str | None = None
    split: Split | None = None
    unit: Unit | None = None  # corpus mode: the id names a cluster of texts or one text (None: a prompt)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.unit is None:  # a prompt's record (and so a bank's fingerprint) as before the field existed
            del data["unit"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prompt:
        return cls(id=data["id"], text=data["text"], group=data.get("group"), split=data.get("split"),
                   unit=data.get("unit"))


@dataclass(frozen=True)
class Sample:
    """One model's answer to one prompt. `key` is the content address of the request."""

    prompt_id: str
    side: Side
    index: int
    text: str
    n_tokens: int
    finish_reason: Literal["stop", "length"]
    seed: int
    key: str

    @property
    def id(self) -> str:
        return f"{self.side}:{self.prompt_id}:{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Hypothesis:
    """A proposed difference, made from discovery prompts only; `judge` says how to score a text."""

    id: str
    group: str
    direction: Literal["b>a", "a>b"]
    description: str
    proposer: str
    judge: Literal["keyword", "embedding", "llm"]
    keywords: tuple[str, ...] = ()
    property: str | None = None  # the hypothesis stated without either side, for blind judges
    prototype: tuple[float, ...] | None = None
    evidence: dict[str, list[str]] | None = None
    provenance: dict[str, Any] | None = None
    order: int = 0

    def content_key(self) -> list[Any]:
        """What the hypothesis claims and how it is scored, without its id or place in the proposal
        order: the same hypothesis gets the same key whatever else was proposed. The side-free
        property stands for the description when there is one (the description names the sides'
        labels); the prototype is rounded as to_dict writes it, so one read back from disk keys the same."""
        claim = self.property if self.property is not None else self.description
        return [self.group, self.direction, self.judge, list(self.keywords), claim, _rounded(self.prototype)]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keywords"] = list(self.keywords)
        data["prototype"] = _rounded(self.prototype)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hypothesis:
        fields = {name: data.get(name) for name in cls.__dataclass_fields__ if name in data}
        fields["keywords"] = tuple(data.get("keywords") or ())
        fields["prototype"] = None if data.get("prototype") is None else tuple(data["prototype"])
        return cls(**fields)


def _rounded(prototype: tuple[float, ...] | None) -> list[float] | None:
    return None if prototype is None else [round(x, 6) for x in prototype]
