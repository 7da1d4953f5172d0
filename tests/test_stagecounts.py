"""A stage's counts in words: the report's run table and `lmdelta status` never print raw mappings."""

from conftest import validated_row

from lmdelta.report.stagecounts import counts_in_words


def test_nested_counts_read_as_words():
    counts = {
        "main": {"hypotheses": 14, "near_duplicates": 9, "rounds": 3},
        "null": {"hypotheses": 9},
        "discovery": {"tokens": {"a": 1200, "b": 1500}},
    }
    said = counts_in_words(counts)
    assert "main comparison: 14 hypotheses, 9 near duplicates, 3 rounds" in said
    assert "null control: 9 hypotheses" in said and "1,200 side a" in said
    assert "{" not in said and "'" not in said


def test_flat_counts_texts_and_rates():
    said = counts_in_words({"prompts": 72, "status": "not run: no confirmation prompts", "tokens_per_second": 296.9})
    assert said == "72 prompts, status: not run: no confirmation prompts, 296.9 tokens per second"
    assert counts_in_words({}) == "–"
    assert counts_in_words({"ok": True, "seconds": 0.0123}) == "ok: yes, 0.0123 seconds"


def test_a_long_finding_wraps_under_its_column_within_the_width(tmp_path):
    import json

    from lmdelta.report.table import FINDING_LINES, findings_table

    words = " ".join(f"word{i}" for i in range(80))
    row = validated_row(f"b says {words}")
    (tmp_path / "hypotheses.jsonl").write_text(json.dumps(row) + "\n")
    lines = findings_table(tmp_path, width=100).splitlines()
    first = next(i for i, line in enumerate(lines) if "[all] b says word0" in line)
    block = lines[first : first + FINDING_LINES]
    assert all(len(line) <= 100 for line in block)
    column = block[0].index("b says")
    assert all(line[:column].strip() == "" and line[column:].startswith("word") for line in block[1:])
    assert block[-1].endswith("…") and "word79" not in "\n".join(lines)
