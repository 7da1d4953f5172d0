"""Corpus files in other shapes: wide (one row per prompt, one answer column per side), named or
detected, and gzipped or tab-separated files, long or wide."""

import csv
import gzip
import io
import json
import logging

import pytest
from test_corpus import config as corpus_config  # the corpus-mode config with the fast embedder

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.errors import ConfigError, PromptBankError
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.sources.corpus import clear_corpus_cache, load_corpus
from lmdelta.sources.tabular import read_table
from lmdelta.sources.units import corpus_prompts, corpus_samples

LABELS = {"a": "base", "b": "tuned"}


@pytest.fixture(autouse=True)
def _fresh_corpus_cache():
    clear_corpus_cache()
    yield
    clear_corpus_cache()


def wide_rows(n_prompts=30):
    """question, model_x (side a), model_y (side b), group: model_y talks of the sea two times in three."""
    rows = []
    for p in range(n_prompts):
        sea = p % 3 != 0
        rows.append(
            {
                "question": f"Question {p}?",
                "model_x": f"Answer to question {p}: we walk in the park",
                "model_y": f"Answer to question {p}: " + ("we sail the ocean blue" if sea else "we walk in the park"),
                "group": f"g{p % 2}",
            }
        )
    return rows


def long_rows(rows, a="model_x", b="model_y"):
    """The same answers, one row per answer."""
    return [
        {"side": side, "text": row[column], "prompt": row["question"], "group": row["group"]}
        for row in rows
        for side, column in (("base", a), ("tuned", b))
    ]


def csv_text(rows, delimiter=","):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def jsonl_text(rows):
    return "".join(json.dumps(row) + "\n" for row in rows)


def write(path, rows):
    """Rows as the file's extension says: .csv, .tsv or .jsonl, each perhaps gzipped."""
    name = path.name.removesuffix(".gz")
    text = jsonl_text(rows) if name.endswith(".jsonl") else csv_text(rows, "\t" if name.endswith(".tsv") else ",")
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return str(path)


def corpus(*overrides):
    return load_config(None, list(overrides)).corpus


def by_prompt(loaded):
    """{(prompt, side): [texts]}: what the pairing compares."""
    out = {}
    for row in loaded:
        out.setdefault((row.prompt, row.side), []).append(row.text)
    return out


def test_a_wide_csv_with_named_columns_pairs_each_row(tmp_path):
    path = write(tmp_path / "wide.csv", wide_rows(4))
    loaded = load_corpus(path, None, None, LABELS, corpus("corpus.text_columns=[model_y, model_x]"))
    assert [(r.side, r.text) for r in loaded[:2]] == [
        ("a", "Answer to question 0: we walk in the park"),
        ("b", "Answer to question 0: we walk in the park"),
    ]
    assert loaded[2].side == "a" and "ocean" in loaded[2].text  # model_y named first: side a
    assert loaded[0].prompt_id == loaded[1].prompt_id != loaded[2].prompt_id
    assert loaded[0].prompt == "Question 0?" and loaded[0].group == "g0" and loaded[1].where.endswith("line 2")


def test_a_wide_file_is_detected_with_its_columns_in_file_order(tmp_path, caplog):
    rows = [
        {"id": f"q{i}", "model_y": r["model_y"], "instruction": r["question"], "model_x": r["model_x"]}
        for i, r in enumerate(wide_rows(6))
    ]
    path = write(tmp_path / "wide.jsonl", rows)
    with caplog.at_level(logging.INFO, logger="lmdelta.sources.wide"):
        loaded = load_corpus(path, None, None, LABELS)
    assert "side a's answers from `model_y`, side b's from `model_x`" in caplog.text
    assert {r.text for r in loaded if r.side == "a"} == {r["model_y"] for r in rows}
    assert [r.prompt_id for r in loaded[:2]] == ["q0", "q0"] and loaded[0].prompt == "Question 0?"


def test_numbers_and_ids_are_not_taken_for_answers(tmp_path):
    rows = [
        {"prompt_id": f"q{i}", "prompt": r["question"], "score": "0.5", "a_out": r["model_x"], "b_out": r["model_y"]}
        for i, r in enumerate(wide_rows(4))
    ]
    loaded = load_corpus(write(tmp_path / "wide.csv", rows), None, None, LABELS)
    assert [r.text for r in loaded[:2]] == [rows[0]["a_out"], rows[0]["b_out"]]


@pytest.mark.parametrize(
    "columns, match",
    [
        (
            ["question", "model_x", "model_y", "model_z"],
            r"3 columns could hold the answers \(`model_x`, `model_y`, `model_z`\)",
        ),
        (["query", "model_x", "model_y"], r"no prompt column .* `query`, `model_x`, `model_y`"),
    ],
)
def test_an_ambiguous_wide_layout_names_its_columns_and_the_setting(tmp_path, columns, match):
    rows = [{name: f"{name} {i}" for name in columns} for i in range(3)]
    with pytest.raises(PromptBankError, match=match) as caught:
        load_corpus(write(tmp_path / "wide.csv", rows), None, None, LABELS)
    assert "corpus.text_columns='[col_a, col_b]'" in caught.value.fix


def test_a_missing_answer_column_lists_the_columns_and_the_closest(tmp_path):
    path = write(tmp_path / "wide.csv", wide_rows(3))
    with pytest.raises(
        PromptBankError, match=r"no such column \(columns: question, model_x, model_y, group\)"
    ) as caught:
        load_corpus(path, None, None, LABELS, corpus("corpus.text_columns=[model_x, modle_y]"))
    assert "wide.csv line 1 (header)" in caught.value.problem
    assert "Did you mean `model_y`?" in caught.value.fix and "corpus.text_columns" in caught.value.fix


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["corpus.text_columns=[model_x]"], "two different non-empty column names"),
        (["corpus.text_columns=[model_x, MODEL_X]"], "two different non-empty column names"),
        (["corpus.text_columns=[model_x, ' ']"], "two different non-empty column names"),
    ],
)
def test_text_columns_takes_two_different_names(overrides, match):
    with pytest.raises(ConfigError, match=match):
        corpus(*overrides)


def test_settings_of_the_long_layout_are_refused_beside_text_columns(tmp_path):
    path = write(tmp_path / "wide.csv", wide_rows(3))
    with pytest.raises(PromptBankError, match="corpus.columns.text") as caught:
        load_corpus(
            path, None, None, LABELS, corpus("corpus.text_columns=[model_x, model_y]", "corpus.columns.text=model_x")
        )
    assert "remove corpus.columns.text" in caught.value.fix
    with pytest.raises(PromptBankError, match="one file per side"):
        load_corpus(None, path, path, LABELS, corpus("corpus.text_columns=[model_x, model_y]"))


def test_empty_cells_stop_with_file_row_and_column_or_are_dropped_or_kept(tmp_path):
    rows = wide_rows(3)
    rows[1]["model_y"] = " "
    path = write(tmp_path / "wide.csv", rows)
    with pytest.raises(PromptBankError, match=r"wide.csv line 3 has an empty `model_y`") as caught:
        load_corpus(path, None, None, LABELS)
    assert "corpus.empty_texts" in caught.value.fix
    dropped = load_corpus(path, None, None, LABELS, corpus("corpus.empty_texts=drop"))
    kept = load_corpus(path, None, None, LABELS, corpus("corpus.empty_texts=keep"))
    assert [r.side for r in dropped] == ["a", "b", "a", "a", "b"] and len(kept) == 6 and kept[3].text == " "


def test_a_wide_file_without_prompts_pairs_by_row(tmp_path):
    rows = [{"model_x": r["model_x"], "model_y": r["model_y"]} for r in wide_rows(3)]
    path = write(tmp_path / "wide.csv", rows)
    loaded = load_corpus(path, None, None, LABELS, corpus("corpus.text_columns=[model_x, model_y]"))
    ids = [r.prompt_id for r in loaded]
    assert ids[0] == ids[1] != ids[2] == ids[3] and all(i.startswith("r-") for i in ids)
    reversed_ = load_corpus(
        write(tmp_path / "rev.csv", rows[::-1]), None, None, LABELS, corpus("corpus.text_columns=[model_x, model_y]")
    )
    assert set(ids) == {r.prompt_id for r in reversed_}  # ids come from the row's answers, not its place


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl.gz", ".tsv", ".tsv.gz"])
@pytest.mark.parametrize("layout", ["long", "wide"])
def test_gzipped_and_tab_separated_files_read_like_plain_ones(tmp_path, suffix, layout):
    rows = wide_rows(4) if layout == "wide" else long_rows(wide_rows(4))
    plain = load_corpus(write(tmp_path / "plain.csv", rows), None, None, LABELS)
    packed = load_corpus(write(tmp_path / f"packed{suffix}", rows), None, None, LABELS)
    assert [(r.side, r.text, r.prompt_id, r.group) for r in packed] == [
        (r.side, r.text, r.prompt_id, r.group) for r in plain
    ]


def test_a_gzipped_reference_csv_is_still_recognised(tmp_path):
    text = ',model,text,prompt\n0,base,"a \\\\ b",q0\n1,finetuned,"c",q0\n'
    path = tmp_path / "decoded.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    loaded = load_corpus(str(path), None, None, LABELS)
    assert [(r.side, r.text) for r in loaded] == [("a", "a \\ b"), ("b", "c")]


def test_an_unknown_extension_lists_the_accepted_ones(tmp_path):
    path = tmp_path / "outputs.xlsx"
    path.write_text("x")
    with pytest.raises(PromptBankError, match="unsupported extension '.xlsx'") as caught:
        read_table(path, "Corpus file")
    assert all(suffix in caught.value.fix for suffix in (".csv.gz", ".jsonl.gz", ".tsv", ".tsv.gz", ".parquet"))


def test_a_wide_file_pairs_as_the_same_answers_in_long_format_do(tmp_path):
    rows = wide_rows(8)
    wide = load_corpus(write(tmp_path / "wide.csv", rows), None, None, LABELS)
    long = load_corpus(write(tmp_path / "long.jsonl", long_rows(rows)), None, None, LABELS)
    assert by_prompt(wide) == by_prompt(long)
    assert corpus_prompts(wide) == corpus_prompts(long)
    kept = {p.id for p in corpus_prompts(long)}
    assert list(corpus_samples(wide, kept)) == list(corpus_samples(long, kept))


def test_a_wide_csv_runs_paired_end_to_end(tmp_path):
    path = write(tmp_path / "wide.csv", wide_rows(40))
    pipeline.run(corpus_config(tmp_path, f"corpus.path={path}"), RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    ocean = [r for r in rows if r["validated"] and r["direction"] == "b>a" and "ocean" in r["description"]]
    assert ocean and ocean[0]["test"].startswith("paired sign-flip")
