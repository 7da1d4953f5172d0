"""validate.mode = auto: the sequential protocol where it has room and something to save, fixed elsewhere;
the run then behaves, and fingerprints, exactly like the mode chosen."""

import json

import pytest

import lmdelta.sources.corpus as corpus_module
from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.rundir import RunDir
from lmdelta.sources.corpus import clear_corpus_cache
from lmdelta.stages import mode

JUDGE = "llm.judge.model=openai/gpt-4.1-mini"


def _corpus(tmp_path, prompts: int, aligned: bool = True) -> str:
    rows = [
        {**({"prompt_id": f"q{i}", "prompt": f"Q{i}?"} if aligned else {}), "side": side, "text": f"{side} answer {i}"}
        for i in range(prompts)
        for side in ("a", "b")
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"corpus.path={path}"


def test_auto_is_the_default_and_is_fixed_on_a_small_validation_split():
    config = load_config(None, ["prompts.limit=120"])
    assert config.validate.mode == "auto"
    choice = mode.choose(config)
    assert choice == mode.Choice("fixed", "84 validation prompts, under validate.auto_prompts = 1,000")
    assert mode.resolve(config).validate.mode == "fixed"


def test_auto_is_sequential_from_auto_prompts_validation_prompts_on():
    at = load_config(None, ["prompts.limit=120", "validate.auto_prompts=84"])
    assert mode.choose(at) == mode.Choice("sequential", "84 validation prompts, at least validate.auto_prompts = 84")
    assert mode.resolve(at).validate.mode == "sequential"
    assert mode.choose(load_config(None, ["prompts.limit=120", "validate.auto_prompts=85"])).mode == "fixed"


def test_an_explicit_mode_is_kept_whatever_the_size():
    for chosen in ("fixed", "sequential"):
        config = load_config(None, ["prompts.limit=120", "validate.auto_prompts=2", f"validate.mode={chosen}"])
        assert mode.resolve(config) is config
        assert mode.choose(config) == mode.Choice(chosen, f"validate.mode = {chosen}")


def test_the_judge_cascade_keeps_the_fixed_mode():
    config = load_config(None, ["validate.auto_prompts=2", "llm.strong_judge.model=openai/gpt-4.1"])
    assert mode.choose(config).mode == "fixed"
    assert "cascade" in mode.choose(config).reason


def test_a_corpus_goes_sequential_only_with_an_llm_judge_to_save_and_paired_answers(tmp_path):
    corpus = _corpus(tmp_path, 40)
    offline = load_config(None, [corpus, "validate.auto_prompts=2"])
    assert mode.choose(offline).mode == "fixed" and "offline" in mode.choose(offline).reason
    judged = load_config(None, [corpus, "validate.auto_prompts=2", JUDGE])
    assert mode.choose(judged).mode == "sequential"
    unaligned = load_config(None, [_corpus(tmp_path, 40, aligned=False), "validate.auto_prompts=2", JUDGE])
    assert mode.choose(unaligned) == mode.Choice("fixed", "the corpus's answers are not paired by prompt")


def test_a_generated_bank_is_counted_from_its_plan():
    settings = ["prompts.source=generated", "llm.prompter.model=openai/gpt-4.1-mini"]
    config = load_config(None, [*settings, "prompts.generated.per_category=100", "validate.auto_prompts=2"])
    planned = len(config.prompts.generated.categories) * 100
    assert mode.choose(config).mode == "sequential"
    assert f"{round(planned * 0.7):,} validation prompts" in mode.choose(config).reason


def test_an_auto_run_fingerprints_like_the_mode_it_chose(tmp_path):
    """Switching a finished run's config from `fixed` to `auto` (or upgrading to the new default) re-runs nothing."""
    cache = tmp_path / "cache"
    models = ["embed.model=fake:hashing", "generate.a.model=fake:words", "generate.b.model=fake:words"]
    common = ["prompts.limit=24", *models]
    plans = [
        pipeline.plan(load_config(None, [*common, f"validate.mode={m}", *extra]), RunDir(tmp_path / m), cache)
        for m, extra in (("fixed", []), ("auto", []), ("sequential", ["validate.auto_prompts=2"]))
    ]
    assert plans[0].fingerprint == plans[1].fingerprint
    assert plans[0].fingerprint["validate"] != plans[2].fingerprint["validate"]
    auto_sequential = load_config(None, [*common, "validate.mode=auto", "validate.auto_prompts=2"])
    assert pipeline.plan(auto_sequential, RunDir(tmp_path / "s2"), cache).fingerprint == plans[2].fingerprint


def test_a_dry_run_says_which_mode_auto_took():
    from lmdelta.preview import describe_run

    lines = describe_run(load_config(None, ["prompts.limit=120", "validate.auto_prompts=50"]))
    assert "validation: sequential (auto: 84 validation prompts, at least validate.auto_prompts = 50)" in lines
    assert any("round by round" in line for line in lines)  # the answers line follows the chosen mode


def test_a_dry_run_without_the_prompt_data_leaves_the_choice_to_the_run(tmp_path):
    from click.testing import CliRunner

    from lmdelta.cli import main

    config = tmp_path / "c.yaml"
    config.write_text("prompts:\n  source: persona:/nowhere/evals\n")
    args = ["run", str(config), "--dry-run", "--run-dir", str(tmp_path / "r")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "validation: auto: fixed or sequential, chosen at run time once the prompts are counted" in result.output
    assert "auto → fixed" not in result.output  # no choice is claimed for prompts it could not count


def _prompts_stage_done(config, run_dir, cache):
    """Only the prompts stage run and recorded, as a run that stopped later (an LLM judge is not reachable here)."""
    plan = pipeline.plan(config, run_dir, cache)
    pipeline._run_stage(pipeline.STAGES[0], mode.resolve(config.resolved()), run_dir, cache, plan)


@pytest.mark.parametrize("aligned, chosen", [(True, "sequential"), (False, "fixed")])
def test_a_rerun_counts_a_corpus_from_its_reused_prompts_stage(tmp_path, monkeypatch, aligned, chosen):
    """auto with an LLM judge counts a corpus's validation prompts; once the prompts stage is done, a re-run takes
    them from its output instead of parsing the corpus again, and chooses as the parse did."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # planned, never called
    config = load_config(None, [_corpus(tmp_path, 40, aligned), "validate.auto_prompts=2", JUDGE])
    run_dir, cache = RunDir(tmp_path / "run"), tmp_path / "cache"
    _prompts_stage_done(config, run_dir, cache)
    parsed = []
    real = corpus_module._read
    monkeypatch.setattr(corpus_module, "_read", lambda path, *rest: parsed.append(path) or real(path, *rest))
    clear_corpus_cache()
    plan = pipeline.plan(config, run_dir, cache)
    assert plan.reason["prompts"] is None and plan.material["validate"]["config"]["validate"]["mode"] == chosen
    assert not parsed
    assert mode.choose(config).mode == chosen and parsed  # what parsing the corpus chooses
