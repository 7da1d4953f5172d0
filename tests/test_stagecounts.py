"""A stage's counts in words: the report's run table and `lmdelta status` never print raw mappings."""

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
