"""The HTML report in a real browser (Debian's chromium driven by Playwright): it runs without errors, fetches
nothing, filters and sorts, draws one forest-plot mark per validated finding and one prevalence mark per validated
finding with prevalences, keeps its contents bar in view, shows hostile text as text and fits the page at 1280 and
390 px, weights section (the weight-difference analysis) included. Screenshots go to the test's folder and, when
LMDELTA_ARTIFACTS is set, there too."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import make_finding
from test_report_weights import weights_rows, write_weights

from lmdelta.report.render import render_report

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -c requirements.lock -e '.[dev]'"
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no browser at {CHROMIUM}: `make test` installs it (apt-get install chromium)"
)

WIDE, NARROW = 1280, 390
SECTIONS = ["summary", "overview", "findings", "all", "null", "weights", "run"]  # the contents bar's, in order
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


def _prevalences(a: float, b: float) -> dict:
    return {
        "prevalence_a": a,
        "prevalence_b": b,
        "prevalence_a_ci": [round(a * 0.7, 3), round(min(1.0, a * 1.3), 3)],
        "prevalence_b_ci": [round(b * 0.7, 3), round(min(1.0, b * 1.3), 3)],
    }


def _rows() -> list[dict]:
    hostile_examples = {
        "a": [{"sample_id": "a-1", "prompt": HOSTILE, "text": "Plain answer.", "score": 0.1}],
        "b": [{"sample_id": "b-1", "prompt": "Say hi", "text": f"Hi! {HOSTILE}", "score": 0.9}],
    }
    return [
        _finding(
            1,
            "Uses more exclamation marks",
            1e-5,
            0.42,
            effect_ci_fcr=[0.2, 0.64],
            fcr_level=0.99,
            **_prevalences(0.12, 0.55),
        ),
        _finding(2, f"Quotes markup {HOSTILE}", 2e-4, 0.25, examples=hostile_examples, **_prevalences(0.3, 0.33)),
        _finding(3, "Refuses medical questions more often", 8e-4, -0.31, **_prevalences(0.4, 0.15)),
        _finding(4, LONG, 3e-3, 0.12),  # a score, not a presence: no prevalences, left out of the dot plot
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
    write_weights(run_dir, weights_rows())
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


def _ids_with_prevalences() -> list[str]:
    return [row["id"] for row in _rows() if row["validated"] and row["prevalence_a"] is not None]


def _screenshot(page: sync_api.Page, folder: Path, name: str, element: str = "", full_page: bool = True) -> Path:
    """The whole page (or the window as scrolled, or one element) as a PNG, copied to LMDELTA_ARTIFACTS when set."""
    path = folder / name
    if element:
        page.locator(element).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=full_page)
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


@pytest.mark.parametrize("plot", ["forest", "prevalence"])
def test_no_text_in_a_plot_is_cut_off(wide: Visit, plot: str) -> None:
    """Labels end before the plot (a long one shortened, in full in its tooltip); numbers and axis text fit."""
    overflow = wide.page.evaluate(
        """(kind) => {
        const svg = document.querySelector(`svg.${kind}-plot`);
        const width = svg.viewBox.baseVal.width;
        const height = svg.viewBox.baseVal.height;
        const clip = svg.querySelector("clipPath rect").width.baseVal.value;
        return [...svg.querySelectorAll("text")].filter(t => {
            const box = t.getBBox();
            const end = t.classList.contains("label") ? clip : width;
            return box.x < 0 || box.x + box.width > end || box.y < 0 || box.y + box.height > height;
        }).map(t => t.textContent);
    }""",
        plot,
    )
    assert overflow == []
    long_mark = wide.page.locator('.forest-mark[data-finding="h4"]')
    assert long_mark.locator("text.label").text_content().endswith("…")
    assert LONG in long_mark.locator("title").text_content()


@pytest.mark.parametrize("plot", ["weights-spectrum", "weights-heat"])
def test_no_text_in_a_weights_plot_is_cut_off(wide: Visit, plot: str) -> None:
    overflow = wide.page.evaluate(
        """(kind) => {
        const svg = document.querySelector(`svg.${kind}`);
        const box = svg.viewBox.baseVal;
        return [...svg.querySelectorAll("text:not([transform])")].filter(t => {  // a rotated one's box is unrotated
            const b = t.getBBox();
            return b.x < 0 || b.x + b.width > box.width || b.y < 0 || b.y + b.height > box.height;
        }).map(t => t.textContent);
    }""",
        plot,
    )
    assert overflow == []


def test_the_dot_plot_has_one_mark_per_finding_with_prevalences_in_the_forest_plots_order(wide: Visit) -> None:
    marks = wide.page.locator("svg.prevalence-plot .prevalence-mark")
    ids = [marks.nth(i).get_attribute("data-finding") for i in range(marks.count())]
    assert ids == _ids_with_prevalences() and len(ids) < len(_validated_ids())
    forest = wide.page.locator("svg.forest-plot .forest-mark")
    forest_ids = [forest.nth(i).get_attribute("data-finding") for i in range(forest.count())]
    assert ids == [i for i in forest_ids if i in ids]
    assert wide.page.locator("svg.prevalence-plot text.note").text_content().startswith("1 validated finding not shown")
    marks.nth(2).click()  # h3: more in a, 40% → 15%
    assert wide.page.evaluate("location.hash") == "#h-h3"


def test_the_dot_plot_puts_each_dot_at_its_share_of_the_axis(wide: Visit) -> None:
    grid = wide.page.locator("svg.prevalence-plot line.grid")
    start, end = _centre(grid.first), _centre(grid.last)  # the 0% and 100% lines
    for finding, side, share in (("h1", "a", 0.12), ("h1", "b", 0.55), ("h3", "a", 0.4), ("h3", "b", 0.15)):
        dot = wide.page.locator(f'.prevalence-mark[data-finding="{finding}"] circle.dot-{side}')
        assert _centre(dot) == pytest.approx(start + share * (end - start), abs=1.0)
    ticks = wide.page.locator("svg.prevalence-plot text.tick").all_text_contents()
    assert ticks == ["0%", "20%", "40%", "60%", "80%", "100%"]


def _centre(locator: sync_api.Locator) -> float:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2


def _toc_box(page: sync_api.Page) -> dict:
    box = page.locator("nav.toc").bounding_box()
    assert box is not None
    return box


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_the_contents_bar_stays_in_view_and_its_links_reach_their_sections(
    browser: sync_api.Browser, report: Path, width: int
) -> None:
    for visit in _open(browser, report, width):
        page = visit.page
        links = page.locator("nav.toc a")
        assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [f"#{s}" for s in SECTIONS]
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        assert page.evaluate("window.scrollY") > 1000
        bar = _toc_box(page)
        assert bar["y"] == pytest.approx(0, abs=1) and 0 < bar["height"] < 60  # one line, stuck to the top
        assert links.first.is_visible()
        for section in reversed(SECTIONS):  # up from the bottom, so every jump moves
            page.locator(f'nav.toc a[href="#{section}"]').click()
            assert page.evaluate("location.hash") == f"#{section}"
            top = page.locator(f"#{section}").bounding_box()
            assert top is not None
            assert top["y"] >= bar["height"] - 1, section  # not behind the bar
            at_end = page.evaluate("scrollY + innerHeight >= document.documentElement.scrollHeight - 1")
            assert top["y"] < (900 if at_end else bar["height"] + 60), section  # just under it, unless the page ends
            assert _toc_box(page)["y"] == pytest.approx(0, abs=1)
        assert visit.errors == []


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
        overview = _screenshot(visit.page, folder, f"overview-{width}.png", "#overview")
        assert overview.stat().st_size > 5_000
        weights = _screenshot(visit.page, folder, f"weights-{width}.png", "#weights")
        assert weights.stat().st_size > 5_000
        visit.page.locator("#null").scroll_into_view_if_needed()
        _screenshot(visit.page, folder, f"scrolled-{width}.png", full_page=False)  # the contents bar over the page
        assert visit.errors == []
