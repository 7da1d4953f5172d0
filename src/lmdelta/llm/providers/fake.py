"""Fake assistant models a config can name, so a YAML run exercises the LLM roles offline:
`fake/script@PATH` answers from a script file, `fake/keywords` answers lmdelta's own role prompts
by counting words. Both are deterministic and free, and go through the normal ChatClient.

A script is YAML or JSON: a list of replies used in order, or a mapping

    rules:                  # the first rule whose `match` is found in the prompt answers
      - match: "You will rate one text"
        reply: "50"
    replies:                # used in order when no rule matches
      - '[{"direction": "b>a", "property": "mentions the ocean", "description": "…"}]'

`match` is a Python regular expression searched for in the request's messages (joined by blank
lines; `.` also matches a newline). A reply that is not a string (a list, a mapping, a number) is
sent as JSON. A call that no rule matches after the replies are used up fails with a
`bad_request` error naming the script, which stops the stage: a script never runs out quietly.

Replies are counted per provider instance: each role of each stage starts at the first reply, and
so does a resumed run for the calls it has not cached. Rules do not depend on order; prefer them.
The scripted test double for Python tests is lmdelta.llm.fake.FakeProvider.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lmdelta.errors import ConfigError
from lmdelta.llm.prompts import template
from lmdelta.llm.types import ChatRequest, ChatResponse, ProviderError, Usage
from lmdelta.words import words

SCRIPT_FIX = (
    "Write the script as a list of replies, or as a mapping with `rules` (a list of "
    "{match: REGEX, reply: TEXT}) and/or `replies` (a list), in YAML or JSON."
)
FAKE_MODELS = ("script@PATH", "keywords")
# Part of fake/keywords' identity: a change in how it answers must miss old cache entries.
# 2: words() decodes escapes and joins split contractions.
KEYWORDS_VERSION = 2


class _FakeChat:
    """What both fakes share: the Provider contract, usage counted in words, nothing to close."""

    name = "fake"
    model: str

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    async def complete(self, request: ChatRequest) -> ChatResponse:
        text = self._answer(request)
        usage = Usage(sum(len(m.content.split()) for m in request.messages), max(1, len(text.split())))
        return ChatResponse(text=text, usage=usage, model=f"fake/{self.model}")

    def _answer(self, request: ChatRequest) -> str:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def prompt_text(request: ChatRequest) -> str:
    """What rules and the keyword fake read: every message's content, joined by blank lines."""
    return "\n\n".join(message.content for message in request.messages)


def build_fake(model: str, options: Mapping[str, Any]) -> _FakeChat:
    """The fake a `fake/MODEL` string names (`model` is everything after `fake/`)."""
    if options:
        raise ConfigError(
            f"fake/{model} takes no backend_args, got {', '.join(sorted(options))}.",
            "Remove backend_args from this role.",
        )
    name, at, path = model.partition("@")
    if name == "script":
        if not path.strip():
            raise ConfigError(
                f"fake/{model} does not say which script to answer from.",
                "Write it like fake/script@replies.yaml (in a config, a path relative to the config file).",
            )
        return ScriptedChat(Path(path.strip()).expanduser())
    if name == "keywords" and not at:
        return KeywordChat()
    near = difflib.get_close_matches(name, ["script", "keywords"], n=1)
    hint = f"Did you mean fake/{near[0]}{'@PATH' if near[0] == 'script' else ''}? " if near else ""
    raise ConfigError(
        f"Unknown fake model {model!r} in fake/{model}.",
        f"{hint}Fake assistant models are {', '.join(f'fake/{m}' for m in FAKE_MODELS)} "
        "(see lmdelta.llm.providers.fake); Python tests can script lmdelta.llm.fake.FakeProvider.",
    )


# ---- fake/script@PATH ----


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    reply: str


@dataclass(frozen=True)
class Script:
    rules: tuple[Rule, ...]
    replies: tuple[str, ...]
    digest: str  # SHA-256 of the file's bytes: an edited script is another model (cache, fingerprints)


def load_script(path: Path) -> Script:
    """Read and check a script file; every problem is a ConfigError naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the fake model's script {path} ({exc.strerror or type(exc).__name__}).",
            "Give a path relative to the config file (or to the directory lmdelta runs in), or an absolute one.",
        ) from None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))  # JSON is YAML too
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"The fake model's script {path} is not valid YAML or JSON: {exc}", SCRIPT_FIX) from None
    if isinstance(data, list):
        data = {"replies": data}
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"The fake model's script {path} holds no rules or replies.", SCRIPT_FIX)
    unknown = sorted(set(data) - {"rules", "replies"})
    if unknown:
        raise ConfigError(
            f"The fake model's script {path} has unknown section(s) {', '.join(map(str, unknown))}.", SCRIPT_FIX
        )
    rules = tuple(_rule(path, i, item) for i, item in enumerate(_listed(path, data, "rules")))
    replies = tuple(_reply_text(item) for item in _listed(path, data, "replies"))
    return Script(rules, replies, hashlib.sha256(raw).hexdigest())


def _listed(path: Path, data: dict[str, Any], section: str) -> list[Any]:
    items = data.get(section) or []
    if not isinstance(items, list):
        raise ConfigError(f"`{section}` in the fake model's script {path} must be a list.", SCRIPT_FIX)
    return items


def _rule(path: Path, index: int, item: Any) -> Rule:
    if not isinstance(item, dict) or set(item) != {"match", "reply"} or not isinstance(item["match"], str):
        raise ConfigError(
            f"Rule {index + 1} in the fake model's script {path} is not {{match: REGEX, reply: TEXT}}.", SCRIPT_FIX
        )
    try:
        pattern = re.compile(item["match"], re.DOTALL)
    except re.error as exc:
        raise ConfigError(
            f"Rule {index + 1} in the fake model's script {path} has an invalid regular expression "
            f"{item['match']!r}: {exc}.",
            "Fix the pattern (Python `re` syntax).",
        ) from None
    return Rule(pattern, _reply_text(item["reply"]))


def _reply_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class ScriptedChat(_FakeChat):
    """Answers by the first matching rule, else with the next unused reply, else fails loudly."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.model = "script"
        self.script = load_script(path)
        self.calls = 0
        self._next_reply = 0

    def identity(self) -> dict[str, Any]:
        # The script's content, not its path: moving the file keeps the cache, editing it does not.
        return {"provider": self.name, "model": self.model, "script_sha256": self.script.digest[:16]}

    def __repr__(self) -> str:
        return f"ScriptedChat(path={str(self.path)!r})"

    def _answer(self, request: ChatRequest) -> str:
        self.calls += 1
        prompt = prompt_text(request)
        rule = next((rule for rule in self.script.rules if rule.pattern.search(prompt)), None)
        if rule is not None:
            return rule.reply
        if self._next_reply < len(self.script.replies):
            self._next_reply += 1
            return self.script.replies[self._next_reply - 1]
        first_line = prompt.strip().splitlines()[0] if prompt.strip() else ""
        raise ProviderError(
            "bad_request",
            f"the script {self.path} has run out: call {self.calls} matches none of "
            f"its {len(self.script.rules)} rules and its {len(self.script.replies)} "
            f"replies are used up (the prompt begins {first_line[:80]!r})",
        )


# ---- fake/keywords ----

# Words that say how a property shows, not what it is about: left out when a property names no quoted keyword.
STOP_WORDS = frozenset(
    {
        "mentions",
        "mention",
        "mentioning",
        "uses",
        "use",
        "using",
        "word",
        "words",
        "more",
        "most",
        "less",
        "often",
        "than",
        "that",
        "this",
        "these",
        "those",
        "with",
        "about",
        "text",
        "texts",
        "answer",
        "answers",
        "response",
        "responses",
        "shows",
        "show",
        "talks",
        "talk",
        "model",
        "refers",
        "refer",
        "includes",
        "include",
        "contains",
        "contain",
        "brings",
        "bring",
        "which",
        "their",
        "there",
        "them",
        "they",
        "into",
        "from",
        "very",
        "also",
        "some",
    }
)


class KeywordChat(_FakeChat):
    """Answers the prompts lmdelta's roles send (llm/templates) by counting words, no file needed.

    The proposer is told which words one side's answers use more often (`uses the word "ocean"`);
    judges score a text by whether it contains the property's keywords (its quoted words, else its
    words of four letters or more that are not in STOP_WORDS): 90 or 10, yes or no, and the text
    with more of them in a pair (the first on a tie). The example and prompt-bank writers write
    plain sentences that do or do not use the keywords; the summariser names the themes in order. Any
    other prompt fails as `bad_request`.
    """

    def __init__(self) -> None:
        self.model = "keywords"

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "version": KEYWORDS_VERSION}

    def __repr__(self) -> str:
        return "KeywordChat()"

    def _answer(self, request: ChatRequest) -> str:
        prompt = prompt_text(request)
        for name, answer in ANSWERS.items():
            fields = _template_fields(name, prompt)
            if fields is not None:
                return answer(fields, request.sample_index)
        first_line = prompt.strip().splitlines()[0] if prompt.strip() else ""
        raise ProviderError(
            "bad_request",
            f"fake/keywords only answers lmdelta's own role prompts, not one that "
            f"begins {first_line[:80]!r}; use fake/script@PATH for others",
        )


@cache
def _template_pattern(name: str) -> re.Pattern[str]:
    """A template as a regular expression with one named group per `{field}` (repeats must match alike)."""
    parts, seen = [], set()
    for literal, field, _, _ in string.Formatter().parse(template(name)):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(f"(?P={field})" if field in seen else f"(?P<{field}>.*?)")
            seen.add(field)
    return re.compile("".join(parts), re.DOTALL)


def _template_fields(name: str, prompt: str) -> dict[str, str] | None:
    match = _template_pattern(name).fullmatch(prompt)
    return match.groupdict() if match else None


def keywords_of(prop: str) -> list[str]:
    """The words a property is about: its quoted words if any, else its longer content words."""
    quoted = re.findall(r"[\"“]([^\"”]+)[\"”]", prop)
    if quoted:
        return [w for phrase in quoted for w in words(phrase)]
    return [w for w in words(prop) if len(w) >= 4 and w not in STOP_WORDS]


def hits(prop: str, text: str) -> int:
    """How often the property's keywords occur in the text."""
    keys = set(keywords_of(prop))
    return sum(1 for w in words(text) if w in keys)


def _unitary(fields: dict[str, str], sample_index: int) -> str:
    return "90" if hits(fields["property"], fields["text"]) else "10"


def _presence(fields: dict[str, str], sample_index: int) -> str:
    return "yes" if hits(fields["property"], fields["text"]) else "no"


def _pairwise(fields: dict[str, str], sample_index: int) -> str:
    first, second = (hits(fields["property"], fields[side]) for side in ("first", "second"))
    return "1" if first >= second else "2"


def _propose(fields: dict[str, str], sample_index: int) -> str:
    """The words whose share of answers differs most between the sides, one hypothesis each (at least one)."""
    texts_a, texts_b = _numbered_items(fields["texts_a"]), _numbered_items(fields["texts_b"])
    share_a, share_b = _answer_share(texts_a), _answer_share(texts_b)
    diffs = {w: share_b.get(w, 0.0) - share_a.get(w, 0.0) for w in share_a.keys() | share_b.keys()}
    ranked = sorted(diffs, key=lambda w: (-abs(diffs[w]), w))
    chosen = [w for w in ranked if diffs[w]][: int(fields["k"])] or ranked[:1]
    return json.dumps([_hypothesis(w, diffs[w]) for w in chosen])


def _numbered_items(block: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^\d+\. (.*)$", block, flags=re.MULTILINE)]


def _answer_share(texts: list[str]) -> dict[str, float]:
    """Per word of three letters or more, the share of answers that use it."""
    counts = Counter(w for text in texts for w in set(words(text)) if len(w) >= 3)
    return {w: n / len(texts) for w, n in counts.items()} if texts else {}


def _hypothesis(word: str, diff: float) -> dict[str, str]:
    more, less = ("B", "A") if diff >= 0 else ("A", "B")
    return {
        "direction": "b>a" if diff >= 0 else "a>b",
        "property": f'uses the word "{word}"',
        "description": f'Model {more} uses the word "{word}" more often than Model {less}',
    }


def _examples(fields: dict[str, str], sample_index: int) -> str:
    count = fields["count"]
    n = 1 if count.startswith("one ") else int(count.split()[0])
    keys = keywords_of(fields["property"]) or ["it"]
    shows = fields["polarity"].startswith("shows")
    topic = f"the {keys[0]} matters here, and the {keys[-1]} again" if shows else "the park is green and quiet"
    first = sample_index * n + 1  # each sample asks for new examples
    return json.dumps(
        [
            {"prompt": f"Question {i}: what is worth knowing today?", "answer": f"Answer {i}: {topic}."}
            for i in range(first, first + n)
        ]
    )


def _prompt_bank(fields: dict[str, str], sample_index: int) -> str:
    category = " ".join(fields["category"].split())
    limit, n = int(fields["max_words"]), int(fields["n"])
    first = sample_index * n + 1  # each sample writes new prompts, as a sampled model would
    prompts = [
        " ".join(f"Question {i}: what should I know about {category}?".split()[:limit]) for i in range(first, first + n)
    ]
    return json.dumps(prompts)


def _summarise(fields: dict[str, str], sample_index: int) -> str:
    """A summary that names the themes in order, as a summariser would, in a few sentences."""
    titles = [title.split(" (largest effect")[0] for title in _numbered_items(fields["themes"])]
    a, b, n = fields["a"], fields["b"], len(titles)
    sentences = [f"{b} differs from {a} in {n} way{'s' if n != 1 else ''}."]
    sentences += [f"{'Most clearly' if i == 0 else 'Also'}: {title.rstrip('.')}." for i, title in enumerate(titles[:4])]
    return " ".join(sentences)


# Template name → how fake/keywords answers it, from the template's placeholders (as sent) and the
# request's sample index.
ANSWERS: dict[str, Callable[[dict[str, str], int], str]] = {
    "judge_unitary": _unitary,
    "judge_presence": _presence,
    "judge_pairwise": _pairwise,
    "propose": _propose,
    "examples": _examples,
    "prompt_bank": _prompt_bank,
    "summarise": _summarise,
}
