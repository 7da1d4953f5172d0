"""Integration: the models shipped in PyPI packages, end to end through the pipeline (offline)."""

import numpy as np
import pytest
import yaml

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.rundir import RunDir, read_jsonl

pytestmark = pytest.mark.slow


def test_pipeline_on_embedded_smollm2_and_minilm(tmp_path):
    bank = tmp_path / "bank.txt"
    bank.write_text("What is the capital of France?\nName a colour of the sky.\nHow do I boil an egg?\n"
                    "Say hello.\n")
    config = {
        "prompts": {"source": str(bank), "discovery_fraction": 0.25},
        "generate": {"a": {"model": "embedded:smollm2-135m-instruct"},
                     "b": {"model": "embedded:smollm2-135m-instruct", "system_prompt": "Answer like a pirate."},
                     "max_new_tokens": 12, "temperature": 0.0},
        "embed": {"model": "embedded:all-MiniLM-L6-v2"},
        "group": {"by": "kmeans", "n_groups": 2},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    pipeline.run(load_config(path), RunDir(tmp_path / "run"))
    samples = {(s["side"], s["prompt_id"]): s for s in read_jsonl(tmp_path / "run/stages/generate/samples.jsonl")}
    assert len(samples) == 8
    paris = [s for (side, _), s in samples.items() if side == "a" and "Paris" in s["text"]]
    assert paris, "greedy SmolLM2 should know the capital of France"
    assert all(0 < s["n_tokens"] <= 12 for s in samples.values())
    vectors = np.load(tmp_path / "run/stages/embed/samples.npy")
    assert vectors.shape == (8, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
