"""The HTML report in a real browser (Debian's chromium driven by Playwright): it runs without errors, fetches
nothing, filters and sorts, draws one forest-plot mark per validated finding, shows hostile text as text and fits
the page at 1280 px. Full-page screenshots go to the test's folder and, when LMDELTA_ARTIFACTS is set, there too."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import make_finding

from lmdelta.report.render import render_report

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -c requirements.lock -e '.[dev]'"
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no browser at {CHROMIUM}: `make test` installs it (apt-get install chromium)"
)

WIDE, NARROW = 1280, 420
HOSTILE = '<script>window.__pwned=1</script> and <img src=x onerror="window.__pwned=2">'
LONG = (
    "Answers questions about cooking with long step-by-step recipes that list every ingredient twice, "
    "then suggest a wine pairing nobody asked for"
)


def _finding(number: int, description: str, p: float, effect: float, **fields) -> dict:
    validated = p < 0.01
    ci = [round(effect - 0.12, 2), round(effect + 0.12, 2)]
    return make_finding(
        id=f"h{number}",
        group="tone",
        direction="b>a" if effect > 0 else "a>b",
        description=description,
        proposer="llm",
        judge="llm",
        order=number,
        p_value=p,
        q_value=min(1.0, p * 5),
        n_prompts=40,
        n_texts=160,
        test="paired sign-flip over prompts",
        assumption="prompts exchangeable",
        effect=effect,
        effect_ci=ci,
        effect_ci_note=None,
        auc=0.5 + effect / 2,
        auc_ci=[0.5, 0.9],
        auc_ci_note=None,
        bh_reject=validated,
        by_reject=validated,
        online_reject=False,
        validated=validated,
        **fields,
    ).to_dict()


def _rows() -> list[dict]:
    hostile_examples = {
        "a": [{"sample_id": "a-1", "prompt": HOSTILE, "text": "Plain answer.", "score": 0.1}],
        "b": [{"sample_id": "b-1", "prompt": "Say hi", "text": f"Hi! {HOSTILE}", "score": 0.9}],
    }
    return [
        _finding(1, "Uses more exclamation marks", 1e-5, 0.42, effect_ci_fcr=[0.2, 0.64], fcr_level=0.99),
        _finding(2, f"Quotes markup {HOSTILE}", 2e-4, 0.25, examples=hostile_examples),
        _finding(3, "Refuses medical questions more often", 8e-4, -0.31),
        _finding(4, LONG, 3e-3, 0.12),
        _finding(5, "Gives shorter answers", 0.2, 0.05),
        _finding(6, "Mentions the weather", 0.7, -0.02),
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("browser-run")
    rows = _rows()
    (run_dir / "hypotheses.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (run_dir / "config.yaml").write_text(
        "generate:\n  a: {model: 'fake:base', label: base}\n  b: {model: 'fake:tuned', label: tuned}\n"
        "decide: {q: 0.05, primary: bh}\n",
        encoding="utf-8",
    )
    (run_dir / "manifest.json").write_text(json.dumps({"version": "0.1.0", "stages": {}}), encoding="utf-8")
    return render_report(run_dir)


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Visit:
    """A page opened on the report, with what it logged and asked for."""

    page: sync_api.Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def _open(browser: sync_api.Browser, report: Path, width: int) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    visit = Visit(context.new_page())
    visit.page.on("console", lambda msg: visit.errors.append(msg.text) if msg.type == "error" else None)
    visit.page.on("pageerror", lambda err: visit.errors.append(str(err)))
    visit.page.on("request", lambda request: visit.requests.append(request.url))
    # Anything but the report itself is refused, so a stray fetch can neither leave the machine nor pass unseen.
    context.route("**/*", lambda route: route.continue_() if route.request.url == report.as_uri() else route.abort())
    visit.page.goto(report.as_uri())
    visit.page.wait_for_load_state("load")
    yield visit
    context.close()


@pytest.fixture
def wide(browser: sync_api.Browser, report: Path) -> Iterator[Visit]:
    yield from _open(browser, report, WIDE)


@pytest.fixture
def narrow(browser: sync_api.Browser, report: Path) -> Iterator[Visit]:
    yield from _open(browser, report, NARROW)


def _validated_ids() -> list[str]:
    return [row["id"] for row in _rows() if row["validated"]]


def _screenshot(page: sync_api.Page, folder: Path, name: str) -> Path:
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    artifacts = os.environ.get("LMDELTA_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)
    return path


def test_the_page_loads_without_errors_or_requests(wide: Visit, report: Path) -> None:
    assert wide.errors == []
    assert wide.requests == [report.as_uri()]


def test_the_forest_plot_has_one_mark_per_validated_finding_linking_to_its_card(wide: Visit) -> None:
    marks = wide.page.locator("svg.forest-plot .forest-mark")
    assert marks.count() == len(_validated_ids())
    assert [marks.nth(i).get_attribute("data-finding") for i in range(marks.count())] == _validated_ids()
    for i in range(marks.count()):
        anchor = marks.nth(i).get_attribute("href")
        assert anchor and wide.page.locator(f"article.card{anchor}").count() == 1
    marks.nth(2).click()  # the third validated finding, a > b
    assert wide.page.evaluate("location.hash") == "#h-h3"


def test_the_forest_plot_puts_a_left_and_b_right_of_zero(wide: Visit) -> None:
    def centre(selector: str) -> float:
        box = wide.page.locator(selector).bounding_box()
        assert box is not None
        return box["x"] + box["width"] / 2

    zero = centre("svg.forest-plot line.zero")
    assert centre('.forest-mark[data-finding="h1"] circle.point') > zero
    assert centre('.forest-mark[data-finding="h3"] circle.point') < zero
    sides = wide.page.locator("svg.forest-plot text.side").all_text_contents()
    assert sides == ["← more in a (base)", "more in b (tuned) →"]


def test_no_text_in_the_forest_plot_is_cut_off(wide: Visit) -> None:
    """Labels end before the plot (a long one shortened, in full in its tooltip); numbers and axis text fit."""
    overflow = wide.page.evaluate(
        """() => {
        const svg = document.querySelector("svg.forest-plot");
        const width = svg.viewBox.baseVal.width;
        const clip = svg.querySelector("clipPath rect").width.baseVal.value;
        return [...svg.querySelectorAll("text")].filter(t => {
            const box = t.getBBox();
            const end = t.classList.contains("label") ? clip : width;
            return box.x < 0 || box.x + box.width > end;
        }).map(t => t.textContent);
    }"""
    )
    assert overflow == []
    long_mark = wide.page.locator('.forest-mark[data-finding="h4"]')
    assert long_mark.locator("text.label").text_content().endswith("…")
    assert LONG in long_mark.locator("title").text_content()


def test_hostile_text_is_shown_as_text_and_never_runs(wide: Visit) -> None:
    assert wide.page.evaluate("typeof window.__pwned") == "undefined"
    assert wide.page.locator("main img, main script").count() == 0
    assert HOSTILE in wide.page.locator("#h-h2 h3").text_content()
    assert HOSTILE in wide.page.locator("#h-h2 .evidence").text_content()
    assert HOSTILE in wide.page.locator('.forest-mark[data-finding="h2"] title').text_content()


def _visible_ids(page: sync_api.Page) -> list[str]:
    return page.locator("#all-table tbody tr:visible td.id").all_text_contents()


def test_the_filter_narrows_the_table(wide: Visit) -> None:
    assert len(_visible_ids(wide.page)) == 6
    wide.page.fill("#filter", "exclamation")
    assert _visible_ids(wide.page) == ["h1"]
    wide.page.fill("#filter", "")
    wide.page.check("#only-validated")
    assert _visible_ids(wide.page) == _validated_ids()


def test_a_header_click_sorts_the_table_and_a_second_reverses_it(wide: Visit) -> None:
    assert _visible_ids(wide.page) == ["h1", "h2", "h3", "h4", "h5", "h6"]  # by p-value
    effect = wide.page.locator("#all-table thead th", has_text="effect")
    effect.locator("button.sort").click()
    assert effect.get_attribute("aria-sort") == "ascending"
    assert _visible_ids(wide.page) == ["h3", "h6", "h5", "h4", "h2", "h1"]
    effect.locator("button.sort").click()
    assert _visible_ids(wide.page) == ["h1", "h2", "h4", "h5", "h6", "h3"]
    wide.page.locator("#all-table thead th", has_text="description").locator("button.sort").click()
    assert _visible_ids(wide.page)[0] == "h4"  # "Answers questions about cooking…" first alphabetically


def test_the_page_fits_its_width_and_is_saved_as_screenshots(
    wide: Visit, narrow: Visit, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("screenshots")
    for visit, width in ((wide, WIDE), (narrow, NARROW)):
        assert visit.page.evaluate("document.documentElement.scrollWidth") <= width
        shot = _screenshot(visit.page, folder, f"report-{width}.png")
        assert shot.stat().st_size > 10_000
    assert narrow.errors == []
