"""Prompt banks: the built-in ones and plain text / JSONL files.

Prompt ids come from the file when it gives them, else from a hash of the prompt text, so an
id never depends on the order in which prompts were read.
"""

from __future__ import annotations

import difflib
import json
from importlib import resources
from pathlib import Path

from lmdelta.errors import LmdeltaError, PromptBankError
from lmdelta.hashing import hash_text
from lmdelta.records import Prompt

BUILTIN_PREFIX = "builtin:"


def builtin_banks() -> list[str]:
    folder = resources.files("lmdelta") / "data" / "banks"
    return sorted(entry.name.removesuffix(".jsonl") for entry in folder.iterdir() if entry.name.endswith(".jsonl"))


def content_id(text: str) -> str:
    return "p-" + hash_text(text)[:12]


def load_bank(source: str) -> list[Prompt]:
    """Read a bank and check it: not empty, ids unique, every text non-empty."""
    if source.startswith(BUILTIN_PREFIX):
        prompts = _builtin(source.removeprefix(BUILTIN_PREFIX))
    else:
        prompts = _from_file(Path(source))
    if not prompts:
        raise PromptBankError(f"Prompt bank {source} holds no prompts.",
                              "Add prompts to it (one per line, or JSONL objects with a `text` field).")
    _check_unique(prompts, source)
    return prompts


def _builtin(name: str) -> list[Prompt]:
    names = builtin_banks()
    if name not in names:
        near = difflib.get_close_matches(name, names, n=2)
        hint = f"Did you mean builtin:{near[0]}? " if near else ""
        raise PromptBankError(f"There is no built-in prompt bank {name!r}.",
                              f"{hint}Built-in banks: {', '.join('builtin:' + n for n in names)}.")
    path = resources.files("lmdelta") / "data" / "banks" / f"{name}.jsonl"
    return _parse_jsonl(path.read_text(encoding="utf-8"), f"builtin:{name}")


def read_user_file(path: Path, what: str, error: type[LmdeltaError], missing_fix: str) -> str:
    """A user's text file, or an error naming the file and the fix (missing, not a file, not UTF-8)."""
    if not path.is_file():
        raise error(f"{what} {path} does not exist.", missing_fix)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start}).", "Save it as UTF-8.") from None


def _from_file(path: Path) -> list[Prompt]:
    text = read_user_file(path, "Prompt bank file", PromptBankError,
                          "Check prompts.source, or use the built-in bank with prompts.source=builtin:everyday.")
    if path.suffix == ".jsonl":
        return _parse_jsonl(text, str(path))
    if path.suffix in (".txt", ".text", ""):
        return [Prompt(id=content_id(line.strip()), text=line.strip()) for line in text.splitlines() if line.strip()]
    raise PromptBankError(f"Prompt bank file {path} has the unsupported extension {path.suffix!r}.",
                          "Use .txt (one prompt per line) or .jsonl (objects with id, text, group).")


def json_lines(text: str, where: str) -> list[tuple[int, object]]:
    """(line number, parsed value) for every non-blank line; a bad line names itself."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise PromptBankError(f"{where} line {number} is not valid JSON ({exc.msg}).", "Fix or remove that line.") from None
    return out


def _parse_jsonl(text: str, where: str) -> list[Prompt]:
    return [_prompt_from_row(row, where, number) for number, row in json_lines(text, where)]


def _prompt_from_row(row: object, where: str, number: int) -> Prompt:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
        raise PromptBankError(f"{where} line {number} has no non-empty string field `text`.",
                              'Write each line like {"id": "q1", "text": "How do tides work?", "group": "science"}.')
    text = row["text"].strip()
    group = row.get("group")
    return Prompt(id=str(row.get("id") or content_id(text)), text=text, group=None if group is None else str(group))


def _check_unique(prompts: list[Prompt], source: str) -> None:
    seen: dict[str, int] = {}
    for position, prompt in enumerate(prompts, start=1):
        if prompt.id in seen:
            raise PromptBankError(
                f"Prompt bank {source} has the id {prompt.id!r} twice (prompts {seen[prompt.id]} and {position}).",
                "Give every prompt its own id (ids made from text repeat when the same text appears twice: remove the copy).")
        seen[prompt.id] = position
