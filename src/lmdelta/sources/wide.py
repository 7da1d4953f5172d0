"""The wide layout of a one-file corpus: one row per prompt, one answer column per side (`question, model_x,
model_y`), named by corpus.text_columns or detected; which columns hold the answers, the prompt and its id.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from lmdelta.config.prompts import CorpusConfig
from lmdelta.errors import PromptBankError
from lmdelta.hashing import hash_data
from lmdelta.sources.tabular import Table, cell_group, closest_column, find_column

log = logging.getLogger(__name__)
PROMPT_NAMES = ("prompt", "question", "instruction", "input")
PROMPT_ID_NAMES = ("prompt_id", "id")
LONG_NAMES = ("text", "side", "model")  # any of these makes a file long
INDEX_COLUMNS = {"", "unnamed: 0", "index"}  # a pandas index, never an answer


@dataclass(frozen=True)
class WideColumns:
    """The table's name for each column a wide corpus reads (None: the table has no such column)."""

    a: str
    b: str
    prompt: str | None
    prompt_id: str | None
    group: str | None

    @property
    def unit_columns(self) -> tuple[str, ...]:
        """The columns naming a row's prompt, for the check on blocks of copied rows."""
        return tuple(c for c in (self.prompt_id, self.prompt) if c is not None)

    def row_id(self, record: dict[str, Any]) -> str:
        """A prompt id for a row without a prompt or prompt id: its two answers' hash, so that it
        keeps its id (and its split) when rows are added or reordered."""
        return "r-" + hash_data([cell_group(record, self.a), cell_group(record, self.b)])[:12]


def wide_columns(table: Table, options: CorpusConfig, one_file: bool) -> WideColumns | None:
    """The answer and prompt columns when the file is read wide: corpus.text_columns names them, or, with
    corpus.format auto, a file without text or side columns holds a prompt column and exactly two other text
    columns. None: the file is long (a text column, and a side column when it holds both sides)."""
    if options.text_columns is not None:
        _check_options(options, one_file)
        a, b = (_named_column(table, name) for name in options.text_columns)
        return _with_prompt(table, options, a, b)
    if not one_file or not _may_detect(table, options):
        return None
    return _detect(table, options)


def _check_options(options: CorpusConfig, one_file: bool) -> None:
    """Settings that make no sense beside corpus.text_columns."""
    if not one_file:
        raise PromptBankError(
            "corpus.text_columns is set, but the corpus is one file per side (corpus.a and corpus.b).",
            "A wide file (one row per prompt, one answer column per side) goes in corpus.path; for one file per "
            "side, remove corpus.text_columns.",
        )
    if options.format == "reference":
        raise PromptBankError(
            "corpus.text_columns is set beside corpus.format: reference, whose CSV is long (a model column).",
            "Remove one of them: text_columns for the reference tool's CSV, format for a wide file.",
        )
    clashing = [f"corpus.columns.{name}" for name in ("text", "side", "cluster") if getattr(options.columns, name)]
    if clashing:
        raise PromptBankError(
            f"corpus.text_columns is set beside {' and '.join(clashing)}: settings of the long layout (one row "
            "per answer), which a wide file does not have.",
            "In a wide file the two text_columns hold the answers and each row is one prompt: remove "
            f"{' and '.join(clashing)}.",
        )


def _named_column(table: Table, name: str) -> str:
    found = find_column(table, (name,), name, required=False)
    if found is not None:
        return found
    where = f"{table.path} line {table.header_line} (header)" if table.header_line is not None else str(table.path)
    near = closest_column(table, name)
    hint = f"Did you mean `{near}`? " if near else ""
    raise PromptBankError(
        f"corpus.text_columns names `{name}`, but {where} has no such column (columns: {_listed(table)}).",
        f"{hint}Set corpus.text_columns to two of the file's columns, side a's answers first, e.g. "
        "--set corpus.text_columns='[col_a, col_b]'.",
    )


def _may_detect(table: Table, options: CorpusConfig) -> bool:
    """Detection is for files that cannot be long: format auto, no long-layout column set or present."""
    if options.format != "auto" or options.columns.text or options.columns.side:
        return False
    return all(find_column(table, (name,), name, required=False) is None for name in LONG_NAMES)


def _detect(table: Table, options: CorpusConfig) -> WideColumns | None:
    prompt = _prompt_column(table, options, ())
    taken = {c for c in (prompt, *_other_columns(table, options)) if c is not None}
    candidates = _text_columns(table, [c for c in table.columns if c not in taken])
    if prompt is not None and len(candidates) == 2:
        log.info(
            "corpus %s has no text or side column: read wide, one row per prompt (`%s`), side a's answers from "
            "`%s`, side b's from `%s`, in the order of the file's columns (corpus.text_columns sets them)",
            table.path,
            prompt,
            *candidates,
        )
        return _with_prompt(table, options, *candidates)
    if len(candidates) >= 2:
        raise _ambiguous(table, prompt, candidates)
    return None  # read long, which names the missing text column


def _ambiguous(table: Table, prompt: str | None, candidates: list[str]) -> PromptBankError:
    found = ", ".join(f"`{c}`" for c in candidates)
    if prompt is None:
        problem = (
            f"{table.path} has no text or side column, and no prompt column ({' / '.join(PROMPT_NAMES)}) beside "
            f"its text columns {found}, so neither its layout (wide: one row per prompt, one answer column per "
            f"side) nor its prompt column can be told (columns: {_listed(table)})."
        )
    else:
        problem = (
            f"{table.path} has no text or side column, so it reads as wide (one row per prompt, `{prompt}`), but "
            f"{len(candidates)} columns could hold the answers ({found}) and a wide file has exactly two "
            f"(columns: {_listed(table)})."
        )
    return PromptBankError(
        problem,
        "Name the two answer columns, side a's first: --set corpus.text_columns='[col_a, col_b]' (and "
        "corpus.columns.prompt for the prompt column); for a long file (one row per answer), name its "
        "columns with corpus.columns.text and corpus.columns.side.",
    )


def _with_prompt(table: Table, options: CorpusConfig, a: str, b: str) -> WideColumns:
    given = options.columns
    prompt_id = _optional(table, given.prompt_id, PROMPT_ID_NAMES, (a, b))
    return WideColumns(
        a, b, _prompt_column(table, options, (a, b)), prompt_id, _optional(table, given.group, ("group",), (a, b))
    )


def _prompt_column(table: Table, options: CorpusConfig, answers: tuple[str, ...]) -> str | None:
    return _optional(table, options.columns.prompt, PROMPT_NAMES, answers)


def _other_columns(table: Table, options: CorpusConfig) -> tuple[str | None, ...]:
    """The columns of a wide file that hold neither the prompt nor an answer."""
    given = options.columns
    names = [c for c in table.columns if c.strip().lower() in INDEX_COLUMNS]
    return (
        *names,
        _optional(table, given.prompt_id, PROMPT_ID_NAMES, ()),
        _optional(table, given.group, ("group",), ()),
        _optional(table, given.cluster, ("cluster",), ()),
    )


def _optional(table: Table, given: str | None, defaults: tuple[str, ...], answers: tuple[str, ...]) -> str | None:
    """The column set in corpus.columns (required), else the first default name the table has that is not an
    answer column."""
    if given is not None:
        return find_column(table, (given,), given)
    for name in defaults:
        found = find_column(table, (name,), name, required=False)
        if found is not None and found not in answers:
            return found
    return None


def _text_columns(table: Table, columns: list[str]) -> list[str]:
    """The columns (of `columns`) that hold texts: strings only (or blanks), not all of them numbers (a CSV's scores
    are strings too). One pass over the rows for all of them."""
    seen = dict.fromkeys(columns, False)  # a string found
    words = dict.fromkeys(columns, False)  # a string that is not a number found
    texts = set(columns)  # not yet shown otherwise
    for _, record in table.rows:
        for column in list(texts):
            value = record.get(column)
            if value is None or _blank(value):
                continue
            if not isinstance(value, str):
                texts.discard(column)
                continue
            seen[column] = True
            if not words[column] and not _is_number(value):
                words[column] = True
        if not texts:
            break
    return [column for column in columns if column in texts and seen[column] and words[column]]


def _blank(value: Any) -> bool:
    return (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _listed(table: Table) -> str:
    return ", ".join(table.columns) or "none"
