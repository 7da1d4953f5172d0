"""Interpretable text properties (length, markdown, hedging, sentiment, …): named, described
scorers that run offline and vectorised, for proposers to compare two sides and judges to score texts.

    prop = get("exclamation_marks")
    values = prop.score(texts)            # raw: counts, lengths, rates, scores (NaN where undefined)
    judged = prop.to_unit(values)         # fixed monotone map into [0, 1] for a judge
    describe(prop, "b", "a", contrast(prop, b_values, a_values))
        → "b's answers have more exclamation marks: median 2 vs 0 exclamation marks"

    table = score_all(CATALOGUE, texts)   # one Texts batch: tokens and sentences computed once
    build("has_links", spec)              # what a hypothesis names (Hypothesis.measure, measure_spec)

Amount properties with a natural yes/no reading have a presence view named has_<name>
("has_exclamation_marks": "uses exclamation marks"); CATALOGUE holds the amounts, PRESENCE_VIEWS
the views, and `get` and a Registry find both. Scoring many properties property by property over
a plain list re-tokenises it each time: pass one Texts(texts) to all of them, or use score_all.
"""

from __future__ import annotations

from lmdelta.properties.base import Property, Scale, presence_view, saturating
from lmdelta.properties.batch import Texts
from lmdelta.properties.catalogue import CATALOGUE, PRESENCE_VIEWS
from lmdelta.properties.registry import Registry, build, get, score_all, select, with_user_properties
from lmdelta.properties.render import Contrast, contrast, describe, summary_statistic
from lmdelta.properties.user import from_spec

__all__ = [
    "CATALOGUE",
    "PRESENCE_VIEWS",
    "Contrast",
    "Property",
    "Registry",
    "Scale",
    "build",
    "contrast",
    "describe",
    "from_spec",
    "get",
    "presence_view",
    "saturating",
    "score_all",
    "select",
    "summary_statistic",
    "Texts",
    "with_user_properties",
]
