"""The text-property proposer and judge (issue 13): differing properties proposed from discovery answers
with readable descriptions and the right direction, nothing on identical sides, one view per question,
the property judge's scores and prevalences, the measure in the records, the config's checks, and a
user-defined property from YAML validated end to end in corpus mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from lmdelta import judges, pipeline
from lmdelta.config import RunConfig, ValidateConfig, load_config, validate_config
from lmdelta.errors import ConfigError
from lmdelta.judges.inputs import JudgeInput
from lmdelta.pairdata import PairData, null_pair
from lmdelta.properties import get
from lmdelta.properties.reference import BEGIN, END, table
from lmdelta.proposers import properties
from lmdelta.records import Finding, Hypothesis, Prompt, Sample
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stages.propose import SCOPE_PROPOSERS, propose_all
from lmdelta.validate.findings import validate_all
from lmdelta.validate.sets import ValidationSet

DOCS = Path(__file__).resolve().parents[1] / "docs" / "properties.md"
PLAIN = "The answer to question {i} is short."
LONG = "The answer to question {i} is this one, which goes on and on with many more words than the other side uses."
CHEERY = "Great, the answer to question {i} is short!"


def pair(a: str = PLAIN, b: str = PLAIN, n: int = 30, aligned: bool = True, rate_b: float = 1.0) -> PairData:
    """n prompts (a third discovery) in groups g0/g1, one answer per side; b's answer is `b` on a share
    rate_b of the prompts, `a` elsewhere. Unaligned: every answer is its own prompt."""
    prompts, samples = [], []
    for i in range(n):
        split = "discovery" if i % 3 == 0 else "validation"
        b_text = b if (i * 7919) % 100 < 100 * rate_b else a
        for side, text in (("a", a), ("b", b_text)):
            pid = f"p{i}" if aligned else f"p{i}{side}"
            samples.append(Sample(pid, side, 0, text.format(i=i), 10, "stop", i, f"{side}{i}"))
            if not aligned or side == "a":
                prompts.append(Prompt(pid, f"question {i}", f"g{i % 2}", split))
    vectors = np.random.default_rng(0).normal(size=(len(samples), 2))
    return PairData(prompts, samples, vectors, {p.id: p.group for p in prompts}, labels={"a": "base", "b": "tuned"})


def config(**section) -> RunConfig:
    return RunConfig.model_validate({"propose": {"properties": section}}).resolved()


def proposed(data: PairData, scope: str = "all", **section) -> list[Hypothesis]:
    cfg = config(**section)
    proposer = properties.prepare(data, cfg)
    assert proposer is not None
    return proposer.propose(data, scope, data.rows("discovery", scope), cfg)


def test_longer_answers_are_proposed_in_the_right_direction_with_their_numbers():
    found = {h.measure: h for h in proposed(pair(b=LONG))}
    words = found["words"]
    assert words.direction == "b>a" and words.judge == "property" and words.proposer == "properties"
    assert re.fullmatch(r"tuned's answers are longer: median \d+ vs 7 words", words.description)
    assert words.property.startswith("a high value of words") and "tuned" not in words.property
    assert words.provenance["unit"] == "prompt" and words.provenance["n_units"] == 10
    assert words.provenance["screening_p"] < 0.05 and words.provenance["discovery"]["a"] == 7
    assert words.evidence == {"a": ["a:p0:0", "a:p3:0", "a:p6:0"], "b": ["b:p0:0", "b:p3:0", "b:p6:0"]}
    assert "characters" not in found  # the same question as words: only the clearer one
    shorter = {h.measure: h for h in proposed(pair(a=LONG))}["words"]
    assert shorter.direction == "a>b" and shorter.description.startswith("base's answers are longer")


def test_exclamation_marks_are_proposed_once_as_the_clearer_view():
    found = proposed(pair(b=CHEERY, rate_b=0.8))
    marks = [h for h in found if h.measure.endswith("exclamation_marks")]
    assert len(marks) == 1 and marks[0].direction == "b>a"
    assert marks[0].measure == "has_exclamation_marks"  # 0 or 1 per answer: the view and the count tie
    assert re.fullmatch(r"tuned uses exclamation marks in more answers: \d+% vs 0% of answers", marks[0].description)
    assert marks[0].property.startswith("uses exclamation marks")


def test_identical_sides_propose_nothing():
    assert proposed(pair()) == []
    assert proposed(pair(a=LONG, b=LONG, aligned=False)) == []


def test_a_groups_hypotheses_name_their_group_and_are_capped_strongest_first():
    found = proposed(pair(b=CHEERY + " " + LONG), scope="g1", per_scope=2)
    assert len(found) == 2 and all(h.group == "g1" and h.description.endswith("(prompts about g1)") for h in found)
    ts = [abs(h.provenance["t"]) if h.provenance["t"] is not None else np.inf for h in found]
    assert ts == sorted(ts, reverse=True)


def test_the_screen_needs_a_small_p_and_a_large_enough_effect():
    noisy = pair(b=CHEERY, rate_b=0.3)
    assert any(h.measure == "has_exclamation_marks" for h in proposed(noisy))
    assert not any("exclamation" in h.measure for h in proposed(noisy, max_p=1e-9))
    assert not any("exclamation" in h.measure for h in proposed(noisy, min_effect=5.0))


def test_unaligned_corpora_contrast_texts():
    found = {h.measure: h for h in proposed(pair(b=LONG, aligned=False))}
    assert found["words"].direction == "b>a" and found["words"].provenance["unit"] == "text"
    assert found["words"].provenance["n_units"] == 20


def test_include_and_exclude_choose_the_properties_and_cover_presence_views():
    data = pair(b=CHEERY + " " + LONG)
    assert {h.measure for h in proposed(data, include=["words"])} == {"words"}
    assert not any("exclamation" in h.measure for h in proposed(data, exclude=["exclamation_marks"]))
    assert {h.measure for h in proposed(data, include=["has_exclamation_marks"])} == {"has_exclamation_marks"}
    assert properties.prepare(data, config(enabled=False)) is None


def test_the_property_proposer_comes_after_keywords_and_clusters():
    assert [p.__module__.rsplit(".", 1)[-1] for p in SCOPE_PROPOSERS] == ["keywords", "clusters", "properties"]
    data = pair(b=LONG)
    no_dedup = RunConfig.model_validate({"propose": {"dedup": {"enabled": False}}}).resolved()
    hypotheses, _ = propose_all(data, no_dedup)  # each group repeats the pooled scope's length finding
    order = ["keywords", "clusters", "properties"]
    for scope in ("all", "g0", "g1"):  # each scope: every scope proposer in turn
        proposers = [h.proposer for h in hypotheses if h.group == scope]
        assert "properties" in proposers and proposers == sorted(proposers, key=order.index)


def test_the_null_control_proposes_from_its_relabelled_sides():
    relabelled = null_pair(pair(b=LONG), seed=0)
    for h in proposed(relabelled):
        assert "relabelled" in h.description


def test_the_property_judge_scores_the_property_on_its_scale():
    texts = ["Short.", "Wow! Great! Amazing!", ""]
    words = Hypothesis("h", "all", "b>a", "d", "properties", "property", measure="words")
    marks = Hypothesis("h", "all", "b>a", "d", "properties", "property", measure="has_exclamation_marks")
    scores = judges.JUDGES["property"]([words, marks], JudgeInput(texts, np.zeros((3, 2))))
    np.testing.assert_allclose(scores[0], get("words").to_unit(get("words").score(texts)))
    assert scores[1].tolist() == [0.0, 1.0, 0.0] and np.all((scores[0] >= 0) & (scores[0] <= 1))
    assert judges.is_presence_mode(marks, "auto") and not judges.is_presence_mode(words, "auto")
    assert judges.is_presence_mode(words, "presence")


def test_a_user_propertys_hypothesis_carries_its_spec_and_round_trips():
    spec = {"name": "citations", "description": "Bracketed numeric citations.", "regex": r"\[\d+\]", "count": True}
    h = Hypothesis("h", "all", "b>a", "d", "properties", "property", measure="has_citations", measure_spec=spec)
    assert Hypothesis.from_dict(json.loads(json.dumps(h.to_dict()))) == h
    assert judges.score(h, ["see [1] and [2]", "none"], np.zeros((2, 2))).tolist() == [1.0, 0.0]
    old = Hypothesis("h", "all", "b>a", "d", "keywords", "keyword", keywords=("ocean",), property="uses “ocean”")
    row = old.to_dict()
    assert "measure" not in row and "measure_spec" not in row and Hypothesis.from_dict(row) == old
    assert old.content_key() == ["all", "b>a", "keyword", ["ocean"], "uses “ocean”", None]
    assert h.content_key() != Hypothesis(**{**h.__dict__, "measure": "citations"}).content_key()


def test_findings_of_property_judges_carry_the_property_in_its_own_unit():
    data = pair(b=LONG)
    words = Hypothesis("h1", "all", "b>a", "d", "properties", "property", measure="words", order=1)
    marks = Hypothesis("h2", "all", "b>a", "d", "properties", "property", measure="has_exclamation_marks", order=2)
    ocean = Hypothesis("h3", "all", "b>a", "d", "keywords", "keyword", keywords=("ocean",), order=3)
    rows = validate_all(data, [words, marks, ocean], ValidateConfig(n_resamples=2000, seed=0), 0.05)
    assert rows[0].measure == "words" and rows[0].measure_statistic == "median" and rows[0].measure_unit == "words"
    assert rows[0].measure_a == 7 and rows[0].measure_b > 15 and rows[0].p_value < 0.001
    assert rows[0].prevalence_a is None and rows[1].prevalence_a == 0.0  # presence views get prevalences
    assert rows[1].measure_statistic == "share" and rows[1].measure_a == rows[1].measure_b == 0.0
    assert "measure" not in rows[2].to_dict() and "measure_a" not in rows[2].to_dict()
    assert Finding.from_dict(json.loads(json.dumps(rows[0].to_dict()))) == rows[0]


@pytest.mark.parametrize(
    "section, match",
    [
        ({"include": ["exclamation"]}, r"propose\.properties\.include.*Did you mean exclamation_marks"),
        ({"exclude": ["word"]}, r"propose\.properties\.exclude.*Did you mean words"),
        ({"custom": [{"name": "x", "description": "X.", "regex": "("}]}, r"custom.*regex '\(' is invalid"),
        ({"custom": [{"name": "words", "description": "W.", "regex": "w"}]}, r"custom.*named words already exists"),
        ({"custom": [{"name": "x", "description": "X.", "regexp": "y"}]}, r"custom.*Did you mean 'regex'"),
        ({"custom": ["x"]}, r"custom\.0 is invalid: Input should be a valid dictionary"),
    ],
)
def test_bad_property_settings_are_refused_at_config_load(section, match):
    with pytest.raises(ConfigError, match=match):
        validate_config({"propose": {"properties": section}})


def test_a_user_property_can_be_included_by_name():
    spec = {"name": "citations", "description": "Citations.", "regex": r"\[\d+\]", "count": True}
    chosen = config(custom=[spec], include=["citations"]).propose.properties.chosen()
    assert [p.name for p in chosen] == ["citations", "has_citations"]


def test_a_user_property_from_yaml_is_validated_end_to_end_in_a_corpus_run(tmp_path):
    rows = []
    for p in range(40):
        for side in ("base", "tuned"):
            cited = side == "tuned" and p % 5 != 0
            text = f"Answer to question {p}: the park is green" + (f" as shown [{p % 7 + 1}]." if cited else ".")
            rows.append({"side": side, "text": text, "prompt_id": f"q{p}", "prompt": f"Question {p}?"})
    corpus = tmp_path / "outputs.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "config.yaml").write_text(
        f"""
prompts: {{source: corpus}}
corpus: {{path: {corpus}}}
generate: {{a: {{label: base}}, b: {{label: tuned}}}}
embed: {{model: "fake:hashing"}}
validate: {{n_resamples: 2000}}
controls: {{null: false}}
propose:
  keywords: {{enabled: false}}
  clusters: {{enabled: false}}
  properties:
    include: [citations]
    custom:
      - name: citations
        description: Bracketed numeric citations such as [3].
        regex: '\\[\\d+\\]'
        phrase: cites sources
"""
    )
    pipeline.run(load_config(tmp_path / "config.yaml"), RunDir(tmp_path / "run"))
    found = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    assert len(found) == 1 and found[0]["validated"] and found[0]["judge"] == "property"
    assert found[0]["description"].startswith("tuned cites sources in more answers: ")
    assert found[0]["measure"] == "citations" and found[0]["measure_spec"]["regex"] == r"\[\d+\]"
    assert found[0]["measure_statistic"] == "share" and found[0]["measure_b"] > 0.6 > found[0]["measure_a"] == 0.0


def test_the_properties_page_lists_every_property_as_the_catalogue_defines_it():
    text = DOCS.read_text()
    generated = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")
    assert generated == table().strip("\n"), (
        "regenerate the table: .venv/bin/python -c "
        "\"from lmdelta.properties.reference import sync; sync('docs/properties.md')\""
    )


def test_validation_scores_each_text_once_a_part_at_a_time(monkeypatch: pytest.MonkeyPatch):
    """The judge's scores and the finding's property in its unit come from one pass over the validation texts, in
    parts (the finding's summary had scored all validation texts again, in one batch: every token of 1.4 M texts)."""
    from dataclasses import replace

    from lmdelta.judges import property as property_judge
    from lmdelta.properties import values as values_module
    from lmdelta.validate import findings

    batches: list[int] = []
    words = get("words")

    def counted(texts):
        batches.append(len(texts))
        return words.scorer(texts)

    prop = replace(words, scorer=counted)
    monkeypatch.setattr(property_judge, "measure_of", lambda h: prop)
    monkeypatch.setattr(findings, "measure_of", lambda h: prop)
    monkeypatch.setattr(findings, "Values", lambda texts: values_module.Values(texts, part=7))
    h = Hypothesis("h1", "all", "b>a", "d", "properties", "property", measure="words", order=1)
    data = pair(b=LONG)
    (row,) = validate_all(data, [h], ValidateConfig(n_resamples=2000, seed=0), 0.05)
    assert sum(batches) == len(ValidationSet.build(data).rows) == 40 and max(batches) == 7
    assert row.measure_a == 7 and row.measure_b > 15


def test_a_user_property_is_built_once_so_its_values_are_scored_once():
    from lmdelta.judges.property import measure_of
    from lmdelta.properties.values import Values

    spec = {"name": "citations", "description": "Bracketed numeric citations.", "regex": r"\[\d+\]", "count": True}
    first = Hypothesis("h1", "all", "b>a", "d", "properties", "property", measure="has_citations", measure_spec=spec)
    copied = dict(spec)  # an equal spec read from another hypothesis's record
    second = Hypothesis("h2", "g1", "b>a", "d", "properties", "property", measure="has_citations", measure_spec=copied)
    assert measure_of(first) is measure_of(second)  # one scorer: Values keeps one set of values for both
    held = Values(["see [1] and [2]", "none"])
    assert [v.tolist() for v in held.of([measure_of(first), measure_of(second)])] == [[1.0, 0.0], [1.0, 0.0]]
    assert len(held._found) == 1
    other = Hypothesis("h3", "all", "b>a", "d", "properties", "property", measure="citations", measure_spec=spec)
    assert measure_of(other) is not measure_of(first) and measure_of(other).kind == "amount"
    wrong = Hypothesis("h4", "all", "b>a", "d", "properties", "property", measure="links", measure_spec=spec)
    with pytest.raises(ConfigError, match="neither the user property"):
        measure_of(wrong)


def test_with_an_llm_judge_the_property_summaries_share_one_pass(monkeypatch: pytest.MonkeyPatch):
    """validate.judge set to an LLM mode: no property judge scores the texts, and the findings' summaries of all
    property hypotheses come from one pass over the texts (one batch, its tokens shared), not one pass each."""
    from dataclasses import replace

    from lmdelta.validate import findings

    batches: list[object] = []

    def counted(prop):
        def scorer(texts):
            batches.append(texts)
            return prop.scorer(texts)

        return replace(prop, scorer=scorer)

    props = {name: counted(get(name)) for name in ("words", "has_exclamation_marks")}
    monkeypatch.setattr(findings, "measure_of", lambda h: props[h.measure])
    monkeypatch.setattr(findings.judges, "score_hypotheses", lambda hs, *rest, **named: [np.full(40, 0.5)] * len(hs))
    hyps = [
        Hypothesis(f"h{k}", "all", "b>a", "d", "properties", "property", measure=name, order=k)
        for k, name in enumerate(props)
    ]
    rows = validate_all(pair(b=LONG), hyps, ValidateConfig(n_resamples=2000, seed=0, judge="unitary"), 0.05)
    assert len(batches) == 2 and batches[0] is batches[1] and len(batches[0]) == 40  # one batch of the 40 texts
    assert rows[0].measure_a == 7 and rows[0].measure_b > 15
