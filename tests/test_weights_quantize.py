"""A side loaded in 4 or 8 bits runs on rebuilt weights: the analysis measures the quantization error as a
difference of weights (NF4 blocks of 64 scaled by their absolute maximum; int8 rows likewise)."""

from __future__ import annotations

import numpy as np
import pytest
from test_weights import Q, base_tensors, rows_by_name, write_model

from lmdelta.config import load_config
from lmdelta.stages import weights as stage
from lmdelta.weights import analyse
from lmdelta.weights.quantize import NF4_LEVELS, int8_roundtrip, nf4_roundtrip, to_bfloat16


def test_nf4_keeps_its_own_levels_and_rounds_the_rest_to_the_nearest():
    scale = 3.0
    exact = (NF4_LEVELS[np.arange(64) % 16] * scale).astype(np.float32)
    exact[0] = -scale  # the block's absolute maximum is its scale
    assert np.array_equal(nf4_roundtrip(exact), exact)
    rng = np.random.default_rng(0)
    values = rng.standard_normal((8, 64)).astype(np.float32)
    back = nf4_roundtrip(values)
    gap = np.diff(NF4_LEVELS).max() / 2
    assert np.all(np.abs(back - values) <= gap * np.abs(values).max(axis=1, keepdims=True) + 1e-6)
    assert np.all(np.isin(np.round(back / np.abs(values).max(axis=1, keepdims=True), 5), np.round(NF4_LEVELS, 5)))


def test_nf4_blocks_are_scaled_on_their_own_and_zeros_stay_zero():
    values = np.concatenate([np.full(64, 0.01), np.full(64, 100.0), np.zeros(64)]).astype(np.float32).reshape(3, 64)
    assert np.allclose(nf4_roundtrip(values), values)  # each block is its own absmax: exact


def test_int8_rows_round_to_within_half_a_step():
    rng = np.random.default_rng(1)
    values = (rng.standard_normal((16, 40)) * np.arange(1, 17)[:, None]).astype(np.float32)
    step = np.abs(values).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(int8_roundtrip(values) - values) <= step / 2 + 1e-6)


def test_bfloat16_rounds_to_nearest_even():
    values = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, -2.5, 1 + 2**-9 + 2**-7], dtype=np.float32)
    # 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to the even 1; 1 + 3·2^-8, a tie, to the even 1 + 2^-6
    assert to_bfloat16(values).tolist() == [1.0, 1.0, 1 + 2**-6, -2.5, 1 + 2**-7]


def test_a_model_against_its_4bit_self_changes_its_linear_layers_only(tmp_path):
    folder = write_model(tmp_path / "m", base_tensors())
    summary = analyse(folder, folder, tmp_path / "out", quantization=("none", "4bit"))
    rows = rows_by_name(tmp_path / "out")
    assert rows["model.embed_tokens.weight"]["delta_fro"] == 0.0  # bitsandbytes leaves embeddings alone
    q = rows[Q.format(0)]
    assert 0.03 < q["relative_change"] < 0.2  # NF4 on Gaussian weights: ~10 % of the norm
    assert q["effective_rank"] > 20  # rounding noise spreads over every direction
    assert summary["models"]["b"]["quantization"] == "4bit" and "quantization" not in summary["models"]["a"]
    eight = analyse(folder, folder, tmp_path / "out8", quantization=("none", "8bit"))
    assert 0 < eight["totals"]["relative_change"] < summary["totals"]["relative_change"] / 4  # int8 is finer


def test_the_stage_runs_for_a_quantized_copy_of_the_same_model(tmp_path):
    folder = write_model(tmp_path / "m", base_tensors())
    same = [f"generate.a.model={folder}", f"generate.b.model={folder}"]
    assert "same weights" in stage.why_not(load_config(None, same, env={}))
    assert stage.why_not(load_config(None, [*same, "generate.b.quantization=4bit"], env={})) is None


@pytest.mark.parametrize("scheme", ["4bit", "8bit"])
def test_quantized_weights_are_deterministic(tmp_path, scheme):
    folder = write_model(tmp_path / "m", base_tensors())
    one = analyse(folder, folder, tmp_path / "one", quantization=("none", scheme))["totals"]["delta_fro"]
    two = analyse(folder, folder, tmp_path / "two", quantization=("none", scheme))["totals"]["delta_fro"]
    assert one == two > 0


def test_an_adapter_on_a_quantized_side_says_the_quantization_was_not_applied(tmp_path):
    from test_weights import write_adapter

    rng = np.random.default_rng(5)
    factors = {"model.layers.0.self_attn.q_proj": (rng.standard_normal((2, 48)), rng.standard_normal((48, 2)))}
    config = {"r": 2, "lora_alpha": 2, "target_modules": ["q_proj"], "base_model_name_or_path": "x"}
    base = write_model(tmp_path / "base", base_tensors())
    adapter = write_adapter(tmp_path / "adapter", factors, config)
    summary = analyse(base, adapter, tmp_path / "out", quantization=("none", "4bit"))
    assert summary["mode"] == "lora" and summary["models"]["b"]["quantization_applied"] is False
    dense = analyse(base, base, tmp_path / "dense", quantization=("none", "4bit"))
    assert dense["models"]["b"]["quantization_applied"] is True
