"""The run directory: manifest, resolved config, one folder per stage, crash-safe files, the run lock.

Every write that marks something finished is an atomic rename of a freshly created temp file,
so a run killed at any moment leaves either the old state or the new one, never half of each.
One process at a time works in a run directory (`RunDir.lock`); a stage's outputs are recorded
with their hashes when it finishes, so damage found later makes the stage run again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from lmdelta import RUN_FORMAT, __version__
from lmdelta.errors import RunDirError
from lmdelta.hashing import hash_file
from lmdelta.records import Manifest, StageRecord

# Every file name of a run directory. At its root:
MANIFEST = "manifest.json"
CONFIG = "config.yaml"  # the resolved config that produced the results beside it
SUMMARY = "summary.json"  # run-level counts (and, in decide's and confirm's folders, theirs)
REPORT = "report.html"
WEIGHTS = "weights.jsonl"  # the weight analysis (lmdelta.weights): a row per matrix, at the root
WEIGHTS_SUMMARY = "weights_summary.json"  # and its summary
SCORECARD = "scorecard.json"  # the ground-truth harness's
FINDINGS = {"main": "hypotheses.jsonl", "null": "null_control.jsonl"}  # the published findings of each comparison
LOCK = ".lock"
# In stages/<stage>/ (see each stage's module). A comparison other than the main one prefixes its files.
COMPARISON_PREFIX = {"main": "", "null": "null_"}
PROMPTS = "prompts.jsonl"  # prompts
CORPUS = "corpus.jsonl"  # prompts, in corpus mode: the kept prompts' saved answers, as samples (generate imports them)
ARTEFACTS = "artefacts.jsonl"  # prompts, in corpus mode: export artefacts of its texts (sources.corpus_checks)
ITEMS = "items.jsonl"  # generate: every answer by key, appended as batches finish
SAMPLES = "samples.jsonl"  # generate: the answers of this run, in order
SAMPLE_VECTORS = "samples.npy"  # embed: rows in samples.jsonl order
PROMPT_VECTORS = "prompts.npy"  # embed: rows in prompts.jsonl order
EMBEDDER = "embedder.json"  # embed
GROUPS = "groups.jsonl"  # group: prompt id → group
GROUP_SIZES = "groups.json"  # group: prompts per group and split
RESPONSE_CLUSTERS = "response_clusters.jsonl"  # group
HYPOTHESES = "hypotheses.jsonl"  # propose, per comparison
SKIPPED = "skipped.jsonl"  # propose, per comparison: the scopes left out
DUPLICATES = "duplicates.jsonl"  # propose, per comparison: near-duplicate hypotheses merged or dropped
DISCOVERY_ITEMS = "discovery_items.jsonl"  # propose (propose.first_share < 1): later rounds' discovery answers by key
SEARCH_ROUNDS = "search_rounds.jsonl"  # propose, per comparison: one line per search round, then why it stopped
RESULTS = "results.jsonl"  # validate, per comparison: one Finding per hypothesis
VALIDATION_ITEMS = "validation_items.jsonl"  # validate (sequential mode): the rounds' answers by key, appended
ROUNDS = "rounds.jsonl"  # validate (sequential mode): one line per round
DECISIONS = "decisions.jsonl"  # decide, per comparison: the Findings with their decisions
REPLICATIONS = "replications.jsonl"  # confirm
THEMES = "themes.json"  # report: the validated findings' themes, the summary and a line per discovery round
TEMP = re.compile(r"^\..+\.tmp(-\d+)?$")  # ours: .NAME.XXXX.tmp (and .NAME.tmp-PID of older versions)
log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w", permissions: int | None = None) -> Iterator[IO[Any]]:
    """Write `path` through a new temp file beside it, renamed into place once complete.

    The temp file is created exclusively (never an existing file or a symlink planted there),
    removed again if writing fails (a full disk leaves nothing behind), and gets `permissions`,
    by default the mode a plain `open` would give.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_mode() if permissions is None else permissions)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, permissions: int | None = None) -> None:
    with atomic_file(path, permissions=permissions) as handle:
        handle.write(text)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write a whole JSONL file atomically, a row at a time (memory holds one line, not the file); returns the
    number of rows."""
    count = 0
    with atomic_file(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file. A torn last line (a killed writer) is skipped; damage elsewhere raises."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:  # a line at a time: memory holds one line, not the file
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if not line.endswith("\n"):  # only the last line can lack one: a writer killed mid-line
                    return
                raise _damaged_line(path, number) from None
            yield row


def _damaged_line(path: Path, number: int) -> RunDirError:
    return RunDirError(
        f"{path} line {number} is not valid JSON: the file was edited or damaged after lmdelta wrote it.",
        _recompute_hint(path),
    )


def salvage_jsonl(path: Path) -> list[dict[str, Any]]:
    """The intact rows of an append-only JSONL store; damaged lines are dropped from the file.

    For stores of content-addressed items (generated answers): a dropped row is only work to
    redo, so damage costs time, never a wrong result.
    """
    if not path.exists():
        return []
    rows, dropped = [], 0
    # A line at a time, ended by "\n" only: json.dumps leaves U+2028 and U+0085 in answers unescaped, and
    # str.splitlines() would cut a row there.
    with open(path, encoding="utf-8", errors="replace", newline="\n") as handle:
        for line in handle:
            try:
                row = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append(row)
            elif line.strip():
                dropped += 1
    if dropped:
        log.warning("%s had %d damaged line(s); dropped them, their items are computed again.", path, dropped)
        write_jsonl(path, rows)
    return rows


def _recompute_hint(path: Path) -> str:
    root = next((p for p in Path(path).parents if (p / MANIFEST).exists()), None)
    if root is None:
        return "Restore it, or start a new run with another --run-dir."
    return (
        f"Run the comparison again (e.g. `lmdelta run {root / CONFIG} --run-dir {root}`): lmdelta checks "
        "every stage's outputs and recomputes the ones that changed."
    )


class JsonlAppender:
    """Append-only JSONL writer that repairs a torn last line left by a killed process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(path)
        self._handle = open(path, "a", encoding="utf-8")

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        self._handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as handle:
        handle.truncate(keep)


class RunDir:
    """Paths, manifest, lock and output checks of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    @property
    def summary_path(self) -> Path:
        return self.root / SUMMARY

    @property
    def report_path(self) -> Path:
        return self.root / REPORT

    @property
    def scorecard_path(self) -> Path:
        return self.root / SCORECARD

    def findings_path(self, comparison: str = "main") -> Path:
        return self.root / FINDINGS[comparison]

    def stage_dir(self, stage: str) -> Path:
        return self.root / "stages" / stage

    def stage_file(self, stage: str, name: str, comparison: str = "main") -> Path:
        """A file of a stage's folder; `comparison` names the null control's copy (null_results.jsonl)."""
        return self.stage_dir(stage) / f"{COMPARISON_PREFIX[comparison]}{name}"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def check_usable(self) -> None:
        """Refuse a folder that is not ours, or a run directory of another format."""
        _check_parents(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"{self.root} is a file, not a run directory.", "Choose another --run-dir.")
        if self.root.is_dir() and not self.exists() and any(p.name != LOCK for p in self.root.iterdir()):
            raise RunDirError(
                f"{self.root} is not empty and is not an lmdelta run directory (no {MANIFEST}).",
                "Choose a new or empty --run-dir so nothing there is overwritten.",
            )
        if self.exists():
            manifest = self.load_manifest()
            if manifest.format != RUN_FORMAT:
                raise RunDirError(
                    f"{self.root} was made by lmdelta {manifest.version or '?'} with run format "
                    f"{manifest.format if manifest.format is not None else '?'}; this is lmdelta {__version__} "
                    f"with format {RUN_FORMAT}.",
                    "Start a new run with another --run-dir, or use the lmdelta version that made it.",
                )

    # --- the manifest: every write goes through these methods ---------------------------------

    def load_manifest(self) -> Manifest:
        if not self.exists():
            return Manifest(version=__version__, format=RUN_FORMAT)
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise RunDirError(
                f"{self.manifest_path} is damaged (not valid JSON).",
                "Restore it, or start a new run with another --run-dir.",
            )
        return Manifest.from_dict(data)

    def _save_manifest(self, manifest: Manifest) -> None:
        stamped = replace(manifest, version=__version__, format=RUN_FORMAT, updated=_now())
        atomic_write_text(self.manifest_path, json.dumps(stamped.to_dict(), indent=2, ensure_ascii=False) + "\n")

    def claim(self) -> None:
        """Write the manifest (stamped `created` the first time), so the folder is a run directory
        before anything else is written into it."""
        manifest = self.load_manifest()
        self._save_manifest(manifest if manifest.created else replace(manifest, created=_now()))

    def stage_record(self, stage: str) -> StageRecord | None:
        return self.load_manifest().stage(stage)

    def update_stage(self, stage: str, **fields: Any) -> StageRecord:
        """Set fields of a stage's record (StageRecord's names), keeping the others."""
        manifest = self.load_manifest()
        record = replace(manifest.stage(stage) or StageRecord(), **fields)
        self._save_manifest(manifest.with_stage(stage, record))
        return record

    def record_llm_usage(self, stage: str, run_total: dict[str, Any], stage_total: dict[str, Any]) -> None:
        """The LLM spending of the whole run and of one stage, each summed over stages and resumes by the caller."""
        manifest = self.load_manifest()
        record = replace(manifest.stage(stage) or StageRecord(), llm=stage_total)
        self._save_manifest(replace(manifest.with_stage(stage, record), llm_usage=run_total))

    # --- outputs: recorded when a stage finishes, checked before it is skipped ----------------

    def record_outputs(self, stage: str, root_files: Iterable[str] = (), views: Iterable[str] = ()) -> dict[str, Any]:
        """{relative path: size, mtime and SHA-256} of a stage's folder and the root files it wrote.

        Views (report.html) are re-rendered by `lmdelta report`, so only their presence is recorded.
        """
        files = [p for p in sorted(self.stage_dir(stage).glob("*")) if p.is_file() and not p.name.startswith(".")]
        files += [self.root / name for name in root_files if (self.root / name).is_file()]
        outputs = {str(p.relative_to(self.root)): _file_record(p) for p in files}
        outputs.update({name: {"view": True} for name in views if (self.root / name).is_file()})
        return outputs

    def damaged_outputs(self, record: StageRecord) -> list[str]:
        """What is missing or changed among a finished stage's recorded outputs ([] when intact)."""
        problems = []
        for name, expected in (record.outputs or {}).items():
            path = self.root / name
            if not path.is_file():
                problems.append(f"{name} is missing")
            elif not expected.get("view") and not _matches(path, expected):
                problems.append(f"{name} changed after the stage finished")
        return problems

    # --- the lock: one process at a time ------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this process (re-entrant); refuse if another process holds it.

        The lock is an flock on RUN_DIR/.lock: the kernel drops it when its holder exits, even
        by kill -9, so a crashed run never leaves a stale lock. Temp files that crashed runs
        left behind are removed once the lock is ours.
        """
        key = str(self.root.resolve())
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None:
                held[1] += 1
        if held is None:
            _HELD[key] = [self._acquire(), 1]
            _sweep_temp_files(self.root)
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key][1] -= 1
                handle = _HELD.pop(key)[0] if _HELD[key][1] == 0 else None
            if handle is not None:
                handle.close()  # closing the file releases the flock

    def in_use_by(self) -> str | None:
        """Who holds the lock, when another process does (None when the directory is free)."""
        path = self.root / LOCK
        if str(self.root.resolve()) in _HELD or not path.exists():
            return None
        with open(path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return _holder(path)
        return None

    def _acquire(self) -> IO[str]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / LOCK, "a+", encoding="utf-8")
        except OSError as err:
            raise RunDirError(
                f"Cannot write to the run directory {self.root} ({err.strerror}).",
                "Check its permissions and free space, or choose another --run-dir.",
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunDirError(
                f"{self.root} is in use by another lmdelta process ({_holder(self.root / LOCK)}).",
                "Wait for it to finish or stop it, then run again; or choose another --run-dir. "
                "Two runs in one directory would mix their results.",
            ) from None
        _describe_holder(handle)
        return handle


# Open lock files of this process, by run directory: flock belongs to an open file, so a second
# open in the same process would conflict with the first. Nested holders (the ground-truth
# harness around its pipeline runs) share one open file and count their depth.
_HELD: dict[str, list[Any]] = {}
_HELD_GUARD = threading.Lock()


def _describe_holder(handle: IO[str]) -> None:
    handle.seek(0)
    handle.truncate()
    command = " ".join(["lmdelta", *sys.argv[1:]])[:300]
    handle.write(
        json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": command,
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        + "\n"
    )
    handle.flush()


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, `{info['command']}`, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "it has not said who it is yet"


def _sweep_temp_files(root: Path) -> None:
    """Remove temp files left by a run that died mid-write (a full disk, a crash). Nested run
    directories (the ground-truth null experiment) are swept by their own lock."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not (Path(folder, d) / MANIFEST).exists()]
        for name in files:
            if TEMP.match(name):
                with contextlib.suppress(OSError):
                    os.unlink(Path(folder, name))
                    log.debug("removed the leftover temp file %s", Path(folder, name))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _check_parents(root: Path) -> None:
    for parent in root.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise RunDirError(
                    f"{parent} is a file, so the run directory {root} cannot be created inside it.",
                    "Choose another --run-dir.",
                )
            return


def _file_record(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": hash_file(path)}


def _matches(path: Path, expected: dict[str, Any]) -> bool:
    """Size first; the hash only when the file was touched since it was recorded."""
    stat = path.stat()
    if stat.st_size != expected.get("size"):
        return False
    return stat.st_mtime_ns == expected.get("mtime_ns") or hash_file(path) == expected.get("sha256")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (power loss, not just a crash)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_UMASK: list[int] = []


def default_mode(folder: bool = False) -> int:
    """The permissions `open` or `mkdir` would give a new file or folder under this process's umask."""
    return (0o777 if folder else 0o666) & ~_umask()


def _umask() -> int:
    if not _UMASK:  # os.umask can only be read by setting it; do it once
        current = os.umask(0o022)
        os.umask(current)
        _UMASK.append(current)
    return _UMASK[0]
