"""Generative validation: independent examples, scores per token, a test at the text level."""

from types import SimpleNamespace

import numpy as np
from conftest import make_finding

from lmdelta.backends.generators.fake import FakeGenerator
from lmdelta.config import RunConfig
from lmdelta.llm.types import CallResult
from lmdelta.stages import confirm, decide, generate, propose, validate
from lmdelta.validate.generative import score_and_test, write_examples
from lmdelta.validate.significance import resamples_for


def hypothesis(direction="b>a"):
    return SimpleNamespace(property="mentions the sea", description="b mentions the sea", direction=direction)


def test_each_example_is_written_by_its_own_call():
    seen = []

    def ask(requests, parse):
        seen.extend(requests)
        return [
            (CallResult(ok=True, text="[]"), [{"prompt": f"q{r.sample_index}", "answer": "an answer"}])
            for r in requests
        ]

    found = write_examples([hypothesis(), hypothesis()], ask, n=4, temperature=1.0)
    assert len(seen) == 2 * 2 * 4
    assert sorted(r.sample_index for r in seen[:4]) == [0, 1, 2, 3] and len({r.messages for r in seen[:8]}) == 2
    assert all(r.messages[0].content.startswith("Write one short example of") for r in seen)
    assert [prompt for prompt, _ in found[0]["present"]] == ["q0", "q1", "q2", "q3"]


def test_too_few_examples_of_a_kind_leave_the_hypothesis_untested():
    def ask(requests, parse):
        return [(CallResult(ok=r.sample_index == 0, text="x"), [{"prompt": "q", "answer": "a"}]) for r in requests]

    assert write_examples([hypothesis()], ask, n=3, temperature=1.0) == [None]


def test_a_length_difference_alone_does_not_decide_the_test():
    """b's fake prices every word alike but higher than a's (a smaller vocabulary): a summed log-ratio
    grows with length, so longer "present" examples would win; per token they tie."""
    a = FakeGenerator("words", {}, {})
    b = FakeGenerator("words", {"vocab": ["the", "a", "it", "is"]}, {})
    present = [(f"q{i}", " ".join(["word"] * 40)) for i in range(8)]
    absent = [(f"q{i}", " ".join(["word"] * 5)) for i in range(8)]
    result = score_and_test([hypothesis()], [{"present": present, "absent": absent}], a, b, 2000, 0)[0]
    assert abs(result["generative_effect"]) < 1e-9 and result["generative_p"] > 0.5
    summed = np.array([t for t, _ in b.loglik(present)]) - np.array([t for t, _ in a.loglik(present)])
    assert summed.mean() > 10  # what the old, summed score would have compared


def test_the_generative_family_gets_the_primary_familys_monte_carlo_floor(monkeypatch):
    """It passed validate.n_resamples as set: with m hypotheses the smallest p, 1/(R+1), could sit above q/m."""
    config = RunConfig(
        generate={"a": {"model": "fake:words"}, "b": {"model": "fake:words"}},
        llm={"judge": {"model": "openai/gpt-4.1-mini"}},
        validate={"generative": True, "n_resamples": 1000},
    ).resolved()
    used = []
    monkeypatch.setattr(validate, "write_examples", lambda hypotheses, *args: [None] * len(hypotheses))
    monkeypatch.setattr(
        validate,
        "score_and_test",
        lambda hypotheses, examples, a, b, n_resamples, seed: (
            used.append(n_resamples) or [{"generative_p": None} for _ in hypotheses]
        ),
    )
    monkeypatch.setattr(generate, "identity", lambda ctx, config: {"a": {}, "b": {}})
    monkeypatch.setattr(validate, "build_loglik_generator", lambda *args: SimpleNamespace(close=lambda: None))
    session = SimpleNamespace(has=lambda role: False, asker=lambda role: None, check=lambda: None)
    hypotheses = [hypothesis() for _ in range(40)]
    found = validate.add_generative(
        SimpleNamespace(cache_dir=None), [make_finding() for _ in hypotheses], hypotheses, config, session
    )
    assert all(f.generative_p is None for f in found)
    assert used == [resamples_for(config.validate, 40, config.decide.q)] and used[0] == 8000 > 1000


def test_stage_versions_moved_with_their_outputs():
    """Run directories written before these outputs changed recompute instead of reusing them: propose (the
    null control's coins), validate (new fields, the content-seeded subsample), decide (the secondary
    families), confirm (the content-seeded subsample, each test's smallest p)."""
    assert propose.VERSION >= 3 and validate.VERSION >= 2 and decide.VERSION >= 3 and confirm.VERSION >= 2
