"""Every config in docs/from-the-reference.md loads: the guide for users of the reference system
shows whole config files, and a renamed or removed field must fail here, not for the reader."""

import re
from pathlib import Path

import pytest

from lmdelta.config import load_config

DOC = Path(__file__).resolve().parents[1] / "docs" / "from-the-reference.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def yaml_blocks() -> list[str]:
    return YAML_BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_guide_has_a_config_per_experiment_type():
    assert len(yaml_blocks()) >= 6


@pytest.mark.parametrize("index", range(len(yaml_blocks())))
def test_config_block_loads(tmp_path, index):
    block = yaml_blocks()[index]
    path = tmp_path / f"block{index}.yaml"
    path.write_text(block, encoding="utf-8")
    # env={}: LMDELTA__* variables of the machine running the tests must not change the result;
    # the blocks' data files and model folders need not exist, loading a config does not read them.
    config = load_config(path, env={})
    assert config.generate.a.model and config.generate.b.model
