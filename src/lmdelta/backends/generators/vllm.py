"""Generation with vLLM in this process (`vllm:` models; `pip install 'lmdelta[vllm]'`, CUDA only).

vLLM is imported when a generator is built, never at import time. Prompts are formatted with the
engine's own tokenizer by the same code as the transformers backend (`textformat`) and handed
over as token ids, so both backends feed the model the same input. Each request gets its own
SamplingParams with its own seed, so the sampling noise of an answer does not depend on which
prompts share its batch. Two caveats: vLLM's kernels are not batch-invariant by default, so the
logits (and rarely a sampled token) can differ slightly with the batch; and the sampled values
differ from the transformers backend's, because the two samplers draw differently.

Two-stage reasoning follows the transformers backend (`reasoning`): thinking runs up to
`reasoning.max_tokens`, stopped at `reasoning.end`; the thinking's own token ids through the
model's marker (or plus the encoded marker, when it wrote none) are appended to the prompt ids,
never a re-tokenised decode, and the answer is decoded from there with the answer-stage seed.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from lmdelta.backends.generators.reasoning import answer_seed, close_thinking
from lmdelta.backends.protocols import FinishReason, Generation, GenerationRequest, SamplingSettings
from lmdelta.backends.registry import pinned_revision
from lmdelta.backends.textformat import continuation_ids, encode_prompt, eos_ids, split_reasoning, use_chat_template
from lmdelta.config import ModelSpec
from lmdelta.errors import ConfigError, DependencyError

log = logging.getLogger(__name__)
SEED_MODULUS = 2**31
# Engine arguments that config fields set; backend_args may not override them.
RESERVED_ARGS = ("model", "revision", "tokenizer_revision", "trust_remote_code", "dtype", "seed", "quantization")


def import_vllm(model: str) -> Any:
    """The vllm module, or a DependencyError that says how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise DependencyError(
            f"{model}: in-process generation (vllm:) needs vLLM, which cannot be imported ({exc}).",
            "pip install 'lmdelta[vllm]' on a machine with a CUDA GPU, or generate with transformers: drop the "
            "vllm: prefix, or set the side's backend: transformers.",
        ) from None
    return vllm


def engine_args(spec: ModelSpec, folder: str, identity: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for vllm.LLM: the config's fields, then the side's backend_args."""
    clash = sorted(set(spec.backend_args) & set(RESERVED_ARGS))
    if clash:
        raise ConfigError(
            f"backend_args of {spec.model} set {', '.join(clash)}, which lmdelta sets from the config.",
            "Use the side's own fields instead (revision, trust_remote_code, dtype, quantization).",
        )
    revision = pinned_revision(identity, spec.revision)
    args: dict[str, Any] = {
        "model": folder,
        "revision": revision,
        "tokenizer_revision": revision,
        "trust_remote_code": spec.trust_remote_code,
        "dtype": identity["dtype"],
        "seed": 0,
    }
    if spec.quantization == "8bit":
        raise ConfigError(
            f"{spec.model}: vLLM quantizes with bitsandbytes on load in 4-bit only.",
            "Use quantization: 4bit with vllm:, or drop the vllm: prefix for 8-bit with transformers.",
        )
    if spec.quantization == "4bit":
        args["quantization"] = "bitsandbytes"  # in-flight NF4; pre-quantized checkpoints are detected by vLLM
    return {**args, **spec.backend_args}


def vllm_seed(seed: int) -> int:
    """A request seed as a non-negative 31-bit int."""
    return seed % SEED_MODULUS


class VLLMGenerator:
    """Answers batches with a vllm.LLM engine, one seeded SamplingParams per request."""

    def __init__(self, spec: ModelSpec, folder: str, identity: dict[str, Any]) -> None:
        vllm = import_vllm(spec.model)
        if spec.adapter:
            raise ConfigError(
                f"{spec.model}: adapters are not supported with vllm: models.",
                "Merge the adapter into a copy of the model and point vllm: at that folder, or drop "
                "the vllm: prefix to apply it with transformers.",
            )
        self.identity = identity
        self.spec = spec
        self._vllm = vllm
        self.llm = vllm.LLM(**engine_args(spec, folder, identity))
        self.tokenizer = self.llm.get_tokenizer()
        self.use_chat = use_chat_template(spec, self.tokenizer)
        self.eos_ids = eos_ids(generation_config(folder, spec), self.tokenizer)
        end = spec.reasoning.end  # None when reasoning is off
        self.end_ids = self._ids(end) if end is not None else []
        self._encoded: dict[str, list[int]] = {}

    def _ids(self, text: str) -> list[int]:
        return continuation_ids(self.tokenizer, text)

    def encode(self, prompt: str) -> list[int]:
        """The prompt's token ids (chat template, system prompt, reasoning start), memoised."""
        if prompt not in self._encoded:
            self._encoded[prompt] = encode_prompt(self.spec, self.tokenizer, prompt, self.use_chat)
        return self._encoded[prompt]

    def prompt_length(self, request: GenerationRequest) -> int:
        return len(self.encode(request.prompt))

    def generate(self, requests: list[GenerationRequest], settings: SamplingSettings) -> list[Generation]:
        """One Generation per request, in order."""
        if not requests:
            return []
        end = self.spec.reasoning.end
        if end is not None:  # reasoning is enabled
            return self._two_stage(requests, settings, end)
        outputs = self._run(
            [self.encode(r.prompt) for r in requests],
            [self._params(r.seed, settings, settings.max_new_tokens) for r in requests],
        )
        return [self._finish(output) for output in outputs]

    def _two_stage(self, requests: list[GenerationRequest], settings: SamplingSettings, end: str) -> list[Generation]:
        """Think (stopped at the end marker or the budget), close the thinking with the marker, then
        answer from prompt ids + thinking ids, with the answer seed of the transformers backend."""
        heads = [self.encode(r.prompt) for r in requests]
        reasoning = self.spec.reasoning
        thoughts = self._run(
            heads, [self._params(r.seed, settings, reasoning.max_tokens, thinking=True) for r in requests]
        )
        closed = [close_thinking(self, list(output.token_ids), end) for output in thoughts]
        thinking = [ids for ids, _ in closed]
        answers = self._run(
            [head + ids for head, ids in zip(heads, thinking)],
            [self._params(answer_seed(r.seed), settings, settings.max_new_tokens) for r in requests],
        )
        out = []
        for (ids, by_model), output in zip(closed, answers):
            answer = self._finish(output)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            thought, _ = split_reasoning(text, reasoning.start, end)
            out.append(
                Generation(
                    text=answer.text,
                    n_tokens=answer.n_tokens,
                    finish_reason=answer.finish_reason,
                    reasoning=thought,
                    reasoning_tokens=len(ids),
                    reasoning_closed=by_model,
                )
            )
        return out

    def _params(self, seed: int, settings: SamplingSettings, max_tokens: int, thinking: bool = False) -> Any:
        """Sampling for one request: its own seed; greedy at temperature 0. The thinking stage also
        stops at the end marker (as a string, and as a token when it is one token), and keeps
        special tokens in its text so a special-token marker can match."""
        greedy = settings.temperature == 0
        options: dict[str, Any] = {
            "temperature": settings.temperature,
            "top_p": 1.0 if greedy else settings.top_p,
            "max_tokens": max_tokens,
            "seed": vllm_seed(seed),
            "stop_token_ids": list(self.eos_ids),
        }
        if thinking:
            options["stop"] = [self.spec.reasoning.end]
            options["skip_special_tokens"] = False
            if len(self.end_ids) == 1:
                options["stop_token_ids"] = options["stop_token_ids"] + self.end_ids
        return self._vllm.SamplingParams(**options)

    def _run(self, prompts: list[list[int]], params: list[Any]) -> list[Any]:
        """The first completion of each prompt, in order."""
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompts], params, use_tqdm=False)
        return [output.outputs[0] for output in outputs]

    def _cut_eos(self, ids: list[int]) -> tuple[list[int], bool]:
        """Tokens before the first end-of-sequence token, and whether there was one."""
        stop = next((i for i, token in enumerate(ids) if token in self.eos_ids), None)
        return (ids, False) if stop is None else (ids[:stop], True)

    def _finish(self, output: Any) -> Generation:
        """A Generation from a completion, decoded the way the transformers backend decodes."""
        kept, stopped = self._cut_eos(list(output.token_ids))
        reason: FinishReason = "length" if output.finish_reason == "length" and not stopped else "stop"
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return Generation(text=text, n_tokens=len(kept), finish_reason=reason)

    def close(self) -> None:
        """Shut the engine down and give its GPU memory back, so the other side's model fits."""
        llm, self.llm = self.llm, None
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm
        _release_gpu()


def _release_gpu() -> None:
    """Best effort: vLLM keeps some distributed state and cached blocks after its engine is gone."""
    gc.collect()
    try:
        from vllm.distributed import destroy_distributed_environment, destroy_model_parallel

        destroy_model_parallel()
        destroy_distributed_environment()
    except Exception as exc:  # absent in some versions, or already torn down
        log.debug("vLLM teardown skipped: %s", exc)
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def generation_config(folder: str, spec: ModelSpec) -> Any:
    """The model folder's generation config (which names its stop tokens), or None without one."""
    try:
        from transformers import GenerationConfig

        # transformers annotates revision as str, but None (its default branch) is accepted
        return GenerationConfig.from_pretrained(folder, revision=spec.revision)  # type: ignore[arg-type]
    except Exception as exc:  # no generation_config.json, or a Hub id not in the cache
        log.debug("no generation config for %s (%s); using the tokenizer's eos", folder, type(exc).__name__)
        return None
