"""Themes: the validated findings grouped by what they are about, with an extractive summary and a line per
discovery round. Pure logic over findings, claim vectors and firing sets; the report stage supplies those.

Two findings are linked when their side-free claims say nearly the same (cosine similarity of the claims'
embeddings at least SIMILARITY) or when they fire on the same validation texts (the share of the smaller
firing set inside the larger at least OVERLAP). Themes are the groups of average linkage on those links:
two themes merge while at least LINKED_SHARE of the pairs between them are linked, so a chain of loosely
related findings does not collapse into one theme the way single linkage would let it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from lmdelta.jsonvalues import finite
from lmdelta.records import Finding

# Thresholds (module constants, not config: they shape a presentation, never a decision). The dedup of
# propose (propose.dedup) uses 0.9 and 0.6 to call two hypotheses the same; a theme only needs them related.
SIMILARITY = 0.7  # all-MiniLM-L6-v2: “ocean” ~ “sea” 0.86, “writes longer answers” ~ “answers are longer” 0.74
OVERLAP = 0.5
LINKED_SHARE = 0.5
MIN_FIRING = 3  # a firing set smaller than this says too little about what a finding is about
EVIDENCE_PER_THEME = 2
EVIDENCE_CHARS = 400
LISTED_IN_SUMMARY = 5  # themes named in the extractive summary; the rest are counted
SummarySource = Literal["llm", "extractive"]
_QUOTED = re.compile(r"[“\"]([^”\"]+)[”\"]")


@dataclass(frozen=True)
class Thresholds:
    similarity: float = SIMILARITY
    overlap: float = OVERLAP
    linked_share: float = LINKED_SHARE

    def to_dict(self) -> dict[str, float]:
        return {"similarity": self.similarity, "overlap": self.overlap, "linked_share": self.linked_share}


@dataclass(frozen=True)
class Member:
    """A validated finding in a theme: what the report lists under the theme's title."""

    id: str
    description: str
    direction: str
    group: str
    effect: float | None
    q_value: float | None
    round: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Member:
        return cls(
            id=str(data["id"]),
            description=str(data["description"]),
            direction=str(data["direction"]),
            group=str(data["group"]),
            effect=finite(data.get("effect")),
            q_value=finite(data.get("q_value")),
            round=int(data.get("round") or 1),
        )


@dataclass(frozen=True)
class Evidence:
    """A validation answer that shows a theme: the side that shows it more, and the finding it shows."""

    finding: str
    side: str
    prompt: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(str(data["finding"]), str(data["side"]), str(data.get("prompt") or ""), str(data["text"]))


@dataclass(frozen=True)
class Theme:
    """Findings about one thing: `lead` the strongest (largest effect), whose description is the title;
    `effect` its effect; members strongest first."""

    id: str
    title: str
    lead: str
    members: tuple[Member, ...]
    directions: tuple[str, ...]
    effect: float | None
    rounds: tuple[int, ...]
    evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "lead": self.lead,
            "members": [m.to_dict() for m in self.members],
            "directions": list(self.directions),
            "effect": self.effect,
            "rounds": list(self.rounds),
            "evidence": [e.to_dict() for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Theme:
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            lead=str(data["lead"]),
            members=tuple(Member.from_dict(m) for m in data["members"]),
            directions=tuple(str(d) for d in data.get("directions") or ()),
            effect=finite(data.get("effect")),
            rounds=tuple(int(r) for r in data.get("rounds") or ()),
            evidence=tuple(Evidence.from_dict(e) for e in data.get("evidence") or ()),
        )


@dataclass(frozen=True)
class Summary:
    """The plain-language summary: written by llm.summariser (`llm`, untrusted text) or assembled from the themes."""

    text: str
    source: SummarySource
    model: str | None = None
    note: str | None = None  # why an LLM summary was asked for and not used

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        source = data.get("source")
        return cls(
            text=str(data["text"]),
            source=source if source in ("llm", "extractive") else "extractive",
            model=data.get("model"),
            note=data.get("note"),
        )


@dataclass(frozen=True)
class Themes:
    """themes.json: the themes strongest first, the summary, one line per discovery round (none for one round)."""

    themes: tuple[Theme, ...]
    summary: Summary
    rounds: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "themes": [t.to_dict() for t in self.themes],
            "summary": self.summary.to_dict(),
            "rounds": list(self.rounds),
            "thresholds": self.thresholds.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Themes:
        """Raises KeyError, TypeError or ValueError on a file this version did not write."""
        return cls(
            themes=tuple(Theme.from_dict(t) for t in data["themes"]),
            summary=Summary.from_dict(data["summary"]),
            rounds=tuple(str(line) for line in data.get("rounds") or ()),
            thresholds=Thresholds(**(data.get("thresholds") or {})),
        )


# --- what is compared -------------------------------------------------------------------------------------


def claim_text(finding: Finding) -> str:
    """What a finding's claim is about, for its embedding: its side-free `property` (else its description),
    reduced to the terms it quotes when it quotes some. Proposers wrap a term in a template (`uses the word
    “ocean”`, `resembles this answer in kind: “…”`); the template's words are shared by every finding of that
    proposer and would make unrelated findings look alike."""
    claim = finding.property if finding.property is not None else finding.description
    quoted = [term.strip() for term in _QUOTED.findall(claim) if term.strip()]
    return ", ".join(quoted) if quoted else claim


def round_of(finding: Finding) -> int:
    """The discovery round that proposed a finding (provenance["round"], 1-based; absent: round 1)."""
    value = (finding.provenance or {}).get("round")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def links(
    vectors: np.ndarray | None, firing: Sequence[np.ndarray | None], thresholds: Thresholds = Thresholds()
) -> np.ndarray:
    """(n, n) booleans: claims at least `similarity` alike, or firing sets overlapping at least `overlap`.
    A finding without a firing set (an LLM judge) is linked by its claim only."""
    n = len(firing)
    linked = np.zeros((n, n), dtype=bool)
    if vectors is not None and n:
        unit = _unit_rows(np.asarray(vectors, dtype=float))
        linked |= unit @ unit.T >= thresholds.similarity
    for i in range(n):
        for j in range(i + 1, n):
            shared = _shared(firing[i], firing[j])
            if shared is not None and shared >= thresholds.overlap:
                linked[i, j] = linked[j, i] = True
    np.fill_diagonal(linked, False)
    return linked


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _shared(one: np.ndarray | None, other: np.ndarray | None) -> float | None:
    """The share of the smaller firing set inside the larger: a narrow finding wholly inside a broad one is
    about the same thing (Jaccard would call them apart). None when either is unknown or under MIN_FIRING."""
    if one is None or other is None:
        return None
    smaller = min(int(one.sum()), int(other.sum()))
    return None if smaller < MIN_FIRING else float(np.sum(one & other)) / smaller


def average_linkage(linked: np.ndarray, share: float = LINKED_SHARE) -> list[list[int]]:
    """Groups of indices: repeatedly merge the two groups with the largest share of linked pairs between them,
    while that share is at least `share` (ties: the earliest groups). Each group keeps its indices in order."""
    groups = [[i] for i in range(linked.shape[0])]
    counts = linked.astype(float)
    while len(groups) > 1:
        sizes = np.array([len(g) for g in groups], dtype=float)
        shares = counts / np.outer(sizes, sizes)
        np.fill_diagonal(shares, -1.0)
        x, y = np.unravel_index(int(np.argmax(shares)), shares.shape)
        if shares[x, y] < share or shares[x, y] <= 0.0:
            break
        x, y = min(x, y), max(x, y)
        groups[x] = sorted(groups[x] + groups[y])
        counts[x] += counts[y]
        counts[:, x] += counts[:, y]
        counts = np.delete(np.delete(counts, y, axis=0), y, axis=1)
        del groups[y]
    return groups


# --- themes -----------------------------------------------------------------------------------------------


def build_themes(
    findings: Sequence[Finding],
    vectors: np.ndarray | None,
    firing: Sequence[np.ndarray | None],
    thresholds: Thresholds = Thresholds(),
) -> list[Theme]:
    """The validated findings' themes, strongest first. `vectors` holds one claim embedding per finding (rows in
    order; None: link by firing sets only) and `firing` per finding the validation texts it fires on (booleans
    over one list of texts shared by all; None where unknown, as for an LLM judge)."""
    if len(firing) != len(findings) or (vectors is not None and len(vectors) != len(findings)):
        raise ValueError("build_themes needs one claim vector and one firing set per finding")
    groups = average_linkage(links(vectors, firing, thresholds), thresholds.linked_share)
    made = [_theme([findings[i] for i in group]) for group in groups]
    made.sort(key=lambda theme: (-abs(theme.effect or 0.0), -len(theme.members), theme.lead))
    return [_numbered(theme, k) for k, theme in enumerate(made, start=1)]


def _strength(finding: Finding) -> tuple[float, float, int]:
    """Smaller is stronger: the larger effect, then the smaller p-value, then the proposal order."""
    effect, p = finite(finding.effect), finite(finding.p_value)
    return (-abs(effect or 0.0), math.inf if p is None else p, finding.order)


def _theme(members: list[Finding]) -> Theme:
    ranked = sorted(members, key=_strength)
    lead = ranked[0]
    return Theme(
        id="",
        title=lead.description,
        lead=lead.id,
        members=tuple(_member(f) for f in ranked),
        directions=tuple(sorted({f.direction for f in ranked})),
        effect=finite(lead.effect),
        rounds=tuple(sorted({round_of(f) for f in ranked})),
        evidence=evidence(ranked),
    )


def _numbered(theme: Theme, number: int) -> Theme:
    return replace(theme, id=f"t{number}")


def _member(finding: Finding) -> Member:
    return Member(
        finding.id,
        finding.description,
        finding.direction,
        finding.group,
        finite(finding.effect),
        finite(finding.q_value),
        round_of(finding),
    )


def evidence(ranked: list[Finding], n: int = EVIDENCE_PER_THEME) -> tuple[Evidence, ...]:
    """Up to n validation answers that show the theme: the strongest example of each finding in turn (strongest
    finding first), from the side the finding says shows it more; each text once."""
    pools = [[(f, e) for e in (f.examples or {}).get(_showing(f), [])] for f in ranked]
    found: list[Evidence] = []
    seen: set[str] = set()
    for depth in range(max((len(pool) for pool in pools), default=0)):
        for pool in pools:
            if depth < len(pool) and len(found) < n:
                finding, example = pool[depth]
                text = str(example.get("text") or "").strip()
                if text and text not in seen:
                    seen.add(text)
                    found.append(Evidence(finding.id, _showing(finding), str(example.get("prompt") or ""), _clip(text)))
    return tuple(found)


def _showing(finding: Finding) -> str:
    return "b" if finding.direction == "b>a" else "a"


def _clip(text: str, limit: int = EVIDENCE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- words ------------------------------------------------------------------------------------------------


def extractive_summary(themes: Sequence[Theme], labels: dict[str, str]) -> str:
    """The summary without an LLM: how many ways b differs from a, and the themes strongest first with their
    largest effect and how many findings they hold."""
    a, b = labels.get("a", "a"), labels.get("b", "b")
    if not themes:
        return f"No difference between {a} and {b} was validated."
    named = [_theme_phrase(theme) for theme in themes[:LISTED_IN_SUMMARY]]
    rest = len(themes) - len(named)
    if rest:
        named.append(f"{rest} more theme{'s' if rest != 1 else ''}")
    ways = f"{len(themes)} way{'s' if len(themes) != 1 else ''}"
    listed = named[0] if len(named) == 1 else "; ".join(named[:-1]) + "; and " + named[-1]
    found = sum(len(theme.members) for theme in themes)
    return (
        f"{b} differs from {a} in {ways}, strongest first: {listed}. "
        f"{found} validated finding{'s' if found != 1 else ''} in all; an effect is the difference in the "
        f"judge's score, {b} − {a}, on a scale from −1 to 1."
    )


def _theme_phrase(theme: Theme) -> str:
    effect = "no effect estimate" if theme.effect is None else f"effect {theme.effect:+.2f}"
    more = f", {len(theme.members)} findings" if len(theme.members) > 1 else ""
    return f"{theme.title.rstrip('.')} ({effect}{more})"


def briefs(themes: Sequence[Theme]) -> list[str]:
    """The themes as the summariser is shown them: title, largest effect, findings, one example answer."""
    out = []
    for theme in themes:
        effect = "none estimated" if theme.effect is None else f"{theme.effect:+.2f}"
        others = [m.description for m in theme.members[1:4]]
        lines = [f"{theme.title} (largest effect {effect}; {len(theme.members)} finding(s))"]
        if others:
            lines.append("Also: " + "; ".join(others))
        if theme.evidence:
            shown = theme.evidence[0]
            lines.append(f"Example answer of {shown.side}: <<<{' '.join(shown.text.split())}>>>")
        out.append("\n   ".join(lines))
    return out


def round_lines(findings: Sequence[Finding], themes: Sequence[Theme]) -> list[str]:
    """One line per discovery round saying what it added: new themes, findings joining earlier themes, or
    nothing validated. Empty when every finding comes from one round."""
    rounds = sorted({round_of(f) for f in findings})
    if len(rounds) < 2:
        return []
    tested = {r: sum(round_of(f) == r for f in findings) for r in rounds}
    lines = []
    for r in rounds:
        new = [t for t in themes if t.rounds and t.rounds[0] == r]
        joined = [t for t in themes if r in t.rounds and t.rounds[0] < r]
        added = sum(m.round == r for t in themes for m in t.members)
        if not added:
            lines.append(f"Round {r}: no validated finding ({tested[r]} tested).")
            continue
        parts = []
        if new:
            parts.append(f"new theme{'s' if len(new) != 1 else ''} " + ", ".join(f"“{t.title}”" for t in new))
        if joined:
            parts.append("more on " + ", ".join(f"“{t.title}”" for t in joined))
        counted = f"{added} validated finding{'s' if added != 1 else ''} ({tested[r]} tested)"
        lines.append(f"Round {r}: {counted}; " + "; ".join(parts) + ".")
    return lines
