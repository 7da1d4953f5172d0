"""Saved corpora of model outputs, compared without any model: decodings made by other tools
or by the reference system, as JSONL, CSV, TSV (each perhaps gzipped) or Parquet. One file holds
both sides (a `side` or `model` column, or wide: one answer column per side, see sources.wide) or
each side has its own; `prompt_id`, `prompt` and `group` columns are optional. Answers that share
a prompt are compared paired; otherwise text by text.

The reference system's CSV (`model` = base / finetuned, `text`, `prompt`, written with a
backslash escape character) is recognised by its header and read with that escape.
"""

from __future__ import annotations

import csv
import gzip
import logging
import re
import textwrap
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from lmdelta import heap
from lmdelta.backends.textformat import split_reasoning
from lmdelta.config.prompts import CorpusConfig
from lmdelta.errors import PromptBankError
from lmdelta.hashing import hash_file, hash_text
from lmdelta.records import Side
from lmdelta.sources.corpus_checks import (
    check_cluster_sides,
    check_prompt_ids,
    check_repeated_rows,
    warn_artefacts,
)
from lmdelta.sources.corpustable import CorpusBuilder, CorpusRow, CorpusTable
from lmdelta.sources.tabular import Table, cell_group, find_column, read_table, suffix_of
from lmdelta.sources.textfile import CHUNK
from lmdelta.sources.units import cluster_ids
from lmdelta.sources.wide import INDEX_COLUMNS, WideColumns, wide_columns

log = logging.getLogger(__name__)
SIDE_WORDS: dict[str, Side] = {"a": "a", "b": "b"}
REFERENCE_SIDES: dict[str, Side] = {"base": "a", "finetuned": "b", "intervention": "b"}
REFERENCE_HEADER = {"model", "text", "prompt"}


# The last corpus read, so that checking it before a run and running the prompts stage parse it once.
# Keyed by the content of its files: an edit is seen even when it keeps the size and the modification time.
_LOADED: dict[tuple[Any, ...], CorpusTable] = {}


def read_corpus(section: CorpusConfig, labels: Mapping[str, str]) -> CorpusTable:
    """load_corpus for a config's corpus section. The last corpus read is kept while its files' contents,
    the section and the labels stay the same; clear_corpus_cache() forgets it."""
    key = (section.model_dump_json(), tuple(sorted(labels.items())), tuple(corpus_hashes(section)))
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_corpus(section.path, section.a, section.b, labels, section)
        heap.give_back()  # the parsed file's rows and Arrow's buffers, gone now that the corpus rows are built
    return _LOADED[key]


def clear_corpus_cache() -> None:
    """Forget the corpus kept by read_corpus (tests call it between cases)."""
    _LOADED.clear()


def corpus_hashes(section: CorpusConfig) -> list[str | None]:
    """The SHA-256 of each corpus file set (None for one that is not a file: reading it says why)."""
    paths = [Path(value) for value in (section.path, section.a, section.b) if value]
    return [hash_file(path) if path.is_file() else None for path in paths]


def load_corpus(
    path: str | None,
    path_a: str | None,
    path_b: str | None,
    labels: Mapping[str, str],
    options: CorpusConfig | None = None,
) -> CorpusTable:
    """Every row of the corpus files, with sides resolved to "a"/"b"; both sides must be present. The export
    artefacts found in the texts are logged and kept on the table (`artefacts`)."""
    options = options or CorpusConfig()
    builder = CorpusBuilder()
    if path and (path_a or path_b):
        raise PromptBankError(
            "corpus.path and corpus.a/corpus.b are both set.",
            "Use corpus.path for one file holding both sides, or corpus.a and corpus.b, not both.",
        )
    if path:
        _read(Path(path), None, labels, options, builder)
    elif path_a and path_b:
        _read(Path(path_a), "a", labels, options, builder)
        _read(Path(path_b), "b", labels, options, builder)
    else:
        raise PromptBankError(
            "Corpus mode needs both sides.", "Set corpus.a and corpus.b (one file per side), or corpus.path."
        )
    rows = builder.table()
    for side in ("a", "b"):
        if not rows.side_rows(side).size:
            raise PromptBankError(
                f"The corpus has no texts for side {side} ({labels.get(side, side)}).",
                "Check the `side` column values, or the file given for that side.",
            )
    check_prompt_ids(_side_prompt_keys(rows), rows.codes("prompt").codes, rows.__getitem__)
    _check_pairing(rows)
    rows = rows.with_artefacts(warn_artefacts(side_texts(rows), labels))
    return _settle_clusters(rows, options)


def _side_prompt_keys(rows: CorpusTable) -> np.ndarray:
    """Each row's (side, prompt_id) as a number; -1 for a row without a prompt id or prompt text."""
    prompt_ids, prompts = rows.codes("prompt_id"), rows.codes("prompt")
    keys = rows.side_codes().codes.astype(np.int64) * len(prompt_ids.values) + prompt_ids.codes
    for codes in (prompt_ids, prompts):
        if None in codes.values:
            keys[codes.codes == codes.values.index(None)] = -1
    return keys


def side_texts(rows: CorpusTable) -> dict[str, Sequence[str]]:
    """Each side's texts, in file order (decoded as they are read)."""
    return {side: rows.texts(rows.side_rows(side)) for side in ("a", "b")}


def _settle_clusters(rows: CorpusTable, options: CorpusConfig) -> CorpusTable:
    """The cluster column sets the unit of an unaligned corpus. With prompt ids the unit is the prompt,
    so a cluster column set in corpus.columns is refused and one found by its default name is left
    out, with a warning. Unaligned, the clusters must all hold both sides' texts or all one side's."""
    if rows.codes("cluster").values == [None]:
        return rows
    if any(value is not None for value in rows.codes("prompt_id").values):
        if options.columns.cluster is not None:
            raise _nested_prompts_error(options.columns.cluster)
        log.warning(
            "corpus: the `cluster` column is not used: the corpus is aligned by prompt ids, so each prompt "
            "is a unit of its own (to compare whole clusters, e.g. the turns of one conversation, remove "
            "the prompt_id and prompt columns)"
        )
        return rows.without_clusters()
    clusters = cluster_ids(rows)
    if clusters is not None:
        sides: dict[str, set[str]] = {}
        for cluster, side in zip(clusters, rows.sides()):
            sides.setdefault(cluster, set()).add(side)
        check_cluster_sides(sides)
    return rows


def _nested_prompts_error(column: str) -> PromptBankError:
    return PromptBankError(
        f"corpus.columns.cluster is set ({column!r}), but the corpus also has prompt ids (a prompt_id or prompt "
        "column), which make each prompt a unit of its own: the clusters would be ignored, and prompts nested in "
        "one cluster (the turns of one conversation) are not independent, so the p-values would come out too small.",
        "The cluster column is for corpora without prompt ids. For prompts grouped into conversations, remove the "
        "prompt_id and prompt columns to compare whole clusters (paired when each holds both sides' answers); if "
        "the prompts are independent of each other, remove corpus.columns.cluster.",
    )


def _check_pairing(rows: CorpusTable) -> None:
    """Prompts answered by one side only cannot be compared paired: refuse when none are shared."""
    prompt_ids = rows.codes("prompt_id")
    if None in prompt_ids.values:
        return  # unaligned, or a mix that is_aligned refuses with its own message
    held = np.zeros(len(prompt_ids.values), dtype=np.uint8)  # per prompt: bit 1 side a, bit 2 side b
    for bit, side in enumerate(("a", "b")):
        held[np.unique(prompt_ids.codes[rows.side_rows(side)])] |= 1 << bit
    one_sided = int(np.count_nonzero(held != 3))
    if one_sided == len(held):
        raise PromptBankError(
            "No prompt of the corpus has answers from both sides, so nothing can be compared paired.",
            "The prompt columns differ between the sides (a system prefix or chat template inside "
            "the prompt?): give both sides the same prompt_id, or drop the prompt columns to "
            "compare text by text.",
        )
    if one_sided:
        log.warning(
            "corpus: %d of %d prompts have answers from one side only; they are left out of paired tests",
            one_sided,
            len(held),
        )


def _read(
    path: Path, fixed_side: Side | None, labels: Mapping[str, str], options: CorpusConfig, into: CorpusBuilder
) -> None:
    """The file's answers, added to `into`."""
    reference = options.format == "reference" or (options.format == "auto" and is_reference_layout(path))
    table = read_table(path, "Corpus file", escapechar="\\" if reference else None)
    if not table.rows:
        raise PromptBankError(
            f"Corpus file {path} holds no rows.", "Point to a file with a `text` column and at least one row."
        )
    before = len(into)
    wide = wide_columns(table, options, one_file=fixed_side is None)
    if wide is not None:
        rows, expected = _wide_rows(table, wide, options), 2 * len(table.rows)
    else:
        rows, expected = _long_rows(table, fixed_side, labels, options, reference), len(table.rows)
    for row in rows:
        into.add(row)
    if len(into) - before < expected:
        dropped = expected - (len(into) - before)
        log.warning("corpus %s: %d empty texts dropped (corpus.empty_texts = drop)", path, dropped)


def _long_rows(
    table: Table, fixed_side: Side | None, labels: Mapping[str, str], options: CorpusConfig, reference: bool
) -> Iterator[CorpusRow]:
    """One row per answer, its side in a side column (or the file's, for corpus.a/corpus.b); empty ones dropped."""
    columns = _columns(table, options, fixed_side is None)
    check_repeated_rows(table, tuple(c for c in (columns.prompt_id, columns.prompt) if c is not None))
    sides = side_values(labels, options, reference)
    source = f"{table.path} {table.unit}"
    if fixed_side is not None and columns.side is not None:
        _check_own_side(table, columns.side, fixed_side, sides, source)
    rows = (_row(source, line, record, columns, fixed_side, sides, options) for line, record in table.rows)
    return (row for row in rows if row is not None)


def _wide_rows(table: Table, wide: WideColumns, options: CorpusConfig) -> Iterator[CorpusRow]:
    """Two rows per line of a wide file, side a's answer and side b's, sharing the line's prompt (or, without
    one, an id of the line's own); empty ones dropped."""
    check_repeated_rows(table, wide.unit_columns)
    source = f"{table.path} {table.unit}"
    sides: tuple[tuple[Side, str], ...] = (("a", wide.a), ("b", wide.b))
    per_side = {side: _Columns(text, None, wide.prompt, wide.prompt_id, wide.group, None) for side, text in sides}
    for line, record in table.rows:
        for side, columns in per_side.items():
            row = _row(source, line, record, columns, side, {}, options)
            if row is not None:
                yield row if row.prompt_id is not None else replace(row, prompt_id=wide.row_id(record))


def _check_own_side(table: Table, column: str, fixed_side: Side, sides: dict[str, Side], source: str) -> None:
    """A file given for one side whose own side column names the other side holds both (or the wrong) sides."""
    for line, record in table.rows:
        value = str(record.get(column) or "").strip().lower()
        if sides.get(value, fixed_side) != fixed_side:
            raise PromptBankError(
                f"{source} {line} says `{column}` = {record.get(column)!r} (side {sides[value]}), "
                f"but the file was given as corpus.{fixed_side}.",
                "A file that holds both sides goes in corpus.path; corpus.a and corpus.b take one side's file each.",
            )


def is_reference_layout(path: Path) -> bool:
    """A CSV with the reference system's header (model, text, prompt; perhaps a pandas index column)
    whose backslashes all come in pairs, as pandas' to_csv(escapechar='\\') writes them. A file with
    that header but lone backslashes was written without the escape: it is read as plain CSV."""
    kind = suffix_of(path)
    if kind not in (".csv", ".csv.gz") or not path.is_file():
        return False
    opener = gzip.open if kind == ".csv.gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace") as handle:
            header = next(csv.reader(handle), [])
            names = {name.strip().lower() for name in header} - INDEX_COLUMNS
            if names not in (REFERENCE_HEADER, REFERENCE_HEADER - {"prompt"}):
                return False
            escaped = _backslashes_paired(handle)
    except (OSError, EOFError, zlib.error):  # a broken gzip file: reading it says so
        return False
    if not escaped:
        log.warning(
            "corpus %s has the reference layout's header but lone backslashes, so it was not written with "
            "the reference's escape character: reading it as plain CSV (corpus.format: reference forces "
            "the escape)",
            path,
        )
    return escaped


def _backslashes_paired(handle: TextIO) -> bool:
    """Whether every run of backslashes in the rest of the text is of even length, read a chunk at a time."""
    carried = ""  # the backslashes that ended the previous chunk: their run may go on
    while chunk := handle.read(CHUNK):
        text = carried + chunk
        body = text.rstrip("\\")
        carried = text[len(body) :]
        if any(len(run) % 2 for run in re.findall(r"\\+", body)):
            return False
    return len(carried) % 2 == 0


@dataclass(frozen=True)
class _Columns:
    """The table's name for each column the corpus reads (None: the table has no such column)."""

    text: str
    side: str | None
    prompt: str | None
    prompt_id: str | None
    group: str | None
    cluster: str | None


def _columns(table: Table, options: CorpusConfig, need_side: bool) -> _Columns:
    given = options.columns
    text = find_column(table, (given.text or "text",), "the answer texts")
    side = find_column(
        table,
        (given.side,) if given.side else ("side", "model"),
        "which model (a/b) wrote each text",
        required=need_side,
    )
    optional = {
        name: find_column(table, (getattr(given, name) or name,), name, required=getattr(given, name) is not None)
        for name in ("prompt", "prompt_id", "group", "cluster")
    }
    return _Columns(text=text, side=side, **optional)


def side_values(labels: Mapping[str, str], options: CorpusConfig, reference: bool) -> dict[str, Side]:
    """Side-column value (lower case) → "a"/"b": a and b, the sides' labels, corpus.sides, and the
    reference's base/finetuned — understood after the labels in other files, but first in the
    reference's own layout, where base is always side a."""
    # labels and corpus.sides are keyed by a and b, which SIDE_WORDS maps to themselves as sides
    known = {**REFERENCE_SIDES, **SIDE_WORDS, **{label.lower(): SIDE_WORDS[side] for side, label in labels.items()}}
    for side, values in options.sides.items():
        known.update({str(value).strip().lower(): SIDE_WORDS[side] for value in values})
    return {**known, **REFERENCE_SIDES} if reference else known


def _row(
    source: str,
    line: int,
    record: dict[str, Any],
    columns: _Columns,
    fixed_side: Side | None,
    sides: dict[str, Side],
    options: CorpusConfig,
) -> CorpusRow | None:
    text = _answer(record.get(columns.text), source, line, columns.text, options)
    if text is None:
        return None
    side = fixed_side or _side(record.get(columns.side) if columns.side else None, source, line, sides)
    prompt = cell_group(record, columns.prompt)
    prompt_id = cell_group(record, columns.prompt_id)
    if prompt_id is None and prompt is not None:
        prompt_id = "p-" + hash_text(prompt)[:12]
    return CorpusRow(
        side,
        text,
        prompt_id,
        prompt,
        cell_group(record, columns.group),
        source,
        line,
        cell_group(record, columns.cluster),
    )


def _answer(value: Any, source: str, line: int, column: str, options: CorpusConfig) -> str | None:
    """The analysed text: reasoning stripped; an empty one handled by corpus.empty_texts."""
    if value is not None and not isinstance(value, str) and not (isinstance(value, float) and value != value):
        raise _not_text(value, source, line, column)
    text = value if isinstance(value, str) else ""
    if options.reasoning is not None:
        text = _strip_reasoning(text, *options.reasoning)
    if text.strip() or options.empty_texts == "keep":
        return text
    if options.empty_texts == "drop":
        return None
    stripped = " after its reasoning was stripped (corpus.reasoning)" if options.reasoning and value else ""
    raise PromptBankError(
        f"{source} {line} has an empty `{column}`{stripped}.",
        "Fix or remove that row, or set corpus.empty_texts to drop (skip empty answers) "
        "or keep (analyse them as empty).",
    )


_KINDS = {bool: "a boolean", int: "a number", float: "a number"}


def _not_text(value: Any, source: str, line: int, column: str) -> PromptBankError:
    """A list, mapping, number or boolean where an answer text belongs: a wrong column, or a text
    left in pieces. Refused, since its printed form ("['a', 'b']", "0") is not what the model wrote."""
    if isinstance(value, (list, tuple, dict)):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        return PromptBankError(
            f"{source} {line} holds {kind} in `{column}` ({textwrap.shorten(repr(value), 60)}), not a text.",
            "Write each answer as one string (join its parts, or pick the part that is the "
            "answer), or remove that row.",
        )
    kind = _KINDS.get(type(value), f"a {type(value).__name__}")
    return PromptBankError(
        f"{source} {line} holds {kind} ({value!r}) in `{column}`, not a text.",
        "Check that corpus.columns.text (or, in a wide file, corpus.text_columns) names the column of answer "
        'texts; if the answers really are numbers, write them as strings ("42").',
    )


def _strip_reasoning(text: str, start: str, end: str) -> str:
    """The answer after the reasoning: after `end` when the text has it; empty when the text opens
    with `start` and never closes it; the text itself when it merely mentions a marker."""
    if end in text or text.lstrip().startswith(start.strip()):
        return split_reasoning(text, start, end)[1]
    return text


def _side(value: Any, source: str, line: int, known: dict[str, Side]) -> Side:
    if isinstance(value, str) and value in known:
        return known[value]
    if value is None or str(value).strip().lower() not in known:
        shown = ", ".join(sorted(known))
        raise PromptBankError(
            f"{source} {line} has side {value!r}, which is neither a nor b.",
            f"Use side values {shown} (labels come from generate.a.label / generate.b.label; "
            "add others with corpus.sides, e.g. {a: [llama-base], b: [llama-rome]}).",
        )
    return known[str(value).strip().lower()]
