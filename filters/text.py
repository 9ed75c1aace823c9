"""Text helpers every filter shares: language-aware word splitting, lines, paragraphs, duplicate counting.

Word splitting is one regex pass, no model, so all filters together stay within a few milliseconds:
- space-separated scripts: runs of letters/digits, with in-word apostrophes and hyphens kept ("don't",
  "e-mail" are one word, as NLTK and spaCy keep them);
  punctuation is never a word.
- Chinese and Japanese (Han, Hiragana, Katakana): one word per character. These scripts do not mark word
  boundaries and the mean Chinese word is about 1.5 characters, so per-character counts are the honest
  cheap choice; length thresholds for zh/ja belong in per-language tables (see recipes).
- Thai, Lao, Khmer and Myanmar: runs of these scripts are cut into pieces of at most 4 characters, an
  approximation of their mean word length that keeps word counts in the same range as for English text.
  Combining vowel and tone marks stay inside the piece.
Korean (Hangul) separates words with spaces and is split like English.

No word holds a line break (none of `str.splitlines`' separators is a word character or in the scripts' ranges)
or white space, so a text's words are its lines' words in order: C4, which drops and strips lines, derives the
cleaned text's word count from the page's (`remember_word_count`) and FineWeb's `word_count` splits nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SEA = "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"
_WORD = re.compile(
    rf"[{_CJK}]|[{_SEA}]{{1,4}}|[^\W{_CJK}{_SEA}]+(?:['\u2019\-][^\W{_CJK}{_SEA}]+)*"
)
# The same words for a text with no Chinese, Japanese or Southeast Asian character: the first two
# alternatives cannot match and the excluded ranges are absent, so plain \w is the same class. Most pages
# have none, and this pattern runs ~25 % faster than _WORD's negated class.
_SPLIT_SCRIPT = re.compile(rf"[{_CJK}{_SEA}]")
# Possessive: nothing follows in the pattern, so a match never gives characters back; ~10 % faster.
_PLAIN_WORD = re.compile(r"\w++(?:['\u2019\-]\w++)*+")
_HAS_ALPHA = re.compile(r"[^\W\d_]")
# Two or more newlines. Written "\n\n+", a literal prefix the regex engine searches for at C speed: as "\n{2,}"
# it tested every character (0.054 -> 0.006 ms a bench page, same splits).
PARAGRAPH_SPLIT = re.compile(r"\n\n+")


class LastText:
    """One value derived from a text, kept for the last text object it was derived from.

    Several filters read the same views of a page one after another (its words, its lines, its word ids); each
    view is computed once and reused while the very same string object comes again (a modifier that changes
    the text makes a new object). The entry is one (text, value) tuple, read once and replaced whole: the SDK
    harness runs bundles in threads, and another may replace it meanwhile. Callers must not mutate a value."""

    __slots__ = ("_entry",)

    def __init__(self) -> None:
        self._entry: tuple[str | None, Any] = (None, None)

    def get(self, text: str) -> Any:
        """The value kept for this very string object, else None."""
        entry = self._entry
        return entry[1] if entry[0] is text else None

    def put(self, text: str, value: Any) -> Any:
        self._entry = (text, value)
        return value


_words, _lines = LastText(), LastText()


def split_words(text: str) -> list[str]:
    """Words of `text` (no punctuation tokens), for any script; see the module docstring. The last text's
    words are kept (LastText). Callers must not mutate the returned list."""
    words = _words.get(text)
    if words is None:
        words = _words.put(text, (_WORD if _SPLIT_SCRIPT.search(text) else _PLAIN_WORD).findall(text))
    return words


def split_lines(text: str) -> list[str]:
    """text.splitlines(), the last text's kept (Gopher's two filters and C4 each read the page's lines).
    Callers must not mutate the returned list."""
    lines = _lines.get(text)
    if lines is None:
        lines = _lines.put(text, text.splitlines())
    return lines


def cached_words(text: str) -> list[str] | None:
    """The words of `text` when this very string object was the last one split, else None (nothing is split)."""
    return _words.get(text)


def count_words(text: str) -> int:
    """len(split_words(text)), leaving split_words' one-entry cache as it was."""
    return len((_WORD if _SPLIT_SCRIPT.search(text) else _PLAIN_WORD).findall(text))


# A word count a modifier derived for the text it made (filters.c4: the count before, less its removed lines'),
# so that a filter that only counts (filters.fineweb) splits no text.
_counted = LastText()


def remember_word_count(text: str, count: int) -> None:
    """Record that `text` (this string object) has `count` words, as split_words would count them."""
    _counted.put(text, count)


def word_count(text: str) -> int:
    """len(split_words(text)), from what is known of this very string object when anything is: a count a
    modifier remembered, or the words of the last split."""
    counted = _counted.get(text)
    return len(split_words(text)) if counted is None else counted


def has_alpha(word: str) -> bool:
    """A letter (or other non-digit word character) in the word. In ASCII the letters are exactly the cased
    characters, so an ASCII word has one when its upper and lower case differ: two C calls instead of a regex
    search per word."""
    if word.isascii():
        return word.lower() != word.upper()
    return _HAS_ALPHA.search(word) is not None


# A word of the distinct words joined by spaces (no word holds white space) with no letter: every character a
# non-word, non-space character (a Thai mark, a hyphen), a digit or "_" (has_alpha's complement).
_NO_LETTER_WORD = re.compile(r" ((?:[^\w\s]|[\d_])++)(?= )")


def words_with_alpha(distinct: Iterable[str], count: Callable[[str], int], total: int) -> int:
    """How many of `total` words, `distinct` the different ones and `count` how often each occurs, have a letter
    (has_alpha): `total` less those without one, which one regex scan of the distinct words finds (has_alpha on
    every distinct word took ~0.07 ms of a bench page at 8e36f4e; tests/test_filters.py compares the two)."""
    no_letter = _NO_LETTER_WORD.findall(" " + " ".join(distinct) + " ")
    return total - sum(map(count, no_letter))


def find_duplicates(items: Iterable[str]) -> tuple[int, int]:
    """(count, characters) of items that already appeared earlier in the sequence (Gopher's definition)."""
    seen: set[str] = set()
    dup_count = dup_chars = 0
    for item in items:
        if item in seen:
            dup_count += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup_count, dup_chars
