"""Gopher quality and repetition rules (Rae et al. 2021, MassiveText; thresholds in schemas/recipe.py).

Reasons: gopher_short_doc, gopher_long_doc, gopher_below_avg_word_length, gopher_above_avg_word_length,
gopher_too_many_hashes, gopher_too_many_ellipsis, gopher_too_many_bullets, gopher_too_many_end_ellipsis,
gopher_below_alpha_threshold, gopher_few_stop_words; dup_para_frac, dup_para_char_frac, dup_line_frac,
dup_line_char_frac, top_{2,3,4}_gram, duplicated_{5..10}_n_grams.
"""

from __future__ import annotations

import itertools
import re
from itertools import repeat

import numpy as np

from filters.base import Filter
from filters.lists import read_stopwords_json
from filters.text import PARAGRAPH_SPLIT, LastText, find_duplicates, split_lines, split_words, words_with_alpha
from schemas.records import Document

BULLETS = ("•", "‣", "◦", "⁃", "▪", "●", "-", "*")
_END_ELLIPSES = ("...", "…")
# Punctuation as a word tokenizer emits it: a mark not inside a word is its own token ("e-mail" and "don't"
# stay words), a run of dots is one token.
_PUNCT_TOKEN = re.compile(r"\.{2,}|…|(?<!\w)[^\w\s]|[^\w\s](?!\w)")


class GopherQualityFilter(Filter):
    name = "gopher_quality"
    signal_names = (
        "gopher_words", "gopher_avg_word_length", "gopher_hash_ratio", "gopher_ellipsis_ratio",
        "gopher_bullet_lines_ratio", "gopher_end_ellipsis_lines_ratio", "gopher_alpha_words_ratio",
        "gopher_stop_words",
    )

    def __init__(self, config) -> None:
        super().__init__(config)
        self._stop_by_lang = read_stopwords_json(config.stop_words_file) if config.stop_words_file else {}
        self._default_stop = frozenset(w.lower() for w in config.stop_words)

    def signals(self, doc: Document) -> dict[str, float]:
        text = doc.text
        words = split_words(text)
        n = len(words)
        lines = split_lines(text) or [""]
        stop = self._stop_by_lang.get(doc.language, self._default_stop)
        # Per distinct word from here on: a page repeats its words. The distinct words and every word's id come
        # from word_index, which gopher_repetition shares (in the fineweb order it has built them already);
        # counts per id are one bincount. 8e36f4e built a Counter of the words as well.
        first, ids = word_index(text, words)
        per_id = np.bincount(ids.astype(np.intp), minlength=n)
        # Distinct stop words present ("at least two of the following words", Gopher Table A1).
        stop_count = len(stop.intersection(map(str.lower, first)))
        return {
            "gopher_words": float(n),
            "gopher_avg_word_length": len("".join(words)) / n if n else 0.0,  # the characters, by one C call
            "gopher_hash_ratio": text.count("#") / n if n else 0.0,
            "gopher_ellipsis_ratio": (text.count("...") + text.count("…")) / n if n else 0.0,
            # Lines counted by C-level maps, not a generator per line.
            "gopher_bullet_lines_ratio": sum(map(str.startswith, map(str.lstrip, lines), repeat(BULLETS))) / len(lines),
            "gopher_end_ellipsis_lines_ratio":
                sum(map(str.endswith, map(str.rstrip, lines), repeat(_END_ELLIPSES))) / len(lines),
            "gopher_alpha_words_ratio": self._alpha_ratio(text, first, per_id, n, doc.language),
            "gopher_stop_words": float(stop_count),
        }

    def _alpha_ratio(self, text: str, first: dict[str, int], per_id: np.ndarray, words: int, language: str
                     ) -> float:
        tokens = words
        if self.config_for(language).alpha_ratio_counts_punctuation:
            tokens += len(_PUNCT_TOKEN.findall(text))
        return words_with_alpha(first, lambda w: int(per_id[first[w]]), words) / tokens if tokens else 0.0

    def decide(self, doc: Document, s: dict[str, float]) -> tuple[str, float] | None:
        c = self.config_for(doc.language)
        if s["gopher_words"] < c.min_doc_words:
            return "gopher_short_doc", s["gopher_words"]
        if s["gopher_words"] > c.max_doc_words:
            return "gopher_long_doc", s["gopher_words"]
        if s["gopher_avg_word_length"] < c.min_avg_word_length:
            return "gopher_below_avg_word_length", s["gopher_avg_word_length"]
        if s["gopher_avg_word_length"] > c.max_avg_word_length:
            return "gopher_above_avg_word_length", s["gopher_avg_word_length"]
        if s["gopher_hash_ratio"] > c.max_symbol_word_ratio:
            return "gopher_too_many_hashes", s["gopher_hash_ratio"]
        if s["gopher_ellipsis_ratio"] > c.max_symbol_word_ratio:
            return "gopher_too_many_ellipsis", s["gopher_ellipsis_ratio"]
        if s["gopher_bullet_lines_ratio"] > c.max_bullet_lines_ratio:
            return "gopher_too_many_bullets", s["gopher_bullet_lines_ratio"]
        if s["gopher_end_ellipsis_lines_ratio"] > c.max_ellipsis_lines_ratio:
            return "gopher_too_many_end_ellipsis", s["gopher_end_ellipsis_lines_ratio"]
        if s["gopher_alpha_words_ratio"] < c.min_alpha_words_ratio:
            return "gopher_below_alpha_threshold", s["gopher_alpha_words_ratio"]
        if s["gopher_stop_words"] < c.min_stop_words:
            return "gopher_few_stop_words", s["gopher_stop_words"]
        return None


def word_ids(words: list[str]) -> tuple[dict[str, int], np.ndarray]:
    """The distinct words, each with the position of its first occurrence, in order of first occurrence; and
    every word's id, that position (uint64)."""
    first: dict[str, int] = {}
    ids = np.fromiter(map(first.setdefault, words, itertools.count()), dtype=np.uint64, count=len(words))
    return first, ids


_index = LastText()


def word_index(text: str, words: list[str]) -> tuple[dict[str, int], np.ndarray]:
    """word_ids of `words`, the words of `text` (split_words), kept for the last text (filters.text.LastText):
    both Gopher filters read them. Callers must not change what it returns."""
    index = _index.get(text)
    return _index.put(text, word_ids(words)) if index is None else index


def ngram_stats(words: list[str], ids: np.ndarray | None = None) -> tuple[dict[int, int], dict[int, int]]:
    """({n: characters of the most frequent n-gram times its count} for n = 2..4, {n: characters covered by
    repeated n-grams} for n = 5..10), words joined by single spaces (Gopher's definitions; the compiled loops
    are in filters.repetition_kernels). A word's id is the position of its first occurrence (`ids`, from
    word_index, or computed here)."""
    # Imported here, not with this module: the kernels load numba (~0.25 s of CPU), and the driver imports the
    # filters for their signal names without ever running one.
    from filters.repetition_kernels import DUP_NS, TOP_NS, repetition_stats

    if ids is None:
        ids = word_ids(words)[1]
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    top, dup = repetition_stats(ids, lengths)
    return dict(zip(TOP_NS, top.tolist(), strict=True)), dict(zip(DUP_NS, dup.tolist(), strict=True))


class GopherRepetitionFilter(Filter):
    name = "gopher_repetition"
    signal_names = (
        "rep_dup_para_frac", "rep_dup_para_char_frac", "rep_dup_line_frac", "rep_dup_line_char_frac",
        "rep_top_2_gram", "rep_top_3_gram", "rep_top_4_gram",
        "rep_dup_5_gram", "rep_dup_6_gram", "rep_dup_7_gram", "rep_dup_8_gram", "rep_dup_9_gram",
        "rep_dup_10_gram",
    )

    def prepare(self) -> None:
        """numba's import and the kernels' load from its cache: ~0.5 s of CPU in each worker process, which the
        first document paid inside the filters' stage seconds (1.0-1.6 s of a 24-record demo run's 18 documents'
        `stage_seconds.filters` at 8e36f4e, two workers)."""
        ngram_stats(["warm", "up", "warm", "up"])

    def signals(self, doc: Document) -> dict[str, float]:
        text = doc.text
        chars = max(1, len(text))
        paragraphs = PARAGRAPH_SPLIT.split(text.strip())
        p_dup, p_chars = find_duplicates(paragraphs)
        lines = split_lines(text) or [""]
        l_dup, l_chars = find_duplicates(lines)
        words = split_words(text)
        top, dup = ngram_stats(words, word_index(text, words)[1])
        out = {
            "rep_dup_para_frac": p_dup / len(paragraphs),
            "rep_dup_para_char_frac": p_chars / chars,
            "rep_dup_line_frac": l_dup / len(lines),
            "rep_dup_line_char_frac": l_chars / chars,
        }
        for n, value in top.items():
            out[f"rep_top_{n}_gram"] = value / chars
        for n, value in dup.items():
            out[f"rep_dup_{n}_gram"] = value / chars
        return out

    def decide(self, doc: Document, s: dict[str, float]) -> tuple[str, float] | None:
        c = self.config_for(doc.language)
        for key, limit, reason in (
            ("rep_dup_para_frac", c.dup_para_frac, "dup_para_frac"),
            ("rep_dup_para_char_frac", c.dup_para_char_frac, "dup_para_char_frac"),
            ("rep_dup_line_frac", c.dup_line_frac, "dup_line_frac"),
            ("rep_dup_line_char_frac", c.dup_line_char_frac, "dup_line_char_frac"),
        ):
            if s[key] > limit:
                return reason, s[key]
        for n, limit in zip((2, 3, 4), c.top_ngram_char_frac, strict=True):
            if s[f"rep_top_{n}_gram"] > limit:
                return f"top_{n}_gram", s[f"rep_top_{n}_gram"]
        for n, limit in zip(range(5, 11), c.dup_ngram_char_frac, strict=True):
            if s[f"rep_dup_{n}_gram"] > limit:
                return f"duplicated_{n}_n_grams", s[f"rep_dup_{n}_gram"]
        return None
