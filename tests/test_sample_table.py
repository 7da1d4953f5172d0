"""The answers as columns: a SampleTable reads back every field of every sample, and its column readers,
row selections, side swaps and joins agree with the same operations on a list of Sample."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lmdelta import sampletable
from lmdelta.pairdata import PairData, null_pair, split_prompts
from lmdelta.records import Prompt, Sample
from lmdelta.sampletable import SampleTable


def _samples(tag: str = "") -> list[Sample]:
    texts = ["plain", "naïve café ☕", "", "line\nbreak", "sep\u2028arator", "x" * 300, "日本語のテキスト"]
    out = []
    for k, text in enumerate(texts):
        for side in ("a", "b"):
            seed = (2**64 - 1 - k) if side == "b" else k
            finish = "length" if k % 3 == 0 else "stop"
            out.append(Sample(f"p{k % 4}", side, k // 4, f"{tag}{side}:{text}", 7 * k, finish, seed, f"key{k}{side}"))
    return out


def test_a_table_reads_back_every_field_in_order() -> None:
    samples = _samples()
    table = SampleTable.of(samples)
    assert len(table) == len(samples)
    assert list(table) == samples
    assert table == samples and samples == table
    assert [table[i] for i in range(-len(samples), 0)] == samples
    with pytest.raises(IndexError):
        table[len(samples)]


def test_a_table_from_json_records_equals_one_from_samples() -> None:
    samples = _samples()
    assert SampleTable.from_rows(s.to_dict() for s in samples) == samples


def test_column_readers_agree_with_the_samples() -> None:
    samples = _samples()
    table = SampleTable.of(samples)
    rows = np.array([5, 0, 11, 3, 3])
    assert table.texts(rows) == [samples[i].text for i in rows]
    assert table.texts() == [s.text for s in samples]
    assert table.prompt_ids(rows) == [samples[i].prompt_id for i in rows]
    assert table.sides(rows) == [samples[i].side for i in rows]
    assert table.is_b(rows).tolist() == [samples[i].side == "b" for i in rows]
    assert table.indices(rows).tolist() == [samples[i].index for i in rows]
    assert table.n_tokens().tolist() == [s.n_tokens for s in samples]
    ids, codes = table.prompt_index()
    assert [ids[c] for c in codes] == [s.prompt_id for s in samples]


def test_take_swap_and_join_agree_with_lists() -> None:
    samples = _samples()
    table = SampleTable.of(samples)
    rows = [7, 2, 2, 10]
    taken = table.take(rows)
    assert taken == [samples[i] for i in rows]
    assert table[3:9:2] == samples[3:9:2]
    swap = np.array([i % 3 == 0 for i in range(len(samples))])
    other = {"a": "b", "b": "a"}
    swapped = [replace(s, side=other[s.side]) if w else s for s, w in zip(samples, swap)]
    assert table.with_swapped(swap) == swapped
    assert table.with_swapped(swap).is_b().tolist() == [s.side == "b" for s in swapped]
    extra = [Sample("new", "b", 0, "fresh text", 3, "stop", 1, "k-new")]
    assert taken + extra == [*taken, *extra]
    assert table + [] is table
    assert SampleTable.of([]) + extra == extra
    assert (taken + table.take([0])).prompt_ids() == [s.prompt_id for s in [*taken, samples[0]]]


def test_a_table_holds_no_object_per_sample() -> None:
    """The columns of 20,000 answers of 60 characters take about their text's bytes, not a Sample each."""
    samples = (Sample(f"p{i // 2}", "ab"[i % 2], 0, "w" * 60, 12, "stop", i, f"{i:032x}") for i in range(20_000))
    table = SampleTable.of(samples)
    assert table.nbytes() < 20_000 * (60 + 32 + 56)  # a Sample with its two strings: 270
    assert table[12_345].key == f"{12_345:032x}"


def test_pair_data_makes_a_table_and_the_null_control_swaps_whole_prompts() -> None:
    samples = _samples()
    prompts = [Prompt(f"p{k}", f"prompt {k}", split="validation" if k % 2 else "discovery") for k in range(4)]
    data = PairData(prompts, samples, np.zeros((len(samples), 2), dtype=np.float32), {})
    assert isinstance(data.samples, SampleTable)
    assert data.shares_prompts()
    assert split_prompts(data, "validation") == 2
    assert data.rows("validation").tolist() == [i for i, s in enumerate(samples) if s.prompt_id in {"p1", "p3"}]
    null = null_pair(data, seed=3)
    for prompt in {s.prompt_id for s in samples}:
        before = [s.side for s in samples if s.prompt_id == prompt]
        after = [s.side for s in null.samples if s.prompt_id == prompt]
        assert after == before or after == [{"a": "b", "b": "a"}[side] for side in before]
    assert [s.text for s in null.samples] == [s.text for s in samples]


def test_unpaired_answers_share_no_prompt() -> None:
    samples = [Sample("p1", "a", 0, "one", 1, "stop", 0, "k1"), Sample("p2", "b", 0, "two", 1, "stop", 0, "k2")]
    data = PairData([], samples, np.zeros((2, 2), dtype=np.float32), {})
    assert not data.shares_prompts()


def test_texts_past_the_spill_size_are_memory_mapped_and_read_back_the_same() -> None:
    samples = _samples()
    table = SampleTable.from_rows((s.to_dict() for s in samples), spill_bytes=40)
    assert table._text.mapped and not SampleTable.of(samples)._text.mapped
    assert table == samples
    assert table.texts(range(len(samples))) == [s.text for s in samples]
    assert table.take([3, 1]) + [samples[0]] == [samples[3], samples[1], samples[0]]
    assert table.nbytes() < SampleTable.of(samples).nbytes()


def test_reading_many_mapped_texts_lets_their_pages_go(monkeypatch: pytest.MonkeyPatch) -> None:
    released = []
    monkeypatch.setattr(sampletable.heap, "release_mapped", released.append)
    monkeypatch.setattr(sampletable, "MANY_ROWS", 5)
    table = SampleTable.of(_samples(), spill_bytes=0)
    table.texts([0, 1, 2, 3])
    assert released == []
    table.texts([0, 1, 2, 3, 4])
    assert len(released) == 1 and released[0] is table._text.buffer


def test_discovery_strings_are_the_shared_batch_not_new_copies() -> None:
    samples = _samples()
    prompts = [Prompt(f"p{k}", f"prompt {k}", split="validation" if k % 2 else "discovery") for k in range(4)]
    data = PairData(prompts, samples, np.zeros((len(samples), 2), dtype=np.float32), {})
    discovery, validation = data.rows("discovery"), data.rows("validation")
    batch = data.texts(discovery)
    picked = discovery[::-1][:3]
    found = data.strings(picked)
    assert found == [samples[i].text for i in picked]
    assert all(any(s is t for t in batch) for s in found)  # the batch's objects, read again
    assert data.strings(np.concatenate([validation[:1], picked])) == [samples[i].text for i in [validation[0], *picked]]
    assert data.strings(np.array([], dtype=int)) == []


def test_without_a_temporary_directory_the_texts_stay_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(sampletable.tempfile, "NamedTemporaryFile", refuse)
    samples = _samples()
    table = SampleTable.of(samples, spill_bytes=10)
    assert not table._text.mapped and table == samples


def test_ids_are_the_samples_ids() -> None:
    samples = _samples()
    assert SampleTable.of(samples).ids() == [s.id for s in samples]


def test_paired_prompts_are_those_both_sides_answered() -> None:
    samples = [*_samples(), Sample("solo", "a", 0, "alone", 1, "stop", 0, "k-solo")]
    table = SampleTable.of(samples)
    ids, _ = table.prompt_index()
    both = {p for p in {s.prompt_id for s in samples} if {s.side for s in samples if s.prompt_id == p} == {"a", "b"}}
    assert {ids[c] for c in table.paired_prompts().tolist()} == both
    assert table.paired_prompts([0, 2]).size == 0  # side a only


@pytest.mark.parametrize("spill", [sampletable.SPILL_BYTES, 0])
def test_text_rows_decode_as_read_and_agree_with_the_texts(monkeypatch: pytest.MonkeyPatch, spill: int) -> None:
    monkeypatch.setattr(sampletable.TextRows, "BLOCK", 3)  # iteration crosses blocks
    samples = _samples()
    table = SampleTable.of(samples, spill_bytes=spill)
    rows = np.array([5, 0, 11, 3, 3, 13, 7, 2])
    lazy, texts = table.text_rows(rows), table.texts(rows)
    assert len(lazy) == len(texts) and list(lazy) == texts
    assert [lazy[i] for i in range(-len(texts), len(texts))] == texts + texts
    assert lazy[np.int64(2)] == texts[2]
    for piece in (slice(1, 6), slice(None, None, -2), slice(6, 100), slice(4, 4)):
        assert isinstance(lazy[piece], sampletable.TextRows) and list(lazy[piece]) == texts[piece]
    assert list(table.text_rows()) == [s.text for s in samples]
    assert list(table.text_rows([])) == []
    with pytest.raises(IndexError):
        lazy[len(texts)]
    with pytest.raises(TypeError):
        lazy[1.7]  # type: ignore[call-overload]  # as a list refuses it


def test_iterating_many_mapped_text_rows_lets_their_pages_go_a_block_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    released = []
    monkeypatch.setattr(sampletable.heap, "release_mapped", released.append)
    monkeypatch.setattr(sampletable, "MANY_ROWS", 4)
    monkeypatch.setattr(sampletable.TextRows, "BLOCK", 4)
    table = SampleTable.of(_samples(), spill_bytes=0)
    reader = iter(table.text_rows(range(12)))
    assert [next(reader) for _ in range(4)] and len(released) == 1  # one block decoded, its pages let go
    next(reader)
    assert len(released) == 2  # the next block only when its first text is read
    list(reader)
    assert len(released) == 3 and all(r is table._text.buffer for r in released)
