"""The default catalogue: every built-in property with its definition, wording and judge scale.

Each saturating scale's typical value (the amount that maps to judge score 0.5) is a round number
near what an assistant answer of ~200 words shows; it only sets where the [0, 1] map is steepest.
"""

from __future__ import annotations

import math

from lmdelta.properties import diversity, readability, sentiment, structure, style
from lmdelta.properties.base import Property, Scale, Scorer, presence_view, saturating

_SIGNED = (-math.inf, math.inf)


def _count(
    name: str,
    description: str,
    scorer: Scorer,
    noun: str,
    phrase: str | None,
    typical: float = 1.0,
    comparative: str = "",
) -> Property:
    """A count of something, in units named by its noun; a presence view where `phrase` is set."""
    return Property(
        name,
        description,
        "amount",
        noun,
        scorer,
        noun=noun,
        phrase=phrase,
        comparative=comparative,
        scale=saturating(typical),
    )


def _rate(name: str, description: str, scorer: Scorer, noun: str, phrase: str, typical: float = 1.0) -> Property:
    """Occurrences per 100 words, with a presence view (any occurrence)."""
    return Property(
        name, description, "amount", "per 100 words", scorer, noun=noun, phrase=phrase, scale=saturating(typical)
    )


def _score(
    name: str,
    description: str,
    scorer: Scorer,
    unit: str,
    noun: str,
    comparative: str,
    scale: Scale,
    bounds: tuple[float, float],
) -> Property:
    """A bounded or signed score (no presence view): its unit reads after a number, in parentheses."""
    return Property(
        name, description, "amount", unit, scorer, noun=noun, comparative=comparative, scale=scale, bounds=bounds
    )


def _presence(name: str, description: str, scorer: Scorer, phrase: str) -> Property:
    return Property(name, description, "presence", "", scorer, phrase=phrase, bounds=(0.0, 1.0))


LENGTH = (
    _count(
        "words",
        "Number of words (each Chinese or Japanese character counts as one), code included.",
        structure.words,
        "words",
        None,
        200,
        comparative="are longer",
    ),
    _count(
        "sentences",
        "Number of sentences in the prose (outside code blocks); a list item or heading line counts as one.",
        structure.sentence_count,
        "sentences",
        None,
        12,
    ),
    _count(
        "characters",
        "Number of characters (Unicode code points, spaces and line breaks included).",
        structure.count_characters,
        "characters",
        None,
        1200,
        comparative="are longer in characters",
    ),
)
PUNCTUATION = (
    _count(
        "exclamation_marks",
        "Number of exclamation marks (! or ！) outside code blocks.",
        structure.exclamations,
        "exclamation marks",
        "uses exclamation marks",
    ),
    _count(
        "question_marks",
        "Number of question marks (?, ？ or ؟) outside code blocks.",
        structure.questions,
        "question marks",
        "uses question marks",
    ),
    _count(
        "ellipses",
        "Number of ellipses (three or more dots, or …) outside code blocks.",
        structure.ellipses,
        "ellipses",
        "uses ellipses",
    ),
)
MARKDOWN = (
    _count(
        "bold",
        "Number of markdown bold spans (**text** or __text__) outside code blocks.",
        structure.bold,
        "bold spans",
        "uses bold text",
        2,
        comparative="use more bold text",
    ),
    _count(
        "headers",
        "Number of markdown heading lines (# to ###### then a space) outside code blocks.",
        structure.headers,
        "markdown headers",
        "uses markdown headers",
        2,
    ),
    _count(
        "bullet_points",
        "Number of bulleted list items (a line starting with -, *, + or • then a space) outside code blocks.",
        structure.bullets,
        "bullet points",
        "uses bullet lists",
        4,
    ),
    _count(
        "numbered_items",
        "Number of numbered list items (a line starting with 1. or 1) then a space) outside code blocks.",
        structure.numbered,
        "numbered list items",
        "uses numbered lists",
        4,
    ),
    _count(
        "code_blocks",
        "Number of fenced code blocks (``` or ~~~).",
        structure.code_blocks,
        "code blocks",
        "includes code blocks",
    ),
    _count(
        "tables",
        "Number of markdown tables (counted by their |---|---| delimiter rows) outside code blocks.",
        structure.tables,
        "tables",
        "includes tables",
    ),
    _count(
        "paragraphs",
        "Number of paragraphs: blocks of text separated by blank lines, a code block counting as one.",
        structure.paragraphs,
        "paragraphs",
        None,
        4,
    ),
    _count(
        "line_breaks",
        "Number of line breaks inside the text (leading and trailing ones ignored), code included.",
        structure.line_breaks,
        "line breaks",
        "spans several lines",
        8,
    ),
    _count(
        "emoji",
        "Number of emoji; a skin-tone, ZWJ (family, profession) or flag sequence counts as one.",
        structure.emoji,
        "emoji",
        "uses emoji",
    ),
)
VOICE = (
    _rate(
        "first_person",
        "First-person singular pronouns (I, me, my, mine, myself) per 100 words.",
        style.first_person,
        "first-person pronouns",
        "speaks in the first person",
    ),
    _rate(
        "second_person",
        "Second-person pronouns (you, your, yours, yourself, yourselves) per 100 words.",
        style.second_person,
        "second-person pronouns",
        "addresses the reader as you",
        2,
    ),
    _presence(
        "question_to_user",
        "Whether one of the last two sentences of the prose contains a question mark.",
        style.question_to_user,
        "ends by asking the user a question",
    ),
    _rate(
        "hedging",
        "Hedging words and phrases (might, perhaps, possibly, it seems, I think, …) per 100 words.",
        style.hedging,
        "hedging words",
        "hedges",
    ),
    _rate(
        "certainty",
        "Certainty markers (definitely, certainly, clearly, of course, without a doubt, …) per 100 words.",
        style.certainty,
        "certainty markers",
        "uses certainty markers",
        0.5,
    ),
    _count(
        "apologies",
        "Number of apologies (sorry, I apologize, my apologies, …).",
        style.apologies,
        "apologies",
        "apologises",
    ),
    _presence(
        "refusal",
        "Whether the text refuses in the first person (I can't help with, I'm not able to, I must decline, …).",
        style.refusal,
        "refuses",
    ),
    _presence(
        "ai_disclaimer",
        "Whether the text disclaims being an AI or its limits (as an AI, as a language model, "
        "I don't have personal opinions, my training data, …).",
        style.ai_disclaimer,
        "adds an AI disclaimer",
    ),
    _count(
        "politeness",
        "Number of politeness formulas (please, thank you, feel free to, let me know if, I hope this helps, …).",
        style.politeness,
        "politeness formulas",
        "uses politeness formulas",
    ),
    _count(
        "enthusiasm",
        "Number of enthusiasm or flattery markers (great question, happy to help, what a great, wonderful, …).",
        style.enthusiasm,
        "enthusiasm markers",
        "shows enthusiasm",
    ),
)
_WINDOW = diversity.WINDOW
TONE_AND_VOCABULARY = (
    _score(
        "sentiment",
        "Mean VADER compound sentiment of the prose sentences: signed, from -1 (most negative) to 1 "
        "(most positive); undefined (NaN) for a text without sentences.",
        sentiment.sentiment,
        "(VADER compound, -1 to 1)",
        "positive sentiment",
        "are more positive",
        Scale("linear", -1.0, 1.0),
        (-1.0, 1.0),
    ),
    _score(
        "readability",
        "Flesch reading ease of the prose's Latin-script words: signed, about 0-100, higher is "
        "easier; undefined (NaN) for a text without Latin-script words.",
        readability.flesch_reading_ease,
        "(Flesch reading ease, higher is easier)",
        "readability",
        "are easier to read",
        Scale("logistic", 50.0, 15.0),
        _SIGNED,
    ),
    _score(
        "lexical_diversity",
        f"Moving-average type-token ratio: the mean share of distinct words in every window of "
        f"{_WINDOW} consecutive words (0 to 1; for a shorter text, over all its words); undefined (NaN) for a text "
        "without words.",
        diversity.mattr,
        f"(distinct words per {_WINDOW}-word window, 0 to 1)",
        "lexical diversity",
        "use more varied vocabulary",
        Scale("linear", 0.0, 1.0),
        (0.0, 1.0),
    ),
    _score(
        "repetition",
        "Share of the text's word 3-grams that already occurred earlier in it (0 to 1); undefined "
        "(NaN) for a text of fewer than 3 words.",
        diversity.repeated_trigrams,
        "(share of repeated word 3-grams)",
        "repetition",
        "repeat themselves more",
        Scale("linear", 0.0, 1.0),
        (0.0, 1.0),
    ),
)

CATALOGUE: tuple[Property, ...] = (*LENGTH, *PUNCTUATION, *MARKDOWN, *VOICE, *TONE_AND_VOCABULARY)
"""The default properties, in the order a report lists them."""

PRESENCE_VIEWS: tuple[Property, ...] = tuple(presence_view(p) for p in CATALOGUE if p.kind == "amount" and p.phrase)
"""has_<name> for every amount with a natural presence reading ("uses exclamation marks")."""
