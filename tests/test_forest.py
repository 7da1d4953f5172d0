"""The report's overview forest plot: one linked mark per validated finding, on the side its effect favours, every
text escaped, and one line instead of an empty plot."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import make_finding, report_view

from lmdelta.report.forest import ForestRow, axis_limit, forest_rows, svg
from lmdelta.report.merge import merge_findings
from lmdelta.report.render import render_report
from lmdelta.report.svgplot import shorten

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def _row(finding: str, effect: float | None, interval: tuple[float, float] | None = None, **fields) -> ForestRow:
    return ForestRow(
        finding=finding,
        label=fields.pop("label", f"finding {finding}"),
        href=f"h-{finding}",
        effect=effect,
        interval=interval,
        level=0.95,
        **fields,
    )


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed: every text and attribute from the run is escaped


def _marks(plot: ET.Element) -> list[ET.Element]:
    return [a for a in plot.iter("a") if "forest-mark" in a.get("class", "").split()]


def _x(mark: ET.Element) -> float:
    return float(next(mark.iter("circle")).get("cx"))


def _zero(plot: ET.Element) -> float:
    return float(next(line for line in plot.iter("line") if line.get("class") == "zero").get("x1"))


def test_one_linked_mark_per_finding() -> None:
    rows = [_row("h1", 0.3, (0.1, 0.5)), _row("h2", -0.2, (-0.4, 0.0)), _row("h3", 0.05)]
    marks = _marks(_parse(svg(rows, "base", "tuned")))
    assert [m.get("data-finding") for m in marks] == ["h1", "h2", "h3"]
    assert [m.get("href") for m in marks] == ["#h-h1", "#h-h2", "#h-h3"]
    assert [m.find("text[@class='value']").text for m in marks] == [
        "+0.30 [0.10, 0.50]",
        "-0.20 [-0.40, 0.00]",
        "+0.05",
    ]


def test_b_over_a_is_right_of_zero_and_a_over_b_left_with_the_sides_named_at_the_ends() -> None:
    plot = _parse(svg([_row("up", 0.3, (0.1, 0.5)), _row("down", -0.2, (-0.3, -0.1))], "base", "tuned"))
    up, down = _marks(plot)
    assert _x(up) > _zero(plot) > _x(down)
    assert "to-b" in up.get("class") and "to-a" in down.get("class")
    sides = [t for t in plot.iter("text") if t.get("class") == "side"]
    assert [t.text for t in sides] == ["← more in a (base)", "more in b (tuned) →"]
    assert float(sides[0].get("x")) < _zero(plot) < float(sides[1].get("x"))


def test_every_text_is_escaped_and_a_long_label_is_shortened_with_the_full_text_in_its_tooltip() -> None:
    label = HOSTILE + " " + "word " * 30
    markup = svg([_row('h"1', 0.2, (0.1, 0.3), label=label)], HOSTILE, "b<b>")
    assert "<script" not in markup and "<img" not in markup and "<b>" not in markup
    (mark,) = _marks(_parse(markup))
    assert mark.get("data-finding") == 'h"1'
    shown = mark.find("text[@class='label']").text
    assert shown.endswith("…") and len(shown) <= 48 and shown.startswith("<script>")
    assert " ".join(label.split()) in mark.find("title").text


def test_the_adjusted_interval_leads_with_the_plain_one_inside() -> None:
    row = _row("h1", 0.3, (0.05, 0.55), inner=(0.15, 0.45), inner_level=0.95)
    (mark,) = _marks(_parse(svg([row], "a", "b")))
    lines = {line.get("class"): float(line.get("x2")) - float(line.get("x1")) for line in mark.iter("line")}
    assert lines["ci"] > lines["ci inner"] > 0
    assert "(adjusted for selection); plain 95% CI [0.15, 0.45]" in mark.find("title").text


def test_nothing_to_plot_is_no_plot() -> None:
    assert svg([], "a", "b") == ""


def test_the_axis_holds_every_interval_with_round_ticks() -> None:
    assert axis_limit([_row("h1", 0.31, (0.2, 0.43))]) == 0.6
    assert axis_limit([_row("h1", -0.05, (-0.09, -0.01))]) == 0.1
    assert axis_limit([_row("h1", 0.9, (0.7, 1.3))]) == 2.0
    ticks = [
        t.text for t in _parse(svg([_row("h1", 0.31, (0.2, 0.43))], "a", "b")).iter("text") if t.get("class") == "tick"
    ]
    assert ticks == ["-0.6", "-0.3", "0", "+0.3", "+0.6"]


def test_shorten_cuts_at_a_word_when_it_can() -> None:
    assert shorten("short  and\nflat", 40) == "short and flat"
    assert shorten("one two three four five six", 16) == "one two three…"
    assert shorten("x" * 30, 10) == "x" * 9 + "…"


def test_a_claim_validated_in_several_scopes_gives_a_row_per_scope_linking_to_its_one_card() -> None:
    rows = [
        report_view(1, "finance", 1e-4, effect_ci_fcr=(0.0, 0.4), fcr_level=0.99),
        report_view(2, "medicine", 1e-3),
        report_view(3, "reddit", 0.3, validated=False),
    ]
    found = forest_rows(merge_findings(rows))
    assert [(r.finding, r.label, r.href) for r in found] == [
        ("h1", "says “important” more · finance", "h-h1"),
        ("h2", "says “important” more · medicine", "h-h1"),
    ]
    assert (found[0].interval, found[0].level, found[0].inner) == ((0.0, 0.4), 0.99, (0.1, 0.3))
    assert (found[1].interval, found[1].level, found[1].inner) == ((0.1, 0.3), 0.95, None)


def _run(tmp_path: Path, *validated: bool) -> str:
    rows = [
        make_finding(
            id=f"h{i}", order=i, description=f"finding {i}", validated=v, p_value=0.001 if v else 0.5, effect=0.2
        ).to_dict()
        | {"effect_ci": [0.1, 0.3]}
        for i, v in enumerate(validated, start=1)
    ]
    (tmp_path / "hypotheses.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return render_report(tmp_path).read_text(encoding="utf-8")


def test_the_report_opens_with_the_plot_after_the_headline(tmp_path: Path) -> None:
    html = _run(tmp_path, True, False, True)
    assert html.count('class="forest-mark') == 2
    assert html.index('class="headline"') < html.index('id="overview"') < html.index('id="findings"')


def test_a_run_with_nothing_validated_says_so_in_one_line(tmp_path: Path) -> None:
    html = _run(tmp_path, False, False)
    assert "forest-plot" not in re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    assert "No finding was validated, so there is nothing to plot." in html
