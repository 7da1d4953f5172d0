"""BOLD (Dhamala et al. 2021): starts of Wikipedia sentences about people and groups, from the
GitHub layout (prompts/<domain>_prompt.json) or the Hub's (<domain>_prompt_wiki.json, JSON lines)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lmdelta.errors import PromptBankError
from lmdelta.sources.items import SourceItem
from lmdelta.sources.tabular import no_files_error, read_table
from lmdelta.sources.textfile import read_text

# The reference tool's template, kept exactly.
TEMPLATES: dict[str, str] = {"bold": "Finish the following sentence: {prompt}"}
FILE_NAME = re.compile(r"^(?P<domain>.+?)_prompt(?:_wiki)?\.jsonl?$")
HUB_SHAPE = (
    'Each record looks like {"domain": "gender", "name": "...", "category": "American_actors", "prompts": ["..."]}.'
)
GITHUB_SHAPE = 'The file should map categories to names to prompt lists: {"American_actors": {"A_B": ["..."]}}.'


def load(kind: str, location: Path) -> list[SourceItem]:
    """Every prompt of every domain file, files in name order; group = "<domain>/<category>"."""
    if kind not in TEMPLATES:
        raise PromptBankError(f"The BOLD loader has no kind {kind!r}.", "Use bold.")
    return [item for domain, path in _files(location) for item in _read(path, domain)]


def _files(location: Path) -> list[tuple[str, Path]]:
    if location.is_file():
        match = FILE_NAME.match(location.name)
        return [(match["domain"] if match else location.stem, location)]
    found: list[tuple[str, Path]] = []
    for folder in (location, location / "prompts"):
        if folder.is_dir():
            matches = ((FILE_NAME.match(p.name), p) for p in sorted(folder.iterdir()) if p.is_file())
            found += [(match["domain"], p) for match, p in matches if match]
    if not found:
        raise no_files_error(
            location,
            "BOLD prompt files (prompts/*_prompt.json or *_prompt_wiki.json)",
            "Clone github.com/amazon-science/bold and pass its root or prompts/ folder, "
            "e.g. bold:/path/to/bold, or use bold:hub.",
        )
    _check_one_file_per_domain(found)
    return found


def _check_one_file_per_domain(found: list[tuple[str, Path]]) -> None:
    seen: dict[str, Path] = {}
    for domain, path in found:
        if domain in seen:
            raise PromptBankError(
                f"BOLD domain {domain!r} has two files: {seen[domain]} and {path}.",
                "Keep one copy (the GitHub or the Hub layout), or pass one file.",
            )
        seen[domain] = path


def _read(path: Path, domain: str) -> list[SourceItem]:
    text = read_text(path, "BOLD file")
    try:
        whole: Any = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # JSON lines (the Hub copy), or broken: read_table names the bad line
    if isinstance(whole, dict) and "prompts" not in whole:
        return _nested(path, domain, whole)
    records = [(1, whole)] if isinstance(whole, dict) else read_table(path, "BOLD file").rows
    return [item for line, record in records for item in _record(path, line, record, domain)]


def _record(path: Path, line: int, record: dict[str, Any], domain: str) -> list[SourceItem]:
    """The prompts of one Hub record, all at that record's line."""
    prompts = record.get("prompts")
    if not isinstance(prompts, list):
        raise PromptBankError(f"{path} line {line} has no `prompts` list.", HUB_SHAPE)
    group = "/".join(str(part) for part in (record.get("domain") or domain, record.get("category")) if part)
    where = f"{path}:{line}"
    return [SourceItem(_prompt(prompt, f"{path} line {line}", HUB_SHAPE), group, where) for prompt in prompts]


def _nested(path: Path, domain: str, data: dict[str, Any]) -> list[SourceItem]:
    """The GitHub layout. Its files are one JSON value with no useful line numbers, so `where`
    gives the JSON path instead: FILE:category/name[k]."""
    items = []
    for category, people in data.items():
        if not isinstance(people, dict):
            raise PromptBankError(f"{path}: `{category}` does not map names to prompt lists.", GITHUB_SHAPE)
        for name, prompts in people.items():
            if not isinstance(prompts, list):
                raise PromptBankError(f"{path}: `{category}/{name}` is not a list of prompts.", GITHUB_SHAPE)
            for k, prompt in enumerate(prompts, start=1):
                where = f"{path}:{category}/{name}[{k}]"
                items.append(SourceItem(_prompt(prompt, where, GITHUB_SHAPE), f"{domain}/{category}", where))
    return items


def _prompt(value: Any, where: str, shape: str) -> str:
    if not isinstance(value, str):
        raise PromptBankError(f"{where} has a prompt that is not text ({type(value).__name__}).", shape)
    if not value.strip():
        raise PromptBankError(f"{where} has an empty prompt.", "Remove the empty prompt from its list.")
    return value.strip()
