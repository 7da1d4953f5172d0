"""The report's overview dot plot of prevalences a → b: one linked mark per validated finding with prevalences, in the
forest plot's order and with its labels, every text escaped, the findings left out counted, and no plot at all when
no finding has prevalences."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import make_finding, report_view

from lmdelta.report import svgplot
from lmdelta.report.forest import forest_rows
from lmdelta.report.merge import merge_findings
from lmdelta.report.prevalence import PrevalenceRow, axis_limit, prevalence_rows, svg
from lmdelta.report.render import render_report

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def _row(finding: str, a: float | None, b: float | None, **fields) -> PrevalenceRow:
    return PrevalenceRow(
        finding=finding, label=fields.pop("label", f"finding {finding}"), href=f"h-{finding}", a=a, b=b, **fields
    )


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed: every text and attribute from the run is escaped


def _marks(plot: ET.Element) -> list[ET.Element]:
    return [a for a in plot.iter("a") if "prevalence-mark" in a.get("class", "").split()]


def _dot(mark: ET.Element, side: str) -> float:
    return float(next(c for c in mark.iter("circle") if c.get("class") == f"dot-{side}").get("cx"))


def _texts(plot: ET.Element, css: str) -> list[str]:
    return [t.text or "" for t in plot.iter("text") if t.get("class") == css]


def test_one_linked_mark_per_finding_with_prevalences() -> None:
    rows = [_row("h1", 0.12, 0.41), _row("h2", None, None), _row("h3", 0.5, 0.2)]
    marks = _marks(_parse(svg(rows, "base", "tuned")))
    assert [m.get("data-finding") for m in marks] == ["h1", "h3"]
    assert [m.get("href") for m in marks] == ["#h-h1", "#h-h3"]
    assert [m.find("text[@class='value']").text for m in marks] == ["12% → 41% (+29 pts)", "50% → 20% (−30 pts)"]


def test_dots_sit_at_their_share_of_the_axis_and_the_arrow_points_from_a_to_b() -> None:
    plot = _parse(svg([_row("up", 0.25, 0.75), _row("down", 1.0, 0.0)], "base", "tuned"))
    up, down = _marks(plot)
    left, right = svgplot.PLOT
    assert (_dot(down, "b"), _dot(up, "a"), _dot(up, "b"), _dot(down, "a")) == pytest.approx(
        (left, left + (right - left) / 4, left + (right - left) * 3 / 4, right)
    )
    for mark, way in ((up, 1), (down, -1)):
        tip = float(next(mark.iter("polygon")).get("points").split()[0].split(",")[0])
        assert tip == pytest.approx(_dot(mark, "b") - way * 5)  # touching b's dot, on a's side of it
    assert _texts(plot, "tick") == ["0%", "20%", "40%", "60%", "80%", "100%"]
    grid = sorted(float(line.get("x1")) for line in plot.iter("line") if line.get("class") == "grid")
    assert grid == pytest.approx([left + (right - left) * i / 5 for i in range(6)])


def test_small_prevalences_zoom_the_axis_to_a_round_end() -> None:
    assert axis_limit([_row("h1", 0.01, 0.08)]) == 0.1
    assert axis_limit([_row("h1", 0.02, 0.22)]) == 0.25
    assert axis_limit([_row("h1", 0.3, 0.5)]) == 0.5
    assert axis_limit([_row("h1", 0.3, 0.51)]) == 1.0
    plot = _parse(svg([_row("h1", 0.02, 0.08)], "a", "b"))
    assert _texts(plot, "tick") == ["0%", "2%", "4%", "6%", "8%", "10%"]
    (mark,) = _marks(plot)
    left, right = svgplot.PLOT
    assert _dot(mark, "b") == pytest.approx(left + (right - left) * 0.8)


def test_dots_too_close_for_an_arrowhead_get_none() -> None:
    (mark,) = _marks(_parse(svg([_row("h1", 0.30, 0.31)], "a", "b")))
    assert list(mark.iter("polygon")) == []
    assert mark.find("text[@class='value']").text == "30% → 31% (+1 pts)"


def test_the_sides_are_named_under_the_axis_by_their_dots() -> None:
    plot = _parse(svg([_row("h1", 0.1, 0.4)], "base", "tuned"))
    assert _texts(plot, "side") == ["a (base)", "b (tuned)"]
    legend = [c for c in plot.iter("circle") if c not in set(_marks(plot)[0].iter("circle"))]
    assert [c.get("class") for c in legend] == ["dot-a", "dot-b"]


def test_every_text_is_escaped_and_a_long_label_is_shortened_with_the_full_text_in_its_tooltip() -> None:
    label = HOSTILE + " " + "word " * 30
    row = _row('h"1', 0.1, 0.3, label=label, a_interval=(0.05, 0.15), b_interval=(0.2, 0.4), level=0.95)
    markup = svg([row], HOSTILE, "b<b>")
    assert "<script" not in markup and "<img" not in markup and "<b>" not in markup
    plot = _parse(markup)
    (mark,) = _marks(plot)
    assert mark.get("data-finding") == 'h"1'
    shown = mark.find("text[@class='label']").text
    assert shown.endswith("…") and len(shown) <= 48 and shown.startswith("<script>")
    tooltip = mark.find("title").text
    assert " ".join(label.split()) in tooltip
    assert "a 10% → b 30%; 95% CIs 5%–15% → 20%–40%" in tooltip
    assert _texts(plot, "side")[0].startswith("a (<script>")


def test_the_findings_left_out_are_counted_with_the_reason() -> None:
    plot = _parse(svg([_row("h1", 0.1, 0.4), _row("h2", None, None), _row("h3", 0.2, None)], "a", "b"))
    (note,) = _texts(plot, "note")
    assert note == (
        "2 validated findings not shown: their judges give scores, not a yes/no presence, so they have no prevalence."
    )
    assert "2 validated findings not shown" in plot.get("aria-label")
    assert _texts(_parse(svg([_row("h1", 0.1, 0.4)], "a", "b")), "note") == []


def test_no_finding_with_prevalences_is_no_plot() -> None:
    assert svg([], "a", "b") == ""
    assert svg([_row("h1", None, None), _row("h2", 0.3, None)], "a", "b") == ""


def prevalence_view(number: int, group: str, p: float, **fields) -> dict:
    return report_view(number, group, p, **{"prevalence_a": 0.1, "prevalence_b": 0.3, **fields})


def test_rows_follow_the_forest_plot_in_order_labels_and_links() -> None:
    rows = [
        prevalence_view(1, "finance", 1e-4),
        prevalence_view(2, "medicine", 1e-3, prevalence_a=None, prevalence_b=None),
        prevalence_view(3, "reddit", 0.3, validated=False),
        {**prevalence_view(4, "all", 1e-5, keywords=["other"], description="says “other” more"), "judge": "length"},
    ]
    merged = merge_findings(rows)
    found = prevalence_rows(merged)
    assert [(r.finding, r.label, r.href) for r in found] == [(r.finding, r.label, r.href) for r in forest_rows(merged)]
    assert [r.finding for r in found] == ["h4", "h1", "h2"]
    assert [(r.a, r.b) for r in found] == [(0.1, 0.3), (0.1, 0.3), (None, None)]
    marks = _marks(_parse(svg(found, "a", "b")))
    assert [m.get("data-finding") for m in marks] == ["h4", "h1"]


def _run(tmp_path: Path, *prevalences: tuple[float, float] | None) -> str:
    rows = [
        make_finding(
            id=f"h{i}",
            order=i,
            description=f"finding {i}",
            validated=True,
            p_value=0.001 * i,
            effect=0.2,
            prevalence_a=shares[0] if shares else None,
            prevalence_b=shares[1] if shares else None,
        ).to_dict()
        | {"effect_ci": [0.1, 0.3]}
        for i, shares in enumerate(prevalences, start=1)
    ]
    (tmp_path / "hypotheses.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return render_report(tmp_path).read_text(encoding="utf-8")


def test_the_report_shows_the_dot_plot_right_after_the_forest_plot(tmp_path: Path) -> None:
    html = _run(tmp_path, (0.1, 0.4), None, (0.5, 0.2))
    assert html.count('class="prevalence-mark') == 2
    assert html.index('class="forest-plot"') < html.index('class="prevalence-plot"') < html.index('id="findings"')
    assert "1 validated finding not shown: its judge gives a score, not a yes/no presence" in html


def test_a_report_without_prevalences_has_no_dot_plot(tmp_path: Path) -> None:
    html = _run(tmp_path, None, None)
    body = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    assert "forest-plot" in body and "prevalence-plot" not in body and 'id="prevalence"' not in body
