"""What a word is, for everything that counts or finds words in answers: the keyword proposer,
the keyword judge and the bag-of-words baseline split text the same way, in any script.

A word starts with a letter of any script and runs on over letters, combining marks and digits,
with apostrophes (' or ’) inside it: "ocean", "океан", "नमस्ते", "don't", "covid19". Scripts
written without spaces (Chinese, Japanese, Thai) come out as one "word" per run of text between
punctuation or spaces: nothing fails, but such corpora yield few keywords.
"""

from __future__ import annotations

import re
import unicodedata


def _marks() -> str:
    """A character class body of the combining marks (Unicode category M): re's \\w leaves them
    out, yet they sit inside words in many scripts (Devanagari vowel signs, decomposed accents)."""
    ranges: list[tuple[int, int]] = []
    for code in (*range(0x20000), *range(0xE0000, 0xE1000)):  # planes 2–13 and 15–16 hold no marks
        if unicodedata.category(chr(code)).startswith("M"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


WORD_CHAR = rf"[\w{_marks()}]"
"""One character that can continue a word: a letter, digit, underscore or combining mark."""
WORD_PATTERN = rf"(?<!{WORD_CHAR})[^\W\d_](?:{WORD_CHAR}|['’](?=[^\W_]))*"
"""A whole word, as a regular expression without capturing groups (scikit-learn's token_pattern takes it)."""
WORD = re.compile(WORD_PATTERN)


def words(text: str) -> list[str]:
    """The text's words, lower-cased, in order."""
    return WORD.findall(text.lower())


def phrase_pattern(phrases: tuple[str, ...] | list[str]) -> re.Pattern[str]:
    """Any of the phrases as whole words (not inside a longer word), any case."""
    alternatives = "|".join(re.escape(p) for p in phrases)
    return re.compile(rf"(?<!{WORD_CHAR})(?:{alternatives})(?!{WORD_CHAR})", re.IGNORECASE)
