"""Given hypotheses (propose.given): the file format and its errors, the family of their own in decide, runs with
and without proposers, and `lmdelta findings export` → propose.given as a behavioural regression test."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from conftest import fake_config, make_finding
from test_stage_contract import STRONG, undeclared_reads

from lmdelta import given, pipeline
from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import ConfigError, RunDirError
from lmdelta.records import GIVEN, Hypothesis
from lmdelta.report.table import findings_table
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stages import decide
from lmdelta.stats import fdr

OFF = ["propose.keywords.enabled=false", "propose.clusters.enabled=false", "propose.properties.enabled=false"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run(config_path: Path, run_dir: Path, *overrides: str) -> RunDir:
    pipeline.run(load_config(config_path, list(overrides)), RunDir(run_dir))
    return RunDir(run_dir)


def hypotheses_of(run_dir: Path, comparison: str = "main") -> list[Hypothesis]:
    prefix = "" if comparison == "main" else "null_"
    return [Hypothesis.from_dict(row) for row in read_jsonl(run_dir / f"stages/propose/{prefix}hypotheses.jsonl")]


def decisions_of(run_dir: Path) -> list[dict]:
    return list(read_jsonl(run_dir / "stages/decide/decisions.jsonl"))


# --- the file ---------------------------------------------------------------------------------------------------


def test_a_yaml_file_reads_with_defaults_and_lines(tmp_path):
    path = write(
        tmp_path / "given.yaml",
        "hypotheses:\n"
        "  - description: mentions the ocean\n"
        "    keywords: [ocean, sea]\n"
        "  - measure: words\n"
        "    direction: a > b\n"
        "  - description: sounds like a pirate\n"
        "    group: g1\n",
    )
    first, second, third = given.read(path)
    assert (first.claim, first.direction, first.judge, first.group) == ("mentions the ocean", "b>a", "keyword", "all")
    assert first.keywords == ("ocean", "sea") and first.where == f"{path}, entry 1 (line 2)"
    assert (second.judge, second.measure, second.direction) == ("property", "words", "a>b")
    assert second.claim.startswith("a high value of words")  # the property's own side-free statement
    assert (third.judge, third.group, third.where) == ("llm", "g1", f"{path}, entry 3 (line 6)")


def test_a_yaml_list_and_a_jsonl_file_read_the_same(tmp_path):
    entries = [{"description": "mentions the ocean", "keywords": ["ocean"]}, {"property": "has_exclamation_marks"}]
    listed = given.read(write(tmp_path / "a.yml", yaml.safe_dump(entries)))
    lines = given.read(write(tmp_path / "b.jsonl", "\n".join(json.dumps(e) for e in entries) + "\n\n"))
    assert [replace(e, where="") for e in listed] == [replace(e, where="") for e in lines]
    assert lines[1].where == f"{tmp_path / 'b.jsonl'}, line 2" and lines[1].judge == "property"


def test_hypotheses_name_the_run_s_sides_and_keep_the_claim_side_free(tmp_path):
    entries = given.read(write(tmp_path / "g.yaml", "- {description: mentions the ocean, direction: a>b, group: g0}\n"))
    (h,) = given.hypotheses(entries, {"a": "base", "b": "tuned"}, after=7)
    assert (h.id, h.order, h.proposer, h.property) == ("g001", 8, GIVEN, "mentions the ocean")
    assert h.description == "mentions the ocean (more in the answers of base than of tuned) (prompts about g0)"


BAD = [
    ("g.yaml", "- {description: x, keyword: [ocean]}\n", ["entry 1 (line 1)", "unknown field 'keyword'", "'keywords'"]),
    ("g.yaml", "- {description: x}\n- {direction: a>b}\n", ["entry 2 (line 2)", "no description", "names neither"]),
    ("g.yaml", "- {description: x, direction: b<a}\n", ["entry 1", "direction 'b<a'", "Write direction: b>a"]),
    ("g.yaml", "- {description: x, judge: keyword}\n", ["judge: keyword) but has none", "Add keywords"]),
    ("g.yaml", "- {description: x, judge: keywords, keywords: [a]}\n", ["judge 'keywords'", "Did you mean 'keyword'"]),
    ("g.yaml", "- {measure: wrods}\n", ["entry 1", "no property named 'wrods'", "Did you mean words"]),
    ("g.yaml", "- {description: x, judge: embedding}\n", ["judge embedding and no prototype", "findings export"]),
    ("g.yaml", "- {description: x, keywords: ocean}\n", ["not a list of words", "keywords: [ocean, sea]"]),
    ("g.yaml", "- {description: x, keywords: [a]}\n- {description: x, keywords: [a]}\n", ["entry 2", "repeats"]),
    ("g.yaml", "- description: [x\n", ["not valid YAML near line", "Fix the YAML syntax"]),
    ("g.yaml", "description: x\n", ["not `hypotheses` alone", "`hypotheses:`"]),
    ("g.yaml", "hypotheses: []\n", ["holds no hypotheses", "docs/given.md"]),
    ("g.jsonl", '{"description": "x"}\n{"description": \n', ["line 2 is not valid JSON", "one JSON object per line"]),
    ("g.jsonl", '{"description": "x"}\n\n{"descriptoin": "y"}\n', ["line 3", "'descriptoin'", "'description'"]),
    ("g.txt", "x\n", ["unsupported extension '.txt'", "Use .yaml"]),
]


@pytest.mark.parametrize(("name", "text", "expected"), BAD)
def test_a_bad_file_names_the_file_the_entry_and_the_fix(tmp_path, name, text, expected):
    path = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as caught:
        given.read(path)
    message = str(caught.value)
    assert str(path) in message and caught.value.fix
    for part in expected:
        assert part in message


def test_a_missing_file_fails_at_plan_time_before_anything_runs(tmp_path):
    config = load_config(fake_config(tmp_path), ["propose.given=nowhere.yaml"])
    assert config.propose.given == str(Path("nowhere.yaml").resolve())  # not beside the config: from cwd
    with pytest.raises(ConfigError, match="does not exist. Check propose.given"):
        pipeline.run(config, RunDir(tmp_path / "run"))
    assert not (tmp_path / "run" / "stages").exists()


def test_a_relative_path_is_read_beside_the_config(tmp_path):
    write(tmp_path / "given.yaml", "- {description: mentions the ocean, keywords: [ocean]}\n")
    config = load_config(fake_config(tmp_path), ["propose.given=given.yaml"])
    assert config.propose.given == str(tmp_path / "given.yaml")


def test_an_llm_judged_entry_needs_a_judge_model(tmp_path):
    write(tmp_path / "given.yaml", "- {description: mentions the ocean, keywords: [ocean]}\n- description: is rude\n")
    config = load_config(fake_config(tmp_path), ["propose.given=given.yaml"])
    with pytest.raises(ConfigError, match=r"entry 2 \(line 2\) is judged by an LLM .* llm.judge.model is not set"):
        pipeline.plan(config, RunDir(tmp_path / "run"), tmp_path / "cache")


def test_entries_this_run_cannot_test_are_refused():
    entry = given.entry_from_mapping({"description": "x", "keywords": ["a"], "group": "g11"}, "g.yaml, entry 1")
    with pytest.raises(ConfigError, match="group 'g11', which this run does not have.*Did you mean 'g1'"):
        given.check_fits([entry], ["g0", "g1"], 4, {"model": "fake:hashing", "id": "x"})
    made = {"description": "x", "judge": "embedding", "prototype": [1.0, 0.0], "embedder": {"model": "m1", "id": "1"}}
    embedded = given.entry_from_mapping(made, "g.yaml, entry 2")
    with pytest.raises(ConfigError, match="made by the embedder m1.*Set embed.model to m1"):
        given.check_fits([embedded], [], 2, {"model": "m2", "id": "2"})
    with pytest.raises(ConfigError, match="prototype of 2 numbers, but this run's embeddings have 3"):
        given.check_fits([embedded], [], 3, {"model": "m1", "id": "1"})


# --- deciding them apart ----------------------------------------------------------------------------------------


def _findings(p_main: list[float], p_given: list[float]) -> list:
    main = [make_finding(id=f"h{i}", order=i, p_value=p, n_units=10) for i, p in enumerate(p_main, start=1)]
    extra = [
        make_finding(id=f"g{i}", order=len(p_main) + i, p_value=p, n_units=10, proposer=GIVEN)
        for i, p in enumerate(p_given, start=1)
    ]
    return main + extra


@pytest.mark.parametrize("primary", ["bh", "by", "online"])
def test_given_findings_are_decided_by_bh_within_their_own_family(tmp_path, primary):
    config = load_config(fake_config(tmp_path), [f"decide.primary={primary}"])
    p_main, p_given = [0.01, 0.04, 0.5], [0.001, 0.002, 0.003, 0.03]
    alone = decide.decide(_findings(p_main, []), config)
    both = decide.decide(_findings(p_main, p_given), config)
    # Mixed into one BH family of 7, 0.04 would pass (0.04 <= 0.05 * 6/7): apart, the main family is as without them.
    assert fdr.benjamini_hochberg(np.array(p_main + p_given), 0.05)[1]
    assert [f.to_dict() for f in both[:3]] == [f.to_dict() for f in alone]
    mine = both[3:]
    assert [f.validated for f in mine] == list(fdr.benjamini_hochberg(np.array(p_given), 0.05)) == [True] * 4
    assert {f.procedure for f in mine} == {"BH (given)"}
    assert all("online_reject" not in f.to_dict() for f in mine)
    assert decide.given_counts(both) == {"tested": 4, "validated": 4, "procedure": "BH (given)"}


def test_given_findings_are_decided_by_e_bh_on_e_values_in_sequential_mode(tmp_path):
    config = load_config(fake_config(tmp_path), [])
    found = [
        replace(f, e_value=e, stop_reason="rejected", p_value=min(1.0, 1 / e))
        for f, e in zip(_findings([0.5], [0.5, 0.5]), [1.0, 50.0, 30.0])
    ]
    decided = decide.decide(found, config)
    # e-BH within the family of 2: 50 >= 2/0.05 = 40 rejects, and then 30 >= 2/(0.05*2) = 20 rejects too.
    assert [f.validated for f in decided] == [False, True, True]
    assert {f.procedure for f in decided[1:]} == {"e-BH (given)"}


# --- runs ---------------------------------------------------------------------------------------------------------

GIVEN_FILE = (
    "hypotheses:\n"
    "  - description: mentions the ocean\n"
    "    keywords: [ocean]\n"
    "  - description: mentions a zebra\n"
    "    keywords: [zebra]\n"
    "    group: g1\n"
)


def test_alone_given_hypotheses_are_the_whole_run(tmp_path):
    write(tmp_path / "given.yaml", GIVEN_FILE)
    config = fake_config(tmp_path, per_group=12, generate__b=STRONG)
    files = run(config, tmp_path / "run", *OFF, "propose.given=given.yaml")
    assert [(h.id, h.proposer, h.order) for h in hypotheses_of(tmp_path / "run")] == [
        ("g001", GIVEN, 1),
        ("g002", GIVEN, 2),
    ]
    assert [h.id for h in hypotheses_of(tmp_path / "run", "null")] == ["g001", "g002"]  # the null control's too
    decided = {row["id"]: row for row in decisions_of(tmp_path / "run")}
    assert decided["g001"]["validated"] is True and decided["g002"]["validated"] is False
    assert decided["g001"]["procedure"] == "BH (given)"
    summary = json.loads(files.summary_path.read_text())
    assert (summary["main"]["tested"], summary["main"]["families"][GIVEN]["tested"]) == (0, 2)
    table = findings_table(tmp_path / "run")
    assert "1 of 2 given hypotheses validated at q = 0.05 (BH within them" in table
    assert "[given, all] mentions the ocean" in table
    assert "given hypotheses: 1 of 2 validated" in files.report_path.read_text()


def test_given_hypotheses_follow_the_proposed_ones_and_leave_their_decisions_alone(tmp_path):
    write(tmp_path / "given.yaml", GIVEN_FILE)
    config = fake_config(tmp_path, per_group=12, generate__b=STRONG)
    run(config, tmp_path / "plain")
    run(config, tmp_path / "both", "propose.given=given.yaml")
    plain, both = hypotheses_of(tmp_path / "plain"), hypotheses_of(tmp_path / "both")
    assert both[: len(plain)] == plain
    assert [(h.id, h.order) for h in both[len(plain) :]] == [("g001", len(plain) + 1), ("g002", len(plain) + 2)]
    keys = ("id", "p_value", "validated", "q_value", "bh_reject", "by_reject", "online_reject", "procedure")
    main_rows = [{k: row.get(k) for k in keys} for row in decisions_of(tmp_path / "both") if row["proposer"] != GIVEN]
    assert main_rows == [{k: row.get(k) for k in keys} for row in decisions_of(tmp_path / "plain")]


def test_sequential_mode_decides_them_by_e_bh(tmp_path):
    write(tmp_path / "given.yaml", GIVEN_FILE)
    config = fake_config(tmp_path, per_group=12, generate__b=STRONG)
    run(config, tmp_path / "run", *OFF, "propose.given=given.yaml", "validate.mode=sequential")
    decided = {row["id"]: row for row in decisions_of(tmp_path / "run")}
    assert {row["procedure"] for row in decided.values()} == {"e-BH (given)"}
    assert decided["g001"]["validated"] is True


def test_a_changed_file_reruns_propose_and_an_unchanged_one_nothing(tmp_path, caplog):
    path = write(tmp_path / "given.yaml", GIVEN_FILE)
    config = fake_config(tmp_path, per_group=12, generate__b=STRONG)
    first = run(config, tmp_path / "run", "propose.given=given.yaml").load_manifest()
    caplog.set_level("INFO", logger="lmdelta")
    path.write_text(GIVEN_FILE)  # the same content, written again
    second = run(config, tmp_path / "run", "propose.given=given.yaml").load_manifest()
    assert "running" not in caplog.text and second.stages["propose"].finished == first.stages["propose"].finished
    caplog.clear()
    path.write_text(GIVEN_FILE.replace("zebra", "whale"))
    run(config, tmp_path / "run", "propose.given=given.yaml")
    assert "group    done before" in caplog.text and "propose  running (changed: identity.given" in caplog.text
    assert [h.keywords for h in hypotheses_of(tmp_path / "run") if h.proposer == GIVEN] == [("ocean",), ("whale",)]


def test_every_config_read_with_a_given_file_is_in_the_fingerprint(tmp_path, monkeypatch):
    write(tmp_path / "given.yaml", GIVEN_FILE)
    config = load_config(fake_config(tmp_path, per_group=12, generate__b=STRONG), ["propose.given=given.yaml"])
    assert undeclared_reads(monkeypatch, config, RunDir(tmp_path / "run")) == {}


# --- export, and the round trip ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".jsonl"])
def test_exported_findings_test_the_same_hypotheses_again(tmp_path, suffix):
    """The behavioural regression test: every tested hypothesis of run 1, exported and given to run 2 on the same
    data, is the same hypothesis (content key) with the same numbers."""
    config = fake_config(tmp_path, per_group=12, generate__b=STRONG)
    run(config, tmp_path / "one")
    out = tmp_path / f"exported{suffix}"
    result = CliRunner().invoke(main, ["findings", "export", str(tmp_path / "one"), "-o", str(out), "--all"])
    assert result.exit_code == 0, result.output
    first = hypotheses_of(tmp_path / "one")
    assert {h.proposer for h in first} == {"keywords", "clusters", "properties"}  # each kind of judge round-trips
    assert f"wrote {len(first)} tested findings" in result.output
    run(config, tmp_path / "two", *OFF, f"propose.given={out}")
    second = hypotheses_of(tmp_path / "two")
    assert [h.content_key() for h in second] == [h.content_key() for h in first]
    assert [h.provenance["source"]["id"] for h in second if h.provenance] == [h.id for h in first]
    numbers = ("p_value", "effect", "auc", "n_units")
    again = [{k: row[k] for k in numbers} for row in decisions_of(tmp_path / "two")]
    assert again == [{k: row[k] for k in numbers} for row in decisions_of(tmp_path / "one")]


def test_export_writes_the_validated_findings_by_default(tmp_path):
    config = fake_config(tmp_path, per_group=12, generate__b=STRONG)
    run(config, tmp_path / "run")
    count = given.export_findings(tmp_path / "run", tmp_path / "validated.yml")
    validated = [row["id"] for row in decisions_of(tmp_path / "run") if row["validated"]]
    assert 0 < count == len(validated) < len(decisions_of(tmp_path / "run"))
    text = (tmp_path / "validated.yml").read_text()
    assert text.startswith("# Hypotheses exported by `lmdelta findings export`: the validated findings")
    assert [e.source["id"] for e in given.read(tmp_path / "validated.yml")] == validated


def test_export_of_a_run_without_decisions_says_what_to_do(tmp_path):
    config = load_config(fake_config(tmp_path), [])
    files = RunDir(tmp_path / "run")
    pipeline.run(config, files)
    (tmp_path / "run/stages/decide/decisions.jsonl").unlink()
    with pytest.raises(RunDirError, match="has no decisions yet .* Run it to the end first"):
        given.export_findings(files.root, tmp_path / "out.yaml")
    result = CliRunner().invoke(main, ["findings", "export", str(tmp_path / "run"), "-o", str(tmp_path / "o.yaml")])
    assert result.exit_code == 2 and "no decisions yet" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["findings", "export", str(tmp_path), "-o", str(tmp_path / "o.yaml")])
    assert result.exit_code == 2 and "not an lmdelta run directory" in result.output
