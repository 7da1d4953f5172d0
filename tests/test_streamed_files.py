"""CSV, TSV and text files read from disk as they are read (a chunk, a line, a record at a time), giving what reading
the whole text gave: the same lines, records, line numbers, profiles and refusals."""

import csv
import gzip
import io
import json
import random
import re
import zlib

import pytest

from lmdelta.errors import PromptBankError
from lmdelta.sources import corpus, csvrows, textfile
from lmdelta.sources.csvrows import CsvRows, _column_profiles, _shape
from lmdelta.sources.jsonrows import JsonlRows
from lmdelta.sources.tabular import read_records, read_table
from lmdelta.sources.textfile import read_text, text_lines

TEXT = 'id,text\r\nq1,"one\nline two"\n\nq2,caf\u00e9 \u2028 \u2603\nq3,last'


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(textfile, "CHUNK", 3)  # every line crosses chunks


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_lines_are_split_at_line_feeds_only_as_the_whole_text_splits(tmp_path, small_chunks, name):
    path = tmp_path / name
    data = b"\xef\xbb\xbf" + TEXT.encode()  # with a BOM
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    whole = read_text(path, "Test file")
    assert "".join(text_lines(path, "Test file")) == whole
    assert list(text_lines(path, "Test file")) == [line + "\n" for line in whole.split("\n")[:-1]] + ["q3,last"]


def test_a_bad_byte_far_into_a_streamed_file_is_named_with_its_line(tmp_path, small_chunks):
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,text\nq1,fine\nq2,caf\xe9\n")
    with pytest.raises(PromptBankError, match=r"t.csv line 3 is not UTF-8 text \(byte 0xe9"):
        read_table(path, "Test file")
    broken = tmp_path / "t.csv.gz"
    broken.write_bytes(gzip.compress(b"id,text\n" + b"q,x\n" * 5000)[:-20])
    with pytest.raises(PromptBankError, match="is not a readable gzip file"):
        read_table(broken, "Test file")


def _csv_text(rows, header=("id", "side", "text")):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def test_csv_rows_are_read_again_when_read_and_index_like_a_list(tmp_path, small_chunks):
    rows = [(f"q{i}", "ab"[i % 2], f"answer {i}" + ("\nmore" if i % 3 == 0 else "")) for i in range(12)]
    path = tmp_path / "t.csv"
    path.write_text(_csv_text(rows))
    table = read_table(path, "Test file")
    assert isinstance(table.rows, CsvRows) and len(table.rows) == 12 and table.header_line == 1
    whole = list(table.rows)
    assert whole[0] == (2, {"id": "q0", "side": "a", "text": "answer 0\nmore"}) and whole[1][0] == 4
    assert list(table.rows) == whole  # a second pass reads the file again
    for at in (5, 0, 11, 3, 4, 10, 2):  # forwards, backwards
        assert table.rows[at] == whole[at] and table.rows[at : at + 4] == whole[at : at + 4]
    assert table.rows[-1] == whole[-1] and table.rows[::5] == whole[::5]
    with pytest.raises(IndexError):
        table.rows[12]


def _profiles_of_all_rows(header, rows):
    """The column profiles, as computed from every row held at once (the reader's way before it streamed)."""
    limit = min(10, max(1, len(rows) // 2))
    values, shapes = {}, {}
    for name in dict.fromkeys(header):
        seen = {row[name] for _, row in rows if "\n" not in row.get(name, "\n")}
        if seen and len(seen) <= limit:
            values[name] = seen
        elif len(found := {_shape(value) for value in seen}) <= 3:
            shapes[name] = found
    return values, shapes


@pytest.mark.parametrize("n", [1, 2, 3, 7, 30, 200])
def test_column_profiles_read_in_one_pass_equal_those_of_all_rows_held(n):
    rng = random.Random(n)
    header = ["id", "side", "score", "text", "tag"]
    rows = []
    for i in range(n):
        row = {
            "id": f"q{rng.randrange(1000)}",
            "side": rng.choice(["a", "b"]),
            "score": rng.choice(["1", "2.5", "x", "10"]),
            "text": rng.choice(["short", "two words", "Line\nbreak", f"answer {i}!"]),
        }
        if rng.random() < 0.5:
            row["tag"] = rng.choice([f"t{k}" for k in range(12)])
        rows.append((i + 2, row))
    assert _column_profiles(header, rows) == _profiles_of_all_rows(header, rows)


def test_a_stray_quote_that_swallows_rows_is_still_refused(tmp_path):
    rows = [(f"q{i}", "ab"[i % 2], f"answer {i}") for i in range(20)]
    text = _csv_text(rows).replace("q3,b,answer 3", 'q3,b,"answer 3').replace("q9,b,answer 9", 'q9,b,answer 9"')
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(PromptBankError, match=r"t.csv line 5 opens a quoted `text` field whose line 6 reads as a row"):
        read_table(path, "Test file")


def test_the_field_size_limit_is_raised_for_each_record_and_put_back(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(_csv_text([("q1", "a", "x" * 200_000), ("q2", "b", "y")]))
    before = csv.field_size_limit()
    first, second = iter(read_table(path, "Test file").rows), iter(read_table(path, "Test file").rows)
    assert next(first)[1]["text"] == "x" * 200_000 and next(second)[1]["text"] == "x" * 200_000  # read in turns
    assert next(first)[1]["text"] == "y" and csv.field_size_limit() == before


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_backslash_pairs_are_counted_across_chunks(monkeypatch, chunk):
    monkeypatch.setattr(corpus, "CHUNK", chunk)
    for text in ["", "plain", r"a \\ b", r"a \\\\ b \\", r"a \ b", "\\", r"end \\\\\\", r"x\\y\\\z", "\\\\" * 7]:
        expected = "\\" not in re.sub(r"\\\\", "", text)
        assert corpus._backslashes_paired(io.StringIO(text)) == expected, (chunk, text)


def test_a_bad_record_is_refused_when_the_file_is_opened_not_when_it_is_read(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(_csv_text([(f"q{i}", "a", f"t{i}") for i in range(5)]) + "q9,b\n")
    with pytest.raises(PromptBankError, match=r"line 7 has 2 fields but the header \(line 1\) has 3"):
        csvrows.csv_rows(path, "Test file", None)


def test_json_lines_are_read_again_when_read_and_keep_their_line_numbers(tmp_path, small_chunks):
    lines = ['{"id": "q0", "text": "caf\\u00e9\\nnext"}', "", '{"id": "q1", "tag": "x", "text": "\u2028 raw"}', "  "]
    lines += [json.dumps({"id": f"q{i}", "text": f"t{i}"}) for i in range(2, 9)]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    table = read_table(path, "Test file")
    assert isinstance(table.rows, JsonlRows) and table.columns == ("id", "text", "tag") and len(table.rows) == 9
    whole = list(table.rows)
    assert whole[0] == (1, {"id": "q0", "text": "café\nnext"}) and whole[1] == (
        3,
        {"id": "q1", "tag": "x", "text": "\u2028 raw"},
    )
    assert [line for line, _ in whole[2:]] == list(range(5, 12))
    for at in (8, 1, 4, 5, 0):
        assert table.rows[at] == whole[at] and table.rows[at : at + 2] == whole[at : at + 2]
    assert read_records(path, "Test file") == whole


@pytest.mark.parametrize(
    "line, match",
    [
        ('{"id": 1', r"t.jsonl line 3 is not valid JSON"),
        ('["a", "b"]', r"t.jsonl line 3 is a JSON list, not an object"),
        ('{"text": "half \\ud83c"}', r"t.jsonl line 3 holds a lone UTF-16 surrogate escape"),
    ],
)
def test_a_bad_json_line_is_refused_when_the_file_is_opened(tmp_path, line, match):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "q0"}\n\n' + line + '\n{"id": "q9"}\n')
    with pytest.raises(PromptBankError, match=match):
        read_table(path, "Test file")


def test_overlapping_slices_in_file_order_read_the_file_once(tmp_path, monkeypatch):
    """The repeated-row check reads the rows of each repeat (overlapping slices, moving on a row at a time): with
    the last records kept, a corpus of many repeats is read once more, not once more per repeat."""
    path = tmp_path / "t.csv"
    path.write_text(_csv_text([("q1", "ab"[i % 2], f"story {i % 3}") for i in range(3000)]))
    opened = []
    monkeypatch.setattr(csvrows, "text_lines", lambda *args: opened.append(1) or text_lines(*args))
    rows = read_table(path, "Test file").rows
    whole = list(rows)
    opened.clear()
    for copy in range(6, 3000):
        assert rows[copy : copy + 5] == whole[copy : copy + 5]
    assert len(opened) == 1


def test_a_broken_json_line_is_placed_at_its_column_as_in_the_whole_text(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"side": "a", "text": "x"}\n{"side": "a", "text": "abc\n{"side": "b", "text": "y"}\n')
    with pytest.raises(
        PromptBankError, match=r"line 2 is not valid JSON \(Unterminated string starting at column 23\)"
    ):
        read_table(path, "Test file")


def test_a_broken_gzip_stream_or_a_bad_byte_later_in_the_file_is_the_error_given(tmp_path, small_chunks):
    text = _csv_text([(f"q{i}", "a", f"t{i}") for i in range(50)]).replace("q3,a,t3", "q3,a")  # line 5: 2 fields
    packed = bytearray(gzip.compress(text.encode()))
    packed[-8] ^= 0xFF  # the checksum, read at the end of the stream, after line 5
    damaged = tmp_path / "t.csv.gz"
    damaged.write_bytes(bytes(packed))
    with pytest.raises(PromptBankError, match="is not a readable gzip file"):
        read_table(damaged, "Test file")
    later = tmp_path / "t.jsonl"
    later.write_bytes(b'{"id": 1}\n{broken\n{"id": 2}\n{"id": 3}\n{"text": "caf\xe9"}\n')
    with pytest.raises(PromptBankError, match=r"t.jsonl line 5 is not UTF-8 text"):
        read_table(later, "Test file")


def test_swallowed_row_lines_with_a_carriage_return_or_a_long_field_are_read_not_crashed_on(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('side,text\na,"one\nbad\rline"\nb,two\na,three\nb,four\n', newline="")
    assert [row["text"] for _, row in read_table(path, "Test file").rows][0] == "one\nbad\rline"
    long = tmp_path / "long.csv"
    long.write_text(_csv_text([("q0", "a", "start\n" + "x" * 200_000), ("q1", "b", "y"), ("q2", "a", "z")]))
    assert len(read_table(long, "Test file").rows) == 3


def test_a_reference_header_gzip_with_a_broken_deflate_stream_is_named_not_crashed_on(tmp_path):
    data = ("model,text,prompt\n" + "".join(f"base,answer {i},question {i}\n" for i in range(300))).encode()
    packed = gzip.compress(data)
    for at in range(20, len(packed) - 8):  # the first damage that breaks the deflate stream itself
        broken = packed[:at] + bytes([packed[at] ^ 0xFF]) + packed[at + 1 :]
        try:
            gzip.decompress(broken)
        except zlib.error:
            break
        except (OSError, EOFError):
            continue
    path = tmp_path / "ref.csv.gz"
    path.write_bytes(broken)
    assert not corpus.is_reference_layout(path)
    with pytest.raises(PromptBankError, match="is not a readable gzip file"):
        read_table(path, "Test file")
