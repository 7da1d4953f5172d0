"""The configs shipped for the reference paper's experiments (configs/paper/): each loads, each passes
`lmdelta run --dry-run` on a machine with no network, no GPU, no API key and none of the user's data,
listing those as "needed at run time", and each says in its header what it compares, on what hardware,
with which keys and how to run it. `lmdelta init paper/NAME` writes them."""

from __future__ import annotations

import socket
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmdelta.cli import main
from lmdelta.config import RunConfig, load_config
from lmdelta.examples import example_names, example_text
from lmdelta.llm.providers.registry import PROVIDERS, parse_model_string

PAPER = Path(str(resources.files("lmdelta") / "configs" / "paper"))
NAMES = [name for name in example_names() if name.startswith("paper/")]
EXPERIMENTS = {
    "paper/finetune",
    "paper/knowledge-editing",
    "paper/unlearning",
    "paper/distillation",
    "paper/quantization",
    "paper/null-intervention",
    "paper/negative-control",
    "paper/flash-pro",
    "paper/groundtruth",
}
KEY_VARIABLES = {var for info in PROVIDERS.values() for var in info.key_env}


def path_of(name: str) -> Path:
    return PAPER / f"{name.removeprefix('paper/')}.yaml"


def header(name: str) -> str:
    lines = path_of(name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))])


def key_variables(config: RunConfig) -> set[str]:
    """The first environment variable of each provider the config's LLM roles call."""
    roles = ("proposer", "judge", "strong_judge", "summariser")
    models = [getattr(config.llm, role).model for role in roles] + list(config.validate.extra_judges)
    return {PROVIDERS[parse_model_string(m).provider].key_env[0] for m in models if m}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No key, no network (any attempt is recorded and refused), and a working folder without the
    configs' data, so every data path is a placeholder that is not here."""
    for variable in KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("tests never touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not attempts, f"the dry run tried the network: {attempts[:3]}"


def test_there_is_a_config_per_experiment_of_the_paper():
    assert set(NAMES) == EXPERIMENTS
    assert sorted(path.name for path in PAPER.glob("*.yaml")) == sorted(f"{n[6:]}.yaml" for n in EXPERIMENTS)


@pytest.mark.parametrize("name", NAMES)
def test_config_loads(name):
    config = load_config(path_of(name), env={})  # env={}: the machine's LMDELTA__* variables stay out
    assert config.llm.proposer.model and config.llm.judge.model  # every experiment proposes and judges with LLMs
    assert config.uses_corpus or (config.generate.a.model and config.generate.b.model)


@pytest.mark.parametrize("name", NAMES)
def test_header_says_what_hardware_keys_and_command(name):
    text = header(name)
    stem = name.removeprefix("paper/")
    assert text.startswith(f"# {name}.yaml: ")
    for label in ("# Compares:", "# Hardware:", "# API keys:", "# Run:"):
        assert label in text, f"{name}: no {label} line"
    hardware = text.split("# Hardware:")[1].split("\n# ")[0]
    assert "GPU" in hardware or "CPU" in hardware
    keys = text.split("# API keys:")[1].split("\n# ")[0]
    assert key_variables(load_config(path_of(name), env={})) <= {w.strip(".,()") for w in keys.split()}
    run = text.split("# Run:")[1]
    assert f"lmdelta init {name}" in run and f"configs/paper/{stem}.yaml" in run
    assert f"lmdelta run {stem}.yaml" in run or f"lmdelta groundtruth {stem}.yaml" in run


@pytest.mark.parametrize("name", NAMES)
def test_dry_run_passes_offline_and_lists_what_is_needed(name, offline):
    run_dir = offline / "run"
    result = CliRunner().invoke(main, ["run", str(path_of(name)), "--dry-run", "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "config is valid" in result.output and "Traceback" not in result.output
    needed = [line for line in result.output.splitlines() if line.startswith("  needed at run time: ")]
    for variable in key_variables(load_config(path_of(name), env={})):
        assert any(variable in line for line in needed), f"{name}: {variable} not listed\n{result.output}"
    assert "would run: not run yet" in result.output
    assert not run_dir.exists()


def test_a_real_run_still_refuses_what_the_dry_run_lists(offline):
    result = CliRunner().invoke(main, ["run", str(path_of("paper/unlearning")), "--run-dir", str(offline / "run")])
    assert result.exit_code == 2 and "does not exist" in result.output  # the corpus file, before anything runs


def test_the_dry_run_still_refuses_a_config_error_beside_what_is_missing(offline):
    """Absences do not hide mistakes: active strong labels in sequential mode are refused with keys and data missing."""
    args = ["run", str(path_of("paper/flash-pro")), "--dry-run", "--set", "validate.mode=sequential"]
    args += ["--set", "validate.strong_labels=active"]
    result = CliRunner().invoke(main, [*args, "--run-dir", str(offline / "run")])
    assert result.exit_code == 2 and "validate.strong_labels=uniform" in result.output


def test_a_present_file_is_read_not_listed(offline):
    """With the data here, the dry run reads it: the CSV's texts are counted and only the key is needed."""
    csv = offline / "decodings.csv"
    rows = [f"{model},answer {i} from {model},question {i}" for i in range(40) for model in ("base", "finetuned")]
    csv.write_text("model,text,prompt\n" + "\n".join(rows) + "\n", encoding="utf-8")
    args = ["run", str(path_of("paper/unlearning")), "--dry-run", "--set", f"corpus.path={csv}"]
    result = CliRunner().invoke(main, [*args, "--run-dir", str(offline / "run")])
    assert result.exit_code == 0, result.output
    assert "texts: 40 of side a, 40 of side b (paired by prompt)" in result.output
    assert [line for line in result.output.splitlines() if "needed at run time" in line] == [
        "  needed at run time: llm.proposer, llm.judge: an API key in OPENROUTER_API_KEY"
    ]


@pytest.mark.parametrize("name", NAMES)
def test_init_writes_the_shipped_file(name, tmp_path):
    result = CliRunner().invoke(main, ["init", name, "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = tmp_path / f"{name.removeprefix('paper/')}.yaml"
    assert written.read_text(encoding="utf-8") == example_text(name) == path_of(name).read_text(encoding="utf-8")


def test_init_lists_the_paper_configs_and_suggests_near_names():
    listing = CliRunner().invoke(main, ["init", "--list"]).output.split()
    assert "demo" in listing and "paper/quantization" in listing and "paper/groundtruth" in listing
    typo = CliRunner().invoke(main, ["init", "paper/quantisation"])
    assert typo.exit_code == 2 and "Did you mean 'paper/quantization'" in typo.output
