"""Checks on a corpus that no single row shows: the same rows twice (a file appended to itself),
one prompt_id naming two different prompts, clusters that mix paired and one-sided. Each says what to fix.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterable
from typing import Protocol

from lmdelta.errors import PromptBankError
from lmdelta.hashing import canonical_json
from lmdelta.sources.tabular import Table

log = logging.getLogger(__name__)
MIN_BLOCK = 5  # repeated consecutive rows that make a copied block, not repeated samples


class PromptedRow(Protocol):
    @property
    def side(self) -> str: ...
    @property
    def prompt_id(self) -> str | None: ...
    @property
    def prompt(self) -> str | None: ...
    @property
    def where(self) -> str: ...


def check_repeated_rows(table: Table, unit_columns: tuple[str, ...]) -> None:
    """Refuse a run of rows that repeats earlier rows exactly, in order (every column equal; at
    least MIN_BLOCK rows, holding two different rows, and in an aligned corpus two different
    prompts): a copy that would count every answer in it twice. Other exact repeats are kept,
    with a warning: identical answers to one prompt can be real samples (short or greedy ones)."""
    keys = [canonical_json(record) for _, record in table.rows]
    first: dict[str, int] = {}
    repeats = 0
    for index, key in enumerate(keys):
        original = first.setdefault(key, index)
        if original == index:
            continue
        repeats += 1
        if _copied_block(table, keys, original, index, unit_columns):
            raise _block_error(table, keys, original, index)
    if repeats:
        log.warning(
            "corpus %s: %d rows repeat an earlier row exactly; kept as repeated samples (add a column such "
            "as `sample` to tell them apart)",
            table.path,
            repeats,
        )


def _copied_block(table: Table, keys: list[str], original: int, copy: int, unit_columns: tuple[str, ...]) -> bool:
    length = _run_length(keys, original, copy, limit=MIN_BLOCK)
    if length < MIN_BLOCK or len(set(keys[copy : copy + length])) < 2:
        return False
    if not unit_columns:
        return True
    units = {tuple(str(record.get(c)) for c in unit_columns) for _, record in table.rows[copy : copy + length]}
    return len(units) >= 2


def _run_length(keys: list[str], original: int, copy: int, limit: int | None = None) -> int:
    """How many rows from `copy` on equal those from `original` on (the original ending before the copy)."""
    length = 0
    while (
        copy + length < len(keys)
        and original + length < copy
        and keys[copy + length] == keys[original + length]
        and (limit is None or length < limit)
    ):
        length += 1
    return length


def _block_error(table: Table, keys: list[str], original: int, copy: int) -> PromptBankError:
    length = _run_length(keys, original, copy)
    line = [line for line, _ in table.rows]
    first, second = (f"{line[start]}–{line[start + length - 1]}" for start in (original, copy))
    unit = f"{table.unit}s"
    return PromptBankError(
        f"Corpus file {table.path} repeats {unit} {first} exactly as {unit} {second} ({length} rows in the same "
        "order): the same rows twice, as from a file appended to itself, would count every answer in them twice.",
        f"Delete the second copy ({unit} {second}); if the rows are really repeated samples, add a column that "
        "tells them apart (e.g. `sample`: 0, 1, …).",
    )


def check_prompt_ids(rows: Iterable[PromptedRow]) -> None:
    """Refuse a prompt_id given to two different prompt texts on one side: their answers would be
    compared as answers to one prompt. (The sides may word one prompt differently, e.g. each
    model's chat template around it, so only texts within a side are compared.)"""
    seen: dict[tuple[str, str], tuple[str, PromptedRow]] = {}  # (side, prompt_id) → first (prompt, row)
    for row in rows:
        if row.prompt_id is None or row.prompt is None:
            continue
        first_prompt, first = seen.setdefault((row.side, row.prompt_id), (row.prompt, row))
        if first_prompt != row.prompt:
            raise PromptBankError(
                f"{row.where} gives prompt_id {row.prompt_id!r} to the prompt {_short(row.prompt)!r}, but "
                f"{first.where} gave it to {_short(first_prompt)!r} (both side {row.side}): answers to two different "
                "prompts would be compared as answers to one.",
                "Give each prompt its own prompt_id, or correct the prompt text so both rows name the same prompt.",
            )


def check_cluster_sides(sides_by_cluster: dict[str, set[str]], where: str = "The corpus") -> None:
    """Refuse clusters of which some hold both sides' texts and others one side's only. All paired:
    a sign-flip over clusters; all one-sided: whole clusters permuted. A mix has no clear unit, and
    one mixed cluster would make the whole comparison paired, over that cluster alone."""
    both = sorted(cluster for cluster, sides in sides_by_cluster.items() if len(sides) == 2)
    if not both or len(both) == len(sides_by_cluster):
        return
    one = len(sides_by_cluster) - len(both)
    raise PromptBankError(
        f"{where} has {len(both)} cluster{'s' if len(both) != 1 else ''} holding texts of both sides (e.g. "
        f"{both[0]!r}) and {one} holding texts of one side only: clusters are compared paired when every one "
        "holds both sides, or permuted whole when every one holds a single side's texts, not a mix.",
        "Give each cluster texts of one side (e.g. prefix the cluster id with the side) to permute whole "
        "clusters, or give prompt ids (prompt_id or prompt columns) for a paired comparison.",
    )


def _short(text: str) -> str:
    return textwrap.shorten(text, 60, placeholder="…")
