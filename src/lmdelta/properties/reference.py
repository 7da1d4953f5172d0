"""The catalogue as markdown tables for docs/properties.md, generated from the code so the page cannot
drift from it (a test compares them; `sync` rewrites the page's generated part)."""

from __future__ import annotations

from pathlib import Path

from lmdelta.properties.base import PRESENCE_PREFIX, Property, Scale
from lmdelta.properties.catalogue import LENGTH, MARKDOWN, PUNCTUATION, TONE_AND_VOCABULARY, VOICE

BEGIN = "<!-- generated from lmdelta.properties.catalogue by lmdelta.properties.reference: do not edit by hand -->"
END = "<!-- end of the generated tables -->"
GROUPS: tuple[tuple[str, tuple[Property, ...]], ...] = (
    ("Length", LENGTH),
    ("Punctuation", PUNCTUATION),
    ("Markdown, structure and emoji", MARKDOWN),
    ("Voice, stance and politeness", VOICE),
    ("Tone and vocabulary", TONE_AND_VOCABULARY),
)
HEADER = (
    "| property | kind | unit | definition | a description says | judge score in [0, 1] | presence view |\n"
    "|---|---|---|---|---|---|---|"
)


def table() -> str:
    """Every built-in property, group by group: one markdown table each under a ### heading."""
    return "\n\n".join(f"### {title}\n\n{HEADER}\n" + "\n".join(map(_row, props)) for title, props in GROUPS)


def _row(prop: Property) -> str:
    view = f"`{PRESENCE_PREFIX}{prop.name}`: {_escaped(prop.phrase)}" if prop.kind == "amount" and prop.phrase else "—"
    cells = (
        f"`{prop.name}`",
        prop.kind,
        _escaped(prop.unit) or "—",
        _escaped(prop.description),
        _escaped((prop.phrase or "") if prop.kind == "presence" else prop.more),
        scale_text(prop.scale),
        view,
    )
    return "| " + " | ".join(cells) + " |"


def _escaped(cell: str) -> str:
    """A cell's text as markdown shows it literally: | ends a cell, * _ ` would start emphasis or code."""
    for char in "\\|*_`":
        cell = cell.replace(char, "\\" + char)
    return cell


def scale_text(scale: Scale) -> str:
    """The fixed map of a raw value x into the judge's score, as a formula."""
    if scale.kind == "identity":
        return "x (0 or 1)"
    if scale.kind == "saturating":
        return f"x / (x + {scale.a:g})"
    if scale.kind == "linear" and (scale.a, scale.b) == (0.0, 1.0):
        return "x, clipped to [0, 1]"
    if scale.kind == "linear":
        return f"(x − {scale.a:g}) / {scale.b - scale.a:g}, clipped to [0, 1]".replace("− -", "+ ")
    return f"1 / (1 + exp(−(x − {scale.a:g}) / {scale.b:g}))"


def sync(path: str | Path) -> None:
    """Rewrite the generated part of the page at `path` (between BEGIN and END) from the catalogue."""
    page = Path(path)
    text = page.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    page.write_text(f"{text[:start]}\n\n{table()}\n\n{text[end:]}", encoding="utf-8")
