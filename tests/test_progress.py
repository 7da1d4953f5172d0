"""Progress of a run: the events the pipeline and its stages report, the live display drawn from them (rich),
the log lines kept for pipes and CI, and which of them the CLI and the API pick."""

import io
import logging

import pytest
from click.testing import CliRunner
from conftest import fake_config
from rich.console import Console
from rich.text import Text

import lmdelta
from lmdelta import pipeline, progress
from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.live import Board, LiveDisplay
from lmdelta.progress import Meter, ProgressEvent, choose, listening, on_events
from lmdelta.rundir import RunDir
from lmdelta.stages import decide

STAGES = [stage.name for stage in pipeline.STAGES]


def run(config_path, run_dir, *overrides):
    pipeline.run(load_config(config_path, list(overrides)), RunDir(run_dir))


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def shown(console: Console) -> str:
    """What the terminal shows at the end: the display's last frame (earlier frames were drawn over)."""
    text = Text.from_ansi(console.file.getvalue()).plain
    return text[max(text.rfind(f"{mark} {STAGES[0]} ") for mark in "–✓") :]  # from the frame's first stage line


def test_a_run_reports_its_stages_in_order_with_their_counts(tmp_path, caplog):
    events: list[ProgressEvent] = []
    caplog.set_level(logging.INFO, logger="lmdelta")
    with listening(events.append):
        run(fake_config(tmp_path), tmp_path / "run")
    assert not progress.listened()
    planned, *rest = events
    assert planned.kind == "planned" and [name for name, _ in planned.plan] == STAGES and planned.of == len(STAGES)
    spans = [(e.kind, e.stage) for e in rest if e.kind != "advanced"]
    assert spans == [(kind, name) for name in STAGES for kind in ("started", "finished")]
    started = [e for e in rest if e.kind == "started"]
    n = len(STAGES)
    assert [(e.index, e.of, e.reason) for e in started] == [(i, n, "not run yet") for i in range(1, n + 1)]
    stage = ""
    for event in rest:  # every count belongs to the stage running when it came
        stage = event.stage if event.kind == "started" else stage
        assert event.stage == stage
    generate = [e for e in rest if e.kind == "advanced" and e.stage == "generate"]
    for side in ("a", "b"):
        counts = [e for e in generate if e.task == f"generate {side}"]
        assert counts[-1].done == counts[-1].total == 18 * 2 and counts[-1].unit == "answers"
        assert [e.done for e in counts] == sorted(e.done for e in counts)
        assert "tokens_per_second" in counts[-1].extras
    embed = [e for e in rest if e.kind == "advanced" and e.stage == "embed"]
    assert embed[-1].task == "embed" and embed[-1].done == embed[-1].total == 18 * 2 * 2 + 18
    assert all(e.seconds >= 0 for e in rest if e.kind in ("advanced", "finished"))
    # The log lines are the ones pipes and CI always had.
    assert "generate running (not run yet)" in caplog.text and "generate complete in " in caplog.text
    assert "generate a: 36/36 answers, " in caplog.text and " tok/s" in caplog.text
    assert "embed: 90/90 texts" in caplog.text

    again: list[ProgressEvent] = []
    with listening(again.append):
        run(fake_config(tmp_path), tmp_path / "run", "decide.q=0.2")
    plan = again[0].plan
    assert again[0].of == sum(reason is not None for _, reason in plan) and 0 < again[0].of < len(STAGES)
    skipped = [e.stage for e in again if e.kind == "skipped"]
    assert skipped and skipped == [name for name, reason in plan if reason is None]
    started = [e for e in again if e.kind == "started"]
    assert [(e.index, e.of) for e in started] == [(i, again[0].of) for i in range(1, again[0].of + 1)]
    assert started[0].reason.startswith("changed: decide.q: 0.05 → 0.2")


def test_the_live_display_shows_every_stage_done_and_the_overall_line(tmp_path):
    config = fake_config(tmp_path)
    run(config, tmp_path / "run")
    console = terminal()
    with LiveDisplay(console):
        run(config, tmp_path / "run", "generate.temperature=0.5")
    final = shown(console)
    # prompts and weights (which reads only the models' files) do not depend on the sampling temperature
    assert "– prompts  done before, skipped" in final and "– weights  done before, skipped" in final
    assert all(f"✓ {name:<9}" in final for name in STAGES if name not in ("prompts", "weights"))
    assert f"done: {len(STAGES) - 2} of {len(STAGES)} stages ran, elapsed " in final
    assert console.file.getvalue().endswith("\x1b[?25h")  # the cursor is back
    assert not progress.listened()


def test_warnings_print_above_the_display_and_info_lines_do_not():
    logger = logging.getLogger("lmdelta")
    logger.setLevel(logging.INFO)
    before = logger.handlers[:]
    console = terminal()
    with LiveDisplay(console):
        logging.getLogger("lmdelta.stages.generate").warning("generate a: the disk is nearly full")
        logging.getLogger("lmdelta.stages.generate").info("generate a: 4/36 answers")
    text = Text.from_ansi(console.file.getvalue()).plain
    assert "generate a: the disk is nearly full" in text and "4/36 answers" not in text
    assert logger.handlers == before


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt()])
def test_the_display_stops_cleanly_when_a_stage_fails(tmp_path, monkeypatch, failure):
    def fail(ctx, config):
        raise failure

    monkeypatch.setattr(decide, "run", fail)
    console = terminal()
    handlers = logging.getLogger("lmdelta").handlers[:]
    with pytest.raises(type(failure)) as raised, LiveDisplay(console) as display:
        run(fake_config(tmp_path), tmp_path / "run")
    assert raised.value is failure
    assert display.live is not None and not display.live.is_started
    assert console.file.getvalue().endswith("\x1b[?25h")
    final = shown(console)
    assert "✓ validate" in final and "✗ decide" in final and type(failure).__name__ in final
    assert "· report   waiting" in final and "stopped in decide, elapsed " in final
    assert logging.getLogger("lmdelta").handlers == handlers and not progress.listened()


def plan_of_three(board: Board) -> None:
    board.apply(ProgressEvent("planned", plan=(("a", "x"), ("b", "x"), ("c", "x")), of=3), 0.0)
    board.apply(ProgressEvent("started", "a", index=1, of=3, reason="x"), 0.0)
    task = ProgressEvent("advanced", "a", task="a", done=30, total=40, unit="calls", seconds=30.0)
    board.apply(task, 30.0)  # 10 calls left at 1 a second: 10 s


def test_the_overall_time_left_needs_an_estimate_for_every_stage_still_waiting():
    board = Board(start=0.0)
    plan_of_three(board)
    assert board.overall(34.0, None) == "overall: stage 1 of 3, elapsed 0:34"
    assert board.overall(34.0, {"b": 100.0, "c": 200.0}) == "stage 1 of 3, elapsed 0:34, ~5 min left overall"
    assert board.left(34.0, {"b": 100.0, "c": 200.0}) == pytest.approx(6.0 + 300.0)
    assert board.left(34.0, {"b": 100.0}) is None
    board.apply(ProgressEvent("finished", "a", seconds=40.0), 40.0)
    board.apply(ProgressEvent("started", "b", index=2, of=3, reason="x"), 40.0)
    assert board.left(70.0, {"b": 100.0, "c": 200.0}) == pytest.approx(70.0 + 200.0)  # no counts yet: the estimate
    assert board.left(70.0, {"c": 200.0}) is None


def test_a_meter_reports_its_first_and_last_count_and_at_most_a_few_between():
    now = [0.0]
    events: list[ProgressEvent] = []
    meter = Meter("embed", 100, "new texts", clock=lambda: now[0])
    assert not meter.due(1)  # nobody listens: nothing to do
    with listening(events.append):
        for done in range(1, 101):
            now[0] = done * 0.01  # a count every 10 ms for a second
            line = meter.update(done)
    assert 2 < len(events) <= 1 / progress.INTERVAL + 2
    assert events[0].done == 1 and events[-1].done == 100 and str(line) == "embed: 100/100 new texts, 100.0/s"
    assert str(events[0]) == "embed: 1/100 new texts, 100.0/s, ~1 s left"


def test_off_a_terminal_the_lines_are_chosen(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("TERM", "xterm-256color")
    assert choose("auto", io.StringIO()) == "lines"
    assert choose("auto", Tty()) == "bar"
    assert choose("auto", Tty(), debug=True) == "lines"
    assert choose("auto", Tty(), quiet=True) == choose("bar", Tty(), quiet=True) == "none"
    assert choose("bar", io.StringIO()) == "bar" and choose("lines", Tty()) == "lines"
    monkeypatch.setenv("TERM", "dumb")
    assert choose("auto", Tty()) == "lines"


def test_the_cli_shows_lines_in_a_pipe_and_the_display_when_asked(tmp_path):
    config = str(fake_config(tmp_path))
    piped = CliRunner().invoke(main, ["run", config, "--run-dir", str(tmp_path / "run")])
    assert piped.exit_code == 0, piped.output
    assert "generate running (not run yet)" in piped.output and "✓" not in piped.output
    shown = CliRunner().invoke(
        main, ["--progress", "bar", "run", config, "--run-dir", str(tmp_path / "run"), "--set", "decide.q=0.2"]
    )
    assert shown.exit_code == 0, shown.output
    assert "✓ decide" in shown.output and "stages ran" in shown.output
    assert "running (" not in shown.output  # the display replaces the INFO lines


def test_the_api_hands_events_to_a_function_marked_for_them(tmp_path):
    events: list[ProgressEvent] = []
    lmdelta.compare(config=fake_config(tmp_path), run_dir=tmp_path / "run", progress=on_events(events.append))
    assert [e.stage for e in events if e.kind == "finished"] == STAGES
    assert not logging.getLogger("lmdelta").handlers and not progress.listened()
