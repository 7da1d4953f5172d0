"""Hypotheses given in a file (propose.given), tested as a confirmatory family of their own, and the same file
written from a finished run (`lmdelta findings export`), so that a run's findings can be tested again.

The file is YAML (a list of entries, or {hypotheses: [...]}) or JSONL (one entry per line); docs/given.md has
the format. Reading and writing live together here so that what export writes, read reads back unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from lmdelta.config import RunConfig
from lmdelta.config.yamlfile import jsonl_entries, yaml_document
from lmdelta.errors import ConfigError, RunDirError, did_you_mean
from lmdelta.hashing import hash_file
from lmdelta.properties import Property, build
from lmdelta.proposers import in_scope
from lmdelta.proposers.properties import statement
from lmdelta.records import DIRECTIONS, GIVEN, Direction, Finding, Hypothesis
from lmdelta.rundir import DECISIONS, EMBEDDER, HYPOTHESES, RunDir, atomic_write_text, read_jsonl
from lmdelta.sources import read_user_file

JudgeName = Literal["keyword", "embedding", "llm", "property"]  # Hypothesis.judge
JUDGE_NAMES: tuple[str, ...] = get_args(JudgeName)
# An entry's fields, in the order export writes them.
FIELDS = (
    "description",
    "direction",
    "judge",
    "group",
    "keywords",
    "measure",
    "measure_spec",
    "prototype",
    "embedder",
    "source",
)
ALIASES = {"property": "measure"}  # `judge: property` reads naturally with `property: words`
SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".jsonl": "jsonl"}
WHAT = "Given hypotheses file"
FORMAT_HINT = (
    "Write a YAML list of entries (or {hypotheses: [...]}) or one JSON object per line (.jsonl), each at least "
    '{description: "mentions the ocean", direction: "b>a"} (docs/given.md).'
)


@dataclass(frozen=True)
class GivenEntry:
    """One checked entry: a claim about an answer that names neither side, the side that shows it more, how it is
    scored, and where it is written (for messages and the hypothesis's provenance)."""

    where: str
    claim: str
    direction: Direction
    judge: JudgeName
    group: str = "all"
    keywords: tuple[str, ...] = ()
    measure: str | None = None
    measure_spec: dict[str, Any] | None = None
    prototype: tuple[float, ...] | None = None
    embedder: dict[str, Any] | None = None
    source: Any = None

    def hypothesis(self, number: int, order: int, labels: Mapping[str, str]) -> Hypothesis:
        """The entry as the `number`-th given hypothesis (g001, …), at `order` in the run's proposal order; its
        description names the sides by the run's labels, like a proposed one's, and `property` keeps the claim."""
        more, less = ("b", "a") if self.direction == "b>a" else ("a", "b")
        sentence = f"{self.claim} (more in the answers of {labels[more]} than of {labels[less]})"
        provenance: dict[str, Any] = {"given": self.where}
        if self.source is not None:
            provenance["source"] = self.source
        return Hypothesis(
            id=f"g{number:03d}",
            group=self.group,
            direction=self.direction,
            description=in_scope(sentence, self.group),
            proposer=GIVEN,
            judge=self.judge,
            keywords=self.keywords,
            property=self.claim,
            prototype=self.prototype,
            provenance=provenance,
            order=order,
            measure=self.measure,
            measure_spec=self.measure_spec,
        )


# --- reading a file ------------------------------------------------------------------------------------------------


def read(path: str | Path) -> list[GivenEntry]:
    """Every entry of a given file, checked; ConfigError naming the file, the entry (its line) and the fix."""
    path = Path(path)
    entries = [entry_from_mapping(raw, where) for where, raw in _raw_entries(path)]
    if not entries:
        raise ConfigError(f"{WHAT} {path} holds no hypotheses.", FORMAT_HINT)
    _check_unique(entries)
    return entries


def content_hash(path: str | Path) -> str:
    """The file's content, hashed: propose re-runs when it changes."""
    return hash_file(Path(path))[:16]


def hypotheses(entries: Iterable[GivenEntry], labels: Mapping[str, str], after: int) -> list[Hypothesis]:
    """The entries as hypotheses of proposer `given` (g001, …), ordered after the `after` proposed ones."""
    return [entry.hypothesis(i, after + i, labels) for i, entry in enumerate(entries, start=1)]


def check(config: RunConfig) -> None:
    """Refuse, before any stage runs, a propose.given file that cannot be read, or whose LLM-judged entries have no
    judge model."""
    if config.propose.given is None:
        return
    entries = read(config.propose.given)
    judged = [entry for entry in entries if entry.judge == "llm"]
    if judged and config.llm.judge.model is None:
        raise ConfigError(
            f"{judged[0].where} is judged by an LLM (judge: llm, the default for an entry without keywords, measure "
            "or prototype), but llm.judge.model is not set.",
            "Set llm.judge.model (e.g. --set llm.judge.model=openai/gpt-4.1-mini), or give the entry keywords "
            "(judge: keyword) or a text property (measure: NAME, judge: property).",
        )


def check_fits(entries: Iterable[GivenEntry], groups: Iterable[str], dim: int, embedder: dict[str, Any]) -> None:
    """Refuse entries this run cannot test: a group it does not have, a prototype made in another embedding space
    (`embedder`: the run's {model, id}; `dim`: its vectors' length)."""
    known = ["all", *groups]
    for entry in entries:
        if entry.group not in known:
            raise ConfigError(
                f"{entry.where} is about group {entry.group!r}, which this run does not have.",
                f"{did_you_mean(entry.group, known)}Use one of: {', '.join(known)} (all: every prompt).",
            )
        if entry.prototype is not None:
            _check_prototype(entry, entry.prototype, dim, embedder)


def _check_prototype(entry: GivenEntry, prototype: tuple[float, ...], dim: int, embedder: dict[str, Any]) -> None:
    made_by = entry.embedder or {}
    if made_by.get("id") != embedder["id"]:
        raise ConfigError(
            f"{entry.where} has a prototype made by the embedder {made_by.get('model') or made_by.get('id')}, but "
            f"this run embeds with {embedder['model']} ({embedder['id']}): a prototype only means something in the "
            "embedding space it was made in.",
            f"Set embed.model to {made_by.get('model') or 'that embedder'}, or leave the entry out.",
        )
    if len(prototype) != dim:
        raise ConfigError(
            f"{entry.where} has a prototype of {len(prototype)} numbers, but this run's embeddings have {dim}.",
            "Export the entry again from a run with this embedder, or leave it out.",
        )


def _raw_entries(path: Path) -> list[tuple[str, Any]]:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(
            f"{WHAT} {path} has the unsupported extension {path.suffix!r}.",
            "Use .yaml / .yml (a list of hypotheses) or .jsonl (one hypothesis per line).",
        )
    fix = "Check propose.given (a relative path is read beside the config file)."
    text = read_user_file(path, WHAT, ConfigError, fix)
    if kind == "yaml":
        return _yaml_entries(text, path)
    return jsonl_entries(text, path, '{"description": "mentions the ocean", "direction": "b>a"}')


def _yaml_entries(text: str, path: Path) -> list[tuple[str, Any]]:
    doc = yaml_document(text, f"{WHAT} {path}")
    if isinstance(doc, Mapping):
        if set(doc) != {"hypotheses"}:
            raise ConfigError(
                f"{WHAT} {path} holds a mapping with the keys {', '.join(map(str, doc))}, not `hypotheses` alone.",
                "Put the entries in a list under `hypotheses:`, or write the file as a list (`- description: …`).",
            )
        doc = doc["hypotheses"]
    items = [] if doc is None else doc
    if not isinstance(items, list):
        raise ConfigError(f"{WHAT} {path} holds a {type(items).__name__}, not a list of hypotheses.", FORMAT_HINT)
    lines = _entry_lines(text)
    return [
        (f"{path}, entry {i}" + (f" (line {lines[i - 1]})" if len(lines) == len(items) else ""), raw)
        for i, raw in enumerate(items, start=1)
    ]


def _entry_lines(text: str) -> list[int]:
    """The line each YAML entry starts on, from the file composed once more as nodes ([] when that fails)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if isinstance(node, yaml.MappingNode):
        node = next((value for key, value in node.value if key.value == "hypotheses"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _check_unique(entries: list[GivenEntry]) -> None:
    seen: dict[str, GivenEntry] = {}
    for entry in entries:
        key = json.dumps(entry.hypothesis(0, 0, {"a": "a", "b": "b"}).content_key(), sort_keys=True)
        if key in seen:
            raise ConfigError(
                f"{entry.where} repeats {seen[key].where}.",
                "Delete one of them: a hypothesis tested twice only makes its family larger.",
            )
        seen[key] = entry


# --- one entry -----------------------------------------------------------------------------------------------------


def entry_from_mapping(raw: Any, where: str) -> GivenEntry:
    """One entry of a given file, checked; `where` names it in errors ("given.yaml, entry 3 (line 9)")."""
    fields = _fields(raw, where)
    keywords = _keywords(fields.get("keywords"), where)
    prop = _measure(fields.get("measure"), fields.get("measure_spec"), where)
    prototype = _prototype(fields.get("prototype"), where)
    judge = _judge(fields.get("judge"), keywords, prop, prototype, where)
    _check_inputs(judge, keywords, prop, prototype, fields.get("embedder"), where)
    return GivenEntry(
        where=where,
        claim=_claim(fields.get("description"), prop, where),
        direction=_direction(fields.get("direction"), where),
        judge=judge,
        group=_text(fields.get("group", "all"), "group", where, "a group of the run's prompts, or all"),
        keywords=keywords,
        measure=None if prop is None else str(fields["measure"]),
        measure_spec=None if fields.get("measure_spec") is None else dict(fields["measure_spec"]),
        prototype=prototype,
        embedder=_embedder(fields.get("embedder"), where),
        source=fields.get("source"),
    )


def _fields(raw: Any, where: str) -> dict[str, Any]:
    """The entry's fields by their names (an alias renamed); unknown ones refused with a did-you-mean."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} is a {type(raw).__name__}, not a mapping.", FORMAT_HINT)
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        name = ALIASES.get(str(key), str(key))
        if name not in FIELDS:
            raise ConfigError(
                f"{where} has the unknown field {key!r}.",
                f"{did_you_mean(str(key), [*FIELDS, *ALIASES])}The fields are: {', '.join(FIELDS)}.",
            )
        if name in fields:
            raise ConfigError(f"{where} names the text property twice (measure and property).", "Keep one of them.")
        fields[name] = value
    return fields


def _text(value: Any, field: str, where: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} has {field} {value!r}, not a text.", f"Write {field}: {example}.")
    return value.strip()


def _claim(value: Any, prop: Property | None, where: str) -> str:
    """The side-free claim: the description, or for a text property without one, the property's own statement."""
    if value is None and prop is not None:
        return statement(prop)
    if value is None:
        raise ConfigError(
            f"{where} has no description.",
            'Add description: a claim about one answer that names neither side, e.g. "mentions the ocean".',
        )
    return _text(value, "description", where, '"mentions the ocean" (a claim that names neither side)')


def _direction(value: Any, where: str) -> Direction:
    found = "b>a" if value is None else str(value).replace(" ", "")
    for direction in DIRECTIONS:
        if found == direction:
            return direction
    raise ConfigError(
        f"{where} has direction {value!r}.",
        "Write direction: b>a (side b's answers show it more; the default) or a>b.",
    )


def _keywords(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(k, str) and k.strip() for k in value):
        raise ConfigError(f"{where} has keywords {value!r}, not a list of words.", "Write keywords: [ocean, sea].")
    return tuple(k.strip() for k in value)


def _measure(name: Any, spec: Any, where: str) -> Property | None:
    """The text property an entry names (a built-in one, or `measure_spec`'s user property), or None."""
    if name is None:
        if spec is not None:
            raise ConfigError(f"{where} has a measure_spec but no measure.", "Name the property: measure: NAME.")
        return None
    if spec is not None and not isinstance(spec, Mapping):
        raise ConfigError(f"{where} has measure_spec {spec!r}, not a mapping.", "Write it as a user property entry.")
    try:
        return build(str(name), spec)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.problem}", exc.fix) from None


def _prototype(value: Any, where: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    numbers = value if isinstance(value, list) else []
    if not numbers or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in numbers):
        raise ConfigError(
            f"{where} has a prototype that is not a list of numbers.",
            "Keep the prototype `lmdelta findings export` wrote, or leave it out.",
        )
    if not all(math.isfinite(x) for x in numbers) or not any(numbers):
        raise ConfigError(f"{where} has a prototype with no direction (zeros, inf or nan).", "Export it again.")
    return tuple(float(x) for x in numbers)


def _embedder(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"id": value}
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return dict(value)
    raise ConfigError(f"{where} has embedder {value!r}.", "Keep the {model, id} `lmdelta findings export` wrote.")


def _judge(
    value: Any, keywords: tuple[str, ...], prop: Property | None, prototype: tuple[float, ...] | None, where: str
) -> JudgeName:
    """The judge named, or by default the one the entry's inputs call for (an LLM for a description alone)."""
    if value is None:
        return "keyword" if keywords else "property" if prop else "embedding" if prototype else "llm"
    if value not in JUDGE_NAMES:
        raise ConfigError(
            f"{where} has judge {value!r}.",
            f"{did_you_mean(str(value), JUDGE_NAMES)}The judges are: {', '.join(JUDGE_NAMES)}.",
        )
    return cast(JudgeName, value)


def _check_inputs(
    judge: str,
    keywords: tuple[str, ...],
    prop: Property | None,
    prototype: tuple[float, ...] | None,
    embedder: Any,
    where: str,
) -> None:
    """What the judge needs is there, and nothing another judge would need is (it would be ignored silently)."""
    if judge == "keyword" and not keywords:
        raise ConfigError(
            f"{where} is judged by keywords (judge: keyword) but has none.",
            "Add keywords: [ocean, sea], or choose judge: llm to have an LLM judge the description.",
        )
    if (judge == "property") != (prop is not None):
        raise ConfigError(
            f"{where} has judge {judge} and {'no measure' if prop is None else 'a measure only judge property reads'}.",
            "Name the text property with measure: NAME (docs/properties.md) and judge: property, or drop the measure.",
        )
    if (judge == "embedding") != (prototype is not None) or (prototype is not None and embedder is None):
        raise ConfigError(
            f"{where} has judge {judge} and {'a prototype without its embedder' if prototype else 'no prototype'}.",
            "Embedding entries come from `lmdelta findings export` (prototype and embedder); keep both, or use "
            "another judge.",
        )


# --- writing a finished run's findings ------------------------------------------------------------------------------


def export_findings(run_dir: str | Path, out: str | Path, everything: bool = False) -> int:
    """Write the main comparison's validated findings (`everything`: every tested one) as a given file, YAML or JSONL
    by `out`'s extension; returns how many. Each entry is its hypothesis as propose wrote it (side-free claim,
    direction, judge, keywords, measure, prototype and embedder), so a run given the file tests the same hypotheses."""
    out, files = Path(out), RunDir(run_dir)
    kind = SUFFIXES.get(out.suffix.lower())
    if kind is None:
        raise ConfigError(f"Cannot tell the format of {out} from its extension.", "Name it .yaml, .yml or .jsonl.")
    findings = _decided(files)
    chosen = [f for f in findings if (f.p_value is not None if everything else f.validated is True)]
    proposed = {row["id"]: Hypothesis.from_dict(row) for row in read_jsonl(files.stage_file("propose", HYPOTHESES))}
    picked = [_hypothesis_of(finding, proposed, files) for finding in chosen]
    embedder = _run_embedder(files) if any(h.prototype is not None for h in picked) else None
    entries = [to_entry(h, embedder, {"run": str(run_dir), "id": h.id}) for h in picked]
    what = "every tested" if everything else "the validated"
    atomic_write_text(out, _file_text(entries, kind, f"{what} findings of {run_dir}'s main comparison"))
    return len(entries)


def to_entry(h: Hypothesis, embedder: dict[str, Any] | None, source: Any = None) -> dict[str, Any]:
    """A hypothesis as a given file's entry: everything its content key holds, the claim side-free."""
    entry: dict[str, Any] = {
        "description": h.property if h.property is not None else h.description,
        "direction": h.direction,
        "judge": h.judge,
    }
    if h.group != "all":
        entry["group"] = h.group
    if h.keywords:
        entry["keywords"] = list(h.keywords)
    if h.measure is not None:
        entry["measure"] = h.measure
    if h.measure_spec is not None:
        entry["measure_spec"] = h.measure_spec
    if h.prototype is not None:
        entry["prototype"], entry["embedder"] = h.to_dict()["prototype"], embedder
    if source is not None:
        entry["source"] = source
    return entry


def _decided(files: RunDir) -> list[Finding]:
    path = files.stage_file("decide", DECISIONS)
    if not path.exists():
        raise RunDirError(
            f"{files.root} has no decisions yet ({path} is missing): its hypotheses were not all tested.",
            f"Run it to the end first (lmdelta run CONFIG --run-dir {files.root}), then export.",
        )
    return [Finding.from_dict(row) for row in read_jsonl(path)]


def _hypothesis_of(finding: Finding, proposed: dict[str, Hypothesis], files: RunDir) -> Hypothesis:
    """The hypothesis propose wrote for a decided finding (its prototype is not in the finding)."""
    found = proposed.get(finding.id)
    if found is None or (found.description, found.direction) != (finding.description, finding.direction):
        raise RunDirError(
            f"The decisions in {files.root} are not about the hypotheses its propose stage holds now ({finding.id}).",
            f"Run it to the end again (lmdelta run CONFIG --run-dir {files.root}), then export.",
        )
    return found


def _run_embedder(files: RunDir) -> dict[str, Any]:
    """The run's embedder: its model string and the content id the embed stage recorded."""
    record = files.load_manifest().stage("embed")
    material = (record.material if record is not None else None) or {}
    model = ((material.get("config") or {}).get("embed") or {}).get("model")
    return {"model": model, "id": files.stage_file("embed", EMBEDDER).read_text().strip()}


def _file_text(entries: list[dict[str, Any]], kind: str, what: str) -> str:
    if kind == "jsonl":
        return "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
    header = (
        f"# Hypotheses exported by `lmdelta findings export`: {what}.\n"
        "# Test them again with propose.given set to this file (docs/given.md).\n"
    )
    body = yaml.safe_dump({"hypotheses": entries}, sort_keys=False, allow_unicode=True, default_flow_style=None)
    return header + body
