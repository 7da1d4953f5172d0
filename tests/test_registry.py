import pytest

from lmdelta.backends.factory import embedder_identity, generator_identity
from lmdelta.backends.registry import parse_model
from lmdelta.config import EmbedConfig, GenerateConfig, ModelSpec
from lmdelta.errors import ModelNotFoundError
from lmdelta.records import Prompt
from lmdelta.stages.generate import requests_for


def test_parse_forms(tmp_path):
    assert parse_model("embedded:SmolLM2-135M-Instruct", "generator").name == "smollm2-135m-instruct"
    assert parse_model("fake:words", "generator").kind == "fake"
    assert parse_model("HuggingFaceTB/SmolLM2-135M", "generator").kind == "hub"
    assert parse_model(str(tmp_path), "generator").kind == "local"


@pytest.mark.parametrize(
    "text, suggestion",
    [
        ("embedded:smolm2-135m-instruct", "embedded:smollm2-135m-instruct"),
        ("smollm2", "embedded:smollm2-135m-instruct"),
        ("fake:word", "fake:words"),
    ],
)
def test_unknown_names_suggest_near_matches(text, suggestion):
    with pytest.raises(ModelNotFoundError) as err:
        parse_model(text, "generator")
    assert f"Did you mean {suggestion}" in str(err.value)


def test_embedder_names_are_separate_from_generator_names():
    with pytest.raises(ModelNotFoundError, match="embedding model"):
        parse_model("embedded:smollm2-135m-instruct", "embedder")


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        generator_identity(ModelSpec(model=str(tmp_path)), "cpu", tmp_path)


def test_offline_hub_id_not_in_cache_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        generator_identity(ModelSpec(model="nobody-here/no-such-model"), "cpu", tmp_path)


def keys(spec: ModelSpec, section: GenerateConfig, cache) -> list[str]:
    identity = generator_identity(spec, "cpu", cache)
    prompts = [Prompt("p1", "Hello?"), Prompt("p2", "Why?")]
    return [r.key for r in requests_for("a", prompts, section, identity)]


def test_cache_keys_hold_the_whole_model_identity(tiny_model, tmp_path):
    section = GenerateConfig(seed=0)
    base = keys(ModelSpec(model=str(tiny_model), dtype="float32"), section, tmp_path)
    assert base == keys(ModelSpec(model=str(tiny_model), dtype="float32"), section, tmp_path)
    variants = [
        ModelSpec(model=str(tiny_model), dtype="float32", system_prompt="Be brief."),
        ModelSpec(model=str(tiny_model), dtype="bfloat16"),
        ModelSpec(model=str(tiny_model), dtype="float32", chat_template=False),
        ModelSpec(model=str(tiny_model), dtype="float32", revision="v2"),
        ModelSpec(model="fake:words"),
        ModelSpec(model="fake:words", backend_args={"topic_rate": 0.3}),
    ]
    seen = {tuple(base)}
    for spec in variants:
        variant = tuple(keys(spec, section, tmp_path))
        assert variant not in seen and not set(variant) & set(base)
        seen.add(variant)


def test_cache_keys_hold_every_sampling_parameter(tmp_path):
    spec = ModelSpec(model="fake:words")
    base = keys(spec, GenerateConfig(seed=0), tmp_path)
    for change in ({"temperature": 0.7}, {"top_p": 0.9}, {"max_new_tokens": 8}, {"seed": 1}):
        assert set(keys(spec, GenerateConfig(**{"seed": 0, **change}), tmp_path)).isdisjoint(base)
    assert keys(spec, GenerateConfig(seed=0, batch_size=3), tmp_path) == base  # cannot change outputs


def test_changed_weights_change_the_identity(tmp_path):
    from conftest import build_tiny_model

    one = build_tiny_model(tmp_path / "one", seed=0)
    two = build_tiny_model(tmp_path / "two", seed=1)
    first = generator_identity(ModelSpec(model=str(one)), "cpu", tmp_path)
    second = generator_identity(ModelSpec(model=str(two)), "cpu", tmp_path)
    assert first["weights"] != second["weights"]


def test_embedder_identity_tracks_normalisation(tmp_path):
    on = embedder_identity(EmbedConfig(model="fake:hashing"), tmp_path)
    off = embedder_identity(EmbedConfig(model="fake:hashing", normalize=False), tmp_path)
    assert on != off


def test_a_hub_model_not_downloaded_yet_is_named_by_its_commit(tmp_path, monkeypatch):
    """So the identity does not change once the first run has downloaded it (a resume reuses answers)."""
    import types

    import huggingface_hub

    from lmdelta.backends.registry import ModelRef, model_weights_id, pinned_revision

    class FakeApi:
        def model_info(self, repo_id, revision=None, timeout=None):
            return types.SimpleNamespace(sha="0123abcd" if revision in (None, "main") else "feedbeef")

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    ref = ModelRef("hub", "org/not-cached-model")
    assert model_weights_id(ref, None, tmp_path) == "commit:0123abcd"
    assert model_weights_id(ref, "v2", tmp_path) == "commit:feedbeef"
    assert pinned_revision({"weights": "commit:feedbeef"}, "v2") == "feedbeef"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert model_weights_id(ref, "v2", tmp_path) == "revision:v2"
