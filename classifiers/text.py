"""The one text normalization every fastText classifier uses, at training and at inference time alike:
`normalize_for_classifier`, defined in normalization/text.py beside tokenmill's other three (which says why it
differs from them) and named here for the classifiers' modules and their tests.

fastText reads one line of space-separated tokens: newlines are folded, text is lower-cased, and
punctuation is split off the edges of words so "river," and "river" are the same token. Long documents are cut to
`max_chars`: the head of a page decides its quality and topic as well as the whole, at a fraction of the cost.
"""

from __future__ import annotations

from normalization.text import MAX_CHARS, normalize_for_classifier

__all__ = ["MAX_CHARS", "normalize_for_classifier"]
