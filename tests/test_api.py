"""The Python API (lmdelta.compare, lmdelta.open_run) and the command line without a config file."""

import json
import logging
import os

import pytest
from click.testing import CliRunner

import lmdelta
from lmdelta.api import _flatten
from lmdelta.cli import main
from lmdelta.errors import ConfigError, RunDirError
from lmdelta.inputs import Inputs

FAST = {"embed": {"model": "fake:hashing"}, "validate": {"n_resamples": 2000}, "controls": {"null": False}}


def rows(n_prompts=40, sea_side="tuned"):
    """Answers of `base` and `tuned` to the same prompts; `sea_side` mentions the ocean in 2 of 3."""
    out = []
    for p in range(n_prompts):
        for side in ("base", "tuned"):
            sea = side == sea_side and p % 3 != 0
            text = f"Answer to question {p}: " + ("we sail the ocean blue" if sea else "we walk in the park")
            out.append({"prompt_id": f"q{p}", "prompt": f"Question {p}?", "side": side, "text": text})
    return out


def write(path, table):
    path.write_text("".join(json.dumps(row) + "\n" for row in table))
    return path


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_compare_a_table_in_memory_and_read_it_back(in_tmp):
    result = lmdelta.compare(rows(), a_label="base", b_label="tuned", progress=False, **FAST)
    ocean = [f for f in result.validated if "ocean" in f["description"] and f["direction"] == "b>a"]
    assert ocean, [f["description"] for f in result.validated]
    assert result.run_dir.parent.name == "runs" and result.run_dir.name.startswith("corpus-")
    assert os.readlink(in_tmp / "runs" / "latest") == result.run_dir.name
    assert list((in_tmp / "runs" / "inputs").glob("table-*.jsonl"))  # saved by content
    assert "validated" in repr(result) and result.summary
    again = lmdelta.open_run(in_tmp / "runs" / "latest")
    assert [f["id"] for f in again.findings] == [f["id"] for f in result.findings]
    assert result.report().path.name == "report.html" and "<iframe" in result.report()._repr_html_()
    assert "ocean" in result._repr_html_()
    assert "ocean" in result.table(width=120)


def test_another_data_set_gets_its_own_run_directory_and_the_same_one_resumes(in_tmp):
    first = lmdelta.compare(rows(), a_label="base", b_label="tuned", progress=False, **FAST)
    second = lmdelta.compare(rows(sea_side="base"), a_label="base", b_label="tuned", progress=False, **FAST)
    assert first.run_dir != second.run_dir
    assert any(f["direction"] == "a>b" and "ocean" in f["description"] for f in second.validated)
    assert any(
        f["direction"] == "b>a" and "ocean" in f["description"] for f in lmdelta.open_run(first.run_dir).validated
    )
    assert lmdelta.compare(rows(), a_label="base", b_label="tuned", progress=False, **FAST).run_dir == first.run_dir


def test_to_pandas_has_a_row_per_tested_hypothesis(in_tmp):
    pd = pytest.importorskip("pandas")
    result = lmdelta.compare(rows(), a_label="base", b_label="tuned", progress=False, **FAST)
    frame = result.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(result.findings)
    assert len(result.to_pandas(validated_only=True)) == len(result.validated)


def test_a_hostile_description_is_escaped_in_the_notebook_view(tmp_path):
    result = lmdelta.Comparison(tmp_path, [{"description": "<script>x()</script>", "validated": True}], {})
    assert "<script>" not in result._repr_html_() and "&lt;script&gt;" in result._repr_html_()


def test_settings_take_sections_dotted_names_double_underscores_and_aliases():
    flat = dict(
        _flatten(
            {
                "validate": {"mode": "sequential", "sequential": {"x": 1}},
                "decide__q": 0.1,
                "prompts.limit": 5,
                "text_columns": ["x", "y"],
                "generate": {"b": {"backend_args": {"topic_words": ["ocean"]}}},
            }
        )
    )
    assert flat == {
        "validate.mode": "sequential",
        "validate.sequential.x": 1,
        "decide.q": 0.1,
        "prompts.limit": 5,
        "corpus.text_columns": ["x", "y"],
        "generate.b.backend_args": {"topic_words": ["ocean"]},
    }


def test_bad_data_and_missing_runs_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="cannot read data of type int"):
        lmdelta.compare(42)
    with pytest.raises(ConfigError, match="no rows"):
        lmdelta.compare([])
    with pytest.raises(RunDirError, match="not an lmdelta run directory"):
        lmdelta.open_run(tmp_path)


@pytest.mark.parametrize(
    "inputs, match",
    [
        (Inputs(), "Nothing to compare"),
        (Inputs(a="x"), "Nothing to compare"),
        (Inputs(a="x", b="y", corpus=["c.jsonl"]), "Both models"),
        (Inputs(corpus=["1", "2", "3"]), "3 corpus files"),
    ],
)
def test_arguments_that_name_no_comparison_are_refused(inputs, match):
    with pytest.raises(ConfigError, match=match):
        inputs.overrides(has_config=False)


def test_inputs_become_config_fields():
    assert Inputs(corpus=["x.csv"]).overrides(has_config=False) == {
        "prompts.source": "corpus",
        "group.by": "bank",
        "controls.null": True,
        "corpus.path": "x.csv",
    }
    assert Inputs(corpus=["a.csv", "b.csv"], limit=10).overrides(has_config=True) == {
        "prompts.source": "corpus",
        "corpus.a": "a.csv",
        "corpus.b": "b.csv",
        "prompts.limit": 10,
    }
    assert Inputs(a="m1", b="m2", a_label="base").overrides(has_config=False) == {
        "generate.a.model": "m1",
        "generate.b.model": "m2",
        "generate.a.label": "base",
    }


def test_the_command_line_compares_a_corpus_without_a_config(in_tmp):
    corpus = write(in_tmp / "answers.jsonl", rows())
    fast = ["--set", "embed.model=fake:hashing", "--set", "validate.n_resamples=2000", "--set", "controls.null=false"]
    labels = ["--a-label", "base", "--b-label", "tuned"]
    result = CliRunner().invoke(main, ["run", "--corpus", str(corpus), *labels, *fast])
    assert result.exit_code == 0, result.output
    assert "ocean" in result.output and "runs/corpus-" in result.output
    assert (in_tmp / "runs" / "latest" / "report.html").exists()


def test_the_command_line_says_what_is_missing():
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2 and "Nothing to compare" in result.output
    both = CliRunner().invoke(main, ["run", "--a", "x", "--b", "y", "--corpus", "c.jsonl"])
    assert both.exit_code == 2 and "Both models" in both.output


def test_the_python_api_doc_runs_as_written(in_tmp, monkeypatch):
    """docs/python-api.md's code blocks, executed in order in one namespace (fast embedder by environment)."""
    import re
    from pathlib import Path

    monkeypatch.setenv("LMDELTA__EMBED__MODEL", "fake:hashing")
    monkeypatch.setenv("LMDELTA__VALIDATE__N_RESAMPLES", "2000")
    doc = (Path(__file__).parent.parent / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)
    assert namespace["result"].validated


def wide_rows(n_prompts=40):
    """One row per prompt, one column per model: model_y mentions the ocean in 2 answers of 3."""
    return [
        {
            "question": f"Question {p}?",
            "model_x": f"Answer to question {p}: we walk in the park",
            "model_y": f"Answer to question {p}: " + ("we sail the ocean blue" if p % 3 else "we walk in the park"),
        }
        for p in range(n_prompts)
    ]


def test_a_wide_table_compares_its_two_answer_columns(in_tmp):
    result = lmdelta.compare(wide_rows(), text_columns=["model_x", "model_y"], progress=False, **FAST)
    assert any(f["direction"] == "b>a" and "ocean" in f["description"] for f in result.validated)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(wide_rows())
    assert lmdelta.compare(frame, text_columns=["model_x", "model_y"], progress=False, **FAST).run_dir == result.run_dir


def test_the_command_line_reads_a_wide_csv_with_named_columns(in_tmp):
    import csv

    with open(in_tmp / "pairs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["question", "model_x", "model_y"])
        writer.writeheader()
        writer.writerows(wide_rows())
    fast = ["--set", "embed.model=fake:hashing", "--set", "validate.n_resamples=2000", "--set", "controls.null=false"]
    result = CliRunner().invoke(main, ["run", "--corpus", "pairs.csv", "--text-columns", "model_x", "model_y", *fast])
    assert result.exit_code == 0, result.output
    assert "ocean" in result.output


def test_init_writes_a_shipped_config_and_never_over_a_file(in_tmp):
    runner = CliRunner()
    listing = runner.invoke(main, ["init", "--list"])
    assert "demo" in listing.output.split() and "corpus-pair" in listing.output.split()
    assert "fake-llm-script" not in listing.output
    first = runner.invoke(main, ["init", "corpus-pair"])
    assert first.exit_code == 0 and (in_tmp / "corpus-pair.yaml").read_text().startswith("# Compare two saved")
    again = runner.invoke(main, ["init", "corpus-pair"])
    assert again.exit_code == 2 and "exists already" in again.output and "--force" in again.output
    unknown = runner.invoke(main, ["init", "nope"])
    assert unknown.exit_code == 2 and "Choose one of" in unknown.output
    dry = runner.invoke(main, ["run", "corpus-pair.yaml", "--dry-run"])
    assert "corpus" in dry.output  # the written config is a real one: it asks for its corpus files


def test_progress_lines_go_to_a_function_when_one_is_given(in_tmp):
    lines: list[str] = []
    lmdelta.compare(rows(), a_label="base", b_label="tuned", progress=lines.append, **FAST)
    assert any(line.startswith("stage ") or "validate" in line for line in lines), lines[:5]
    assert not logging.getLogger("lmdelta").handlers  # the handler is gone afterwards


def test_quiet_keeps_the_stage_log_lines_out(in_tmp):
    corpus = write(in_tmp / "answers.jsonl", rows())
    fast = ["--set", "embed.model=fake:hashing", "--set", "validate.n_resamples=2000", "--set", "controls.null=false"]
    labels = ["--a-label", "base", "--b-label", "tuned"]
    quiet = CliRunner().invoke(main, ["--quiet", "run", "--corpus", str(corpus), *labels, *fast])
    assert quiet.exit_code == 0, quiet.output
    assert logging.getLogger("lmdelta").level == logging.WARNING and "ocean" in quiet.output
