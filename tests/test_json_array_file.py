""".json files read as they are read: a JSON array of objects an element at a time, JSON lines a line at a time,
giving what reading the whole text gave (the same records, lines, columns and refusals)."""

import gzip
import json
import random

import pytest

from lmdelta.errors import PromptBankError
from lmdelta.sources import filerows, jsonarray, textfile
from lmdelta.sources.corpus import load_corpus
from lmdelta.sources.jsonarray import JsonArrayRows, json_file_rows
from lmdelta.sources.jsonrows import JsonlRows
from lmdelta.sources.tabular import read_table
from lmdelta.sources.textfile import read_text

PIECES = ["a", "é", "\\n", "\\u00e9", "\\ud83c\\udf0a", "\\ud83c", '\\"', "\\\\", "\u2028", " ", "🌊"]


def _whole(path):
    """What reading the whole text gives: (columns, rows) or the refusal's message."""
    try:
        columns, rows = jsonarray._whole(path, read_text(path, "Test file"))
    except PromptBankError as exc:
        return str(exc)
    return columns, list(rows)


def _streamed(path):
    try:
        columns, rows = json_file_rows(path, "Test file")
    except PromptBankError as exc:
        return str(exc)
    return columns, list(rows)


def _element(rng):
    if rng.random() < 0.05:
        return rng.choice(["1", '"text"', "[1, 2]", "null", "-1.5e3", "true", "NaN"])  # not an object
    pieces = PIECES if rng.random() < 0.1 else [piece for piece in PIECES if piece != "\\ud83c"]  # lone surrogates
    fields = [f'"k{rng.randrange(4)}": "' + "".join(rng.choices(pieces, k=rng.randrange(6))) + '"' for _ in range(3)]
    fields.append(f'"n": {rng.choice(["1", "-2.5", "100000000000000000000", "1e-3", "[1, {}]"])}')
    return "{" + rng.choice([", ", ",\n  ", ","]).join(fields) + "}"


def _mutated(text, rng):
    position = rng.randrange(len(text) + 1)
    kind = rng.randrange(3)
    if kind == 0:
        return text[:position]  # cut
    if kind == 1:
        return text[:position] + text[position + 1 :]  # a character lost
    return text[:position] + rng.choice('[]{},:"\\ 1x\n\xa0') + text[position:]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_random_json_files_read_as_they_are_read_equal_the_whole_text(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(textfile, "CHUNK", chunk)
    rng = random.Random(chunk)
    path = tmp_path / "t.json"
    refused = 0
    for case in range(150):
        elements = [_element(rng) for _ in range(rng.randrange(6))]
        if case % 3:
            text = "[" + rng.choice([",", ", ", ",\n", "\n,\n  "]).join(elements) + "]" + rng.choice(["", "\n", " \n "])
        else:
            text = "\n".join(element.replace("\n", " ") for element in elements) + "\n"  # JSON lines
        if case % 4 == 0:
            text = _mutated(text, rng)
        path.write_text(rng.choice(["", "\ufeff", " \n"]) + text, encoding="utf-8")
        expected = _whole(path)
        assert _streamed(path) == expected, text
        refused += isinstance(expected, str)
    assert 20 < refused < 100  # both kinds of file were exercised


def test_a_long_value_is_read_across_many_chunks_and_its_line_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(textfile, "CHUNK", 5)
    path = tmp_path / "t.json"
    records = [{"text": "x" * 3000 + "\\u00e9", "n": 123456789}, {"text": "short\n"}, {"n": 98765432109876543210}]
    path.write_text("[\n" + ",\n\n".join(json.dumps(r) for r in records) + "\n]\n")
    rows = JsonArrayRows(path, "Test file")
    assert list(rows) == [(2, records[0]), (4, records[1]), (6, records[2])]
    assert list(rows) == list(rows) and rows[2] == (6, records[2]) and rows.columns == ("text", "n")


def test_the_array_is_not_held_a_record_is_read_when_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(textfile, "CHUNK", 64)
    monkeypatch.setattr(filerows.FileRows, "WINDOW", 2)
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"text": f"answer {i}", "i": i} for i in range(500)]))
    table = read_table(path, "Test file")
    assert isinstance(table.rows, JsonArrayRows) and len(table.rows) == 500
    assert table.rows[499] == (1, {"text": "answer 499", "i": 499}) and table.rows[3][1]["i"] == 3
    assert [record["i"] for _, record in table.rows] == list(range(500))


def test_json_lines_in_a_json_file_are_read_a_line_at_a_time(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"text": "a"}\n\n{"text": "b", "side": "x"}\n')
    columns, rows = json_file_rows(path, "Test file")
    assert isinstance(rows, JsonlRows) and columns == ("text", "side")
    assert list(rows) == [(1, {"text": "a"}), (3, {"text": "b", "side": "x"})]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[{"a": 1}, {"a": 2},]', r"line 1 is not valid JSON \(Expecting value at column 21\)"),
        ('[{"a": 1}\n {"a": 2}]', r"line 2 is not valid JSON \(Expecting ',' delimiter at column 2\)"),
        ('[{"a": 1}] {"a": 2}', r"line 1 is not valid JSON \(Extra data at column 12\)"),
        ('[{"a": "\\ud83c"}, {"a": [1}]', r"line 1 is not valid JSON"),  # a syntax error first, wherever it is
        ('[3, {"a": "\\ud83c"}]', r"line 1 holds a lone UTF-16 surrogate"),  # then a lone surrogate
        ('[{"a": 1},\n"text"]', r"line 2 is a JSON str, not an object"),
        ('{"a": 1}', r"holds one JSON dict, not a list of records"),
    ],
)
def test_a_bad_json_file_is_refused_as_the_whole_text_refused_it(tmp_path, monkeypatch, text, match):
    monkeypatch.setattr(textfile, "CHUNK", 4)
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(PromptBankError, match=match):
        read_table(path, "Test file")


def test_a_bad_byte_after_a_syntax_error_is_the_error_given(tmp_path, monkeypatch):
    monkeypatch.setattr(textfile, "CHUNK", 4)
    path = tmp_path / "t.json"
    path.write_bytes(b'[{"a": 1} {"a": 2},\n{"a": "caf\xe9"}]')
    with pytest.raises(PromptBankError, match=r"line 2 is not UTF-8 text"):
        read_table(path, "Test file")


def test_a_gzipped_json_array_is_read_as_the_plain_one(tmp_path):
    records = [{"text": "a", "side": "x"}, {"text": "b\u2028c", "side": "y"}]
    plain, packed = tmp_path / "t.json", tmp_path / "t.json.gz"
    plain.write_text(json.dumps(records, indent=1))
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert list(read_table(packed, "Test file").rows) == list(read_table(plain, "Test file").rows)
    packed.write_bytes(gzip.compress(plain.read_bytes())[:-12])
    with pytest.raises(PromptBankError, match="is not a readable gzip file"):
        read_table(packed, "Test file")


def test_a_corpus_given_as_a_json_array_loads_as_the_same_json_lines(tmp_path):
    records = [
        {"prompt_id": f"q{p}", "prompt": f"Question {p}?", "side": side, "text": f"{side} answer {p} ☕"}
        for p in range(6)
        for side in ("base", "tuned")
    ]
    lines, array = tmp_path / "c.jsonl", tmp_path / "c.json"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    array.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    labels = {"a": "base", "b": "tuned"}
    from_lines, from_array = (load_corpus(str(p), None, None, labels) for p in (lines, array))
    assert [(r.side, r.text, r.prompt_id, r.line) for r in from_array] == [
        (r.side, r.text, r.prompt_id, r.line + 1)
        for r in from_lines  # the array's "[" is line 1
    ]


def test_whitespace_json_does_not_allow_before_the_first_json_line_is_refused_as_before(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('\xa0\n{"a": 1}\n{"b": 2}\n')
    with pytest.raises(PromptBankError, match=r"line 1 is not valid JSON \(Expecting value at column 1\)"):
        read_table(path, "Test file")


NOT_READABLE = {
    "digits": ('{"a": 1' + "0" * 5000 + "}", "holds a value that cannot be read"),
    "nesting": ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests values too deeply to be read"),
}


@pytest.mark.parametrize("kind", sorted(NOT_READABLE))
@pytest.mark.parametrize("name", ["t.json", "lines.json", "t.jsonl"])
def test_json_python_cannot_read_is_named_after_a_bad_byte_anywhere(tmp_path, monkeypatch, kind, name):
    monkeypatch.setattr(textfile, "CHUNK", 1024)
    value, message = NOT_READABLE[kind]
    padding = [f'{{"text": "answer {i}"}}' for i in range(400)]  # the bad byte well past the first chunk
    if name == "t.json":
        text = "[" + ", ".join([value, *padding, '{"text": "BAD"}']) + "]"
    else:
        text = "\n".join([value, *padding, '{"text": "BAD"}']) + "\n"
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PromptBankError, match=message):
        read_table(path, "Test file")
    path.write_bytes(text.replace("BAD", "caf\xe9").encode("latin-1"))
    with pytest.raises(PromptBankError, match="is not UTF-8 text"):
        read_table(path, "Test file")


def test_a_long_value_is_read_in_a_few_large_reads_not_one_per_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(textfile, "CHUNK", 1)
    reads = []
    more = jsonarray._Text.more
    monkeypatch.setattr(jsonarray._Text, "more", lambda self, wanted=1: reads.append(wanted) or more(self, wanted))
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"text": "x" * 4000}]))
    assert list(JsonArrayRows(path, "Test file"))[0][1]["text"] == "x" * 4000
    assert len(reads) < 2 * 30  # the buffer doubles: about log2(4,000) rebuilds a pass, not 4,000


def test_a_file_changed_after_it_was_opened_is_named(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('[{"a": 1}, {"a": 2}]')
    rows = JsonArrayRows(path, "Test file")
    path.write_text('{"a": 1}\n{"a": 2}\n')
    with pytest.raises(PromptBankError, match="changed while it was being read"):
        list(rows)
