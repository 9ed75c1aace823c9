"""The four text normalizations of tokenmill, one place, each named for what uses it and documented with why it
differs from the others. They are not one function with options: each is part of a definition something
already written depends on (an exact key in a release's dedup index, a MinHash signature, a benchmark index, a
trained classifier), so changing one changes what earlier outputs mean. tests/test_normalization.py pins each
on hostile strings (zero-width and bidi characters, controls, ligatures, dotted capital I, final sigma, lone
surrogates, non-ASCII digits), so none changes by accident.

variant                          NFKC  case   punctuation                     digits     whitespace  cut
normalize_for_exact              yes   lower  kept                            kept       folded      no
normalize_for_minhash            yes   lower  "_" and non-word: word breaks   0          folded      no
normalize_for_decontamination    yes   lower  as minhash (a list of words)    kept       folded      no
normalize_for_classifier         no    lower  a word's edges split off        kept       folded      max_chars

Why they differ:
- exact dedup (dedup/exact.py: exact_key) folds only what does not change the content (compatibility forms,
  case, indentation): two texts with other punctuation or numbers are not the same document. Its definition is
  recorded in every dedup index (`EXACT_KEY_DEFINITION`), so a release's keys match a later run's only under it.
- MinHash (dedup/minhash.py) compares word 5-grams of near copies: punctuation and digits are what a template
  changes between copies (dates, counters, prices), so they are dropped or folded. The compiled word splitter
  (`word_hashes`) implements this same definition; tests/test_near_dedup.py checks it per code point.
- decontamination (decontamination/text.py) splits words as MinHash does, so the shared word hashing serves both,
  but keeps digits: a benchmark item with other numbers is another item (a maths answer).
- the fastText classifiers (classifiers/) were trained on this exact line format: no NFKC, punctuation as its own
  token only at a word's edge ("river," is "river ,", "3.5" and "a@b.com" stay whole: they carry topic signal),
  and a page's head, `MAX_CHARS`, decides as well as the whole at a fraction of the cost. A model trained by
  `tokenmill train-classifier` is only right under the normalization it was trained with.

Moved here from dedup/exact.py, dedup/minhash.py, decontamination/text.py and classifiers/text.py on
2026-12-07 (issue 35); those names still import from there. Imports nothing of tokenmill.
"""

from __future__ import annotations

import re
import unicodedata

# "_" and every character that is neither a word character nor whitespace: a word boundary for MinHash and
# decontamination.
NON_WORD = re.compile(r"[^\w\s]|_")
DIGIT = re.compile(r"\d")


def normalize_for_exact(text: str) -> str:
    """NFKC, lower case, runs of whitespace as one space, nothing else (exact dedup's key)."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def normalize_for_minhash(text: str) -> str:
    """NFKC, lower case, punctuation removed, digits folded to 0, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = DIGIT.sub("0", NON_WORD.sub(" ", text))
    return " ".join(text.split())


def normalize_for_decontamination(text: str) -> list[str]:
    """The words decontamination compares: NFKC, lower case, punctuation and whitespace as separators."""
    return NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).split()


# Punctuation at a word's edge becomes its own token; inside a word (e-mail addresses, host names, "3.5",
# "don't") it stays, since those tokens carry topic signal. "At a word's edge" = not preceded by a word
# character, or not followed by one. The pattern starts with the punctuation class and checks the left side by
# a look-behind over it (`(?<!\w.)`), so the regex engine scans for punctuation instead of trying a look-behind
# at every position: 1.8x faster than the plain `(?<!\w)P|P(?!\w)`, same output (tests/test_classifiers.py).
_EDGE_PUNCT = re.compile(r"[^\w\s](?:(?<!\w.)|(?!\w))", re.S)
MAX_CHARS = 10_000


def normalize_for_classifier(text: str, max_chars: int = MAX_CHARS) -> str:
    """The one line a fastText classifier reads, at training and inference alike: the first `max_chars`
    characters, lower case, punctuation at a word's edge split off as a token, whitespace folded."""
    return " ".join(_EDGE_PUNCT.sub(r" \g<0> ", text[:max_chars].lower()).split())
