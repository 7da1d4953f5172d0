"""What a weight's name says about it: its layer (block) index and its module type (attention q/k/v/o,
MLP gate/up/down, embeddings), across the naming schemes of the common Hugging Face architectures."""

from __future__ import annotations

import re
from dataclasses import dataclass

LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block|decoder_layers)\.(\d+)\.")
# Module (the name's second-to-last part) → type. GPT-2's c_proj and Falcon/BERT's dense are the
# attention output or the MLP's down projection depending on where they sit, so those are read in context.
MODULE_TYPES = {
    "q": ("q_proj", "query", "wq", "q_lin", "q"),
    "k": ("k_proj", "key", "wk", "k_lin", "k"),
    "v": ("v_proj", "value", "wv", "v_lin", "v"),
    "o": ("o_proj", "out_proj", "wo", "out_lin", "o"),
    "qkv": ("qkv_proj", "c_attn", "query_key_value", "wqkv", "qkv", "w_pack"),
    "gate": ("gate_proj", "w1"),
    "up": ("up_proj", "w3", "c_fc", "fc1", "dense_h_to_4h", "lin1"),
    "down": ("down_proj", "w2", "fc2", "dense_4h_to_h", "lin2"),
    "gate_up": ("gate_up_proj",),
    "embedding": ("embed_tokens", "wte", "wpe", "word_embeddings", "embed_in", "position_embeddings", "embeddings"),
    "lm_head": ("lm_head", "embed_out", "output"),
}
BY_MODULE = {module: kind for kind, modules in MODULE_TYPES.items() for module in modules}
FAMILIES = {
    "attention": ("q", "k", "v", "o", "qkv"),
    "mlp": ("gate", "up", "down", "gate_up"),
    "embedding": ("embedding", "lm_head"),
}
BY_TYPE = {kind: family for family, kinds in FAMILIES.items() for kind in kinds}
ATTENTION_PARENTS = ("attn", "attention", "self_attn", "self_attention", "attention.output")


@dataclass(frozen=True)
class WeightName:
    """A weight's place in the model: layer index (None outside the blocks), module type and family."""

    layer: int | None
    module: str  # a key of MODULE_TYPES, or "other"
    family: str  # attention, mlp, embedding or other


def describe(name: str) -> WeightName:
    match = LAYER.search(name)
    module = module_type(name)
    return WeightName(int(match.group(1)) if match else None, module, BY_TYPE.get(module, "other"))


def module_type(name: str) -> str:
    parts = name.removesuffix(".weight").split(".")
    leaf = parts[-1].lower()
    parent = ".".join(parts[-3:-1]).lower()
    if leaf in ("c_proj", "dense"):
        return "o" if any(parent.endswith(word) for word in ATTENTION_PARENTS) else _in_context(leaf, parent)
    if parent.endswith("densereludense"):  # T5: wo is the MLP's output there, not attention's
        return {"wi": "up", "wi_0": "gate", "wi_1": "up", "wo": "down"}.get(leaf, "other")
    return BY_MODULE.get(leaf, "other")


def _in_context(leaf: str, parent: str) -> str:
    """GPT-2's mlp.c_proj and BERT's output.dense (after intermediate.dense) are down projections."""
    if leaf == "c_proj" and parent.endswith("mlp"):
        return "down"
    if leaf == "dense" and parent.endswith("intermediate"):
        return "up"
    if leaf == "dense" and parent.split(".")[-1] == "output":
        return "down"
    return "other"
