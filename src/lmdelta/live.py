"""The terminal's live view of a run (rich): a line per stage — a bar with counts, rate and time left for the
running one, a ✓ and its time for each finished one — and an overall line. rich is imported only when a
display starts, so `lmdelta --help` stays instant.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from lmdelta.progress import ProgressEvent, duration, listening

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

Status = Literal["waiting", "running", "done", "skipped", "stopped"]
LOGGER = "lmdelta"


@dataclass
class Row:
    """A stage as the display shows it."""

    name: str
    status: Status = "waiting"
    reason: str | None = None
    seconds: float = 0.0
    began: float = 0.0  # clock at its start
    task: ProgressEvent | None = None  # its latest "advanced" event
    task_at: float = 0.0  # clock when that event came


@dataclass
class Board:
    """What the events said so far, kept for drawing: the stages in order, where the run is, when it began."""

    start: float
    rows: dict[str, Row] = field(default_factory=dict)
    of: int = 0
    index: int = 0

    def apply(self, event: ProgressEvent, now: float) -> None:
        if event.kind == "planned":
            self.rows = {name: Row(name, "waiting" if reason else "skipped", reason) for name, reason in event.plan}
            self.of = event.of
            return
        if not event.stage:  # counted outside a run's stages: nowhere to show it
            return
        row = self.rows.setdefault(event.stage, Row(event.stage))
        if event.kind == "started":
            row.status, row.reason, row.began, row.task = "running", event.reason, now, None
            self.index, self.of = event.index, event.of
        elif event.kind == "advanced":
            row.task, row.task_at = event, now
        elif event.kind == "finished":
            row.status, row.seconds = "done", event.seconds
        elif event.kind == "stopped":
            row.status, row.seconds, row.reason = "stopped", event.seconds, event.reason
        elif event.kind == "skipped":
            row.status = "skipped"

    def stage_left(self, row: Row, now: float, estimates: Mapping[str, float] | None) -> float | None:
        """Seconds the running stage still needs: its task's pace, else its estimate less the time it ran."""
        task = row.task
        if task is not None and task.left is not None and task.done < task.total:
            return max(task.left - (now - row.task_at), 0.0)
        if estimates is not None and row.name in estimates:
            return max(estimates[row.name] - (now - row.began), 0.0)
        return None

    def left(self, now: float, estimates: Mapping[str, float] | None) -> float | None:
        """Seconds the whole run still needs, when known: the running stage's own time left plus the estimates
        of the stages still waiting; None when any of them is unknown (no number is made up)."""
        running = [row for row in self.rows.values() if row.status == "running"]
        waiting = [row.name for row in self.rows.values() if row.status == "waiting"]
        if waiting and (estimates is None or any(name not in estimates for name in waiting)):
            return None
        ahead = sum(estimates[name] for name in waiting) if estimates is not None else 0.0
        if not running:
            return ahead
        own = self.stage_left(running[0], now, estimates)
        return None if own is None else own + ahead

    def overall(self, now: float, estimates: Mapping[str, float] | None) -> str:
        elapsed = clock_time(now - self.start)
        stopped = [row for row in self.rows.values() if row.status == "stopped"]
        if stopped:
            return f"stopped in {stopped[0].name}, elapsed {elapsed}"
        if not self.rows:
            return f"planning the run, elapsed {elapsed}"
        if not any(row.status in ("running", "waiting") for row in self.rows.values()):
            ran = sum(row.status == "done" for row in self.rows.values())
            return f"done: {ran} of {len(self.rows)} stages ran, elapsed {elapsed}"
        left = self.left(now, estimates)
        if estimates is None or left is None:
            return f"overall: stage {self.index} of {self.of}, elapsed {elapsed}"
        return f"stage {self.index} of {self.of}, elapsed {elapsed}, ~{duration(left)} left overall"


def clock_time(seconds: float) -> str:
    """Elapsed time as a clock reads it: "0:42", "12:05", "1:02:03"."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _took(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 90 else clock_time(seconds)


def render(board: Board, now: float, estimates: Mapping[str, float] | None) -> RenderableType:
    """The view: one line per stage, then the overall line."""
    from rich.console import Group  # heavy: rich, only once a display runs
    from rich.text import Text

    lines: list[RenderableType] = [_row(row, now, estimates, board) for row in board.rows.values()]
    lines.append(Text(board.overall(now, estimates), style="bold"))
    return Group(*lines)


def _row(row: Row, now: float, estimates: Mapping[str, float] | None, board: Board) -> RenderableType:
    from rich.text import Text  # heavy: rich

    name = f"{row.name:<9}"
    if row.status == "done":
        return Text.assemble(("✓ ", "green"), name, (_took(row.seconds), "dim"))
    if row.status == "stopped":
        return Text.assemble(("✗ ", "red"), name, (f"stopped after {_took(row.seconds)} ({row.reason})", "red"))
    if row.status == "skipped":
        return Text.assemble(("– ", "dim"), (name, "dim"), ("done before, skipped", "dim"))
    if row.status == "waiting":
        return Text.assemble(("· ", "dim"), (name, "dim"), ("waiting", "dim"))
    return _running(row, now, board.stage_left(row, now, estimates))


def _running(row: Row, now: float, left: float | None) -> RenderableType:
    from rich.progress_bar import ProgressBar  # heavy: rich
    from rich.table import Table
    from rich.text import Text

    head = Text.assemble(("▸ ", "cyan"), (f"{row.name:<8}", "bold"))
    task = row.task
    if task is None:
        return Text.assemble(head, f" running ({row.reason}), {clock_time(now - row.began)}")
    line = Table.grid(padding=(0, 1))
    line.add_row(
        head,
        Text(task.task, style="cyan", overflow="ellipsis", no_wrap=True),
        ProgressBar(total=max(task.total, 1), completed=task.done, width=20),
        Text(_task_details(task, left), no_wrap=True, overflow="ellipsis"),
    )
    return line


def _task_details(task: ProgressEvent, left: float | None) -> str:
    """ "120/400 answers, 3.4/s, ~80 s left, 35 tok/s"; for LLM calls, then the cost so far, failures, tokens."""
    parts = [f"{task.done:,}/{task.total:,} {task.unit}"]
    if task.rate is not None:
        parts.append(f"{task.rate:.1f}/s")
    if task.done < task.total:
        parts.append(f"~{duration(left)} left")
    extras = task.extras
    if "tokens_per_second" in extras:
        parts.append(f"{extras['tokens_per_second']:.0f} tok/s")
    if extras.get("cost_usd"):
        parts.append(f"${extras['cost_usd']:.2f}")
    if extras.get("failed"):
        parts.append(f"{extras['failed']:.0f} failed")
    if extras.get("tokens"):
        parts.append(f"{_count(extras['tokens'])} tokens")
    return ", ".join(parts)


def _count(value: float) -> str:
    """12,345 → "12.3k"; 4,200,000 → "4.2M"."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:.0f}"


class LiveDisplay:
    """A live view of the run while the block runs, on `console` (default: stderr). Log records at WARNING and
    above (DEBUG and above with `debug`) print above it; INFO lines, which the view replaces, do not. It stops,
    leaving the terminal as it was, however the block ends.

    `estimates`: seconds each stage usually takes, by stage name, for the overall time left; without them the
    overall line gives the stage number and the time elapsed only.
    """

    def __init__(
        self,
        console: Console | None = None,
        estimates: Mapping[str, float] | None = None,
        debug: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console, self.estimates, self.debug, self.clock = console, estimates, debug, clock
        self.board = Board(clock())
        self.lock = threading.Lock()
        self.live: Live | None = None
        self._stack = ExitStack()

    def handle(self, event: ProgressEvent) -> None:
        with self.lock:
            self.board.apply(event, self.clock())

    def view(self) -> RenderableType:
        with self.lock:
            return render(self.board, self.clock(), self.estimates)

    def __enter__(self) -> LiveDisplay:
        from rich.console import Console  # heavy: rich, only once a display runs
        from rich.live import Live

        self.console = self.console or Console(stderr=True)
        self.board = Board(self.clock())
        with ExitStack() as stack:
            stack.enter_context(_logging_to(self.console, logging.DEBUG if self.debug else logging.WARNING))
            stack.enter_context(listening(self.handle))
            self.live = Live(
                console=self.console,
                get_renderable=self.view,
                refresh_per_second=4,
                redirect_stdout=sys.stdout.isatty(),  # piped output stays in its pipe
            )
            self.live.start(refresh=True)
            stack.callback(self.live.stop)
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stack.close()  # the view stops first, then the listener and the log handlers go


@contextmanager
def _logging_to(console: Console, level: int) -> Iterator[None]:
    """While the view runs, lmdelta's log records at `level` and above print through its console."""
    logger = logging.getLogger(LOGGER)
    saved = (logger.handlers[:], logger.propagate)
    handler = ConsoleHandler(console, level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logger.handlers[:], logger.propagate = [handler], False
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate = saved


class ConsoleHandler(logging.Handler):
    """Log records printed through the display's console, so they land above the live view, never inside it."""

    STYLES = {logging.WARNING: "yellow", logging.ERROR: "red", logging.CRITICAL: "bold red"}

    def __init__(self, console: Console, level: int) -> None:
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        from rich.text import Text  # heavy: rich

        try:
            style = self.STYLES.get(record.levelno, "")
            self.console.print(Text(self.format(record), style=style), soft_wrap=True)
        except Exception:
            self.handleError(record)
