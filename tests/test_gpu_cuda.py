"""The transformers paths on a CUDA GPU: `auto` picks the GPU, and the GPU gives the answers, scores and
vectors the CPU gives (devices are volatile settings, outside every fingerprint, so they must not change
results in float32). Marked `gpu`: skipped unless `--run-gpu`, and skipped with the reason where torch sees
no CUDA device."""

from __future__ import annotations

import pytest
from conftest import build_tiny_model, fake_config
from test_continuous import PROMPTS, SAMPLED, batched, decoded, prompts_and_seeds
from test_ray_engine import answers, run

from lmdelta.backends.device import resolve_device, resolve_dtype
from lmdelta.backends.factory import build_generator, generator_identity
from lmdelta.config import ModelSpec

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch


@pytest.fixture(scope="module")
def model(cuda, tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), hidden=256)  # head size 64


def generator(model, cache, device, dtype="float32", **spec):
    made = ModelSpec(model=str(model), dtype=dtype, system_prompt="You answer briefly and kindly.", **spec)
    return build_generator(made, generator_identity(made, device, cache), device, cache)


def test_auto_runs_on_the_gpu_in_a_half_precision(cuda):
    assert resolve_device("auto") == "cuda"
    assert resolve_dtype("auto", "cuda") in ("bfloat16", "float16")


@pytest.mark.parametrize("rows", [1, 15])
def test_continuous_decoding_on_the_gpu_is_generate_and_the_cpu(model, tmp_path, rows):
    gpu, cpu = generator(model, tmp_path, "cuda"), generator(model, tmp_path, "cpu")
    assert gpu.continuous and next(gpu.model.parameters()).is_cuda
    prompts, seeds = prompts_and_seeds(gpu)
    on_gpu = decoded(gpu, prompts, seeds, SAMPLED, rows)
    assert on_gpu == batched(gpu, prompts, seeds, SAMPLED)
    assert on_gpu == decoded(cpu, prompts, seeds, SAMPLED, rows)


def test_half_precision_answers_on_the_gpu_reproduce(model, tmp_path):
    """`auto` on a GPU is half precision: the same batch gives the same answers again. (Not batch-invariant:
    a row's sums run in another order with other companions, and half precision rounds them apart.)"""
    gpu = generator(model, tmp_path, "cuda", dtype="auto")
    assert gpu.identity["dtype"] in ("bfloat16", "float16")
    prompts, seeds = prompts_and_seeds(gpu)
    together = decoded(gpu, prompts, seeds, SAMPLED, 15)
    assert together == decoded(gpu, prompts, seeds, SAMPLED, 15)
    alone = [decoded(gpu, [p], [s], SAMPLED, 1)[0] for p, s in zip(prompts, seeds)]
    print(f"half-precision answers alone equal to those in a batch of 15: {sum(map(list.__eq__, together, alone))}")


def test_log_likelihoods_on_the_gpu_are_the_cpus(model, tmp_path):
    pairs = [(p, "the tide comes in twice a day") for p in PROMPTS]
    on_gpu = generator(model, tmp_path, "cuda").loglik(pairs, batch_size=3)
    on_cpu = generator(model, tmp_path, "cpu").loglik(pairs, batch_size=3)
    assert [n for _, n in on_gpu] == [n for _, n in on_cpu]
    assert [s for s, _ in on_gpu] == pytest.approx([s for s, _ in on_cpu], rel=1e-4)


def test_a_run_on_the_gpu_is_the_run_on_the_cpu(model, tmp_path, isolated_cache):
    config = fake_config(
        tmp_path,
        generate__a={"model": str(model), "dtype": "float32"},
        generate__b={"model": str(model), "dtype": "float32", "system_prompt": "Talk about the sea."},
        generate__max_new_tokens=6,
    )
    run(config, tmp_path / "gpu", "generate.device=cuda")
    run(config, tmp_path / "cpu", "generate.device=cpu")
    assert answers(tmp_path / "gpu") == answers(tmp_path / "cpu")


def test_sentence_transformer_vectors_on_the_gpu_are_the_cpus(cuda, tmp_path):
    from lmdelta.backends.embedders.st import SentenceTransformerEmbedder

    folder = tiny_sentence_transformer(tmp_path)
    texts = [p * (1 + i) for i, p in enumerate(PROMPTS)]
    identity = {"normalize": True}
    on_gpu = SentenceTransformerEmbedder(str(folder), identity, "cuda", 2).embed(texts)
    on_cpu = SentenceTransformerEmbedder(str(folder), identity, "cpu", 2).embed(texts)
    assert on_gpu.shape == (len(texts), 64)
    assert abs(on_gpu - on_cpu).max() < 1e-4


def tiny_sentence_transformer(tmp_path):
    """A random-init BERT with mean pooling, saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = sorted({w for p in PROMPTS for w in p.split()})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    raw = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    bert = tmp_path / "bert"
    config = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
    BertModel(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    body = models.Transformer(str(bert), max_seq_length=64)
    folder = tmp_path / "st"
    SentenceTransformer(modules=[body, models.Pooling(64, "mean")]).save(str(folder))
    return folder
