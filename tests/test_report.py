"""The HTML report: built from a hand-written run directory, checked for content, escaping and self-containment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import dump_config, load_config
from lmdelta.report.filters import fmt_p, highlight
from lmdelta.report.render import render_report
from lmdelta.rundir import RunDir

SCRIPT = "<script>alert(1)</script>"
VALIDATED = "Uses more exclamation marks and upbeat phrasing"


def _hypothesis(number: int, description: str, *, validated: bool, p: float, **fields) -> dict:
    row = {
        "id": f"h{number}",
        "group": "tone",
        "direction": "b>a",
        "description": description,
        "proposer": "fake-proposer",
        "judge": "fake-judge",
        "keywords": None,
        "n_prompts": 40,
        "n_texts": 160,
        "n_dropped": 0,
        "test": "paired sign-flip over prompts (Monte Carlo, R=10000)",
        "assumption": "prompts exchangeable",
        "statistic": 2.1,
        "p_value": p,
        "q_value": min(1.0, p * 3),
        "effect": 0.31,
        "effect_ci": [0.18, 0.44],
        "auc": 0.71,
        "auc_ci": [0.63, 0.79],
        "prevalence_a": 0.12,
        "prevalence_b": 0.41,
        "baseline_auc": 0.58,
        "bh_reject": validated,
        "by_reject": validated,
        "online_reject": False,
        "online_level": 0.01,
        "online_procedure": "LORD++",
        "generalization_p": 0.02,
        "generalization_effect": 0.2,
        "validated": validated,
        "order": number,
        "examples": {"a": [], "b": []},
    }
    row.update(fields)
    return row


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    # json.dumps writes float('nan') as the bare token NaN, as a Python writer of these files would.
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    examples = {
        "a": [{"sample_id": "a-1", "prompt": "Say hi", "text": "Hello. How can I help?", "score": 0.1}],
        "b": [
            {
                "sample_id": "b-1",
                "prompt": "Say hi",
                "score": 0.93,
                "text": f"Hi there!! {SCRIPT} So Excited to help & more excited-ish.",
            }
        ],
    }
    hypotheses = [
        _hypothesis(1, VALIDATED, validated=True, p=3.2e-5, keywords=["excited"], examples=examples),
        _hypothesis(2, "Gives shorter answers", validated=False, p=0.2, effect=float("nan"), auc=None),
        _hypothesis(3, "Refuses more often", validated=False, p=0.6, direction="a>b"),
    ]
    _write_jsonl(tmp_path / "hypotheses.jsonl", hypotheses)
    _write_jsonl(
        tmp_path / "null_control.jsonl",
        [
            _hypothesis(1, "Null idea one", validated=False, p=0.4),
            _hypothesis(2, "Null idea two", validated=False, p=0.9),
        ],
    )
    manifest = {
        "version": "0.1.0",
        "updated": "2025-01-02T03:04:05+0000",
        "stages": {
            "generate": {"status": "done", "seconds": 12.5, "counts": {"texts": 320}},
            "decide": {"status": "done", "seconds": 0.4, "counts": {}},
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        "generate:\n"
        "  a: {model: 'fake:base', label: base}\n"
        "  b: {model: 'fake:tuned', label: tuned, system_prompt: 'Be <b>cheerful</b>.'}\n"
        "decide: {q: 0.05, primary: bh}\n",
        encoding="utf-8",
    )
    return tmp_path


def test_report_content_and_escaping(run_dir: Path) -> None:
    out = render_report(run_dir)
    assert out == run_dir / "report.html" and out.exists()
    html = out.read_text(encoding="utf-8")

    assert VALIDATED in html
    assert "1 of 3 tested hypotheses validated at q = 0.05 (Benjamini–Hochberg)" in html
    assert 'class="pill ok" href="#null">null control (random a/b relabelling): 0 of 2 validated' in html
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Be &lt;b&gt;cheerful&lt;/b&gt;." in html
    assert "<mark>Excited</mark>" in html and "<mark>excited</mark>" in html
    assert "3.2e-05" in html
    assert "12% → 41%" in html
    assert "lmdelta report " in html and str(run_dir) in html


def test_report_is_self_contained(run_dir: Path) -> None:
    html = render_report(run_dir).read_text(encoding="utf-8")
    for external in ('src="http', "src='http", 'href="http', "href='http", "@import", "http://", "https://"):
        assert external not in html
    assert not re.search(r"<(link|iframe|img)\b", html)


def test_nan_and_null_render_as_dash(run_dir: Path) -> None:
    html = render_report(run_dir).read_text(encoding="utf-8")
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*Gives shorter answers(?:(?!</tr>).)*</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r'<td class="n"[^>]*>([^<]*)</td>', row.group(0))
    assert cells[:2] == ["–", "–"]  # effect is NaN, AUC is null
    assert "nan" not in row.group(0).lower().replace("answers", "")


def test_missing_files_render_placeholders(tmp_path: Path) -> None:
    html = render_report(tmp_path).read_text(encoding="utf-8")
    assert "No hypotheses were tested yet" in html
    assert "controls.null: true" in html
    assert "lmdelta report " in html


def test_nonzero_null_is_flagged(run_dir: Path) -> None:
    _write_jsonl(
        run_dir / "null_control.jsonl",
        [
            _hypothesis(1, "Null idea one", validated=True, p=0.0001),
            _hypothesis(2, "Null idea two", validated=False, p=0.9),
        ],
    )
    (run_dir / "summary.json").write_text(
        json.dumps({"tested": 3, "validated": 1, "q": 0.1, "primary": "bh", "null": {"tested": 2, "validated": 1}})
    )
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert 'class="pill bad" href="#null">null control (random a/b relabelling): 1 of 2 validated' in html
    assert "The null control validated 1 of 2 hypotheses on data whose" in html
    assert "q = 0.10" in html


def test_a_null_control_that_tested_nothing_is_grey_with_its_reason_never_green(run_dir: Path) -> None:
    """The old report showed a green "0 of 0 validated … as it should be" for an empty null control."""
    _write_jsonl(run_dir / "null_control.jsonl", [])
    skipped = [{"group": "all", "reason": "discovery answers only from side a"}]
    (run_dir / "summary.json").write_text(
        json.dumps({"q": 0.05, "primary": "bh", "null": {"tested": 0, "validated": 0, "skipped_groups": skipped}})
    )
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert '<a class="pill off" href="#null"' in html and ">null control: not testable</a>" in html
    assert "scopes left out: all: discovery answers only from side a" in html
    assert 'class="pill ok"' not in html and "as it should be" not in html and "0 of 0" not in html


def test_the_null_section_shows_the_p_value_distribution(run_dir: Path) -> None:
    _write_jsonl(
        run_dir / "null_control.jsonl",
        [
            _hypothesis(i, f"Null idea {i}", validated=False, p=p)
            for i, p in enumerate([0.01, 0.02, 0.03, 0.04, 0.3], start=1)
        ],
    )
    html = render_report(run_dir).read_text(encoding="utf-8")
    section = html.split('<h2 id="null">')[1].split('<h2 id="run">')[0]
    assert "Null control (random a/b relabelling)" in section and "none, as it should be" in section
    assert "4 of 5" in section and "80%" in section and "95% CI 28%–99%" in section
    assert "D+ = 0.76" in section and "More of the null control's p-values are at or below 0.05" in section


def test_highlight_never_marks_inside_entities() -> None:
    assert str(highlight("a < b lt", ["lt"])) == "a &lt; b <mark>lt</mark>"
    assert str(highlight("category cats", ["cat"])) == "category <mark>cats</mark>"
    assert str(highlight("Take care! Really?!", ["!", "?!"])) == "Take care<mark>!</mark> Really<mark>?!</mark>"
    assert fmt_p(0.0123) == "0.012" and fmt_p(float("nan")) == "–"


def _write_config(run_dir: Path, *overrides: str) -> None:
    (run_dir / "config.yaml").write_text(dump_config(load_config(None, list(overrides))), encoding="utf-8")


def _side_cards(html: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="side (a|b)">(.*?)</div>', html, re.S))


def test_a_corpus_run_names_its_file_and_side_values_not_the_default_model(run_dir: Path) -> None:
    _write_config(
        run_dir, "corpus.path=/data/outputs.jsonl", "generate.b.label=tuned", "corpus.sides={a: [llama-base]}"
    )
    cards = _side_cards(render_report(run_dir).read_text(encoding="utf-8"))
    assert "/data/outputs.jsonl" in cards["a"] and "/data/outputs.jsonl" in cards["b"]
    assert "smollm2" not in cards["a"] + cards["b"] and "model not recorded" not in cards["a"] + cards["b"]
    assert re.search(r"side column reads a, base, llama-base<", cards["a"])
    assert re.search(r"side column reads b, finetuned, intervention, tuned<", cards["b"])


def test_a_corpus_with_a_file_per_side_names_each_file_on_its_side(run_dir: Path) -> None:
    _write_config(run_dir, "corpus.a=/data/base.csv", "corpus.b=/data/tuned.csv")
    cards = _side_cards(render_report(run_dir).read_text(encoding="utf-8"))
    assert "/data/base.csv" in cards["a"] and "/data/tuned.csv" not in cards["a"]
    assert "/data/tuned.csv" in cards["b"] and "smollm2" not in cards["a"] + cards["b"]


def test_a_model_run_names_the_model_revision_adapter_and_system_prompt(run_dir: Path) -> None:
    _write_config(
        run_dir,
        "generate.a.model=hf:org/base",
        "generate.a.revision=v2",
        "generate.b.model=hf:org/base",
        "generate.b.adapter=/adapters/quirky",
        "generate.b.system_prompt=Be brief.",
    )
    cards = _side_cards(render_report(run_dir).read_text(encoding="utf-8"))
    assert "hf:org/base @ v2" in cards["a"] and "adapter" not in cards["a"]
    assert "/adapters/quirky" in cards["b"] and "Be brief." in cards["b"] and "corpus" not in cards["b"]


def test_the_lexical_baseline_is_shown_once_per_group_not_judged_per_card(run_dir: Path) -> None:
    rows = [
        _hypothesis(1, VALIDATED, validated=True, p=1e-4, auc=0.6, baseline_auc=0.9),
        _hypothesis(2, "Longer words", validated=True, p=2e-4, auc=0.6, baseline_auc=0.9),
        _hypothesis(3, "Other group", validated=False, p=0.5, group="style", baseline_auc=0.7),
    ]
    _write_jsonl(run_dir / "hypotheses.jsonl", rows)
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert "word-use difference" not in html and "bag-of-words baseline AUC" not in html
    line = re.search(r'<p class="small" id="lexical-baseline">(.*?)</p>', html, re.S).group(1)
    assert "0.70 in group style; 0.90 in group tone." in " ".join(line.split())


def test_a_typical_fake_run_puts_no_word_use_warning_on_its_cards(tmp_path: Path) -> None:
    pipeline.run(load_config(fake_config(tmp_path), []), RunDir(tmp_path / "run"))
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert '<article class="card"' in html and 'id="lexical-baseline"' in html
    assert "word-use difference" not in html


def test_text_from_the_run_wraps_instead_of_widening_the_page(run_dir: Path) -> None:
    html = render_report(run_dir).read_text(encoding="utf-8")
    rule = re.search(r"\n([^{}\n]*)\{[^}]*overflow-wrap: anywhere;[^}]*\}", html)
    assert rule is not None and {"h3", "td", "dd", ".chip"} <= {s.strip() for s in rule.group(1).split(",")}


# ---------------------------------------------------------------- intervals, replication, families


def _card(html: str, description: str) -> str:
    found = re.search(rf'<article class="card"[^>]*>\s*<h3>{re.escape(description)}</h3>(.*?)</article>', html, re.S)
    return found.group(1)


def _text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


REPLICATED = {
    "status": "replicated",
    "replicated": True,
    "effect": 0.22,
    "effect_ci": [0.05, 0.39],
    "ci_level": 0.95,
    "auc": 0.66,
    "p_value": 0.004,
    "q_value": 0.008,
    "n_prompts": 12,
    "n_texts": 48,
    "note": None,
}


def test_a_validated_finding_leads_with_its_selection_adjusted_interval(run_dir: Path) -> None:
    """The card showed the plain interval as "95% CI" whatever validate.ci_level was, and no adjusted one."""
    row = _hypothesis(
        1,
        VALIDATED,
        validated=True,
        p=1e-4,
        ci_level=0.9,
        effect_ci_fcr=[0.11, 0.51],
        fcr_level=0.9667,
        effect_se=0.06,
        effect_df=39,
    )
    _write_jsonl(run_dir / "hypotheses.jsonl", [row, _hypothesis(2, "Other", validated=False, p=0.5, ci_level=0.9)])
    (run_dir / "summary.json").write_text(
        json.dumps({"q": 0.05, "primary": "bh", "main": {"tested": 2, "validated": 1, "fcr_level": 0.9667}})
    )
    html = render_report(run_dir).read_text(encoding="utf-8")
    card = _text(_card(html, VALIDATED))
    assert "+0.31 96.7% CI [0.11, 0.51]" in card
    assert "adjusted for having been selected among 2 tested · plain 90% CI [0.18, 0.44]" in card
    assert "95%" not in card and "90% CI [0.63, 0.79]" in card  # the AUC interval at the run's level
    assert 'aria-label="effect +0.31, 96.7% CI [0.11, 0.51] on an axis from -1 to 1"' in html
    table_cell = re.search(r'<td class="n" title="([^"]*)">\+0.31</td>', html).group(1)
    assert table_cell == "90% CI [0.18, 0.44]; adjusted for selection among 2 tested: 96.7% CI [0.11, 0.51]"


def test_missing_intervals_say_why(run_dir: Path) -> None:
    row = _hypothesis(
        1,
        VALIDATED,
        validated=True,
        p=1e-4,
        effect_ci=[None, None],
        auc_ci=[None, None],
        effect_ci_note="one prompt: no spread between prompts to build an interval from",
        auc_ci_note="fewer than 5 prompts",
        prevalence_a_ci=[0.02, 0.3],
        prevalence_b_ci=[0.2, 0.65],
        n_subsample_dropped=3,
    )
    _write_jsonl(run_dir / "hypotheses.jsonl", [row])
    card = _text(_card(render_report(run_dir).read_text(encoding="utf-8"), VALIDATED))
    assert "no interval: one prompt: no spread between prompts" in card and "no interval: fewer than 5 prompts" in card
    assert "12% → 41% 95% CIs 2%–30% → 20%–65%" in card
    assert "3 left out of the test to balance answer counts per prompt" in card


def test_the_replication_sits_beside_the_validation_estimate(run_dir: Path) -> None:
    failed = {
        **REPLICATED,
        "status": "not replicated",
        "replicated": False,
        "effect": 0.01,
        "effect_ci": [-0.1, 0.12],
        "q_value": 0.4,
    }
    untestable = {
        **REPLICATED,
        "status": "not testable",
        "replicated": False,
        "q_value": None,
        "note": "on 3 confirmation prompts the smallest possible p-value is 2^-3 = 0.12, above q = 0.05",
    }
    rows = [
        _hypothesis(1, VALIDATED, validated=True, p=1e-4, replication=REPLICATED),
        _hypothesis(2, "Shorter", validated=True, p=2e-4, replication=failed),
        _hypothesis(3, "Longer", validated=True, p=3e-4, replication=untestable),
        _hypothesis(4, "Not validated", validated=False, p=0.5, replication=None),
    ]
    _write_jsonl(run_dir / "hypotheses.jsonl", rows)
    replication = {
        "status": "run",
        "q": 0.05,
        "confirmation_prompts": 12,
        "validated": 3,
        "tested": 2,
        "not_testable": 1,
        "replicated": 1,
    }
    (run_dir / "summary.json").write_text(
        json.dumps({"q": 0.05, "primary": "bh", "main": {"tested": 4, "validated": 3, "replication": replication}})
    )
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert "replication: 1 of 3 replicated on 12 confirmation prompts" in html
    assert "over the 2 findings that could be re-tested there" in _text(html)
    assert "replicated effect +0.22, 95% CI [0.05, 0.39]" in _text(_card(html, VALIDATED))
    assert "on 12 confirmation prompts (48 texts), q = 0.008" in _text(_card(html, VALIDATED))
    assert "did not replicate effect +0.01, 95% CI [-0.10, 0.12]" in _text(_card(html, "Shorter"))
    assert "not testable on 3 confirmation prompts the smallest possible p-value" in _text(_card(html, "Longer"))
    marks = re.findall(r'<td class="c dec" title="[^"]*">([^<]*)</td>\s*</tr>', html)
    assert marks[:4] == ["✓", "✗", "○", "–"]


def test_without_a_confirmation_split_the_report_says_how_to_get_one(run_dir: Path) -> None:
    (run_dir / "summary.json").write_text(
        json.dumps(
            {
                "q": 0.05,
                "primary": "bh",
                "main": {
                    "tested": 3,
                    "validated": 1,
                    "replication": {"status": "not run", "reason": "no confirmation prompts"},
                },
            }
        )
    )
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert "replication: not run" in html and ">replicated</th>" not in html
    assert "No replication:</strong> no confirmation prompts" in html
    assert "no confirmation split" in _text(_card(html, VALIDATED))
    assert "<code>prompts.confirmation_fraction</code> (e.g. 0.2)" in html


def test_generalisation_is_shown_by_its_family_decision_never_as_a_bare_p(run_dir: Path) -> None:
    rows = [
        _hypothesis(1, VALIDATED, validated=True, p=1e-4, generalization_q=0.012, generalization_validated=True),
        _hypothesis(2, "Shorter", validated=True, p=2e-4, generalization_q=0.3, generalization_validated=False),
        _hypothesis(
            3, "Pooled", validated=True, p=3e-4, group="all", generalization_p=None, generalization_effect=None
        ),
        _hypothesis(4, "Old run", validated=True, p=4e-4),
    ]
    _write_jsonl(run_dir / "hypotheses.jsonl", rows)
    html = render_report(run_dir).read_text(encoding="utf-8")
    card = _text(_card(html, VALIDATED))
    assert "generalises to other groups (q = 0.012, BH within the generalisation family" in card
    shorter = _text(_card(html, "Shorter"))
    assert "does not generalise (q = 0.300" in shorter and "p = 0.020" not in shorter
    assert "not applicable: the pooled scope covers every group" in _text(_card(html, "Pooled"))
    assert "uncorrected p = 0.020 (descriptive" in _text(_card(html, "Old run"))


def test_generative_checks_are_shown_by_their_family_decision(run_dir: Path) -> None:
    rows = [
        _hypothesis(
            1,
            VALIDATED,
            validated=True,
            p=1e-4,
            generative_p=0.001,
            generative_effect=1.5,
            generative_q=0.002,
            generative_validated=True,
        ),
        _hypothesis(2, "Shorter", validated=True, p=2e-4),
    ]
    _write_jsonl(run_dir / "hypotheses.jsonl", rows)
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert "generative check confirmed (q = 0.002, BH within the generative family" in _text(_card(html, VALIDATED))
    assert "generative check" not in _text(_card(html, "Shorter"))


def test_a_clustering_warning_is_shown_prominently(run_dir: Path) -> None:
    warning = "near-duplicate texts: 40% of texts have a twin, so the text-level test may over-reject"
    rows = [
        _hypothesis(1, VALIDATED, validated=True, p=1e-4, clustering_warning=warning),
        _hypothesis(2, "Other", validated=False, p=0.5, clustering_warning=warning),
    ]
    _write_jsonl(run_dir / "hypotheses.jsonl", rows)
    html = render_report(run_dir).read_text(encoding="utf-8")
    headline = html.split('<section class="headline"')[1].split("</section>")[0]
    assert headline.count(f'<p class="warn-box" role="alert"><strong>Clustered texts:</strong> {warning}</p>') == 1
    assert warning in _card(html, VALIDATED)


def test_the_terminal_table_shows_the_adjusted_interval_and_the_replication(run_dir: Path) -> None:
    from lmdelta.report.table import findings_table

    rows = [
        _hypothesis(
            1, VALIDATED, validated=True, p=1e-4, effect_ci_fcr=[0.11, 0.51], fcr_level=0.9667, replication=REPLICATED
        ),
        _hypothesis(
            2,
            "Shorter",
            validated=True,
            p=2e-4,
            effect_ci_fcr=[0.02, 0.6],
            fcr_level=0.9667,
            replication={**REPLICATED, "status": "not testable", "replicated": False},
        ),
        _hypothesis(3, "Other", validated=False, p=0.5, clustering_warning="texts look clustered"),
    ]
    _write_jsonl(run_dir / "hypotheses.jsonl", rows)
    (run_dir / "summary.json").write_text(
        json.dumps(
            {
                "q": 0.05,
                "primary": "bh",
                "main": {
                    "tested": 3,
                    "validated": 2,
                    "replication": {
                        "status": "run",
                        "q": 0.05,
                        "confirmation_prompts": 12,
                        "validated": 2,
                        "tested": 1,
                        "replicated": 1,
                    },
                },
            }
        )
    )
    out = findings_table(run_dir, width=120)
    assert "replication on 12 confirmation prompts: 1 of 2 validated findings replicated" in out
    assert "warning: texts look clustered" in out
    assert re.search(r"effect \[96\.7% CI\]\*\s+AUC\s+p\s+q\s+replicated\s+finding", out)
    assert re.search(r"1\s+0\.31 \[0\.11, 0\.51\].*yes \+0\.22\s+\[tone\]", out)
    assert re.search(r"2\s+0\.31 \[0\.02, 0\.60\].*n/a\s+\[tone\] Shorter", out)
    assert "* adjusted for having been selected among 3 tested" in out and "plain 95% intervals" in out


def test_the_terminal_table_of_an_older_run_shows_plain_intervals(run_dir: Path) -> None:
    from lmdelta.report.table import findings_table

    out = findings_table(run_dir)
    assert re.search(r"effect \[95% CI\]\s+AUC\s+p\s+q\s+finding", out) and "replicated" not in out
    assert "0.31 [0.18, 0.44]" in out and "adjusted" not in out


# ---------------------------------------------------------------- one card per claim, limits, data warnings


def _keyword_in_groups(groups: dict[str, tuple[bool, float]]) -> list[dict]:
    """The same keyword hypothesis tested in each group: {group: (validated, p)}."""
    return [
        _hypothesis(
            number,
            "tuned uses “important” in more answers than base"
            + ("" if group == "all" else f" (prompts about {group})"),
            validated=validated,
            p=p,
            group=group,
            proposer="keywords",
            judge="keyword",
            keywords=["important"],
            effect=0.1 * number,
            effect_ci=[0.1 * number - 0.1, 0.1 * number + 0.1],
        )
        for number, (group, (validated, p)) in enumerate(groups.items(), start=1)
    ]


def test_a_keyword_validated_in_several_groups_is_one_card_with_each_groups_effect(run_dir: Path) -> None:
    rows = _keyword_in_groups(
        {"finance": (True, 1e-4), "medicine": (True, 2e-4), "open_qa": (True, 3e-3), "reddit": (False, 0.4)}
    )
    _write_jsonl(run_dir / "hypotheses.jsonl", [*rows, _hypothesis(9, "Other finding", validated=True, p=0.01)])
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert html.count('<article class="card"') == 2
    card = _card(html, "tuned uses “important” in more answers than base")
    assert "validated in 3 of 4 groups" in _text(card) and "numbers below: group finance" in _text(card)
    forest = [
        (css, name.strip())
        for css, name in re.findall(r"<tr class=\"(validated|muted)[^\"]*\">\s*<td class=\"scope\">([^<]*)", card)
    ]
    assert forest == [
        ("validated", "finance"),
        ("validated", "medicine"),
        ("validated", "open_qa"),
        ("muted", "reddit"),
    ]
    assert card.count('<svg class="ci ') == 5  # four scopes in the forest, the lead's headline interval
    assert 'class="ci muted"' in card
    assert "Not tested in tone: the proposers did not single it out there." in _text(card)
    assert "The 4 validated hypotheses make 2 distinct findings" in _text(html)
    links = re.findall(r'<a href="#([^"]+)">tuned uses “important”', html)
    assert links == ["h-h1", "h-h1", "h-h1"]  # every validated test links to the one card
    assert 'id="h-h2"' not in html


def test_the_pooled_scope_leads_and_is_named_in_the_forest(run_dir: Path) -> None:
    rows = _keyword_in_groups({"finance": (True, 1e-4), "medicine": (True, 2e-4), "all": (True, 3e-3)})
    _write_jsonl(run_dir / "hypotheses.jsonl", rows)
    card = _card(render_report(run_dir).read_text(encoding="utf-8"), "tuned uses “important” in more answers than base")
    assert "validated in 2 groups and pooled" in _text(card)
    assert "all prompts (pooled) numbers below" in _text(card) and "numbers below: group all" in _text(card)


def test_the_terminal_table_shows_one_line_per_claim_with_its_groups(run_dir: Path) -> None:
    from lmdelta.report.table import findings_table

    rows = _keyword_in_groups(
        {"finance": (True, 1e-4), "medicine": (True, 2e-4), "open_qa": (True, 3e-3), "reddit": (True, 4e-3)}
    )
    _write_jsonl(run_dir / "hypotheses.jsonl", [*rows, _hypothesis(9, "Other finding", validated=True, p=0.01)])
    out = findings_table(run_dir, width=130)
    assert "5 of 5 tested hypotheses validated at q = 0.05 (BH), 2 distinct findings" in out
    assert re.search(r"\n  1 .*\[finance; in 4 groups\] tuned uses “important” in more answers than base\n", out)
    narrow = findings_table(run_dir, width=90)  # the description wraps under its column instead of being cut
    claim = r"\[finance; in 4 groups\] (tuned uses “important”[^\n]*)\n( +)(\S[^\n]*)\n"
    wrapped = re.search(r"\n  1 [^\n]*" + claim, narrow)
    assert wrapped and "…" not in narrow and (wrapped.group(1) + " " + wrapped.group(3)).endswith("than base")
    assert re.search(r"\n  2 .*\[tone\] Other finding\n", out + "\n") and "\n  3 " not in out


def _config(run_dir: Path, extra: str) -> None:
    (run_dir / "config.yaml").write_text(
        "generate:\n  a: {model: 'fake:base', label: base}\n  b: {model: 'fake:tuned', label: tuned}\n" + extra,
        encoding="utf-8",
    )


def test_an_offline_run_says_what_it_can_and_cannot_see(run_dir: Path) -> None:
    from lmdelta.report.table import findings_table

    _write_jsonl(run_dir / "hypotheses.jsonl", _keyword_in_groups({"finance": (True, 1e-4)}))
    _config(run_dir, "propose:\n  keywords: {enabled: true}\n  clusters: {enabled: false}\n  properties: {}\n")
    html = render_report(run_dir).read_text(encoding="utf-8")
    limits = _text(re.search(r'<p class="limits" id="limits">(.*?)</p>', html, re.S).group(1))
    assert "No LLM proposer ran" in limits and "which words and phrases each side uses" in limits
    assert "length, punctuation" in limits and "embedding similarity" not in limits
    assert "factual accuracy, reasoning quality, stance, persona" in limits
    assert "llm.proposer.model" in limits and "llm.judge.model" in limits and "docs/llm.md" in limits
    headline = html.split('<section class="headline"')[1].split("</section>")[0]
    assert 'id="limits"' in headline  # near the top
    line = [ln for ln in findings_table(run_dir).splitlines() if ln.startswith("limits:")]
    assert len(line) == 1 and "keywords, properties" in line[0] and "llm.proposer.model" in line[0]


def test_a_run_with_an_llm_proposer_states_no_limits(run_dir: Path) -> None:
    from lmdelta.report.table import findings_table

    _write_jsonl(run_dir / "hypotheses.jsonl", _keyword_in_groups({"finance": (True, 1e-4)}))
    _config(run_dir, "llm:\n  proposer: {model: 'openai/gpt-4.1-mini'}\npropose:\n  llm: {enabled: true}\n")
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert 'id="limits"' not in html and "What this run can see" not in html
    assert "limits:" not in findings_table(run_dir)


def test_corpus_artefact_warnings_are_shown_in_a_box_and_in_the_terminal(run_dir: Path) -> None:
    from lmdelta.report.table import findings_table

    folder = run_dir / "stages" / "prompts"
    folder.mkdir(parents=True)
    warning = "corpus: texts hold literal escape sequences — side b: 12 of 40 texts (30.0%); found “\\n” ×31"
    rows = [{"kind": "escapes", "message": warning}, {"kind": "pretokenised", "message": SCRIPT}]
    (folder / "artefacts.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    html = render_report(run_dir).read_text(encoding="utf-8")
    box = re.search(r'<div class="data-warn" id="data-warnings" role="note">(.*?)</div>', html, re.S).group(1)
    assert "Data warnings" in box and f"<li>{warning}</li>" in box
    assert "<li>&lt;script&gt;alert(1)&lt;/script&gt;</li>" in box
    assert f"data warning: {warning}" in findings_table(run_dir)


def test_no_data_warnings_no_box(run_dir: Path) -> None:
    assert 'id="data-warnings"' not in render_report(run_dir).read_text(encoding="utf-8")


def test_a_property_finding_shows_its_raw_summary_and_older_rows_do_not(run_dir: Path) -> None:
    measured = {
        "proposer": "properties",
        "judge": "property",
        "measure": "word_count",
        "measure_statistic": "median",
        "measure_a": 131.0,
        "measure_b": 182.0,
        "measure_unit": "words",
    }
    rows = [
        _hypothesis(1, "Longer answers: median 182 vs 131 words", validated=True, p=1e-4, **measured),
        _hypothesis(2, "Older row", validated=True, p=2e-4),
    ]
    _write_jsonl(run_dir / "hypotheses.jsonl", rows)
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert "word count, a → b median 131 → 182 words" in _text(_card(html, rows[0]["description"]))
    assert "a → b median" not in _text(_card(html, "Older row"))
