"""A batch of LLM calls says how far it is: calls answered, rate, time left, money spent."""

import asyncio
import logging

import pytest

from lmdelta.llm import progress
from lmdelta.llm.progress import BatchProgress
from lmdelta.llm.types import CallResult, Usage
from lmdelta.progress import ProgressEvent, duration, listening


async def _answer(value):
    await asyncio.sleep(0)
    return value


def _run(batch: BatchProgress, n: int) -> list[int]:
    async def all_of_them():
        return await asyncio.gather(*(batch.track(_answer(i)) for i in range(n)))

    return asyncio.run(all_of_them())


def test_a_long_batch_logs_its_progress_and_keeps_results_in_order(monkeypatch, caplog):
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO, logger="lmdelta.llm")
    assert _run(BatchProgress("validate judge", 25, lambda: 0.42), 25) == list(range(25))
    lines = [r.getMessage() for r in caplog.records if r.name == "lmdelta.llm"]
    assert lines[0].startswith("validate judge: 1/25 calls, ") and "left" in lines[0] and "$0.42 spent" in lines[0]
    assert lines[-1].startswith("validate judge: 25/25 calls, ") and "left" not in lines[-1]


def test_a_small_batch_or_a_free_one_says_less(monkeypatch, caplog):
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO, logger="lmdelta.llm")
    _run(BatchProgress("propose proposer", 5, lambda: 0.0), 5)
    assert not [r for r in caplog.records if r.name == "lmdelta.llm"]
    _run(BatchProgress("validate judge", 30, lambda: None), 30)
    assert all("spent" not in r.getMessage() for r in caplog.records)


def test_a_batch_reports_calls_tokens_failures_and_cost_to_the_live_display(caplog):
    async def call(i):
        await asyncio.sleep(0)
        return CallResult(ok=i != 3, usage=Usage(10, 5)), i

    async def all_of_them(batch):
        return await asyncio.gather(*(batch.track(call(i)) for i in range(8)))

    events: list[ProgressEvent] = []
    caplog.set_level(logging.INFO, logger="lmdelta.llm")
    with listening(events.append):
        results = asyncio.run(all_of_them(BatchProgress("validate judge", 8, lambda: 0.42, clock=lambda: 1.0)))
    assert [parsed for _, parsed in results] == list(range(8))
    assert [e.done for e in events] == [1, 8]  # the first and the last; the clock stands still between
    last = events[-1]
    assert (last.task, last.total, last.unit) == ("validate judge", 8, "calls")
    assert last.extras == {"tokens": 120.0, "failed": 1.0, "cost_usd": 0.42}
    assert not caplog.records  # a small batch logs no line


@pytest.mark.parametrize("seconds, text", [(12, "12 s"), (600, "10 min"), (9000, "2.5 h"), (float("inf"), "?")])
def test_durations_read_naturally(seconds, text):
    assert duration(seconds) == text
