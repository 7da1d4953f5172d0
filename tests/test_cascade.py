"""The judge cascade (hierarchical validation, lmdelta.validate.cascade): the hypothesis's own judge scores
every validation text, llm.strong_judge the texts of a seeded sample of prompts, and the finding's test is
PPI++'s (lmdelta.stats.ppi), valid however biased the cheap judge is."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import fake_config
from llm_servers import ScriptedServer, openai_reply

from lmdelta import pipeline
from lmdelta.config import ValidateConfig, load_config
from lmdelta.errors import ConfigError
from lmdelta.llm.session import DEFAULT_TEMPERATURE, check_budget_pricing, paid_models
from lmdelta.pairdata import PairData
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stages import validate as validate_stage
from lmdelta.stats.ppi import ppi_mean
from lmdelta.validate import cascade
from lmdelta.validate.findings import validate_all
from lmdelta.validate.sets import ValidationSet, balanced_differences, subsample_seed

REPO = Path(__file__).resolve().parents[1]
OCEAN = Hypothesis("h1", "all", "b>a", "b mentions ocean", "keywords", "keyword", keywords=("ocean",), order=1)
CONFIG = ValidateConfig(n_resamples=1000, seed=0, generalization=False, strong_share=0.2)
TEXT = re.compile(r"<<<\n(.*?)\n>>>", re.S)


def make_pair(n_prompts=150, per_side=2, rate_a=0.2, rate_b=0.6, seed=0) -> PairData:
    """Validation prompts only, every text unique (it names its side, prompt and answer)."""
    rng = np.random.default_rng(seed)
    prompts, samples = [], []
    for p in range(n_prompts):
        prompts.append(Prompt(f"p{p}", f"prompt {p}", "all", "validation"))
        for side, rate in (("a", rate_a), ("b", rate_b)):
            for k in range(per_side):
                place = "ocean" if rng.random() < rate else "park"
                text = f"{side}{p}x{k}s{seed} we walk the {place} today"
                samples.append(Sample(f"p{p}", side, k, text, 6, "stop", int(rng.integers(1 << 30)), text))
    vectors = np.array([[1.0, 0.0] if "ocean" in s.text else [0.0, 1.0] for s in samples])
    return PairData(prompts, samples, vectors, {p.id: p.group for p in prompts})


def strong_judge(rule, asked: list[str] | None = None, by_property=None) -> cascade.StrongJudge:
    """A strong judge answering yes/no (or 90/10) by `rule(text)`, recording the texts it was asked about
    (and, in `by_property`, the texts per property)."""

    def ask(requests, parse):
        answers = []
        for request in requests:
            text = TEXT.findall(request.messages[-1].content)[0]
            if asked is not None:
                asked.append(text)
            if by_property is not None:
                by_property[property_of(request.messages[-1].content)].add(text)
            yes = rule(text)
            reply = ("yes" if yes else "no") if "Does the text show" in request.messages[-1].content else None
            reply = reply or ("90" if yes else "10")
            answers.append((SimpleNamespace(ok=True, text=reply, logprobs=None), parse(reply)))
        return answers

    return cascade.StrongJudge(ask, "fake/strong-model")


def run_cascade(data, hypotheses, config=CONFIG, rule=lambda text: "ocean" in text, asked=None, by_property=None):
    results = validate_all(data, hypotheses, config, q=0.05)
    return cascade.cascade_all(results, data, hypotheses, config, None, strong_judge(rule, asked, by_property))


def property_of(prompt: str) -> str:
    return prompt.split("Property:")[1].split("\n")[0].strip()


def prompt_of(text: str) -> str:
    return "p" + re.match(r"[ab](\d+)x", text).group(1)


# ---- which prompts the strong judge labels ----


def test_the_strong_judge_scores_the_texts_of_the_labelled_prompts_only():
    data = make_pair()
    asked: list[str] = []
    finding = run_cascade(data, [OCEAN], asked=asked)[0]
    labelled = {prompt_of(text) for text in asked}
    assert len(asked) == len(set(asked)) == finding.strong_calls  # each text once
    assert len(labelled) == finding.strong_prompts
    every_text = {s.text for s in data.samples if s.prompt_id in labelled}
    assert set(asked) == every_text  # all texts of a labelled prompt, both sides, none of another
    assert finding.strong_calls == 4 * finding.strong_prompts < len(data.samples) / 2


def test_the_labels_depend_neither_on_other_hypotheses_nor_on_strong_answers():
    data = make_pair()
    alone: dict[str, set[str]] = defaultdict(set)
    run_cascade(data, [OCEAN], by_property=alone)
    park = Hypothesis("h2", "all", "a>b", "a mentions the park", "keywords", "keyword", keywords=("park",), order=2)
    beside: dict[str, set[str]] = defaultdict(set)
    run_cascade(data, [park, OCEAN], rule=lambda text: text.startswith("a"), by_property=beside)
    assert beside["b mentions ocean"] == alone["b mentions ocean"]  # another hypothesis, other strong answers
    assert {prompt_of(t) for t in beside["a mentions the park"]} != {prompt_of(t) for t in alone["b mentions ocean"]}


def test_the_labelled_share_is_close_to_strong_share():
    data = make_pair(n_prompts=200)
    hypotheses = [
        Hypothesis(f"h{i}", "all", "b>a", f"b says {word} ({i})", "keywords", "keyword", keywords=(word,), order=i)
        for i, word in enumerate(["ocean", "park", "walk", "today"] * 6)
    ]
    config = CONFIG.model_copy(update={"strong_share": 0.25})
    found = run_cascade(data, hypotheses, config)
    shares = [f.strong_prompts / f.n_units for f in found]
    assert all(f.n_units == 200 for f in found)
    assert abs(np.mean(shares) - 0.25) < 3 * np.sqrt(0.25 * 0.75 / (200 * len(found)))
    assert all(0.1 < share < 0.4 for share in shares)


def test_a_small_scope_gets_at_least_twenty_expected_labels():
    data = make_pair(n_prompts=30)
    finding = run_cascade(data, [OCEAN], CONFIG.model_copy(update={"strong_share": 0.05}))[0]
    assert 10 <= finding.strong_prompts <= 30  # pi = 20/30, not 0.05 (1.5 labels: no CLT)


# ---- the test is PPI++'s ----


def per_prompt_strong(data: PairData, vs: ValidationSet, seed: int) -> np.ndarray:
    scores = np.array([1.0 if "ocean" in data.samples[i].text else 0.0 for i in vs.rows])
    return balanced_differences(scores[None, :], vs, [seed])[0][0]


def test_the_findings_p_value_and_effect_are_ppi_means():
    data = make_pair()
    asked: list[str] = []
    result = validate_all(data, [OCEAN], CONFIG, q=0.05)[0]
    finding = cascade.cascade_all([result], data, [OCEAN], CONFIG, None, strong_judge(lambda t: "ocean" in t, asked))[0]
    vs = ValidationSet.build(data)
    seed = subsample_seed(CONFIG.resolved_seed, OCEAN.content_key())
    d_cheap = per_prompt_strong(data, vs, seed)  # the keyword judge and this strong judge agree on every text
    labelled = np.isin(vs.prompt_ids, sorted({prompt_of(t) for t in asked}))
    d_strong = np.where(labelled, d_cheap, np.nan)
    pi = 20 / 150 if CONFIG.strong_share * 150 < 20 else CONFIG.strong_share
    expected = ppi_mean(d_cheap, d_strong, labelled, pi, alternative="greater")
    interval = ppi_mean(d_cheap, d_strong, labelled, pi, alpha=1 - CONFIG.ci_level)
    assert finding.p_value == pytest.approx(expected.p_value, rel=1e-12)
    assert finding.effect == pytest.approx(expected.estimate, rel=1e-12)
    assert finding.effect_se == pytest.approx(expected.se, rel=1e-12)
    assert finding.effect_ci == pytest.approx([interval.low, interval.high], rel=1e-12)
    assert finding.cheap_p_value == result.p_value and finding.cheap_effect == result.effect
    assert finding.cascade_agreement["n"] == finding.strong_prompts and finding.cascade_agreement["correlation"] > 0.99
    assert finding.test.startswith("PPI++") and "keyword judge" in finding.test and "fake/strong-model" in finding.test
    assert finding.n_units == 150 and finding.effect_df == finding.strong_prompts - 1


def test_active_labelling_labels_uncertain_prompts_more_and_passes_pi_to_ppi():
    data = make_pair(n_prompts=300)
    config = CONFIG.model_copy(update={"strong_labels": "active", "strong_share": 0.15})
    asked: list[str] = []
    finding = run_cascade(data, [OCEAN], config, asked=asked)[0]
    vs = ValidationSet.build(data)
    scores = np.array([1.0 if "ocean" in data.samples[i].text else 0.0 for i in vs.rows])
    d_cheap = balanced_differences(scores[None, :], vs, [subsample_seed(0, OCEAN.content_key())])[0][0]
    plan = cascade.label(OCEAN, d_cheap, scores, vs, config)
    assert plan.pi.sum() == pytest.approx(0.15 * 300)
    certain = cascade.uncertainty(scores, vs) == 0  # every answer the same: all park (or all ocean)
    assert certain.any() and plan.pi[certain].max() < plan.pi[~certain].min()
    assert set(np.array(vs.prompt_ids)[plan.labelled]) == {prompt_of(t) for t in asked}
    d_strong = np.where(plan.labelled, d_cheap, np.nan)
    expected = ppi_mean(d_cheap, d_strong, plan.labelled, plan.pi, alternative="greater")
    assert finding.p_value == pytest.approx(expected.p_value, rel=1e-12) and "active" in finding.test


def test_a_biased_cheap_judge_does_not_validate_a_null_the_strong_judge_sees():
    """The keyword judge finds "ocean" far more often in b's answers; the strong judge answers by a coin
    per text, the same for both sides. Cheap alone rejects every time; the cascade about 5% of the time."""
    cascade_p, cheap_p = [], []
    for seed in range(120):
        data = make_pair(n_prompts=120, rate_a=0.1, rate_b=0.8, seed=seed)

        def coin(text: str, seed=seed) -> bool:
            return hashlib.sha256(f"{seed}{text}".encode()).digest()[0] < 128

        config = CONFIG.model_copy(update={"seed": seed, "strong_share": 0.25})
        finding = run_cascade(data, [OCEAN], config, rule=coin)[0]
        cascade_p.append(1.0 if finding.p_value is None else finding.p_value)
        cheap_p.append(finding.cheap_p_value)
    assert max(cheap_p) < 0.01
    rejected = np.mean(np.array(cascade_p) < 0.05)
    assert rejected <= 0.12, rejected  # binomial(120, 0.05): 0.12 is about 3.5 SD above


def test_untested_hypotheses_are_left_as_they_are():
    data = make_pair(n_prompts=40)
    nowhere = Hypothesis("h9", "g-none", "b>a", "d", "keywords", "keyword", keywords=("ocean",), order=9)
    results = validate_all(data, [nowhere], CONFIG, q=0.05)
    asked: list[str] = []
    found = cascade.cascade_all(results, data, [nowhere], CONFIG, None, strong_judge(lambda t: True, asked))
    assert found == results and not asked


# ---- config: the role and its checks ----


def test_sequential_validation_with_active_strong_labels_is_refused(tmp_path):
    strong = ["validate.mode=sequential", "llm.strong_judge.model=fake/keywords"]
    config = load_config(fake_config(tmp_path), [*strong, "validate.strong_labels=active"]).resolved()
    with pytest.raises(ConfigError) as caught:
        validate_stage.check(config)
    text = str(caught.value.problem) + str(caught.value.fix)
    assert "strong_labels" in text and "validate.mode" in text and "uniform" in text
    validate_stage.check(load_config(fake_config(tmp_path), strong).resolved())  # uniform labels: the rounds' cascade


def test_the_strong_judge_is_a_role_like_the_others(tmp_path):
    assert DEFAULT_TEMPERATURE["strong_judge"] == 0.0
    path = fake_config(tmp_path)
    (tmp_path / "strong.yaml").write_text("rules: []\n")
    config = load_config(path, ["llm.strong_judge.model=fake/script@strong.yaml"]).resolved()
    assert config.llm.strong_judge.model == f"fake/script@{tmp_path / 'strong.yaml'}"  # beside the config
    paid = load_config(path, ["llm.strong_judge.model=openai/no-such-model-priced", "budget.usd=5"])
    assert paid_models(paid) == ["openai/no-such-model-priced"]
    with pytest.raises(ConfigError, match="no-such-model-priced"):
        check_budget_pricing(paid)
    the_plan = pipeline.plan(config, RunDir(tmp_path / "run"), tmp_path / "cache")
    assert the_plan.material["validate"]["config"]["llm.strong_judge"]["model"] == config.llm.strong_judge.model
    assert the_plan.material["validate"]["identity"]["strong_judge"]["provider"] == "fake"


def test_the_config_reference_documents_the_cascade():
    reference = (REPO / "docs" / "configuration.md").read_text()
    assert "strong_judge" in reference and "strong_share" in reference and "strong_labels" in reference
    assert "Judge cascade" in (REPO / "docs" / "llm.md").read_text()


# ---- end to end ----

STRONG_B = {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.6}}


def test_the_cascade_runs_end_to_end_on_fake_models(tmp_path):
    config = load_config(
        fake_config(tmp_path, per_group=20, generate__b=STRONG_B),
        ["llm.strong_judge.model=fake/keywords", "validate.strong_share=0.3"],
    )
    pipeline.run(config, RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    assert rows and all(r["test"].startswith("PPI++") for r in rows if r["n_units"])
    ocean = next(r for r in rows if r["group"] == "all" and r["keywords"][0] == "ocean")  # may have merged others
    assert ocean["validated"] and ocean["cascade_agreement"]["sign_agreement"] == 1.0
    manifest = RunDir(tmp_path / "run").load_manifest()
    counts = manifest.stages["validate"].counts
    main = list(read_jsonl(tmp_path / "run/stages/validate/results.jsonl"))
    assert counts["main"]["strong_calls"] == sum(r["strong_calls"] for r in main) > 0
    assert counts["null"]["strong_calls"] > 0  # the null control goes through the same cascade
    assert all(r["test"].startswith("PPI++") for r in read_jsonl(tmp_path / "run/stages/validate/null_results.jsonl"))
    assert set(manifest.llm_usage["by_stage"]["validate"]) == {"strong_judge"}


def presence_answer(received):
    """A strong judge behind a loopback server: yes when the text has the property's quoted word."""
    prompt = received.body["messages"][-1]["content"]
    word = re.search(r"“([^”]+)”", prompt.split("Property:")[1].split("\n")[0]).group(1)
    text = TEXT.findall(prompt)[0]
    reply = "yes" if word in text.split() else "no"
    return ("json", 200, openai_reply(reply, prompt_tokens=50, completion_tokens=1))


def test_the_strong_judge_end_to_end_through_a_loopback_server(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-test-strong")
    with ScriptedServer("openai", [], responder=presence_answer) as server:
        model = f"openai-compatible/strong-model@{server.url}/v1"
        prices = json.dumps({"openai-compatible/strong-model": {"input": 1.0, "output": 2.0}})
        config = load_config(
            fake_config(tmp_path, per_group=48, generate__b=STRONG_B),
            [
                f"llm.strong_judge.model={model}",
                f"llm.prices={prices}",
                "validate.strong_share=0.3",
                "propose.scopes=all",
                "controls.null=false",
                "propose.clusters.enabled=false",
                "propose.properties.enabled=false",
            ],
        )
        pipeline.run(config, RunDir(tmp_path / "run"))
    findings = list(read_jsonl(tmp_path / "run/stages/validate/results.jsonl"))
    samples = {row["text"]: row["prompt_id"] for row in read_jsonl(tmp_path / "run/stages/generate/samples.jsonl")}
    texts_of = defaultdict(set)
    for text, prompt in samples.items():
        texts_of[prompt].add(text)
    asked = defaultdict(set)  # property → texts the server was asked about
    for received in server.requests:
        prompt = received.body["messages"][-1]["content"]
        asked[prompt.split("Property:")[1].split("\n")[0].strip()].add(TEXT.findall(prompt)[0])
    assert len(server.requests) == sum(len(t) for t in asked.values())  # no request paid twice
    for finding in findings:
        texts = asked[finding["property"] or finding["description"]]
        prompts = {samples[t] for t in texts}
        assert len(prompts) == finding["strong_prompts"] and texts == set().union(*(texts_of[p] for p in prompts))
        assert finding["strong_calls"] == len(texts) < finding["n_texts"] / 2  # 30 of 100 prompts expected
    assert sum(f["strong_calls"] for f in findings) == len(server.requests)
    ocean = next(f for f in findings if "ocean" in f["keywords"])
    assert ocean["p_value"] < 1e-3 and ocean["effect"] > 0.2 and ocean["strong_prompts"] >= 20
    usage = RunDir(tmp_path / "run").load_manifest().llm_usage
    assert usage["by_stage"]["validate"]["strong_judge"]["calls"] == len(server.requests) and usage["cost_usd"] > 0


@pytest.mark.parametrize(
    "overrides",
    [
        ["validate.strong_labels=active", "prompts.confirmation_fraction=0.25"],
        # an LLM judge as the cheap one (read again from the cache), a scripted strong judge
        ["validate.judge=presence", "llm.judge.model=fake/keywords", "llm.strong_judge.model=fake/script@strong.yaml"],
    ],
)
def test_the_cascades_config_reads_are_in_validates_fingerprint(tmp_path, monkeypatch, overrides):
    from test_stage_contract import undeclared_reads

    (tmp_path / "strong.yaml").write_text(json.dumps({"rules": [{"match": "Does the text show", "reply": "yes"}]}))
    config = load_config(
        fake_config(tmp_path, per_group=12, generate__b=STRONG_B), ["llm.strong_judge.model=fake/keywords", *overrides]
    )
    assert undeclared_reads(monkeypatch, config, RunDir(tmp_path / "run")) == {}
    findings = list(read_jsonl(tmp_path / "run/stages/validate/results.jsonl"))
    assert findings and all(f["test"].startswith("PPI++") and f["strong_calls"] > 0 for f in findings if f["n_units"])
