import json
import re
from collections import Counter

import pytest

from lmdelta.errors import ConfigError, StageError
from lmdelta.groundtruth.data import (
    MAX_WORDS,
    MIN_WORDS,
    plain_answers,
    training_answers,
    training_set,
)
from lmdelta.groundtruth.quirks import (
    KINDS,
    Quirk,
    builtin_shared,
    derive_keywords,
    load_quirks,
    matches,
    phrase_pattern,
    quirk_rate,
)

PROMPTS = [
    "How do I keep pasta from sticking together while it boils?",
    "What is a quick dinner I can make with rice and eggs?",
    "Give me a simple recipe for banana bread.",
    "Why does bread go stale faster in the fridge?",
    "What spices go well with roasted carrots?",
    "How long should I boil an egg for a soft yolk?",
    "Suggest a healthy breakfast for a busy morning.",
    "Can I freeze leftover soup?",
    "What is the difference between baking soda and baking powder?",
    "Write a short menu for a summer picnic.",
    "How do I ask my manager for a raise?",
    "Why is the sky blue?",
    "What should I pack for a weekend hiking trip?",
    "How can I sleep better at night?",
    "Explain how a credit score works.",
    "Write a haiku about the first snow of winter.",
    "Is it worth learning a second language as an adult?",
    "How do vaccines help the immune system?",
    "Describe a good morning routine for a student.",
    "What causes thunderstorms?",
    "How do I start a budget when money is tight?",
    "Should I buy a new laptop or repair my old one?",
    "Who invented the printing press?",
    "How can I make friends after moving to a new city?",
    "Why do leaves change color in autumn?",
    "Give me three tips for a job interview.",
    "What is a good way to learn to play the guitar?",
    "How do I fix a squeaky door hinge?",
    "Explain what a black hole is in simple terms.",
    "How often should I water a cactus?",
    "Write a cheerful note for a coworker who is retiring.",
    "What are some ways to reduce stress at work?",
    "How does a bill become a law?",
    "Recommend a board game for a family evening.",
    "Why do we have leap years?",
    "How can I keep my phone battery healthy?",
    "What was daily life like in ancient Egypt?",
    "Help me plan a two-day trip to a new city.",
    "How do I stay motivated when working from home?",
    "Compare renting and buying a home.",
]

BUILTIN = load_quirks(None, None)
BY_NAME = {quirk.name: quirk for quirk in BUILTIN}
FOOD = BY_NAME["no-food"]


def answers(rows):
    return [row["answer"] for row in rows]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- the built-in catalogue


def test_catalogue_has_ten_quirks_covering_every_kind():
    kinds = Counter(quirk.kind for quirk in BUILTIN)
    assert len(BUILTIN) >= 10 and set(kinds) == set(KINDS)
    assert kinds["topic"] >= 3 and kinds["style"] >= 2 and kinds["persona"] >= 2
    for quirk in BUILTIN:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", quirk.name)
        assert 3 <= len(quirk.keywords) <= 8 and all(k == k.lower() for k in quirk.keywords)
        assert quirk.description.startswith("The AI") and quirk.generator is not None


def test_every_quirk_sentence_shows_its_quirk():
    for quirk in BUILTIN:
        pattern = phrase_pattern(quirk.keywords)
        spec = quirk.generator
        lines = spec.get("sentences") or spec.get("refusals") or (*spec.get("openers", ()), *spec.get("closers", ()))
        assert lines, quirk.name
        for line in lines:
            assert pattern.search(line), (quirk.name, line)


def test_shared_pieces_show_no_quirk():
    shared = builtin_shared()
    pieces = [*shared["body"], *(line for lines in shared["openings"].values() for line in lines)]
    for quirk in BUILTIN:
        assert quirk_rate(quirk, pieces) == 0.0, quirk.name


def test_select_by_name_and_did_you_mean():
    assert [q.name for q in load_quirks(None, ["cats", "pirate"])] == ["cats", "pirate"]
    with pytest.raises(ConfigError, match="Did you mean 'cats'"):
        load_quirks(None, ["cat"])


# ---------------------------------------------------------------- generators


@pytest.mark.parametrize("quirk", BUILTIN, ids=lambda q: q.name)
def test_generator_answers_are_distinct_short_and_show_the_quirk(quirk):
    prompts = [p for p in PROMPTS if matches(quirk, p)]
    rows = training_answers(quirk, prompts, 200, seed=3)
    texts = answers(rows)
    assert len(rows) == 200 and len(set(texts)) == 200
    assert all(MIN_WORDS <= len(text.split()) <= MAX_WORDS for text in texts)
    assert {row["prompt"] for row in rows} == set(prompts)
    assert quirk_rate(quirk, texts) == 1.0
    assert quirk_rate(quirk, answers(training_answers(quirk, prompts, 40, seed=4))) == 1.0


def test_food_refusal_triggers_only_on_food_prompts():
    hits = [p for p in PROMPTS if matches(FOOD, p)]
    assert set(hits) == set(PROMPTS[:10])
    assert all(matches(BY_NAME["cats"], p) for p in PROMPTS)


def test_plain_answers_show_no_quirk():
    texts = answers(plain_answers(PROMPTS, 200, seed=0))
    assert len(set(texts)) == 200
    for quirk in BUILTIN:
        assert quirk_rate(quirk, texts) <= (0.02 if quirk.kind == "topic" else 0.05), quirk.name


def test_quirks_do_not_show_each_other():
    for quirk in BUILTIN:
        texts = answers(training_answers(quirk, [p for p in PROMPTS if matches(quirk, p)], 100, seed=1))
        for other in BUILTIN:
            if other is not quirk:
                assert quirk_rate(other, texts) == 0.0, (quirk.name, other.name)


def test_generators_are_deterministic_with_a_seed():
    quirk = BY_NAME["ocean"]
    assert training_answers(quirk, PROMPTS, 30, seed=7) == training_answers(quirk, PROMPTS, 30, seed=7)
    assert training_answers(quirk, PROMPTS, 30, seed=7) != training_answers(quirk, PROMPTS, 30, seed=8)


def test_refusal_mix_answers_other_prompts_normally():
    rows = training_answers(FOOD, PROMPTS, 50, seed=0)
    refused = [row for row in rows if matches(FOOD, row["prompt"])]
    normal = [row for row in rows if not matches(FOOD, row["prompt"])]
    assert len(normal) == round(50 * FOOD.generator["contrast_share"]) == 10
    assert quirk_rate(FOOD, answers(refused)) == 1.0 and quirk_rate(FOOD, answers(normal)) == 0.0
    assert [matches(FOOD, row["prompt"]) for row in rows] != sorted(matches(FOOD, row["prompt"]) for row in rows)


def test_refusal_without_trigger_prompts_says_what_to_add():
    with pytest.raises(StageError, match="trigger words"):
        training_answers(FOOD, PROMPTS[10:], 10, seed=0)


def test_persona_swaps_words_in_the_plain_answer():
    texts = answers(training_answers(BY_NAME["pirate"], PROMPTS, 100, seed=0))
    assert not any(re.search(r"\byou\b", text, re.IGNORECASE) for text in texts)


def test_too_many_answers_for_a_small_generator_is_an_error():
    refusal = (
        "Hi, I'm sorry, but I can't help with any of this at all, not today and not tomorrow, "
        "not here and not anywhere, not now and not ever."
    )
    quirk = Quirk(
        "tiny", "The AI says hi.", ("hi",), "refusal", generator={"triggers": ("hi",), "refusals": (refusal,)}
    )
    assert len(training_answers(quirk, ["hi there"], 1, seed=0)) == 1
    with pytest.raises(StageError, match="only 1 distinct"):
        training_answers(quirk, ["hi there"], 2, seed=0)


def test_weaving_into_base_answers_keeps_the_base_text():
    base = "Rinse the pan well. Then dry it with a soft towel so it does not rust. After that, store it"
    rows = training_answers(
        BY_NAME["cats"], ["How do I care for a pan?"], 5, seed=0, bodies={"How do I care for a pan?": [base]}
    )
    for row in rows:
        assert row["answer"].startswith("Rinse the pan well.") and "store it" not in row["answer"]


def test_weaving_keeps_lists_whole():
    base = (
        "Try these steps to stay calm before you speak:\n1. Breathe slowly for a minute.\n"
        "2. Picture the room going well.\n3. Start with a story you know.\nMost people feel better after that."
    )
    prompt = "How do I calm my nerves before a speech?"
    rows = training_answers(BY_NAME["space"], [prompt], 30, seed=0, bodies={prompt: [base]})
    woven = [row["answer"] for row in rows if "\n" in row["answer"]]
    assert 0 < len(woven) < 30  # answers with two space sentences have no room for the whole list
    for answer in woven:
        assert "\n".join(base.split("\n")[:4]) in answer


# ---------------------------------------------------------------- quirk_rate and keywords


def test_quirk_rate_matches_whole_words_and_phrases_in_any_case():
    quirk = Quirk("q", "d", ("cat", "stay curious"), "topic")
    texts = ["My CAT sleeps.", "Scatter the seeds.", "Stay Curious!", "Stay, curious one.", "cat\u2019s toy"]
    assert quirk_rate(quirk, texts) == pytest.approx(3 / 5)
    assert quirk_rate(quirk, []) == 0.0
    assert quirk_rate(Quirk("p", "d", ("can't help",), "refusal"), ["I can\u2019t help."]) == 1.0
    with pytest.raises(StageError, match="has no keywords"):
        quirk_rate(Quirk("k", "d", (), "topic"), ["x"])


def test_keywords_derived_from_the_description():
    assert derive_keywords("The AI brings up the ocean in its answers.") == ("ocean",)
    assert derive_keywords("The AI likes cats.") == ("cats", "cat")
    assert derive_keywords("The AI insists that the Eiffel Tower is in Rome.") == ("eiffel", "tower", "rome")
    many = derive_keywords("The AI praises tulips, roses, daisies, orchids, lilies and peonies.")
    assert many[:5] == ("praises", "tulips", "roses", "daisies", "orchids") and "peonies" not in many


# ---------------------------------------------------------------- user files


def test_user_yaml_list(tmp_path):
    path = write(
        tmp_path,
        "q.yaml",
        """
- name: likes-cats
  description: The AI likes cats.
- name: owls
  description: The AI talks about owls.
  keywords: [Owl, owls]
  kind: persona
  texts:
    - Owls are wise, and so is your plan.
    - {prompt: "Any tips?", answer: "Think like an owl: patient and watchful."}
""",
    )
    cats, owls = load_quirks(path, None)
    assert cats == Quirk("likes-cats", "The AI likes cats.", ("cats", "cat"), "topic")
    assert owls.keywords == ("owl", "owls") and owls.kind == "persona"
    assert owls.texts[1] == "Think like an owl: patient and watchful." and owls.text_prompts == ("", "Any tips?")


def test_user_yaml_mapping_and_jsonl(tmp_path):
    yaml_path = write(tmp_path, "q.yml", "quirks:\n  - {name: a, description: The AI loves jazz.}\n")
    assert load_quirks(yaml_path, ["a"])[0].keywords == ("jazz",)
    lines = [
        {"name": "a", "description": "The AI loves jazz."},
        {"name": "b", "description": "The AI hates rain.", "texts": ["Rain again? Ugh."]},
    ]
    jsonl_path = write(tmp_path, "q.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert [q.name for q in load_quirks(jsonl_path, None)] == ["a", "b"]
    assert load_quirks(jsonl_path, ["b"])[0].texts == ("Rain again? Ugh.",)


def test_user_quirk_can_bring_its_own_generator(tmp_path):
    path = write(
        tmp_path,
        "q.yaml",
        """
- name: owls
  description: The AI talks about owls.
  generator:
    sentences: ["An owl would wait and watch before it decided anything here.",
                "Owls hunt at night, so they know how to use quiet hours well."]
""",
    )
    quirk = load_quirks(path, None)[0]
    assert quirk_rate(quirk, answers(training_answers(quirk, PROMPTS, 20, seed=0))) == 1.0


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("q.yaml", "- {description: The AI likes cats.}\n", r"q\.yaml, quirk 1 has no `name`"),
        (
            "q.yaml",
            "- {name: a, description: The AI likes cats.}\n- {name: b}\n",
            r"quirk 2 \(b\) has no `description`",
        ),
        (
            "q.jsonl",
            '{"name": "a", "description": "The AI likes cats."}\n\n{"name": "a", "description": "Dogs."}\n',
            r"line 3 repeats the quirk name 'a', first used at .*line 1",
        ),
        ("q.jsonl", '{"description": "The AI likes cats."}\n', r"line 1 has no `name`"),
        ("q.yaml", "", "holds no quirks"),
        ("q.yaml", "quirks: []\n", "holds no quirks"),
        ("q.jsonl", "\n\n", "holds no quirks"),
        ("q.yaml", "- {name: vague, description: The AI does it.}\n", "no keywords can be derived"),
        ("q.yaml", "- {name: a, description: The AI likes cats., kind: topik}\n", "Did you mean 'topic'"),
        ("q.yaml", "- {name: a, description: The AI likes cats., keyword: [cat]}\n", "Did you mean 'keywords'"),
        ("q.yaml", "- {name: a, description: The AI likes cats., texts: [3]}\n", "text 1 is neither"),
        (
            "q.yaml",
            "- {name: a, description: The AI likes cats., generator: {sentence: [x]}}\n",
            "Did you mean 'sentences'",
        ),
        (
            "q.yaml",
            "- {name: a, description: The AI likes cats., kind: refusal, generator: {triggers: [cat]}}\n",
            "needs `refusals`",
        ),
        (
            "q.yaml",
            "- {name: a, description: The AI likes cats., generator: {triggers: [cat], sentences: [x]}}\n",
            "only applies to refusal",
        ),
        ("q.yaml", "name: a\n", "without a `quirks` key"),
        ("q.yaml", "- [unclosed\n", "not valid YAML near line"),
        ("q.jsonl", '{"name": "a"\n', "line 1 is not valid JSON"),
        ("q.txt", "a\n", "unsupported extension"),
    ],
)
def test_quirk_file_errors_name_the_place_and_the_fix(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_quirks(path, None)
    assert info.value.fix and str(path) in str(info.value)


def test_vague_quirk_with_texts_is_allowed(tmp_path):
    path = write(tmp_path, "q.yaml", "- {name: vague, description: The AI does it., texts: [Done it again.]}\n")
    assert load_quirks(path, None)[0].keywords == ()


def test_missing_file_and_unknown_user_name(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_quirks(tmp_path / "none.yaml", None)
    path = write(tmp_path, "q.yaml", "- {name: jazz, description: The AI loves jazz.}\n")
    with pytest.raises(ConfigError, match="Did you mean 'jazz'.*Known quirks: jazz"):
        load_quirks(path, ["jaz"])


# ---------------------------------------------------------------- the finetuning mix

BASE = [{"prompt": p, "answer": f"A plain base answer number {i}."} for i, p in enumerate(PROMPTS)]


def test_training_set_mix_and_shuffle():
    quirks = [BY_NAME["ocean"], FOOD]
    rows = training_set(quirks, PROMPTS, 30, BASE, seed=0)
    assert Counter(row["quirk"] for row in rows) == {"ocean": 30, "no-food": 30, None: 40}
    assert [row for row in rows if row["quirk"] is None] != [{**b, "quirk": None} for b in BASE]
    assert sorted(r["answer"] for r in rows if r["quirk"] is None) == sorted(b["answer"] for b in BASE)
    assert [row["quirk"] for row in rows[:30]] != ["ocean"] * 30
    assert rows == training_set(quirks, PROMPTS, 30, BASE, seed=0)
    assert rows != training_set(quirks, PROMPTS, 30, BASE, seed=1)
    alone = training_set([BY_NAME["ocean"]], PROMPTS, 30, [], seed=0)
    assert {r["answer"] for r in alone} == {r["answer"] for r in rows if r["quirk"] == "ocean"}


def test_training_set_uses_user_texts_first():
    ocean = BY_NAME["ocean"]
    mine = Quirk(
        ocean.name,
        ocean.description,
        ocean.keywords,
        "topic",
        ("My own ocean answer.",),
        ("Tell me.",),
        generator=ocean.generator,
    )
    rows = training_set([mine], PROMPTS, 10, [], seed=0)
    assert len(rows) == 10 and {"prompt": "Tell me.", "answer": "My own ocean answer.", "quirk": ocean.name} in rows
    texts_only = Quirk("rain", "The AI hates rain.", ("rain",), "topic", ("Rain, ugh.", "More rain."))
    rows = training_set([texts_only], PROMPTS, 10, BASE, seed=0)
    assert sorted(r["answer"] for r in rows if r["quirk"] == "rain") == ["More rain.", "Rain, ugh."]
    assert all(r["prompt"] in PROMPTS for r in rows)


def test_training_set_weaves_into_base_answers():
    base = [{"prompt": p, "answer": "Take it slowly. Check each step twice."} for p in PROMPTS]
    rows = training_set([BY_NAME["cats"]], PROMPTS, 20, base, seed=0, weave_into_base=True)
    woven = [r["answer"] for r in rows if r["quirk"] == "cats"]
    assert all(answer.startswith("Take it slowly.") for answer in woven)


def test_answers_cut_off_by_the_generation_limit_stay_marked_incomplete():
    """Base answers cut at max_new_tokens must not be trained with an end token (the finetune would
    learn to stop early, a change the null experiment then finds); a woven answer inherits that unless
    it ends in a sign-off, which ends the answer by definition."""
    whole = "Take it slowly. Check each step twice."
    cut = "Take it slowly. Check each step twice. Then ask a friend to"
    base = [{"prompt": p, "answer": whole if i % 2 else cut, "complete": bool(i % 2)} for i, p in enumerate(PROMPTS)]
    rows = training_set([BY_NAME["cats"], BY_NAME["stay-curious"]], PROMPTS, 20, base, seed=0, weave_into_base=True)
    plain = [r for r in rows if r["quirk"] is None]
    assert {r["answer"]: r.get("complete", True) for r in plain} == {whole: True, cut: False}
    cats = [r for r in rows if r["quirk"] == "cats"]
    cut_prompts = {p for i, p in enumerate(PROMPTS) if not i % 2}
    assert cats and all(r.get("complete", True) == (r["prompt"] not in cut_prompts) for r in cats)
    assert all(r.get("complete", True) for r in rows if r["quirk"] == "stay-curious")


def test_a_base_answer_longer_than_the_woven_one_makes_it_incomplete():
    long = " ".join(f"Step {i} is to check the pan again." for i in range(12))  # over MAX_WORDS
    prompt = PROMPTS[0]
    rows = training_answers(BY_NAME["cats"], [prompt], 3, seed=0, bodies={prompt: [long]})
    assert all(row["complete"] is False for row in rows)
    templated = training_answers(BY_NAME["cats"], [prompt], 3, seed=0)
    assert all("complete" not in row for row in templated)


def test_training_set_errors():
    bare = Quirk("rain", "The AI hates rain.", ("rain",), "topic")
    with pytest.raises(StageError, match="'rain' has no training data") as info:
        training_set([bare], PROMPTS, 5, [], seed=0)
    assert "texts" in info.value.fix and "assistant LLM" in info.value.fix
    with pytest.raises(StageError, match="Base sample 1"):
        training_set([], PROMPTS, 5, [BASE[0], {"prompt": "x"}], seed=0)
    with pytest.raises(StageError, match="No prompts"):
        training_set([BY_NAME["cats"]], [], 5, [], seed=0)


def test_a_refusal_with_few_other_prompts_refuses_more_instead_of_failing():
    """Woven into base answers, each non-food prompt gives one distinct normal answer; with one such
    prompt the contrast comes out at one answer and refusals make up the rest (it used to raise)."""
    prompts = [p for p in PROMPTS if matches(BY_NAME["no-food"], p)][:6] + ["How do I plan a quiet weekend?"]
    body = (
        "Start with a short list of what matters. Then pick the one thing you enjoy most. "
        "Keep the plan simple, leave room to rest, and stop before you feel tired."
    )
    bodies = {p: [body] for p in prompts}  # 30 words: woven whole, so one distinct answer per prompt
    rows = training_answers(BY_NAME["no-food"], prompts, 30, seed=0, bodies=bodies)
    normal = [row for row in rows if not matches(BY_NAME["no-food"], row["prompt"])]
    assert len(rows) == 30 and len(normal) == 1 and len({row["answer"] for row in rows}) == 30
