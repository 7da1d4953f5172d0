"""Loading a transformers model for generation: dtype or bitsandbytes quantization, revision,
remote code (off unless asked for), a PEFT adapter, and a bare generation config."""

from __future__ import annotations

from typing import Any

from lmdelta.backends.registry import pinned_revision
from lmdelta.backends.textformat import eos_ids, pad_id
from lmdelta.config import ModelSpec
from lmdelta.errors import DependencyError, ModelNotFoundError

REMOTE_CODE_HINTS = ("trust_remote_code", "custom code")


def load_model(spec: ModelSpec, folder: str, identity: dict[str, Any], device: str) -> tuple[Any, Any]:
    """(tokenizer, model) ready to generate: left padding, eval mode, on `device`."""
    from transformers import AutoModelForCausalLM

    options = _options(spec, identity)
    tokenizer = load_tokenizer(spec, folder, identity)
    weights = weight_options(spec, identity, device)
    model = _remote_code_guard(spec, lambda: AutoModelForCausalLM.from_pretrained(folder, **options, **weights))
    if spec.adapter:
        model = with_adapter(model, spec.adapter, merge=spec.quantization == "none")
    if spec.quantization == "none":
        model = model.to(device)
    model.eval()
    bare_generation_config(model, tokenizer)
    return tokenizer, model


def load_tokenizer(spec: ModelSpec, folder: str, identity: dict[str, Any]) -> Any:
    """The side's tokenizer, padding on the left."""
    from transformers import AutoTokenizer

    options = _options(spec, identity)
    tokenizer = _remote_code_guard(spec, lambda: AutoTokenizer.from_pretrained(folder, **options))
    tokenizer.padding_side = "left"
    return tokenizer


def _options(spec: ModelSpec, identity: dict[str, Any]) -> dict[str, Any]:
    return {"revision": pinned_revision(identity, spec.revision), "trust_remote_code": spec.trust_remote_code}


def bare_generation_config(model: Any, tokenizer: Any) -> tuple[list[int], int]:
    """Replace the model's generation config by one that holds only its stop and padding tokens, and
    return those: the model's own defaults (repetition penalty, top-k…) must not change answers
    behind the request's back, because every sampling parameter is explicit and part of the cache key."""
    from transformers import GenerationConfig

    stops = eos_ids(model.generation_config, tokenizer)
    pad = pad_id(tokenizer, stops)
    model.generation_config = GenerationConfig(eos_token_id=stops, pad_token_id=pad)
    return stops, pad


def weight_options(spec: ModelSpec, identity: dict[str, Any], device: str) -> dict[str, Any]:
    """from_pretrained arguments for the weights: a dtype, or a bitsandbytes config on one GPU."""
    import torch

    dtype = getattr(torch, identity["dtype"])
    if spec.quantization == "none":
        return {"dtype": dtype}
    return {"dtype": dtype, "quantization_config": quantization_config(spec.quantization), "device_map": {"": device}}


def quantization_config(level: str) -> Any:
    """The reference's settings: NF4 with bf16 compute for 4-bit; LLM.int8 (threshold 6.0) for 8-bit."""
    import torch

    try:
        import bitsandbytes  # noqa: F401  (transformers needs it installed; fail here with a clear fix)
    except ImportError:
        raise DependencyError(
            f"{level} quantization needs the package bitsandbytes.",
            "Install it on a CUDA machine with `pip install 'lmdelta[quant]'`.",
        ) from None
    from transformers import BitsAndBytesConfig

    if level == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0, llm_int8_has_fp16_weight=False)


def _remote_code_guard(spec: ModelSpec, load):
    """transformers refuses models that ship their own code unless trust_remote_code is on: say how."""
    try:
        return load()
    except ValueError as exc:
        if spec.trust_remote_code or not any(hint in str(exc) for hint in REMOTE_CODE_HINTS):
            raise
        raise ModelNotFoundError(
            f"{spec.model} ships its own Python code, and trust_remote_code is off.",
            "Read that code first; if you trust it, set trust_remote_code: true for this side "
            "(and pin revision to the commit you read).",
        ) from None


def with_adapter(model: Any, adapter: str, merge: bool = True) -> Any:
    try:
        from peft import PeftModel
    except ImportError:
        raise DependencyError(
            "Loading an adapter needs the package peft.", "Install it with `pip install 'lmdelta[finetune]'`."
        ) from None
    model = PeftModel.from_pretrained(model, adapter)
    return model.merge_and_unload() if merge else model
