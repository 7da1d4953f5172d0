"""Corpus mode: saved outputs instead of models, paired when prompts are known, else by text."""

import csv
import json

import pytest

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.errors import PromptBankError
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.sources.corpus import load_corpus


def corpus_rows(n_prompts=40, per_prompt=2, with_prompts=True):
    rows = []
    for p in range(n_prompts):
        for k in range(per_prompt):
            for side in ("base", "tuned"):
                sea = side == "tuned" and (p + k) % 3 != 0
                text = f"Answer {k} to question {p}: " + ("we sail the ocean blue" if sea else "we walk in the park")
                row = {"side": side, "text": text, "group": f"g{p % 2}"}
                if with_prompts:
                    row.update(prompt_id=f"q{p}", prompt=f"Question {p}?")
                rows.append(row)
    return rows


def config(tmp_path, *overrides):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({
        "prompts": {"source": "corpus"}, "generate": {"a": {"label": "base"}, "b": {"label": "tuned"}},
        "embed": {"model": "fake:hashing"}, "validate": {"n_resamples": 2000, "bootstrap": 300},
        "controls": {"null": False}}))
    return load_config(path, list(overrides))


def test_one_jsonl_file_with_prompts_is_compared_paired(tmp_path):
    corpus = tmp_path / "outputs.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in corpus_rows()) + "\n")
    pipeline.run(config(tmp_path, f"corpus.path={corpus}"), RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    ocean = [r for r in rows if r["validated"] and r["direction"] == "b>a" and "ocean" in r["description"]]
    assert ocean and ocean[0]["test"].startswith("paired sign-flip")
    assert "tuned uses" in ocean[0]["description"]


def test_two_unaligned_csv_files_are_compared_text_by_text(tmp_path):
    for side in ("base", "tuned"):
        with open(tmp_path / f"{side}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text"])
            writer.writeheader()
            writer.writerows({"text": r["text"]} for r in corpus_rows(with_prompts=False) if r["side"] == side)
    overrides = [f"corpus.a={tmp_path / 'base.csv'}", f"corpus.b={tmp_path / 'tuned.csv'}"]
    pipeline.run(config(tmp_path, *overrides), RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    ocean = [r for r in rows if r["validated"] and "ocean" in r["description"]]
    assert ocean and ocean[0]["test"].startswith("text-level") and "independent" in ocean[0]["assumption"]


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


@pytest.mark.parametrize("rows, match", [
    ([{"side": "a", "text": "x"}], "no texts for side b"),
    ([{"side": "a", "answer": "x"}], "no string `text`"),
    ([{"side": "model-c", "text": "x"}], "neither a nor b"),
    ([{"side": "a", "text": "x", "prompt_id": "q"}, {"side": "b", "text": "y"}], "no prompt_id or prompt"),
])
def test_bad_corpora_name_the_file_line_and_fix(tmp_path, rows, match):
    with pytest.raises(PromptBankError, match=match):
        from lmdelta.sources.corpus import is_aligned

        loaded = load_corpus(write_jsonl(tmp_path / "c.jsonl", rows), None, None, {"a": "a", "b": "b"})
        is_aligned(loaded)


def test_corpus_mode_needs_files(tmp_path):
    with pytest.raises(PromptBankError, match="corpus.a and corpus.b"):
        pipeline.run(config(tmp_path), RunDir(tmp_path / "run"))
    one = write_jsonl(tmp_path / "c.jsonl", [{"side": "a", "text": "x"}])
    with pytest.raises(PromptBankError, match="not both"):
        load_corpus(one, one, one, {})


def test_csv_errors_carry_line_numbers(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("side,text\na,hello\nq,bad\n")
    with pytest.raises(PromptBankError, match="c.csv:3"):
        load_corpus(str(path), None, None, {"a": "a", "b": "b"})


def test_non_utf8_corpus(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"side,text\na,caf\xe9\n")
    with pytest.raises(PromptBankError, match="not UTF-8"):
        load_corpus(str(path), None, None, {})
