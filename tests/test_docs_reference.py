"""Every config in docs/from-the-reference.md loads, and those of the paper's experiments are the shipped
files (configs/paper/) byte for byte: the guide for users of the reference system shows whole config
files, and a renamed or removed field, or a shipped file edited without the guide, must fail here, not
for the reader."""

import re
from importlib import resources
from pathlib import Path

import pytest

from lmdelta.config import load_config

DOC = Path(__file__).resolve().parents[1] / "docs" / "from-the-reference.md"
PAPER = Path(str(resources.files("lmdelta") / "configs" / "paper"))
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)
# A block's first line names the file it is: `# paper/NAME.yaml: what it compares` for a shipped
# config of configs/paper/, `# NAME.yaml: …` for an example shown in the guide only.
SHIPPED_NAME = re.compile(r"^# paper/([\w-]+)\.yaml: ")


def yaml_blocks() -> list[str]:
    return YAML_BLOCK.findall(DOC.read_text(encoding="utf-8"))


def shipped_blocks() -> dict[str, str]:
    """The guide's blocks of shipped configs, by file name."""
    found: dict[str, str] = {}
    for block in yaml_blocks():
        match = SHIPPED_NAME.match(block)
        if match:
            assert match.group(1) not in found, f"paper/{match.group(1)}.yaml is shown twice"
            found[match.group(1)] = block
    return found


def test_the_guide_has_a_config_per_experiment_type():
    assert len(yaml_blocks()) >= 6


def test_the_guide_shows_every_shipped_paper_config():
    assert sorted(shipped_blocks()) == sorted(path.stem for path in PAPER.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(path.stem for path in PAPER.glob("*.yaml")))
def test_a_shipped_config_in_the_guide_is_the_file_byte_for_byte(name):
    block = shipped_blocks().get(name)
    assert block is not None, f"docs/from-the-reference.md has no block starting `# paper/{name}.yaml: `"
    assert block == (PAPER / f"{name}.yaml").read_text(encoding="utf-8"), (
        f"the guide's paper/{name}.yaml differs from src/lmdelta/configs/paper/{name}.yaml: copy the file in"
    )
    assert f"`configs/paper/{name}.yaml`" in DOC.read_text(encoding="utf-8")  # the guide says where it lives


def test_an_example_shown_only_in_the_guide_is_no_copy_of_a_shipped_file():
    shipped = {path.stem for path in PAPER.glob("*.yaml")}
    for block in yaml_blocks():
        first = block.splitlines()[0]
        name = first.removeprefix("# ").partition(".yaml")[0]
        if not name.startswith("paper/"):
            assert name not in shipped, f"`{first}` shows a shipped config: name it `# paper/{name}.yaml: …`"


@pytest.mark.parametrize("index", range(len(yaml_blocks())))
def test_config_block_loads(tmp_path, index):
    block = yaml_blocks()[index]
    path = tmp_path / f"block{index}.yaml"
    path.write_text(block, encoding="utf-8")
    # env={}: LMDELTA__* variables of the machine running the tests must not change the result;
    # the blocks' data files and model folders need not exist, loading a config does not read them.
    config = load_config(path, env={})
    assert config.generate.a.model and config.generate.b.model
