"""Continuous batching for transformers models, with shared prefills.

The decoder keeps up to `capacity` answers in flight. A finished answer leaves at once and the next
request takes its row, so no row waits for the longest answer of a batch. Prompts are prefilled once
however many answers they get (the k samples of a prompt start from one prefill), and the token prefix
that every prompt shares (a chat template's preamble, a system prompt) is prefilled once per call.

Keys and values live in preallocated per-layer buffers (`Rows`): rows × heads × columns × head size.
A request joins right-aligned at the current column, so every live row writes its next token into the
same column; the columns left of its prompt are masked for it. Rotary position embeddings are applied
before caching, so a row's keys do not care which columns they occupy; positions are passed explicitly.

Each row samples with its own seeded generator, one uniform per token (`sampling.draw`), exactly as the
batched path does, so an answer does not depend on which requests share the rows with it.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lmdelta.backends.generators.sampling import draw
from lmdelta.backends.protocols import SamplingSettings

MASKS = ("sdpa", "eager")  # attention implementations that take an explicit 4-D mask
MIN_PREFIX = 4  # shorter shared prefixes are prefilled with each prompt
# Architectures whose every layer attends causally over all earlier tokens, placed by position ids (rotary or
# learned): `tests/test_continuous.py` checks each against generate() on a tiny random model. Not here: local
# or sliding windows over key columns (GPT-Neo; Mistral and Qwen2 with a window set are caught by their cache
# layers), ALiBi built from a 2-D mask (Falcon-RW), values of another head size than keys (DeepSeek's MLA).
ARCHITECTURES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "olmo2", "granite", "gpt2"})
# Rows in flight when none are asked for (`generate.batch_size: auto`). On a CPU a decode step's matrix products
# read every weight once for all rows, so more rows cost less each: SmolLM2 in float32 on 2 cores takes 4.0 ms a
# row at 32 rows and 2.7 at 128 (docs/benchmarks.md). Elsewhere (GPUs: not measured) the old 32 stays.
DEFAULT_ROWS = 32
CPU_ROWS = 128
CPU_KV_BYTES = 2 << 30  # the keys and values of `auto`'s rows on a CPU (DEFAULT_ROWS rows take what they need)


def auto_rows(model: Any, columns: int) -> int:
    """Rows for a continuous batch whose key and value buffers hold `columns` columns: CPU_ROWS on a CPU where
    their keys and values fit in CPU_KV_BYTES (fewer where not, never under DEFAULT_ROWS), DEFAULT_ROWS elsewhere."""
    if model.device.type != "cpu":
        return DEFAULT_ROWS
    config = model.config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_size = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_row = 2 * config.num_hidden_layers * heads * head_size * columns * next(model.parameters()).element_size()
    return max(DEFAULT_ROWS, min(CPU_ROWS, CPU_KV_BYTES // max(1, per_row)))


def supported(model: Any) -> bool:
    """Whether `model` can run here: a listed architecture, full attention in every layer (no sliding
    windows), an attention implementation that takes an explicit mask, and explicit position ids.
    Others decode through transformers' generate()."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    config = model.config
    if getattr(config, "model_type", None) not in ARCHITECTURES or config._attn_implementation not in MASKS:
        return False
    parameters = inspect.signature(model.forward).parameters
    if "position_ids" not in parameters or not ({"cache", "past_key_values"} & set(parameters)):
        return False
    try:
        layers = DynamicCache(config=config).layers
    except Exception:  # configs the cache cannot read: the generic path
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


@dataclass
class Window:
    """The columns every layer's buffer is read and written at: live rows `[:n]`, columns `[lo, hi)`."""

    n: int = 0
    lo: int = 0
    hi: int = 0


def rows_layer(window: Window, rows: int, columns: int):
    """A transformers cache layer over preallocated buffers, allocated at the first write."""
    from transformers.cache_utils import DynamicLayer

    class Rows(DynamicLayer):
        def __init__(self) -> None:
            super().__init__()
            self.key_buffer: Any = None
            self.value_buffer: Any = None

        def update(self, key_states, value_states, *args, **kwargs):
            if self.key_buffer is None:
                self.allocate(key_states, value_states)
            width = key_states.shape[-2]
            stop = window.hi + width
            self.key_buffer[: window.n, :, window.hi : stop] = key_states
            self.value_buffer[: window.n, :, window.hi : stop] = value_states
            self.keys = self.key_buffer[: window.n, :, window.lo : stop]
            self.values = self.value_buffer[: window.n, :, window.lo : stop]
            return self.keys, self.values

        def allocate(self, keys, values) -> None:
            """Buffers with the heads, head sizes, dtype and device of `keys` and `values`."""
            self.key_buffer = keys.new_zeros((rows, keys.shape[1], columns, keys.shape[3]))
            self.value_buffer = values.new_zeros((rows, values.shape[1], columns, values.shape[3]))
            self.is_initialized = True

        def get_seq_length(self) -> int:
            return window.hi - window.lo

    return Rows()


class Cache:
    """The model's cache object with `Rows` layers, and the moves the decoder makes on them."""

    def __init__(self, model: Any, rows: int, columns: int) -> None:
        from transformers.cache_utils import DynamicCache

        self.window = Window()
        self.columns = columns
        self.cache = DynamicCache(config=model.config)
        self.layers: list[Any] = [rows_layer(self.window, rows, columns) for _ in self.cache.layers]
        self.cache.layers = self.layers

    def allocate_like(self, other: Cache) -> None:
        """Allocate every layer's buffers with the heads, head size, dtype and device of `other`'s."""
        for mine, theirs in zip(self.layers, other.layers):
            if mine.key_buffer is None and theirs.key_buffer is not None:
                mine.allocate(theirs.key_buffer, theirs.value_buffer)

    def buffers(self) -> Iterator[Any]:
        for layer in self.layers:
            if layer.key_buffer is not None:
                yield layer.key_buffer
                yield layer.value_buffer

    def move_rows(self, source: list[int], target: list[int]) -> None:
        """Copy rows `source` onto rows `target` (columns [lo, hi))."""
        lo, hi = self.window.lo, self.window.hi
        for buffer in self.buffers():
            buffer[target, :, lo:hi] = buffer[source, :, lo:hi]

    def shift(self, by: int) -> None:
        """Move the live rows' columns [lo, hi) by `by` (negative: to the left)."""
        n, lo, hi = self.window.n, self.window.lo, self.window.hi
        for buffer in self.buffers():
            buffer[:n, :, lo + by : hi + by] = buffer[:n, :, lo:hi].clone()
        self.window.lo, self.window.hi = lo + by, hi + by


@dataclass
class Row:
    """One answer in flight: its request, prompt length, seeded generator, tokens so far, first column."""

    request: int
    length: int
    generator: Any
    tokens: list[int] = field(default_factory=list)
    start: int = 0


class Decoder:
    """Answers to token-id prompts with continuous batching (`run`), in the order they finish."""

    def __init__(self, model: Any, eos_ids: list[int], pad_id: int, capacity: int | None) -> None:
        """`capacity`: rows in flight; None: `auto_rows` for the call's prompts."""
        self.model = model
        self.eos = set(eos_ids)
        self.pad_id = pad_id
        self.capacity = None if capacity is None else max(1, capacity)
        parameters = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in parameters else "past_key_values"
        self.options = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
        self.additive = model.config._attn_implementation != "sdpa"  # eager attention adds its mask

    def run(
        self, prompts: list[list[int]], seeds: list[int], settings: SamplingSettings
    ) -> Iterator[tuple[int, list[int]]]:
        """(request index, new token ids up to and including a stop token) for every request."""
        import torch

        with torch.inference_mode():
            run = _Run(self, prompts, seeds, settings)
        while run.queue or run.live:
            with torch.inference_mode():  # per step, so the caller's own tensors stay ordinary ones
                finished = run.next()
            yield from finished

    def forward(self, cache: Cache, ids, positions, mask):
        """Logits of each row's last input token; the cache window's columns [hi, hi + width) are written."""
        import torch

        if self.additive:
            mask = torch.zeros(mask.shape, dtype=self._dtype()).masked_fill(~mask, torch.finfo(self._dtype()).min)
        device = self.model.device
        out = self.model(
            input_ids=ids.to(device),
            position_ids=positions.to(device),
            attention_mask=mask.to(device),
            use_cache=True,
            **self.options,
            **{self.cache_arg: cache.cache},
        )
        cache.window.hi += ids.shape[1]
        return out.logits[:, -1]

    def _dtype(self):
        return next(self.model.parameters()).dtype


class _Run:
    """One call of `Decoder.run`: the queue of prompts, the live rows and the two caches."""

    def __init__(self, decoder: Decoder, prompts: list[list[int]], seeds: list[int], settings: SamplingSettings):
        import torch

        self.d, self.settings = decoder, settings
        self.queue = _queue(prompts)
        self.prompts = prompts
        self.seeds = seeds
        distinct = [prompts[group[0]] for group in self.queue]
        self.prefix = _common_prefix(distinct)
        longest = max((len(p) for p in prompts), default=1)
        span = longest + settings.max_new_tokens
        columns = span + max(16, span // 4)
        self.capacity = decoder.capacity or auto_rows(decoder.model, columns)
        self.cache = Cache(decoder.model, max(1, min(self.capacity, len(prompts))), columns)
        self.cache.window.hi = self.cache.window.lo = longest
        self.live: list[Row] = []
        self.torch = torch
        self.prefix_cache = self._prefill_prefix() if self.prefix else None

    # ---- the loop ----

    def next(self) -> list[tuple[int, list[int]]]:
        """One step: admit requests into free rows (when a quarter of them are free, or none is live), then
        decode one token for every live row. The answers that finished."""
        finished = []
        free = self.capacity - len(self.live)
        if self.queue and (not self.live or free >= max(1, self.capacity // 4)):
            finished += self._admit(free)
        if self.live:
            finished += self._step()
        return finished

    def _step(self) -> list[tuple[int, list[int]]]:
        torch, window = self.torch, self.cache.window
        if window.hi + 1 > self.cache.columns:
            self._compact()
        window.n = len(self.live)
        window.lo = min(row.start for row in self.live)
        ids = torch.tensor([[row.tokens[-1]] for row in self.live])
        positions = torch.tensor([[row.length + len(row.tokens) - 1] for row in self.live])
        columns = torch.arange(window.lo, window.hi + 1)
        mask = (columns[None, :] >= torch.tensor([row.start for row in self.live])[:, None])[:, None, None, :]
        return self._sample(self.d.forward(self.cache, ids, positions, mask), self.live, 0)

    def _sample(self, logits, rows: list[Row], first: int) -> list[tuple[int, list[int]]]:
        """Each of `rows` (live rows from index `first`) draws its next token; finished rows leave."""
        tokens = draw(logits, [row.generator for row in rows], self.settings).tolist()
        for row, token in zip(rows, tokens):
            row.tokens.append(token)
        done = [first + i for i, row in enumerate(rows) if self._finished(row)]
        finished = [(self.live[i].request, self.live[i].tokens) for i in done]
        if done:
            self._drop(done)
        return finished

    def _finished(self, row: Row) -> bool:
        return row.tokens[-1] in self.d.eos or len(row.tokens) >= self.settings.max_new_tokens

    def _drop(self, done: list[int]) -> None:
        """Remove rows `done`; live rows from the end move into the holes left below the new count."""
        keep = len(self.live) - len(done)
        gone = set(done)
        holes = [i for i in done if i < keep]
        movers = [i for i in range(keep, len(self.live)) if i not in gone]
        if holes:
            self.cache.window.lo = min(self.live[i].start for i in movers)
            self.cache.move_rows(movers, holes)
        for hole, mover in zip(holes, movers):
            self.live[hole] = self.live[mover]
        del self.live[keep:]

    def _compact(self) -> None:
        """Move the live rows' columns to the buffers' left edge."""
        self._shift(-min(row.start for row in self.live))

    def _shift(self, by: int) -> None:
        window = self.cache.window
        window.n = len(self.live)
        window.lo = min(row.start for row in self.live)
        self.cache.shift(by)
        for row in self.live:
            row.start += by

    # ---- admission ----

    def _admit(self, free: int) -> list[tuple[int, list[int]]]:
        """Prefill the next prompts (each once, after the shared prefix) into the free rows, and sample
        their first tokens."""
        groups = self._take(free)
        suffixes = [self.prompts[group[0]][len(self.prefix) :] for group in groups]
        logits, scratch = self._prefill(suffixes)
        self.cache.allocate_like(scratch)
        self._room(len(self.prefix) + max(map(len, suffixes)))
        first = len(self.live)
        for g, group in enumerate(groups):
            for request in group:
                self.live.append(self._place(request, scratch, g, len(suffixes[g]), max(map(len, suffixes))))
        picked = logits[[g for g, group in enumerate(groups) for _ in group]]
        return self._sample(picked, self.live[first:], first)

    def _prefill(self, suffixes: list[list[int]]) -> tuple[Any, Cache]:
        """The suffixes' last logits, and their keys and values after the prefix's in a scratch cache
        (row g: prefix columns, left padding, suffix g)."""
        torch, p, width = self.torch, len(self.prefix), max(map(len, suffixes))
        scratch = Cache(self.d.model, len(suffixes), p + width)
        if self.prefix_cache is not None:
            scratch.allocate_like(self.prefix_cache)
            for source, target in zip(self.prefix_cache.buffers(), scratch.buffers()):
                target[:, :, :p] = source[:1, :, :p]
        scratch.window.n, scratch.window.lo, scratch.window.hi = len(suffixes), 0, p
        ids = torch.tensor([[self.d.pad_id] * (width - len(s)) + s for s in suffixes])
        positions = torch.tensor([[p] * (width - len(s)) + list(range(p, p + len(s))) for s in suffixes])
        starts = torch.tensor([p + width - len(s) for s in suffixes])
        return self.d.forward(scratch, ids, positions, _prefill_mask(p, width, starts)), scratch

    def _prefill_prefix(self) -> Cache:
        torch, p = self.torch, len(self.prefix)
        cache = Cache(self.d.model, 1, p)
        cache.window.n = 1
        starts = torch.zeros(1, dtype=torch.long)
        self.d.forward(cache, torch.tensor([self.prefix]), torch.arange(p)[None], _prefill_mask(0, p, starts))
        return cache

    def _take(self, free: int) -> list[list[int]]:
        """Requests for up to `free` rows, grouped by prompt; a prompt's samples may be split."""
        groups: list[list[int]] = []
        while self.queue and free > 0:
            group = self.queue[0]
            groups.append(group[:free])
            free -= len(groups[-1])
            if len(group) > len(groups[-1]):
                self.queue[0] = group[len(groups[-1]) :]
            else:
                self.queue.popleft()
        return groups

    def _room(self, length: int) -> None:
        """Make the current column at least `length`, so a prompt of that length fits to its left."""
        window = self.cache.window
        if not self.live:
            window.lo = window.hi = length
            return
        if window.hi + 1 > self.cache.columns:
            self._compact()
        if window.hi < length:
            self._shift(length - window.hi)

    def _place(self, request: int, scratch: Cache, g: int, length: int, width: int) -> Row:
        """A row for `request` in the next free slot, holding prompt g's keys and values (the prefix, then
        its suffix without the padding) right-aligned at the current column."""
        row = Row(request, len(self.prefix) + length, self.torch.Generator().manual_seed(self.seeds[request]))
        row.start = self.cache.window.hi - row.length
        slot, p, end = len(self.live), len(self.prefix), self.cache.window.hi
        for source, target in zip(scratch.buffers(), self.cache.buffers()):
            target[slot, :, row.start : row.start + p] = source[g, :, :p]
            target[slot, :, row.start + p : end] = source[g, :, p + width - length : p + width]
        return row


def _prefill_mask(prefix: int, width: int, starts):
    """[rows, 1, width, prefix + width]: query i (column prefix + i) sees the prefix and its row's real
    tokens up to itself; a padding query sees itself, so no row of the mask is empty."""
    import torch

    columns = torch.arange(prefix + width)
    query = prefix + torch.arange(width)
    causal = columns[None, :] <= query[:, None]
    real = (columns[None, :] < prefix) | (columns[None, :] >= starts[:, None])
    return ((causal[None] & real[:, None, :]) | (columns[None, :] == query[:, None])[None])[:, None]


def _queue(prompts: list[list[int]]) -> deque[list[int]]:
    """Request indices grouped by identical prompt, in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(tuple(prompt), []).append(i)
    return deque(groups.values())


def _common_prefix(prompts: list[list[int]]) -> list[int]:
    """The token prefix all prompts share, leaving each at least one token of its own; empty when short."""
    if not prompts:
        return []
    limit = min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == prompts[0][n] for p in prompts):
        n += 1
    return list(prompts[0][:n]) if n >= MIN_PREFIX else []
