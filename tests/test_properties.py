"""Text properties (issue 13): every built-in scorer on hand-written texts with known values, in
several scripts, on empty, whitespace-only and very long texts; batches agree with one-by-one
scoring; the [0, 1] judge scale is monotone and data-independent; user regex and lexicon
properties and their errors; the registry; the sentence renderer. VADER and the readability
formula are checked by sign and order only, never by their exact decimals."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from lmdelta.errors import ConfigError, DependencyError
from lmdelta.properties import (
    CATALOGUE,
    PRESENCE_VIEWS,
    Contrast,
    Property,
    Registry,
    Scale,
    contrast,
    describe,
    from_spec,
    get,
    presence_view,
    saturating,
    score_all,
)
from lmdelta.properties.batch import Texts
from lmdelta.properties.readability import syllables
from lmdelta.properties.text import sentences, tokens

ALL = (*CATALOGUE, *PRESENCE_VIEWS)
NAN = math.nan


def one(name: str, text: str) -> float:
    return float(get(name).score([text])[0])


def same(value: float, expected: float) -> bool:
    return (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


# --- the catalogue -------------------------------------------------------------------------------


def test_catalogue_entries_are_well_formed():
    names = [p.name for p in ALL]
    assert len(names) == len(set(names))
    for prop in ALL:
        assert prop.description.endswith((".", ")")) and len(prop.description) > 20, prop.name
        assert get(prop.name) is prop
        if prop.kind == "presence":
            assert prop.phrase and prop.unit == "" and prop.bounds == (0.0, 1.0)
        else:
            assert prop.more and prop.unit
    assert {p.name for p in PRESENCE_VIEWS} == {f"has_{p.name}" for p in CATALOGUE if p.kind == "amount" and p.phrase}


MIXED = [
    "Hello! I think this might work... **Bold** text. Would you like more? 😀",
    "",
    "   \n\t ",
    "你好世界。我是中文！",
    "مرحبا بالعالم؟ كيف حالك",
    "नमस्ते दुनिया, यह एक परीक्षण है।",
    "# Title\n\n- a\n- b\n\n```python\n# comment\nx != 1\n```\n",
    "I'm sorry, but I can't help with that.",
]


@pytest.mark.parametrize("prop", ALL, ids=lambda p: p.name)
def test_every_property_scores_a_mixed_batch_within_its_bounds(prop):
    values = prop.score(MIXED)
    assert values.shape == (len(MIXED),) and values.dtype == float
    low, high = prop.bounds
    finite = values[~np.isnan(values)]
    assert np.all((finite >= low) & (finite <= high))
    if prop.kind == "presence":
        assert not np.isnan(values).any() and set(values) <= {0.0, 1.0}


@pytest.mark.parametrize("prop", ALL, ids=lambda p: p.name)
def test_a_batch_scores_each_text_as_it_would_alone(prop):  # raw scores never depend on the other texts
    together = prop.score(MIXED)
    alone = np.array([prop.score([text])[0] for text in MIXED])
    np.testing.assert_array_equal(together, alone)


UNDEFINED_WITHOUT_WORDS = {
    "first_person",
    "second_person",
    "hedging",
    "certainty",
    "sentiment",
    "readability",
    "lexical_diversity",
    "repetition",
}


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_empty_and_whitespace_texts(text):
    for prop in ALL:
        value = prop.score([text])[0]
        if prop.name in UNDEFINED_WITHOUT_WORDS:
            assert math.isnan(value), prop.name
        elif prop.name == "characters":
            assert value == len(text)
        else:
            assert value == 0.0, prop.name


def test_a_very_long_text_is_scored_in_linear_time():
    """200k characters in one batch, one giant unpunctuated 'sentence' among them: VADER and the
    matchers see bounded pieces, so this finishes quickly and gives exact counts."""
    unit = "Great question! I think you might like this, my friend. "  # 10 words, ~56 characters
    long_text = unit * 3600
    run_on = "word " * 40_000
    batch = Texts([long_text, run_on])
    scores = {p.name: p.score(batch) for p in ALL}
    assert len(long_text) > 200_000
    assert scores["words"].tolist() == [36_000, 40_000]
    assert scores["sentences"].tolist() == [7200, 1]
    assert scores["exclamation_marks"].tolist() == [3600, 0]
    assert scores["enthusiasm"][0] == 3600
    assert scores["hedging"][0] == pytest.approx(100 * 2 * 3600 / 36_000)
    assert scores["repetition"][0] > 0.99 and scores["repetition"][1] > 0.99
    assert scores["lexical_diversity"][0] == pytest.approx(10 / 50)  # 10 distinct words in every window
    assert scores["sentiment"][0] > 0 and abs(scores["sentiment"][1]) < 0.2


# --- length, punctuation, markdown, emoji ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("Hello world, it's 2024.", 4),
        ("don’t stop", 2),
        ("你好世界", 4),
        ("こんにちは世界", 7),
        ("مرحبا بالعالم", 2),
        ("नमस्ते दुनिया", 2),
        ("Привет, мир!", 2),
        ("e-mail x_y", 3),
        ("😀 👍🏽 — …", 0),
        ("我爱 Python 3", 4),
    ],
)
def test_words_in_any_script(text, n):
    assert one("words", text) == n


def test_tokens_keep_apostrophes_inside_words_and_mark_punctuation():
    assert tokens("Don’t 'quote' me—ok?") == ["don't", "|", "quote", "|", "me", "|", "ok", "|"]


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("One. Two! Three? Four", 4),
        ("A sentence without an end", 1),
        ("Pi is 3.14 exactly.", 1),
        ('He said "go." Then left.', 2),
        ("Intro:\n- item one\n- item two", 3),
        ("你好。我很好！你呢？", 3),
        ("Text.\n```\nprint('a. b. c.')\n```\nMore.", 2),
        ("42. 43. 44.", 0),
        ("Wait... what?!", 2),
    ],
)
def test_sentences(text, n):
    assert one("sentences", text) == n


def test_sentences_keep_their_end_punctuation():
    assert sentences("Is it? Yes.") == ["Is it?", "Yes."]


def test_characters_count_code_points():
    assert one("characters", "ab c\n") == 5
    assert one("characters", "👍🏽") == 2  # a base and a skin-tone modifier


def test_punctuation_counts_outside_code():
    text = "Wow!! Really?! Hmm... ok… fine!!!\n```\nif x != 1: print('?...')\n```\n¿Qué？ ¡Sí！ لماذا؟"
    assert one("exclamation_marks", text) == 7
    assert one("question_marks", text) == 3
    assert one("ellipses", text) == 2


MARKDOWN = """# Plan

Some **bold** and __also bold__ text, with a snake_case_name and 2 ** 3 not bold.

## Steps

1. First
2) Second
10. Tenth

- apple
* pear
+ plum
• fig

| a | b |
|:--|--:|
| 1 | 2 |

```python
# a comment, not a header
- not a bullet
**not bold**
```
Last line.
"""


@pytest.mark.parametrize(
    ("name", "n"),
    [
        ("headers", 2),
        ("bold", 2),
        ("numbered_items", 3),
        ("bullet_points", 4),
        ("tables", 1),
        ("code_blocks", 1),
        ("paragraphs", 8),
        ("line_breaks", MARKDOWN.strip().count("\n")),
    ],
)
def test_markdown_structure(name, n):
    assert one(name, MARKDOWN) == n


def test_markdown_edge_cases():
    assert one("code_blocks", "```\nunclosed") == 1
    assert one("code_blocks", "~~~\na\n~~~\n```\nb\n```") == 2
    assert one("headers", "#hashtag and #1") == 0
    assert one("bold", "** not bold ** and **a**") == 1
    assert one("bullet_points", "---\n- - -x") == 1
    assert one("tables", "a | b\n--- | ---\nc | d") == 1
    assert one("paragraphs", "one\n\n\n\ntwo\n  \nthree") == 3


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("😀", 1),
        ("😀😀 and 😀", 3),
        ("👍🏽", 1),
        ("👨‍👩‍👧‍👦", 1),
        ("👩🏽‍💻", 1),
        ("🏃‍♀️", 1),
        ("🇫🇷🇯🇵", 2),
        ("❤️", 1),
        ("❤ ✔ © ™ ★", 0),
        ("1️⃣ #️⃣", 2),
        ("🏴󠁧󠁢󠁳󠁣󠁴󠁿", 1),
        ("no emoji here", 0),
        ("中文 العربية", 0),
    ],
)
def test_emoji_sequences_count_once(text, n):
    assert one("emoji", text) == n


# --- voice and manner -----------------------------------------------------------------------------


def test_pronoun_rates_per_100_words():
    assert one("first_person", "I think my cat likes me.") == pytest.approx(100 * 3 / 6)
    assert one("first_person", "I'm sure I’ve seen mine. Iran, mime, MY.") == pytest.approx(100 * 4 / 8)
    assert one("second_person", "You’re right, YOUR call, yourself.") == pytest.approx(100 * 3 / 5)
    assert one("second_person", "Youth and yours") == pytest.approx(100 * 1 / 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Here is the answer. Does that help?", 1),
        ("Would you like more? I can also list sources.", 1),
        ("Is it? Yes. It is. Done.", 0),
        ("Let me know if you have questions.", 0),
        ("Which one?\n```\nprint(1)\n```\n", 1),
        ("¿Listo？", 1),
        ("هل تريد المزيد؟", 1),
        ("", 0),
        ("The url is x.com/?q=1. That is all. Bye.", 0),
    ],
)
def test_question_to_user_looks_at_the_last_two_sentences(text, expected):
    assert one("question_to_user", text) == expected


def test_hedging_and_certainty():
    hedged = "It might rain; perhaps it seems likely, I think."
    assert one("hedging", hedged) == pytest.approx(100 * 5 / 9)
    assert one("certainty", hedged) == 0
    sure = "This is definitely, without a doubt, clearly right. Of course."
    assert one("certainty", sure) == pytest.approx(100 * 4 / 10)
    assert one("hedging", "Mighty perhapsly unlikelihood") == 0  # whole words only


def test_apologies_politeness_enthusiasm_counts():
    assert one("apologies", "Sorry! I apologize for the confusion. My apologies.") == 3
    assert one("politeness", "Please let me know if you need anything. Thanks!") == 3
    assert one("enthusiasm", "Great question! I'd be happy to help. Absolutely!") == 3
    assert one("enthusiasm", "That is great. Question two follows.") == 0  # never across punctuation


def test_phrases_never_span_two_texts_of_a_batch():
    assert get("enthusiasm").score(["this is great", "question time"]).tolist() == [0, 0]


@pytest.mark.parametrize(
    ("text", "refusal", "disclaimer"),
    [
        ("I’m sorry, but I can’t help with that.", 1, 0),
        ("I cannot   assist with this request.", 1, 0),
        ("I can help with that!", 0, 0),
        ("As an AI language model, I don't have personal opinions.", 0, 1),
        ("I'm not able to browse, and my training data ends in 2023.", 1, 1),
        ("The AI can't help it.", 0, 0),
    ],
)
def test_refusals_and_ai_disclaimers(text, refusal, disclaimer):
    assert (one("refusal", text), one("ai_disclaimer", text)) == (refusal, disclaimer)


# --- sentiment, readability, diversity, repetition ------------------------------------------------


def test_sentiment_sign_and_order():
    pytest.importorskip("vaderSentiment")
    scores = get("sentiment").score(
        [
            "I love this! It is wonderful, beautiful and a great joy.",
            "The table has four legs.",
            "This is terrible. I hate it, it is awful and sad.",
            "Not good at all.",
        ]
    )
    assert scores[0] > 0.5 and scores[2] < -0.5
    assert scores[0] > scores[1] > scores[2] and abs(scores[1]) < 0.2
    assert scores[3] < 0


def test_sentiment_is_the_mean_over_sentences():
    pytest.importorskip("vaderSentiment")
    happy, flat = "What a wonderful, happy day!", "The table has four legs."
    values = get("sentiment").score([happy, flat, f"{happy} {flat}"])
    assert values[2] == pytest.approx((values[0] + values[1]) / 2)


def test_sentiment_without_vader_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "vaderSentiment", None)
    monkeypatch.setitem(sys.modules, "vaderSentiment.vaderSentiment", None)
    with pytest.raises(DependencyError, match="vaderSentiment"):
        get("sentiment").score(["Fine."])


def test_importing_properties_loads_no_heavy_package():
    code = (
        "import sys, lmdelta.properties; print(sorted(m for m in ('vaderSentiment', 'textstat', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("word", "n"),
    [
        ("cat", 1),
        ("make", 1),
        ("table", 2),
        ("people", 2),
        ("the", 1),
        ("three", 1),
        ("whole", 1),
        ("banana", 3),
        ("beautiful", 3),
        ("mr", 1),
        ("don't", 1),
        ("2024", 0),
    ],
)
def test_syllable_heuristic(word, n):
    assert syllables(word) == n


def test_readability_orders_plain_before_dense_text():
    plain = "The cat sat on the mat. The dog ran to the park. It was fun."
    dense = (
        "Notwithstanding considerable institutional heterogeneity, comparative organizational analyses "
        "consistently demonstrate substantial interdependencies between administrative decentralization "
        "and accountability mechanisms."
    )
    values = get("readability").score([plain, dense, "你好世界。", "123 456"])
    assert values[0] > 80 and values[1] < 20
    assert math.isnan(values[2]) and math.isnan(values[3])


def brute_mattr(words: list[str], window: int = 50) -> float:
    if len(words) <= window:
        return len(set(words)) / len(words)
    spans = [words[i : i + window] for i in range(len(words) - window + 1)]
    return float(np.mean([len(set(span)) / window for span in spans]))


def brute_repetition(words: list[str]) -> float:
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return sum(g in grams[:i] for i, g in enumerate(grams)) / len(grams)


def test_diversity_and_repetition_match_brute_force_on_random_texts():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(vocab[: rng.integers(2, 40)], size=rng.integers(3, 160))) for _ in range(60)]
    mattr = get("lexical_diversity").score(texts)
    repetition = get("repetition").score(texts)
    for text, m, r in zip(texts, mattr, repetition):
        words = text.split()
        assert m == pytest.approx(brute_mattr(words)) and r == pytest.approx(brute_repetition(words))


def test_lexical_diversity_does_not_track_length():
    cycle = " ".join(f"w{i}" for i in range(10))
    values = get("lexical_diversity").score([" ".join([cycle] * 10), " ".join([cycle] * 100), "a b c d", "the " * 99])
    assert values[0] == pytest.approx(0.2) and values[1] == pytest.approx(0.2)
    assert values[2] == 1.0 and values[3] == pytest.approx(1 / 50)


def test_repetition_values():
    values = get("repetition").score(["a b c a b c", "one two three four", "two words", "你好你好你好"])
    assert values[0] == pytest.approx(1 / 4) and values[1] == 0 and math.isnan(values[2])
    assert values[3] == pytest.approx(2 / 4)  # one word per character: 你好你 好你好 你好你 好你好


# --- presence views and the [0, 1] scale -----------------------------------------------------------


def test_presence_views_say_whether_the_amount_is_non_zero():
    texts = ["Wow!", "Calm.", "", "I do."]
    assert get("has_exclamation_marks").score(texts).tolist() == [1, 0, 0, 0]
    assert get("has_first_person").score(texts).tolist() == [0, 0, 0, 1]  # NaN rate of "" → not present
    assert get("has_exclamation_marks").phrase == "uses exclamation marks"
    with pytest.raises(ValueError):
        presence_view(get("words"))


@pytest.mark.parametrize("prop", ALL, ids=lambda p: p.name)
def test_judge_scale_is_monotone_bounded_and_data_independent(prop):
    low, high = prop.bounds
    grid = np.linspace(max(low, -500.0), min(high, 5000.0), 2001)
    mapped = prop.to_unit(grid)
    assert np.all(np.diff(mapped) >= 0) and mapped.min() >= 0 and mapped.max() <= 1
    alone = np.array([prop.to_unit(np.array([x]))[0] for x in grid[::97]])
    np.testing.assert_array_equal(alone, mapped[::97])
    assert np.isnan(prop.to_unit(np.array([NAN, 1.0]))[0])
    judged = prop.judge_scores(MIXED)
    assert np.array_equal(np.isnan(judged), np.isnan(prop.score(MIXED)))


def test_scales():
    assert saturating(4.0)(np.array([0.0, 4.0, 12.0, np.inf, -1.0])).tolist() == [0.0, 0.5, 0.75, 1.0, 0.0]
    assert Scale("linear", -1, 1)(np.array([-1.0, 0.0, 1.0, 3.0])).tolist() == [0.0, 0.5, 1.0, 1.0]
    assert Scale("logistic", 50, 15)(np.array([50.0]))[0] == 0.5
    assert get("words").to_unit(np.array([200.0]))[0] == 0.5
    for bad in (lambda: Scale("saturating", 0), lambda: Scale("linear", 1, 1), lambda: Scale("logistic", 0, 0)):
        with pytest.raises(ValueError):
            bad()


# --- Property records and Python-defined properties -----------------------------------------------


def test_property_validation():
    def scorer(batch):
        return np.zeros(len(batch))

    for name, kind, phrase, comparative in (
        ("Bad-Name", "presence", "x", ""),
        ("x", "amount", None, ""),
        ("x", "presence", None, ""),
        ("x", "count", "x", ""),
        ("x", "amount", "has x", "are x"),
    ):
        with pytest.raises(ValueError):
            Property(name, "d.", kind, "", scorer, phrase=phrase, comparative=comparative, bounds=(0.0, 1.0))
    wrong_shape = Property("x", "d.", "amount", "u", lambda batch: np.zeros(3), noun="x")
    with pytest.raises(ValueError, match="shape"):
        wrong_shape.score(["a"])
    not_binary = Property("y", "d.", "presence", "", lambda b: np.full(len(b), 0.5), phrase="ys", bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="0, 1"):
        not_binary.score(["a"])


def test_registry_takes_python_properties_and_refuses_taken_names():
    registry = Registry()
    long_words = Property(
        "long_words",
        "Number of words of 12 letters or more.",
        "amount",
        "long words",
        lambda batch: np.array([sum(len(w) >= 12 for w in t.split()) for t in batch], float),
        noun="long words",
        phrase="uses long words",
    )
    registry.register(long_words)
    assert registry.get("long_words").score(["extraordinarily incomprehensible"])[0] == 2
    assert registry.names[: len(CATALOGUE)] == tuple(p.name for p in CATALOGUE) and "long_words" in registry
    with pytest.raises(ConfigError, match="already exists") as info:
        registry.register(long_words)
    assert info.value.fix
    with pytest.raises(ConfigError, match="already exists"):
        registry.register_spec({"name": "words", "description": "Mine.", "regex": "w"})
    with pytest.raises(TypeError):
        registry.register("words")


def test_unknown_names_get_near_matches():
    with pytest.raises(ConfigError, match="exclamation_marks") as info:
        get("exclamation_mark")
    assert "Did you mean" in str(info.value) and info.value.fix


# --- user properties from config -----------------------------------------------------------------


def test_user_regex_properties():
    links = from_spec({"name": "links", "description": "Links to web pages.", "regex": r"https?://\S+", "count": True})
    assert links.kind == "amount" and links.unit == "matches"
    assert links.score(["see https://a.org and http://b.com", "none"]).tolist() == [2, 0]
    shouting = from_spec(
        {"name": "shouting", "description": "A word in capitals.", "regex": r"\b[A-Z]{4,}\b", "phrase": "shouts"}
    )
    assert shouting.kind == "presence" and shouting.phrase == "shouts"
    assert shouting.score(["STOP that", "Stop that"]).tolist() == [1, 0]


def test_user_lexicon_properties_match_whole_words_in_any_case_and_script():
    safety = from_spec(
        {
            "name": "safety",
            "description": "Mentions safety.",
            "lexicon": ["harm", "be careful", "don't", "नमस्ते", "你好"],
        }
    )
    texts = ["Please BE   careful.", "harmless fun", "Don’t!", "नमस्ते दोस्त", "你好世界", "be. careful", "harm"]
    assert safety.score(texts).tolist() == [1, 0, 1, 1, 1, 0, 1]
    counted = from_spec(
        {"name": "harms", "description": "Harm words.", "lexicon": ["harm", "harm reduction"], "count": True}
    )
    assert counted.score(["harm reduction and harm, HARM"])[0] == 3  # the longer phrase wins once


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x", "description": "d.", "regex": "(unclosed"}, "invalid"),
        ({"name": "x", "description": "d.", "regex": "a*"}, "empty string"),
        ({"name": "x", "description": "d.", "regex": ""}, "non-empty"),
        ({"name": "x", "description": "d.", "lexicon": []}, "empty"),
        ({"name": "x", "description": "d.", "lexicon": "harm"}, "list"),
        ({"name": "x", "description": "d.", "lexicon": ["ok", 3]}, "without a word"),
        ({"name": "x", "description": "d.", "lexicon": ["!!!"]}, "without a word"),
        ({"name": "x", "description": "d.", "lexcon": ["a"]}, "Did you mean 'lexicon'"),
        ({"name": "x", "description": "d.", "regex": "a", "lexicon": ["a"]}, "exactly one"),
        ({"name": "x", "description": "d."}, "exactly one"),
        ({"name": "x", "regex": "a"}, "description"),
        ({"name": "x", "description": "  ", "regex": "a"}, "description"),
        ({"name": "Bad Name", "description": "d.", "regex": "a"}, "snake_case"),
        ({"description": "d.", "regex": "a"}, "snake_case"),
        ({"name": "x", "description": "d.", "regex": "a", "count": "yes"}, "true or false"),
        (["name", "x"], "mapping"),
    ],
)
def test_user_property_errors_say_what_to_fix(spec, message):
    with pytest.raises(ConfigError, match=message) as info:
        from_spec(spec)
    assert info.value.fix


# --- sentences for proposers and reports ----------------------------------------------------------


def test_describe_amounts_and_presence():
    assert (
        describe(get("words"), "b", "a", Contrast(182, 131, "median"))
        == "b's answers are longer: median 182 vs 131 words"
    )
    assert (
        describe(get("has_exclamation_marks"), "b", "a", Contrast(0.34, 0.12, "share"))
        == "b uses exclamation marks in more answers: 34% vs 12% of answers"
    )
    assert (
        describe(get("exclamation_marks"), "gpt-x", "claude", Contrast(1.5, 0.25, "mean"))
        == "gpt-x's answers have more exclamation marks: mean 1.5 vs 0.25 exclamation marks"
    )
    assert (
        describe(get("sentiment"), "models", "base", Contrast(0.4237, -0.1, "median"))
        == "models' answers are more positive: median 0.424 vs -0.1 (VADER compound, -1 to 1)"
    )
    assert describe(get("question_to_user"), "b", "a", Contrast(0.5, 0.5, "share")).startswith("b ends by asking")


def test_describe_refuses_a_contrast_that_would_lie():
    with pytest.raises(ValueError, match="swap"):
        describe(get("words"), "b", "a", Contrast(100, 200, "median"))
    with pytest.raises(ValueError):
        describe(get("refusal"), "b", "a", Contrast(2, 1, "median"))
    with pytest.raises(ValueError):
        describe(get("words"), "b", "a", Contrast(0.5, 0.1, "share"))


def test_contrast_summarises_each_side_leaving_nan_out():
    words = get("words")
    stats = contrast(words, words.score(["a b c", "a b c d e"]), words.score(["a", "a b c"]))
    assert stats == Contrast(4.0, 2.0, "median")
    shares = contrast(get("refusal"), np.array([1.0, 0.0, 1.0, 1.0]), np.array([0.0, 0.0]))
    assert shares == Contrast(0.75, 0.0, "share")
    undefined = contrast(get("readability"), np.array([NAN]), np.array([50.0, NAN]))
    assert math.isnan(undefined.more) and undefined.less == 50.0


def test_score_all_shares_one_batch_and_returns_fresh_arrays():
    table = score_all(ALL, MIXED)
    assert list(table) == [p.name for p in ALL]
    table["words"][:] = -1  # the caller's copy, not the batch's cached values
    batch = Texts(MIXED)
    assert score_all([get("words")], batch)["words"][0] == 12
    assert get("has_bold").score(batch).tolist() == (get("bold").score(batch) > 0).tolist()
