"""The dry-run's cost lines: upper bounds that follow from the config, times only where the speed is known."""

import pytest

from lmdelta.config import RunConfig
from lmdelta.estimate import CALL_SECONDS, GENERATED_TOKENS_PER_S, Estimate, estimate, lines

SMOLLM = "embedded:smollm2-135m-instruct"


def config(**sections) -> RunConfig:
    return RunConfig.model_validate(sections)


def test_generated_tokens_and_time_for_the_embedded_model():
    run = config(
        generate={"a": {"model": SMOLLM}, "b": {"model": SMOLLM}, "samples_per_prompt": 2, "max_new_tokens": 50}
    )
    found = estimate(run, answered_prompts=100, validation_texts=280, n_scopes=5)
    assert found.generated_tokens == 2 * 100 * 2 * 50
    assert found.texts == 400
    assert found.seconds["generate"] == pytest.approx(20_000 / GENERATED_TOKENS_PER_S[SMOLLM])
    assert not found.llm_calls and found.usd is None
    assert any(line.startswith("time: generate ~2 min") for line in lines(found))


def test_an_unknown_model_gets_no_invented_time():
    run = config(generate={"a": {"model": "org/some-model"}, "b": {"model": SMOLLM}})
    found = estimate(run, answered_prompts=10, validation_texts=20, n_scopes=1)
    assert "generate" not in found.seconds
    assert "depends on the models and hardware" in " ".join(lines(Estimate(generated_tokens=5)))


def test_llm_calls_are_bounded_by_proposals_times_validation_texts():
    run = config(
        llm={"proposer": {"model": "openai/gpt-4o-mini"}, "judge": {"model": "openai/gpt-4o-mini"}, "concurrency": 8},
        propose={"rounds": 2, "llm": {"per_scope": 3}},
    )
    found = estimate(run, answered_prompts=50, validation_texts=70, n_scopes=4)
    assert found.llm_calls == {"proposer": 4 * 2, "judge": 3 * 4 * 2 * 70}
    assert found.usd is not None and 0 < found.usd < 5
    assert found.seconds["propose"] == pytest.approx(8 * CALL_SECONDS / 8)
    assert found.seconds["validate"] == pytest.approx(1680 * CALL_SECONDS / 8)
    said = " ".join(lines(found))
    assert "judge ≤ 1,680" in said and "at list prices" in said


def test_an_unpriced_model_says_so_instead_of_a_price():
    run = config(llm={"proposer": {"model": "openai/a-model-without-a-price"}, "judge": {"model": "fake/judge"}})
    found = estimate(run, answered_prompts=5, validation_texts=10, n_scopes=1)
    assert found.usd is None
    assert "no known price" in " ".join(lines(found))


def test_the_offline_judges_cost_no_calls():
    run = config(llm={"judge": {"model": "openai/gpt-4o-mini"}})  # judge auto, no LLM proposer: nothing to judge
    assert estimate(run, answered_prompts=5, validation_texts=10, n_scopes=1).llm_calls == {}
