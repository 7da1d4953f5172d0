"""`lmdelta run --dry-run` says what the run will contain, and warns where nothing could be validated."""

import json

from click.testing import CliRunner

from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.preview import describe_run


def test_a_model_run_lists_prompts_splits_groups_and_the_token_ceiling():
    config = load_config(None, ["prompts.limit=120", "generate.samples_per_prompt=2"])
    lines = describe_run(config)
    assert lines[0] == "prompts: 120 from builtin:everyday (36 discovery, 84 validation)"
    assert lines[1] == "validation: fixed (auto: 84 validation prompts, under validate.auto_prompts = 1,000)"
    assert lines[2] == "groups: 12 from the bank (10 prompts each)"
    assert lines[3] == f"answers: 240 per side (2 per prompt), at most {240 * 64 * 2:,} generated tokens"
    # 7 validation prompts a group: 2^-7 > q / 13, so no group's own finding could pass BH
    assert any(line.startswith("warning: 12 of 12 groups have too few validation prompts") for line in lines)
    assert not [
        line for line in describe_run(load_config(None, [])) if line.startswith("warning")
    ]  # 21 a group (the whole bank): every group can


def test_enough_prompts_per_group_raise_no_warning_and_sequential_defers_validation():
    config = load_config(None, ["prompts.limit=120", "group.by=none", "validate.mode=sequential"])
    lines = describe_run(config)
    assert lines[1] == "validation: sequential"
    assert lines[2] == "groups: one (group.by = none)"
    assert "answers: 36 per side" in lines[3] and "round by round" in lines[4]
    assert not any(line.startswith("warning") for line in lines)


def test_a_tiny_run_is_told_it_cannot_validate_anything():
    lines = describe_run(load_config(None, ["prompts.limit=12"]))
    assert "groups: 12 from the bank (1 prompt each)" in lines
    assert any(line.startswith("warning: no discovery prompts") for line in lines)
    few = describe_run(
        load_config(None, ["prompts.groups=[cooking]", "prompts.limit=6", "prompts.discovery_fraction=0.5"])
    )
    assert any("3 validation prompts in all: nothing can be validated at q = 0.05" in line for line in few)


def test_a_corpus_dry_run_says_how_texts_pair(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {"prompt_id": f"q{i}", "prompt": f"Q{i}?", "side": side, "text": f"{side} answer {i}"}
        for i in range(30)
        for side in ("a", "b")
    ]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(main, ["run", "--corpus", "c.jsonl", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "texts: 30 of side a, 30 of side b (paired by prompt)" in result.output
    assert "prompts: 30 from corpus" in result.output and "would run" in result.output
    with_path = describe_run(load_config(None, [f"corpus.path={tmp_path / 'c.jsonl'}"]))  # source left at its default
    assert with_path[0].startswith("prompts: 30 from corpus")
