"""A corpus read as columns (`CorpusTable`): the same rows, units, prompts and samples as the rows themselves give,
with the texts in one buffer (memory-mapped past the spill size) and no object per text."""

import json
import logging
import re

import numpy as np
import pytest

from lmdelta.errors import PromptBankError
from lmdelta.hashing import hash_data
from lmdelta.sampletable import TextRows
from lmdelta.sources import corpus_checks
from lmdelta.sources.corpus import load_corpus
from lmdelta.sources.corpustable import CorpusBuilder, CorpusRow, CorpusTable
from lmdelta.sources.units import _numbered, corpus_prompts, corpus_samples, units
from lmdelta.words import CONTRACTION, TREEBANK_TOKEN

LABELS = {"a": "base", "b": "tuned"}


def rows(n=30):
    out = []
    for i in range(n):
        out.append(
            CorpusRow(
                "ab"[i % 2],
                f"Answer {i}: the café ☕ {'sea ' * (i % 3)}",
                f"q{i // 4}" if i % 5 else None,
                f"Question {i // 4}?" if i % 7 else None,
                f"g{i % 3}" if i % 2 else None,
                "c.jsonl line",
                i + 1,
                f"k{i // 6}" if i % 4 else None,
            )
        )
    return out


def table_of(found, spill_bytes=None):
    builder = CorpusBuilder(spill_bytes)
    for row in found:
        builder.add(row)
    return builder.table()


@pytest.mark.parametrize("spill_bytes", [None, 64])
def test_a_table_holds_the_rows_it_was_given(monkeypatch, spill_bytes):
    monkeypatch.setattr(CorpusTable, "BLOCK", 7)  # iteration crosses blocks
    given = rows()
    table = table_of(given, spill_bytes)
    assert table == given and list(table) == given and len(table) == len(given)
    assert table[0] == given[0] and table[-1] == given[-1] and table[5].where == "c.jsonl line 6"
    assert table[3:11] == given[3:11] and table[::4] == given[::4]
    assert list(table.texts()) == [row.text for row in given]
    picked = np.array([9, 2, 2, 17])
    assert table.take(picked) == [given[i] for i in picked]
    assert isinstance(table.texts(picked), TextRows) and list(table.texts(picked)) == [given[i].text for i in picked]
    assert table.sides() == [row.side for row in given] and table.prompt_ids() == [row.prompt_id for row in given]
    assert list(table.side_rows("b")) == [i for i, row in enumerate(given) if row.side == "b"]
    assert table.without_clusters() == [CorpusRow(*[*_fields(row)[:-1], None]) for row in given]
    assert table.where(5) == "c.jsonl line 6"
    with pytest.raises(IndexError):
        table[len(given)]


def _fields(row):
    return (row.side, row.text, row.prompt_id, row.prompt, row.group, row.source, row.line, row.cluster)


def test_past_the_spill_size_the_texts_are_mapped_from_a_file():
    mapped = table_of(rows(), spill_bytes=64)
    held = table_of(rows())
    assert mapped.texts()._strings.mapped and not held.texts()._strings.mapped
    assert mapped.nbytes() < held.nbytes()


def test_numbering_counts_each_key_from_zero_in_order():
    keys = np.random.default_rng(0).integers(0, 12, 500)
    seen: dict[int, int] = {}
    expected = []
    for key in keys.tolist():
        seen[key] = seen.get(key, -1) + 1
        expected.append(seen[key])
    assert _numbered(keys).tolist() == expected
    assert _numbered(np.zeros(0, dtype=np.int64)).tolist() == []


def write(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def long_records(n_prompts=12, per_side=3):
    return [
        {
            "prompt_id": f"q{p}",
            "prompt": f"Question {p}?",
            "group": f"g{p % 3}",
            "side": side,
            "text": f"{side} {p} {k}",
        }
        for p in range(n_prompts)
        for k in range(per_side)
        for side in ("base", "tuned")
    ]


def test_samples_are_numbered_per_prompt_and_side_and_keyed_by_content(tmp_path):
    loaded = load_corpus(write(tmp_path / "c.jsonl", long_records()), None, None, LABELS)
    kept = {"q1", "q4", "q7"}
    samples = list(corpus_samples(loaded, kept))
    assert [(s.prompt_id, s.side, s.index) for s in samples] == [
        (f"q{p}", side, k) for p in (1, 4, 7) for k in range(3) for side in "ab"
    ]
    first = samples[0]
    assert first.text == "base 1 0" and first.key == hash_data(["a", "q1", 0, "base 1 0"], length=32)
    prompts = corpus_prompts(loaded)
    assert [(p.id, p.text, p.group) for p in prompts[:2]] == [("q0", "Question 0?", "g0"), ("q1", "Question 1?", "g1")]
    assert units(loaded) == [f"q{p}" for p in range(12) for _ in range(6)]


def test_text_units_of_repeated_texts_are_told_apart(tmp_path):
    records = [{"side": side, "text": text} for side in ("base", "tuned") for text in ("same", "same", "other")]
    loaded = load_corpus(write(tmp_path / "c.jsonl", records), None, None, LABELS)
    found = units(loaded)
    assert found[0] != found[1] and found[1] == found[0] + "-2" and len(set(found)) == 6
    assert [p.unit for p in corpus_prompts(loaded)] == ["text"] * 6
    assert [s.index for s in corpus_samples(loaded, set(found))] == [0] * 6


def test_prompts_answered_by_one_side_are_counted_and_left_out(tmp_path, caplog):
    records = long_records(4, 1) + [{"prompt_id": "solo", "prompt": "Alone?", "side": "base", "text": "x"}]
    with caplog.at_level(logging.WARNING):
        load_corpus(write(tmp_path / "c.jsonl", records), None, None, LABELS)
    assert "1 of 5 prompts have answers from one side only" in caplog.text
    one_sided = [{**record, "prompt_id": record["prompt_id"] + record["side"]} for record in long_records(4, 1)]
    with pytest.raises(PromptBankError, match="No prompt of the corpus has answers from both sides"):
        load_corpus(write(tmp_path / "one.jsonl", one_sided), None, None, LABELS)


def test_a_prompt_id_naming_two_prompts_on_one_side_is_refused_with_both_lines(tmp_path):
    records = long_records(3, 1)
    records[4] = {**records[4], "prompt_id": "q0"}  # q2 by base, line 5, now claims q0's id
    with pytest.raises(PromptBankError) as found:
        load_corpus(write(tmp_path / "c.jsonl", records), None, None, LABELS)
    assert re.search(
        r"c.jsonl line 5 gives prompt_id 'q0' to the prompt 'Question 2\?', but .*c.jsonl line 1 gave",
        found.value.problem,
    )


TRICKY = [
    "They ca n't stop , it 's true .",
    "He said `` hello '' -LRB- twice -RRB- and left .",
    "It’s fine, don’t worry.",
    "Prices rose 5 % , then fell .",
    "A-B- test and B-side",
    "Plain text without marks",
    "I 'm here , you 're there , we 'll see .",
    "Only one spaced , here",
    "`` alone",
    "quote '' end",
]


def test_the_quick_checks_find_every_treebank_mark_the_patterns_find():
    for text in TRICKY:
        marks = [(m.start(), m.group(1).lower().replace("’", "'")) for m in CONTRACTION.finditer(text)]
        marks += [(m.start(), m.group(0)) for m in TREEBANK_TOKEN.finditer(text)]
        spaced = [(m.start(), m.group(0)) for m in corpus_checks._SPACED_PUNCTUATION.finditer(text)]
        assert corpus_checks._treebank_marks(text) == sorted(marks + (spaced if len(spaced) >= 2 else [])), text


def test_the_artefacts_are_found_once_and_kept_on_the_table(tmp_path, monkeypatch):
    calls = []
    found = corpus_checks.find_artefacts
    monkeypatch.setattr(corpus_checks, "find_artefacts", lambda *a: calls.append(1) or found(*a))
    records = [{**record, "text": "They ca n't stop , it 's true ."} for record in long_records(4, 1)]
    loaded = load_corpus(write(tmp_path / "c.jsonl", records), None, None, LABELS)
    assert [a.kind for a in loaded.artefacts] == ["pretokenised"] and len(calls) == 1
    assert loaded[2:5].artefacts == loaded.artefacts
