"""llm.providers.gather.Gatherer: concurrent calls gathered into batches; a batch cancelled by `close` at any
moment (before its task starts, while it computes) fails its callers and frees its slot, never leaves them
waiting."""

from __future__ import annotations

import asyncio

import pytest

from lmdelta.llm.providers.gather import Gatherer
from lmdelta.llm.types import ProviderError


def gatherer(send, **options) -> Gatherer:
    settings = {"window": 0.0, "size": 4, "parallel": 1, **options}
    return Gatherer(send, error=lambda exc: ProviderError("unknown", str(exc)), **settings)


async def slow(batch):
    await asyncio.sleep(0.01)
    return [f"reply to {r}" for r in batch]


def test_concurrent_calls_share_batches_of_at_most_size():
    sizes = []

    async def send(batch):
        sizes.append(len(batch))
        return await slow(batch)

    async def calls():
        found = gatherer(send)
        return await asyncio.gather(*(found.submit(i) for i in range(10)))

    assert asyncio.run(calls()) == [f"reply to {i}" for i in range(10)]
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("steps", range(5))  # close after 0..4 turns of the loop: before, at and after the send
def test_closing_at_any_moment_answers_every_caller_and_frees_the_slot(steps):
    async def scenario():
        found = gatherer(slow)
        caller = asyncio.ensure_future(found.submit(1))
        for _ in range(steps):
            await asyncio.sleep(0)
        found.close(ProviderError("unknown", "closed"))
        done, _ = await asyncio.wait([caller], timeout=1.0)
        await asyncio.sleep(0)  # the cancelled batch's callback runs
        if done:  # answered (closed before the call began) or failed
            assert caller.exception() is None or isinstance(caller.exception(), ProviderError)
        else:
            caller.cancel()
        return done, found._slots

    done, slots = asyncio.run(scenario())
    assert done, "a caller was left waiting"
    assert slots is not None and slots._value == 1


def test_a_failed_batch_fails_each_of_its_callers():
    async def broken(batch):
        raise RuntimeError("worker lost")

    async def calls():
        return await asyncio.gather(*(gatherer(broken).submit(i) for i in range(2)), return_exceptions=True)

    failures = asyncio.run(calls())
    assert all(isinstance(f, ProviderError) and "worker lost" in f.message for f in failures)
