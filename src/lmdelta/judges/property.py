"""The property judge: a text property from lmdelta.properties scores each text itself, by its fixed
monotone map into [0, 1] (Property.to_unit of its raw value). Free to compute, so every text is scored.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from lmdelta.judges.inputs import JudgeInput
from lmdelta.properties import Property, build
from lmdelta.properties.values import Values
from lmdelta.records import Hypothesis


def measure_of(hypothesis: Hypothesis) -> Property:
    """The property a hypothesis names (Hypothesis.measure, and measure_spec for a user property)."""
    if hypothesis.measure is None:
        raise ValueError(f"hypothesis {hypothesis.id} is judged by a property but names none (measure is unset)")
    if hypothesis.measure_spec is None:
        return build(hypothesis.measure)
    return _user_property(hypothesis.measure, json.dumps(hypothesis.measure_spec, sort_keys=True))


@lru_cache(maxsize=256)
def _user_property(name: str, spec: str) -> Property:
    """A user property built once per (name, spec as JSON): every hypothesis and reader naming it gets the same
    scorer, so its values are scored once (properties.Values keeps them per scorer). Properties are immutable."""
    return build(name, json.loads(spec))


def is_presence(hypothesis: Hypothesis) -> bool:
    """Whether the hypothesis's property is a presence (scores 0/1), so its findings get prevalences."""
    return measure_of(hypothesis).kind == "presence"


def score(hypotheses: list[Hypothesis], inputs: JudgeInput, judged: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The Judge: each hypothesis's property in [0, 1] for every text (`judged` is ignored: it is free). The texts
    are scored a part at a time for all the hypotheses together, into `inputs.values` when the caller keeps them
    (validation reads the raw values again for the finding)."""
    values = inputs.values if inputs.values is not None else Values(inputs.texts)
    measures = [measure_of(h) for h in hypotheses]
    return [prop.to_unit(found) for prop, found in zip(measures, values.of(measures))]
