"""An offline assistant model: a local transformers causal LM with a chat template (default the
embedded SmolLM2). Concurrent `complete` calls are gathered for a few milliseconds and run as one
generate() in a worker thread; `generate_batch` is the list-in, list-out interface (STYLE rule 8).
Messages become token ids as generation and finetuning make them (`backends.textformat`), and each
row samples with its own seed as generation does (`backends.generators.sampling`): the LLM layer
builds on backends, never the reverse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lmdelta.backends.device import resolve_device, resolve_dtype
from lmdelta.backends.embedded import cache_root
from lmdelta.backends.generators.hf_load import bare_generation_config
from lmdelta.backends.generators.sampling import SeededSampler
from lmdelta.backends.protocols import SamplingSettings
from lmdelta.backends.registry import check_available, model_folder, model_weights_id, parse_model
from lmdelta.backends.textformat import chat_text, encode, has_chat_template, left_pad
from lmdelta.errors import ConfigError, LmdeltaError
from lmdelta.hashing import hash_data
from lmdelta.llm.providers.gather import Gatherer
from lmdelta.llm.providers.registry import DEFAULT_LOCAL_MODEL
from lmdelta.llm.types import ChatRequest, ChatResponse, ErrorKind, ProviderError, Usage

log = logging.getLogger(__name__)


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    device: str
    eos_ids: list[int]
    pad_id: int
    token_text: dict[int, str] = field(default_factory=dict)  # decode() of single ids, memoised

    def text_of(self, token_id: int) -> str:
        if token_id not in self.token_text:
            self.token_text[token_id] = self.tokenizer.decode([token_id])
        return self.token_text[token_id]


class LocalChat:
    """A chat model in this process. Greedy when temperature is 0, else sampled per request seed."""

    OPTIONS: tuple[str, ...] = ("device", "dtype", "batch_window_ms", "max_batch", "cache_dir", "revision")
    name = "local"

    def __init__(
        self,
        model: str = DEFAULT_LOCAL_MODEL,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_window_ms: float = 5.0,
        max_batch: int = 16,
        cache_dir: str | None = None,
        revision: str | None = None,
    ) -> None:
        self._ref = parse_model(model, "generator")
        if self._ref.kind == "fake":
            raise ConfigError(
                f"local/{model} names a fake generator, not a chat model.",
                f"Use local/{DEFAULT_LOCAL_MODEL}, a model folder, or the fake provider.",
            )
        check_available(self._ref, revision)
        self.model = str(self._ref)
        self._revision = revision
        self._cache = cache_root(cache_dir)
        self._device_setting, self._dtype_setting = device, dtype
        self._executor: ThreadPoolExecutor | None = None  # one worker: generate() calls run one at a time
        window, size = max(0.0, float(batch_window_ms)) / 1000, max(1, int(max_batch))
        self._gatherer = Gatherer(self._send, window=window, size=size, parallel=1, error=self._error)
        self._loaded: _Loaded | None = None
        self._weights: str | None = None
        self.generate_calls = 0  # how many generate() calls ran: batching is visible in tests and logs

    def identity(self) -> dict[str, Any]:
        if self._weights is None:
            self._weights = model_weights_id(self._ref, self._revision, self._cache)
        return {
            "provider": self.name,
            "model": self.model,
            "base_url": None,
            "weights": self._weights,
            "revision": self._revision,
            "dtype": resolve_dtype(self._dtype_setting, resolve_device(self._device_setting)),
        }

    def __repr__(self) -> str:
        return f"LocalChat(model={self.model!r})"

    # ---- async: gather concurrent requests into batches ----

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await self._gatherer.submit(request)

    async def _send(self, batch: list[ChatRequest]) -> list[ChatResponse]:
        return await asyncio.get_running_loop().run_in_executor(self._worker(), self.generate_batch, batch)

    def _error(self, exc: Exception) -> ProviderError:
        return provider_error(self.model, exc)

    async def aclose(self) -> None:
        self._gatherer.close(ProviderError("unknown", f"local {self.model}: closed before answering"))
        # The worker thread ends; the loaded model stays, because `llm.client` closes providers at
        # the end of each event loop and calls them again from the next one.
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmdelta-local-chat")
        return self._executor

    # ---- sync: list of requests in, list of replies out ----

    def generate_batch(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        """One generate() per group of requests that share temperature and top_p."""
        loaded = self.load()
        groups: dict[tuple[float, float], list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(_sampling(request), []).append(i)
        replies: list[ChatResponse | None] = [None] * len(requests)
        for (temperature, top_p), rows in groups.items():
            group = [requests[i] for i in rows]
            for i, reply in zip(rows, self._generate(loaded, group, temperature, top_p)):
                replies[i] = reply
        return replies  # type: ignore[return-value]

    def load(self) -> _Loaded:
        """Load the model (first call only); `complete` does it in the worker thread."""
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> _Loaded:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = model_folder(self._ref, self._revision, self._cache)
        device = resolve_device(self._device_setting)
        dtype = resolve_dtype(self._dtype_setting, device)
        tokenizer = AutoTokenizer.from_pretrained(folder, revision=self._revision)
        if not has_chat_template(tokenizer):
            raise ConfigError(
                f"{self.model} has no chat template, so it cannot take chat messages.",
                "Use an instruct/chat model folder (its tokenizer_config.json has a chat_template).",
            )
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(folder, revision=self._revision, dtype=getattr(torch, dtype))
        model = model.to(device).eval()  # type: ignore[arg-type]  # transformers types the wrapped `to` unbound
        eos, pad = bare_generation_config(model, tokenizer)  # only the request decides how to sample
        log.info("loaded local chat model %s on %s (%s)", self.model, device, dtype)
        return _Loaded(model, tokenizer, device, eos, pad)

    def _generate(
        self, loaded: _Loaded, requests: list[ChatRequest], temperature: float, top_p: float
    ) -> list[ChatResponse]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        encoded = [_encode(loaded.tokenizer, r) for r in requests]
        input_ids, attention = _tensors(encoded, loaded.pad_id, loaded.device)
        limit = max(r.max_tokens for r in requests)
        top_k = max((r.logprobs for r in requests if r.logprobs is not None), default=None)
        recorder = _LogprobRecorder(top_k) if top_k is not None else None
        sampler = SeededSampler([_seed(r) for r in requests], SamplingSettings(limit, temperature, top_p))
        processors = [recorder.before, sampler, recorder.after] if recorder else [sampler]
        config = GenerationConfig(
            max_new_tokens=limit, do_sample=False, num_beams=1, eos_token_id=loaded.eos_ids, pad_token_id=loaded.pad_id
        )
        with torch.inference_mode():
            out = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=config,
                logits_processor=LogitsProcessorList(processors),
            )
        self.generate_calls += 1
        rows = out[:, input_ids.shape[1] :].tolist()
        steps = recorder.rows() if recorder else [None] * len(requests)
        return [
            _finish(loaded, request, row, len(ids), step)
            for request, row, ids, step in zip(requests, rows, encoded, steps)
        ]


class _LogprobRecorder:
    """Two logits processors around the sampler: `before` sees the model's raw scores, `after`
    sees which token was picked. Keeps only top-k per step, never the whole vocabulary."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._logprobs = None
        self.top: list[tuple[Any, Any]] = []  # per step: (values, ids), each (batch, k)
        self.chosen: list[tuple[Any, Any]] = []  # per step: (ids, logprobs), each (batch,)

    def before(self, input_ids, scores):
        self._logprobs = scores.float().log_softmax(dim=-1)
        if self.k:
            self.top.append(self._logprobs.topk(self.k, dim=-1))
        return scores

    def after(self, input_ids, scores):
        picked = scores.argmax(dim=-1)  # the sampler leaves a one-hot; greedy leaves the raw scores
        self.chosen.append((picked, self._logprobs.gather(1, picked[:, None])[:, 0]))
        return scores

    def rows(self) -> list[list[tuple[list[int], list[float], int, float]]]:
        """Per row, per step: (top ids, top logprobs, chosen id, chosen logprob)."""
        import torch

        if not self.chosen:
            return []
        picked = torch.stack([ids for ids, _ in self.chosen], dim=1).tolist()
        picked_lp = torch.stack([lp for _, lp in self.chosen], dim=1).tolist()
        n_rows, n_steps = len(picked), len(picked[0])
        if self.k:
            top_lp = torch.stack([v for v, _ in self.top], dim=1).tolist()
            top_ids = torch.stack([i for _, i in self.top], dim=1).tolist()
        else:
            top_lp = top_ids = [[[] for _ in range(n_steps)] for _ in range(n_rows)]
        return [
            [(top_ids[r][s], top_lp[r][s], picked[r][s], picked_lp[r][s]) for s in range(n_steps)]
            for r in range(n_rows)
        ]


def provider_error(model: str, exc: Exception) -> ProviderError:
    """A local model's failure as the client's error: out of memory usually passes when the batch is smaller,
    as on a retry it will be."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, LmdeltaError):
        return ProviderError("unknown", f"local {model}: {exc}")
    kind: ErrorKind = "transient" if "OutOfMemory" in type(exc).__name__ else "unknown"
    return ProviderError(kind, f"local {model}: {type(exc).__name__}: {exc}"[:600])


def _sampling(request: ChatRequest) -> tuple[float, float]:
    if request.temperature <= 0:
        return 0.0, 1.0
    return float(request.temperature), float(request.top_p if request.top_p is not None else 1.0)


def _seed(request: ChatRequest) -> int:
    """Each row's own sampling seed, so an answer does not depend on its batch neighbours."""
    basis: Any = [request.seed, request.sample_index] if request.seed is not None else request.to_dict()
    return int(hash_data(basis, 15), 16)


def _encode(tokenizer: Any, request: ChatRequest) -> list[int]:
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    return encode(tokenizer, chat_text(tokenizer, messages), chat=True)


def _tensors(encoded: list[list[int]], pad_id: int, device: str):
    import torch

    ids, mask = left_pad(encoded, pad_id)
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def _finish(loaded: _Loaded, request: ChatRequest, row: list[int], n_prompt: int, steps: list | None) -> ChatResponse:
    limit = request.max_tokens
    end = next((i for i, token in enumerate(row[:limit]) if token in loaded.eos_ids), None)
    kept = row[:end] if end is not None else row[:limit]
    n_out = len(kept) + (1 if end is not None else 0)  # the end-of-turn token was generated too
    reason = "length" if end is None and len(kept) >= limit else "stop"
    text = loaded.tokenizer.decode(kept, skip_special_tokens=True)
    cut = _stop_at(text, request.stop)
    if cut is not None:
        kept = kept[: _tokens_until(loaded.tokenizer, kept, text[:cut])]
        text, n_out, reason = text[:cut], len(kept), "stop"
    logprobs = None
    if request.logprobs is not None and steps is not None:
        logprobs = [_alternatives(loaded, step, request.logprobs) for step in steps[: len(kept)]]
    return ChatResponse(text=text, usage=Usage(n_prompt, n_out), finish_reason=reason, logprobs=logprobs)


def _alternatives(loaded: _Loaded, step: tuple, k: int) -> dict[str, float]:
    top_ids, top_lp, chosen, chosen_lp = step
    alternatives: dict[str, float] = {}
    for token_id, lp in zip(top_ids[:k], top_lp[:k]):
        alternatives.setdefault(loaded.text_of(token_id), float(lp))  # two ids can decode alike: keep the likelier
    alternatives.setdefault(loaded.text_of(chosen), float(chosen_lp))
    return alternatives


def _stop_at(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _tokens_until(tokenizer: Any, tokens: list[int], prefix: str) -> int:
    """The fewest leading tokens whose text reaches past `prefix` into the stop string (binary search)."""
    lo, hi = 0, len(tokens)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tokenizer.decode(tokens[:mid], skip_special_tokens=True)) > len(prefix):
            hi = mid
        else:
            lo = mid + 1
    return lo
