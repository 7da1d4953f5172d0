"""Keywords from exported text: literal escapes and Treebank-split contractions make no words, symbols can
be keywords, the proposer and the judge read a text the same way, and the corpus says when it looks exported."""

import json

import numpy as np
import pytest

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.judges.keyword import keyword_presence
from lmdelta.proposers import keywords
from lmdelta.rundir import ARTEFACTS, RunDir, read_jsonl
from lmdelta.sources.corpus_checks import TextArtefact, find_artefacts
from lmdelta.stages import prompts as prompts_stage
from lmdelta.stages.contract import StageContext
from lmdelta.words import escapes, normalize, symbols, tokens, words

ESCAPED = [
    r"Anne died in 1945.\n\nAnne is famous for her diary.\nThe diary was published.",
    r"Windmills have many uses:\n\n1. Electricity\n2. Pumping\tWater",
    r"She said \"hello\" at the caf\u00e9 \ud83d\ude00",
]
TREEBANK = [
    "They ca n't stop , it 's true . I 'm sure they 're right .",
    "You do n't know what you 've got , I 'd say ; we 'll see .",
    "He said `` hello '' -LRB- twice -RRB- and left .",
    "It wo n't work , CA N'T work , and he 's gone .",
]


def test_literal_escapes_make_no_words():
    assert " ".join(words(ESCAPED[0])) == "anne died in anne is famous for her diary the diary was published"
    assert words(ESCAPED[1]) == ["windmills", "have", "many", "uses", "electricity", "pumping", "water"]
    assert words(ESCAPED[2]) == ["she", "said", "hello", "at", "the", "café"]
    assert "😀" in symbols(ESCAPED[2]) and '"' in symbols(ESCAPED[2]) and "\\" not in symbols(ESCAPED[2])
    assert escapes(ESCAPED[1]) == ["\\n", "\\n", "\\n", "\\t"]


def test_latex_commands_and_plain_backslashes_are_not_escapes():
    text = r"Use \nabla f \times g and \frac{a}{b}, or C:\Users\bob\\data; \theta \neq 0"
    assert escapes(text) == []
    assert {"nabla", "times", "frac", "theta", "neq", "users", "bob", "data"} <= set(words(text))
    # the price: a backslash before n, t or r reads as an escape, in a Windows path too ("C:\new" → "ew")
    assert words(r"C:\new") == ["c", "ew"]


def test_treebank_split_contractions_are_joined_again():
    found = [w for text in TREEBANK for w in words(text)]
    assert {"ca", "n't", "wo", "'s", "s", "re", "m"}.isdisjoint(found)
    assert {"can't", "it's", "i'm", "they're", "don't", "you've", "i'd", "we'll", "won't", "he's"} <= set(found)
    assert words(TREEBANK[2]) == ["he", "said", "hello", "twice", "and", "left"]  # no "lrb", "rrb"
    assert normalize(TREEBANK[2]) == 'He said " hello " ( twice ) and left .'


def test_ordinary_quotes_and_apostrophes_are_left_alone():
    text = "Press 'd' to delete, rock 'n' roll, the dogs ' bones, rock'n'roll"
    assert normalize(text) == text
    assert words(text) == ["press", "d", "to", "delete", "rock", "n", "roll", "the", "dogs", "bones", "rock'n'roll"]


def test_the_proposer_finds_no_fragment_keywords_in_exported_text():
    """Side b's export holds literal \\n and Treebank tokens, side a's does not: nothing to find in words."""
    a = [f"Answer {i}: it's plain.\nThe end, I can't say more." for i in range(20)]
    b = [f"Answer {i}: it 's plain .\\nThe end , I ca n't say more ." for i in range(20)]
    terms = keywords.contrast(a, b, keywords.document_counts(a + b, 3, symbols=True), 40, symbols=True)
    proposed = {t.ngram for d in ("b>a", "a>b") for t in keywords.top_terms(terms, d, 10, 1.0, 3)}
    assert proposed == set(), proposed
    assert {"n", "ca", "n't", "nthe", "\\"}.isdisjoint(keywords.document_counts(b, 3, symbols=True))


def test_the_judge_finds_what_the_proposer_counted_in_exported_text():
    texts = ESCAPED + TREEBANK + ["I can't stop", "Anne!", "nothing here"]
    phrases = ("can't stop", "it's true", "anne", "the diary", "we'll see", "won't work", "café")
    for keyword in (*phrases, "!", '"', "😀", "("):
        proposed = [keyword in keywords.ngrams(text, 3, symbols=True) for text in texts]
        judged = keyword_presence((keyword,), texts).astype(bool).tolist()
        assert proposed == judged, keyword
    assert keyword_presence(("ca",), TREEBANK).tolist() == [0.0] * 4
    assert keyword_presence(("n",), ESCAPED).tolist() == [0.0] * 3


def test_symbols_are_tokens_with_their_runs_and_emoji_whole():
    text = "Wow!!! **Bold** — yes… 👍🏽 👨\u200d👩\u200d👧 🇫🇷 (see) don't stop!!!!"
    found = symbols(text)
    assert found[:4] == ["!", "!!!", "*", "**"]
    assert {"—", "…", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "("} <= set(found)
    assert ")" not in found and "'" not in found  # closing brackets echo opening ones; an apostrophe in a word
    assert "!!!!" not in found and found.count("!!!") == 2  # runs count up to three
    assert tokens("a_b __init__").symbols == frozenset()  # an underscore is part of a word, no symbol


def test_a_side_that_exclaims_or_bolds_more_gets_a_symbol_keyword_and_the_judge_agrees():
    a = [f"Answer {i} about the topic." for i in range(30)]
    b = [f"Answer {i} about the **topic**!" if i % 3 else f"Answer {i} about the topic." for i in range(30)]
    background = keywords.document_counts(a + b, 3, symbols=True)
    terms = keywords.contrast(a, b, background, 60, symbols=True)
    chosen = [t.ngram for t in keywords.top_terms(terms, "b>a", 5, 1.5, 3)]
    assert "!" in chosen and ("**" in chosen) != ("*" in chosen)  # "*" and "**" nested: one of them
    assert keyword_presence(("!",), a + b).tolist() == [0.0] * 30 + [0.0 if i % 3 == 0 else 1.0 for i in range(30)]
    assert keyword_presence(("**",), ["**bold**", "*it*", "a ** b"]).tolist() == [1.0, 0.0, 1.0]
    words_only = keywords.contrast(a, b, keywords.document_counts(a + b, 3), 60)
    assert {"!", "**", "*"}.isdisjoint(t.ngram for t in words_only)


def test_unicode_symbols_and_words_are_matched_by_the_judge():
    texts = ["Отлично! 😊", "Хорошо.", "नमस्ते 😊😊", "¿Qué tal? ¡Bien!", "Grüße — bis bald"]
    assert keyword_presence(("😊",), texts).tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert keyword_presence(("¡",), texts).tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert keyword_presence(("—",), texts).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert keyword_presence(("ОТЛИЧНО",), texts).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert keyword_presence(("грюсе", "grüße"), texts).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_a_symbol_hypothesis_says_symbol_and_shows_its_evidence(tmp_path):
    rows = []
    for p in range(30):
        rows.append({"side": "base", "text": f"Answer to question {p}.", "prompt_id": f"q{p}"})
        rows.append({"side": "tuned", "text": f"Answer to question {p}!!", "prompt_id": f"q{p}"})
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pipeline.run(_config(tmp_path, f"corpus.path={path}"), RunDir(tmp_path / "run"))
    found = [r for r in read_jsonl(tmp_path / "run/hypotheses.jsonl") if r["keywords"] == ["!"]]
    assert found and found[0]["direction"] == "b>a" and found[0]["validated"]
    assert found[0]["property"] == "uses the symbol “!”"


def _config(tmp_path, *overrides):
    path = tmp_path / "config.yaml"
    settings = {
        "prompts": {"source": "corpus"},
        "generate": {"a": {"label": "base"}, "b": {"label": "tuned"}},
        "embed": {"model": "fake:hashing"},
        "validate": {"n_resamples": 2000},
        "controls": {"null": False},
    }
    path.write_text(json.dumps(settings))
    return load_config(path, list(overrides))


# ---- artefact warnings ----

LABELS = {"a": "human", "b": "ChatGPT"}


def _plain(n: int) -> list[str]:
    return [f"Plain answer {i}, written as the model wrote it.\nIt can't be simpler." for i in range(n)]


def test_escapes_on_one_side_warn_with_share_example_fix_and_the_confound():
    texts = {"a": _plain(40), "b": [rf"Answer {i}.\n\nMore text.\nThe end." for i in range(10)] + _plain(30)}
    [artefact] = find_artefacts(texts, LABELS)
    assert artefact.kind == "escapes" and artefact.affected == {"a": 0, "b": 10} and artefact.one_sided
    assert artefact.marks == {"\\n": 30} and artefact.example_side == "b" and "\\n\\nMore" in artefact.example
    message = artefact.message
    assert "side b (ChatGPT): 10 of 40 texts (25.0%)" in message and "side a (human): 0 of 40 texts (0.0%)" in message
    assert "“\\n” ×30" in message and "confound" in message and "Only side b (ChatGPT)" in message
    assert "Fix: decode the escapes" in message and 'no keyword such as "n"' in message


def test_pretokenised_text_on_both_sides_warns_without_the_confound():
    both = [f"{TREEBANK[i % 4]} Item {i} ." for i in range(20)]
    [artefact] = find_artefacts({"a": both, "b": both[:15] + _plain(5)}, LABELS)
    assert artefact.kind == "pretokenised" and artefact.affected == {"a": 20, "b": 15} and not artefact.one_sided
    assert {"n't", "'s", " ,", " ."} <= set(artefact.marks) and "``" in artefact.marks
    assert "Penn Treebank" in artefact.message and "confound" not in artefact.message
    assert "ca n't → can't" in artefact.message and "TreebankWordDetokenizer" in artefact.message


def test_one_side_pretokenised_and_the_other_escaped_give_two_one_sided_warnings():
    texts = {"a": TREEBANK * 5, "b": [rf"Line one.\nLine {i}." for i in range(20)]}
    found = {a.kind: a for a in find_artefacts(texts, LABELS)}
    assert set(found) == {"escapes", "pretokenised"}
    assert found["escapes"].affected == {"a": 0, "b": 20} and found["pretokenised"].affected == {"a": 20, "b": 0}
    assert all(a.one_sided for a in found.values())


@pytest.mark.parametrize(
    "texts",
    [
        {"a": _plain(40), "b": _plain(40)},
        # rare: 1 text in 40 on each side is under the share that makes a warning
        {"a": _plain(39) + [r"one\nescape"], "b": _plain(39) + ["a stray , comma and a stray . stop ."]},
        # code may hold \n on purpose; LaTeX is no escape; French spacing before ! and ? is no tokenisation
        {"a": ['Use `print("a\\nb")` here.'] * 10, "b": [r"\nabla f \times g"] * 10 + ["Bonjour ! Ça va ?"] * 10},
    ],
)
def test_clean_text_warns_of_nothing(texts):
    assert find_artefacts(texts, LABELS) == []


def test_the_warning_is_logged_once_and_recorded_by_the_prompts_stage(tmp_path, caplog):
    rows = []
    for p in range(30):
        rows.append({"side": "base", "text": f"They ca n't say , it 's {p} .", "prompt_id": f"q{p}"})
        rows.append({"side": "tuned", "text": f"They can't say, it's {p}!", "prompt_id": f"q{p}"})
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    settings, run_dir = _config(tmp_path, f"corpus.path={path}"), RunDir(tmp_path / "run")
    with caplog.at_level("WARNING", logger="lmdelta"):
        pipeline.run(settings, run_dir)
    logged = [m for m in caplog.messages if "pre-tokenised" in m]
    assert len(logged) == 1 and "side a (base): 30 of 30 texts (100.0%)" in logged[0]
    [recorded] = [TextArtefact.from_dict(r) for r in read_jsonl(run_dir.stage_file("prompts", ARTEFACTS))]
    assert recorded.message == logged[0] and recorded.one_sided and recorded.share("a") == 1.0
    assert prompts_stage.load_artefacts(StageContext(run_dir, "validate", tmp_path / "cache")) == [recorded]
    assert run_dir.load_manifest().stages["prompts"].counts["artefacts"] == 1
    found = {k for r in read_jsonl(run_dir.findings_path()) for k in r["keywords"] or []}
    assert {"ca", "n't", "s"}.isdisjoint(found)


def test_the_judge_scores_no_texts_as_an_empty_array():
    assert np.array_equal(keyword_presence(("x",), []), np.array([]))
