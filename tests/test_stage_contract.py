"""The stage contract: every config field a stage reads while it runs is part of its fingerprint, so a
change to it re-runs the stage. Covered are its own sections, those of its upstream stages (their
fingerprints are in its own, transitively), the fields it declares in READS, and volatile fields
(batch sizes, devices), which cannot change results.

Reads are recorded on the resolved config the pipeline hands each stage's run(), at the attribute
level of every config section. Not seen: reads of a section's copy (model_copy) and whole-section
dumps (model_dump); both would come from a section the stage holds anyway in today's stages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import RunConfig, load_config
from lmdelta.config.base import Section
from lmdelta.rundir import RunDir
from lmdelta.stages import propose
from lmdelta.stages.contract import Read, Stage, reads

BY_NAME = {entry.name: entry for entry in pipeline.STAGES}


def _section_paths(config: RunConfig) -> dict[int, str]:
    """id(section) → its dotted path in the config ("" for the config itself)."""
    paths = {id(config): ""}

    def walk(node: Section, prefix: str) -> None:
        for name in type(node).model_fields:
            value = node.__dict__[name]
            if isinstance(value, Section):
                paths[id(value)] = prefix + name
                walk(value, prefix + name + ".")

    walk(config, "")
    return paths


def _volatile(section: type[Section], name: str) -> bool:
    extra = section.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("volatile"))


@contextlib.contextmanager
def _recording(config: RunConfig, found: set[str]) -> Iterator[None]:
    """Add to `found` the dotted path of every non-volatile field (not a section) read on `config`."""
    paths = _section_paths(config)
    original = Section.__getattribute__

    def spy(self: Section, name: str) -> Any:
        value = original(self, name)
        fields = type(self).model_fields
        if name in fields and not isinstance(value, Section) and id(self) in paths and not _volatile(type(self), name):
            prefix = paths[id(self)]
            found.add(f"{prefix}.{name}" if prefix else name)
        return value

    Section.__getattribute__ = spy  # type: ignore[method-assign]
    try:
        yield
    finally:
        Section.__getattribute__ = original  # type: ignore[method-assign]


def _upstream(stage: str) -> list[str]:
    """The stage and every stage upstream of it, transitively: their fingerprints are all in its own."""
    found, todo = [], [stage]
    while todo:
        name = todo.pop()
        if name not in found:
            found.append(name)
            todo += BY_NAME[name].upstream
    return found


def _sections(stage: str) -> set[str]:
    return {section for name in _upstream(stage) for section in BY_NAME[name].sections}


def _covered(stage: str, config: RunConfig) -> set[str]:
    """The config paths a stage's fingerprint holds: those sections and the fields they declare they read."""
    return _sections(stage) | {path for name in _upstream(stage) for path in reads(BY_NAME[name].module, config)}


def _is_covered(path: str, covered: set[str]) -> bool:
    return any(path == prefix or path.startswith(prefix + ".") for prefix in covered)


def undeclared_reads(monkeypatch, config: RunConfig, run_dir: RunDir) -> dict[str, list[str]]:
    """Run the pipeline, recording each stage's reads; per stage, the ones its fingerprint does not cover."""
    undeclared: dict[str, list[str]] = {}
    for entry in pipeline.STAGES:

        def recorded(ctx, resolved, _run=entry.module.run, _name=entry.name):
            found: set[str] = set()
            with _recording(resolved, found):
                result = _run(ctx, resolved)
            missing = sorted(p for p in found if not _is_covered(p, _covered(_name, resolved)))
            if missing:
                undeclared[_name] = missing
            return result

        monkeypatch.setattr(entry.module, "run", recorded)
    pipeline.run(config, run_dir)
    return undeclared


STRONG = {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.8}}


@pytest.mark.parametrize(
    "overrides",
    [
        # group scopes (decide.q read by propose), the null control (run.seed), confirmation, the default extras
        ["prompts.confirmation_fraction=0.25"],
        # the pooled scope only, no null control: propose's conditional reads do not apply and must not happen
        ["propose.scopes=all", "controls.null=false", "validate.baseline=false", "decide.primary=by"],
        ["group.by=kmeans", "group.n_groups=2", "group.response_clusters=3", "propose.scopes=groups"],
        # validation in rounds, decided online: validate reads decide.primary (declared when sequential)
        ["validate.mode=sequential", "decide.primary=online", "prompts.confirmation_fraction=0.25"],
    ],
)
def test_every_config_read_of_a_stage_is_in_its_fingerprint(tmp_path, monkeypatch, overrides):
    config = load_config(fake_config(tmp_path, per_group=12, generate__b=STRONG), overrides)
    assert undeclared_reads(monkeypatch, config, RunDir(tmp_path / "run")) == {}


def test_the_llm_roles_reads_are_in_their_fingerprints(tmp_path, monkeypatch):
    """Proposer, judge, extra judges and the generative test: validate reads the proposer's settings and
    both sides' models (upstream), and decide.q (declared)."""
    from llm_servers import ScriptedServer
    from test_llm_pipeline import SECRET, answer, llm_config

    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    with ScriptedServer("openai", [], responder=answer) as server:
        other = f"openai-compatible/second-judge@{server.url}/v1"
        config = llm_config(
            tmp_path,
            server,
            "validate.generative=true",
            "validate.generative_examples=3",
            f"validate.extra_judges=[{other}]",
            "prompts.confirmation_fraction=0.2",
        )
        assert undeclared_reads(monkeypatch, config, RunDir(tmp_path / "run")) == {}


def test_a_read_left_out_of_reads_is_found(tmp_path, monkeypatch):
    """The check itself: propose without its declarations reads three fields its fingerprint lacks, and
    validate, which relabels the null control as propose does, one (it had it through propose's)."""
    monkeypatch.setattr(propose, "READS", ())
    config = load_config(fake_config(tmp_path, per_group=12, generate__b=STRONG), [])
    found = undeclared_reads(monkeypatch, config, RunDir(tmp_path / "run"))
    assert found == {"propose": ["decide.q", "run.seed", "validate.min_prompts"], "validate": ["run.seed"]}


def test_declared_reads_are_fields_outside_what_the_fingerprint_already_holds():
    """Each READS entry names a config field (not a section), and none repeats a section the stage or an
    upstream stage holds, which would only hide where the dependency comes from."""
    config = RunConfig().resolved()
    for entry in pipeline.STAGES:
        module: Stage = entry.module
        assert isinstance(module.VERSION, int) and callable(module.identity) and callable(module.run)
        for declared in module.READS:
            path = declared.path if isinstance(declared, Read) else declared
            section, _, name = path.rpartition(".")
            node: Any = config
            for part in section.split("."):
                node = getattr(node, part)
            assert isinstance(node, Section) and name in type(node).model_fields, f"{entry.name}: {path}"
            assert not isinstance(getattr(node, name), Section), f"{entry.name}: {path} is a section"
            assert not _is_covered(path, _sections(entry.name)), f"{entry.name}: {path} is covered already"


def test_the_fingerprint_holds_the_declared_reads_by_path(tmp_path):
    config = load_config(fake_config(tmp_path), [])
    the_plan = pipeline.plan(config, RunDir(tmp_path / "run"), tmp_path / "cache")
    assert the_plan.material["validate"]["config"]["decide.q"] == 0.05
    assert {"validate.min_prompts", "decide.q", "run.seed"} <= set(the_plan.material["propose"]["config"])
    assert "decide.q" not in the_plan.material["propose"]["identity"]
    plain = load_config(fake_config(tmp_path), ["propose.scopes=all", "controls.null=false"])
    material = pipeline.plan(plain, RunDir(tmp_path / "run"), tmp_path / "cache").material["propose"]["config"]
    assert "decide.q" not in material and "run.seed" not in material


@pytest.mark.parametrize("aligned", [True, False])
def test_corpus_mode_reads_are_in_their_fingerprints(tmp_path, monkeypatch, aligned):
    import json

    from test_corpus import config, corpus_rows

    if aligned:
        corpus = tmp_path / "outputs.jsonl"
        corpus.write_text("\n".join(json.dumps(r) for r in corpus_rows()) + "\n")
        overrides = [f"corpus.path={corpus}", "controls.null=true", "prompts.confirmation_fraction=0.2"]
    else:
        for side in ("base", "tuned"):
            rows = [json.dumps({"text": r["text"]}) for r in corpus_rows(with_prompts=False) if r["side"] == side]
            (tmp_path / f"{side}.jsonl").write_text("\n".join(rows) + "\n")
        overrides = [f"corpus.a={tmp_path / 'base.jsonl'}", f"corpus.b={tmp_path / 'tuned.jsonl'}"]
    assert undeclared_reads(monkeypatch, config(tmp_path, *overrides), RunDir(tmp_path / "run")) == {}
