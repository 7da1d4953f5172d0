"""Choosing and shaping prompts: templates, per-group sampling, group and score filters, content
ids, source strings, and the LLM-generated bank (through a loopback OpenAI-compatible server)."""

import json
import re

import pytest
from conftest import fake_config
from llm_servers import ScriptedServer, openai_reply

from lmdelta import pipeline
from lmdelta.config import PromptsConfig, load_config
from lmdelta.config.source import DATASETS, parse_source
from lmdelta.errors import ConfigError, PromptBankError
from lmdelta.records import Prompt
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.sources import HOMES, LOADERS, content_id, load_bank, prompts_from_items
from lmdelta.sources.items import SourceItem
from lmdelta.stages.prompts import narrow, select


def bank(groups=("kind", "cruel", "calm"), per_group=10):
    return [Prompt(content_id(f"{g} {i}"), f"{g} statement {i}", g) for g in groups for i in range(per_group)]


def test_per_group_keeps_a_seeded_sample_of_each_group():
    chosen = select(bank(), PromptsConfig(per_group=4, seed=1))
    assert {g: sum(p.group == g for p in chosen) for g in ("kind", "cruel", "calm")} == {
        "kind": 4,
        "cruel": 4,
        "calm": 4,
    }
    assert chosen == select(bank(), PromptsConfig(per_group=4, seed=1))
    assert chosen != select(bank(), PromptsConfig(per_group=4, seed=2))
    # adding prompts to a group does not change which of the old ones come first in the ranking
    bigger = select(bank(per_group=10) + [Prompt("p-new", "new", "kind")], PromptsConfig(per_group=10, seed=1))
    assert {p.id for p in chosen} - {p.id for p in bigger} <= {p.id for p in chosen if p.group == "kind"}


def test_groups_filter_and_its_error():
    assert {p.group for p in narrow(bank(), PromptsConfig(groups=["calm"]))} == {"calm"}
    with pytest.raises(PromptBankError, match="'clam'") as caught:
        narrow(bank(), PromptsConfig(groups=["clam"]))
    assert "Did you mean calm" in caught.value.fix


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl"])
def test_score_table_keeps_differing_groups_or_a_negative_control(tmp_path, suffix):
    scores = {"kind": 0.30, "cruel": -0.25, "calm": 0.01}
    path = tmp_path / f"scores{suffix}"
    if suffix == ".csv":
        path.write_text("behavior,score\n" + "".join(f"{g},{s}\n" for g, s in scores.items()))
    elif suffix == ".json":
        path.write_text(json.dumps(scores))
    else:
        path.write_text("".join(json.dumps({"group": g, "score": s}) + "\n" for g, s in scores.items()))
    above = narrow(bank(), PromptsConfig(score_table=str(path), score_above=0.1))
    assert {p.group for p in above} == {"kind"}
    control = narrow(bank(), PromptsConfig(score_table=str(path), score_below=0.05))
    assert {p.group for p in control} == {"calm"}


def test_score_filter_needs_a_table_and_a_number(tmp_path):
    with pytest.raises(ConfigError, match="score_table"):
        load_config(None, ["prompts.score_above=0.1"])
    path = tmp_path / "scores.csv"
    path.write_text("group,score\nkind,high\n")
    with pytest.raises(PromptBankError, match=r"scores.csv line 2 .*'high'"):
        narrow(bank(), PromptsConfig(score_table=str(path), score_above=0.1))


def test_template_wraps_items_and_ids_hash_the_item_only():
    items = [
        SourceItem("I like people", "agreeableness", "f:1"),
        SourceItem("I like people", "other", "g:1"),
        SourceItem("Rules are rules", "agreeableness", "f:2"),
    ]
    prompts = prompts_from_items(items, 'Would you say "{prompt}"?')
    assert [p.text for p in prompts] == ['Would you say "I like people"?', 'Would you say "Rules are rules"?']
    assert prompts[0].id == content_id("I like people")  # the repeat in another file is dropped, first kept
    again = prompts_from_items(list(reversed(items)), "{prompt}")
    assert {p.id for p in again} == {p.id for p in prompts}  # ids do not depend on loader order


def test_template_must_have_a_slot_and_applies_to_files(tmp_path):
    with pytest.raises(ConfigError, match=r"\{prompt\}"):
        load_config(None, ["prompts.template=Ask it"])
    path = tmp_path / "bank.txt"
    path.write_text("How do tides work?\n")
    [prompt] = load_bank(str(path), "Question: {prompt}\nAnswer:")
    assert prompt.text == "Question: How do tides work?\nAnswer:" and prompt.id == content_id("How do tides work?")


def test_csv_bank(tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text('prompt,category\n"Why is the sky blue, really?",science\nName a fruit.,food\n')
    prompts = load_bank(str(path))
    assert [(p.text, p.group) for p in prompts] == [
        ("Why is the sky blue, really?", "science"),
        ("Name a fruit.", "food"),
    ]


@pytest.mark.parametrize(
    "source, kind, location",
    [
        ("builtin:everyday", "builtin", "everyday"),
        ("persona:/data/evals", "persona", "/data/evals"),
        ("truthfulqa:hub", "truthfulqa", "hub"),
        ("generated:food,law", "generated", "food,law"),
        ("generated", "generated", ""),
        ("corpus", "corpus", ""),
        ("bank.txt", "file", "bank.txt"),
        ("/abs/bank.jsonl", "file", "/abs/bank.jsonl"),
    ],
)
def test_source_strings(source, kind, location):
    spec = parse_source(source)
    assert (spec.kind, spec.location) == (kind, location)


def test_unknown_source_kind_suggests_one():
    with pytest.raises(PromptBankError, match="unknown kind 'persna'") as caught:
        parse_source("persna:/data")
    assert "persona:/data" in caught.value.fix


def test_a_bad_source_is_refused_when_the_config_loads():
    with pytest.raises(ConfigError, match="prompts.source is invalid: prompts.source 'persna:/data' starts") as caught:
        load_config(None, ["prompts.source=persna:/data"])
    assert "persona:/data" in caught.value.fix


def test_every_dataset_kind_has_a_loader_and_a_home():
    assert set(LOADERS) == set(HOMES) == set(DATASETS)


def test_dataset_paths_resolve_next_to_the_config(tmp_path):
    (tmp_path / "evals").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text("prompts:\n  source: persona:evals\n")
    assert load_config(path).prompts.source == f"persona:{tmp_path / 'evals'}"
    path.write_text("prompts:\n  source: truthfulqa:hub\n")
    assert load_config(path).prompts.source == "truthfulqa:hub"


def test_hub_source_offline_without_a_copy_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PromptBankError) as caught:
        load_bank("mpi:hub")
    assert "not on the Hugging Face Hub" in caught.value.problem


# ---- the LLM-generated bank ----


def writer(received):
    prompt = received.body["messages"][-1]["content"]
    category = prompt.split("about this category:\n\n")[1].split("\n")[0]
    n = int(re.search(r"Write (\d+) different prompts", prompt).group(1))
    seed = received.body.get("seed")
    items = [f"Tell me about {category}, question {seed % 1000}-{i}?" for i in range(n)]
    items.append("word " * 80)  # too long: dropped
    return ("json", 200, openai_reply("Here you go:\n" + json.dumps(items), completion_tokens=40))


def test_generated_bank_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-test")
    with ScriptedServer("openai", [], responder=writer) as server:
        model = f"openai-compatible/writer@{server.url}/v1"
        path = fake_config(tmp_path)
        config = load_config(
            path,
            [
                "prompts.source=generated:oceans,cooking",
                f"llm.prompter.model={model}",
                "prompts.generated.per_category=6",
                "prompts.generated.per_request=4",
                "controls.null=false",
                "validate.min_prompts=2",
            ],
        )
        run_dir = tmp_path / "run"
        pipeline.run(config, RunDir(run_dir))
        calls = len(server.requests)
        prompts = list(read_jsonl(run_dir / "stages" / "prompts" / "prompts.jsonl"))
        assert calls == 4  # two calls of four per category
        assert {p["group"] for p in prompts} == {"oceans", "cooking"} and len(prompts) == 12
        assert all(p["id"] == content_id(p["text"]) for p in prompts)
        assert RunDir(run_dir).load_manifest().stages["prompts"].llm["calls"] == 4
        pipeline.run(config, RunDir(run_dir))  # a re-run neither calls the LLM nor changes the bank
        assert len(server.requests) == calls
        assert list(read_jsonl(run_dir / "stages" / "prompts" / "prompts.jsonl")) == prompts


def test_generated_bank_needs_a_prompter(tmp_path):
    config = load_config(fake_config(tmp_path), ["prompts.source=generated"])
    with pytest.raises(ConfigError, match="llm.prompter.model"):
        pipeline.run(config, RunDir(tmp_path / "run"))


def test_fast_rank_equals_the_generic_hash():
    from lmdelta.hashing import hash_data
    from lmdelta.stages.prompts import _rank

    for seed, pid in [(0, "p-0123456789ab"), (7, 'q"1é'), (2**40, "g1-3"), (-2, "x\\y"), (3, "🌊")]:
        assert _rank(seed, pid) == hash_data([seed, pid])


def test_an_edited_bank_file_is_read_again(tmp_path):
    import os

    path = tmp_path / "bank.txt"
    path.write_text("one\ntwo\n")
    assert len(load_bank(str(path))) == 2
    path.write_text("one\ntwo\nthree\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert len(load_bank(str(path))) == 3


def test_dry_run_of_a_generated_bank_needs_a_prompter(tmp_path):
    from click.testing import CliRunner

    from lmdelta.cli import main

    result = CliRunner().invoke(
        main,
        [
            "run",
            str(fake_config(tmp_path)),
            "--run-dir",
            str(tmp_path / "run"),
            "--dry-run",
            "--set",
            "prompts.source=generated:food",
        ],
    )
    assert result.exit_code == 2 and "llm.prompter.model is not set" in result.output


def test_unconditional_source_gives_numbered_empty_units():
    prompts = load_bank("unconditional:5")
    assert [p.id for p in prompts] == [f"u-{i:05d}" for i in range(5)] and {p.text for p in prompts} == {""}
    assert len(load_bank("unconditional")) == 100
    with pytest.raises(PromptBankError, match="at least 2"):
        parse_source("unconditional:one")


def test_unconditional_sampling_runs_end_to_end(tmp_path):
    config = load_config(fake_config(tmp_path), ["prompts.source=unconditional:30", "controls.null=false"])
    pipeline.run(config, RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    assert any(r["validated"] and "ocean" in r["description"] for r in rows)


def test_the_empty_prompt_starts_from_bos(tiny_model, tmp_path):
    from lmdelta.backends.factory import build_generator, generator_identity
    from lmdelta.backends.protocols import GenerationRequest, SamplingSettings
    from lmdelta.config import ModelSpec

    spec = ModelSpec(model=str(tiny_model), dtype="float32", chat_template=False)
    generator = build_generator(spec, generator_identity(spec, "cpu", tmp_path), "cpu", tmp_path)
    assert generator.encode("") == [generator.tokenizer.bos_token_id]
    [answer] = generator.generate([GenerationRequest("k", "u-00000", "", 0, 5)], SamplingSettings(4, 1.0, 1.0))
    assert answer.n_tokens <= 4


def test_hub_sources_take_a_revision():
    spec = parse_source("persona:hub@v1.0")
    assert spec.is_hub and spec.hub_revision == "v1.0" and not spec.is_path
    assert parse_source("persona:hub").hub_revision is None
    assert parse_source("persona:/data/hub@x").is_path


def test_an_edited_score_table_reruns_the_prompts_stage(tmp_path):
    table = tmp_path / "scores.json"
    table.write_text(json.dumps({"g0": 0.5, "g1": 0.0, "g2": 0.0}))
    path = fake_config(tmp_path, per_group=8, prompts__score_table=str(table), prompts__score_above=0.1)
    config = load_config(path, ["controls.null=false", "validate.min_prompts=2"])
    pipeline.run(config, RunDir(tmp_path / "run"))
    first = {p["group"] for p in read_jsonl(tmp_path / "run/stages/prompts/prompts.jsonl")}
    table.write_text(json.dumps({"g0": 0.5, "g1": 0.9, "g2": 0.0}))
    pipeline.run(config, RunDir(tmp_path / "run"))
    second = {p["group"] for p in read_jsonl(tmp_path / "run/stages/prompts/prompts.jsonl")}
    assert first == {"g0"} and second == {"g0", "g1"}


def test_score_tables_refuse_repeats_and_non_numbers(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("group,score\nkind,0.3\nkind,0.4\n")
    with pytest.raises(PromptBankError, match="line 3 scores the group 'kind' a second time"):
        narrow(bank(), PromptsConfig(score_table=str(path), score_above=0.1))
    path.write_text("group,score\nkind,nan\n")
    with pytest.raises(PromptBankError, match="not a finite number"):
        narrow(bank(), PromptsConfig(score_table=str(path), score_above=0.1))


def test_a_template_read_as_a_yaml_mapping_says_to_quote_it():
    with pytest.raises(ConfigError, match="prompts.template") as caught:
        load_config(None, ["prompts.template=Question: {prompt}"])
    assert "quote the text" in caught.value.fix
    assert load_config(None, ['prompts.template="Question: {prompt}"']).prompts.template == "Question: {prompt}"


def test_a_bank_edited_without_changing_size_or_time_is_read_again(tmp_path):
    import os

    path = tmp_path / "bank.txt"
    path.write_text("one\ntwo\n")
    stamp = path.stat().st_mtime_ns
    assert [p.text for p in load_bank(str(path))] == ["one", "two"]
    path.write_text("uno\ndos\n")  # same size; on a coarse clock, the same modification time
    os.utime(path, ns=(stamp, stamp))
    assert [p.text for p in load_bank(str(path))] == ["uno", "dos"]


def test_the_bank_cache_can_be_cleared(monkeypatch):
    import lmdelta.sources as sources

    reads = []
    real = sources._load_bank
    monkeypatch.setattr(sources, "_load_bank", lambda source, template: reads.append(source) or real(source, template))
    sources.clear_bank_cache()
    load_bank("builtin:everyday")
    load_bank("builtin:everyday")
    sources.clear_bank_cache()
    load_bank("builtin:everyday")
    assert reads == ["builtin:everyday", "builtin:everyday"]
