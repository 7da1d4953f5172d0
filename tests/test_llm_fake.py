"""Fake assistant models a config can name (issue 12 item 6): `fake/script@PATH` answers from a
script, `fake/keywords` answers lmdelta's own role prompts. Both go through the normal ChatClient
(cache, limiter, ledger), cost nothing, and fail loudly when they cannot answer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import fake_config

from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import ConfigError
from lmdelta.llm import prompts
from lmdelta.llm.cache import ResponseCache
from lmdelta.llm.client import ChatClient
from lmdelta.llm.pricing import PriceTable
from lmdelta.llm.providers import build_provider, parse_model_string
from lmdelta.llm.providers.fake import KeywordChat, ScriptedChat, keywords_of
from lmdelta.llm.session import check_budget_pricing
from lmdelta.llm.types import ChatRequest, Message, ProviderError
from lmdelta.rundir import RunDir, read_jsonl

REPO = Path(__file__).resolve().parents[1]
PROPOSAL = [{"direction": "b>a", "property": "mentions the ocean", "description": "Model B mentions the ocean"}]
JUDGE_RULES = [
    {"match": r"Property: mentions the ocean\n.*<<<\n[^>]*ocean", "reply": "90"},
    {"match": "You will rate one text", "reply": "10"},
]


def script(tmp_path: Path, data, name: str = "script.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def user(text: str) -> ChatRequest:
    return ChatRequest((Message("user", text),))


def answer(provider, request: ChatRequest) -> str:
    return asyncio.run(provider.complete(request)).text


# ---- fake/script@PATH ----


def test_rules_answer_by_regex_and_replies_in_order_then_it_fails_loudly(tmp_path):
    path = script(tmp_path, {"rules": [{"match": "^Score", "reply": 7}], "replies": ["first", {"json": True}]})
    provider = build_provider(f"fake/script@{path}")
    assert isinstance(provider, ScriptedChat) and provider.name == "fake"
    assert answer(provider, user("Score this")) == "7"  # a non-string reply is sent as JSON
    assert answer(provider, user("anything")) == "first"
    assert answer(provider, user("Score again")) == "7"  # rules do not use up replies
    assert answer(provider, user("more")) == '{"json": true}'
    with pytest.raises(ProviderError) as err:
        answer(provider, user("one too many"))
    assert err.value.kind == "bad_request" and str(path) in err.value.message
    assert "run out" in err.value.message and "one too many" in err.value.message


def test_a_bare_list_is_a_list_of_replies(tmp_path):
    provider = build_provider(f"fake/script@{script(tmp_path, ['a', 'b'])}")
    assert [answer(provider, user("x")) for _ in range(2)] == ["a", "b"]


def test_the_identity_follows_the_script_content_not_its_path(tmp_path):
    one = build_provider(f"fake/script@{script(tmp_path, ['a'], 'one.yaml')}").identity()
    same = build_provider(f"fake/script@{script(tmp_path, ['a'], 'two.json')}").identity()
    other = build_provider(f"fake/script@{script(tmp_path, ['b'], 'three.yaml')}").identity()
    assert one == same != other and one["provider"] == "fake" and one["model"] == "script"


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        ("fake/script", "which script"),
        ("fake/script@{tmp}/missing.yaml", "Cannot read"),
        ("fake/scrip@x.yaml", "Did you mean fake/script@PATH"),
        ("fake/keyword", "Did you mean fake/keywords"),
        ("fake/keywords@x.yaml", "Unknown fake model"),
    ],
)
def test_bad_fake_model_strings_say_what_to_write(tmp_path, model, problem):
    with pytest.raises(ConfigError) as err:
        build_provider(model.format(tmp=tmp_path))
    assert problem in str(err.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("rules: [oops", "not valid YAML"),
        ("{}", "no rules or replies"),
        ("reply: [a]", "unknown section"),
        ("rules: {match: x, reply: y}", "must be a list"),
        ("rules: [{match: x}]", "Rule 1"),
        ("rules: [{match: '(', reply: y}]", "invalid regular expression"),
    ],
)
def test_bad_scripts_are_refused_when_built(tmp_path, content, problem):
    with pytest.raises(ConfigError) as err:
        build_provider(f"fake/script@{script(tmp_path, content)}")
    assert problem in str(err.value) and "script.yaml" in str(err.value)


def test_fakes_take_no_backend_args_or_base_url(tmp_path):
    with pytest.raises(ConfigError, match="backend_args"):
        build_provider("fake/keywords", backend_args={"seed": 1})
    with pytest.raises(ConfigError, match="base_url"):
        build_provider("fake/keywords", base_url="http://localhost:1/v1")
    assert parse_model_string("FAKE/keywords").provider == "fake"
    with pytest.raises(ConfigError, match="Did you mean fake/keywords"):
        parse_model_string("mockllm/keywords")


# ---- fake/keywords ----


def test_keywords_answers_every_role_prompt_in_a_form_its_parser_reads():
    fake = KeywordChat()
    prop = 'uses the word "ocean"'
    assert prompts.parse_score(answer(fake, prompts.unitary_request(prop, "The ocean is deep."))) == 0.9
    assert prompts.parse_score(answer(fake, prompts.unitary_request(prop, "The park is green."))) == 0.1
    assert prompts.parse_presence(answer(fake, prompts.presence_request(prop, "Ocean waves."))) == 1.0
    assert prompts.parse_choice(answer(fake, prompts.pairwise_request(prop, "a park", "an ocean"))) == 2
    found = prompts.parse_hypotheses(
        answer(
            fake,
            prompts.propose_request(
                ["a walk in the park", "the park is warm"], ["the ocean is blue", "ocean and park"], k=1
            ),
        )
    )
    assert found == [
        {
            "direction": "b>a",
            "property": 'uses the word "ocean"',
            "description": 'Model B uses the word "ocean" more often than Model A',
        }
    ]
    shown = prompts.parse_examples(answer(fake, prompts.examples_request("mentions the ocean", True, 3)))
    hidden = prompts.parse_examples(answer(fake, prompts.examples_request("mentions the ocean", False, 1)))
    assert len(shown) == 3 and all("ocean" in e["answer"] for e in shown) and "ocean" not in hidden[0]["answer"]
    bank = prompts.parse_prompt_list(answer(fake, prompts.prompt_bank_request("cooking at home", 4, 12)), 12)
    assert len(bank) == 4 and all("cooking" in p for p in bank)


def test_keywords_refuses_a_prompt_it_does_not_know():
    with pytest.raises(ProviderError) as err:
        answer(KeywordChat(), user("Summarise these themes."))
    assert err.value.kind == "bad_request" and "fake/script@PATH" in err.value.message


def test_a_property_is_about_its_quoted_words_else_its_content_words():
    assert keywords_of('uses the word "ocean"') == ["ocean"]
    assert keywords_of("mentions the ocean and whales more often") == ["ocean", "whales"]


# ---- through the client: cached, counted, free ----


def test_fakes_go_through_the_client_cache_and_ledger_at_no_cost(tmp_path):
    request = prompts.unitary_request('uses the word "ocean"', "The ocean.")
    with ResponseCache(tmp_path / "llm.sqlite") as cache:
        client = ChatClient(build_provider("fake/keywords"), cache=cache)
        first, second = client.run([request]), client.run([request])
    assert first[0].text == second[0].text == "90" and second[0].cached
    total = client.ledger.total()
    assert total.calls == 1 and total.cached == 1 and total.cost_usd == 0.0 and total.unpriced_calls == 0
    assert PriceTable().lookup("fake", "keywords").input == 0.0


def test_fake_models_pass_the_budget_price_check(tmp_path):
    config = load_config(
        fake_config(tmp_path),
        ["budget.usd=1", "llm.judge.model=fake/keywords", f"llm.proposer.model=fake/script@{script(tmp_path, ['x'])}"],
    )
    check_budget_pricing(config)


# ---- a YAML run with a fake proposer and judge, through the CLI ----


def fake_llm_config(tmp_path: Path, proposer: list | dict, judge: list | dict) -> Path:
    path = fake_config(
        tmp_path,
        per_group=16,
        generate__b={"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.8}},
        propose__keywords={"enabled": False},
        propose__clusters={"enabled": False},
        propose__properties={"enabled": False},
        propose__scopes="all",
        propose__rounds=1,  # a script's replies are used in order: one proposal, one round
        controls__null=False,
        budget__usd=1.0,
        llm={
            "proposer": {"model": f"fake/script@{script(tmp_path, proposer, 'proposer.yaml')}"},
            "judge": {"model": f"fake/script@{script(tmp_path, judge, 'judge.yaml')}"},
        },
    )
    return path


def run_cli(config: Path, run_dir: Path):
    return CliRunner().invoke(main, ["run", str(config), "--run-dir", str(run_dir)])


def test_lmdelta_run_with_a_fake_proposer_and_judge_end_to_end(tmp_path):
    config = fake_llm_config(tmp_path, [json.dumps(PROPOSAL)], {"rules": JUDGE_RULES})
    result = run_cli(config, tmp_path / "one")
    assert result.exit_code == 0, result.output
    rows = list(read_jsonl(tmp_path / "one/hypotheses.jsonl"))
    assert [(r["proposer"], r["judge"], r["property"], r["validated"]) for r in rows] == [
        ("llm", "llm-unitary", "mentions the ocean", True)
    ]
    usage = RunDir(tmp_path / "one").load_manifest().llm_usage
    assert set(usage["by_stage"]) == {"propose", "validate"} and usage["calls"] > 1
    assert usage["cost_usd"] == 0.0 and usage["unpriced_models"] == []
    # A second run of the same config is answered from the LLM cache: no call reaches the fakes.
    assert run_cli(config, tmp_path / "two").exit_code == 0
    again = RunDir(tmp_path / "two").load_manifest().llm_usage
    assert again["calls"] == 0 and again["cached"] == usage["requests"]
    assert [r["p_value"] for r in read_jsonl(tmp_path / "two/hypotheses.jsonl")] == [r["p_value"] for r in rows]


def test_a_script_that_runs_out_stops_the_stage_and_names_the_script(tmp_path):
    config = fake_llm_config(tmp_path, [json.dumps(PROPOSAL)], ["90", "10"])
    result = run_cli(config, tmp_path / "run")
    assert result.exit_code == 2
    assert "judge.yaml has run out" in result.output and "add a rule or a reply" in result.output
    assert RunDir(tmp_path / "run").load_manifest().stages["validate"].status == "interrupted"


def test_the_example_config_runs_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its script path is relative to the config file, wherever lmdelta runs
    result = run_cli(REPO / "configs" / "fake-llm.yaml", tmp_path / "run")
    assert result.exit_code == 0, result.output
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    assert [r["property"] for r in rows if r["validated"]] == ["mentions the ocean"]
