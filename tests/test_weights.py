"""Weight-difference analysis (issue 18) on tiny safetensors folders written here: planted edits are
found, noise is not, errors name the tensors and the fix, adapters are read from their factors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from lmdelta.errors import LmdeltaError, ModelNotFoundError, StageError
from lmdelta.rundir import read_jsonl
from lmdelta.weights import WEIGHTS, WEIGHTS_SUMMARY, WeightsOptions, analyse, resolve_model_folder
from lmdelta.weights.checkpoint import Checkpoint, bf16_to_float32
from lmdelta.weights.names import describe
from lmdelta.weights.null import mp_edge, mp_singular_values
from lmdelta.weights.spectrum import exact_svd, frobenius_sq, randomized_svd

HIDDEN, FFN = 48, 64
Q = "model.layers.{}.self_attn.q_proj.weight"


def base_tensors(seed: int = 0, layers: int = 2) -> dict[str, np.ndarray]:
    """A tiny Llama-shaped state dict: embeddings, attention and MLP matrices, norms (1-D)."""
    rng = np.random.default_rng(seed)
    tensors = {"model.embed_tokens.weight": rng.standard_normal((80, HIDDEN)), "model.norm.weight": np.ones(HIDDEN)}
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"{prefix}self_attn.{name}.weight"] = rng.standard_normal((HIDDEN, HIDDEN)) / 7
        tensors[f"{prefix}mlp.gate_proj.weight"] = rng.standard_normal((FFN, HIDDEN)) / 7
        tensors[f"{prefix}mlp.up_proj.weight"] = rng.standard_normal((FFN, HIDDEN)) / 7
        tensors[f"{prefix}mlp.down_proj.weight"] = rng.standard_normal((HIDDEN, FFN)) / 8
        tensors[f"{prefix}input_layernorm.weight"] = np.ones(HIDDEN)
    return {name: value.astype(np.float32) for name, value in tensors.items()}


def write_model(folder: Path, tensors: dict[str, np.ndarray], shards: int = 1) -> Path:
    """A Hugging Face-style folder: config.json and one safetensors file, or `shards` files and an index."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    if shards == 1:
        save_file(tensors, str(folder / "model.safetensors"))
        return folder
    names = sorted(tensors)
    weight_map = {}
    for shard in range(shards):
        file = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: tensors[name] for name in names[shard::shards]}
        save_file(part, str(folder / file))
        weight_map.update(dict.fromkeys(part, file))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def orthonormal(rng: np.random.Generator, dim: int, k: int) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((dim, k)))[0]


def rows_by_name(out: Path) -> dict[str, dict]:
    return {row["name"]: row for row in read_jsonl(out / WEIGHTS)}


@pytest.fixture
def planted(tmp_path):
    """Model b = a plus a rank-2 edit (σ = 5, 5) in layer 1's q_proj and small noise in layer 0's up_proj."""
    rng = np.random.default_rng(1)
    a = base_tensors()
    b = {name: value.copy() for name, value in a.items()}
    edit = 5 * orthonormal(rng, HIDDEN, 2) @ orthonormal(rng, HIDDEN, 2).T
    b[Q.format(1)] += edit.astype(np.float32)
    b["model.layers.0.mlp.up_proj.weight"] += (0.01 * rng.standard_normal((FFN, HIDDEN))).astype(np.float32)
    return write_model(tmp_path / "a", a), write_model(tmp_path / "b", b)


def test_a_planted_rank_2_edit_is_found_with_rank_2_and_2_spikes(planted, tmp_path):
    analyse(*planted, tmp_path / "out")
    row = rows_by_name(tmp_path / "out")[Q.format(1)]
    assert row["numerical_rank"] == 2
    assert row["effective_rank"] == pytest.approx(2.0, abs=1e-3)
    assert row["stable_rank"] == pytest.approx(2.0, abs=1e-3)
    assert row["singular_values"][:2] == pytest.approx([5.0, 5.0], rel=1e-4)
    assert row["spikes"] == 2 and row["spike_energy"] == pytest.approx(1.0, abs=1e-6)
    assert row["energy_top"]["1"] == pytest.approx(0.5, abs=1e-4) and row["energy_top"]["8"] == pytest.approx(1.0)
    assert row["svd"] == "exact" and row["spectrum_complete"]
    assert row["null"]["sigma_1"] == pytest.approx(row["mp_edge"]) and row["mp_edge"] < 5.0
    assert row["null"]["effective_rank"] > 20  # noise of the same energy would be spread over many directions
    assert row["alignment_chance_left"] == pytest.approx(8 / HIDDEN)
    assert 0.0 <= row["alignment_left"] <= 1.0


def test_random_full_rank_noise_has_no_spikes(planted, tmp_path):
    analyse(*planted, tmp_path / "out")
    row = rows_by_name(tmp_path / "out")["model.layers.0.mlp.up_proj.weight"]
    assert row["spikes"] <= 1  # pure noise reaches the edge only by a finite-size fluctuation
    assert row["numerical_rank"] == HIDDEN
    assert row["effective_rank"] == pytest.approx(row["null"]["effective_rank"], rel=0.1)
    assert row["sigma_1_over_edge"] == pytest.approx(1.0, abs=0.1)


def test_unchanged_matrices_read_as_zero_change(planted, tmp_path):
    summary = analyse(*planted, tmp_path / "out")
    row = rows_by_name(tmp_path / "out")[Q.format(0)]
    assert row["delta_fro"] == 0.0 and row["relative_change"] == 0.0 and row["spikes"] == 0
    assert row["svd"] == "zero" and row["effective_rank"] is None and row["null"] is None
    assert summary["totals"]["changed"] == 2 and summary["totals"]["matrices"] == 2 * 7 + 1


def test_relative_change_is_exact_on_a_hand_example(tmp_path):
    a = {"w": np.array([[3.0, 0.0], [0.0, 4.0]])}  # ‖W_a‖ = 5
    b = {"w": a["w"] + 0.5}  # ΔW = ½·ones: ‖ΔW‖ = 1, rank 1
    analyse(write_model(tmp_path / "a", a), write_model(tmp_path / "b", b), tmp_path / "out")
    row = rows_by_name(tmp_path / "out")["w"]
    assert row["relative_change"] == pytest.approx(0.2, rel=1e-12)
    assert row["delta_fro"] == pytest.approx(1.0, rel=1e-12) and row["base_fro"] == pytest.approx(5.0, rel=1e-12)
    assert row["singular_values"] == pytest.approx([1.0, 0.0], abs=1e-12)
    assert row["numerical_rank"] == 1 and row["dtype_a"] == row["dtype_b"] == "F64"


def test_a_shape_mismatch_names_the_tensors_and_the_fix(tmp_path):
    a, b = base_tensors(), base_tensors()
    b[Q.format(0)] = b[Q.format(0)][:, :40]
    folders = write_model(tmp_path / "a", a), write_model(tmp_path / "b", b)
    with pytest.raises(StageError) as caught:
        analyse(*folders, tmp_path / "out")
    message = str(caught.value)
    assert Q.format(0) in message and "(48, 48) vs (48, 40)" in message
    assert "same architecture" in message and "skip_mismatched" in message
    assert not (tmp_path / "out").exists()
    summary = analyse(*folders, tmp_path / "out", WeightsOptions(skip_mismatched=True))
    assert summary["totals"]["mismatched"] == 1 and summary["left_out"]["mismatched"][0]["name"] == Q.format(0)


def test_models_with_nothing_in_common_name_examples_and_the_fix(tmp_path):
    a = write_model(tmp_path / "a", base_tensors())
    b = write_model(tmp_path / "b", {f"transformer.h.0.attn.c_attn.{i}": np.ones((4, 4), np.float32) for i in "xy"})
    with pytest.raises(StageError, match=r"no tensor name in common.*model\.embed_tokens\.weight.*transformer\.h\.0"):
        analyse(a, b, tmp_path / "out")


def test_tensors_in_one_model_only_are_counted_and_listed(tmp_path):
    a, b = base_tensors(), base_tensors()
    b["lm_head.weight"] = np.ones((80, HIDDEN), np.float32)
    del b[Q.format(1)]
    summary = analyse(write_model(tmp_path / "a", a), write_model(tmp_path / "b", b), tmp_path / "out")
    assert summary["totals"]["only_in_a"] == 1 and summary["left_out"]["only_in_a"] == [Q.format(1)]
    assert summary["left_out"]["only_in_b"] == ["lm_head.weight"]
    assert Q.format(1) not in rows_by_name(tmp_path / "out")


def test_a_missing_shard_or_missing_weights_name_the_file_and_the_fix(tmp_path):
    folder = write_model(tmp_path / "sharded", base_tensors(), shards=3)
    (folder / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match=r"model-00002-of-00003\.safetensors.*download"):
        Checkpoint.open(folder)
    empty = tmp_path / "bin"
    empty.mkdir()
    (empty / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(
        ModelNotFoundError, match=r"no \.safetensors weights; it has pytorch_model\.bin.*save_pretrained"
    ):
        Checkpoint.open(empty)


def test_a_sharded_checkpoint_reads_like_a_single_file(planted, tmp_path):
    a, b = planted
    tensors = {name: Checkpoint.open(b).read(name) for name in Checkpoint.open(b).tensors}
    sharded = write_model(tmp_path / "b-sharded", tensors, shards=3)
    assert len(list(sharded.glob("*.safetensors"))) == 3
    analyse(a, b, tmp_path / "single")
    analyse(a, sharded, tmp_path / "sharded-out")
    single, split = rows_by_name(tmp_path / "single"), rows_by_name(tmp_path / "sharded-out")
    assert single.keys() == split.keys()
    assert all(single[name]["delta_fro"] == split[name]["delta_fro"] for name in single)


BF16_VALUES = np.array([1.0, -2.5, 3.140625, 0.0, -0.0, 65280.0, 2.0**-126, 1.5 * 2.0**-130, np.inf], np.float32)


def test_bf16_widens_to_float32_exactly():
    bits = (BF16_VALUES.view(np.uint32) >> 16).astype(np.uint16)  # these values are exact in bf16
    widened = bf16_to_float32(bits)
    assert widened.dtype == np.float32
    assert np.array_equal(widened.view(np.uint32), BF16_VALUES.view(np.uint32))  # bit for bit, -0.0 included
    assert np.isnan(bf16_to_float32(np.array([0x7FC0], np.uint16)))[0]


def write_bf16_file(path: Path, name: str, values: np.ndarray) -> None:
    """A safetensors file with one BF16 tensor, written by hand (NumPy has no bfloat16)."""
    data = (values.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({name: {"dtype": "BF16", "shape": list(values.shape), "data_offsets": [0, len(data)]}})
    header += " " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header.encode() + data)


def test_a_bf16_checkpoint_is_read_and_compared_with_a_float32_one(tmp_path):
    values = BF16_VALUES[:8].reshape(2, 4)
    folder = tmp_path / "bf16"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    write_bf16_file(folder / "model.safetensors", "w", values)
    assert np.array_equal(Checkpoint.open(folder).read("w"), values)
    other = write_model(tmp_path / "f32", {"w": values + np.float32(1.0)})
    analyse(folder, other, tmp_path / "out")
    row = rows_by_name(tmp_path / "out")["w"]
    assert (row["dtype_a"], row["dtype_b"]) == ("BF16", "F32")
    assert row["delta_fro"] == pytest.approx(np.sqrt(8.0), rel=1e-6)


def test_quantized_tensors_are_listed_with_their_dtypes_not_compared(tmp_path):
    a, b = base_tensors(), base_tensors()
    b[Q.format(0)] = np.ones((HIDDEN, HIDDEN), np.int8)
    summary = analyse(write_model(tmp_path / "a", a), write_model(tmp_path / "b", b), tmp_path / "out")
    assert summary["left_out"]["quantized"] == [
        {"name": Q.format(0), "shape_a": [48, 48], "shape_b": [48, 48], "dtype_a": "F32", "dtype_b": "I8"}
    ]
    assert Q.format(0) not in rows_by_name(tmp_path / "out")


def write_adapter(folder: Path, factors: dict[str, tuple[np.ndarray, np.ndarray]], config: dict) -> Path:
    """A PEFT-style LoRA folder: adapter_config.json and A/B factors under PEFT's key names."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", **config}))
    tensors = {}
    for module, (a, b) in factors.items():
        embedding = "embed_tokens" in module
        tensors[
            f"base_model.model.{module}.lora_{'embedding_' if embedding else ''}A{'' if embedding else '.weight'}"
        ] = a
        tensors[
            f"base_model.model.{module}.lora_{'embedding_' if embedding else ''}B{'' if embedding else '.weight'}"
        ] = b
    save_file(
        {name: value.astype(np.float32) for name, value in tensors.items()}, str(folder / "adapter_model.safetensors")
    )
    return folder


def test_a_lora_adapter_is_read_from_its_factors_like_the_merged_difference(tmp_path):
    rng = np.random.default_rng(2)
    r, alpha = 4, 8
    q_a, q_b = rng.standard_normal((r, HIDDEN)), rng.standard_normal((HIDDEN, r))
    q_b[:, 2:] = 0  # two of the four directions unused: rank used 2 of 4
    e_a, e_b = rng.standard_normal((r, 80)), rng.standard_normal((HIDDEN, r))  # embeddings store the transpose
    factors = {"model.layers.1.self_attn.q_proj": (q_a, q_b), "model.embed_tokens": (e_a, e_b)}
    config = {"r": r, "lora_alpha": alpha, "target_modules": ["q_proj", "embed_tokens"], "base_model_name_or_path": "x"}
    base = write_model(tmp_path / "base", base_tensors())
    summary = analyse(base, write_adapter(tmp_path / "adapter", factors, config), tmp_path / "out")
    rows = rows_by_name(tmp_path / "out")
    merged = {Q.format(1): alpha / r * q_b @ q_a, "model.embed_tokens.weight": (alpha / r * e_b @ e_a).T}
    for name, delta in merged.items():
        row = rows[name]
        expected = np.linalg.svd(delta.astype(np.float32).astype(np.float64), compute_uv=False)
        assert row["svd"] == "factors" and row["source"] == "lora" and row["shape"] == list(delta.shape)
        assert row["singular_values"][:r] == pytest.approx(expected[:r], rel=1e-5, abs=1e-5)
        assert row["delta_fro"] == pytest.approx(np.linalg.norm(expected), rel=1e-5)
        assert row["numerical_rank"] <= row["lora_rank"] == r and row["lora_scale"] == alpha / r
    assert rows[Q.format(1)]["numerical_rank"] == 2 and rows["model.embed_tokens.weight"]["numerical_rank"] == 4
    assert summary["mode"] == "lora" and summary["totals"]["unchanged_by_adapter"] == 2 * 7 - 1
    assert summary["models"]["b"]["r"] == r and summary["models"]["b"]["base_model_name_or_path"] == "x"


def test_an_adapter_on_the_wrong_base_or_side_says_which_way_round(tmp_path):
    factors = {"model.layers.0.self_attn.q_proj": (np.ones((2, 30)), np.ones((HIDDEN, 2)))}
    adapter = write_adapter(
        tmp_path / "adapter", factors, {"r": 2, "lora_alpha": 2, "base_model_name_or_path": "org/x"}
    )
    base = write_model(tmp_path / "base", base_tensors())
    with pytest.raises(StageError, match=r"q_proj.weight.*do not fit.*\(48, 48\).*org/x"):
        analyse(base, adapter, tmp_path / "out")
    with pytest.raises(StageError, match="Pass the base model as side a"):
        analyse(adapter, base, tmp_path / "out")


def test_aggregates_by_layer_module_type_and_family(planted, tmp_path):
    summary = analyse(*planted, tmp_path / "out")
    layers, modules, families = summary["by_layer"], summary["by_module"], summary["by_family"]
    assert list(layers) == ["0", "1"] and layers["1"]["matrices"] == 7
    assert layers["1"]["spikes"] == 2 and layers["1"]["matrices_with_spikes"] == 1
    assert modules["q"]["matrices"] == 2 and modules["q"]["delta_fro"] == pytest.approx(np.sqrt(50), rel=1e-5)
    assert modules["embedding"]["matrices"] == 1 and modules["k"]["delta_fro"] == 0.0
    assert families["attention"]["matrices"] == 8 and families["mlp"]["matrices"] == 6
    assert summary["top_changed"][0]["name"] == Q.format(1)


@pytest.mark.parametrize(
    ("name", "layer", "module", "family"),
    [
        ("model.layers.12.self_attn.q_proj.weight", 12, "q", "attention"),
        ("model.layers.3.mlp.down_proj.weight", 3, "down", "mlp"),
        ("transformer.h.5.attn.c_attn.weight", 5, "qkv", "attention"),
        ("transformer.h.5.attn.c_proj.weight", 5, "o", "attention"),
        ("transformer.h.5.mlp.c_proj.weight", 5, "down", "mlp"),
        ("encoder.layer.2.attention.output.dense.weight", 2, "o", "attention"),
        ("encoder.layer.2.intermediate.dense.weight", 2, "up", "mlp"),
        ("encoder.layer.2.output.dense.weight", 2, "down", "mlp"),
        ("model.embed_tokens.weight", None, "embedding", "embedding"),
        ("lm_head.weight", None, "lm_head", "embedding"),
        ("model.layers.0.something_new.weight", 0, "other", "other"),
    ],
)
def test_weight_names_give_layer_and_module_type(name, layer, module, family):
    where = describe(name)
    assert (where.layer, where.module, where.family) == (layer, module, family)


def test_the_randomized_svd_matches_the_exact_top_values():
    rng = np.random.default_rng(3)
    spectrum = 10.0 * 0.8 ** np.arange(500)
    matrix = orthonormal(rng, 600, 500) @ np.diag(spectrum) @ orthonormal(rng, 500, 500).T
    exact = np.linalg.svd(matrix, compute_uv=False)[:16]
    found = randomized_svd(matrix, 16, 8, WeightsOptions(), np.random.default_rng(0), float(np.sum(spectrum**2)))
    assert found.method == "randomized" and not found.complete
    assert np.max(np.abs(found.values - exact) / exact) < 1e-3
    assert found.left.shape == (600, 8) and found.right.shape == (500, 8)


@pytest.mark.parametrize("shape", [(700, 30), (30, 700), (40, 40)])
def test_the_blockwise_exact_svd_matches_numpy_on_tall_wide_and_square_matrices(shape, monkeypatch):
    monkeypatch.setattr("lmdelta.weights.spectrum.BLOCK", 2000)  # several row blocks even at this size
    matrix = np.random.default_rng(5).standard_normal(shape)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    found = exact_svd(matrix, 5, frobenius_sq(matrix))
    assert found.values == pytest.approx(s, rel=1e-10)
    assert found.left.shape == (shape[0], 5) and found.right.shape == (shape[1], 5)
    assert np.abs(np.sum(found.left * u[:, :5], axis=0)) == pytest.approx(np.ones(5), abs=1e-8)  # up to sign
    assert np.abs(np.sum(found.right * vt[:5].T, axis=0)) == pytest.approx(np.ones(5), abs=1e-8)


def test_large_matrices_take_the_randomized_path_and_say_their_bounds(planted, tmp_path):
    analyse(*planted, tmp_path / "out", WeightsOptions(exact_max_dim=16, top_k=4))
    row = rows_by_name(tmp_path / "out")[Q.format(1)]
    assert row["svd"] == "randomized" and not row["spectrum_complete"]
    assert row["numerical_rank"] == 2 and row["spikes"] == 2 and not row["spikes_capped"]
    assert len(row["singular_values"]) == 8  # top_k raised to the largest energy rank
    assert row["effective_rank"] == pytest.approx(2.0, abs=1e-2)  # an upper bound: ~no energy unseen


def test_the_marchenko_pastur_null_matches_a_gaussian_matrix():
    rng = np.random.default_rng(4)
    shape = (400, 200)
    values = np.linalg.svd(0.3 * rng.standard_normal(shape), compute_uv=False)
    expected = mp_singular_values(shape, 0.3)
    assert np.max(np.abs(expected - values)) / values[0] < 0.03
    assert values[0] == pytest.approx(mp_edge(0.3, shape), rel=0.03)


def test_outputs_are_written_and_readable_with_a_null_finetune_beside(planted, tmp_path):
    a, b = planted
    null = analyse(a, a, tmp_path / "null")
    assert null["totals"]["changed"] == 0
    summary = analyse(a, b, tmp_path / "out", WeightsOptions(null_summary=tmp_path / "null" / WEIGHTS_SUMMARY))
    on_disk = json.loads((tmp_path / "out" / WEIGHTS_SUMMARY).read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["models"]["a"]["folder"] == str(a.resolve()) and on_disk["models"]["a"]["model_type"] == "llama"
    assert on_disk["null_finetune"]["matrices"] == 15 and on_disk["null_finetune"]["ratio"] is None
    assert len(list(read_jsonl(tmp_path / "out" / WEIGHTS))) == 15
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(StageError, match="null_summary"):
        analyse(a, b, tmp_path / "out2", WeightsOptions(null_summary=tmp_path / "nowhere.json"))


def test_resolving_a_model_string_names_the_problem(tmp_path):
    folder = write_model(tmp_path / "m", base_tensors())
    assert resolve_model_folder(str(folder)) == folder.resolve()
    with pytest.raises(LmdeltaError, match="without weight files"):
        resolve_model_folder("fake:words")
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_model_folder("some-org/not-cached-model")


@pytest.mark.slow
def test_the_embedded_smollm2_against_itself_changes_nothing(tmp_path):
    try:
        folder = resolve_model_folder("embedded:smollm2-135m-instruct")
    except LmdeltaError as exc:
        pytest.skip(f"embedded SmolLM2 not available: {exc}")
    summary = analyse(folder, folder, tmp_path / "out")
    assert summary["totals"]["matrices"] > 200 and summary["totals"]["changed"] == 0
    assert summary["totals"]["relative_change"] == 0.0 and summary["totals"]["spikes"] == 0
    assert summary["by_module"]["q"]["matrices"] == 30


def test_a_dora_adapter_is_refused_with_the_fix(tmp_path):
    factors = {"model.layers.0.self_attn.q_proj": (np.ones((2, HIDDEN)), np.ones((HIDDEN, 2)))}
    adapter = write_adapter(tmp_path / "adapter", factors, {"r": 2, "lora_alpha": 2, "use_dora": True})
    with pytest.raises(StageError, match=r"DoRA adapter.*merge_and_unload"):
        analyse(write_model(tmp_path / "base", base_tensors()), adapter, tmp_path / "out")


@pytest.mark.slow
def test_a_real_peft_adapter_reads_like_its_merged_model(tiny_model, tmp_path):
    """PEFT's own key names, rsLoRA scaling and embedding adapters, against PEFT's own merge."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    model = peft.get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model),
        peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "embed_tokens"], use_rslora=True),
    )
    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "lora_B" in name or "lora_embedding" in name:
            parameter.data.normal_(0, 0.1)  # PEFT starts B at zero: give the adapter something to say
    model.save_pretrained(tmp_path / "adapter")
    model.merge_and_unload().save_pretrained(tmp_path / "merged")
    analyse(tiny_model, tmp_path / "adapter", tmp_path / "lora")
    analyse(tiny_model, tmp_path / "merged", tmp_path / "dense")
    lora, dense = rows_by_name(tmp_path / "lora"), rows_by_name(tmp_path / "dense")
    assert len(lora) == 5 and all(row["svd"] == "factors" for row in lora.values())
    for name, row in lora.items():
        assert row["singular_values"][:4] == pytest.approx(dense[name]["singular_values"][:4], rel=1e-4)
        assert row["numerical_rank"] == dense[name]["numerical_rank"] == 4


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_every_float_type_reads_back_exactly(tmp_path, dtype):
    values = np.random.default_rng(3).standard_normal((7, 5)).astype(dtype)
    save_file({"w.weight": values, "x.weight": values[:2] * 2}, str(tmp_path / "model.safetensors"))
    checkpoint = Checkpoint.open(tmp_path)
    back = checkpoint.read("w.weight")
    assert back.dtype == (np.float64 if dtype == np.float64 else np.float32)
    assert np.array_equal(back, values.astype(back.dtype)) and np.array_equal(
        checkpoint.read("x.weight"), values[:2] * 2
    )


def test_bf16_is_widened_in_blocks_that_need_not_divide_the_tensor(tmp_path, monkeypatch):
    import lmdelta.weights.checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "BF16_BLOCK", 7)
    values = np.arange(-30, 30, dtype=np.float32).reshape(6, 10) / 8  # exact in bf16
    write_bf16_file(tmp_path / "model.safetensors", "w.weight", values)
    assert np.array_equal(Checkpoint.open(tmp_path).read("w.weight"), values)


def test_bf16_rounding_does_not_count_toward_the_numerical_rank(tmp_path):
    from lmdelta.weights.quantize import to_bfloat16

    rng = np.random.default_rng(4)
    w_a = to_bfloat16(rng.standard_normal((96, 64)).astype(np.float32) / 8)
    edit = 0.5 * orthonormal(rng, 96, 2) @ orthonormal(rng, 64, 2).T
    w_b = to_bfloat16((w_a + edit).astype(np.float32))  # the edit, plus b's own rounding to bf16
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_bf16_file(tmp_path / "a" / "model.safetensors", Q.format(0), w_a)
    write_bf16_file(tmp_path / "b" / "model.safetensors", Q.format(0), w_b)
    analyse(tmp_path / "a", tmp_path / "b", tmp_path / "out")
    row = rows_by_name(tmp_path / "out")[Q.format(0)]
    assert row["numerical_rank"] == 2  # float32's rule alone counts every rounding direction: 64
    assert row["singular_values"][:2] == pytest.approx([0.5, 0.5], rel=0.02)
