"""What a word and a symbol are, for everything that counts or finds them in answers: the keyword
proposer and the keyword judge read text through `tokens` (and the corpus checks through the same
patterns), so what one counts the other finds.

A word starts with a letter of any script and runs on over letters, combining marks and digits,
with apostrophes (' or ’) inside it: "ocean", "океан", "नमस्ते", "don't", "covid19". Scripts
written without spaces (Chinese, Japanese, Thai) come out as one "word" per run of text between
punctuation or spaces: nothing fails, but such corpora yield few keywords.

A symbol is a punctuation or symbol character outside words ("!", "—", "*", "😊", with an emoji's
skin tone, variation selector and zero-width joins kept on it); a run of the same symbol also
counts as its doubled or tripled form ("**", "...", "!!!" for three or more). Closing brackets
and quotes are left out: they only echo the opening ones.

Before either is found, the text is normalised: literal escape sequences an export left in it
(`\\n`, `\\t`, `\\"`, `\\u00e9` written as two or more characters) are read as what they stand for, and
contractions a corpus stores split the Penn Treebank way ("ca n't", "it 's", "I 'm") are joined
again, with its quote and bracket tokens (`` '' -LRB-) read as the characters they replace.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


def _character_classes() -> tuple[str, str]:
    """Character class bodies of the combining marks (Unicode category M: re's \\w leaves them out,
    yet they sit inside words in many scripts) and of the punctuation and symbols (P and S) that
    are not word characters (so "_" is no symbol), less the closing brackets and quotes, which
    only echo their opening ones."""
    marks: list[tuple[int, int]] = []
    symbols: list[tuple[int, int]] = []
    for code in (*range(0x20000), *range(0xE0000, 0xE1000)):  # planes 2–13 and 15–16 hold neither
        category = unicodedata.category(chr(code))
        if category.startswith("M"):
            _extend(marks, code)
        elif category[0] in "PS" and category not in ("Pe", "Pf") and not re.match(r"\w", chr(code)):
            _extend(symbols, code)
    return _class_body(marks), _class_body(symbols)


def _extend(ranges: list[tuple[int, int]], code: int) -> None:
    if ranges and ranges[-1][1] == code - 1:
        ranges[-1] = (ranges[-1][0], code)
    else:
        ranges.append((code, code))


def _class_body(ranges: list[tuple[int, int]]) -> str:
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


_MARKS, _SYMBOLS = _character_classes()
WORD_CHAR = rf"[\w{_MARKS}]"
"""One character that can continue a word: a letter, digit, underscore or combining mark."""
WORD_PATTERN = rf"(?<!{WORD_CHAR})[^\W\d_](?:{WORD_CHAR}|['’](?=[^\W_]))*"
"""A whole word, as a regular expression without capturing groups (scikit-learn's token_pattern takes it)."""
WORD = re.compile(WORD_PATTERN)
_ASCII_WORD = re.compile(r"(?<!\w)[^\W\d_](?:\w|'(?=[^\W_]))*")  # WORD on ASCII text, without its slow classes
SYMBOL_CHAR = f"[{_SYMBOLS}]"
"""One punctuation or symbol character that is not part of a word (emoji included)."""
_MODIFIERS = "[\ufe0f\u20e3\U0001f3fb-\U0001f3ff]*"  # variation selector, enclosing keycap, skin tones
_FLAG = "[\U0001f1e6-\U0001f1ff]{2}"  # two regional indicators: one flag
SYMBOL = re.compile(rf"{_FLAG}|{SYMBOL_CHAR}{_MODIFIERS}(?:\u200d{SYMBOL_CHAR}{_MODIFIERS})*")
"""One symbol as a reader sees it: a punctuation mark, or an emoji with its modifiers and joins."""
_NOT_WORD = re.compile(r"[^\w\s]+")  # where symbols can be (found fast: re's own classes)
_IN_WORD_APOSTROPHE = re.compile(rf"['’](?<={WORD_CHAR}['’])(?=[^\W_])")
LONGEST_RUN = 3
"""A run of one symbol longer than this counts as the run of this length ("****" as "***")."""

# ---- normalisation ----

# A backslash run and what follows it: a \uXXXX or \UXXXXXXXX code point, \n \t \r (with the
# letters after them, to tell a LaTeX command such as \nabla or \times from an escaped line break
# before a word), an escaped quote or slash, or backslashes alone (\\ stands for one).
ESCAPE = re.compile(
    r"(?P<backslashes>\\+)(?:u(?P<u>[0-9a-fA-F]{4})|U(?P<U>[0-9a-fA-F]{8})"
    r"|(?P<space>[ntr])(?P<rest>[A-Za-z]*)|(?P<quote>[\"'/]))?"
)
_LATEX = frozenset(
    """nabla ne neq neg nu not notin ni nmid nleq ngeq nexists newline newcommand newpage noindent nonumber
    nolimits natural nearrow nwarrow nsubseteq nsupseteq tau theta tan tanh times text textbf textit textrm texttt
    textsf textsc textnormal tfrac tilde to top triangle tag therefore thinspace tt textwidth rho right rightarrow
    rangle rceil rfloor ref rm rvert rbrace rbrack renewcommand rightleftharpoons""".split()
)
_SURROGATE = re.compile("[\ud800-\udfff]")
CONTRACTION = re.compile(rf" (?<={WORD_CHAR} )(n['’]t|['’](?:s|m|d|re|ve|ll))(?!{WORD_CHAR}|['’])", re.IGNORECASE)
"""A contraction split off its word the Penn Treebank way: "ca n't", "it 's", "I 'm", "they 're"."""
TREEBANK_TOKENS = {
    "``": '"',
    "''": '"',
    "-LRB-": "(",
    "-RRB-": ")",
    "-LSB-": "[",
    "-RSB-": "]",
    "-LCB-": "{",
    "-RCB-": "}",
}
TREEBANK_TOKEN = re.compile(r"(?<!\S)(?:``|''|-[LR][RSC]B-)(?!\S)")
"""A Penn Treebank quote or bracket token standing alone: `` '' -LRB- -RRB- …"""


def normalize(text: str) -> str:
    """The text with literal escape sequences decoded and Treebank-split contractions joined again."""
    if "\\" in text:
        text = ESCAPE.sub(_unescape, text)
        if _SURROGATE.search(text):  # \ud83d\ude00: an emoji escaped as a UTF-16 surrogate pair
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if "'" in text or "’" in text:
        text = CONTRACTION.sub(r"\1", text)
    if "``" in text or "''" in text or "B-" in text:
        text = TREEBANK_TOKEN.sub(lambda m: TREEBANK_TOKENS[m.group(0)], text)
    return text


def _unescape(match: re.Match[str]) -> str:
    found = match.groupdict()
    code = found["u"] or found["U"]
    if code is not None:
        return chr(int(code, 16)) if int(code, 16) < 0x110000 else match.group(0)
    if found["space"] is not None:
        letters = found["space"] + found["rest"]
        return "\\" + letters if letters in _LATEX else " " + found["rest"]
    if found["quote"] is not None:
        return found["quote"]
    return "\\"  # backslashes alone: \\ stands for one, and one stays one


def escapes(text: str) -> list[str]:
    """The literal escape sequences normalize decodes in the text: \\n \\t \\r (without the letters after
    them), \\" \\' \\/ and \\uXXXX; not a doubled backslash, which LaTeX and markdown also write."""
    found = []
    for match in ESCAPE.finditer(text):
        if match.group("space") is not None:
            if _unescape(match) != "\\" + match.group("space") + match.group("rest"):
                found.append(text[match.start() : match.start("rest")])
        elif match.lastindex is not None and match.lastindex > 1 and _unescape(match) != match.group(0):
            found.append(match.group(0))
    return found


# ---- tokens ----


def words(text: str) -> list[str]:
    """The normalised text's words, lower-cased, in order."""
    return _words(normalize(text))


def _words(normal: str) -> list[str]:
    lowered = normal.lower()
    return (_ASCII_WORD if lowered.isascii() else WORD).findall(lowered)


def symbols(text: str) -> list[str]:
    """The normalised text's symbols outside words, in order; after a run of one symbol, its run as
    well ("**", "...", and "!!!" for three or more)."""
    return _symbols(normalize(text))


def _symbols(normal: str) -> list[str]:
    if "'" in normal or "’" in normal:
        normal = _IN_WORD_APOSTROPHE.sub("a", normal)  # "don't": an apostrophe inside a word is no symbol
    found: list[str] = []
    for stretch in _NOT_WORD.findall(normal):
        for symbol, length in _runs(stretch):
            found.append(symbol)
            if length > 1:
                found.append(symbol * min(length, LONGEST_RUN))
    return found


def _runs(stretch: str) -> list[tuple[str, int]]:
    """Each run of one symbol repeated back to back in a stretch of text between words, with its length."""
    runs: list[tuple[str, int]] = []
    end = -1
    for match in SYMBOL.finditer(stretch):
        symbol = match.group(0)
        if runs and runs[-1][0] == symbol and match.start() == end:
            runs[-1] = (symbol, runs[-1][1] + 1)
        else:
            runs.append((symbol, 1))
        end = match.end()
    return runs


@dataclass(frozen=True)
class Tokens:
    """A text as the keyword proposer and the keyword judge see it."""

    words: tuple[str, ...]
    spaced: str  # the words joined by single spaces and padded with one: " w1 w2 " holds whole n-grams only
    symbols: frozenset[str]


def tokens(text: str) -> Tokens:
    """The text's words (also joined as Tokens.spaced) and the set of its symbols."""
    normal = normalize(text)
    found = _words(normal)
    return Tokens(tuple(found), f" {' '.join(found)} ", frozenset(_symbols(normal)))


def is_symbol(keyword: str) -> bool:
    """A keyword without a word in it is a symbol ("!", "**", "😊")."""
    return WORD.search(normalize(keyword)) is None


@dataclass(frozen=True)
class Keyword:
    """A keyword as it is matched: its words, lower-cased and joined by single spaces (a phrase is found
    across any spacing or punctuation between its words), or a symbol, found as a symbol of the text."""

    key: str
    symbol: bool

    @classmethod
    def of(cls, phrase: str) -> Keyword:
        symbol = is_symbol(phrase)
        return cls(phrase.strip() if symbol else " ".join(words(phrase)), symbol)

    def found_in(self, text: Tokens) -> bool:
        return self.key in text.symbols if self.symbol else f" {self.key} " in text.spaced
