"""Generation with Hugging Face transformers: chat templates, continuous batching, per-item seeds.

Each row samples with its own torch.Generator seeded from (side, prompt, sample index), so an
answer does not depend on which other prompts share its batch (`sampling`). Prompts are formatted
and encoded by `textformat`, as finetuning and the local chat provider encode them. Models with full
attention decode through `continuous` (finished rows refilled, each prompt prefilled once); others,
and stop strings, through transformers' generate() over left-padded batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from lmdelta.backends.generators import continuous
from lmdelta.backends.generators.hf_load import load_model
from lmdelta.backends.generators.reasoning import two_stage
from lmdelta.backends.generators.sampling import SeededSampler
from lmdelta.backends.protocols import FinishReason, Generation, GenerationRequest, SamplingSettings
from lmdelta.backends.textformat import answer_ids, encode_prompt, eos_ids, left_pad, pad_id, use_chat_template
from lmdelta.config import ModelSpec

log = logging.getLogger(__name__)


class HFGenerator:
    def __init__(self, spec: ModelSpec, folder: str, identity: dict[str, Any], device: str) -> None:
        self.identity = identity
        self.spec = spec
        self.device = device
        self.tokenizer, self.model = load_model(spec, folder, identity, device)
        self.eos_ids = eos_ids(self.model.generation_config, self.tokenizer)
        self.pad_id = pad_id(self.tokenizer, self.eos_ids)
        self.use_chat = use_chat_template(spec, self.tokenizer)
        self.continuous = continuous.supported(self.model)
        self.streams = self.continuous and not spec.reasoning.enabled  # the stage hands it the whole side
        self._encoded: dict[str, list[int]] = {}

    def encode(self, prompt: str) -> list[int]:
        if prompt not in self._encoded:
            self._encoded[prompt] = self._encode(prompt)
        return self._encoded[prompt]

    def prompt_length(self, request: GenerationRequest) -> int:
        return len(self.encode(request.prompt))

    def _encode(self, prompt: str) -> list[int]:
        return encode_prompt(self.spec, self.tokenizer, prompt, self.use_chat)

    def generate(self, requests: list[GenerationRequest], settings: SamplingSettings) -> list[Generation]:
        prompts = [self.encode(r.prompt) for r in requests]
        seeds = [r.seed for r in requests]
        if not self.spec.reasoning.enabled:
            return [self._finish(row, settings.max_new_tokens) for row in self._sample(prompts, seeds, settings)]
        return two_stage(self, prompts, seeds, settings)

    def stream(
        self, requests: list[GenerationRequest], settings: SamplingSettings, rows: int | None
    ) -> Iterator[tuple[list[GenerationRequest], list[Generation]]]:
        """Answers to `requests` (in length order, as the stage sorts them) in chunks of about `rows`, as
        they finish, from one continuous batch of `rows` rows (None: as many as `continuous.auto_rows` gives,
        in chunks of its DEFAULT_ROWS). Only where `streams` says the model allows it."""
        decoder = continuous.Decoder(self.model, self.eos_ids, self.pad_id, rows)
        prompts = [self.encode(r.prompt) for r in requests]
        chunk = rows or continuous.DEFAULT_ROWS
        done: list[tuple[GenerationRequest, Generation]] = []
        for i, tokens in decoder.run(prompts, [r.seed for r in requests], settings):
            done.append((requests[i], self._finish(tokens, settings.max_new_tokens)))
            if len(done) >= chunk:
                yield [r for r, _ in done], [g for _, g in done]
                done = []
        if done:
            yield [r for r, _ in done], [g for _, g in done]

    def _sample(
        self,
        prompts: list[list[int]],
        seeds: list[int],
        settings: SamplingSettings,
        stop_strings: list[str] | None = None,
    ) -> list[list[int]]:
        """New token ids for each prompt (up to and including a stop token or string, then padding)."""
        import torch

        if stop_strings is None and self.continuous:
            decoder = continuous.Decoder(self.model, self.eos_ids, self.pad_id, len(prompts))
            answers = dict(decoder.run(prompts, seeds, settings))
            return [answers[i] for i in range(len(prompts))]
        from transformers import GenerationConfig, LogitsProcessorList

        input_ids, attention = self._pad(prompts)
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            stop_strings=stop_strings,
        )
        processors = LogitsProcessorList([SeededSampler(seeds, settings)])
        extra = {"tokenizer": self.tokenizer} if stop_strings else {}
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=config,
                logits_processor=processors,
                **extra,
            )
        return out[:, input_ids.shape[1] :].tolist()

    def _pad(self, encoded: list[list[int]]):
        import torch

        ids, mask = left_pad(encoded, self.pad_id)
        return torch.tensor(ids, device=self.device), torch.tensor(mask, device=self.device)

    def _finish(self, tokens: list[int], limit: int) -> Generation:
        stop = next((i for i, token in enumerate(tokens) if token in self.eos_ids), None)
        kept = tokens if stop is None else tokens[:stop]
        reason: FinishReason = "stop" if stop is not None else "length"
        if stop is None and len(tokens) < limit:
            reason = "stop"  # generate() ended early because every row hit a stop token
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return Generation(text=text, n_tokens=len(kept), finish_reason=reason)

    def loglik(self, pairs: list[tuple[str, str]], batch_size: int = 8) -> list[tuple[float, int]]:
        """(log p(answer | prompt) summed over the answer's tokens, how many tokens) per pair, under this
        side's formatting (chat template, system prompt); the end-of-text token counts as one."""
        out: list[tuple[float, int]] = []
        for start in range(0, len(pairs), batch_size):
            out += self._loglik_batch(pairs[start : start + batch_size])
        return out

    def _loglik_batch(self, pairs: list[tuple[str, str]]) -> list[tuple[float, int]]:
        import torch

        prompts = [self.encode(p) for p, _ in pairs]
        answers = [answer_ids(self.tokenizer, a, self.eos_ids) for _, a in pairs]
        width = max(len(p) + len(a) for p, a in zip(prompts, answers))
        # Right padding keeps positions natural, so no position ids are needed.
        ids = [p + a + [self.pad_id] * (width - len(p) - len(a)) for p, a in zip(prompts, answers)]
        mask = [[1] * (len(p) + len(a)) + [0] * (width - len(p) - len(a)) for p, a in zip(prompts, answers)]
        with torch.inference_mode():
            logits = self.model(
                input_ids=torch.tensor(ids, device=self.device), attention_mask=torch.tensor(mask, device=self.device)
            ).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1).cpu()
        totals = []
        for row, (p, a) in enumerate(zip(prompts, answers)):
            positions = torch.arange(len(p) - 1, len(p) + len(a) - 1)
            targets = torch.tensor(a)
            totals.append((float(logprobs[row, positions, targets].sum()), len(a)))
        return totals

    def close(self) -> None:
        self.model = None
