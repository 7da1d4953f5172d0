"""Prompt banks: the built-in ones, plain text / JSONL / CSV files, and public datasets read
from a local copy or the Hugging Face Hub (persona, advanced-ai-risk, MPI, jailbreak_llms,
TruthfulQA, BOLD). The LLM-generated bank lives in sources.generated (it needs the LLM layer).

Prompt ids come from the file when it gives them, else from a hash of the item's text, so an
id never depends on the order in which prompts were read and survives a change of template.
"""

from __future__ import annotations

import importlib
import logging
from importlib import resources
from pathlib import Path

from lmdelta.config.source import DATASETS, SourceSpec, parse_source
from lmdelta.errors import LmdeltaError, PromptBankError, did_you_mean
from lmdelta.hashing import hash_file, hash_text
from lmdelta.records import Prompt
from lmdelta.sources.hub import hub_folder
from lmdelta.sources.items import SourceItem
from lmdelta.sources.jsonrows import json_records
from lmdelta.sources.tabular import find_column, read_table
from lmdelta.sources.textfile import read_text

BUILTIN_PREFIX = "builtin:"
VERBATIM = "{prompt}"
# The module under lmdelta.sources that reads each public prompt set (config.source.DATASETS names them).
LOADERS = {
    "persona": "evals",
    "advanced-ai-risk": "evals",
    "mpi": "tables",
    "jailbreak": "tables",
    "truthfulqa": "tables",
    "bold": "bold",
}
# Where each public set can be downloaded from, for messages.
HOMES = {
    "persona": "github.com/anthropics/evals",
    "advanced-ai-risk": "github.com/anthropics/evals",
    "mpi": "github.com/jianggy/MPI",
    "jailbreak": "github.com/verazuo/jailbreak_llms",
    "truthfulqa": "github.com/sylinrl/TruthfulQA",
    "bold": "github.com/amazon-science/bold",
}
log = logging.getLogger(__name__)


def builtin_banks() -> list[str]:
    folder = resources.files("lmdelta") / "data" / "banks"
    return sorted(entry.name.removesuffix(".jsonl") for entry in folder.iterdir() if entry.name.endswith(".jsonl"))


def content_id(text: str) -> str:
    return "p-" + hash_text(text)[:12]


# The last bank read, so that planning and running a stage read it once. Keyed by the content of
# its files: an edit is seen even when it keeps the size and the modification time.
_LOADED: dict[tuple, list[Prompt]] = {}


def load_bank(source: str, template: str | None = None) -> list[Prompt]:
    """Read a bank and check it: not empty, ids unique, every text non-empty. `template` (with
    `{prompt}`) wraps every item; unset, datasets use their own template and files none.

    The last bank read is kept while its files' contents stay the same; clear_bank_cache() forgets it."""
    key = (source, template, _signature(parse_source(source)))
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = _load_bank(source, template)
    return list(_LOADED[key])


def clear_bank_cache() -> None:
    """Forget the bank kept by load_bank (tests call it between cases)."""
    _LOADED.clear()


def _signature(spec: SourceSpec) -> tuple:
    """The files behind a source with the SHA-256 of each (nothing for built-in or Hub banks, which
    are named by their source string and pinned revision)."""
    if not spec.is_path:
        return ()
    root = Path(spec.location)
    if not root.exists():
        return ("missing",)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return tuple((str(p), hash_file(p)) for p in files)


def _load_bank(source: str, template: str | None) -> list[Prompt]:
    spec = parse_source(source)
    if spec.kind == "builtin":
        prompts = _templated(_builtin(spec.location), template)
    elif spec.kind == "file":
        prompts = _templated(_from_file(Path(spec.location)), template)
    elif spec.kind in DATASETS:
        prompts = _dataset(spec, template)
    elif spec.kind == "unconditional":
        prompts = unconditional_prompts(int(spec.location))
    else:
        raise PromptBankError(f"prompts.source {source!r} is not a file bank.", "This is a bug: please report it.")
    if not prompts:
        raise PromptBankError(
            f"Prompt bank {source} holds no prompts.",
            "Add prompts to it (one per line, or JSONL objects with a `text` field).",
        )
    _check_unique(prompts, source)
    return prompts


def unconditional_prompts(n: int) -> list[Prompt]:
    """Sampling from the empty prompt (the model's BOS alone without a chat template): n units, each
    answered samples_per_prompt times. Samples are independent draws, so a unit is just a block of
    them; its id is its number because it has no content."""
    return [Prompt(id=f"u-{i:05d}", text="") for i in range(n)]


def _dataset(spec: SourceSpec, template: str | None) -> list[Prompt]:
    module_name, repo_id = LOADERS[spec.kind], DATASETS[spec.kind]
    if spec.is_hub:
        if repo_id is None:
            raise PromptBankError(
                f"The {spec.kind} prompts are not on the Hugging Face Hub.",
                f"Download them and pass the local copy: prompts.source={spec.kind}:PATH.",
            )
        location = hub_folder(spec.kind, repo_id, spec.hub_revision)
    else:
        location = Path(spec.location)
        if not location.exists():
            online = f", or use {spec.kind}:hub when online" if repo_id else ""
            raise PromptBankError(
                f"The {spec.kind} data {location} does not exist.",
                f"Download it from {HOMES[spec.kind]} and point prompts.source to it{online} "
                "(docs/prompt-sources.md lists the files expected).",
            )
    module = importlib.import_module(f"lmdelta.sources.{module_name}")
    return prompts_from_items(module.load(spec.kind, location), template or module.TEMPLATES[spec.kind])


def prompts_from_items(items: list[SourceItem], template: str) -> list[Prompt]:
    """One prompt per distinct item: id = hash of the item text, text = the template around it."""
    prompts: dict[str, Prompt] = {}
    for item in items:
        pid = content_id(item.text)
        if pid not in prompts:
            prompts[pid] = Prompt(id=pid, text=template.replace(VERBATIM, item.text), group=item.group)
    if len(prompts) < len(items):
        log.info("prompt source: %d repeated items dropped (first occurrence kept)", len(items) - len(prompts))
    return list(prompts.values())


def _templated(prompts: list[Prompt], template: str | None) -> list[Prompt]:
    if template is None or template == VERBATIM:
        return prompts
    return [Prompt(p.id, template.replace(VERBATIM, p.text), p.group, p.split) for p in prompts]


def _builtin(name: str) -> list[Prompt]:
    names = builtin_banks()
    if name not in names:
        hint = did_you_mean(name, names, show=lambda near: f"builtin:{near}")
        raise PromptBankError(
            f"There is no built-in prompt bank {name!r}.",
            f"{hint}Built-in banks: {', '.join('builtin:' + n for n in names)}.",
        )
    path = resources.files("lmdelta") / "data" / "banks" / f"{name}.jsonl"
    return _parse_jsonl(path.read_text(encoding="utf-8"), f"builtin:{name}")


def read_user_file(path: Path, what: str, error: type[LmdeltaError], missing_fix: str) -> str:
    """A user's text file, or an error naming the file and the fix (missing, not a file, not UTF-8)."""
    if not path.is_file():
        raise error(f"{what} {path} does not exist.", missing_fix)
    return read_text(path, what, error)


def _from_file(path: Path) -> list[Prompt]:
    text = read_user_file(
        path,
        "Prompt bank file",
        PromptBankError,
        "Check prompts.source, or use the built-in bank with prompts.source=builtin:everyday.",
    )
    if path.suffix == ".jsonl":
        return _parse_jsonl(text, str(path))
    if path.suffix in (".txt", ".text", ""):
        return [Prompt(id=content_id(line.strip()), text=line.strip()) for line in text.splitlines() if line.strip()]
    if path.suffix == ".csv":
        return _from_csv(path)
    raise PromptBankError(
        f"Prompt bank file {path} has the unsupported extension {path.suffix!r}.",
        "Use .txt (one prompt per line), .jsonl (objects with id, text, group) or .csv "
        "(columns text or prompt, optional id and group).",
    )


def _from_csv(path: Path) -> list[Prompt]:
    table = read_table(path, "Prompt bank file")
    text = find_column(table, ("text", "prompt", "question"), "prompt text")
    group = find_column(table, ("group", "category"), "group", required=False)
    ident = find_column(table, ("id", "prompt_id"), "id", required=False)
    out = []
    for line, row in table.rows:
        value = str(row.get(text) or "").strip()
        if not value:
            raise PromptBankError(f"{path} line {line} has an empty `{text}`.", "Fill it in or remove the row.")
        given = str(row.get(ident) or "").strip() if ident else ""
        label = str(row.get(group) or "").strip() if group else ""
        out.append(Prompt(id=given or content_id(value), text=value, group=label or None))
    return out


def _parse_jsonl(text: str, where: str) -> list[Prompt]:
    return [_prompt_from_row(row, where, number) for number, row in json_records(where, text)]


def _prompt_from_row(row: object, where: str, number: int) -> Prompt:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
        raise PromptBankError(
            f"{where} line {number} has no non-empty string field `text`.",
            'Write each line like {"id": "q1", "text": "How do tides work?", "group": "science"}.',
        )
    text = row["text"].strip()
    group = row.get("group")
    return Prompt(id=str(row.get("id") or content_id(text)), text=text, group=None if group is None else str(group))


def _check_unique(prompts: list[Prompt], source: str) -> None:
    seen: dict[str, int] = {}
    for position, prompt in enumerate(prompts, start=1):
        if prompt.id in seen:
            raise PromptBankError(
                f"Prompt bank {source} has the id {prompt.id!r} twice (prompts {seen[prompt.id]} and {position}).",
                "Give every prompt its own id (ids made from text repeat when the same text appears twice: remove the "
                "copy; for several answers to one prompt, set generate.samples_per_prompt instead).",
            )
        seen[prompt.id] = position
