import json

import pytest

from lmdelta.errors import PromptBankError
from lmdelta.sources import builtin_banks, content_id, load_bank


def test_builtin_everyday_bank_is_big_and_varied():
    prompts = load_bank("builtin:everyday")
    groups = {p.group for p in prompts}
    assert len(prompts) >= 300 and len(groups) >= 10
    assert len({p.id for p in prompts}) == len(prompts)
    assert len({p.text.lower() for p in prompts}) == len(prompts)


def test_unknown_builtin_suggests():
    assert "everyday" in builtin_banks()
    with pytest.raises(PromptBankError, match="builtin:everyday"):
        load_bank("builtin:everyda")


def test_text_file_ids_are_content_hashes(tmp_path):
    path = tmp_path / "bank.txt"
    path.write_text("First prompt\n\n  Second prompt  \n")
    prompts = load_bank(str(path))
    assert [p.text for p in prompts] == ["First prompt", "Second prompt"]
    assert prompts[1].id == content_id("Second prompt")
    reordered = tmp_path / "other.txt"
    reordered.write_text("Second prompt\nFirst prompt\n")
    assert {p.id for p in load_bank(str(reordered))} == {p.id for p in prompts}


def test_jsonl_with_and_without_ids(tmp_path):
    path = tmp_path / "bank.jsonl"
    path.write_text(json.dumps({"id": "q1", "text": "A?", "group": "g"}) + "\n" + json.dumps({"text": "B?"}) + "\n")
    prompts = load_bank(str(path))
    assert prompts[0].id == "q1" and prompts[0].group == "g"
    assert prompts[1].id == content_id("B?") and prompts[1].group is None


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "holds no prompts"),
        ('{"id": "x", "text": "A"}\n{"id": "x", "text": "B"}\n', "id 'x' twice"),
        ('{"id": "x", "text": ""}\n', "line 1 has no non-empty"),
        ('{"id": "x", "text": "A"}\nnot json\n', "line 2 is not valid JSON"),
    ],
)
def test_bad_jsonl_banks(tmp_path, content, match):
    path = tmp_path / "bank.jsonl"
    path.write_text(content)
    with pytest.raises(PromptBankError, match=match):
        load_bank(str(path))


def test_duplicate_text_lines_are_duplicate_ids(tmp_path):
    path = tmp_path / "bank.txt"
    path.write_text("same\nsame\n")
    with pytest.raises(PromptBankError, match="twice"):
        load_bank(str(path))


def test_missing_file_and_unsupported_extension(tmp_path):
    with pytest.raises(PromptBankError, match="does not exist"):
        load_bank(str(tmp_path / "missing.txt"))
    path = tmp_path / "bank.xlsx"
    path.write_text("a,b\n")
    with pytest.raises(PromptBankError, match="unsupported extension"):
        load_bank(str(path))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "bank.txt"
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(PromptBankError, match="UTF-8"):
        load_bank(str(path))


def test_a_bad_byte_in_a_bank_names_its_line(tmp_path):
    path = tmp_path / "bank.txt"
    path.write_bytes("\ufeffgood line\nsecond fine\n".encode() + b"caf\xe9 au lait\n")
    with pytest.raises(PromptBankError, match=r"bank.txt line 3 is not UTF-8") as caught:
        load_bank(str(path))
    assert "iconv" in caught.value.fix
