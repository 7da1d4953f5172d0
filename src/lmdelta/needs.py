"""What a run needs from the machine it runs on that this machine lacks: API keys, data files, model
folders, Hub downloads, a CUDA GPU and its packages. `lmdelta run --dry-run` lists them as "needed at
run time" and checks everything else, so a config can be checked on another machine than the one that
will run it. A real run still refuses to start without them: nothing here changes its checks.

Only absences are reported. A thing that is here but wrong (a folder without config.json, a model id
the Hub does not know, a malformed corpus, a bad model string) is left to the checks that follow, which
raise as they always did."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from lmdelta.backends.device import resolve_device
from lmdelta.backends.factory import BACKENDS
from lmdelta.backends.registry import ModelRef, Role, hub_snapshot, parse_model
from lmdelta.config import ModelSpec, RunConfig
from lmdelta.config.source import DATASETS, parse_source
from lmdelta.errors import ConfigError, LmdeltaError, PromptBankError
from lmdelta.llm.providers.build import base_url_for, key_required
from lmdelta.llm.providers.keys import key_source, resolve_key
from lmdelta.llm.providers.registry import PROVIDERS, parse_model_string
from lmdelta.records import SIDES
from lmdelta.sources import HOMES
from lmdelta.sources.hub import PATTERNS, hub_folder

# What each kind of absence stops the dry run from checking: "STAGE.check" or "STAGE.identity" (the
# stage functions pipeline.plan calls), and "budget" (the price check, which parses the side models).
PROMPT_DATA = frozenset({"prompts.check", "prompts.identity", "generate.check"})
GIVEN_FILE = frozenset({"propose.check", "propose.identity"})
ROLE_CHECKS = {
    "proposer": frozenset({"propose.identity"}),
    "judge": frozenset({"validate.identity", "confirm.identity"}),
    "strong_judge": frozenset({"validate.identity"}),
    "summariser": frozenset({"report.identity"}),
    "prompter": frozenset({"prompts.identity"}),
}


@dataclass(frozen=True)
class Need:
    """Something the run needs that is not here: what it is, the config fields that ask for it, the checks
    that cannot run without it, and whether the prompts (or the corpus) can be read without it."""

    what: str
    fields: tuple[str, ...]
    blocks: frozenset[str] = frozenset()
    prompts: bool = False

    def __str__(self) -> str:
        return f"{', '.join(self.fields)}: {self.what}"


def missing_needs(config: RunConfig) -> list[Need]:
    """Everything the run needs that this machine lacks, keys for the same variable merged; [] when
    the run could start here."""
    found = [*_data_needs(config), *_model_needs(config), *_key_needs(config), *_groundtruth_needs(config)]
    return _merged(found)


def _merged(needs: list[Need]) -> list[Need]:
    by_what: dict[str, Need] = {}
    for need in needs:
        seen = by_what.get(need.what)
        if seen is None:
            by_what[need.what] = need
        else:
            fields = tuple(dict.fromkeys(seen.fields + need.fields))
            by_what[need.what] = Need(need.what, fields, seen.blocks | need.blocks, seen.prompts or need.prompts)
    return list(by_what.values())


# --- data: the prompt bank or corpus, the score table, given hypotheses


def _data_needs(config: RunConfig) -> list[Need]:
    if config.uses_corpus:
        files = [(f"corpus.{name}", getattr(config.corpus, name)) for name in ("path", "a", "b")]
        found = [_file_need(path, field, PROMPT_DATA, prompts=True) for field, path in files if path]
    else:
        found = [_source_need(config.prompts.source, "prompts.source", PROMPT_DATA, prompts=True)]
    if config.prompts.score_table is not None:
        found.append(_file_need(config.prompts.score_table, "prompts.score_table", PROMPT_DATA, prompts=True))
    if config.propose.given is not None:
        found.append(_file_need(config.propose.given, "propose.given", GIVEN_FILE))
    return [need for need in found if need is not None]


def _file_need(path: str, field: str, blocks: frozenset[str], prompts: bool = False) -> Need | None:
    if Path(path).expanduser().exists():
        return None
    return Need(f"{path} (not found here)", (field,), blocks, prompts)


def _source_need(source: str, field: str, blocks: frozenset[str], prompts: bool = False) -> Need | None:
    """A prompt source's local copy that is not here, or its Hub copy, neither cached nor downloadable now."""
    try:
        spec = parse_source(source)
    except PromptBankError:
        return None  # a malformed source: the checks that follow say what is wrong
    if spec.is_path:
        if Path(spec.location).exists():
            return None
        what = "the prompt file" if spec.kind == "file" else f"the {spec.kind} data"
        home = f"; a copy of {HOMES[spec.kind]}" if spec.kind in HOMES else ""
        return Need(f"{what} {spec.location} (not found here{home})", (field,), blocks, prompts)
    repo_id = DATASETS.get(spec.kind)
    if not spec.is_hub or repo_id is None or spec.kind not in PATTERNS:
        return None
    try:
        hub_folder(spec.kind, repo_id, spec.hub_revision)  # the cached copy, else a download now
    except PromptBankError:
        why = "HF_HUB_OFFLINE is set" if _hub_offline() else "it could not be downloaded now"
        return Need(
            f"the {spec.kind} prompts from the Hugging Face Hub, {repo_id} (not in the cache here, and {why})",
            (field,),
            blocks,
            prompts,
        )
    return None


# --- models: the sides' weights and adapters, the embedder, a GPU and its packages


def _model_needs(config: RunConfig) -> list[Need]:
    found: list[Need | None] = []
    if not config.uses_corpus:
        for side in SIDES:
            spec: ModelSpec = getattr(config.generate, side)
            field = f"generate.{side}"
            found.append(_model_need(spec.model, f"{field}.model", "generator", spec.revision, _side_blocks(spec)))
            if spec.adapter is not None and not Path(spec.adapter).exists():
                what = f"the adapter folder {spec.adapter} (not found here)"
                found.append(Need(what, (f"{field}.adapter",), frozenset({"generate.identity"})))
            found += _accelerator_needs(spec, field, config.generate.device)
    found.append(_model_need(config.embed.model, "embed.model", "embedder", None, frozenset({"embed.identity"})))
    return [need for need in found if need is not None]


def _side_blocks(spec: ModelSpec) -> frozenset[str]:
    """A side's model that is not here stops its identity, and the price check when it is a folder (the
    price check parses every side's model string, and a folder that is not here does not parse)."""
    folder = spec.model.removeprefix("vllm:").startswith(("/", ".", "~"))
    return frozenset({"generate.identity", "budget"} if folder else {"generate.identity"})


def _model_need(model: str, field: str, role: Role, revision: str | None, blocks: frozenset[str]) -> Need | None:
    """A model folder that is not here, or a Hub model that is neither cached nor reachable now."""
    text = model.removeprefix("vllm:")
    if text.startswith(("/", ".", "~")):  # a folder: the config's relative paths are absolute by now
        path = Path(text).expanduser()
        return None if path.exists() else Need(f"the model folder {path} (not found here)", (field,), blocks)
    try:
        ref = parse_model(model, role).weights
    except LmdeltaError:
        return None  # not a model at all: the checks that follow say so, with near matches
    if ref.kind != "hub" or hub_snapshot(ref.name, revision) is not None:
        return None
    silent = _hub_silence(ref, revision)
    if silent is None:
        return None
    return Need(f"{ref.name} from the Hugging Face Hub (not in the cache here, and {silent})", (field,), blocks)


def _hub_silence(ref: ModelRef, revision: str | None) -> str | None:
    """Why the Hub cannot confirm the model now (offline, unreachable), or None when it answered: then
    the model check that follows says whether it exists."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":  # the value backends.registry honours
        return "HF_HUB_OFFLINE=1 forbids downloading it"
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
    except ImportError:
        return None
    try:
        HfApi().model_info(ref.name, revision=revision, timeout=10)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return None
    except Exception as exc:  # the hub client raises many transport types
        return f"the Hub did not answer: {type(exc).__name__}"
    return None


def _accelerator_needs(spec: ModelSpec, field: str, device: str) -> list[Need]:
    """A CUDA GPU, and the package, for bitsandbytes quantization or vLLM. Only with device auto: a
    device set by hand that cannot do it is the config's error, which the model check reports."""
    try:
        ref = parse_model(spec.model, "generator")
    except LmdeltaError:
        return []
    backend = BACKENDS.get(ref.kind, "hf")
    if backend == "vllm":
        why, package, extra = f"{field}.model = vllm:…", "vllm", "vllm"
    elif backend == "hf" and spec.quantization != "none":
        why, package, extra = f"{field}.quantization = {spec.quantization}", "bitsandbytes", "quant"
    else:
        return []
    found = []
    if device == "auto" and not _has_cuda():
        found.append(Need("a CUDA GPU (this machine has none)", (why,), frozenset({"generate.identity"})))
    if not _installed(package):
        found.append(Need(f"the {package} package (pip install 'lmdelta[{extra}]')", (why,)))
    return found


def _has_cuda() -> bool:
    try:
        return resolve_device("auto").startswith("cuda")
    except ImportError:  # no torch here (a core install): no GPU it could use either
        return False


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ImportError:
        return False


# --- API keys


def _key_needs(config: RunConfig) -> list[Need]:
    wanted = _models_with_keys(config)
    key_file = config.llm.key_file
    if wanted and key_file is not None and not Path(key_file).expanduser().exists():
        blocks = frozenset().union(*(blocks for _, _, blocks in wanted))
        return [Need(f"the key file {key_file} (not found here)", ("llm.key_file",), blocks)]
    found = [_key_need(model, field, blocks, key_file) for model, field, blocks in wanted]
    return [need for need in found if need is not None]


def _models_with_keys(config: RunConfig) -> list[tuple[str, str, frozenset[str]]]:
    """(model string, config field, checks it blocks) for every model the run calls through the LLM client."""
    roles = [role for role in ROLE_CHECKS if getattr(config.llm, role).model is not None]
    if "prompter" in roles and not _generated(config.prompts.source):
        roles.remove("prompter")  # set but unused: the run never calls it
    wanted = [(getattr(config.llm, role).model, f"llm.{role}", ROLE_CHECKS[role]) for role in roles]
    wanted += [(model, "validate.extra_judges", frozenset()) for model in config.validate.extra_judges]
    if not config.uses_corpus:
        for side in SIDES:
            model = getattr(config.generate, side).model
            if model.startswith("api:"):
                wanted.append((model.removeprefix("api:"), f"generate.{side}.model", frozenset({"generate.identity"})))
    return wanted


def _generated(source: str) -> bool:
    try:
        return parse_source(source).kind == "generated"
    except PromptBankError:
        return False


def _key_need(model: str, field: str, blocks: frozenset[str], key_file: str | None) -> Need | None:
    """The API key a model string needs when neither the key file nor the environment holds it here."""
    try:
        spec = parse_model_string(model)
        info = PROVIDERS[spec.provider]
        url = base_url_for(info, spec, None)
    except (ConfigError, KeyError):
        return None  # a bad model string, or a fake provider: the checks that follow handle it
    if not info.key_env or not key_required(info, url):
        return None
    try:
        if resolve_key(info, key_file) is not None:
            return None
    except ConfigError:
        return None  # an unreadable key file: the role's check says so
    return Need(f"an API key in {key_source(model, key_file)}", (field,), blocks)


# --- the ground-truth harness's own inputs (lmdelta groundtruth; `lmdelta run` does not read them)


def _groundtruth_needs(config: RunConfig) -> list[Need]:
    if "groundtruth" not in config.model_fields_set:
        return []
    section = config.groundtruth
    found = [_model_need(section.base, "groundtruth.base", "generator", None, frozenset())]
    if section.beliefs is not None:
        found.append(_source_need(section.beliefs, "groundtruth.beliefs", frozenset()))
    if section.quirks_file is not None:
        found.append(_file_need(section.quirks_file, "groundtruth.quirks_file", frozenset()))
    return [need for need in found if need is not None]


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
