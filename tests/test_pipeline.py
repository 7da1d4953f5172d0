"""The pipeline on fake models: stages, resume, invalidation, shared caches."""

import json

import numpy as np
import pytest
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.errors import ConfigError
from lmdelta.rundir import RunDir, read_jsonl


def run(config_path, run_dir, *overrides):
    pipeline.run(load_config(config_path, list(overrides)), RunDir(run_dir))
    return RunDir(run_dir).load_manifest()


def test_full_run_writes_every_stage(tmp_path):
    manifest = run(fake_config(tmp_path), tmp_path / "run")
    stages = manifest.stages
    assert list(stages) == [
        "prompts",
        "generate",
        "embed",
        "group",
        "propose",
        "validate",
        "decide",
        "confirm",
        "weights",
        "report",
    ]
    assert all(record.status == "complete" for record in stages.values())
    samples = list(read_jsonl(tmp_path / "run/stages/generate/samples.jsonl"))
    assert len(samples) == 18 * 2 * 2 and {s["side"] for s in samples} == {"a", "b"}
    vectors = np.load(tmp_path / "run/stages/embed/samples.npy")
    assert vectors.shape[0] == len(samples)
    groups = {row["group"] for row in read_jsonl(tmp_path / "run/stages/group/groups.jsonl")}
    assert groups == {"g0", "g1", "g2"}
    assert (tmp_path / "run/config.yaml").exists()
    prompts = list(read_jsonl(tmp_path / "run/stages/prompts/prompts.jsonl"))
    assert {p["split"] for p in prompts} == {"discovery", "validation"}


def test_rerun_skips_complete_stages(tmp_path, caplog):
    config = fake_config(tmp_path)
    first = run(config, tmp_path / "run")
    caplog.set_level("INFO", logger="lmdelta")
    second = run(config, tmp_path / "run")
    assert "done before, skipped" in caplog.text and "running" not in caplog.text
    assert first.stages["generate"].finished == second.stages["generate"].finished


def test_changed_section_reruns_it_and_downstream_and_says_why(tmp_path, caplog):
    config = fake_config(tmp_path)
    run(config, tmp_path / "run")
    caplog.set_level("INFO", logger="lmdelta")
    manifest = run(config, tmp_path / "run", "generate.temperature=0.5")
    assert "prompts  done before" in caplog.text
    assert "generate running (changed: generate.temperature: 1.0 → 0.5)" in caplog.text
    assert "embed    running (upstream generate will re-run)" in caplog.text
    assert "group    running (upstream embed will re-run)" in caplog.text
    assert manifest.stages["generate"].counts["a"]["reused"] == 0


def test_more_samples_reuse_the_finished_ones(tmp_path):
    config = fake_config(tmp_path)
    run(config, tmp_path / "run")
    manifest = run(config, tmp_path / "run", "generate.samples_per_prompt=3")
    counts = manifest.stages["generate"].counts["a"]
    assert counts["reused"] == 36 and counts["generated"] == 18


def test_volatile_change_does_not_rerun(tmp_path):
    config = fake_config(tmp_path)
    run(config, tmp_path / "run")
    before = RunDir(tmp_path / "run").load_manifest().stages
    after = run(config, tmp_path / "run", "generate.batch_size=7", "embed.batch_size=3").stages
    assert before == after


def test_edited_bank_reruns_prompts(tmp_path, caplog):
    config = fake_config(tmp_path)
    run(config, tmp_path / "run")
    bank = tmp_path / "bank.jsonl"
    bank.write_text(bank.read_text().replace("topic 0", "subject 0"))
    caplog.set_level("INFO", logger="lmdelta")
    run(config, tmp_path / "run")
    assert "prompts  running (changed: identity.bank" in caplog.text


def test_embedding_cache_is_shared_across_runs(tmp_path):
    config = fake_config(tmp_path)
    first = run(config, tmp_path / "one").stages["embed"].counts
    second = run(config, tmp_path / "two").stages["embed"].counts
    assert first["computed"] > 0 and second["computed"] == 0 and second["cached"] == first["computed"]
    assert np.array_equal(
        np.load(tmp_path / "one/stages/embed/samples.npy"), np.load(tmp_path / "two/stages/embed/samples.npy")
    )


def test_kmeans_groups_and_response_clusters(tmp_path):
    config = fake_config(tmp_path, group__by="kmeans", group__n_groups=3, group__response_clusters=4)
    manifest = run(config, tmp_path / "run")
    groups = json.loads((tmp_path / "run/stages/group/groups.json").read_text())
    assert sorted(g["prompts"] for g in groups.values()) == [6, 6, 6]
    clusters = list(read_jsonl(tmp_path / "run/stages/group/response_clusters.jsonl"))
    assert len(clusters) == 72 and manifest.stages["group"].counts["groups"] == 3


def test_kmeans_needs_prompt_embeddings(tmp_path):
    config = fake_config(tmp_path, group__by="kmeans", embed__embed_prompts=False)
    with pytest.raises(ConfigError, match="embed_prompts"):
        run(config, tmp_path / "run")


def test_too_many_groups(tmp_path):
    config = fake_config(tmp_path, group__by="kmeans", group__n_groups=50)
    with pytest.raises(ConfigError, match="n_groups=50 exceeds"):
        run(config, tmp_path / "run")
    assert RunDir(tmp_path / "run").stage_record("embed").status == "complete"  # kept


def test_side_seeds_differ_so_a_against_a_is_not_identical(tmp_path):
    config = fake_config(tmp_path, generate__b={"model": "fake:words"})
    run(config, tmp_path / "run")
    samples = list(read_jsonl(tmp_path / "run/stages/generate/samples.jsonl"))
    a = {(s["prompt_id"], s["index"]): s["text"] for s in samples if s["side"] == "a"}
    b = {(s["prompt_id"], s["index"]): s["text"] for s in samples if s["side"] == "b"}
    assert sum(a[k] == b[k] for k in a) < len(a) / 2
