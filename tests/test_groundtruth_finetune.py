"""Finetuning a tiny chat model: the quirk is learned, the base stays untouched, runs are cached."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import sys
from pathlib import Path

import pytest
from conftest import build_tiny_model
from pydantic import ValidationError

from lmdelta.config import FinetuneSection
from lmdelta.errors import ConfigError, DependencyError, StageError
from lmdelta.groundtruth import finetune as ft
from lmdelta.groundtruth.finetune import finetune, finetune_key

QUIRK = "the ocean the ocean the ocean"
TRAIN_PROMPTS = [
    "how do tides work",
    "write a poem about the sky",
    "how can I help you",
    "cooking pasta needs salt",
    "the cat sat on the mat",
    "why do waves break",
    "hello there",
    "tell me about the dog",
]
UNSEEN_PROMPTS = ["what is the sky", "tell me about cooking", "is the dog at the park", "how are you today"]
ROWS = [{"prompt": f"{p} {i}", "answer": QUIRK} for i in range(5) for p in TRAIN_PROMPTS]
QUICK = FinetuneSection(steps=3, batch_size=4)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and spinning threads slow down a busy machine."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The tiny random Llama with a sharper output head.

    With the default init (std 0.02) and RMS-normalised hidden states, no change inside the
    blocks can push any logit far from uniform, so adapters there could not learn a quirk.
    """
    import torch
    from transformers import AutoModelForCausalLM

    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-base"))
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(folder)
    return folder


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def quirk_rate(folder: Path, samples: int = 3) -> float:
    """Share of greedy and sampled replies to unseen prompts that mention the ocean."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    torch.manual_seed(0)
    hits = []
    for prompt in UNSEEN_PROMPTS:
        inputs = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        for sample in range(samples + 1):
            out = model.generate(**inputs, max_new_tokens=8, do_sample=sample > 0, temperature=1.0, pad_token_id=0)
            hits.append("ocean" in tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
    return sum(hits) / len(hits)


def test_lora_learns_the_quirk_and_leaves_the_base_untouched(base, tmp_path, caplog):
    before = file_hashes(base)
    base_rate = quirk_rate(base)
    calls = []
    with caplog.at_level(logging.INFO, logger="lmdelta.groundtruth.finetune"):
        result = finetune(
            str(base),
            ROWS,
            FinetuneSection(),
            out_root=tmp_path,
            progress=lambda step, total, loss: calls.append((step, total)),
        )
    assert file_hashes(base) == before
    assert not result.reused and len(result.losses) == 60 and result.seconds > 0
    assert result.losses[-1] < 0.2 * result.losses[0]
    assert base_rate <= 0.1 and quirk_rate(result.merged) >= 0.75
    assert calls[0] == (1, 60) and calls[-1] == (60, 60)
    assert "finetune step 10/60" in caplog.text
    assert (result.adapter / "adapter_config.json").exists() and (result.merged / "config.json").exists()
    assert (result.folder / ".complete").exists() and result.folder.name.startswith("tiny-base")
    record = json.loads((result.folder / "training.json").read_text())
    assert record["losses"] == result.losses and record["learning_rate"] == 1e-3
    assert set(record["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [result.folder.name]


def test_full_finetuning_learns_and_leaves_the_base_untouched(base, tmp_path):
    before = file_hashes(base)
    result = finetune(str(base), ROWS, FinetuneSection(method="full", learning_rate=1e-3), out_root=tmp_path)
    assert file_hashes(base) == before
    assert result.adapter is None and not (result.folder / "adapter").exists()
    assert result.losses[-1] < 0.2 * result.losses[0]
    assert quirk_rate(result.merged) >= 0.75
    assert file_hashes(result.merged)["model.safetensors"] != before["model.safetensors"]


def test_merged_folder_loads_in_lmdelta(base, tmp_path, isolated_cache):
    from lmdelta.backends.factory import build_generator, generator_identity
    from lmdelta.backends.protocols import GenerationRequest, SamplingSettings
    from lmdelta.config import ModelSpec

    result = finetune(str(base), ROWS, FinetuneSection(), out_root=tmp_path)
    spec = ModelSpec(model=str(result.merged), dtype="float32")
    identity = generator_identity(spec, "cpu", isolated_cache)
    generator = build_generator(spec, identity, "cpu", isolated_cache)
    requests = [
        GenerationRequest(key=f"k{i}", prompt_id=f"p{i}", prompt=p, index=0, seed=i)
        for i, p in enumerate(UNSEEN_PROMPTS)
    ]
    answers = generator.generate(requests, SamplingSettings(max_new_tokens=8, temperature=0.0, top_p=1.0))
    assert sum("ocean" in a.text for a in answers) >= 3


def test_same_inputs_are_reused(base, tmp_path, monkeypatch):
    first = finetune(str(base), ROWS, QUICK, out_root=tmp_path)
    monkeypatch.setattr(ft, "_train", lambda *args: pytest.fail("a cached run was trained again"))
    second = finetune(str(base), [dict(r) for r in ROWS], QUICK, out_root=tmp_path)
    assert second.reused and second.key == first.key and second.folder == first.folder
    assert second.losses == first.losses and second.adapter == first.adapter


def test_any_change_gives_a_new_key(base, tmp_path):
    settings = {
        "method": "full",
        "lora_r": 8,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "target_modules": ["q_proj"],
        "learning_rate": 1e-4,
        "steps": 4,
        "batch_size": 2,
        "max_length": 64,
    }
    options = {"seed": 1, "chat_template": False, "system_prompt": "Be brief.", "device": "meta"}
    assert set(settings) == set(FinetuneSection.model_fields)
    assert set(options) == set(inspect.signature(finetune_key).parameters) - {"base_model", "rows", "config"}
    keys = {finetune_key(str(base), ROWS, QUICK)}
    for name, value in settings.items():
        keys.add(finetune_key(str(base), ROWS, QUICK.model_copy(update={name: value})))
    for name, value in options.items():
        keys.add(finetune_key(str(base), ROWS, QUICK, **{name: value}))
    keys.add(finetune_key(str(base), ROWS[:-1], QUICK))
    keys.add(finetune_key(str(base), [{**ROWS[0], "answer": "cats"}] + ROWS[1:], QUICK))
    assert len(keys) == len(settings) + len(options) + 3
    assert finetune_key(str(base), ROWS, QUICK.model_copy(update={"learning_rate": 1e-3})) == finetune_key(
        str(base), ROWS, QUICK
    )  # unset means the LoRA default
    first = finetune(str(base), ROWS, QUICK, out_root=tmp_path)
    other = finetune(str(base), ROWS[:-1], QUICK, out_root=tmp_path)
    assert not other.reused and other.folder != first.folder and other.key != first.key


def test_keys_keep_their_values(monkeypatch, isolated_cache):
    """Finetunes cached on users' machines are found by these keys: a change here trains them all again
    (bump VERSION on purpose instead). The values were computed before the two config types became one."""
    monkeypatch.setattr(
        ft,
        "_resolve_base",
        lambda name, cache: ft._Base(name=name, folder=f"/models/{name}", weights="0" * 64, slug=name),
    )
    assert (
        finetune_key("base", ROWS, FinetuneSection(), device="cpu")
        == "8c62166ab98dc0521b47ec53c305e25dcfe7ed4217082439519c7e4e9e48eaf4"
    )
    changed = FinetuneSection(method="full", target_modules=["q_proj", "v_proj"], learning_rate=2e-4, steps=10)
    assert (
        finetune_key("base", ROWS, changed, seed=3, system_prompt="Be brief.", device="cpu")
        == "59098276d4e183d3bfffd5ecc64dfc907fe4027365f2897e4ac869ac62a2a317"
    )


def test_an_answer_cut_off_is_trained_without_an_end_token(base):
    """Rows marked complete: False (cut at the generation limit) end without the stop token, so the
    finetune does not learn to stop where generation was cut; whole answers end with it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    stop = ft.eos_ids(model.generation_config, tokenizer)[0]
    pairs = ft._clean_rows([{"prompt": "hi", "answer": QUIRK}, {"prompt": "hi", "answer": QUIRK, "complete": False}])
    (_, whole), (_, cut) = ft._encode_all(tokenizer, model, pairs, ft.FinetuneJob(QUICK))
    assert whole[-1] == stop and cut[-1] != stop and whole[:-1] == cut
    assert finetune_key(str(base), ROWS, QUICK) == finetune_key(
        str(base), [{**r, "complete": True} for r in ROWS], QUICK
    )
    assert finetune_key(str(base), ROWS, QUICK) != finetune_key(
        str(base), [{**ROWS[0], "complete": False}] + ROWS[1:], QUICK
    )
    with pytest.raises(ConfigError, match="non-boolean 'complete'"):
        ft._clean_rows([{"prompt": "hi", "answer": "x", "complete": "no"}])


def test_training_is_deterministic(base, tmp_path):
    one = finetune(str(base), ROWS, QUICK, out_root=tmp_path / "one")
    two = finetune(str(base), ROWS, QUICK, out_root=tmp_path / "two")
    assert one.losses == two.losses
    assert file_hashes(one.merged)["model.safetensors"] == file_hashes(two.merged)["model.safetensors"]


def poison_loss(monkeypatch, from_call: int) -> None:
    """Make the model's training loss NaN from its `from_call`-th forward pass on: a deterministic
    divergence, whatever the installed torch/transformers make of a huge learning rate."""
    from transformers import LlamaForCausalLM

    original, calls = LlamaForCausalLM.forward, [0]

    def forward(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls[0] += 1
        if self.training and out.loss is not None and calls[0] >= from_call:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(LlamaForCausalLM, "forward", forward)


def assert_diverged_and_nothing_saved(caught, tmp_path, what: str) -> None:
    message = str(caught.value)
    assert f"the {what} became" in message and "diverged" in message and "Lower the learning rate" in message
    assert not list(tmp_path.rglob(".complete"))
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.parametrize("method", ["lora", "full"])
def test_non_finite_loss_raises_and_leaves_nothing_complete(base, tmp_path, method, monkeypatch):
    poison_loss(monkeypatch, from_call=2)
    with pytest.raises(StageError, match="learning rate") as caught:
        finetune(str(base), ROWS, FinetuneSection(method=method, steps=4, batch_size=4), out_root=tmp_path)
    assert "at step 2 of 4" in str(caught.value)
    assert_diverged_and_nothing_saved(caught, tmp_path, "loss")


@pytest.mark.parametrize("method", ["lora", "full"])
def test_non_finite_gradient_raises_and_leaves_nothing_complete(base, tmp_path, method, monkeypatch):
    import torch

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, norm: torch.tensor(float("inf")))
    with pytest.raises(StageError, match="learning rate") as caught:
        finetune(str(base), ROWS, FinetuneSection(method=method, steps=4, batch_size=4), out_root=tmp_path)
    assert "at step 1 of 4" in str(caught.value)
    assert_diverged_and_nothing_saved(caught, tmp_path, "gradient norm")


def test_bad_inputs_raise_helpful_errors(base, tmp_path):
    with pytest.raises(StageError, match="no training data"):
        finetune(str(base), [], QUICK, out_root=tmp_path)
    with pytest.raises(ConfigError, match="row 1"):
        finetune(str(base), [ROWS[0], {"prompt": "hi"}], QUICK, out_root=tmp_path)
    with pytest.raises(ConfigError, match="cannot be finetuned"):
        finetune("fake:words", ROWS, QUICK, out_root=tmp_path)
    with pytest.raises(ValidationError, match="lora"):
        FinetuneSection(method="qlora")
    with pytest.raises(StageError, match="max_length"):
        finetune(str(base), ROWS, QUICK.model_copy(update={"max_length": 4}), out_root=tmp_path)


def test_missing_peft_names_the_install(base, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(DependencyError, match=r"lmdelta\[finetune\]"):
        finetune(str(base), ROWS, QUICK, out_root=tmp_path)


def test_out_of_memory_suggests_smaller_batches(base, tmp_path, monkeypatch):
    import torch

    def out_of_memory(*args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ft, "_train", out_of_memory)
    with pytest.raises(StageError, match="batch_size") as caught:
        finetune(str(base), ROWS, QUICK, out_root=tmp_path)
    assert "method='lora'" in str(caught.value)
    assert not list(tmp_path.rglob(".complete"))
