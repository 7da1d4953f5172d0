import subprocess
import sys

from click.testing import CliRunner
from conftest import fake_config

from lmdelta.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_help_imports_nothing_heavy():
    heavy = "('torch', 'transformers', 'numpy', 'pydantic')"
    code = f"import sys, lmdelta.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_run_and_status(tmp_path):
    result = invoke("run", str(fake_config(tmp_path)), "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "outputs in" in result.output and "generate" in result.output
    status = invoke("status", str(tmp_path / "run"))
    assert status.exit_code == 0 and "complete" in status.output


def test_dry_run_checks_without_running(tmp_path):
    result = invoke("run", str(fake_config(tmp_path)), "--run-dir", str(tmp_path / "run"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would run: not run yet" in result.output
    assert not (tmp_path / "run").exists()


def test_dry_run_names_the_bad_model(tmp_path):
    config = fake_config(tmp_path)
    result = invoke("run", str(config), "--dry-run", "--set", "generate.b.model=embedded:smolm2")
    assert result.exit_code == 2
    assert "Did you mean embedded:smollm2-135m-instruct" in result.output
    assert "Traceback" not in result.output


def test_errors_are_one_paragraph_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate: [\n")
    result = invoke("run", str(bad))
    assert result.exit_code == 2 and "not valid YAML" in result.output and "Traceback" not in result.output
    empty_bank = tmp_path / "empty.txt"
    empty_bank.write_text("\n")
    result = invoke("run", str(fake_config(tmp_path)), "--dry-run", "--set", f"prompts.source={empty_bank}")
    assert result.exit_code == 2 and "holds no prompts" in result.output


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate: {temperature: -3}\n")
    result = invoke("--debug", "run", str(bad))
    assert result.exit_code != 0 and result.exception is not None


def test_status_of_a_non_run(tmp_path):
    result = invoke("status", str(tmp_path))
    assert result.exit_code == 2 and "not an lmdelta run directory" in result.output


def test_run_dir_of_another_format_is_refused_and_left_alone(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text('{"format": 999, "version": "9"}')
    result = invoke("run", str(fake_config(tmp_path)), "--run-dir", str(run_dir))
    assert result.exit_code == 2 and "run format 999" in result.output
    assert (run_dir / "manifest.json").read_text() == '{"format": 999, "version": "9"}'


def test_config_prints_resolved_config_and_reference_matches_docs(tmp_path):
    from pathlib import Path

    result = invoke("config", str(fake_config(tmp_path)), "--set", "generate.top_p=0.5")
    assert result.exit_code == 0 and "top_p: 0.5" in result.output and "seed: 3" in result.output
    reference = invoke("config", "--reference").output
    docs = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert docs.read_text() == reference, "regenerate with: lmdelta config --reference > docs/configuration.md"
