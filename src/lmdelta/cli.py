"""The `lmdelta` command line. Imports stay light here so `lmdelta --help` is instant: the modules
that load pydantic and numpy (config, pipeline, groundtruth, the HTML report) are imported by the
commands that use them, each marked "heavy"."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from lmdelta import __version__
from lmdelta.backends.embedded import cache_root
from lmdelta.errors import LmdeltaError, RunDirError, explain_environment_error
from lmdelta.examples import DEFAULT, example_names, write_example
from lmdelta.groundtruth.lines import scorecard_lines
from lmdelta.inputs import Inputs, as_override_strings, default_run_dir, point_latest
from lmdelta.live import LiveDisplay
from lmdelta.progress import choose
from lmdelta.report.rounds import search_line, validation_rounds
from lmdelta.report.stagecounts import counts_in_words, usage_line
from lmdelta.report.table import findings_table
from lmdelta.rundir import MANIFEST, RunDir
from lmdelta.safetext import safe_terminal_text

if TYPE_CHECKING:
    from lmdelta.config import RunConfig

T = TypeVar("T")

log = logging.getLogger("lmdelta")


class Failure(click.ClickException):
    """A clean one-paragraph error; exit status 1 (unexpected), or its subclass's."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.secho(f"error: {safe_terminal_text(self.message, one_line=False)}", err=True, fg="red")


class KnownFailure(Failure):
    """A failure lmdelta recognises (an LmdeltaError, or an environment problem it can explain)."""

    exit_code = 2


class Interrupted(Failure):
    """Ctrl-C or SIGTERM: finished work is kept and the same command resumes."""

    exit_code = 130


def _say(text: str = "") -> None:
    """Print to the terminal without letting text from data (corpora, LLM replies) act on it."""
    click.echo(safe_terminal_text(text, one_line=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lmdelta")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors while stages run (CI logs).")
@click.option(
    "--progress",
    type=click.Choice(["auto", "bar", "lines", "none"]),
    default="auto",
    show_default=True,
    help="How `run` shows its stages: a live display (bar), log lines, or nothing but warnings and errors; "
    "auto is the display on a terminal, lines elsewhere and with --debug (--quiet means none).",
)
@click.pass_context
def main(ctx: click.Context, debug: bool, quiet: bool, progress: str) -> None:
    """Find, in plain language, how two language models behave differently."""
    mode = choose(progress, sys.stderr, quiet, debug)
    ctx.obj = {"debug": debug, "progress": mode}
    _configure_logging(debug, mode == "none")


def _configure_logging(debug: bool, quiet: bool = False) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def _guard(ctx: click.Context, action: Callable[[], T], run_dir: Path | None = None) -> T:
    """Run an action, turning known failures into clean messages (tracebacks with --debug)."""
    try:
        return action()
    except LmdeltaError as exc:
        if ctx.obj["debug"]:
            raise
        raise KnownFailure(f"{exc}{_kept(run_dir)}") from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted.{_kept(run_dir)} Run the same command again to resume.") from None
    except Exception as exc:
        if ctx.obj["debug"]:
            raise
        known = explain_environment_error(exc)
        if known is not None:
            raise KnownFailure(f"{known}{_kept(run_dir)}") from None
        raise Failure(
            f"unexpected {type(exc).__name__}: {exc}.{_kept(run_dir)} Re-run with --debug for the traceback, "
            "and please report it."
        ) from None


def _kept(run_dir: Path | None) -> str:
    """Where finished work is, once a stage has finished; a run that failed before any stage says nothing of it."""
    if run_dir is None:
        return ""
    try:
        stages = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")).get("stages", {})
    except (OSError, ValueError, AttributeError):
        return ""
    finished = any(isinstance(entry, dict) and entry.get("status") == "complete" for entry in stages.values())
    return f" Finished work is kept in {run_dir}." if finished else ""


def _interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@main.command()
@click.argument("config_path", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--a", "model_a", metavar="MODEL", help="Side a's model (generate.a.model): a Hub id, folder, or API model."
)
@click.option("--b", "model_b", metavar="MODEL", help="Side b's model (generate.b.model).")
@click.option(
    "--corpus",
    multiple=True,
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Saved outputs instead of models: once (one file with both sides) or twice (side a's, then side b's).",
)
@click.option("--a-label", metavar="NAME", help="What to call side a in the findings (generate.a.label).")
@click.option("--b-label", metavar="NAME", help="What to call side b (generate.b.label).")
@click.option(
    "--text-columns",
    nargs=2,
    metavar="COL_A COL_B",
    help="A wide corpus (one row per prompt): the columns holding side a's and side b's answers.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Use at most this many prompts (prompts.limit).")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the run lives (default: runs/<name>-<key of what is compared>, linked from runs/latest). "
    "Re-running resumes it.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a config field, e.g. --set generate.max_new_tokens=32. Repeatable.",
)
@click.option("--dry-run", is_flag=True, help="Check config, models and files without loading weights, then stop.")
@click.pass_context
def run(
    ctx: click.Context,
    config_path: Path | None,
    run_dir: Path | None,
    overrides: tuple[str, ...],
    dry_run: bool,
    **given: Any,
) -> None:
    """Run the pipeline described by CONFIG (or by --a/--b or --corpus alone), resuming whatever is done.

    \b
    lmdelta run configs/demo.yaml
    lmdelta run --a HuggingFaceTB/SmolLM2-135M-Instruct --b ./my-finetune
    lmdelta run --corpus answers.csv --text-columns model_x model_y
    """
    from lmdelta.config import load_config  # heavy: pydantic

    inputs = _inputs(given)
    settings = _guard(ctx, lambda: as_override_strings(inputs.overrides(config_path is not None)))
    config = _guard(ctx, lambda: load_config(config_path, [*settings, *overrides]))
    chosen = run_dir is not None
    run_dir = run_dir or default_run_dir(config, config_path)
    if dry_run:
        _guard(ctx, lambda: _dry_run(config, run_dir))
        return
    _interrupt_on_sigterm()
    start = time.perf_counter()
    display = _display(ctx.obj["progress"], ctx.obj["debug"], config, run_dir)
    _guard(ctx, lambda: _run(config, run_dir, display, link_latest=not chosen), run_dir)
    _say(f"done in {time.perf_counter() - start:.1f} s; outputs in {run_dir}")


def _inputs(given: dict[str, Any]) -> Inputs:
    columns = given.get("text_columns")
    return Inputs(
        a=given.get("model_a"),
        b=given.get("model_b"),
        corpus=[str(path) for path in given.get("corpus") or ()],
        a_label=given.get("a_label"),
        b_label=given.get("b_label"),
        text_columns=list(columns) if columns else None,
        limit=given.get("limit"),
    )


def _print_findings(run_dir: Path) -> None:
    files = RunDir(run_dir)
    if files.findings_path().exists():
        _say("")
        _say(findings_table(run_dir, width=min(max(shutil.get_terminal_size((100, 24)).columns, 100), 160)))
    if files.report_path.exists():
        _say(f"report: {files.report_path}")


def _display(mode: str, debug: bool, config: RunConfig, run_dir: Path) -> AbstractContextManager[object]:
    """The live display for `--progress bar` (its overall time left from the stages' estimated times); the other
    modes are the log handler _configure_logging set."""
    if mode != "bar":
        return nullcontext()
    from lmdelta.preview import stage_seconds  # heavy: reads the prompt bank or the corpus

    return LiveDisplay(debug=debug, estimates=stage_seconds(config, RunDir(run_dir)))


def _run(config: RunConfig, run_dir: Path, display: AbstractContextManager[object], link_latest: bool = False) -> None:
    """The run (shown by `display`), then what it found, printed under the lock so no other run can change it
    meanwhile."""
    from lmdelta import pipeline  # heavy: every stage, numpy, pydantic

    rd = RunDir(run_dir)
    rd.check_usable()
    with rd.lock():
        if link_latest:
            point_latest(run_dir)
        with display:
            pipeline.run(config, rd)
        _print_status(run_dir)
        _print_findings(run_dir)


def _dry_run(config: RunConfig, run_dir: Path) -> None:
    from lmdelta.dryrun import dry_run_lines  # heavy: every stage, numpy, pydantic; reads the prompt bank

    for line in dry_run_lines(config, RunDir(run_dir), cache_root(config.embed.cache_dir)):
        _say(line)


@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the experiment lives (default: runs/<config name>). Re-running resumes it.",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a config field. Repeatable."
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    help="Repeat the experiment with N seeds (run.seed, run.seed + 1, ...), each in RUN_DIR/seed-S, "
    "and summarise recovery over them in RUN_DIR/summary.json.",
)
@click.pass_context
def groundtruth(
    ctx: click.Context, config_path: Path, run_dir: Path | None, overrides: tuple[str, ...], seeds: int | None
) -> None:
    """Inject known quirks by finetuning, discover them with the pipeline, and score the recovery."""
    from lmdelta.config import load_config  # heavy: pydantic

    config = _guard(ctx, lambda: load_config(config_path, list(overrides)))
    run_dir = run_dir or Path("runs") / (config.run.name or config_path.stem)
    _interrupt_on_sigterm()
    start = time.perf_counter()
    if seeds:
        first = config.run.seed
        load = lambda extra: load_config(config_path, [*overrides, *extra])  # noqa: E731
        _guard(ctx, lambda: _groundtruth_seeds(load, range(first, first + seeds), run_dir), run_dir)
        _say(f"done in {time.perf_counter() - start:.1f} s; summary: {run_dir / 'summary.json'}")
        return
    _guard(ctx, lambda: _groundtruth(config, run_dir), run_dir)
    _say(f"done in {time.perf_counter() - start:.1f} s; scorecard: {run_dir / 'scorecard.json'}")


def _groundtruth_seeds(load: Callable[..., RunConfig], seeds: range, root: Path) -> None:
    from lmdelta.groundtruth import suite  # heavy: the pipeline, numpy, pydantic

    suite.check_root(root)
    pinned = suite.pinned_seeds(load)
    if pinned:
        log.warning("%s set in the config: every seed shares them (unset them to vary them too)", ", ".join(pinned))
    records = suite.run_suite(load, suite.seeded("seed", list(seeds), group="seeds"), root)
    summary = suite.write_summary(records, root)
    _say(suite.summary_lines(summary["groups"]["seeds"]))


def _groundtruth(config: RunConfig, run_dir: Path) -> None:
    from lmdelta.groundtruth import harness  # heavy: the pipeline, numpy, pydantic

    rd = RunDir(run_dir)
    rd.check_usable()
    with rd.lock():
        card = harness.run(config, rd)
        _print_status(run_dir)
        _print_findings(run_dir)
        _say("")
        _say(scorecard_lines(card))


@main.command("weights")
@click.argument("model_a")
@click.argument("model_b")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where weights.jsonl and weights_summary.json go (default: runs/weights-<key of the pair>); an "
    "`lmdelta run` directory gets a weights section in its report.",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="A `weights` option (top_k=32, ...). Repeatable."
)
@click.option(
    "--quantized",
    type=click.Choice(["none", "4bit", "8bit"]),
    default="none",
    help="MODEL_B as bitsandbytes loads it: `lmdelta weights M M --quantized 4bit` measures the quantization error.",
)
@click.pass_context
def weights_command(
    ctx: click.Context, model_a: str, model_b: str, run_dir: Path | None, overrides: tuple[str, ...], quantized: str
) -> None:
    """Where and how much two models' weights differ, matrix by matrix (docs/weights.md).

    MODEL_A and MODEL_B: model folders, Hugging Face ids or embedded: names; MODEL_B may be a LoRA adapter
    folder on MODEL_A (read from its factors, never merged)."""
    from lmdelta.weights.command import default_dir, run_weights, summary_lines  # heavy: numpy, safetensors

    out = run_dir or default_dir(model_a, model_b)
    summary = _guard(ctx, lambda: run_weights(model_a, model_b, out, list(overrides), quantized), out)
    _say("\n".join(summary_lines(summary)))
    if RunDir(out).report_path.exists():
        _guard(ctx, lambda: _render_locked(out))
        _say(f"report: {RunDir(out).report_path}")
    _say(f"rows: {out / 'weights.jsonl'}; summary: {out / 'weights_summary.json'}")


@main.command()
@click.argument("name", required=False, default=DEFAULT)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("."),
    help="File or folder to write (default: NAME.yaml here).",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@click.option("--list", "listing", is_flag=True, help="List the example configs and stop.")
@click.pass_context
def init(ctx: click.Context, name: str, output: Path, force: bool, listing: bool) -> None:
    """Write an example config (NAME: demo, corpus-pair, persona, paper/quantization, …; --list shows all)."""
    if listing:
        _say("\n".join(example_names()))
        return
    path = _guard(ctx, lambda: write_example(name, output, force))
    _say(f"wrote {path}; edit it, then: lmdelta run {path} --dry-run")


@main.command("config")
@click.argument("config_path", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a field. Repeatable.")
@click.option("--reference", is_flag=True, help="Print the reference of every section and field (Markdown).")
@click.pass_context
def config_command(ctx: click.Context, config_path: Path | None, overrides: tuple[str, ...], reference: bool) -> None:
    """Print the fully resolved config (defaults, file, environment, --set), or the field reference."""
    from lmdelta.config import dump_config, load_config  # heavy: pydantic
    from lmdelta.config.reference import reference_markdown  # heavy: pydantic

    if reference:
        click.echo(reference_markdown(), nl=False)
        return

    click.echo(dump_config(_guard(ctx, lambda: load_config(config_path, list(overrides)))), nl=False)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def report(ctx: click.Context, run_dir: Path) -> None:
    """Re-render report.html from a run directory and print its validated findings."""
    _guard(ctx, lambda: _require_run(run_dir))
    _guard(ctx, lambda: _render_locked(run_dir))
    _print_findings(run_dir)


def _render_locked(run_dir: Path) -> None:
    from lmdelta.report.render import render_report  # heavy: jinja2, pydantic (the config it shows)

    with RunDir(run_dir).lock():
        render_report(run_dir)


def _require_run(run_dir: Path) -> None:
    if not RunDir(run_dir).exists():
        raise RunDirError(
            f"{run_dir} is not an lmdelta run directory (no {MANIFEST}).",
            "Pass the --run-dir of an earlier `lmdelta run`.",
        )


@main.group()
def findings() -> None:
    """Work with a finished run's findings."""


@findings.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write: .yaml/.yml or .jsonl (the format follows the extension).",
)
@click.option("--all", "everything", is_flag=True, help="Every tested hypothesis, not only the validated ones.")
@click.pass_context
def export(ctx: click.Context, run_dir: Path, output: Path, everything: bool) -> None:
    """Write RUN_DIR's validated findings as hypotheses to test again (propose.given; docs/given.md)."""
    from lmdelta.given import export_findings  # heavy: pydantic, numpy

    _guard(ctx, lambda: _require_run(run_dir))
    count = _guard(ctx, lambda: export_findings(run_dir, output, everything))
    what = "tested" if everything else "validated"
    _say(
        f"wrote {count} {what} finding{'s' if count != 1 else ''} to {output}; test them again in a run with "
        f"--set propose.given={output}"
        + ("" if count or everything else " (none was validated: --all writes every tested one)")
    )


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def status(ctx: click.Context, run_dir: Path) -> None:
    """Show what a run directory holds: stages, counts, timings."""
    _guard(ctx, lambda: _print_status(run_dir))


def _print_status(run_dir: Path) -> None:
    _require_run(run_dir)
    rd = RunDir(run_dir)
    manifest = rd.load_manifest()
    _say(f"run {run_dir}  (lmdelta {manifest.version}, updated {manifest.updated or '?'})")
    _say(f"  {'stage':<9} {'status':<12} {'time':>8}  counts")
    for name, record in manifest.stages.items():
        seconds = record.seconds
        shown = f"{seconds:.1f}s" if isinstance(seconds, (int, float)) else "-"
        _say(f"  {name:<9} {record.status or '?':<12} {shown:>8}  {counts_in_words(record.counts or {})}")
    line = search_line(rd)
    if line:
        _say(f"  {line}")
    for row in validation_rounds(rd):
        reach = f" (up to {row['reach']} prompts a hypothesis)" if row["reach"] is not None else ""
        _say(
            f"  validation round {row['round']}{reach}: {row['prompts']} prompts answered, {row['tokens']} tokens, "
            f"{row['judge_calls']} judge calls; {row['standing']}"
        )
    usage = manifest.llm_usage
    if usage:
        _say(f"  LLM: {usage_line(usage)}")
        for stage, roles in usage.get("by_stage", {}).items():
            for role, entry in roles.items():
                _say(f"    {stage}/{role}: {usage_line(entry)}")


if __name__ == "__main__":
    main()
