"""Config sections for one side's model: what it is, how prompts are formatted for it, and how
it decodes (dtype, quantization, two-stage reasoning)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lmdelta.config.base import DEFAULT_LM, VOLATILE, Section


class ReasoningConfig(Section):
    end: str | None = None
    (
        'The marker that closes a reasoning model\'s thinking, e.g. "</think>". Setting it turns on two-stage '
        "decoding: think, force the marker, then answer."
    )
    start: str | None = None
    (
        'Text appended after the formatted prompt to open thinking, e.g. "<think>\\n" (unset when the chat template '
        "opens it itself)."
    )
    max_tokens: int = Field(default=512, ge=1)
    """Thinking budget in tokens; thinking still open then is closed with `end`."""

    @property
    def enabled(self) -> bool:
        return self.end is not None


class ModelSpec(Section):
    model: str = DEFAULT_LM
    (
        "`embedded:smollm2-135m-instruct`, a local folder, a Hugging Face id, `vllm:ID_OR_FOLDER` (in-process vLLM), "
        "`api:PROVIDER/MODEL` or `openai-compatible/MODEL@URL` (a served model), or `fake:NAME` for tests."
    )
    backend: Literal["auto", "transformers", "vllm"] = Field(default="auto", json_schema_extra=VOLATILE)
    (
        "Who runs a model loaded in this process (a folder, a Hugging Face id, `embedded:`): `auto` picks vLLM on a "
        "CUDA machine where vLLM is installed and can run the side as configured (no adapter, no 8-bit), else "
        "transformers. The model identity records the backend that ran, so answers are never mixed across backends."
    )
    label: str | None = None
    """Human name for this side in reports (default: the side, `a` or `b`)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) for Hugging Face ids."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype; `auto` picks bfloat16 where the hardware runs it fast, else float32."""
    quantization: Literal["none", "8bit", "4bit"] = "none"
    """Load the weights quantized with bitsandbytes (LLM.int8 or NF4 with bf16 compute); needs a CUDA GPU."""
    system_prompt: str | None = None
    """System message for this side (chat template) or text prefix (no template)."""
    chat_template: bool | None = None
    """Wrap prompts in the tokenizer's chat template (default: when the tokenizer has one)."""
    reasoning: ReasoningConfig = Field(default_factory=ReasoningConfig)
    (
        "Two-stage decoding for reasoning models; the reasoning is kept in the run directory and left out of the "
        "analysis."
    )
    adapter: str | None = None
    """A PEFT adapter folder applied on top of the model."""
    trust_remote_code: bool = False
    """Allow model code from the Hub to run. Off unless you trust the repository."""
    backend_args: dict[str, Any] = Field(default_factory=dict)
    """Backend-specific options passed through unchanged (e.g. vLLM engine arguments, API extra fields)."""

    @model_validator(mode="after")
    def _quantized_weights_are_loaded_once(self) -> ModelSpec:
        if self.quantization != "none" and self.dtype in ("float32", "float16"):
            raise ValueError(f"quantization {self.quantization} computes in bfloat16; leave dtype at auto or bfloat16")
        return self
