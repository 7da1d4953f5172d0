"""Which backend runs a side loaded in this process (`backend: auto | transformers | vllm`): vLLM by default on
a CUDA machine where it is installed and can run the side, transformers elsewhere; the identity records the
backend that ran. CUDA and vLLM are simulated here (the factory's device and import checks are replaced); the
real pairing runs in a gpu-marked test."""

from __future__ import annotations

import pytest
from test_gen_vllm import IDENTITY, engine  # noqa: F401  (engine is a fixture: a fake vllm module)

from lmdelta.backends import factory
from lmdelta.backends.registry import parse_model
from lmdelta.config import ModelSpec
from lmdelta.errors import ConfigError, DependencyError


@pytest.fixture
def cuda_with_vllm(monkeypatch):
    """A machine with a CUDA device where vLLM is installed."""
    monkeypatch.setattr(factory, "resolve_device", lambda device: "cuda" if device == "auto" else device)
    monkeypatch.setattr(
        factory, "importable", lambda module: module == "vllm" or factory.importlib.util.find_spec(module) is not None
    )


def backend(spec: ModelSpec, device: str = "auto") -> str:
    return factory.generator_backend(spec, parse_model(spec.model, "generator"), device)


def test_auto_is_transformers_without_a_gpu(tiny_model):
    assert backend(ModelSpec(model=str(tiny_model)), "cpu") == "hf"


def test_auto_is_vllm_on_cuda_where_vllm_is_installed(cuda_with_vllm, tiny_model):
    assert backend(ModelSpec(model=str(tiny_model))) == "vllm"
    assert backend(ModelSpec(model="embedded:smollm2-135m-instruct")) == "vllm"


def test_auto_is_transformers_on_cuda_without_vllm(monkeypatch, tiny_model):
    monkeypatch.setattr(factory, "resolve_device", lambda device: "cuda")
    monkeypatch.setattr(factory, "importable", lambda module: module != "vllm")
    assert backend(ModelSpec(model=str(tiny_model))) == "hf"


@pytest.mark.parametrize(
    "settings", [{"adapter": "some/adapter"}, {"quantization": "8bit"}, {"backend": "transformers"}]
)
def test_auto_keeps_transformers_for_what_vllm_cannot_run(cuda_with_vllm, tiny_model, settings):
    assert backend(ModelSpec(model=str(tiny_model), **settings)) == "hf"


def test_prefixes_decide_whatever_the_backend_field(cuda_with_vllm, tiny_model):
    assert backend(ModelSpec(model=f"vllm:{tiny_model}", backend="transformers")) == "vllm"
    assert backend(ModelSpec(model="fake:words")) == "fake"


def test_backend_vllm_with_an_adapter_or_8bit_is_refused(cuda_with_vllm, tiny_model):
    with pytest.raises(ConfigError, match="cannot apply the adapter") as err:
        backend(ModelSpec(model=str(tiny_model), backend="vllm", adapter="x"))
    assert "backend: transformers" in err.value.fix
    with pytest.raises(ConfigError, match="4-bit only"):
        backend(ModelSpec(model=str(tiny_model), backend="vllm", quantization="8bit"))


def test_backend_vllm_without_vllm_says_how_to_install_it(monkeypatch, tiny_model):
    monkeypatch.setattr(factory, "importable", lambda module: module != "vllm")
    with pytest.raises(DependencyError, match="vLLM is not installed") as err:
        backend(ModelSpec(model=str(tiny_model), backend="vllm"))
    assert "lmdelta[vllm]" in err.value.fix


def test_backend_vllm_on_cpu_is_refused_before_loading(monkeypatch, tiny_model, isolated_cache):
    monkeypatch.setattr(factory, "importable", lambda module: True)
    with pytest.raises(DependencyError, match="vLLM needs a CUDA GPU") as err:
        factory.generator_identity(ModelSpec(model=str(tiny_model), backend="vllm"), "cpu", isolated_cache)
    assert "backend: auto or transformers" in err.value.fix


def test_the_identity_names_the_backend_that_runs(tiny_model, isolated_cache):
    spec = ModelSpec(model=str(tiny_model))
    on_cpu = factory.generator_identity(spec, "cpu", isolated_cache)
    assert on_cpu["backend"] == "hf"
    # The field itself is volatile: `transformers` written out names the same answers as `auto` on this machine.
    assert (
        factory.generator_identity(spec.model_copy(update={"backend": "transformers"}), "cpu", isolated_cache) == on_cpu
    )
    assert "backend" not in spec.result_fields()


def test_an_auto_vllm_identity_builds_the_vllm_generator(engine, tiny_model, isolated_cache):  # noqa: F811
    from lmdelta.backends.generators.vllm import VLLMGenerator

    spec = ModelSpec(model=str(tiny_model), backend_args={"tensor_parallel_size": 2})
    generator = factory.build_generator(spec, dict(IDENTITY), "cuda", isolated_cache)
    assert isinstance(generator, VLLMGenerator)
    assert engine.kwargs["model"] == str(tiny_model) and engine.kwargs["tensor_parallel_size"] == 2  # passed through
    generator.close()


def test_log_likelihood_scoring_of_an_auto_vllm_side_uses_transformers(tiny_model, isolated_cache):
    from lmdelta.backends.generators.hf import HFGenerator

    spec = ModelSpec(model=str(tiny_model), dtype="float32")
    scorer = factory.build_loglik_generator(spec, {"backend": "vllm", "dtype": "float32"}, "cpu", isolated_cache)
    try:
        assert isinstance(scorer, HFGenerator)
    finally:
        scorer.close()


@pytest.mark.gpu
def test_auto_runs_vllm_on_a_real_gpu(tmp_path, isolated_cache):
    from test_gen_vllm import GPU_ARGS, SETTINGS, gpu_tiny_model, requests

    from lmdelta.backends.generators.vllm import VLLMGenerator

    spec = ModelSpec(model=str(gpu_tiny_model(tmp_path)), backend_args=GPU_ARGS)
    identity = factory.generator_identity(spec, "auto", isolated_cache)
    assert identity["backend"] == "vllm"
    generator = factory.build_generator(spec, identity, "auto", isolated_cache)
    try:
        assert isinstance(generator, VLLMGenerator)
        answers = generator.generate(requests("how do tides work"), SETTINGS)
    finally:
        generator.close()
    assert len(answers) == 1 and answers[0].n_tokens > 0
