"""A local Ray is shut down only after Ray Data's background threads stop: a thread that touches Ray after
ray.shutdown() ends the whole process (exit status 1, no error), which a busy machine made happen in the test
suite. No Ray needed: a stand-in module records what was alive when it was shut down."""

from __future__ import annotations

import threading

from lmdelta import execution


class FakeRay:
    def __init__(self) -> None:
        self.alive_at_shutdown: list[str] = []

    def shutdown(self) -> None:
        self.alive_at_shutdown = [t.name for t in threading.enumerate() if t.name.startswith("StreamingExecutor-")]


def test_shutdown_waits_for_ray_datas_executor_thread():
    release = threading.Event()
    slow = threading.Thread(target=release.wait, name="StreamingExecutor-test", daemon=True)
    slow.start()
    threading.Timer(0.3, release.set).start()  # the executor's loop ends a moment after the items are done
    ray = FakeRay()
    execution.shutdown(ray)
    assert ray.alive_at_shutdown == []


def test_shutdown_gives_up_waiting_after_its_deadline(monkeypatch):
    monkeypatch.setattr(execution, "SETTLE_SECONDS", 0.2)
    stuck = threading.Event()
    thread = threading.Thread(target=stuck.wait, name="StreamingExecutor-stuck", daemon=True)
    thread.start()
    ray = FakeRay()
    try:
        execution.shutdown(ray)
        assert ray.alive_at_shutdown == ["StreamingExecutor-stuck"]  # shut down anyway, not hung
    finally:
        stuck.set()
