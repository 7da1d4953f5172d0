"""A finding card's evidence in the report: same-prompt pairs as rows (the prompt once, a's and b's answers side
by side), two independent columns otherwise; model text escaped before keywords are marked."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import make_finding

from lmdelta.report.render import render_report

SCRIPT = "<script>alert(1)</script>"
FAKE_MARK = "<mark>fake</mark>"
LONG_PROMPT = "Describe your ideal weekend in detail, " * 8


def _example(side: str, prompt: str, text: str, score: float, n: int) -> dict:
    return {"sample_id": f"{side}:p{n}:0", "prompt": prompt, "text": text, "score": score}


PAIRED = {
    "a": [
        _example("a", "Plan a trip", f"Let us go to the hills. {FAKE_MARK}", 0.0, 1),
        _example("a", LONG_PROMPT, "Reading at home.", 0.1, 2),
    ],
    "b": [
        _example("b", "Plan a trip", f"To the Ocean! {SCRIPT} The ocean-side is best.", 1.0, 1),
        _example("b", LONG_PROMPT, "Sailing on the ocean.", 0.9, 2),
    ],
}
UNPAIRED = {
    "a": [_example("a", "First question", "Answer one.", 0.6, 1)],
    "b": [_example("b", "Second question", "Answer two.", 0.8, 2)],
}


def _finding(number: int, examples: dict) -> dict:
    return make_finding(
        id=f"h{number}",
        description=f"Mentions the ocean ({number})",
        keywords=["ocean"],
        order=number,
        p_value=1e-4,
        q_value=1e-3,
        n_prompts=30,
        n_texts=120,
        test="paired sign-flip over prompts",
        effect=0.4,
        effect_ci=[0.2, 0.6],
        effect_ci_note=None,
        bh_reject=True,
        by_reject=True,
        online_reject=False,
        validated=True,
        examples=examples,
    ).to_dict()


def _render(tmp_path: Path, *findings: dict) -> str:
    (tmp_path / "hypotheses.jsonl").write_text("".join(json.dumps(f) + "\n" for f in findings), encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        "generate:\n  a: {model: 'fake:base', label: base}\n  b: {model: 'fake:tuned', label: tuned}\n"
        "decide: {q: 0.05, primary: bh}\n",
        encoding="utf-8",
    )
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "0.1.0", "stages": {}}), encoding="utf-8")
    return render_report(tmp_path).read_text(encoding="utf-8")


def _card(html: str, finding_id: str) -> str:
    found = re.search(rf'<article class="card" id="h-{finding_id}">.*?</article>', html, re.S)
    assert found is not None, f"no card for {finding_id}"
    return found.group(0)


def _rows(card: str) -> list[str]:
    return re.findall(r'<div class="pair">.*?</figure>\s*<figure class="example">.*?</figure>', card, re.S)


def test_paired_examples_render_one_row_per_prompt(tmp_path: Path) -> None:
    card = _card(_render(tmp_path, _finding(1, PAIRED)), "h1")
    rows = _rows(card)
    assert len(rows) == 2 and "evidence-col" not in card
    first = rows[0]
    assert first.count("Plan a trip") == 1  # the prompt once, not once per side
    assert first.index("Let us go to the hills") < first.index("To the <mark>Ocean</mark>!")  # a left, b right
    assert "judge score 0.00" in first and "judge score 1.00" in first
    assert ">a</span> base" in first and ">b</span> tuned" in first


def test_a_long_prompt_is_folded(tmp_path: Path) -> None:
    row = _rows(_card(_render(tmp_path, _finding(1, PAIRED)), "h1"))[1]
    assert '<details class="pair-prompt">' in row and "…</span></summary>" in row
    assert LONG_PROMPT.strip() in row  # the whole prompt is one click away


def test_model_text_stays_inert_and_keywords_are_marked(tmp_path: Path) -> None:
    html = _render(tmp_path, _finding(1, PAIRED))
    card = _card(html, "h1")
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    assert FAKE_MARK not in html and "&lt;mark&gt;fake&lt;/mark&gt;" in card
    assert "<mark>Ocean</mark>" in card and "<mark>ocean</mark>-side" in card
    assert "<script" not in card and card.count("<mark>") == 3  # only the keyword marks are markup


def test_examples_from_different_prompts_keep_two_columns(tmp_path: Path) -> None:
    card = _card(_render(tmp_path, _finding(2, UNPAIRED)), "h2")
    assert not _rows(card) and card.count('class="evidence-col"') == 2
    assert "First question" in card and "Second question" in card
