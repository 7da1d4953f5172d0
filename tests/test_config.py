import pytest

from lmdelta.config import RunConfig, load_config
from lmdelta.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_resolve_seeds_from_run_seed(tmp_path):
    config = load_config(write(tmp_path, "run: {seed: 7}\n"))
    assert config.prompts.seed == 7 and config.generate.seed == 7 and config.group.seed == 7


def test_section_seed_wins_over_run_seed(tmp_path):
    config = load_config(write(tmp_path, "run: {seed: 7}\ngenerate: {seed: 0}\n"))
    assert config.generate.seed == 0  # 0 is a value, not "unset"


def test_set_overrides_file_and_env_overrides_file(tmp_path):
    path = write(tmp_path, "generate: {max_new_tokens: 10, temperature: 0.5}\n")
    config = load_config(path, ["generate.max_new_tokens=32", "generate.a.system_prompt=Be brief."],
                         env={"LMDELTA__GENERATE__TEMPERATURE": "0.2", "LMDELTA__GENERATE__MAX_NEW_TOKENS": "20"})
    assert config.generate.max_new_tokens == 32
    assert config.generate.temperature == 0.2
    assert config.generate.a.system_prompt == "Be brief."


def test_false_override_is_kept(tmp_path):
    config = load_config(write(tmp_path, "embed: {normalize: true}\n"), ["embed.normalize=false"])
    assert config.embed.normalize is False


def test_unknown_field_suggests_near_match(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "generate: {max_new_token: 10}\n"))
    assert "generate.max_new_token" in str(err.value)
    assert "generate.max_new_tokens" in str(err.value)


def test_invalid_value_names_field_and_fix(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "generate: {temperature: -1}\n"))
    message = str(err.value)
    assert "generate.temperature" in message and "--set generate.temperature=" in message


def test_invalid_yaml_reports_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "generate:\n  a: [unclosed\n"))
    assert "not valid YAML" in str(err.value) and "line" in str(err.value)


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(write(tmp_path, ""), ["no-equals-sign"])


def test_fractions_must_leave_validation_prompts(tmp_path):
    with pytest.raises(ConfigError, match="validation"):
        load_config(write(tmp_path, "prompts: {discovery_fraction: 0.6, confirmation_fraction: 0.4}\n"))


def test_volatile_fields_stay_out_of_result_fields():
    fields = RunConfig().generate.result_fields()
    assert "batch_size" not in fields and "device" not in fields
    assert fields["a"]["model"] == "embedded:smollm2-135m-instruct"
    assert "max_new_tokens" in fields


def test_relative_bank_path_resolves_beside_config(tmp_path):
    (tmp_path / "bank.txt").write_text("hello\n")
    config = load_config(write(tmp_path, "prompts: {source: bank.txt}\n"))
    assert config.prompts.source == str(tmp_path / "bank.txt")
