"""Corpus mode: saved outputs instead of models, paired when prompts are known, else by text."""

import csv
import json

import numpy as np
import pytest

import lmdelta.sources.corpus as corpus_module
from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.config.prompts import CorpusConfig
from lmdelta.errors import PromptBankError
from lmdelta.hashing import hash_data
from lmdelta.pairdata import PairData
from lmdelta.records import Prompt, Sample
from lmdelta.rundir import SAMPLES, RunDir, read_jsonl
from lmdelta.sources.corpus import clear_corpus_cache, load_corpus
from lmdelta.sources.units import corpus_prompts, units
from lmdelta.stages import generate
from lmdelta.stages import prompts as prompts_stage
from lmdelta.stages.contract import StageContext
from lmdelta.validate.sets import ValidationSet


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
    path.write_text(
        json.dumps(
            {
                "prompts": {"source": "corpus"},
                "generate": {"a": {"label": "base"}, "b": {"label": "tuned"}},
                "embed": {"model": "fake:hashing"},
                "validate": {"n_resamples": 2000},
                "controls": {"null": False},
            }
        )
    )
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


@pytest.mark.parametrize(
    "rows, match",
    [
        ([{"side": "a", "text": "x"}], "no texts for side b"),
        ([{"side": "a", "answer": "x"}], "no `text` field"),
        ([{"side": "model-c", "text": "x"}], "neither a nor b"),
        ([{"side": "a", "text": "x", "prompt_id": "q"}, {"side": "b", "text": "y"}], "no prompt_id or prompt"),
    ],
)
def test_bad_corpora_name_the_file_line_and_fix(tmp_path, rows, match):
    with pytest.raises(PromptBankError, match=match):
        from lmdelta.sources.units import is_aligned

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
    with pytest.raises(PromptBankError, match="c.csv line 3"):
        load_corpus(str(path), None, None, {"a": "a", "b": "b"})


def test_non_utf8_corpus(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"side,text\na,caf\xe9\n")
    with pytest.raises(PromptBankError, match="not UTF-8"):
        load_corpus(str(path), None, None, {})


# ---- decodings saved by other tools ----


def write_reference_csv(path, rows):
    """The reference system's layout, as pandas' to_csv(escapechar='\\\\') writes it: an index
    column, then model, text, prompt, through the csv module with a backslash escape."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, escapechar="\\")
        writer.writerow(["", "model", "text", "prompt"])
        for i, row in enumerate(rows):
            writer.writerow([i, row["model"], row["text"], row["prompt"]])
    return path


def reference_rows():
    rows = []
    for r in corpus_rows():
        model = "base" if r["side"] == "base" else "finetuned"
        text = r["text"] + ' \\ "quoted", with a comma\nand a second line'
        rows.append({"model": model, "text": text, "prompt": f"<|user|>{r['prompt']}<|assistant|>"})
    return rows


def test_the_reference_csv_layout_is_read_exactly(tmp_path):
    path = write_reference_csv(tmp_path / "decoded.csv", reference_rows())
    loaded = load_corpus(str(path), None, None, {"a": "a", "b": "b"})
    assert [r.text for r in loaded] == [r["text"] for r in reference_rows()]  # backslashes, quotes, newlines
    assert {r.side for r in loaded if "ocean" in r.text} == {"b"}
    assert loaded[0].prompt == "<|user|>Question 0?<|assistant|>" and loaded[0].where.endswith("line 2")


def test_a_reference_csv_runs_paired_end_to_end(tmp_path):
    path = write_reference_csv(tmp_path / "decoded.csv", reference_rows())
    pipeline.run(config(tmp_path, f"corpus.path={path}"), RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    ocean = [r for r in rows if r["validated"] and r["direction"] == "b>a" and "ocean" in r["description"]]
    assert ocean and ocean[0]["test"].startswith("paired sign-flip")


def test_other_tools_column_names_and_side_values(tmp_path):
    rows = [
        {
            "generator": "llama-base" if r["side"] == "base" else "llama-rome",
            "completion": r["text"],
            "input": r["prompt"],
        }
        for r in corpus_rows()
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    settings = load_config(
        None,
        [
            "corpus.columns.text=completion",
            "corpus.columns.side=generator",
            "corpus.columns.prompt=input",
            "corpus.sides={a: [llama-base], b: [llama-rome]}",
        ],
    )
    loaded = load_corpus(path, None, None, {"a": "a", "b": "b"}, settings.corpus)
    assert {r.side for r in loaded} == {"a", "b"} and all(r.prompt_id for r in loaded)
    with pytest.raises(PromptBankError, match="no `answer` field") as caught:
        load_corpus(path, None, None, {}, load_config(None, ["corpus.columns.text=answer"]).corpus)
    assert "completion" in caught.value.problem  # the columns present are listed


def test_parquet_corpus(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = corpus_rows()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "c.parquet")
    loaded = load_corpus(str(tmp_path / "c.parquet"), None, None, {"a": "base", "b": "tuned"})
    assert len(loaded) == len(rows) and loaded[3].where.endswith("row 4")


def test_empty_texts_stop_with_the_line_or_are_dropped_or_kept(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("side,text\na,hello\nb,\nb,there\n")
    with pytest.raises(PromptBankError, match=r"c.csv line 3 has an empty `text`") as caught:
        load_corpus(str(path), None, None, {})
    assert "corpus.empty_texts" in caught.value.fix
    dropped = load_corpus(str(path), None, None, {}, load_config(None, ["corpus.empty_texts=drop"]).corpus)
    kept = load_corpus(str(path), None, None, {}, load_config(None, ["corpus.empty_texts=keep"]).corpus)
    assert [r.text for r in dropped] == ["hello", "there"] and [r.text for r in kept] == ["hello", "", "there"]


def test_mixed_encodings_name_the_line(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes("side,text\na,café\nb,naïve\n".encode() + b"b,caf\xe9\n")
    with pytest.raises(PromptBankError, match="line 4") as caught:
        load_corpus(str(path), None, None, {})
    assert "UTF-8" in caught.value.fix


def test_reasoning_is_stripped_from_imported_texts(tmp_path):
    rows = [
        {"side": "a", "text": "<think>\nhmm the sea</think>\n\nTides follow the moon."},
        {"side": "b", "text": "No reasoning here."},
        {"side": "b", "text": "<think>never finished"},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    options = load_config(None, ['corpus.reasoning=["<think>", "</think>"]', "corpus.empty_texts=keep"]).corpus
    loaded = load_corpus(path, None, None, {}, options)
    assert [r.text for r in loaded] == ["Tides follow the moon.", "No reasoning here.", ""]


def test_prompts_that_never_match_across_sides_are_refused(tmp_path):
    rows = [{"side": side, "text": "hi", "prompt": f"[{side}] Question {i}?"} for i in range(3) for side in "ab"]
    with pytest.raises(PromptBankError, match="No prompt of the corpus has answers from both sides"):
        load_corpus(write_jsonl(tmp_path / "c.jsonl", rows), None, None, {})


def test_a_plain_csv_with_the_reference_header_keeps_its_backslashes(tmp_path):
    path = tmp_path / "plain.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "text", "prompt"])
        writer.writerow(["base", r"Use C:\new\table and a regex \d+", "q"])
        writer.writerow(["finetuned", 'He said \\"hi\\" then left', "q"])
    loaded = load_corpus(str(path), None, None, {})
    assert [r.text for r in loaded] == [r"Use C:\new\table and a regex \d+", 'He said \\"hi\\" then left']


def test_a_per_side_file_that_holds_the_other_side_is_refused(tmp_path):
    path = write_reference_csv(tmp_path / "decoded.csv", reference_rows())
    with pytest.raises(PromptBankError, match="given as corpus.a") as caught:
        load_corpus(None, str(path), str(path), {})
    assert "corpus.path" in caught.value.fix


def test_in_the_reference_layout_base_is_always_side_a(tmp_path):
    path = write_reference_csv(tmp_path / "decoded.csv", reference_rows())
    loaded = load_corpus(str(path), None, None, {"a": "finetuned", "b": "base"})
    assert {r.side for r in loaded if "ocean" in r.text} == {"b"}


def test_a_text_that_only_mentions_a_marker_is_kept(tmp_path):
    rows = [
        {"side": "a", "text": "The <think> tag is used by R1."},
        {"side": "b", "text": "<think>"},
        {"side": "b", "text": "<think>hmm</think> An answer."},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    options = load_config(None, ['corpus.reasoning=["<think>", "</think>"]']).corpus
    with pytest.raises(PromptBankError, match="line 2 has an empty `text` after its reasoning was stripped"):
        load_corpus(path, None, None, {}, options)
    kept = load_corpus(
        path,
        None,
        None,
        {},
        load_config(None, ['corpus.reasoning=["<think>", "</think>"]', "corpus.empty_texts=drop"]).corpus,
    )
    assert [r.text for r in kept] == ["The <think> tag is used by R1.", "An answer."]


def test_a_word_in_another_script_is_found_and_validated(tmp_path):
    """The paired corpus above with "ocean" written in Russian: the finding must not vanish."""
    rows = [{**r, "text": r["text"].replace("ocean", "океан")} for r in corpus_rows()]
    corpus = tmp_path / "outputs.jsonl"
    corpus.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    pipeline.run(config(tmp_path, f"corpus.path={corpus}"), RunDir(tmp_path / "run"))
    found = [
        r
        for r in read_jsonl(tmp_path / "run/hypotheses.jsonl")
        if r["proposer"] == "keywords" and "океан" in r["keywords"] and r["direction"] == "b>a"
    ]
    assert found and any(r["validated"] for r in found)
    assert "“океан”" in found[0]["description"] and found[0]["description"].startswith("tuned uses")


def test_exact_repeats_of_rows_and_one_id_for_two_prompts_name_their_lines(tmp_path):
    rows = corpus_rows(n_prompts=6)
    with pytest.raises(PromptBankError) as err:
        load_corpus(write_jsonl(tmp_path / "twice.jsonl", rows + rows), None, None, {"a": "base", "b": "tuned"})
    assert "repeats lines 1–24 exactly as lines 25–48 (24 rows in the same order)" in err.value.problem
    rows[5] = {**rows[5], "prompt_id": "q0", "prompt": "Another question?"}  # was q1 by tuned; line 2: q0 by tuned
    with pytest.raises(PromptBankError) as err:
        load_corpus(write_jsonl(tmp_path / "dupid.jsonl", rows), None, None, {"a": "base", "b": "tuned"})
    assert "line 6 gives prompt_id 'q0' to the prompt 'Another question?'" in err.value.problem
    assert "line 2 gave it to 'Question 0?' (both side b)" in err.value.problem


def test_one_prompt_worded_differently_by_each_side_is_kept(tmp_path):
    """Each side's file may hold its own model's chat template around the same prompt."""
    rows = corpus_rows(n_prompts=6)
    rows = [{**r, "prompt": f"<|user|>{r['prompt']}" if r["side"] == "tuned" else r["prompt"]} for r in rows]
    assert len(load_corpus(write_jsonl(tmp_path / "c.jsonl", rows), None, None, {"a": "base", "b": "tuned"})) == len(
        rows
    )


# --- unaligned corpora: clusters and the near-duplicate warning (audit M6) ----------------------


def clustered_rows(n_clusters=60, per_cluster=4, mixed=False):
    """Texts in clusters (hidden prompts): b's clusters mention the ocean more. Each cluster is one
    side's, or (mixed) holds texts of both sides. A cluster's texts are near-copies (11 of 12 words shared)."""
    rows = []
    for c in range(n_clusters):
        for k in range(per_cluster):
            side = ("base", "tuned")[k % 2] if mixed else ("base", "tuned")[c % 2]
            sea = side == "tuned" and (c + k) % 3 != 0
            topic = "we sail the ocean" if sea else "we walk the park"
            words = " ".join(f"w{c}n{j}" for j in range(6))
            rows.append(
                {"side": side, "text": f"{topic} with {words} note{k}", "cluster": f"q{c}", "group": f"g{c % 2}"}
            )
    return rows


def test_an_unaligned_corpus_with_clusters_permutes_whole_clusters(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", clustered_rows())
    pipeline.run(config(tmp_path, f"corpus.path={path}"), RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    assert rows and all(r["unit"] in ("cluster", "none") for r in rows)
    ocean = [r for r in rows if r["validated"] and "ocean" in r["description"]]
    assert ocean and ocean[0]["test"].startswith("cluster-level") and "corpus.columns.cluster" in ocean[0]["test"]
    assert "clusters of texts" in ocean[0]["assumption"] and ocean[0]["n_units"] < ocean[0]["n_texts"]
    assert all(r["clustering_warning"] is None for r in rows)


def test_clusters_holding_both_sides_are_compared_paired(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", clustered_rows(mixed=True))
    pipeline.run(config(tmp_path, f"corpus.path={path}"), RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    ocean = [r for r in rows if r["validated"] and "ocean" in r["description"]]
    assert ocean and ocean[0]["test"].startswith("paired sign-flip randomization test over clusters")
    assert ocean[0]["unit"] == "cluster" and "per-cluster differences" in ocean[0]["assumption"]
    assert ocean[0]["n_units"] > 10 and all(r["clustering_warning"] is None for r in rows)


def test_near_duplicate_texts_without_a_cluster_column_warn(tmp_path, caplog):
    rows = [{k: v for k, v in r.items() if k != "cluster"} for r in clustered_rows()]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with caplog.at_level("WARNING", logger="lmdelta"):
        pipeline.run(config(tmp_path, f"corpus.path={path}", "controls.null=true"), RunDir(tmp_path / "run"))
    found = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    assert found and all(r["unit"] in ("text", "none") for r in found)
    warning = found[0]["clustering_warning"]
    assert warning and "corpus.columns.cluster" in warning and "independent texts" in warning
    assert all(r["clustering_warning"] == warning for r in found)
    assert sum(warning in m for m in caplog.messages) == 1  # logged once, null control included


def test_an_aligned_corpus_has_no_clustering_warning(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", corpus_rows())  # templated, near-duplicate answers, but paired
    pipeline.run(config(tmp_path, f"corpus.path={path}"), RunDir(tmp_path / "run"))
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    assert rows and all("clustering_warning" in r and r["clustering_warning"] is None for r in rows)


# --- the cluster column and prompt ids; clusters that mix paired and one-sided (review 2026-12) ---


LABELS = {"a": "base", "b": "tuned"}


def nested_rows():
    """Prompts nested in conversations: two turns a conversation, both sides answer every turn."""
    return [{**row, "cluster": f"conv{int(row['prompt_id'][1:]) // 2}"} for row in corpus_rows(n_prompts=8)]


def test_a_cluster_column_set_beside_prompt_ids_is_refused(tmp_path):
    """Prompts nested in a cluster are not independent; the prompt as the unit over-rejected (0.116 at 0.05)."""
    path = write_jsonl(tmp_path / "c.jsonl", nested_rows())
    with pytest.raises(PromptBankError) as found:
        load_corpus(path, None, None, LABELS, CorpusConfig(columns={"cluster": "cluster"}))
    assert "corpus.columns.cluster is set" in found.value.problem and "not independent" in found.value.problem
    assert (
        "remove the prompt_id and prompt columns" in found.value.fix
        and "remove corpus.columns.cluster" in found.value.fix
    )


def test_a_cluster_column_found_by_its_name_beside_prompt_ids_is_left_out_with_a_warning(tmp_path, caplog):
    path = write_jsonl(tmp_path / "c.jsonl", nested_rows())
    with caplog.at_level("WARNING", logger="lmdelta"):
        rows = load_corpus(path, None, None, LABELS)
    assert any("`cluster` column is not used" in m and "aligned by prompt ids" in m for m in caplog.messages)
    assert all(r.cluster is None for r in rows) and sorted(set(units(rows))) == [f"q{p}" for p in range(8)]


def test_clusters_that_mix_both_sided_and_one_sided_are_refused_with_counts(tmp_path):
    """One mixed cluster made the whole unaligned comparison paired, over that cluster alone (p = 1 from 1 unit)."""
    rows = clustered_rows(n_clusters=10)
    rows[0] = {**rows[0], "side": "tuned"}  # cluster q0 (base) gets one tuned text
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with pytest.raises(PromptBankError) as found:
        load_corpus(path, None, None, LABELS)
    assert "1 cluster holding texts of both sides (e.g. 'q0') and 9 holding texts of one side" in found.value.problem
    assert "prefix the cluster id with the side" in found.value.fix and "prompt ids" in found.value.fix


def test_corpus_prompts_say_what_their_unit_is(tmp_path):
    kinds = {}
    for name, rows in (
        ("paired", corpus_rows(n_prompts=4)),
        ("clusters", clustered_rows(n_clusters=4)),
        ("texts", corpus_rows(n_prompts=4, with_prompts=False)),
    ):
        loaded = load_corpus(write_jsonl(tmp_path / f"{name}.jsonl", rows), None, None, LABELS)
        kinds[name] = {p.unit for p in corpus_prompts(loaded)}
    assert kinds == {"paired": {None}, "clusters": {"cluster"}, "texts": {"text"}}


def test_pair_data_with_mixed_clusters_is_refused_at_validation_too():
    prompts = [Prompt(f"c-{c}", "", "all", "validation", unit="cluster") for c in range(6)]
    sides = {0: "ab", 1: "a", 2: "b", 3: "a", 4: "b", 5: "a"}
    samples = [Sample(f"c-{c}", side, 0, "x", 1, "stop", 0, f"{c}{side}") for c in range(6) for side in sides[c]]
    data = PairData(prompts, samples, np.zeros((len(samples), 2)), {p.id: "all" for p in prompts})
    with pytest.raises(PromptBankError, match="1 cluster holding texts of both sides"):
        ValidationSet.build(data)
    paired = PairData(
        prompts,
        [Sample(f"c-{c}", s, 0, "x", 1, "stop", 0, f"{c}{s}") for c in range(6) for s in "ab"],
        np.zeros((12, 2)),
        {p.id: "all" for p in prompts},
    )
    assert ValidationSet.build(paired).unit == "cluster" and ValidationSet.build(paired).aligned


def test_the_corpus_is_parsed_once_per_run_and_dropped_once_imported(tmp_path, monkeypatch):
    """The prompts stage's check parses the user's file before any stage runs, its run reuses those rows
    (kept per process while the file's content stays the same) and then drops them (a large corpus holds
    kilobytes a text); generate imports the answers from the run directory: one parse per run. A later run that
    reuses the prompts stage parses nothing (the file's content is in its fingerprint, so it passed the check
    already), also when a later stage re-runs; an edited file is parsed, checked, and re-runs prompts and generate."""
    parsed = []
    real = corpus_module._read
    monkeypatch.setattr(corpus_module, "_read", lambda path, *rest: parsed.append(path) or real(path, *rest))
    corpus = tmp_path / "outputs.jsonl"
    rows = corpus_rows()
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    settings, run_dir = config(tmp_path, f"corpus.path={corpus}"), RunDir(tmp_path / "run")
    pipeline.run(settings, run_dir)
    assert parsed == [corpus] and not corpus_module._LOADED
    assert not any(pipeline.run(settings, run_dir).reason.values()) and parsed == [corpus]
    stricter = pipeline.run(config(tmp_path, f"corpus.path={corpus}", "decide.q=0.01"), run_dir)
    assert stricter.reason["decide"] and stricter.reason["prompts"] is None and parsed == [corpus]
    assert not corpus_module._LOADED
    rows[0]["text"] = "An edited answer."
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    edited = pipeline.run(settings, run_dir)
    assert parsed == [corpus] * 2
    assert edited.reason["prompts"].startswith("changed: identity.corpus") and edited.reason["generate"]
    assert "An edited answer." in {row["text"] for row in read_jsonl(run_dir.stage_file("generate", SAMPLES))}


def test_an_edited_corpus_that_breaks_is_refused_before_any_stage_runs_again(tmp_path):
    """The check skipped for a reused prompts stage runs again once the file changes: nothing re-runs."""
    corpus = tmp_path / "outputs.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in corpus_rows()) + "\n")
    settings, run_dir = config(tmp_path, f"corpus.path={corpus}"), RunDir(tmp_path / "run")
    pipeline.run(settings, run_dir)
    before = run_dir.load_manifest().stage("prompts")
    corpus.write_text("\n".join(json.dumps({**r, "text": ""} if i == 3 else r) for i, r in enumerate(corpus_rows())))
    with pytest.raises(PromptBankError, match="outputs.jsonl line 4 has an empty `text`"):
        pipeline.run(settings, run_dir)
    assert run_dir.load_manifest().stage("prompts") == before


def test_a_bad_corpus_is_refused_before_any_stage_runs(tmp_path):
    corpus = tmp_path / "outputs.jsonl"
    corpus.write_text("\n".join(json.dumps({**r, "text": ""} if i == 3 else r) for i, r in enumerate(corpus_rows())))
    with pytest.raises(PromptBankError, match="outputs.jsonl line 4 has an empty `text`"):
        pipeline.run(config(tmp_path, f"corpus.path={corpus}"), RunDir(tmp_path / "run"))
    assert not (tmp_path / "run" / "stages").exists()


def test_generate_imports_the_corpus_from_the_run_directory_alone(tmp_path, monkeypatch):
    corpus = tmp_path / "outputs.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in corpus_rows()) + "\n")
    settings = config(tmp_path, f"corpus.path={corpus}", "prompts.limit=10").resolved()
    run_dir, cache = RunDir(tmp_path / "run"), tmp_path / "cache"
    prompts_stage.run(StageContext(run_dir, "prompts", cache), settings)
    corpus.unlink()
    clear_corpus_cache()
    monkeypatch.setattr(corpus_module, "_read", lambda *args: pytest.fail("generate read the user's corpus file"))
    ctx = StageContext(run_dir, "generate", cache)
    assert generate.identity(ctx, settings) == {}
    counts = generate.run(ctx, settings).counts
    samples = generate.load(ctx)
    assert counts["samples"] == len(samples) == 10 * 2 * 2 and counts["a"] == counts["b"] == 20
    assert {s.prompt_id for s in samples} == {p.id for p in prompts_stage.load(ctx)}
    first = next(s for s in samples if s.side == "b" and s.index == 1)
    assert first.key == hash_data(["b", first.prompt_id, 1, first.text], length=32)  # the key of earlier versions


def test_an_edited_score_table_reruns_the_prompts_stage_in_corpus_mode(tmp_path):
    corpus, table = tmp_path / "outputs.jsonl", tmp_path / "scores.json"
    corpus.write_text("\n".join(json.dumps(r) for r in corpus_rows()) + "\n")
    table.write_text(json.dumps({"g0": 0.5, "g1": 0.0}))
    settings = config(tmp_path, f"corpus.path={corpus}", f"prompts.score_table={table}", "prompts.score_above=0.1")
    before = pipeline.plan(settings, RunDir(tmp_path / "run"), tmp_path / "cache").fingerprint["prompts"]
    table.write_text(json.dumps({"g0": 0.5, "g1": 0.9}))
    assert pipeline.plan(settings, RunDir(tmp_path / "run"), tmp_path / "cache").fingerprint["prompts"] != before


@pytest.mark.parametrize("with_prompts", [True, False])
def test_a_reused_prompts_stage_is_described_and_estimated_without_parsing(tmp_path, monkeypatch, with_prompts):
    """`--dry-run` (describe_run) and `--progress bar`'s estimates (stage_seconds) before a re-run read the prompts
    stage's output and the texts per side the generate stage imported, instead of parsing the corpus again (the
    validation texts in the validation prompts' share): the same lines and estimates, paired or unaligned."""
    from lmdelta.preview import describe_run, stage_seconds

    corpus = tmp_path / "outputs.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in corpus_rows(with_prompts=with_prompts)) + "\n")
    settings, run_dir = config(tmp_path, f"corpus.path={corpus}"), RunDir(tmp_path / "run")
    parsed_lines, parsed_estimate = describe_run(settings, run_dir), stage_seconds(settings, run_dir)  # not run yet
    pipeline.run(settings, run_dir)
    monkeypatch.setattr(corpus_module, "_read", lambda *args: pytest.fail("the corpus was parsed"))
    assert describe_run(settings, run_dir) == parsed_lines
    assert parsed_estimate is not None and stage_seconds(settings, run_dir) == parsed_estimate
    assert any(("paired by prompt" if with_prompts else "unaligned") in line for line in parsed_lines)
