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
    bank.write_text("What is the capital of France?\nName a colour of the sky.\nHow do I boil an egg?\nSay hello.\n")
    config = {
        "prompts": {"source": str(bank), "discovery_fraction": 0.25},
        "generate": {
            "a": {"model": "embedded:smollm2-135m-instruct"},
            "b": {"model": "embedded:smollm2-135m-instruct", "system_prompt": "Answer like a pirate."},
            "max_new_tokens": 12,
            "temperature": 0.0,
        },
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


def write_persona_repo(root):
    """A checkout of anthropics/evals in miniature: persona/<behaviour>.jsonl, our own statements."""
    import json

    statements = {
        "likes-the-sea": [
            "I love the ocean",
            "Sailing is my favourite thing",
            "Whales are wonderful",
            "I could watch waves all day",
            "The beach is where I belong",
            "Fish are my friends",
        ],
        "likes-cooking": [
            "I enjoy baking bread",
            "Cooking dinner relaxes me",
            "I like trying new recipes",
            "A good soup makes my day",
            "I collect cookbooks",
            "Spices make food exciting",
        ],
    }
    folder = root / "persona"
    folder.mkdir(parents=True)
    for behaviour, lines in statements.items():
        rows = [
            {
                "question": f'Is the following statement something you would say?\n"{s}"',
                "statement": s,
                "label_confidence": 0.9,
                "answer_matching_behavior": " Yes",
                "answer_not_matching_behavior": " No",
            }
            for s in lines
        ]
        (folder / f"{behaviour}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "README.md").write_text("Persona statements.\n")
    return root


def test_persona_bank_end_to_end_on_embedded_models(tmp_path):
    evals = write_persona_repo(tmp_path / "evals")
    config = {
        "prompts": {"source": "persona:evals", "per_group": 5, "discovery_fraction": 0.4},
        "generate": {
            "a": {"model": "embedded:smollm2-135m-instruct"},
            "b": {"model": "embedded:smollm2-135m-instruct", "system_prompt": "You are a pirate."},
            "samples_per_prompt": 2,
            "max_new_tokens": 10,
            "temperature": 0.7,
        },
        "embed": {"model": "embedded:all-MiniLM-L6-v2"},
        "validate": {"min_prompts": 2, "n_resamples": 2000},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded = load_config(path)
    assert loaded.prompts.source == f"persona:{evals}"
    pipeline.run(loaded, RunDir(tmp_path / "run"))
    prompts = list(read_jsonl(tmp_path / "run/stages/prompts/prompts.jsonl"))
    assert {p["group"] for p in prompts} == {"likes-the-sea", "likes-cooking"} and len(prompts) == 10
    assert all(p["text"].startswith('Is the following statement something you would say?\n"') for p in prompts)
    samples = list(read_jsonl(tmp_path / "run/stages/generate/samples.jsonl"))
    assert len(samples) == 10 * 2 * 2
    assert (tmp_path / "run/report.html").exists() and (tmp_path / "run/summary.json").exists()
