"""The one text normalization every fastText classifier uses, at training and at inference time alike.

fastText reads one line of space-separated tokens: newlines are folded, text is lower-cased, and
punctuation is split off the edges of words so "river," and "river" are the same token. Long documents are cut to
`max_chars`: the head of a page decides its quality and topic as well as the whole, at a fraction of the cost.
"""

from __future__ import annotations

import re

# Punctuation at a word's edge becomes its own token; inside a word (e-mail addresses, host names, "3.5",
# "don't") it stays, since those tokens carry topic signal.
_PUNCT = re.compile(r"(?<!\w)([^\w\s])|([^\w\s])(?!\w)")
MAX_CHARS = 10_000


def normalize_for_classifier(text: str, max_chars: int = MAX_CHARS) -> str:
    return " ".join(_PUNCT.sub(r" \1\2 ", text[:max_chars].lower()).split())
