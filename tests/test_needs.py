"""lmdelta.needs: what a run needs that this machine lacks is found without the network and named with the
config field that asks for it; what is here, or wrong rather than absent, is left to the usual checks."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import fake_config

from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.needs import missing_needs


def needs_of(tmp_path, *overrides: str) -> list[str]:
    return [str(need) for need in missing_needs(load_config(fake_config(tmp_path), list(overrides), env={}))]


def test_a_run_with_everything_here_needs_nothing_and_its_dry_run_reads_as_before(tmp_path):
    assert needs_of(tmp_path) == []
    result = CliRunner().invoke(
        main, ["run", str(fake_config(tmp_path)), "--dry-run", "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 0 and "config is valid; models and files are available" in result.output


def test_keys_are_named_once_per_variable_with_every_field_that_needs_them(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    sets = ["llm.proposer.model=openai/gpt-4.1", "llm.judge.model=openai/gpt-4.1-mini"]
    assert needs_of(tmp_path, *sets) == ["llm.proposer, llm.judge: an API key in OPENAI_API_KEY"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert needs_of(tmp_path, *sets) == []


def test_a_missing_key_file_is_one_need(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # a key file that is not here is still read, and fails
    found = needs_of(tmp_path, "llm.judge.model=openai/gpt-4.1-mini", f"llm.key_file={tmp_path / 'keys'}")
    assert found == [f"llm.key_file: the key file {tmp_path / 'keys'} (not found here)"]


def test_hub_models_folders_and_adapters_that_are_not_here(tmp_path):
    found = needs_of(
        tmp_path,
        "generate.a.model=some-org/not-downloaded",  # HF_HUB_OFFLINE=1 (conftest): the Hub is not asked
        f"generate.b.model={tmp_path / 'gone'}",
        f"generate.b.adapter={tmp_path / 'adapter'}",
    )
    assert found == [
        "generate.a.model: some-org/not-downloaded from the Hugging Face Hub (not in the cache here, and "
        "HF_HUB_OFFLINE=1 forbids downloading it)",
        f"generate.b.model: the model folder {tmp_path / 'gone'} (not found here)",
        f"generate.b.adapter: the adapter folder {tmp_path / 'adapter'} (not found here)",
    ]


def test_what_is_wrong_rather_than_absent_is_not_a_need(tmp_path):
    """A folder that is here but no model, or a misspelt built-in name, is the model check's to refuse."""
    (tmp_path / "not-a-model").mkdir()
    assert needs_of(tmp_path, f"generate.b.model={tmp_path / 'not-a-model'}") == []
    assert needs_of(tmp_path, "generate.b.model=embedded:smolm2") == []
