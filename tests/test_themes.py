"""Themes: validated findings grouped by claim similarity or shared firing texts, the extractive and the LLM
summary, the per-round lines, themes.json, the report's Themes section and the terminal's theme lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_config, make_finding
from llm_servers import ScriptedServer, openai_reply
from test_report import run_dir  # noqa: F401 (the hand-written run directory fixture)

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.llm import prompts
from lmdelta.report.render import render_report
from lmdelta.report.table import findings_table
from lmdelta.rundir import THEMES, RunDir, read_jsonl
from lmdelta.stages import validate
from lmdelta.stages.contract import StageContext
from lmdelta.themes import (
    Evidence,
    Member,
    Summary,
    Theme,
    Themes,
    Thresholds,
    average_linkage,
    build_themes,
    claim_text,
    extractive_summary,
    round_lines,
)

LABELS = {"a": "base", "b": "tuned"}
SECRET = "sk-test-secret-4242"
STRONG = {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.8}}


def finding(id: str, description: str, effect: float, *, round: int | None = None, **fields):
    provenance = {"round": round} if round is not None else None
    return make_finding(
        id=id, description=description, effect=effect, p_value=0.001, validated=True, provenance=provenance, **fields
    )


def unit(*angles_deg: float) -> np.ndarray:
    """Unit vectors in the plane at these angles: cos(30°) = 0.87 is alike, cos(50°) = 0.64 is not (0.7)."""
    radians = np.radians(angles_deg)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def fires(n: int, *on: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(on)] = True
    return out


def members(themes: list[Theme]) -> list[list[str]]:
    return [[m.id for m in theme.members] for theme in themes]


# --- grouping ---------------------------------------------------------------------------------------------


def test_findings_whose_claims_are_alike_make_one_theme_led_by_the_largest_effect():
    found = [finding("h1", "b mentions the sea", 0.2), finding("h2", "b mentions the ocean", 0.4)]
    found.append(finding("h3", "b writes longer answers", 0.1))
    themes = build_themes(found, unit(0, 30, 90), [None, None, None])
    assert members(themes) == [["h2", "h1"], ["h3"]]
    assert themes[0].id == "t1" and themes[0].title == "b mentions the ocean" and themes[0].effect == 0.4
    assert themes[0].lead == "h2" and themes[0].directions == ("b>a",)


def test_findings_that_fire_on_the_same_texts_make_one_theme_whatever_their_claims():
    found = [finding("h1", "b says “ahoy”", 0.3), finding("h2", "b says “matey”", 0.2)]
    firing = [fires(20, 1, 2, 3, 4, 5), fires(20, 2, 3, 4, 5, 6, 7, 8, 9)]  # 4 of the smaller 5 shared
    assert members(build_themes(found, unit(0, 90), firing)) == [["h1", "h2"]]


def test_unrelated_findings_stay_apart_at_the_thresholds():
    found = [finding("h1", "one", 0.3), finding("h2", "two", 0.2)]
    below = [fires(20, 1, 2, 3, 4, 5), fires(20, 1, 2, 10, 11, 12)]  # overlap 2/5 = 0.4 < 0.5
    assert members(build_themes(found, unit(0, 50), below)) == [["h1"], ["h2"]]  # cos 50° = 0.64 < 0.7
    tiny = [fires(20, 1, 2), fires(20, 1, 2)]  # identical, but too few texts to say what a finding is about
    assert members(build_themes(found, unit(0, 90), tiny)) == [["h1"], ["h2"]]
    loose = Thresholds(similarity=0.6, overlap=0.4)
    assert members(build_themes(found, unit(0, 50), below, loose)) == [["h1", "h2"]]


def test_average_linkage_does_not_chain_a_line_of_loosely_related_findings_into_one_theme():
    chain = np.zeros((5, 5), dtype=bool)
    for i in range(4):
        chain[i, i + 1] = chain[i + 1, i] = True
    groups = average_linkage(chain)
    assert len(groups) > 1 and sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    clique = ~np.eye(4, dtype=bool)
    assert average_linkage(clique) == [[0, 1, 2, 3]]


def test_the_claim_embedded_is_side_free_and_leaves_the_proposers_template_out():
    keyword = finding("h1", "tuned uses “ocean” in more answers than base", 0.3, property="uses the word “ocean”")
    assert claim_text(keyword) == "ocean"
    llm = finding("h2", "Model B brings up the ocean", 0.3, property="brings up the ocean or the sea")
    assert claim_text(llm) == "brings up the ocean or the sea"
    assert claim_text(finding("h3", "b's answers are longer", 0.1)) == "b's answers are longer"


def test_a_theme_mixes_directions_and_quotes_evidence_from_the_side_that_shows_it():
    examples_b = {"a": [{"text": "a's plain text"}], "b": [{"text": "Ahoy, the ocean!", "prompt": "Hi"}]}
    examples_a = {"a": [{"text": "Dry land only."}], "b": [{"text": "b's text"}]}
    found = [
        finding("h1", "b talks of the ocean", 0.5, examples=examples_b),
        finding("h2", "a talks of land", -0.2, direction="a>b", examples=examples_a),
    ]
    [theme] = build_themes(found, unit(0, 10), [None, None])
    assert theme.directions == ("a>b", "b>a")
    assert [(e.finding, e.side, e.text) for e in theme.evidence] == [
        ("h1", "b", "Ahoy, the ocean!"),
        ("h2", "a", "Dry land only."),
    ]


# --- words ------------------------------------------------------------------------------------------------


def test_the_extractive_summary_counts_the_ways_and_names_each_theme_with_its_effect():
    found = [finding("h1", "tuned mentions the ocean", 0.42), finding("h2", "tuned mentions the sea", 0.3)]
    found.append(finding("h3", "base writes longer answers.", -0.21, direction="a>b"))
    themes = build_themes(found, unit(0, 20, 90), [None] * 3)
    text = extractive_summary(themes, LABELS)
    assert text.startswith("tuned differs from base in 2 ways, strongest first: ")
    assert "tuned mentions the ocean (effect +0.42, 2 findings)" in text
    assert "base writes longer answers (effect -0.21)" in text
    assert "3 validated findings in all" in text
    assert extractive_summary([], LABELS) == "No difference between base and tuned was validated."


def test_one_line_per_round_says_what_it_added_and_nothing_for_a_single_round():
    found = [
        finding("h1", "b mentions the ocean", 0.4),  # no round: the first
        finding("h2", "b mentions the sea", 0.3, round=2),
        finding("h3", "b writes longer answers", 0.2, round=2),
        make_finding(id="h4", description="b is rude", validated=False, provenance={"round": 3}),
    ]
    validated = found[:3]
    themes = build_themes(validated, unit(0, 20, 90), [None] * 3)
    lines = round_lines(found, themes)
    assert lines == [
        "Round 1: 1 validated finding (1 tested); new theme “b mentions the ocean”.",
        "Round 2: 2 validated findings (2 tested); new theme “b writes longer answers”; "
        "more on “b mentions the ocean”.",
        "Round 3: no validated finding (1 tested).",
    ]
    assert round_lines(validated[:1], themes[:1]) == []


def test_themes_json_round_trips():
    theme = Theme(
        "t1",
        "title",
        "h1",
        (Member("h1", "d", "b>a", "all", 0.4, 0.01, 2),),
        ("b>a",),
        0.4,
        (2,),
        (Evidence("h1", "b", "p", "text"),),
    )
    themes = Themes((theme,), Summary("s", "llm", "fake/keywords"), ("Round 2: …",))
    assert Themes.from_dict(json.loads(json.dumps(themes.to_dict()))) == themes


def test_the_summariser_prompt_lists_the_themes_and_its_answer_is_folded_into_one_paragraph():
    request = prompts.summary_request("base", "tuned", ["first theme\n   Also: more", "second theme"])
    body = request.messages[0].content
    assert '("base")' in body and '("tuned")' in body and "1. first theme\n   Also: more\n2. second theme" in body
    assert prompts.parse_summary("  A line.\n\nAnother  line. ") == "A line. Another line."
    with pytest.raises(ValueError):
        prompts.parse_summary(" \n ")


# --- the report -------------------------------------------------------------------------------------------

LLM_TEXT = "tuned is <b>upbeat</b><script>alert(1)</script> " + "W" * 180


def _write_themes(root: Path, summary: Summary) -> None:
    member = Member("h1", "Uses more exclamation marks and upbeat phrasing", "b>a", "tone", 0.31, 0.0001, 1)
    theme = Theme(
        "t1", member.description, "h1", (member,), ("b>a",), 0.31, (1,), (Evidence("h1", "b", "", "So excited!"),)
    )
    path = RunDir(root).stage_file("report", THEMES)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Themes((theme,), summary).to_dict()))


def test_the_report_opens_with_the_themes_and_escapes_the_summariser(run_dir):  # noqa: F811
    _write_themes(run_dir, Summary(LLM_TEXT, "llm", "fake/keywords"))
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert html.index('id="themes"') < html.index('id="findings"') < html.index('<article class="card"')
    section = html[html.index('id="themes"') : html.index('id="findings"')]
    assert "<script>alert" not in section and "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "&lt;b&gt;upbeat&lt;/b&gt;" in section and "fake/keywords" in section
    assert 'href="#h-h1"' in section and "+0.31" in section and "So <mark>excited</mark>!" in section
    assert re.search(r"\.themes \.summary \{[^}]*overflow-wrap: anywhere", html)


def test_a_run_without_themes_has_no_themes_section(run_dir):  # noqa: F811
    assert 'id="themes"' not in render_report(run_dir).read_text(encoding="utf-8")


def test_the_terminal_lists_the_themes_and_strips_control_sequences_from_the_summary(run_dir):  # noqa: F811
    _write_themes(run_dir, Summary("tuned is \x1b[31mred\x1b[0m and upbeat.", "llm", "fake/keywords"))
    table = findings_table(run_dir)
    assert "themes (1): " in table and "+0.31  Uses more exclamation marks and upbeat phrasing" in table
    assert "summary by fake/keywords: tuned is red and upbeat." in table and "\x1b" not in table


# --- the pipeline -----------------------------------------------------------------------------------------


def _summariser(received):
    prompt = received.body["messages"][-1]["content"]
    assert prompt.startswith("You are writing the summary of an audit")
    return ("json", 200, openai_reply(LLM_TEXT, prompt_tokens=300, completion_tokens=60))


@pytest.fixture
def summariser(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    with ScriptedServer("openai", [], responder=_summariser) as running:
        yield running


def test_a_run_writes_themes_and_its_summariser_summary_through_the_llm_client(tmp_path, summariser, monkeypatch):
    from test_stage_contract import undeclared_reads

    model = f"openai-compatible/summary-model@{summariser.url}/v1"
    config = load_config(fake_config(tmp_path, per_group=12, generate__b=STRONG), [f"llm.summariser.model={model}"])
    run = RunDir(tmp_path / "run")
    assert undeclared_reads(monkeypatch, config, run) == {}  # runs the pipeline, recording each stage's reads
    themes = json.loads(run.stage_file("report", THEMES).read_text())
    validated = [row["id"] for row in read_jsonl(run.findings_path("main")) if row["validated"]]
    assert validated and sorted(m["id"] for t in themes["themes"] for m in t["members"]) == sorted(validated)
    assert themes["summary"] == {"text": LLM_TEXT, "source": "llm", "model": model, "note": None}
    assert len(summariser.requests) == 1 and run.load_manifest().llm_usage["by_stage"]["report"]["summariser"]
    html = run.report_path.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert pipeline.plan(config, run, tmp_path / "cache").reason["report"] is None
    other = load_config(fake_config(tmp_path, per_group=12, generate__b=STRONG), [])
    assert "llm.summariser" in pipeline.plan(other, run, tmp_path / "cache").reason["report"]


def test_an_unusable_summary_falls_back_to_the_extractive_one_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    empty = ("json", 200, openai_reply("   ", completion_tokens=1))
    with ScriptedServer("openai", [], responder=lambda received: empty) as server:
        model = f"openai-compatible/summary-model@{server.url}/v1"
        config = load_config(fake_config(tmp_path, per_group=12, generate__b=STRONG), [f"llm.summariser.model={model}"])
        pipeline.run(config, RunDir(tmp_path / "run"))
    summary = json.loads(RunDir(tmp_path / "run").stage_file("report", THEMES).read_text())["summary"]
    assert summary["source"] == "extractive" and summary["text"].startswith("b differs from a in ")
    assert "unparseable" in summary["note"]


def test_sequential_themes_read_back_the_answers_the_rounds_stored_without_generating(tmp_path):
    config = load_config(fake_config(tmp_path, per_group=12, generate__b=STRONG), ["validate.mode=sequential"])
    run = RunDir(tmp_path / "run")
    pipeline.run(config, run)
    answered = run.stage_record("validate").counts["sequential"]["prompts_answered"]
    pair = validate.load_answers(StageContext(run, "report", tmp_path / "cache"), config.resolved())
    rows = pair.rows("validation")
    assert len({pair.samples[i].prompt_id for i in rows}) == answered > 0
    assert pair.vectors.shape[0] == len(pair.samples)
    assert run.stage_file("report", THEMES).exists()


def test_fake_keywords_summarises_by_naming_the_themes_in_order():
    import asyncio

    from lmdelta.llm.providers.fake import KeywordChat

    themes = ["tuned mentions the ocean (largest effect +0.42; 2 finding(s))\n   Also: x", "base is longer (1 finding)"]
    reply = asyncio.run(KeywordChat().complete(prompts.summary_request("base", "tuned", themes)))
    expected = (
        "tuned differs from base in 2 ways. Most clearly: tuned mentions the ocean. Also: base is longer (1 finding)."
    )
    assert reply.text == expected
