"""Bad inputs from the reliability audit (2026-12-01, §1), each through the CLI against a copy of a
finished run: exit code 2, one `error:` paragraph naming the problem and the fix, no traceback,
and the earlier run's outputs byte for byte as they were. Plus what may reach the terminal."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import fake_config, validated_row

from lmdelta import pipeline
from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import ConfigError
from lmdelta.rundir import RunDir

KEPT = ("hypotheses.jsonl", "report.html", "summary.json")


def corpus_rows(n_prompts: int = 24) -> list[dict]:
    """A paired corpus in two groups: side b mentions the ocean in two answers of three."""
    rows = []
    for p in range(n_prompts):
        for side in ("a", "b"):
            sea = side == "b" and p % 3 != 0
            text = f"Answer to question {p}: " + ("we sail the ocean blue" if sea else "we walk in the park")
            rows.append(
                {"prompt_id": f"q{p}", "prompt": f"Question {p}?", "side": side, "text": text, "group": f"g{p % 2}"}
            )
    return rows


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def csv_text(rows: list[dict], columns=("prompt_id", "side", "text")) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row[c] for c in columns] for row in rows)
    return out.getvalue()


def corpus_config(folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "run": {"seed": 0},
                "prompts": {"source": "corpus"},
                "corpus": {"path": "good.jsonl"},
                "embed": {"model": "fake:hashing"},
                "validate": {"n_resamples": 2000},
                "decide": {"q": 0.05},
                "controls": {"null": False},
            }
        )
    )
    return path


def finished_run(folder: Path, config: Path) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LMDELTA_CACHE_DIR", str(folder / "cache"))
        pipeline.run(load_config(config), RunDir(folder / "run"))
    return folder / "run"


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("corpus-run")
    (folder / "good.jsonl").write_text(jsonl(corpus_rows()))
    config = corpus_config(folder)
    return config, finished_run(folder, config)


@pytest.fixture(scope="module")
def model_run(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("model-run")
    config = fake_config(folder, per_group=4, controls__null=False)
    return config, finished_run(folder, config)


def snapshot(run: Path) -> dict[str, bytes]:
    files = [run / name for name in KEPT] + sorted(p for p in (run / "stages").rglob("*") if p.is_file())
    return {str(p.relative_to(run)): p.read_bytes() for p in files}


def refused(run_copy: Path, config: Path, *args: str) -> str:
    """Run the CLI on a copy of a finished run; check the refusal's form; return its message."""
    before = snapshot(run_copy)
    result = CliRunner().invoke(main, ["run", str(config), "--run-dir", str(run_copy), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert snapshot(run_copy) == before
    return errors[0]


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


# --- bad corpora ---------------------------------------------------------------------------------


def edited_csv(rows: list[dict], **edits) -> str:
    """The corpus as CSV with some file lines edited: line_N=function of the line's text."""
    lines = csv_text(rows).split("\n")
    for name, edit in edits.items():
        number = int(name.removeprefix("line_"))
        lines[number - 1] = edit(lines[number - 1])
    return "\n".join(lines)


def open_quote(line: str) -> str:
    return line.replace(",a,", ',a,"', 1).replace(",b,", ',b,"', 1)


# E01: line 41 opens a quote nothing closes. Then a stray quote on line 12 closed by a later quote that
# ends a field (line 16), which lenient reading accepts, merging lines 12–16 into one text; and one
# closed by a quote inside a later text (line 14).
STRAY_TO_END = edited_csv(corpus_rows(), line_41=open_quote)
STRAY_CLOSED_LATER = edited_csv(corpus_rows(), line_12=open_quote, line_16=lambda line: line + ' 5"')
STRAY_CLOSED_MID_TEXT = edited_csv(
    corpus_rows(), line_12=open_quote, line_14=lambda line: line.replace("we ", 'we "really" ', 1)
)


def with_row(rows: list[dict], index: int, **changes) -> list[dict]:
    rows = [dict(row) for row in rows]
    rows[index].update(changes)
    return rows


def _c20(rows: list[dict]) -> list[dict]:
    rows = with_row(rows, 2, prompt_id="q0", prompt="A totally different prompt")
    return with_row(rows, 3, prompt_id="q0", prompt="A totally different prompt")


ROWS = corpus_rows()
BAD_CORPORA = [
    pytest.param(
        "stray.csv",
        STRAY_TO_END,
        ["line 41 opens a quoted field that is never closed", "lines 41–49"],
        "Close the quote",
        id="E01-stray-quote-to-end",
    ),
    pytest.param(
        "quote.csv",
        'prompt_id,side,text\nq1,a,"hello\nq1,b,hi\n',
        ["line 2 opens a quoted field that is never closed"],
        "Close the quote",
        id="C24-unclosed-quote",
    ),
    pytest.param(
        "later.csv",
        STRAY_CLOSED_LATER,
        ["line 12 opens a quoted `text` field whose line 13 reads as a row of its own"],
        "Close the quote",
        id="stray-quote-closed-by-a-later-one",
    ),
    pytest.param(
        "mid.csv",
        STRAY_CLOSED_MID_TEXT,
        ["line 12 opens a quoted field that runs on to line 14", "stray quote on line 12"],
        "Close the quote",
        id="stray-quote-closed-mid-text",
    ),
    pytest.param(
        "list.jsonl",
        jsonl(with_row(ROWS, 4, text=["a", "list"])),
        ["line 5 holds a list in `text` (['a', 'list']), not a text"],
        "Write each answer as one string",
        id="C15-text-is-a-list",
    ),
    pytest.param(
        "int.jsonl",
        jsonl([{**row, "text": i} for i, row in enumerate(ROWS)]),
        ["line 1 holds a number (0) in `text`, not a text"],
        'write them as strings ("42")',
        id="C76-text-is-a-number",
    ),
    pytest.param(
        "twice.jsonl",
        jsonl(ROWS + ROWS),
        ["repeats lines 1–48 exactly as lines 49–96"],
        "Delete the second copy (lines 49–96)",
        id="C19-rows-twice",
    ),
    pytest.param(
        "dupid.jsonl",
        jsonl(_c20(ROWS)),
        ["line 3 gives prompt_id 'q0' to the prompt 'A totally different prompt'", "line 1 gave it to"],
        "Give each prompt its own prompt_id",
        id="C20-one-id-two-prompts",
    ),
    pytest.param(
        "surrogate.jsonl",
        jsonl(ROWS).replace("we walk in the park", "we walk \\ud800 in the park", 1),
        ["line 1 holds a lone UTF-16 surrogate escape (\\ud800"],
        "Fix that escape",
        id="C63-lone-surrogate",
    ),
]


@pytest.mark.parametrize("name, content, problems, fix", BAD_CORPORA)
def test_a_bad_corpus_is_refused_with_its_line_and_the_fix(corpus_run, tmp_path, name, content, problems, fix):
    config, run = corpus_run
    bad = tmp_path / name
    bad.write_text(content, encoding="utf-8")
    message = refused(copy_of(run, tmp_path), config, "--set", f"corpus.path={bad}")
    for problem in problems:
        assert problem in message
    assert fix in message


def test_identical_answers_scattered_over_a_corpus_are_kept_as_repeated_samples(tmp_path):
    """Not every repeat is a copy: two identical answers to one prompt are two samples."""
    from lmdelta.sources.corpus import load_corpus

    rows = corpus_rows()
    rows = rows[:4] + [rows[3]] + rows[4:] + [rows[10]]  # q1 b twice in a row, q5 a again at the end
    path = tmp_path / "c.jsonl"
    path.write_text(jsonl(rows))
    assert len(load_corpus(str(path), None, None, {"a": "a", "b": "b"})) == len(rows)


# --- bad configs ---------------------------------------------------------------------------------


def alias_bomb(levels: int) -> str:
    """Nine aliases per level, `levels` deep, inside run.name: 9**levels values once written out."""
    lines = ["run:", "  name:", "    - &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"    - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_duplicate_yaml_key_is_refused_with_both_lines(corpus_run, tmp_path):
    config, run = corpus_run
    text = config.read_text() + "decide: {q: 0.5}\n"
    bad = config.parent / "dupkey.yaml"
    bad.write_text(text)
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("decide:"))
    last = len(text.splitlines())
    message = refused(copy_of(run, tmp_path), bad)
    assert f"sets `decide` twice in one mapping (line {first} and line {last})" in message
    assert "Merge the two into one `decide` entry" in message


def test_an_alias_bomb_is_refused_at_once(corpus_run, tmp_path):
    config, run = corpus_run
    bad = tmp_path / "bomb.yaml"
    bad.write_text(alias_bomb(7))
    message = refused(copy_of(run, tmp_path), bad)
    assert "uses YAML aliases (*name) that expand to" in message and "Write the values out" in message


def test_a_billion_samples_per_prompt_is_refused_by_the_config(model_run, tmp_path):
    config, run = model_run
    message = refused(copy_of(run, tmp_path), config, "--set", "generate.samples_per_prompt=1000000000")
    assert "generate.samples_per_prompt is invalid" in message and "less than or equal to 100000" in message


def test_a_run_of_too_many_answers_is_refused_before_any_stage(model_run, tmp_path):
    config, run = model_run
    message = refused(
        copy_of(run, tmp_path),
        config,
        "--set",
        "prompts.source=unconditional:101",
        "--set",
        "generate.samples_per_prompt=50000",
    )
    assert "would generate 10,100,000 answers (101 prompts × 50,000 generate.samples_per_prompt × 2 sides)" in message
    assert "Lower generate.samples_per_prompt or set prompts.limit" in message


# --- the terminal ----------------------------------------------------------------------------------

ESCAPES = ["\x1b]0;PW\x07", "\x1b[2J\x1b[31m", "\x9b31m", "\x9d0;T\x9c", "\x07", "\x1b]8;;http://x\x1b\\"]


def test_escape_sequences_in_a_corpus_never_reach_the_terminal(corpus_run, tmp_path):
    """E20: b's answers open with an OSC "set window title"; the findings table quotes them."""
    rows = [
        {**row, "text": "\x1b]0;PW\x07SEA sea waves\ttide\r\nfoam"} if row["side"] == "b" and i % 3 else row
        for i, row in enumerate(corpus_rows())
    ]
    path = tmp_path / "esc.jsonl"
    path.write_text(jsonl(rows))
    config, _ = corpus_run
    result = CliRunner().invoke(
        main, ["run", str(config), "--run-dir", str(tmp_path / "run"), "--set", f"corpus.path={path}"]
    )
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("tested hypotheses validated") :]
    assert any(word in table.lower() for word in ("sea", "foam", "tide"))  # the texts' words, as keywords
    assert not any(ch in table for ch in "\x1b\x07\x9b\x9d\r\t")


def test_the_findings_table_strips_escapes_controls_and_line_breaks(tmp_path):
    from lmdelta.report.table import findings_table

    description = "b says " + "".join(f"{e}x{i}" for i, e in enumerate(ESCAPES)) + "\nnext\tline\u2028end\x00\x7f"
    row = validated_row(description, group="g\x1b[1m1")
    (tmp_path / "hypotheses.jsonl").write_text(json.dumps(row) + "\n")
    table = findings_table(tmp_path, width=200)
    finding = table.splitlines()[-1]
    assert finding.endswith("[g1] b says x0x1x2x3x4x5 next line end")
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in table.replace("\n", ""))


def test_safe_terminal_text_keeps_layout_when_asked():
    from lmdelta.safetext import safe_terminal_text

    assert safe_terminal_text("a\tb\r\nc\x1b[0m\u2028d\x07") == "a b c d"
    assert safe_terminal_text("a\tb\r\nc\x1b[0m\u2028d\x07", one_line=False) == "a\tb\nc\nd"
    assert safe_terminal_text("океан 🌊 naïve") == "океан 🌊 naïve"
    assert safe_terminal_text("before \x1b]0;never terminated") == "before "


def test_the_size_check_counts_the_prompts_the_run_keeps(tmp_path):
    """A big bank narrowed by per_group is not refused for the size of the whole bank."""
    from lmdelta.stages import generate

    config = load_config(fake_config(tmp_path, per_group=6), ["generate.samples_per_prompt=100000"])
    generate.check(config)  # 18 prompts × 100,000 × 2 sides = 3.6 million answers
    many = load_config(
        fake_config(tmp_path, per_group=6), ["generate.samples_per_prompt=100000", "prompts.source=unconditional:60"]
    )
    with pytest.raises(ConfigError, match="would generate 12,000,000 answers"):
        generate.check(many)
    generate.check(
        load_config(
            fake_config(tmp_path, per_group=6),
            ["generate.samples_per_prompt=100000", "prompts.source=unconditional:60", "prompts.per_group=40"],
        )
    )


def test_a_lone_surrogate_that_arrives_another_way_still_hashes_and_can_be_made_writable():
    import hashlib

    from lmdelta.hashing import hash_data, hash_text
    from lmdelta.safetext import lone_surrogate, without_lone_surrogates

    assert hash_text("océan 🌊") == hashlib.sha256("océan 🌊".encode()).hexdigest()  # unchanged for real text
    assert hash_data(["cut \ud83c"]) != hash_data(["cut "])
    assert lone_surrogate("cut \ud83c here") == 4 and lone_surrogate("🌊") is None
    assert without_lone_surrogates("cut \ud83c here") == "cut \ufffd here"
