"""Inject a known behaviour into a copy of a chat model by finetuning, for ground-truth checks.

The base model is loaded fresh from disk and never written; the result is a new cached folder
whose `merged/` subfolder is a normal Hugging Face model folder to use as side b.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from lmdelta.backends.device import resolve_device
from lmdelta.backends.embedded import cache_root
from lmdelta.backends.registry import check_available, model_folder, model_weights_id, parse_model
from lmdelta.backends.textformat import answer_ids, eos_ids, has_chat_template, prompt_ids
from lmdelta.config.groundtruth import FinetuneSection
from lmdelta.errors import ConfigError, DependencyError, StageError
from lmdelta.filelock import locked
from lmdelta.hashing import hash_data

log = logging.getLogger(__name__)

VERSION = 1  # bump when the training recipe changes, so cached models are not reused
# The schedule is a linear warmup over the first 10% of steps, then constant: runs are short, so a
# decay would mostly waste steps.
WARMUP_FRACTION = 0.1
CLIP_NORM = 1.0
EXCLUDED_MODULES = ("lm_head", "embed", "wte", "wpe")
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class FinetuneJob:
    """One finetune: its settings (the groundtruth.finetune section) and what the caller decides
    beside them. Every field is part of the cache key."""

    config: FinetuneSection
    seed: int = 0
    """Seeds the adapters' initialisation and the batches."""
    chat_template: bool = True
    """Train on the chat-formatted prompt (as lmdelta generates); the loss covers answer tokens only."""
    system_prompt: str | None = None
    device: str = "auto"
    """`auto`: CUDA when available, else CPU. Training always runs in float32."""

    @property
    def runs_on(self) -> str:
        """The device resolved: what the cache key holds and training uses."""
        return resolve_device(self.device)

    def settings(self) -> dict[str, Any]:
        """Every setting, by the names training.json and the cache key have always used."""
        return {
            **self.config.model_dump(),
            "seed": self.seed,
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt,
            "device": self.device,
        }


@dataclass(frozen=True)
class FinetuneResult:
    folder: Path
    merged: Path
    adapter: Path | None
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    reused: bool = False
    key: str = ""


@dataclass(frozen=True)
class _Base:
    """The base model: what it is called, where its files are, and the hash of those files."""

    name: str
    folder: str
    weights: str
    slug: str


def finetune(
    base_model: str,
    rows: list[dict],
    job: FinetuneJob | FinetuneSection,
    *,
    out_root: Path | None = None,
    progress: Progress | None = None,
) -> FinetuneResult:
    """Finetune `base_model` on {"prompt", "answer"} rows, or reuse a finished run with the same key.

    `job` holds the groundtruth.finetune section and the seed, device and prompt encoding (a section
    alone takes their defaults); the prompt is encoded as lmdelta's HF generator encodes it.
    The output folder is `out_root` (default: the lmdelta cache's `finetuned/`) / `{base}-{key[:16]}`.
    """
    if isinstance(job, FinetuneSection):
        job = FinetuneJob(job)
    pairs, base, data_hash, key = _plan(base_model, rows, job)
    root = Path(out_root) if out_root is not None else cache_root() / "finetuned"
    target = root / f"{base.slug}-{key[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    with locked(root / f".{target.name}.lock"):
        if (target / ".complete").exists():
            log.info("reusing finetuned model %s (key %s)", target, key[:16])
            return _load_result(target, key)
        return _train_and_save(base, pairs, job, target, key, data_hash, progress)


def finetune_key(
    base_model: str,
    rows: list[dict],
    config: FinetuneSection,
    seed: int = 0,
    *,
    chat_template: bool = True,
    system_prompt: str | None = None,
    device: str = "auto",
) -> str:
    """The cache key `finetune` would use, without training: base files, data, every setting."""
    return _plan(base_model, rows, FinetuneJob(config, seed, chat_template, system_prompt, device))[3]


def _plan(base_model: str, rows: list[dict], job: FinetuneJob) -> tuple[list, _Base, str, str]:
    pairs = _clean_rows(rows)
    base = _resolve_base(base_model, cache_root())
    data_hash = hash_data(pairs, length=64)
    fields = job.settings()
    fields["learning_rate"] = job.config.lr  # unset and the explicit default train the same model
    fields["device"] = job.runs_on
    key = hash_data(
        {
            "version": VERSION,
            "base": {"model": base.name, "weights": base.weights},
            "data": data_hash,
            "config": fields,
        },
        length=64,
    )
    return pairs, base, data_hash, key


def _clean_rows(rows: list[dict]) -> list[dict[str, Any]]:
    if not rows:
        raise StageError(
            "Finetuning got no training data (0 rows).", "Pass a non-empty list of {'prompt': ..., 'answer': ...} rows."
        )
    pairs = []
    for index, row in enumerate(rows):
        if not (isinstance(row, dict) and isinstance(row.get("prompt"), str) and isinstance(row.get("answer"), str)):
            raise ConfigError(
                f"Training row {index} is not a {{'prompt': str, 'answer': str}} dict: {row!r:.200}.",
                "Give every row a text 'prompt' and a text 'answer'.",
            )
        complete = row.get("complete", True)
        if not isinstance(complete, bool):
            raise ConfigError(
                f"Training row {index} has a non-boolean 'complete': {complete!r:.50}.",
                "Leave 'complete' out (the answer is whole), or set it to false for an answer cut off by the "
                "generation limit.",
            )
        pair = {"prompt": row["prompt"], "answer": row["answer"]}
        pairs.append(pair if complete else {**pair, "complete": False})  # whole answers keep their old data hash
    return pairs


def _resolve_base(base_model: str, cache_dir: Path) -> _Base:
    ref = parse_model(base_model, "generator")
    if ref.kind == "fake":
        raise ConfigError(
            f"{base_model} is a test double with no weights, so it cannot be finetuned.",
            "Use embedded:smollm2-135m-instruct or a local Hugging Face model folder.",
        )
    check_available(ref)
    weights = model_weights_id(ref, None, cache_dir)
    folder = model_folder(ref, None, cache_dir)
    stem = Path(ref.name).name if ref.kind == "local" else ref.name.replace("/", "--")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:48] or "model"
    return _Base(name=str(ref), folder=folder, weights=weights, slug=slug)


def _train_and_save(
    base: _Base,
    pairs: list[dict[str, Any]],
    job: FinetuneJob,
    target: Path,
    key: str,
    data_hash: str,
    progress: Progress | None,
) -> FinetuneResult:
    config, device = job.config, job.runs_on
    started = time.perf_counter()
    try:
        model, tokenizer = _load_fresh(base.folder, device)
        examples = _encode_all(tokenizer, model, pairs, job)
        model, targets = _prepare(model, config, job.seed)
        losses = _train(model, examples, config, device, job.seed, progress)
    except (MemoryError, RuntimeError) as exc:
        if not _is_oom(exc):
            raise
        raise StageError(
            f"Finetuning {base.name} ran out of memory ({type(exc).__name__}).",
            f"Lower batch_size (now {config.batch_size}) or max_length (now {config.max_length}), "
            "or use method='lora' instead of full finetuning.",
        ) from exc
    seconds = time.perf_counter() - started
    record = {
        "version": VERSION,
        "key": key,
        "base": asdict(base),
        "data_hash": data_hash,
        "n_rows": len(pairs),
        "n_examples": len(examples),
        "config": job.settings(),
        "learning_rate": config.lr,
        "target_modules": targets,
        "device": device,
        "losses": losses,
        "seconds": seconds,
        "versions": _library_versions(),
    }
    _save(model, tokenizer, config, target, record)
    log.info(
        "finetuned %s in %.1f s (%.2f s/step), loss %.3f -> %.3f; saved to %s",
        base.name,
        seconds,
        seconds / config.steps,
        losses[0],
        losses[-1],
        target,
    )
    return FinetuneResult(
        folder=target,
        merged=target / "merged",
        adapter=_adapter_path(target, config),
        losses=losses,
        seconds=seconds,
        reused=False,
        key=key,
    )


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None)
    return (
        isinstance(exc, MemoryError)
        or (oom_type is not None and isinstance(exc, oom_type))
        or "out of memory" in str(exc).lower()
    )


def _load_fresh(folder: str, device: str):
    """A new model object read from disk, so the caller's or anyone's base model is never trained."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model.to(device), tokenizer  # type: ignore[arg-type]  # transformers types the wrapped `to` unbound


def _encode_all(tokenizer: Any, model: Any, pairs: list[dict[str, Any]], job: FinetuneJob) -> list[tuple]:
    """(input ids, labels) per row; labels are -100 on the prompt. Rows with no answer left are dropped.
    An answer ends with the model's end token unless the row says "complete": False (an answer the
    generation limit cut off must not teach the model to stop there)."""
    if job.chat_template and not has_chat_template(tokenizer):
        raise ConfigError(
            "chat_template is on, but the base model's tokenizer has no chat template.",
            "Pass finetune a FinetuneJob(..., chat_template=False), or finetune an instruct model.",
        )
    stop = eos_ids(model.generation_config, tokenizer)
    examples = []
    for pair in pairs:
        # Encoded as lmdelta's HF generator encodes it, so training matches generation.
        prompt = prompt_ids(tokenizer, job.system_prompt, pair["prompt"], job.chat_template)
        answer = answer_ids(tokenizer, pair["answer"], stop if pair.get("complete", True) else [])
        ids = (prompt + answer)[: job.config.max_length]
        labels = ([-100] * len(prompt) + answer)[: job.config.max_length]
        if any(label != -100 for label in labels):
            examples.append((ids, labels))
    if not examples:
        raise StageError(
            f"Every training prompt is at least max_length={job.config.max_length} tokens long, "
            "so no answer token is left to train on.",
            "Raise max_length or shorten the prompts.",
        )
    if len(examples) < len(pairs):
        log.warning(
            "%d of %d rows dropped: their prompt fills max_length=%d",
            len(pairs) - len(examples),
            len(pairs),
            job.config.max_length,
        )
    return examples


def _prepare(model: Any, config: FinetuneSection, seed: int) -> tuple[Any, list[str] | None]:
    """Wrap the model in LoRA adapters (or leave it whole for full finetuning); returns the targets."""
    import torch

    torch.manual_seed(seed)  # LoRA's A matrices start random
    if config.method == "full":
        return model, None
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise DependencyError(
            "LoRA finetuning needs the package peft, which is not installed.",
            "Install it with `pip install 'lmdelta[finetune]'`, or use method='full'.",
        ) from None
    targets = list(config.target_modules) if config.target_modules else linear_projections(model)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), targets


def linear_projections(model: Any) -> list[str]:
    """Names (last component) of the linear layers inside the blocks: attention and MLP projections."""
    import torch

    names = set()
    for path, module in model.named_modules():
        linear = isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"
        leaf = path.rsplit(".", 1)[-1]
        if linear and path and not any(word in leaf for word in EXCLUDED_MODULES):
            names.add(leaf)
    if not names:
        raise StageError(
            f"Found no linear projection layers in {type(model).__name__} to put LoRA adapters on.",
            "Set groundtruth.finetune.target_modules to the model's projection layer names.",
        )
    return sorted(names)


def _train(
    model: Any, examples: list[tuple], config: FinetuneSection, device: str, seed: int, progress: Progress | None
) -> list[float]:
    """AdamW with linear warmup then constant lr, gradient clipping; stops on a non-finite loss."""
    import numpy as np
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    warmup = max(1, round(WARMUP_FRACTION * config.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    batches = _batch_indices(len(examples), config, np.random.default_rng(seed))
    model.train()
    losses: list[float] = []
    for step, indices in enumerate(batches, start=1):
        ids, mask, labels = _collate([examples[i] for i in indices], device)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        losses.append(loss.item())
        _check_finite(losses[-1], step, config, "loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
        _check_finite(norm.item(), step, config, "gradient norm")
        optimizer.step()
        schedule.step()
        if progress is not None:
            progress(step, config.steps, losses[-1])
        if step % 10 == 0 or step == config.steps:
            log.info("finetune step %d/%d: loss %.4f", step, config.steps, losses[-1])
    model.eval()
    return losses


def _check_finite(value: float, step: int, config: FinetuneSection, what: str) -> None:
    if not math.isfinite(value):
        raise StageError(
            f"Finetuning diverged: the {what} became {value} at step {step} of {config.steps} "
            f"(learning rate {config.lr:g}).",
            f"Lower the learning rate (e.g. to {config.lr / 10:g}); nothing was saved.",
        )


def _batch_indices(n: int, config: FinetuneSection, rng: Any) -> list[list[int]]:
    """`steps` batches drawn from successive shuffled passes over the data."""
    stream: list[int] = []
    needed = config.steps * config.batch_size
    while len(stream) < needed:
        stream += rng.permutation(n).tolist()
    return [stream[i * config.batch_size : (i + 1) * config.batch_size] for i in range(config.steps)]


def _collate(batch: list[tuple], device: str):
    """Right-pad to the longest example; padded positions are masked and carry no loss."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = [row + [0] * (width - len(row)) for row, _ in batch]
    labels = [row + [-100] * (width - len(row)) for _, row in batch]
    mask = [[1] * len(row) + [0] * (width - len(row)) for row, _ in batch]
    as_tensor = lambda rows: torch.tensor(rows, dtype=torch.long, device=device)  # noqa: E731
    return as_tensor(ids), as_tensor(mask), as_tensor(labels)


def _save(model: Any, tokenizer: Any, config: FinetuneSection, target: Path, record: dict) -> None:
    """Write into a temporary sibling folder, mark it complete, then rename it into place."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if config.method == "lora":
            model.save_pretrained(tmp / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(tmp / "merged")
        tokenizer.save_pretrained(tmp / "merged")
        (tmp / "training.json").write_text(json.dumps(record, indent=1, default=str))
        (tmp / ".complete").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)  # an unfinished folder from a killed run
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load_result(target: Path, key: str) -> FinetuneResult:
    record = json.loads((target / "training.json").read_text())
    adapter = target / "adapter"
    return FinetuneResult(
        folder=target,
        merged=target / "merged",
        adapter=adapter if adapter.is_dir() else None,
        losses=record["losses"],
        seconds=record["seconds"],
        reused=True,
        key=key,
    )


def _adapter_path(target: Path, config: FinetuneSection) -> Path | None:
    return target / "adapter" if config.method == "lora" else None


def _library_versions() -> dict[str, str]:
    found = {}
    for name in ("torch", "transformers", "peft"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
