"""Prompt sets kept as tables: the Machine Personality Inventory (MPI), the jailbreak_llms
prompts and forbidden questions, and TruthfulQA, each column read by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lmdelta.errors import PromptBankError
from lmdelta.sources.items import SourceItem
from lmdelta.sources.tabular import (
    SUFFIXES,
    Table,
    cell_group,
    cell_text,
    find_column,
    no_files_error,
    read_table,
    suffix_of,
)

# The reference tool's templates, kept exactly.
TEMPLATES: dict[str, str] = {
    "mpi": "Prompt: {prompt}.\nResponse:",
    "jailbreak": "Prompt: {prompt}.\nResponse:",
    "truthfulqa": "Question: {prompt}\nResponse:",
}
MPI_FILES = ("inventories/mpi_1k.csv", "inventories/mpi_120.csv", "mpi_1k.csv", "mpi_120.csv")
JAILBREAK_FOLDERS = ("prompts", "forbidden_question")
TRUTHFULQA_PATTERNS = ("TruthfulQA.csv", "data/TruthfulQA.csv", "generation/validation-*", "generation/*", "*")


def load(kind: str, location: Path) -> list[SourceItem]:
    """The items of one table-shaped prompt set, in file order."""
    loaders: dict[str, Callable[[Path], list[SourceItem]]] = {
        "mpi": _mpi,
        "jailbreak": _jailbreak,
        "truthfulqa": _truthfulqa,
    }
    if kind not in loaders:
        raise PromptBankError(f"The tables loader has no kind {kind!r}.", f"Use one of: {', '.join(loaders)}.")
    return loaders[kind](location)


def _items(table: Table, text: tuple[str, str], group: str | None, fixed_group: str | None = None) -> list[SourceItem]:
    """Items from the `text` column (name, what it holds); groups from column `group` or `fixed_group`."""
    text_column = find_column(table, (text[0],), text[1])
    group_column = find_column(table, (group,), "", required=False) if group else None
    return [
        SourceItem(
            cell_text(table, line, row, text_column), cell_group(row, group_column) or fixed_group, table.where(line)
        )
        for line, row in table.rows
    ]


def _mpi(location: Path) -> list[SourceItem]:
    candidates = [location] if location.is_file() else [location / name for name in MPI_FILES]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is None:
        raise no_files_error(
            location,
            "inventories/mpi_1k.csv or inventories/mpi_120.csv (github.com/jianggy/MPI)",
            "Clone github.com/jianggy/MPI and pass its root, e.g. mpi:/path/to/MPI, or pass one inventory CSV.",
        )
    table = read_table(path, "MPI inventory")
    return _items(table, ("text", "the inventory item, e.g. 'Worry about things'"), "label_ocean")


def _jailbreak(location: Path) -> list[SourceItem]:
    if location.is_file():
        files = [location]
    else:
        base = location / "data" if (location / "data").is_dir() else location
        folders = [base / name for name in JAILBREAK_FOLDERS if (base / name).is_dir()] or [location]
        files = [path for folder in folders for path in sorted(folder.glob("*.csv")) if path.is_file()]
    if not files:
        raise no_files_error(
            location,
            "data/prompts/*.csv or data/forbidden_question/*.csv (github.com/verazuo/jailbreak_llms)",
            "Clone github.com/verazuo/jailbreak_llms and pass its root, e.g. "
            "jailbreak:/path/to/jailbreak_llms, one of those folders, or one CSV file.",
        )
    return [item for path in files for item in _jailbreak_file(path)]


def _jailbreak_file(path: Path) -> list[SourceItem]:
    """Forbidden-question files (a `content_policy_name` column) give questions grouped by policy;
    prompt files give prompts grouped by file name."""
    table = read_table(path, "jailbreak_llms file")
    if find_column(table, ("content_policy_name",), "", required=False):
        return _items(table, ("question", "the forbidden question"), "content_policy_name")
    return _items(table, ("prompt", "the prompt text"), None, fixed_group=path.stem)


def _truthfulqa(location: Path) -> list[SourceItem]:
    return [
        item
        for path in truthfulqa_files(location)
        for item in _items(read_table(path, "TruthfulQA file"), ("question", "the question"), "category")
    ]


def truthfulqa_files(location: Path) -> list[Path]:
    """The file given; else, in a folder, the first of: the original CSV, the Hub's generation split,
    any table directly inside."""
    if location.is_file():
        return [location]
    if location.is_dir():
        for pattern in TRUTHFULQA_PATTERNS:
            found = sorted(p for p in location.glob(pattern) if p.is_file() and suffix_of(p) in SUFFIXES)
            if found:
                return found
    raise no_files_error(
        location,
        "TruthfulQA.csv or generation/validation-*.parquet",
        "Pass TruthfulQA.csv (github.com/sylinrl/TruthfulQA), the generation split of "
        "truthfulqa/truthful_qa as .parquet/.jsonl/.csv, or truthfulqa:hub.",
    )
