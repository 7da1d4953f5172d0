"""Scorers for length, punctuation, markdown structure and emoji: counts from regexes, per text.

Punctuation, sentences and markdown are counted in prose only (fenced code blocks left out, see
text.prose): a `!=` or a `# comment` in code says nothing about the answer's tone or layout.
"""

from __future__ import annotations

import re

import numpy as np

from lmdelta.properties.batch import Texts
from lmdelta.properties.counting import count_matches, per_text, regex_count

_M = re.MULTILINE

EXCLAMATION = re.compile("[!！]")
QUESTION = re.compile("[?？؟]")
# A leading lookahead on the first character lets the regex engine skip ahead fast (3-10x here).
ELLIPSIS = re.compile(r"(?=[.…])(?:\.{3,}|…+)")
BOLD = re.compile(r"(?=[*_])(?:\*\*[^\s*](?:[^*\n]*[^\s*])?\*\*|(?<!\w)__[^\s_](?:[^_\n]*[^\s_])?__(?!\w))")
HEADER = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+\S", _M)
BULLET = re.compile(r"^[ \t]*[-*+•‣◦▪][ \t]+\S", _M)
NUMBERED = re.compile(r"^[ \t]*\d{1,3}[.)][ \t]+\S", _M)
TABLE_RULE = re.compile(r"^[ \t]*(?=[^\n]*\|)(?=[^\n]*-)[ \t|:-]+$", _M)
FENCE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})", _M)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")

# Emoji_Presentation (Unicode 14, the code points shown as emoji by default), written out so the
# standard `re` module can match them; a text-style pictograph (✔ ❤ ©) counts once followed by U+FE0F.
_PRESENTATION = (
    "\u231a\u231b\u23e9-\u23ec\u23f0\u23f3\u25fd\u25fe\u2614\u2615\u2648-\u2653\u267f\u2693\u26a1\u26aa\u26ab"
    "\u26bd\u26be\u26c4\u26c5\u26ce\u26d4\u26ea\u26f2\u26f3\u26f5\u26fa\u26fd\u2705\u270a\u270b\u2728\u274c"
    "\u274e\u2753-\u2755\u2757\u2795-\u2797\u27b0\u27bf\u2b1b\u2b1c\u2b50\u2b55\U0001f004\U0001f0cf\U0001f18e"
    "\U0001f191-\U0001f19a\U0001f201\U0001f21a\U0001f22f\U0001f232-\U0001f236\U0001f238-\U0001f23a"
    "\U0001f250\U0001f251\U0001f300-\U0001f320\U0001f32d-\U0001f335\U0001f337-\U0001f37c\U0001f37e-\U0001f393"
    "\U0001f3a0-\U0001f3ca\U0001f3cf-\U0001f3d3\U0001f3e0-\U0001f3f0\U0001f3f4\U0001f3f8-\U0001f43e\U0001f440"
    "\U0001f442-\U0001f4fc\U0001f4ff-\U0001f53d\U0001f54b-\U0001f54e\U0001f550-\U0001f567\U0001f57a\U0001f595"
    "\U0001f596\U0001f5a4\U0001f5fb-\U0001f64f\U0001f680-\U0001f6c5\U0001f6cc\U0001f6d0-\U0001f6d2"
    "\U0001f6d5-\U0001f6d9\U0001f6dc-\U0001f6df\U0001f6eb\U0001f6ec\U0001f6f4-\U0001f6fc\U0001f7e0-\U0001f7eb"
    "\U0001f7f0\U0001f90c-\U0001f93a\U0001f93c-\U0001f945\U0001f947-\U0001f9ff\U0001fa70-\U0001fa7c"
    "\U0001fa80-\U0001fac6\U0001fac8\U0001facc-\U0001fadd\U0001fadf-\U0001faeb\U0001faef-\U0001fafa"
)
_FLAG = "[\U0001f1e6-\U0001f1ff]{2}"
_KEYCAP = "[0-9#*]\ufe0f?\u20e3"
_TAGS = "[\U000e0020-\U000e007f]*"
_ONE = rf"(?:[{_PRESENTATION}]\ufe0f?|[^\s\x00-\x7f]\ufe0f)[\U0001f3fb-\U0001f3ff]?{_TAGS}"
_JOINED = r"\u200d(?:[^\s\x00-\x7f]\ufe0f?)[\U0001f3fb-\U0001f3ff]?"
EMOJI = re.compile(rf"(?=[^\x00-\x7f]|{_KEYCAP})(?:{_FLAG}|{_KEYCAP}|{_ONE}(?:{_JOINED})*)")
"""One emoji as a reader sees it: a skin tone, a ZWJ family or a flag counts once."""


def count_characters(batch: Texts) -> np.ndarray:
    """Characters (Unicode code points, spaces and line breaks included) per text."""
    return np.fromiter((len(text) for text in batch), dtype=float, count=len(batch))


def words(batch: Texts) -> np.ndarray:
    """Words per text (text.tokens), code included."""
    return batch.word_counts


def sentence_count(batch: Texts) -> np.ndarray:
    """Prose sentences per text (text.sentences)."""
    return np.fromiter(map(len, batch.sentences), dtype=float, count=len(batch))


def _code_blocks(text: str) -> int:
    return (count_matches(FENCE, text) + 1) // 2


def _paragraphs(prose_text: str) -> int:
    stripped = prose_text.strip()
    return 1 + count_matches(PARAGRAPH_BREAK, stripped) if stripped else 0


def _emoji(text: str) -> int:
    return 0 if text.isascii() else count_matches(EMOJI, text)


exclamations = regex_count(EXCLAMATION, "prose")
questions = regex_count(QUESTION, "prose")
ellipses = regex_count(ELLIPSIS, "prose")
bold = regex_count(BOLD, "prose")
headers = regex_count(HEADER, "prose")
bullets = regex_count(BULLET, "prose")
numbered = regex_count(NUMBERED, "prose")
tables = regex_count(TABLE_RULE, "prose")
code_blocks = per_text(_code_blocks)
paragraphs = per_text(_paragraphs, "prose")
line_breaks = per_text(lambda text: text.strip().count("\n"))
emoji = per_text(_emoji)
