"""How the property scorers cut one text into tokens, sentences and prose, in any script.

A token is a word (a run of letters, digits, combining marks and underscores, with ' or ’ inside
it: "don't", "covid19", "नमस्ते") or "|" standing for a run of punctuation or symbols, so a phrase
never matches across a comma or a full stop. Each Chinese or Japanese character is a word of its
own (those scripts put no spaces between words; counting characters is the usual convention).
Thai, Lao, Khmer and Burmese are also written without spaces: a run of such text is one word.
Unlike lmdelta.words (which finds keywords), numbers count as words here: they add to length.
"""

from __future__ import annotations

import re

from lmdelta.words import WORD_CHAR

BARRIER = "|"
"""The token standing for a run of punctuation, symbols or emoji between words."""
CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
"""One Hiragana, Katakana or Han character (the CJK unified ideographs and their extensions)."""

_MARKS = WORD_CHAR[len(r"[\w") : -1]
# Outside words: a run of anything but word characters, whitespace and apostrophes, or an
# apostrophe that does not sit between two word characters (a quotation mark). The leading
# lookahead only lets the regex engine skip word characters fast (it halves the time).
_ASCII_BREAK = re.compile(r"(?=[^\w\s])(?:[^\w\s']+|(?<!\w)'+|'+(?!\w))")
_UNICODE_BREAK = re.compile(rf"(?=[^\w\s])(?:[^\w{_MARKS}\s']+|(?<![\w{_MARKS}])'+|'+(?![\w{_MARKS}]))")

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
CODE_PLACEHOLDER = "\n\n\u25a2\n\n"
"""What a fenced code block becomes in `prose`: a paragraph of its own holding no word, sentence,
punctuation or markdown, so a `# comment` or `!=` inside code does not count as prose."""

_CLOSERS = "\"'”’)\\]"
_SENTENCE_BREAK = re.compile(rf"(?=[\s{_CLOSERS}])(?:(?<=[.!?…؟])[{_CLOSERS}]*\s+|\n+)")
_CJK_STOP = re.compile("[。！？]+")
_HAS_LETTER = re.compile(r"[^\W\d_]")


def prose(text: str) -> str:
    """The text with each fenced code block (``` or ~~~, closed or running to the end) replaced by
    CODE_PLACEHOLDER."""
    if "```" not in text and "~~~" not in text:
        return text
    return _FENCE.sub(CODE_PLACEHOLDER, text)


def tokens(text: str) -> list[str]:
    """The text's words, lower-cased, with ’ written ', and BARRIER for each run of punctuation."""
    lowered = text.lower()
    if lowered.isascii():
        return _ASCII_BREAK.sub(" | ", lowered).split()
    lowered = CJK.sub(r" \g<0> ", lowered.replace("’", "'"))
    return _UNICODE_BREAK.sub(" | ", lowered).split()


def sentences(text: str) -> list[str]:
    """The sentences of a prose text: pieces ended by . ! ? … ؟ and whitespace, by 。！？, or by a line
    break (a list item or heading is a sentence of its own), keeping pieces with a letter. "e.g. "
    ends a sentence too: a known overcount, the same for both sides."""
    if not text.isascii():
        text = _CJK_STOP.sub("\\g<0>\n", text)
    return [piece for piece in _SENTENCE_BREAK.split(text) if _HAS_LETTER.search(piece)]
