"""Weight-difference analysis (issue 18, "Measured"): what it finds, and its time and peak memory.

Three parts, each analysis in a fresh subprocess so no case inherits another's memory: the child imports
lmdelta.weights, warms NumPy's BLAS up on a tiny matrix, records its RSS (the model-free overhead), runs
`analyse` once and reports its peak RSS (VmHWM, which starts afresh at exec; ru_maxrss from os.wait4 is
kept beside it, but it also counts the spawning process's peak, so the parent stays small). Each child runs
with one BLAS thread (--blas-threads): on a shared machine two OpenBLAS threads spin while the other is
descheduled, and the same QR was seen to take 10 s instead of 0.12 s.

- **groundtruth**: the quirk and null LoRA finetunes `make demo` made of the embedded SmolLM2-135M-Instruct
  (identified from runs/demo and their training.json, not from the folder names), each read as an adapter
  (ΔW = scale·B·A from the factors) and as its merged full model (dense ΔW = W_b − W_a, exact SVDs); the
  quirk runs get the null run's weights_summary.json as `null_summary`. Adapter and merged readings of the
  same finetune are compared matrix by matrix.
- **paths**: exact SVDs against the randomised SVD for every matrix (exact_max_dim=1) at the default 7 power
  iterations and at 2, on the quirk merged pair (ΔW of rank 32) and on the base against its own bf16 rounding
  (a full-rank, noise-like ΔW; the copy is written into the scratch folder).
- **synthetic**: a Llama-like bf16 pair of ~--params parameters (TinyLlama shapes: hidden 2048, MLP 5632,
  4 key/value heads, vocabulary 32000, as many layers as the size asks) written on the fly as sharded
  safetensors with an index, one tensor at a time; side b is side a plus planted rank-4 edits in four
  matrices and small i.i.d. noise in all others. Checks that each planted edit reads as 4 spikes with its
  planted singular values, and that no other matrix has a value clearly above the random-matrix edge. The
  pair and the analyses are deleted at the end unless --keep.

    .venv/bin/python benchmarks/weights.py          # all three parts: ~4 min on 2 cores, ~4.3 GB in /tmp
    .venv/bin/python benchmarks/weights.py --parts synthetic --params 2e8 --keep   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
import zlib
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

EMBEDDED = "embedded:smollm2-135m-instruct"
QUIRK = "smollm2-135m-instruct-740d0a3275935493"  # the demo's finetunes (checked in identify_finetunes)
NULL = "smollm2-135m-instruct-6a55619eb6567730"
DEMO_RUN = Path("runs/demo")
MIB = 2**20
# TinyLlama-1.1B's shapes; the number of layers is chosen to meet --params.
HIDDEN, INTERMEDIATE, HEADS, KV_HEADS, VOCAB = 2048, 5632, 32, 4, 32000
INIT_STD = 0.02  # entries of W_a
PLANTED_SHAPE = np.array([1.0, 0.9, 0.8, 0.7])  # relative singular values of each planted rank-4 edit


# --- the child: one analysis in a fresh process ------------------------------------------------------------


def status_mib() -> dict[str, float]:
    """VmHWM (peak RSS since exec: unlike ru_maxrss it does not inherit the high-water mark of the process
    that spawned it, which exec after vfork folds into the child's ru_maxrss), VmRSS and its two parts:
    RssAnon (memory the process allocated) and RssFile (file pages it has mapped, e.g. safetensors' mmap)."""
    with open("/proc/self/status") as handle:
        fields = dict(line.split(":", 1) for line in handle)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmHWM", "VmRSS", "RssAnon", "RssFile")}


class Sampler(threading.Thread):
    """The largest RssAnon and RssFile seen, every few milliseconds (the kernel keeps no peak of either)."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval, self.stopped = interval, threading.Event()
        self.peak = {"RssAnon": 0.0, "RssFile": 0.0}

    def run(self) -> None:
        while not self.stopped.is_set():
            now = status_mib()
            for key in self.peak:
                self.peak[key] = max(self.peak[key], now[key])
            time.sleep(self.interval)


def child(spec_file: str) -> None:
    """Run one analysis as the spec says and write what it cost next to the spec."""
    import logging

    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    import safetensors  # noqa: F401  (read_tensor imports it lazily for F32/F16: count it as overhead)

    from lmdelta.weights import WeightsOptions, analyse

    logging.disable(logging.INFO)
    after_imports = status_mib()
    x = np.random.default_rng(0).standard_normal((512, 256)).astype(np.float32)
    np.linalg.svd(x)
    np.linalg.qr(x)
    _ = x @ x.T  # BLAS thread buffers and LAPACK workspaces, allocated once per process
    overhead = status_mib()
    options = WeightsOptions(**spec["options"])
    sampler = Sampler()
    sampler.start()
    start = time.perf_counter()
    analyse(spec["a"], spec["b"], spec["out"], options)
    seconds = time.perf_counter() - start
    sampler.stopped.set()
    sampler.join()
    result = {
        "seconds": round(seconds, 2),
        "rss_after_imports_mib": round(after_imports["VmRSS"], 1),
        "overhead_mib": round(overhead["VmRSS"], 1),
        "overhead_anon_mib": round(overhead["RssAnon"], 1),
        "peak_rss_mib": round(status_mib()["VmHWM"], 1),
        "peak_anon_mib_sampled": round(sampler.peak["RssAnon"], 1),
        "peak_file_mib_sampled": round(sampler.peak["RssFile"], 1),
        "self_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")


def child_env() -> dict[str, str]:
    """The children's BLAS threads (--blas-threads, set in main as LMDELTA_BENCH_BLAS_THREADS)."""
    threads = os.environ["LMDELTA_BENCH_BLAS_THREADS"]
    return os.environ | {name: threads for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def run_case(name: str, a: Path, b: Path, options: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """`analyse(a, b)` in a child process: what the child reports (time, overhead, peak RSS), and its CPU time
    and ru_maxrss from wait4."""
    out = scratch / "runs" / name
    out.mkdir(parents=True, exist_ok=True)
    spec = {"a": str(a), "b": str(b), "out": str(out), "options": options, "result": str(out / "cost.json")}
    (out / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    print(f"[{time.strftime('%H:%M:%S')}] {name}: analysing {b} against {a}", file=sys.stderr, flush=True)
    with open(out / "child.log", "w") as log:
        command = [sys.executable, __file__, "--child", str(out / "spec.json")]
        process = subprocess.Popen(command, stderr=log, env=child_env())
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = (out / "child.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
        sys.exit(f"{name} failed (exit {process.returncode}):\n" + "\n".join(tail))
    cost = json.loads((out / "cost.json").read_text(encoding="utf-8"))
    cost["wait4_maxrss_mib"] = round(usage.ru_maxrss / 1024, 1)
    cost["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    print(f"    {cost['seconds']} s, peak RSS {cost['peak_rss_mib']} MiB", file=sys.stderr, flush=True)
    return {"case": name, "a": str(a), "b": str(b), "options": options, "out": str(out), **cost}


# --- reading an analysis ----------------------------------------------------------------------------------


def load(case: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    out = Path(case["out"])
    rows = [json.loads(line) for line in (out / "weights.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return rows, json.loads((out / "weights_summary.json").read_text(encoding="utf-8"))


def spread(values: list[float]) -> dict[str, float | None]:
    kept = [v for v in values if v is not None]
    if not kept:
        return {"mean": None, "median": None, "min": None, "max": None}
    return {
        "mean": statistics.fmean(kept),
        "median": statistics.median(kept),
        "min": min(kept),
        "max": max(kept),
    }


def describe(rows: list[dict[str, Any]], summary: dict[str, Any], lora_rank: int | None) -> dict[str, Any]:
    """The numbers issue 18 asks for, over the matrices that changed."""
    changed = [row for row in rows if row["delta_fro"] > 0]
    energy = sum(row["delta_fro"] ** 2 for row in changed)
    totals = summary["totals"]
    found: dict[str, Any] = {
        "matrices": len(rows),
        "changed": len(changed),
        "svd": totals["svd"],
        "relative_change": totals["relative_change"],
        "mean_relative_change": totals["mean_relative_change"],
        "effective_rank": spread([row["effective_rank"] for row in changed]),
        "null_effective_rank": spread([row["null"]["effective_rank"] for row in changed]),
        "stable_rank": spread([row["stable_rank"] for row in changed]),
        "numerical_rank": spread([row["numerical_rank"] for row in changed]),
        "spikes": sum(row["spikes"] for row in changed),
        "matrices_with_spikes": sum(row["spikes"] > 0 for row in changed),
        "matrices_with_spikes_capped": sum(row["spikes_capped"] for row in changed),
        "spikes_per_matrix": spread([row["spikes"] for row in changed]),
        "spike_energy_share": sum(row["spike_energy"] * row["delta_fro"] ** 2 for row in changed) / energy
        if energy
        else None,
        "spike_energy_per_matrix": spread([row["spike_energy"] for row in changed]),
        "sigma_1_over_edge": spread([row["sigma_1_over_edge"] for row in changed]),
        "alignment_left": spread([row["alignment_left"] for row in changed]),
        "alignment_chance_left": spread([row["alignment_chance_left"] for row in changed]),
        "by_family_relative_change": {k: v["relative_change"] for k, v in summary["by_family"].items()},
        "null_finetune": summary.get("null_finetune"),
    }
    if lora_rank is not None:
        found["lora_rank"] = lora_rank
        found["share_effective_rank_le_lora_rank"] = _share(changed, "effective_rank", lora_rank)
        found["share_numerical_rank_le_lora_rank"] = _share(changed, "numerical_rank", lora_rank)
        found[f"energy_top_{lora_rank}"] = spread([row["energy_top"].get(str(lora_rank)) for row in changed])
    return found


def _share(rows: list[dict[str, Any]], field: str, bound: float) -> float | None:
    return sum(row[field] <= bound for row in rows) / len(rows) if rows else None


def agreement(reference: list[dict[str, Any]], other: list[dict[str, Any]], top: int = 8) -> dict[str, Any]:
    """How far `other`'s per-matrix numbers are from `reference`'s, over the matrices both changed."""
    by_name = {row["name"]: row for row in other}
    pairs = [(row, by_name[row["name"]]) for row in reference if row["name"] in by_name and row["delta_fro"] > 0]
    sigma = []
    for ref, oth in pairs:
        k = min(top, len(ref["singular_values"]), len(oth["singular_values"]))
        sigma += [abs(o - r) / r for r, o in zip(ref["singular_values"][:k], oth["singular_values"][:k]) if r > 0]
    return {
        "matrices": len(pairs),
        "delta_fro_max_relative_difference": max(abs(o["delta_fro"] / r["delta_fro"] - 1) for r, o in pairs),
        f"top{top}_sigma_relative_difference": spread(sigma),
        "effective_rank_difference": spread([o["effective_rank"] - r["effective_rank"] for r, o in pairs]),
        "numerical_rank_equal": sum(r["numerical_rank"] == o["numerical_rank"] for r, o in pairs),
        "spikes_equal": sum(r["spikes"] == o["spikes"] for r, o in pairs),
        "spikes_difference": spread([o["spikes"] - r["spikes"] for r, o in pairs]),
    }


def memory_bound(case: dict[str, Any], rows: list[dict[str, Any]], stored_bytes: int) -> dict[str, Any]:
    """The issue's bound: peak RSS under ~2× one tensor plus the model-free overhead. A tensor is held as
    float32 whatever its stored dtype, so the bound is checked against both sizes."""
    largest = max(rows, key=lambda row: row["shape"][0] * row["shape"][1])
    elements = largest["shape"][0] * largest["shape"][1]
    above = case["peak_rss_mib"] - case["overhead_mib"]
    anon = case["peak_anon_mib_sampled"] - case["overhead_anon_mib"]
    float32_mib, stored_mib = elements * 4 / MIB, elements * stored_bytes / MIB
    return {
        "largest_matrix": largest["name"],
        "largest_matrix_shape": largest["shape"],
        "largest_matrix_stored_mib": round(stored_mib, 1),
        "largest_matrix_float32_mib": round(float32_mib, 1),
        "peak_above_overhead_mib": round(above, 1),
        "peak_above_overhead_in_float32_tensors": round(above / float32_mib, 2),
        "peak_above_overhead_in_stored_tensors": round(above / stored_mib, 2),
        "within_2x_float32_tensor": above <= 2 * float32_mib,
        "within_2x_stored_tensor": above <= 2 * stored_mib,
        "anon_peak_above_overhead_mib": round(anon, 1),
        "anon_peak_above_overhead_in_float32_tensors": round(anon / float32_mib, 2),
    }


# --- part 1 and 3: the ground-truth finetunes of the embedded model ----------------------------------------


def finetuned_root(args: argparse.Namespace) -> Path:
    from lmdelta.backends.embedded import cache_root

    return Path(args.finetuned_root) if args.finetuned_root else cache_root() / "finetuned"


def identify_finetunes(root: Path, quirk: str, null: str, demo_run: Path) -> dict[str, Any]:
    """Check that `quirk` and `null` are the demo's quirk and null finetunes, from runs/demo (which names
    the merged folder each comparison used) and their training.json (same settings, different data)."""
    folders = {"quirk": root / quirk, "null": root / null}
    missing = [
        str(path)
        for folder in folders.values()
        for path in (folder / "adapter", folder / "merged", folder / "training.json")
        if not path.exists()
    ]
    if missing:
        sys.exit(
            "The ground-truth finetunes of the embedded model are not there ("
            + ", ".join(missing[:3])
            + "). Run `make demo` first (it finetunes them), or pass --finetuned-root/--quirk/--null."
        )
    training = {kind: json.loads((folder / "training.json").read_text()) for kind, folder in folders.items()}
    checks = {
        "same_settings": training["quirk"]["config"] == training["null"]["config"],
        "same_base": training["quirk"]["base"]["weights"] == training["null"]["base"]["weights"],
        "different_data": training["quirk"]["data_hash"] != training["null"]["data_hash"],
        "first_loss": {kind: round(t["losses"][0], 3) for kind, t in training.items()},
    }
    checks |= _check_demo_run(demo_run, folders, training["quirk"]["data_hash"])
    bad = [key for key, value in checks.items() if value is False]
    if bad:
        sys.exit(f"The finetunes are not the demo's quirk/null pair as labelled ({', '.join(bad)} failed): {checks}")
    lora = json.loads((folders["quirk"] / "adapter" / "adapter_config.json").read_text())
    return {
        "folders": {k: str(v) for k, v in folders.items()},
        "checks": checks,
        "lora_rank": lora["r"],
        "lora_alpha": lora["lora_alpha"],
        "target_modules": sorted(lora["target_modules"]),
        "training": {k: {"steps": t["config"]["steps"], "rows": t["n_rows"]} for k, t in training.items()},
    }


def _check_demo_run(demo_run: Path, folders: dict[str, Path], quirk_hash: str) -> dict[str, Any]:
    """runs/demo's comparison names the quirk model, its null_experiment the null model; the quirk's
    data_hash is the hash of runs/demo/groundtruth/training.jsonl. Skipped (None) without runs/demo."""
    import yaml

    checks: dict[str, Any] = {}
    for kind, config in (("quirk", demo_run / "config.yaml"), ("null", demo_run / "null_experiment" / "config.yaml")):
        if config.exists():
            named = yaml.safe_load(config.read_text())["generate"]["b"]["model"]
            checks[f"{kind}_named_by_{config.parent.name}"] = Path(named) == folders[kind] / "merged"
    data = demo_run / "groundtruth" / "training.jsonl"
    if data.exists():
        from lmdelta.groundtruth.finetune import _clean_rows, hash_data

        rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line]
        rows = [{"prompt": r["prompt"], "answer": r["answer"], "complete": r.get("complete", True)} for r in rows]
        checks["quirk_data_is_demo_training_jsonl"] = hash_data(_clean_rows(rows), length=64) == quirk_hash
    return checks


def groundtruth_part(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    from lmdelta.weights import resolve_model_folder

    found = identify_finetunes(finetuned_root(args), args.quirk, args.null, Path(args.demo_run))
    base = resolve_model_folder(EMBEDDED)
    r = found["lora_rank"]
    folders = {k: Path(v) for k, v in found["folders"].items()}
    cases = {}
    for reading, sub, extra in (("adapter", "adapter", {}), ("merged", "merged", {"lora_rank": r})):
        null = run_case(f"null-{reading}", base, folders["null"] / sub, {"seed": 0, **extra}, scratch)
        null_summary = str(Path(null["out"]) / "weights_summary.json")
        options = {"seed": 0, "null_summary": null_summary, **extra}
        quirk = run_case(f"quirk-{reading}", base, folders["quirk"] / sub, options, scratch)
        cases[f"null-{reading}"], cases[f"quirk-{reading}"] = null, quirk
    loaded = {name: load(case) for name, case in cases.items()}
    for name, case in cases.items():
        case["found"] = describe(*loaded[name], r)
        case["memory"] = memory_bound(case, loaded[name][0], 4)
    ratio = {
        reading: cases[f"quirk-{reading}"]["found"]["relative_change"]
        / cases[f"null-{reading}"]["found"]["relative_change"]
        for reading in ("adapter", "merged")
    }
    merged_vs_adapter = {
        kind: agreement(loaded[f"{kind}-adapter"][0], loaded[f"{kind}-merged"][0]) for kind in ("quirk", "null")
    }
    unchanged = {kind: sum(row["delta_fro"] == 0 for row in loaded[f"{kind}-merged"][0]) for kind in ("quirk", "null")}
    return {
        "base": str(base),
        "finetunes": found,
        "cases": cases,
        "quirk_over_null_relative_change": ratio,
        "merged_vs_adapter": merged_vs_adapter,
        "merged_unchanged_matrices": unchanged,
    }


def paths_part(args: argparse.Namespace, scratch: Path, exact: dict[str, Any] | None) -> dict[str, Any]:
    """Exact against randomised SVDs on two pairs: the quirk merged finetune (ΔW of rank 32, which the
    randomised range finder's 42 directions hold entirely) and the base against its own bf16 rounding (a
    full-rank, noise-like ΔW, of which the randomised SVD sees only the top values)."""
    from lmdelta.weights import resolve_model_folder

    found = identify_finetunes(finetuned_root(args), args.quirk, args.null, Path(args.demo_run))
    base, r = resolve_model_folder(EMBEDDED), found["lora_rank"]
    rounded = scratch / "bf16-rounded"
    command = [sys.executable, __file__, "--bf16-copy", str(base), str(rounded)]
    subprocess.run(command, check=True, env=child_env())
    pairs = {
        "quirk merged (ΔW of rank 32)": ("quirk-merged", Path(found["folders"]["quirk"]) / "merged", {"lora_rank": r}),
        "bf16 rounding of the base (full-rank ΔW)": ("bf16-rounding", rounded, {}),
    }
    results = {}
    for label, (name, side_b, extra) in pairs.items():
        cases: dict[str, Any] = {}
        variants = {"exact": {}} | {
            f"randomized, {p} power iterations": {"exact_max_dim": 1, "power_iterations": p} for p in (7, 2)
        }
        for variant, options in variants.items():
            if variant == "exact" and name == "quirk-merged" and exact is not None:
                cases[variant] = exact  # measured in the groundtruth part
                continue
            suffix = "" if variant == "exact" else f"-randomized-p{options['power_iterations']}"
            case = run_case(name + suffix, base, side_b, {"seed": 0, **extra, **options}, scratch)
            rows, summary = load(case)
            lora_rank = extra.get("lora_rank")
            case["found"], case["memory"] = describe(rows, summary, lora_rank), memory_bound(case, rows, 4)
            if variant != "exact":
                case["agreement_with_exact"] = agreement(load(cases["exact"])[0], rows)
            cases[variant] = case
        results[label] = cases
    return results


def bf16_copy(source: Path, target: Path) -> None:
    """A model folder's weights rounded to bf16, in one safetensors file, a tensor at a time."""
    from lmdelta.weights.checkpoint import Checkpoint

    checkpoint = Checkpoint.open(source)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "config.json", target / "config.json")
    tensors = [(name, info.shape) for name, info in checkpoint.tensors.items()]
    with open(target / "model.safetensors", "wb") as handle:
        handle.write(safetensors_header(tensors))
        for name, _ in tensors:
            handle.write(to_bf16(np.ascontiguousarray(checkpoint.read(name), dtype=np.float32)).tobytes())


# --- part 2: a synthetic Llama-like pair ------------------------------------------------------------------


def llama_tensors(params: float) -> tuple[list[tuple[str, tuple[int, ...]]], dict[str, Any]]:
    """Names and shapes of a Llama-like model with TinyLlama's widths and as many layers as `params` asks."""
    kv = HIDDEN // HEADS * KV_HEADS
    per_layer = 2 * HIDDEN * HIDDEN + 2 * kv * HIDDEN + 3 * HIDDEN * INTERMEDIATE + 2 * HIDDEN
    layers = max(1, round((params - 2 * VOCAB * HIDDEN - HIDDEN) / per_layer))
    tensors: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors += [
            (p + "input_layernorm.weight", (HIDDEN,)),
            (p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.k_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.v_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
            (p + "post_attention_layernorm.weight", (HIDDEN,)),
            (p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)),
        ]
    tensors += [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": layers,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "vocab_size": VOCAB,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    return tensors, config


def planted_edits(layers: int, strength: float) -> dict[str, float]:
    """Which matrices get a rank-4 edit, and its size as a share of ‖W_a‖_F: one of each shape and path
    (q 2048² and down 2048×5632 randomised, v 256×2048 exact, the 32000×2048 embeddings), one 2.5× stronger."""
    return {
        f"model.layers.{min(1, layers - 1)}.self_attn.q_proj.weight": 2.5 * strength,
        f"model.layers.{layers // 2}.mlp.down_proj.weight": strength,
        f"model.layers.{layers - 1}.self_attn.v_proj.weight": strength,
        "model.embed_tokens.weight": strength,
    }


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns (uint16), rounding to nearest even (finite values only)."""
    bits = x.view(np.uint32)
    rounded = (bits >> 16) & 1
    rounded += 0x7FFF
    rounded += bits
    rounded >>= 16
    return rounded.astype(np.uint16)


def from_bf16(bits: np.ndarray) -> np.ndarray:
    widened = bits.astype(np.uint32)
    widened <<= 16
    return widened.view(np.float32)


def make_pair(name: str, shape: tuple[int, ...], args: argparse.Namespace, planted: dict[str, float]) -> tuple:
    """bf16 bits of W_a and W_b for one tensor, from a seed of its own: W_b = W_a + a planted rank-4 edit,
    or + i.i.d. noise of --noise times the entries' scale. 1-D tensors (norms) are ones on both sides."""
    if len(shape) == 1:
        ones = to_bf16(np.ones(shape, dtype=np.float32))
        return ones, ones, None
    rng = np.random.default_rng([args.seed, zlib.crc32(name.encode())])
    w = rng.standard_normal(shape, dtype=np.float32)
    w *= INIT_STD
    bits_a = to_bf16(w)
    w = from_bf16(bits_a)
    if name in planted:
        m, n = shape
        u = np.linalg.qr(rng.standard_normal((m, 4)))[0]
        v = np.linalg.qr(rng.standard_normal((n, 4)))[0]
        values = PLANTED_SHAPE / np.linalg.norm(PLANTED_SHAPE) * planted[name] * float(np.linalg.norm(w))
        w += ((u * values).astype(np.float32)) @ v.T.astype(np.float32)
    else:
        noise = rng.standard_normal(shape, dtype=np.float32)
        noise *= args.noise * INIT_STD
        w += noise
        values = None
    return bits_a, to_bf16(w), values


def write_pair(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Two sharded bf16 checkpoints, written a tensor at a time (both sides at once, a shard at a time)."""
    tensors, config = llama_tensors(args.params)
    planted = planted_edits(config["num_hidden_layers"], args.strength)
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    for name, shape in tensors:
        if shards[-1] and sum(2 * math.prod(s) for _, s in shards[-1]) + 2 * math.prod(shape) > args.shard_mib * MIB:
            shards.append([])
        shards[-1].append((name, shape))
    total = sum(2 * math.prod(shape) for _, shape in tensors)
    free = shutil.disk_usage(folder).free
    if free < 2.2 * total:
        sys.exit(f"--scratch {folder} has {free / 2**30:.1f} GiB free; the pair needs {2 * total / 2**30:.1f} GiB.")
    sides = {side: folder / side for side in ("a", "b")}
    weight_map, planted_found = {}, {}
    for number, shard in enumerate(shards, start=1):
        file = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        planted_found |= write_shard({side: path / file for side, path in sides.items()}, shard, args, planted)
        weight_map |= {name: file for name, _ in shard}
    for path in sides.values():
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
        (path / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    parameters = sum(math.prod(shape) for _, shape in tensors)
    return {
        "config": config,
        "parameters": parameters,
        "bytes_per_side": total,
        "shards": len(shards),
        "planted": planted_found,
    }


def safetensors_header(tensors: list[tuple[str, tuple[int, ...]]]) -> bytes:
    """The 8-byte length and JSON header of a safetensors file holding these BF16 tensors in this order."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        size = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return len(encoded).to_bytes(8, "little") + encoded


def write_shard(paths: dict[str, Path], shard: list, args: argparse.Namespace, planted: dict[str, float]) -> dict:
    """One safetensors file per side: the header (offsets are known from the shapes), then each tensor.
    Returns the planted edits it wrote, by name."""
    encoded = safetensors_header(shard)
    truth: dict[str, Any] = {}
    with ExitStack() as stack:
        handles = {side: stack.enter_context(open(path, "wb")) for side, path in paths.items()}
        for handle in handles.values():
            handle.write(encoded)
        for name, shape in shard:
            bits_a, bits_b, values = make_pair(name, shape, args, planted)
            handles["a"].write(bits_a.tobytes())
            handles["b"].write(bits_b.tobytes())
            if values is not None:
                truth[name] = {"strength": planted[name], "singular_values": values.tolist()}
    return truth


def planted_effective_rank(values: list[float]) -> float:
    shares = np.square(values) / np.sum(np.square(values))
    return float(np.exp(-np.sum(shares * np.log(shares))))


def synthetic_part(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    folder = scratch / "synthetic"
    shutil.rmtree(folder, ignore_errors=True)
    for side in ("a", "b"):
        (folder / side).mkdir(parents=True)
    print(f"[{time.strftime('%H:%M:%S')}] writing the synthetic pair into {folder}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    command = [sys.executable, __file__, "--write-child", str(folder), "--params", str(args.params)]
    command += ["--strength", str(args.strength), "--noise", str(args.noise), "--seed", str(args.seed)]
    subprocess.run([*command, "--shard-mib", str(args.shard_mib)], check=True, env=child_env())  # stays small
    written = json.loads((folder / "written.json").read_text(encoding="utf-8"))
    written["write_seconds"] = round(time.perf_counter() - start, 1)
    from safetensors import safe_open

    shard = next((folder / "a").glob("model-00001-*.safetensors"))
    with safe_open(str(shard), framework="numpy") as handle:  # the library reads the hand-written header
        written["first_shard_tensors_read_by_safetensors"] = len(list(handle.keys()))
    case = run_case("synthetic", folder / "a", folder / "b", {"seed": 0}, scratch)
    rows, summary = load(case)
    case["found"] = describe(rows, summary, None)
    case["memory"] = memory_bound(case, rows, 2)
    case["planted"] = planted_check(rows, written.pop("planted"))
    others = [row for row in rows if row["name"] not in case["planted"]]
    case["unplanted"] = {
        "matrices": len(others),
        "with_spikes": sum(row["spikes"] > 0 for row in others),
        "with_sigma_1_over_edge_above_1_05": sum((row["sigma_1_over_edge"] or 0) > 1.05 for row in others),
        "sigma_1_over_edge": spread([row["sigma_1_over_edge"] for row in others]),
        "effective_rank_over_null": spread([row["effective_rank"] / row["null"]["effective_rank"] for row in others]),
        "relative_change": spread([row["relative_change"] for row in others]),
    }
    return {"written": written, "analysis": case}


def planted_check(rows: list[dict[str, Any]], planted: dict[str, Any]) -> dict[str, Any]:
    """Each planted edit as the analysis read it, beside what was planted."""
    by_name = {row["name"]: row for row in rows}
    found = {}
    for name, truth in planted.items():
        row, values = by_name[name], truth["singular_values"]
        errors = [abs(f - p) / p for f, p in zip(row["singular_values"][:4], values)]
        found[name] = {
            "shape": row["shape"],
            "svd": row["svd"],
            "strength": truth["strength"],
            "relative_change": row["relative_change"],
            "spikes": row["spikes"],
            "spike_energy": row["spike_energy"],
            "numerical_rank": row["numerical_rank"],
            "effective_rank": row["effective_rank"],
            "planted_effective_rank": planted_effective_rank(values),
            "stable_rank": row["stable_rank"],
            "sigma_1_over_edge": row["sigma_1_over_edge"],
            "top4_sigma_max_relative_error": max(errors),
            "sigma_5_over_sigma_1": row["singular_values"][4] / row["singular_values"][0],
        }
    return found


# --- the whole run ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child)
        return
    if args.bf16_copy:
        bf16_copy(*map(Path, args.bf16_copy))
        return
    if args.write_child:
        written = write_pair(Path(args.write_child), args)
        (Path(args.write_child) / "written.json").write_text(json.dumps(written), encoding="utf-8")
        return
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"date": date.today().isoformat(), "machine": machine()}
    results["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
    keys = ("parts", "params", "strength", "noise", "seed", "blas_threads")
    results["parameters"] = {key: getattr(args, key) for key in keys}
    os.environ["LMDELTA_BENCH_BLAS_THREADS"] = str(args.blas_threads)
    started = time.perf_counter()
    try:
        if "groundtruth" in args.parts:
            results["groundtruth"] = groundtruth_part(args, scratch)
        if "paths" in args.parts:
            exact = results.get("groundtruth", {}).get("cases", {}).get("quirk-merged")
            results["svd_paths"] = paths_part(args, scratch, exact)
        if "synthetic" in args.parts:
            results["synthetic"] = synthetic_part(args, scratch)
    finally:
        if not args.keep:
            clean(scratch)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["parent_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(markdown(results))


def clean(scratch: Path) -> None:
    """Remove what this script made (--scratch may be a folder with other things in it)."""
    for made in ("synthetic", "runs", "bf16-rounded"):
        shutil.rmtree(scratch / made, ignore_errors=True)
    if scratch.is_dir() and not any(scratch.iterdir()):
        scratch.rmdir()


def markdown(results: dict[str, Any]) -> str:
    """A table of every case (docs/benchmarks.md quotes it)."""
    lines = [
        "| case | wall s | CPU s | peak RSS MiB | anon. peak MiB | × largest f32 matrix | rel. change | "
        "eff. rank mean / median | stable rank median | max num. rank | eff. ≤ r | spikes (matrices) | "
        "spike energy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cases = dict(results.get("groundtruth", {}).get("cases", {}))
    for pair, variants in results.get("svd_paths", {}).items():
        cases |= {f"{pair}: {k}": v for k, v in variants.items() if v["case"] != "quirk-merged"}
    if "synthetic" in results:
        cases["synthetic"] = results["synthetic"]["analysis"]
    for name, case in cases.items():
        f, memory = case["found"], case.get("memory", {})
        share = f.get("share_effective_rank_le_lora_rank")
        lines.append(
            f"| {name} | {case['seconds']:.1f} | {case['cpu_seconds']:.0f} | {case['peak_rss_mib']:.0f} | "
            f"{case['peak_anon_mib_sampled']:.0f} | {memory.get('peak_above_overhead_in_float32_tensors', '—')} | "
            f"{f['relative_change']:.4f} | {f['effective_rank']['mean']:.2f} / {f['effective_rank']['median']:.2f} | "
            f"{f['stable_rank']['median']:.2f} | {f['numerical_rank']['max']} | "
            f"{'—' if share is None else f'{share:.2f}'} | "
            f"{f['spikes']} ({f['matrices_with_spikes']}/{f['changed']}) | {f['spike_energy_share']:.3f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("groundtruth", "paths", "synthetic"),
        default=["groundtruth", "paths", "synthetic"],
    )
    parser.add_argument("--params", type=float, default=1e9, help="size of the synthetic pair (default 1e9)")
    parser.add_argument(
        "--strength", type=float, default=0.05, help="planted edits' ‖E‖_F / ‖W_a‖_F (one of them gets 2.5× this)"
    )
    parser.add_argument("--noise", type=float, default=0.005, help="noise elsewhere, relative to W_a's entries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads of each analysis (default 1: on a busy machine OpenBLAS's threads wait on each other "
        "and a 2-thread QR can take 80x as long as a 1-thread one)",
    )
    parser.add_argument("--shard-mib", type=float, default=400, help="shard size of the synthetic checkpoints")
    parser.add_argument("--scratch", default="/tmp/lmdelta-weights-bench")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic pair and the analyses")
    parser.add_argument("--finetuned-root", help="where the finetunes are (default: lmdelta's cache/finetuned)")
    parser.add_argument("--quirk", default=QUIRK, help="folder name of the quirk finetune")
    parser.add_argument("--null", default=NULL, help="folder name of the null finetune")
    parser.add_argument("--demo-run", default=str(DEMO_RUN), help="the run `make demo` wrote (for the check)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "weights.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--write-child", help=argparse.SUPPRESS)
    parser.add_argument("--bf16-copy", nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
