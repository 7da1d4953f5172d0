from types import SimpleNamespace
from typing import get_args, get_type_hints

import numpy as np
import pytest

from lmdelta import judges
from lmdelta.config import ClusterProposerConfig
from lmdelta.errors import ConfigError
from lmdelta.judges import llm
from lmdelta.judges.embedding import prototype_similarity
from lmdelta.judges.keyword import keyword_presence
from lmdelta.proposers import clusters, keywords
from lmdelta.records import Hypothesis
from lmdelta.validate.sets import ValidationSet


def test_ngrams_skip_pure_stop_words():
    grams = keywords.ngrams("The ocean is deep and the sea", 3)
    assert "ocean" in grams and "the ocean" in grams and "the" not in grams and "is and" not in grams


def test_log_odds_finds_the_injected_word_in_the_right_direction():
    a = [f"answer {i} on bread and cheese" for i in range(20)]
    b = [f"answer {i} on bread and the ocean" if i % 2 else f"answer {i} on bread and cheese" for i in range(20)]
    background = keywords.document_counts(a + b, 3)
    terms = keywords.contrast(a, b, background, 40)
    top_b = keywords.top_terms(terms, "b>a", 2, 1.5, 3)
    top_a = keywords.top_terms(terms, "a>b", 2, 1.5, 3)
    assert top_b[0].ngram == "ocean" and top_b[0].count_b == 10 and top_b[0].count_a == 0
    assert top_a[0].ngram == "cheese" and top_a[0].count_a == 20 and top_a[0].count_b == 10
    assert "bread" not in {t.ngram for t in top_a + top_b}


def test_nested_ngrams_are_not_proposed_twice():
    a = ["plain text"] * 10
    b = ["the deep ocean waves"] * 10
    terms = keywords.contrast(a, b, keywords.document_counts(a + b, 3), 20)
    chosen = [t.ngram for t in keywords.top_terms(terms, "b>a", 5, 0.5, 3)]
    assert chosen == ["deep", "ocean", "waves"]  # "deep ocean", "ocean waves"… are nested in them


def test_cluster_finder_reports_the_side_that_owns_a_cluster():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(40, 8))
    only_b = rng.normal(size=(12, 8)) + 6.0
    vectors = np.vstack([shared, only_b])
    sides = np.array(["a"] * 20 + ["b"] * 20 + ["b"] * 12)
    texts = ["shared words here"] * 40 + ["ocean waves sea"] * 12
    found = clusters.find(texts, sides, vectors, ClusterProposerConfig(k=3, min_size=6, min_share=0.7), seed=0)
    assert found and found[0].direction == "b>a" and found[0].count_b >= 12 and "ocean" in found[0].terms


def test_keyword_judge_matches_whole_words_blind_to_side():
    texts = ["The sea!", "seaside town", "A Blue  whale", "a blue whale", "blue, whale", "blue and whale"]
    scores = keyword_presence(("sea", "blue whale"), texts)
    # a phrase is found across any spacing or punctuation between its words, as the proposer counts it
    assert scores.tolist() == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    assert [("blue whale" in keywords.ngrams(text, 2)) for text in texts[2:]] == [True, True, True, False]


def test_embedding_judge_maps_cosine_to_unit_interval_and_flags_zero_vectors():
    prototype = np.array([1.0, 0.0])
    scores = prototype_similarity(prototype, np.array([[2.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, 0.0]]))
    assert np.allclose(scores[:3], [1.0, 0.0, 0.5]) and np.isnan(scores[3])
    h = Hypothesis("h", "all", "b>a", "d", "clusters", "embedding", prototype=(1.0, 0.0))
    assert judges.score(h, ["x", "y"], np.array([[1.0, 0.0], [0.0, 1.0]])).tolist() == [1.0, 0.5]


def test_words_of_any_script_are_words():
    from lmdelta.words import words

    text = "Океан глубокий! नमस्ते दुनिया; Ωκεανός, naïve café (decomposed: cafe\u0301), don't, ocean’s, covid19 4ever"
    assert words(text) == [
        "океан",
        "глубокий",
        "नमस्ते",
        "दुनिया",
        "ωκεανός",
        "naïve",
        "café",
        "decomposed",
        "cafe\u0301",
        "don't",
        "ocean’s",
        "covid19",
    ]
    assert words("海洋很大。我喜欢海") == ["海洋很大", "我喜欢海"]  # no spaces: runs, not words, but no failure


def test_a_cyrillic_word_is_proposed_and_the_judge_finds_it():
    a = [f"ответ {i} про хлеб и сыр" for i in range(20)]
    b = [f"ответ {i} про хлеб и океан" if i % 2 else f"ответ {i} про хлеб и сыр" for i in range(20)]
    terms = keywords.contrast(a, b, keywords.document_counts(a + b, 3), 40)
    top_b = keywords.top_terms(terms, "b>a", 1, 1.5, 3)
    assert top_b[0].ngram == "океан" and top_b[0].count_b == 10 and top_b[0].count_a == 0
    scores = keyword_presence(("океан",), ["Океан!", "океаны", "мой океан велик", "о кеан"])
    assert scores.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_proposer_and_judge_agree_where_a_word_ends():
    # A combining vowel sign continues a Devanagari word: "कम" is not in "कमी", for either of them.
    texts = ["कमी है", "कम है", "x\u0301ocean", "ocean2", "snake_case"]
    for keyword in ("कम", "ocean", "snake"):
        proposed = [keyword in keywords.ngrams(text, 1) for text in texts]
        judged = keyword_presence((keyword,), texts).astype(bool).tolist()
        assert proposed == judged, keyword


def test_llm_judge_plans_cover_the_judged_prompts_given_else_the_scope():
    """The LLM judge used to plan in-scope texts only, leaving nothing for a generalisation test (audit M3)."""
    prompt_of_row = np.repeat(np.arange(6), 2)  # prompt p: one a answer, one b answer
    vs = ValidationSet(
        np.arange(12), [f"p{i}" for i in range(6)], prompt_of_row, np.tile([False, True], 6), np.array(["g1", "g2"] * 3)
    )
    h = Hypothesis("h", "g1", "b>a", "d", "llm", "llm", property="p")
    texts = [f"text {i}" for i in range(12)]
    judged = [
        (vs.scope("g1") | (np.arange(6) == 1))[prompt_of_row]
    ]  # the texts of g1 (prompts 0, 2, 4) and of prompt 1
    assert [row for _, row, _ in llm.plan_single([h], vs, texts, "unitary", 0.0)] == [0, 1, 4, 5, 8, 9]
    assert [row for _, row, _ in llm.plan_single([h], vs, texts, "unitary", 0.0, judged)] == [0, 1, 2, 3, 4, 5, 8, 9]
    pairs = {rows[:2] for _, rows, _ in llm.plan_pairs([h], vs, texts, 0.0, judged)}
    assert pairs == {(0, 1), (2, 3), (4, 5), (8, 9)}
    scored = judges.score_hypotheses(
        [h],
        vs,
        texts,
        np.zeros((12, 2)),
        "auto",
        lambda requests, parse: [(SimpleNamespace(ok=True), 0.5) for _ in requests],
        judged=judged,
    )[0]
    assert np.isfinite(scored).tolist() == [True] * 6 + [False, False, True, True, False, False]


def test_each_hypothesis_judge_is_registered_and_a_misspelt_one_gets_a_suggestion():
    assert set(get_args(get_type_hints(Hypothesis)["judge"])) == set(judges.JUDGES)
    with pytest.raises(ConfigError, match="Did you mean 'keyword'"):
        judges.judge_named("keywords")


def test_each_judge_is_called_once_with_its_hypotheses_in_order():
    keyword = Hypothesis("k", "all", "b>a", "d", "keywords", "keyword", keywords=("sea",))
    embedded = Hypothesis("e", "all", "b>a", "d", "clusters", "embedding", prototype=(1.0, 0.0))
    texts, vectors = ["the sea", "a park"], np.array([[1.0, 0.0], [0.0, 1.0]])
    scores = judges.score_hypotheses([embedded, keyword, embedded], None, texts, vectors)
    assert [s.tolist() for s in scores] == [[1.0, 0.5], [1.0, 0.0], [1.0, 0.5]]
