"""The confirm stage: validated findings re-estimated on confirmation prompts, decided by BH in their own family."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import fake_config, make_finding
from llm_servers import ScriptedServer, openai_reply

from lmdelta import pipeline
from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import StageError
from lmdelta.pairdata import PairData, held_out_view
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stages.confirm import decide_replications
from lmdelta.stats.tests import smallest_p
from lmdelta.validate.sets import ValidationSet

STRONG = {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.8}}


def run(tmp_path, *overrides, per_group=16, **config):
    path = fake_config(tmp_path, per_group=per_group, generate__b=STRONG, **config)
    pipeline.run(load_config(path, list(overrides)), RunDir(tmp_path / "run"))
    return tmp_path / "run"


def _hypothesis(i, direction="b>a"):
    return Hypothesis(id=f"h{i}", group="all", direction=direction, description=f"h{i}", proposer="p", judge="keyword")


def _result(p, effect, n=20, unit="prompt"):
    return make_finding(
        p_value=p,
        effect=effect,
        effect_ci=[effect - 0.1, effect + 0.1],
        n_prompts=n,
        n_texts=4 * n,
        n_units=n,
        unit=unit,
        statistic=effect,
        test="sign-flip",
        smallest_p=smallest_p(n, 2000) if unit != "none" else None,
    )


def test_bh_runs_over_the_validated_findings_that_could_replicate():
    """A finding whose scope has 3 confirmation prompts (smallest p 2^-3 > q) or none leaves the family
    before any p-value is looked at, so it does not raise the others' BH threshold."""
    results = [_result(0.03, 0.2), _result(0.125, 0.9, n=3), _result(float("nan"), float("nan"), n=0, unit="none")]
    rows = decide_replications(results, [_hypothesis(i) for i in range(3)], q=0.05)
    assert [r.status for r in rows] == ["replicated", "not testable", "not testable"]
    assert rows[0].q_value == pytest.approx(0.03)  # a family of one, not three
    assert rows[1].q_value is None and "2^-3 = 0.12, above q = 0.05" in rows[1].note
    assert rows[2].p_value is None and rows[2].effect is None and "no confirmation prompt" in rows[2].note


def test_the_family_leaves_out_any_unit_whose_smallest_p_is_above_q():
    """The floor came from `unit == "prompt"` alone: a sign-flip over 3 clusters stayed in the family."""
    results = [_result(0.03, 0.2), _result(0.125, 0.9, n=3, unit="cluster")]
    rows = decide_replications(results, [_hypothesis(i) for i in range(2)], q=0.05)
    assert rows[1].status == "not testable" and "3 confirmation clusters" in rows[1].note
    assert rows[0].q_value == pytest.approx(0.03)


def test_a_replication_needs_bh_rejection_and_the_claimed_direction():
    results = [_result(0.001, 0.3), _result(0.002, 0.1), _result(0.04, 0.2), _result(0.001, -0.2)]
    hypotheses = [_hypothesis(0), _hypothesis(1, "a>b"), _hypothesis(2), _hypothesis(3, "a>b")]
    rows = decide_replications(results, hypotheses, q=0.05)
    # BH over 4: thresholds 0.0125, 0.025, 0.0375, 0.05: the 0.04 is rejected as the 4th smallest.
    assert [r.q_value for r in rows] == pytest.approx([0.002, 0.00267, 0.04, 0.002], abs=1e-4)
    assert [r.replicated for r in rows] == [True, False, True, True]  # h1 claims a > b, its effect says b > a
    assert json.dumps([r.to_dict() for r in rows], allow_nan=False)  # plain JSON: no NaN, no numpy scalars


def test_the_held_out_view_puts_only_confirmation_prompts_in_the_validation_role():
    prompts = [Prompt(f"p{i}", "t", "g", split) for i, split in enumerate(["discovery", "validation", "confirmation"])]
    samples = [Sample(p.id, side, 0, "x", 1, "stop", 0, f"{p.id}{side}") for p in prompts for side in "ab"]
    data = PairData(prompts, samples, np.zeros((len(samples), 2)), {p.id: "g" for p in prompts})
    view = held_out_view(data)
    assert ValidationSet.build(view).prompt_ids == ["p2"] and ValidationSet.build(data).prompt_ids == ["p1"]
    assert view.samples is data.samples and view.vectors is data.vectors


def test_validated_findings_are_re_estimated_on_the_confirmation_prompts(tmp_path):
    run_dir = run(tmp_path, "prompts.confirmation_fraction=0.25")
    prompts = list(read_jsonl(run_dir / "stages/prompts/prompts.jsonl"))
    n_confirmation = sum(p["split"] == "confirmation" for p in prompts)
    assert n_confirmation == 12
    rows = list(read_jsonl(run_dir / "hypotheses.jsonl"))
    validated = [r for r in rows if r["validated"]]
    assert validated and all(r["replication"] is None for r in rows if not r["validated"])
    ocean = next(r for r in validated if r["keywords"] == ["ocean"] and r["group"] == "all")
    again = ocean["replication"]
    assert again["replicated"] and again["status"] == "replicated" and again["q_value"] <= 0.05
    assert again["n_prompts"] == n_confirmation != ocean["n_prompts"]
    assert again["n_texts"] == n_confirmation * 2 * 2 and again["effect"] > 0.5 and again["effect_ci"][0] > 0
    replications = {r["id"]: r for r in read_jsonl(run_dir / "stages/confirm/replications.jsonl")}
    assert set(replications) == {r["id"] for r in validated}
    summary = json.loads((run_dir / "summary.json").read_text())["main"]["replication"]
    assert summary["status"] == "run" and summary["confirmation_prompts"] == n_confirmation
    assert summary["validated"] == len(validated)
    assert summary["replicated"] == sum(r["replication"]["replicated"] for r in validated) >= 1
    counts = RunDir(run_dir).load_manifest().stages["confirm"].counts
    assert counts["replicated"] == summary["replicated"]


def test_without_confirmation_prompts_the_stage_says_so_and_how_to_get_them(tmp_path):
    run_dir = run(tmp_path)
    counts = RunDir(run_dir).load_manifest().stages["confirm"].counts
    assert counts == {"status": "not run: no confirmation prompts"}
    rows = list(read_jsonl(run_dir / "hypotheses.jsonl"))
    assert any(r["validated"] for r in rows) and all(r["replication"] is None for r in rows)
    summary = json.loads((run_dir / "summary.json").read_text())["main"]["replication"]
    assert summary["status"] == "not run" and summary["reason"] == "no confirmation prompts"
    assert "prompts.confirmation_fraction" in summary["hint"]
    html = (run_dir / "report.html").read_text()
    assert "No replication:</strong> no confirmation prompts" in html and "prompts.confirmation_fraction" in html


def test_it_reruns_when_decide_or_validate_change_and_resumes_after_an_interruption(tmp_path, caplog, monkeypatch):
    path = fake_config(tmp_path, per_group=16, generate__b=STRONG)
    overrides = ["prompts.confirmation_fraction=0.25"]
    the_plan = pipeline.plan(load_config(path, overrides).resolved(), RunDir(tmp_path / "run"), tmp_path)
    assert set(the_plan.material["confirm"]["config"]) == {"validate", "llm.judge", "decide"}
    assert "decide" in the_plan.material["confirm"]["upstream"]
    from lmdelta.stages import confirm

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(confirm, "validate_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(load_config(path, overrides), RunDir(tmp_path / "run"))
    assert RunDir(tmp_path / "run").load_manifest().stages["confirm"].status == "interrupted"
    monkeypatch.undo()
    caplog.set_level("INFO", logger="lmdelta")
    pipeline.run(load_config(path, overrides), RunDir(tmp_path / "run"))
    assert "decide   done before" in caplog.text and "confirm  running (resuming an interrupted run)" in caplog.text
    caplog.clear()
    pipeline.run(load_config(path, overrides + ["decide.primary=by"]), RunDir(tmp_path / "run"))
    assert "confirm  running (upstream decide will re-run)" in caplog.text
    caplog.clear()
    overrides += ["decide.primary=by", "validate.ci_level=0.9"]
    pipeline.run(load_config(path, overrides), RunDir(tmp_path / "run"))
    assert "confirm  running (upstream decide will re-run)" in caplog.text
    replications = list(read_jsonl(tmp_path / "run/stages/confirm/replications.jsonl"))
    assert replications and {r["ci_level"] for r in replications} == {0.9}


def test_dry_run_lists_the_stage(tmp_path):
    path = fake_config(tmp_path, per_group=16)
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0 and re.search(r"confirm\s+would run: not run yet", result.output)


# ---------------------------------------------------------------- with an LLM judge, through the run's session

SECRET = "sk-test-confirm"
PROPOSAL = [{"direction": "b>a", "property": "mentions the ocean", "description": "Model B brings up the ocean"}]


def _answer(received):
    """Proposes the ocean; judges 90 for a text that mentions it, else 10."""
    prompt = received.body["messages"][-1]["content"]
    if prompt.startswith("You are helping to audit"):
        return ("json", 200, openai_reply(json.dumps(PROPOSAL), prompt_tokens=400, completion_tokens=80))
    text = re.findall(r"<<<\n(.*?)\n>>>", prompt, flags=re.S)[0]
    return ("json", 200, openai_reply("90" if "ocean" in text.lower() else "10", prompt_tokens=60, completion_tokens=1))


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    with ScriptedServer("openai", [], responder=_answer) as running:
        yield running


def _llm_config(tmp_path, server, *overrides):
    model = f"openai-compatible/judge-model@{server.url}/v1"
    prices = json.dumps({"openai-compatible/judge-model": {"input": 1.0, "output": 2.0}})
    path = fake_config(tmp_path, per_group=16, generate__b=STRONG)
    return load_config(
        path,
        [
            f"llm.proposer.model={model}",
            f"llm.judge.model={model}",
            f"llm.prices={prices}",
            "propose.keywords.enabled=false",
            "propose.clusters.enabled=false",
            "propose.properties.enabled=false",
            "propose.scopes=all",
            "controls.null=false",
            "prompts.confirmation_fraction=0.25",
            *overrides,
        ],
    )


def test_an_llm_judge_scores_the_confirmation_answers_within_the_run_budget(tmp_path, server):
    """The confirm stage pays through the run's session: its calls count in the manifest and the budget;
    a budget spent mid-stage stops it resumably, and the resumed run pays for no call twice."""
    pipeline.run(_llm_config(tmp_path, server), RunDir(tmp_path / "measure"), cache_dir=tmp_path / "cache-1")
    usage = RunDir(tmp_path / "measure").load_manifest().llm_usage
    assert set(usage["by_stage"]) == {"propose", "validate", "confirm"}
    before = sum(
        roles[role]["cost_usd"] for stage, roles in usage["by_stage"].items() if stage != "confirm" for role in roles
    )
    ocean = next(r for r in read_jsonl(tmp_path / "measure/hypotheses.jsonl") if r["validated"])
    assert ocean["replication"]["replicated"] and ocean["replication"]["judge"] == "llm-unitary"
    assert ocean["replication"]["n_prompts"] == 12

    budget = before + usage["by_stage"]["confirm"]["judge"]["cost_usd"] / 2
    server.requests.clear()
    with pytest.raises(StageError, match="budget"):
        pipeline.run(
            _llm_config(tmp_path, server, f"budget.usd={budget}"),
            RunDir(tmp_path / "run"),
            cache_dir=tmp_path / "cache-2",
        )
    assert RunDir(tmp_path / "run").load_manifest().stages["confirm"].status == "interrupted"
    pipeline.run(
        _llm_config(tmp_path, server, "budget.usd=10"), RunDir(tmp_path / "run"), cache_dir=tmp_path / "cache-2"
    )
    keys = [json.dumps(r.body, sort_keys=True) for r in server.requests]
    assert len(keys) == len(set(keys)), "a paid call was made twice"
    resumed = [r["replication"] for r in read_jsonl(tmp_path / "run/hypotheses.jsonl")]
    assert resumed == [r["replication"] for r in read_jsonl(tmp_path / "measure/hypotheses.jsonl")]
