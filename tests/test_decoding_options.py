"""Loading options of the transformers backend: quantization, revisions, remote code."""

import json
import shutil
import sys
import types

import pytest

from lmdelta.backends.factory import build_generator, generator_identity
from lmdelta.config import ModelSpec, validate_config
from lmdelta.errors import ConfigError, DependencyError, ModelNotFoundError


@pytest.mark.parametrize("level", ["8bit", "4bit"])
def test_quantization_on_cpu_is_refused_before_loading(tiny_model, tmp_path, level):
    spec = ModelSpec(model=str(tiny_model), quantization=level)
    with pytest.raises(DependencyError, match="needs a CUDA GPU") as caught:
        generator_identity(spec, "cpu", tmp_path)
    assert "quantization: none" in caught.value.fix


def test_vllm_on_cpu_is_refused_before_loading(tiny_model, tmp_path):
    with pytest.raises(DependencyError, match="vLLM needs a CUDA GPU"):
        generator_identity(ModelSpec(model=f"vllm:{tiny_model}"), "cpu", tmp_path)


def test_quantization_cannot_be_combined_with_a_float_dtype():
    with pytest.raises(ConfigError, match="quantization"):
        validate_config({"generate": {"b": {"quantization": "4bit", "dtype": "float32"}}})


def test_bitsandbytes_settings_match_the_reference(monkeypatch):
    import torch

    from lmdelta.backends.generators.hf_load import quantization_config

    monkeypatch.setitem(sys.modules, "bitsandbytes", types.ModuleType("bitsandbytes"))
    try:
        four = quantization_config("4bit")
        eight = quantization_config("8bit")
    except ImportError as exc:  # some transformers versions check the real package's version
        pytest.skip(f"BitsAndBytesConfig needs the real bitsandbytes here: {exc}")
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_compute_dtype == torch.bfloat16
    assert eight.load_in_8bit and eight.llm_int8_threshold == 6.0 and not eight.llm_int8_has_fp16_weight


def test_missing_bitsandbytes_names_the_extra(monkeypatch):
    from lmdelta.backends.generators.hf_load import quantization_config

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import raises ImportError
    with pytest.raises(DependencyError, match="bitsandbytes") as caught:
        quantization_config("4bit")
    assert "lmdelta[quant]" in caught.value.fix


def test_quantization_is_in_the_identity_only_when_used(tiny_model, tmp_path, monkeypatch):
    import lmdelta.backends.factory as factory

    monkeypatch.setattr(factory, "resolve_device", lambda device: "cuda")
    plain = generator_identity(ModelSpec(model=str(tiny_model)), "cuda", tmp_path)
    four = generator_identity(ModelSpec(model=str(tiny_model), quantization="4bit"), "cuda", tmp_path)
    assert "quantization" not in plain
    assert four["quantization"] == "4bit" and four["dtype"] == "bfloat16"


def test_revision_and_remote_code_reach_from_pretrained(tiny_model, tmp_path, monkeypatch):
    import transformers

    seen = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def recording(folder, **kwargs):
        seen.update(kwargs)
        kwargs.pop("revision", None)
        return real(folder, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", recording)
    spec = ModelSpec(model=str(tiny_model), revision="main", dtype="float32")
    build_generator(spec, generator_identity(spec, "cpu", tmp_path), "cpu", tmp_path)
    assert seen["revision"] == "main" and seen["trust_remote_code"] is False


def test_a_model_with_its_own_code_needs_trust_remote_code(tiny_model, tmp_path):
    custom = tmp_path / "custom"
    shutil.copytree(tiny_model, custom)
    config = json.loads((custom / "config.json").read_text())
    config["model_type"] = "my-custom-llama"
    config["auto_map"] = {
        "AutoConfig": "configuration_custom.CustomConfig",
        "AutoModelForCausalLM": "modeling_custom.CustomModel",
    }
    (custom / "config.json").write_text(json.dumps(config))
    (custom / "configuration_custom.py").write_text("raise RuntimeError('remote code ran')\n")
    spec = ModelSpec(model=str(custom), dtype="float32")
    with pytest.raises(ModelNotFoundError, match="ships its own Python code") as caught:
        build_generator(spec, generator_identity(spec, "cpu", tmp_path), "cpu", tmp_path)
    assert "trust_remote_code: true" in caught.value.fix
