"""Words and n-grams as decontamination compares them: a benchmark item laid out one sentence a line, with other
quotes, case or spacing, gives the same words as the item itself.

Normalization: NFKC, lower case, every character that is not a letter or digit (punctuation, "_", whitespace,
and combining marks NFKC does not compose) a word boundary, as near dedup's shingles split words. Digits are
kept as they are: an item with other numbers is another item. Each word is hashed with XXH64 over its UTF-8
bytes and an n-gram's hash combines its word hashes in order (h = h * K xor w), as near dedup's shingles do
(dedup/minhash.py), so no n-gram string is built.

Two implementations of the same definition: `item_word_hashes` in plain Python (the driver builds the index
with it and so never loads numba), `page_word_hashes` compiled (per page in the workers, ~20 us for 3 KB).
tests/test_decontamination.py checks they agree.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import xxhash

from dedup.minhash import ngram_hashes, word_hashes
from normalization.text import normalize_for_decontamination

# The n-gram combination of dedup.minhash (h = h * _GRAM_MUL xor w), repeated here in numpy for the driver.
GRAM_MUL = np.uint64(0x9E3779B97F4A7C15)
_WORD = re.compile(r"[^\W_]+")


# The words decontamination compares (normalization/text.py says how they differ from dedup's and the
# classifiers'); named here as the index and its tests know it.
normalized_words = normalize_for_decontamination


def item_word_hashes(text: str) -> np.ndarray:
    """XXH64 of each normalized word, in plain Python (no compiled code in the driver)."""
    words = normalized_words(text)
    return np.fromiter((xxhash.xxh64_intdigest(w.encode("utf-8", "surrogatepass")) for w in words),
                       dtype=np.uint64, count=len(words))


def gram_hashes(words: np.ndarray, n: int) -> np.ndarray:
    """The hash of every n-gram of `words` (n <= len(words)), in numpy: equal to dedup.minhash.ngram_hashes."""
    count = len(words) - n + 1
    if n < 1 or count < 1:
        return np.zeros(0, dtype=np.uint64)
    h = words[:count].copy()
    for t in range(1, n):
        h = h * GRAM_MUL ^ words[t : t + count]
    return h


def page_word_hashes(text: str) -> np.ndarray:
    """item_word_hashes, compiled (dedup.minhash.word_hashes with digits kept)."""
    return word_hashes(text, fold_digits=False)


def page_gram_hashes(words: np.ndarray, n: int) -> np.ndarray:
    """gram_hashes, compiled."""
    return ngram_hashes(words, n) if len(words) >= n else np.zeros(0, dtype=np.uint64)


def word_spans(text: str) -> tuple[str, list[tuple[int, int]]]:
    """(shown, spans): a text to show a passage from and the character span in it of each normalized word, in
    order. `shown` is the page's own text when NFKC leaves it unchanged (almost every page); otherwise its NFKC
    form, where the words can be located. Only called for a page that matched, to quote the passage."""
    shown = unicodedata.normalize("NFKC", text)
    lowered = shown.lower()
    if len(lowered) != len(shown):  # a lower-casing that changes the length (U+0130): quote the lowered text
        shown = lowered
    return shown, [m.span() for m in _WORD.finditer(lowered)]
