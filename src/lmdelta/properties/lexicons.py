"""The word and phrase lists behind the lexical properties (hand-written, English).

The lists are English, short and hand-picked for assistant-style answers: each entry should mean
the property in nearly every context it appears in. Ambiguous words are left out on purpose ("may"
is also a month, "could" mostly a suggestion, "kind of" mostly a noun phrase), so the counts err
towards missing a marker rather than inventing one. How entries match is said in properties.matching:
whole words, any case, ' or ’ alike, never across punctuation.
"""

from __future__ import annotations

FIRST_PERSON = ("i", "me", "my", "mine", "myself", "i'm", "i've", "i'd", "i'll")
"""First-person singular: the answer speaking of itself."""

SECOND_PERSON = ("you", "your", "yours", "yourself", "yourselves", "you're", "you've", "you'd", "you'll")
"""Second person: the answer addressing the reader."""

HEDGES = (
    "might",
    "perhaps",
    "possibly",
    "probably",
    "likely",
    "presumably",
    "conceivably",
    "arguably",
    "apparently",
    "somewhat",
    "seemingly",
    "it seems",
    "seems to",
    "seem to",
    "appears to",
    "appear to",
    "may be",
    "could be",
    "might be",
    "not sure",
    "not certain",
    "uncertain",
    "i think",
    "i believe",
    "i suspect",
    "i guess",
    "it depends",
    "to some extent",
    "in some cases",
    "more or less",
    "roughly",
    "approximately",
    "generally",
    "typically",
    "tends to",
    "tend to",
)
"""Hedging: softening or qualifying a claim (Hyland's hedges, cut to unambiguous ones)."""

CERTAINTY = (
    "definitely",
    "certainly",
    "clearly",
    "obviously",
    "undoubtedly",
    "undeniably",
    "unquestionably",
    "surely",
    "absolutely",
    "of course",
    "without a doubt",
    "no doubt",
    "without question",
    "there is no question",
    "for sure",
    "guaranteed",
    "the fact is",
    "in fact",
    "precisely",
    "indisputably",
    "i am certain",
    "i'm certain",
    "i am sure",
    "i'm sure",
    "rest assured",
)
"""Certainty (boosters): stating a claim as beyond doubt."""

APOLOGIES = (
    "sorry",
    "i apologize",
    "i apologise",
    "we apologize",
    "we apologise",
    "apologies",
    "my apologies",
    "my mistake",
    "my bad",
    "i regret",
    "pardon the confusion",
    "forgive me",
)
"""Apologising, sincerely or formulaically ("Sorry for the confusion")."""

REFUSALS = (
    "i can't help with",
    "i cannot help with",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i can't do that",
    "i cannot do that",
    "i can't comply",
    "i cannot comply",
    "i won't be able to",
    "i will not be able to",
    "i'm not able to",
    "i am not able to",
    "i'm unable to",
    "i am unable to",
    "i must decline",
    "i have to decline",
    "i won't help",
    "i will not help",
    "i can't fulfill",
    "i cannot fulfill",
    "i can't create",
    "i cannot create",
    "i can't write",
    "i cannot write",
    "i can't share",
    "i cannot share",
    "i can't answer",
    "i cannot answer",
    "i'm not comfortable",
    "i am not comfortable",
    "against my guidelines",
    "against my programming",
    "not something i can help with",
)
"""Refusing the request, or a part of it, in the first person."""

AI_DISCLAIMERS = (
    "as an ai",
    "as a language model",
    "as an artificial intelligence",
    "as a large language model",
    "as an assistant",
    "i'm just an ai",
    "i am just an ai",
    "i'm only an ai",
    "i am only an ai",
    "i'm an ai",
    "i am an ai",
    "i'm a language model",
    "i am a language model",
    "i don't have personal",
    "i do not have personal",
    "i don't have feelings",
    "i do not have feelings",
    "i don't have opinions",
    "i do not have opinions",
    "i don't have access to real-time",
    "i do not have access to real-time",
    "my training data",
    "my knowledge cutoff",
    "my training cutoff",
    "i don't have the ability to browse",
)
"""Disclaiming being an AI or pointing at the limits of one."""

POLITENESS = (
    "please",
    "thank you",
    "thanks",
    "you're welcome",
    "you are welcome",
    "feel free to",
    "don't hesitate to",
    "do not hesitate to",
    "let me know if",
    "i hope this helps",
    "hope this helps",
    "i hope that helps",
    "hope that helps",
    "if you'd like",
    "if you would like",
    "kindly",
)
"""Politeness formulas: thanks, invitations to ask more, softened requests."""

ENTHUSIASM = (
    "great question",
    "good question",
    "excellent question",
    "fantastic question",
    "what a great",
    "what a wonderful",
    "what a fun",
    "what a fantastic",
    "happy to help",
    "glad to help",
    "happy to assist",
    "i'd be happy to",
    "i would be happy to",
    "i'd be glad to",
    "i'd love to",
    "i would love to",
    "i love this",
    "i love that",
    "love this question",
    "absolutely!",
    "certainly!",
    "of course!",
    "sure thing",
    "fantastic",
    "wonderful",
    "awesome",
    "amazing",
    "exciting",
    "delighted",
)
"""Enthusiasm and flattery markers typical of eager assistants."""
