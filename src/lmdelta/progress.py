"""How far a run is, as events (stage started, advanced, finished...) for whoever listens: the terminal's live
display (lmdelta.live), a function given to `compare(progress=on_events(fn))`. Standard library only.

Listeners are registered for the span of a `with listening(fn):` block, in a context variable (so asyncio
tasks started inside see them too), the way a logging handler is attached for a while: library code that
reports progress needs no handle passed down to it, and reports to nobody when nobody listens. A task's log
line (generate, embed, LLM batches) is `str()` of its event, so the lines and the live display agree.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Literal

Kind = Literal["planned", "started", "advanced", "finished", "skipped", "stopped"]
Mode = Literal["bar", "lines", "none"]
INTERVAL = 0.25  # seconds between two "advanced" events of one task, at most (its first and last always go)


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a run. Which fields are set depends on `kind`:

    - planned: `plan`, every stage in order with why it runs (None: done before, skipped); `of`, how many run.
    - started: `stage`, `index` (1-based among the stages that run), `of`, `reason` (why it runs).
    - advanced: `stage`, `task` (what is counted, e.g. "generate a", "validate judge"), `done` of `total`
      `unit`s (answers, new texts, calls, rounds), `seconds` since the task began, and `extras`:
      `tokens_per_second` (generation), `tokens`, `failed` and `cost_usd` (LLM calls; cost is the run's so far).
    - finished: `stage`, `seconds` it took. stopped: `stage`, `seconds`, `reason` (the exception's type).
    - skipped: `stage` (its output is reused).
    """

    kind: Kind
    stage: str = ""
    index: int = 0
    of: int = 0
    reason: str | None = None
    task: str = ""
    done: int = 0
    total: int = 0
    unit: str = ""
    seconds: float = 0.0
    extras: Mapping[str, float] = field(default_factory=dict, hash=False)
    plan: tuple[tuple[str, str | None], ...] = ()

    @property
    def rate(self) -> float | None:
        """Units per second so far (advanced events)."""
        return self.done / self.seconds if self.done and self.seconds > 0 else None

    @property
    def left(self) -> float | None:
        """Seconds until the task ends at its pace so far (advanced events); None before the first unit."""
        rate = self.rate
        return (self.total - self.done) / rate if rate else None

    def __str__(self) -> str:
        if self.kind == "advanced":
            return _advanced_line(self)
        if self.kind == "planned":
            return f"{self.of} of {len(self.plan)} stages to run"
        if self.kind == "started":
            return f"{self.stage}: stage {self.index} of {self.of}, running ({self.reason})"
        if self.kind == "finished":
            return f"{self.stage}: complete in {self.seconds:.1f} s"
        if self.kind == "stopped":
            return f"{self.stage}: stopped after {self.seconds:.1f} s ({self.reason})"
        return f"{self.stage}: done before, skipped"


def _advanced_line(event: ProgressEvent) -> str:
    """ "generate a: 120/400 answers, 35 tok/s, ~80 s left"; "validate judge: 340/2,000 calls, 12.3/s,
    ~2 min left, $0.42 spent"."""
    parts = [f"{event.task}: {event.done:,}/{event.total:,} {event.unit}"]
    if "tokens_per_second" in event.extras:
        parts.append(f"{event.extras['tokens_per_second']:.0f} tok/s")
    elif event.rate is not None:
        parts.append(f"{event.rate:.1f}/s")
    if event.done < event.total:
        parts.append(f"~{duration(event.left)} left")
    if event.extras.get("cost_usd"):
        parts.append(f"${event.extras['cost_usd']:.2f} spent")
    return ", ".join(parts)


def duration(seconds: float | None) -> str:
    """A time span as people say it: "12 s", "10 min", "2.5 h"; "?" when unknown."""
    if seconds is None or seconds == float("inf"):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


Listener = Callable[[ProgressEvent], None]
_listeners: ContextVar[tuple[Listener, ...]] = ContextVar("lmdelta_progress_listeners", default=())
_stage: ContextVar[str] = ContextVar("lmdelta_progress_stage", default="")


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Hand every event of the block to `listener` (in the thread that reports it; keep it quick)."""
    token = _listeners.set((*_listeners.get(), listener))
    try:
        yield
    finally:
        _listeners.reset(token)


def listened() -> bool:
    return bool(_listeners.get())


def send(event: ProgressEvent) -> None:
    for listener in _listeners.get():
        listener(event)


def planned(plan: list[tuple[str, str | None]]) -> None:
    send(ProgressEvent("planned", plan=tuple(plan), of=sum(reason is not None for _, reason in plan)))


def skipped(stage: str) -> None:
    send(ProgressEvent("skipped", stage))


@contextmanager
def stage(
    name: str, index: int, of: int, reason: str, clock: Callable[[], float] = time.perf_counter
) -> Iterator[None]:
    """A stage's span: "started" on entry, "finished" or "stopped" on exit; tasks inside report under its name."""
    token = _stage.set(name)
    start = clock()
    send(ProgressEvent("started", name, index=index, of=of, reason=reason))
    try:
        yield
    except BaseException as exc:
        # The stage's own exception is what the caller must see, not a listener's trouble reporting it.
        with suppress(Exception):
            send(ProgressEvent("stopped", name, seconds=clock() - start, reason=type(exc).__name__))
        raise
    finally:
        _stage.reset(token)
    send(ProgressEvent("finished", name, seconds=clock() - start))


class Meter:
    """Counts one task of a stage (a side's answers, a batch of LLM calls) and reports "advanced" events:
    the first, the last, and at most one every INTERVAL seconds between."""

    def __init__(self, task: str, total: int, unit: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.task, self.total, self.unit, self.clock = task, total, unit, clock
        self.start = clock()
        self.sent: float | None = None

    def due(self, done: int) -> bool:
        """Whether an event now would be reported (someone listens, and it is not too soon)."""
        if not listened():
            return False
        return self.sent is None or done >= self.total or self.clock() - self.sent >= INTERVAL

    def update(self, done: int, **extras: float) -> ProgressEvent:
        """The task's progress now, reported when due; `str()` of it is the task's log line."""
        now = self.clock()
        event = ProgressEvent(
            "advanced",
            _stage.get(),
            task=self.task,
            done=done,
            total=self.total,
            unit=self.unit,
            seconds=now - self.start,
            extras=extras,
        )
        if self.due(done):
            self.sent = now
            send(event)
        return event


def choose(mode: str, stream: IO[str], quiet: bool = False, debug: bool = False) -> Mode:
    """What shows progress: "auto" is the live display on a terminal, log lines elsewhere (CI, pipes, a notebook,
    --debug, whose records need a plain stream); --quiet shows none (warnings and errors still print)."""
    if quiet or mode == "none":
        return "none"
    if mode == "auto":
        terminal = stream.isatty() and os.environ.get("TERM") != "dumb"
        mode = "bar" if terminal and not debug else "lines"
    return "bar" if mode == "bar" else "lines"


@dataclass(frozen=True)
class on_events:  # lower case: it reads as a call, compare(progress=on_events(show))
    """Marks a function for `lmdelta.compare(progress=...)` that takes ProgressEvents instead of text lines."""

    handle: Listener

    def __call__(self, event: ProgressEvent) -> None:
        self.handle(event)
