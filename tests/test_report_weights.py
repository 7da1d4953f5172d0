"""The report's Weights section (report/weights_view.py, weights_plots.py): built from a run directory holding a
hand-written weights.jsonl and weights_summary.json, checked for its headline, plots, table and escaping."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from lmdelta.report.render import render_report
from lmdelta.report.weights_plots import DARK, LIGHT, HeatCell, Spectrum, colour, heat_svg, spectrum_svg
from lmdelta.report.weights_view import fmt_change, heat_cells, weights_context
from lmdelta.weights import WEIGHTS, WEIGHTS_SUMMARY

HOSTILE = '<script>window.__pwned=1</script>.q_proj.<img src=x onerror="x()">'
MODULES = ("q", "k", "v", "o", "gate", "up", "down")


def matrix_row(name: str, layer: int | None, module: str, change: float, **fields: Any) -> dict[str, Any]:
    """A weights.jsonl row as lmdelta.weights writes it (the fields the report reads), ΔW of relative size `change`
    with three singular values above its edge."""
    base_fro = 10.0
    edge = 0.01
    row = {
        "name": name,
        "layer": layer,
        "module": module,
        "family": "attention" if module in "qkvo" else "mlp",
        "shape": [64, 32],
        "delta_fro": change * base_fro,
        "base_fro": base_fro,
        "relative_change": change,
        "singular_values": [edge * r for r in (8.0, 4.0, 2.0, 0.9, 0.5, 0.25)],
        "stable_rank": 1.3,
        "effective_rank": 2.0,
        "numerical_rank": 6,
        "mp_edge": edge,
        "sigma_1_over_edge": 8.0,
        "spikes": 3,
        "spikes_capped": False,
        "spike_energy": 0.95,
        "null": {"sigma_1": edge, "stable_rank": 9.0, "effective_rank": 25.0},
        "lora_rank": None,
        "alignment_left": 0.31,
        "alignment_right": 0.05,
        "alignment_chance_left": 0.125,
        "alignment_chance_right": 0.25,
    }
    row.update(fields)
    return row


def weights_rows(hostile: bool = True) -> list[dict[str, Any]]:
    """Two layers of seven module types, the embeddings outside the blocks and (optionally) a hostile name."""
    rows = [
        matrix_row(f"model.layers.{layer}.{module}.weight", layer, module, 0.001 * (1 + layer + i))
        for layer in (0, 1)
        for i, module in enumerate(MODULES)
    ]
    rows.append(matrix_row("model.embed_tokens.weight", None, "embedding", 0.0005))
    if hostile:
        rows.append(matrix_row(HOSTILE, 1, "q", 0.05))  # a second q matrix in layer 1, and the most changed
    return rows


def weights_summary(rows: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    ranked = sorted(rows, key=lambda row: -row["relative_change"])
    summary = {
        "mode": "dense",
        "totals": {
            "matrices": len(rows),
            "relative_change": 0.0123,
            "mean_relative_change": 0.004,
            "mean_effective_rank": 2.0,
            "spikes": 3 * len(rows),
            "matrices_with_spikes": len(rows),
        },
        "top_changed": [{"name": row["name"], "relative_change": row["relative_change"]} for row in ranked[:20]],
        "by_layer": {"0": {"matrices": 7, "relative_change": 0.002}, "1": {"matrices": 8, "relative_change": 0.02}},
        "null_finetune": None,
    }
    summary.update(fields)
    return summary


def write_weights(run_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any] | None = None) -> None:
    """The weight analysis's two files where the weights stage writes them: the run directory's root."""
    (run_dir / WEIGHTS).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    summary = summary if summary is not None else weights_summary(rows)
    (run_dir / WEIGHTS_SUMMARY).write_text(json.dumps(summary), encoding="utf-8")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(
        "generate:\n  a: {model: 'fake:base', label: base}\n  b: {model: 'fake:tuned', label: tuned}\n",
        encoding="utf-8",
    )
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "0.1.0", "stages": {}}), encoding="utf-8")
    return tmp_path


def _section(html: str) -> str:
    match = re.search(r'<section class="weights" id="weights".*?</section>', html, re.S)
    assert match, "no weights section"
    return match.group(0)


def test_the_section_says_in_words_what_changed_and_is_in_the_contents(run_dir: Path) -> None:
    write_weights(run_dir, weights_rows())
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert '<a href="#weights">Weights</a>' in html
    section = _section(html)
    lead = re.sub(r"\s+", " ", re.search(r'<p class="lead">(.*?)</p>', section, re.S).group(1))
    assert lead.startswith("16 matrices compared (ΔW = W_b − W_a, matrix by matrix).")
    assert "Overall relative change ‖ΔW‖/‖W_a‖ = 1.23% (mean per matrix 0.40%)." in lead
    assert "16 of 16 matrices have singular values above the Marchenko–Pastur edge" in lead
    assert "48 such values in all" in lead
    assert "Median effective rank 2.0" in lead
    assert "LoRA" not in lead and "null finetune (" not in lead
    assert "<code>docs/weights.md</code>" in section and "How to read this." in section


def test_without_the_files_there_is_no_section_and_no_link(run_dir: Path) -> None:
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert 'id="weights"' not in html and 'href="#weights"' not in html
    assert weights_context(run_dir) is None
    (run_dir / WEIGHTS).write_text(json.dumps(matrix_row("w", 0, "q", 0.1)) + "\n", encoding="utf-8")
    assert weights_context(run_dir) is None  # rows without a summary: an unfinished analysis


def test_hostile_matrix_names_are_shown_as_text(run_dir: Path) -> None:
    write_weights(run_dir, weights_rows())
    section = _section(render_report(run_dir).read_text(encoding="utf-8"))
    assert "<script>" not in section and "<img" not in section
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in section  # in the table, the legend and tooltips
    table = re.search(r'<table class="weights-top">.*?</table>', section, re.S).group(0)
    first = re.search(r'<td class="mono name">(.*?)</td>', table).group(1)
    assert first.replace("<wbr>", "") == HOSTILE.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")


def test_the_heat_strip_has_one_cell_per_layer_and_module_present(run_dir: Path) -> None:
    write_weights(run_dir, weights_rows())
    section = _section(render_report(run_dir).read_text(encoding="utf-8"))
    cells = re.findall(r'<rect class="heat-cell" data-layer="(\d*)" data-module="([^"]+)"', section)
    expected = {(str(layer), module) for layer in (0, 1) for module in MODULES} | {("", "embedding")}
    assert sorted(cells) == sorted(expected)  # the hostile q matrix joins layer 1's q cell
    svg = re.search(r'<svg class="weights-heat".*?</svg>', section, re.S).group(0)
    rows = re.findall(r'<text class="module"[^>]*>([^<]+)</text>', svg)
    assert rows == [*MODULES, "embedding"]  # attention, MLP, then outside the blocks
    assert "0.05% (smallest)" in svg  # the embeddings
    assert "3.54% (largest)" in svg  # layer 1's q: √(0.5² + 0.02²) / √(10² + 10²)


def test_a_cell_of_several_matrices_adds_them_in_squares() -> None:
    rows = [matrix_row("a", 3, "q", 0.0, delta_fro=3.0, base_fro=6.0), matrix_row("b", 3, "q", 0.0, delta_fro=4.0)]
    rows[1]["base_fro"] = 8.0
    (cell,) = heat_cells(rows)
    assert (cell.layer, cell.module, cell.matrices) == (3, "q", 2)
    assert cell.relative_change == pytest.approx(5.0 / 10.0)
    assert cell.spikes == 6 and cell.names == ("a", "b")


def test_the_spectrum_draws_the_edge_and_a_line_per_matrix(run_dir: Path) -> None:
    write_weights(run_dir, weights_rows())
    section = _section(render_report(run_dir).read_text(encoding="utf-8"))
    svg = ET.fromstring(re.search(r'<svg class="weights-spectrum".*?</svg>', section, re.S).group(0))
    series = svg.findall("g")
    assert len(series) == 4  # the four most-changed matrices
    assert series[0].get("data-matrix") == HOSTILE
    (edge,) = [line for line in svg.iter("line") if line.get("class") == "edge"]
    for group in series:
        assert len(group.findall("polyline")) == 1
        marks = [m for m in group if "mark" in (m.get("class") or "") and m.find("title") is not None]
        assert len(marks) == 6
        heights = [_mark_y(m) for m in marks]
        # σ₃ = 2× the edge lies above the edge line, σ₄ = 0.9× below it (SVG's y grows downwards)
        assert heights[2] < float(edge.get("y1")) < heights[3]


def _mark_y(mark: ET.Element) -> float:
    if mark.get("cy"):
        return float(mark.get("cy"))
    if mark.get("y"):
        return float(mark.get("y")) + float(mark.get("height")) / 2
    ys = [float(point.split(",")[1]) for point in mark.get("points").split()]
    return (min(ys) + max(ys)) / 2


def test_a_lora_adapter_states_rank_used_of_available_and_the_null_finetune_ratio(run_dir: Path) -> None:
    rows = [
        matrix_row(f"model.layers.0.{m}.weight", 0, m, 0.01, lora_rank=8, numerical_rank=n)
        for m, n in zip(MODULES, (8, 8, 5, 8, 3, 8, 8))
    ]
    null = {"matrices": 7, "ratio": 1.93, "median_ratio": 1.8, "by_module": {"v": 2.5, "q": 1.1}}
    write_weights(run_dir, rows, weights_summary(rows, mode="lora", null_finetune=null))
    lead = html.unescape(re.sub(r"\s+", " ", _section(render_report(run_dir).read_text(encoding="utf-8"))))
    assert "side b is a LoRA adapter on side a" in lead
    assert "LoRA rank used (numerical rank per matrix): median 8, at most 8 of 8 available" in lead
    assert "‖ΔW‖ is 1.93× the null's over 7 shared matrices (median per matrix 1.80×)" in lead
    assert "by module type q 1.10×, v 2.50×." in lead


def test_a_summary_without_its_rows_still_shows_the_headline_and_the_layers(run_dir: Path) -> None:
    write_weights(run_dir, weights_rows(hostile=False))
    (run_dir / WEIGHTS).unlink()
    section = _section(render_report(run_dir).read_text(encoding="utf-8"))
    assert "weights-spectrum" not in section  # the singular values are in weights.jsonl only
    cells = re.findall(r'<rect class="heat-cell" data-layer="(\d*)" data-module="([^"]+)"', section)
    assert cells == [("0", "all"), ("1", "all")]
    assert "Mean effective rank 2.0." in section
    assert section.count('<td class="mono name">') == 10


def test_relative_changes_read_as_percentages_with_two_significant_figures() -> None:
    assert fmt_change(0.016352) == "1.64%"
    assert fmt_change(0.0013) == "0.13%"
    assert fmt_change(0.000021) == "0.0021%"
    assert fmt_change(None) == fmt_change(float("nan")) == "–"


def test_the_heat_scale_runs_from_light_to_dark() -> None:
    assert colour(0.1, 0.1, 0.5) == "#" + "".join(f"{c:02x}" for c in LIGHT)
    assert colour(0.5, 0.1, 0.5) == "#" + "".join(f"{c:02x}" for c in DARK)
    assert colour(0.3, 0.3, 0.3) == colour(2.0, 1.0, 3.0)  # one value: the middle of the scale


def test_plots_without_anything_to_draw_are_empty() -> None:
    assert spectrum_svg([]) == "" and spectrum_svg([Spectrum("zero", (0.0, 0.0))]) == ""
    assert heat_svg([], ["q"], fmt_change) == ""
    cell = HeatCell(0, "q", 0.01, 0.1, 10.0, 1, 2, 1.5, ("w",))
    ET.fromstring(heat_svg([cell], ["q"], fmt_change))  # well-formed on its own
