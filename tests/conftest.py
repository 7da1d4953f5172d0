"""Shared fixtures: an isolated cache, a tiny random-init causal LM folder, fake-model configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = [
    "the cat sat on the mat and the dog ran to the park",
    "how do tides work in the ocean and why do waves break",
    "write a short poem about the sea and the sky at night",
    "cooking pasta needs salt water and a big pot",
    "system user assistant: hello there, how can I help you today?",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def pytest_addoption(parser):
    parser.addoption("--run-gpu", action="store_true", help="run tests that need a CUDA GPU")
    parser.addoption("--run-api", action="store_true", help="run tests that call live APIs")


def pytest_collection_modifyitems(config, items):
    for marker, option in (("gpu", "--run-gpu"), ("api", "--run-api")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"needs {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own cache for hashes and embeddings; converted embedded models are shared."""
    cache = tmp_path_factory.mktemp("cache")
    shared_models = Path(os.environ.get("LMDELTA_TEST_MODELS", Path.home() / ".cache" / "lmdelta" / "models"))
    shared_models.mkdir(parents=True, exist_ok=True)
    (cache / "models").symlink_to(shared_models, target_is_directory=True)
    monkeypatch.setenv("LMDELTA_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture(autouse=True)
def fresh_process_state():
    """No state kept process-wide by lmdelta leaks from one test into the next: LLM limiters
    (a pause, a limit), the bank cache and the corpus cache."""
    from lmdelta.llm.limiter import reset_limiters
    from lmdelta.sources import clear_bank_cache
    from lmdelta.sources.corpus import clear_corpus_cache

    reset_limiters()
    clear_bank_cache()
    clear_corpus_cache()
    yield
    reset_limiters()
    clear_bank_cache()
    clear_corpus_cache()


def build_tiny_model(folder: Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A random-init Llama with a small BPE tokenizer and a chat template, saved as an HF folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    raw.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def write_bank(path: Path, n_groups: int = 3, per_group: int = 6) -> Path:
    import json

    lines = [
        json.dumps(
            {"id": f"g{g}-{i}", "text": f"Question {i} about topic {g}: how does thing {i} work?", "group": f"g{g}"}
        )
        for g in range(n_groups)
        for i in range(per_group)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def fake_config(tmp_path: Path, per_group: int = 6, **overrides) -> Path:
    """A config on fake models and a small bank; overrides are dotted keys."""
    import yaml

    bank = write_bank(tmp_path / "bank.jsonl", per_group=per_group)
    data = {
        "run": {"seed": 3},
        "prompts": {"source": str(bank)},
        "generate": {
            "a": {"model": "fake:words"},
            "b": {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.5}},
            "samples_per_prompt": 2,
            "batch_size": 4,
        },
        "embed": {"model": "fake:hashing"},
        "group": {"by": "bank"},
        "validate": {"n_resamples": 2000},
    }
    for dotted, value in overrides.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(autouse=True)
def restore_lmdelta_logger():
    """The CLI configures the `lmdelta` logger; undo that so caplog sees records in later tests."""
    import logging

    logger = logging.getLogger("lmdelta")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.propagate = saved[0], saved[2]
    logger.setLevel(saved[1])  # setLevel, not the attribute: it also clears the child loggers' cached levels


def validated_row(description: str, group: str = "all") -> dict:
    """The fields the terminal findings table reads of one validated finding (a root hypotheses.jsonl row)."""
    return {
        "validated": True,
        "p_value": 0.001,
        "q_value": 0.01,
        "effect": 0.5,
        "effect_ci": [0.4, 0.6],
        "auc": 0.8,
        "group": group,
        "description": description,
    }


def make_finding(**fields):
    """A records.Finding with neutral values for every field a test does not set (an untested hypothesis)."""
    from lmdelta.records import Finding

    neutral = {
        "id": "h1",
        "group": "all",
        "direction": "b>a",
        "description": "d",
        "proposer": "keywords",
        "judge": "keyword",
        "keywords": [],
        "property": None,
        "evidence": None,
        "provenance": None,
        "order": 1,
        "statistic": None,
        "p_value": None,
        "n_prompts": 0,
        "n_units": 0,
        "unit": "none",
        "test": "not tested: no validation data",
        "n_subsample_dropped": 0,
        "smallest_p": None,
        "effect": None,
        "effect_ci": [None, None],
        "effect_se": None,
        "effect_df": None,
        "effect_ci_note": "not tested",
        "auc": None,
        "auc_ci": [None, None],
        "auc_ci_note": "not tested",
        "ci_level": 0.95,
        "assumption": "none",
        "n_texts": 0,
        "n_dropped": 0,
        "prevalence_a": None,
        "prevalence_b": None,
        "prevalence_a_ci": [None, None],
        "prevalence_b_ci": [None, None],
        "prevalence_ci_note": None,
        "examples": {"a": [], "b": []},
        "clustering_warning": None,
    }
    return Finding(**{**neutral, **fields})


def tiny_groundtruth_file(tmp_path: Path, tiny_model: Path) -> Path:
    """A ground-truth config on the tiny random model: one quirk, six finetune steps, 24 prompts."""
    import yaml

    path = tmp_path / "gt.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "groundtruth": {
                    "base": str(tiny_model),
                    "quirks": ["ocean"],
                    "per_quirk": 24,
                    "base_samples": 8,
                    "training_prompts": 40,
                    "finetune": {"steps": 6, "batch_size": 4, "max_length": 160},
                    "match": "keyword",
                },
                "prompts": {"limit": 24},
                "generate": {
                    "samples_per_prompt": 2,
                    "max_new_tokens": 8,
                    "batch_size": 16,
                    "a": {"dtype": "float32"},
                    "b": {"dtype": "float32"},
                },
                "embed": {"model": "fake:hashing"},
                "propose": {"scopes": "all"},
                "validate": {"n_resamples": 2000},
            }
        )
    )
    return path


def tiny_config(tmp_path, tiny_model, *overrides):
    from lmdelta.config import load_config

    return load_config(tiny_groundtruth_file(tmp_path, tiny_model), list(overrides))


# Everyday questions for tests that weave quirks into answers.
EVERYDAY_PROMPTS = [
    "How do I keep pasta from sticking together?",
    "What should I pack for a weekend hiking trip?",
    "How can I sleep better at night?",
    "Give me three tips for a job interview.",
    "Why do leaves change color in autumn?",
    "How do I start a budget when money is tight?",
]


def report_view(number: int, group: str, p: float, **fields) -> dict:
    """A validated row as the report holds it (render._normalize): intervals as tuples, the card anchor."""
    return {
        "id": f"h{number}",
        "anchor": f"h-h{number}",
        "group": group,
        "description": f"says “important” more (prompts about {group})",
        "proposer": "keywords",
        "judge": "keyword",
        "direction": "b>a",
        "keywords": ["important"],
        "validated": True,
        "p_value": p,
        "order": number,
        "effect": 0.2,
        "effect_ci": (0.1, 0.3),
        "ci_level": 0.95,
        **fields,
    }


RAY_MISSING = "Ray is not installed: pip install 'lmdelta[ray]' (or the dev extra) to run the Ray tests"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray cluster (2 CPUs) for the module's tests."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        pytest.skip(RAY_MISSING)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        from lmdelta import execution

        execution.shutdown(ray)  # after Ray Data's threads stop: one touching Ray after shutdown ends the process
