import pytest

from lmdelta.config import RunConfig, dump_config, load_config
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
    config = load_config(
        path,
        ["generate.max_new_tokens=32", "generate.a.system_prompt=Be brief."],
        env={"LMDELTA__GENERATE__TEMPERATURE": "0.2", "LMDELTA__GENERATE__MAX_NEW_TOKENS": "20"},
    )
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


def test_relative_truthfulqa_beliefs_resolve_beside_config(tmp_path):
    (tmp_path / "TruthfulQA.csv").write_text("Question\n")
    config = load_config(write(tmp_path, "groundtruth: {beliefs: 'truthfulqa:TruthfulQA.csv'}\n"))
    assert config.groundtruth.beliefs == f"truthfulqa:{tmp_path / 'TruthfulQA.csv'}"
    with pytest.raises(ConfigError, match="groundtruth.beliefs is invalid"):
        load_config(write(tmp_path, "groundtruth: {beliefs: 'nosuchkind:x.csv'}\n"))


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "decide:\n  q: 0.05\nrun: {seed: 1}\ndecide: {q: 0.5}\n"))
    assert "sets `decide` twice in one mapping (line 1 and line 4)" in err.value.problem
    assert "Merge the two" in err.value.fix
    with pytest.raises(ConfigError, match=r"sets `q` twice in one mapping \(line 1\)"):
        load_config(write(tmp_path, "decide: {q: 0.05, q: 0.5}\n"))
    with pytest.raises(ConfigError, match=r"Override --set decide sets `q` twice"):
        load_config(None, ["decide={q: 0.05, q: 0.5}"])


def test_anchors_and_merge_keys_still_work(tmp_path):
    config = load_config(
        write(
            tmp_path,
            "generate:\n  a: &model {model: 'fake:words', label: base}\n  b:\n    <<: *model\n    label: tuned\n",
        )
    )
    assert config.generate.b.model == "fake:words" and config.generate.b.label == "tuned"


def bomb(levels: int) -> list:
    """Nine references to the same list per level, as YAML aliases build it: 9**levels values."""
    value: list = ["x"] * 9
    for _ in range(levels - 1):
        value = [value] * 9
    return value


def test_aliases_that_expand_past_the_limit_are_refused(tmp_path):
    from lmdelta.config.yamlfile import expanded_size

    assert expanded_size(bomb(9)) > 9**9  # counted without writing anything out
    lines = ["run:", "  name:", "    - &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"    - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError, match="uses YAML aliases .* that expand to") as err:
        load_config(write(tmp_path, "\n".join(lines) + "\n"))
    assert "Write the values out" in err.value.fix


def test_a_huge_invalid_value_is_shown_short():
    from lmdelta.config.load import _describe

    message = _describe(
        {"loc": ("run", "name"), "type": "string_type", "msg": "Input should be a valid string", "input": bomb(7)}
    )
    assert message.startswith("Config field run.name is invalid: Input should be a valid string (got [[")
    assert len(message) < 250


def test_samples_per_prompt_has_an_upper_bound(tmp_path):
    with pytest.raises(ConfigError, match="less than or equal to 100000"):
        load_config(None, ["generate.samples_per_prompt=1000000000"])


def test_generate_batch_size_is_auto_or_a_positive_whole_number():
    assert RunConfig().generate.batch_size == "auto"
    assert load_config(None, ["generate.batch_size=64"]).generate.batch_size == 64
    for bad in ("big", "0", "2.5", "true"):
        with pytest.raises(ConfigError) as err:
            load_config(None, [f"generate.batch_size={bad}"])
        assert "generate.batch_size takes a whole number of answers (1 or more) or auto" in str(err.value)
        assert "constrained-int" not in str(err.value)


@pytest.mark.parametrize(
    "prices",
    ['{"x/y": {input: 1}}', '{"x/y": {input: 1, output: -2}}', '{"x/y": 3}', '{"x/y": {input: cheap, output: 1}}'],
)
def test_a_malformed_price_is_a_config_error_with_the_shape(prices):
    with pytest.raises(ConfigError, match=r"llm.prices.*must be \{input: USD per million tokens"):
        load_config(None, [f"llm.prices={prices}"])


def test_an_ignored_setting_warns_once_and_is_not_written_back(tmp_path, caplog):
    """validate.bootstrap does nothing since intervals are t-based: a config that sets it hears so."""
    path = tmp_path / "config.yaml"
    path.write_text("validate:\n  bootstrap: 500\n")
    with caplog.at_level("WARNING", logger="lmdelta"):
        config = load_config(path)
    said = [m for m in caplog.messages if "validate.bootstrap is ignored" in m]
    assert len(said) == 1 and "t-based" in said[0] and "remove it" in said[0]
    caplog.clear()
    path.write_text(dump_config(config))  # a run's config.yaml, loaded again
    with caplog.at_level("WARNING", logger="lmdelta"):
        load_config(path)
        load_config(None)
    assert "bootstrap" not in path.read_text() and not [m for m in caplog.messages if "bootstrap" in m]
