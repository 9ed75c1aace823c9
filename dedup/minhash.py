"""MinHash signatures and LSH band keys for near-duplicate detection.

Text -> normalized word 5-grams (shingles) -> 64-bit hash per shingle (from XXH64 word hashes) -> MinHash signature of
`bands * rows` values (default 14 x 8 = 112, FineWeb's setting: candidates above a Jaccard of about 0.75).

The signature math is datasketch's "affine64" scheme exactly (murmur3's fmix64 on each shingle hash, then
h -> a*h + b mod 2^64 with datasketch's seeded odd `a`), in a compiled loop (dedup/minhash_kernels.py):
`MinHash(num_perm, seed, hashfunc=lambda h: h, scheme="affine64")` fed our shingle hashes gives the same values
(tests/test_near_dedup.py checks it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import xxhash

from normalization.text import normalize_for_minhash  # noqa: F401 - the reference definition, named here too


def _kernels() -> ModuleType:
    """dedup.minhash_kernels, imported on first use: it loads numba (~0.25 s of CPU), which the driver, importing
    this module for near dedup's band keys and nothing compiled, never needs."""
    from dedup import minhash_kernels

    return minhash_kernels


_U64 = np.uint64


_GRAM_MUL = _U64(0x9E3779B97F4A7C15)
_TABLES: tuple[np.ndarray, np.ndarray] | None = None
# str.lower() maps these with context or to two characters (final sigma; dotted capital I); a per-character
# table cannot, so a text containing one is lower-cased by Python first.
_FULL_CASE = ("\u03a3", "\u0130")


def _code_points(s: str) -> np.ndarray:
    try:
        return np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32)
    except UnicodeEncodeError:  # lone surrogates (rare): still one code point each
        return np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _lower_table(everything: str) -> np.ndarray:
    """ord(c.lower()) for every code point c, or ord(c) where c.lower() is not one character. One str.lower()
    over all of Unicode with the _FULL_CASE characters masked (they are the ones whose lowering depends on
    context or changes the length), then those set one by one: ~30 ms instead of ~0.6 s per character."""
    masked = everything
    for c in _FULL_CASE:
        masked = masked.replace(c, "\x00")
    lowered = masked.lower()
    if len(lowered) != len(everything):  # a Unicode version with another length-changing lower case
        return np.fromiter((ord(low) if len(low := c.lower()) == 1 else ord(c) for c in everything),
                           dtype=np.uint32, count=len(everything))
    table = _code_points(lowered).copy()
    for c in _FULL_CASE:
        low = c.lower()
        table[ord(c)] = ord(low) if len(low) == 1 else ord(c)
    return table


def all_code_points() -> str:
    """Every code point 0..0x10FFFF in order, one string (surrogates included), built in C (~5 ms)."""
    return np.arange(0x110000, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")


# What normalize_for_minhash keeps of a lower-cased character: NON_WORD and whitespace become spaces, so a
# character stays in a word exactly when it is a word character other than "_" (whitespace never is one).
_KEPT_RUN = re.compile(r"[^\W_]+")
_DIGIT_RUN = re.compile(r"\d+")


def char_tables() -> tuple[np.ndarray, np.ndarray]:
    """(lower, classes) for every code point: str.lower() of the character when that is one character, and
    SEPARATOR / WORD / DIGIT as normalize_for_minhash treats the character. Built once per process (~0.1 s)
    with the same regular expression classes normalize_for_minhash uses, applied to runs of all of Unicode
    at once; tests/test_near_dedup.py checks the table against normalize_for_minhash's substitutions run on
    every code point, so the compiled splitter cannot drift from the reference definition."""
    global _TABLES
    if _TABLES is None:
        everything = all_code_points()
        lower = _lower_table(everything)
        kernels = _kernels()
        classes = np.full(0x110000, kernels.SEPARATOR, dtype=np.uint8)
        for m in _KEPT_RUN.finditer(everything):  # ~700 runs
            classes[m.start():m.end()] = kernels.WORD
        for m in _DIGIT_RUN.finditer(everything):  # digits are word characters: kept, then folded to 0
            classes[m.start():m.end()] = kernels.DIGIT
        _TABLES = lower, classes
    return _TABLES


def word_hashes(text: str, *, fold_digits: bool = True) -> np.ndarray:
    """XXH64 of each word of the normalized text, compiled: NFKC, lower case, punctuation and whitespace as
    separators, and (fold_digits) every digit written as 0, which is normalize_for_minhash(text).split().
    Decontamination (decontamination/text.py) keeps digits: a benchmark item with other numbers is another item.
    """
    if not text.isascii():
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        if any(c in text for c in _FULL_CASE):
            text = text.lower()
    lower, classes = char_tables() if fold_digits else _unfolded_tables()
    return _kernels().word_hashes(_code_points(text), lower, classes)


_UNFOLDED: tuple[np.ndarray, np.ndarray] | None = None


def _unfolded_tables() -> tuple[np.ndarray, np.ndarray]:
    """char_tables() with digits as plain word characters (not folded to 0)."""
    global _UNFOLDED
    if _UNFOLDED is None:
        lower, classes = char_tables()
        kernels = _kernels()
        _UNFOLDED = lower, np.where(classes == kernels.DIGIT, kernels.WORD, classes).astype(np.uint8)
    return _UNFOLDED


def ngram_hashes(words: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit hash per word n-gram of `words` (word_hashes' output), one for all of them when there are
    fewer than n: h = h * K xor w over the n-gram's word hashes in order, so n-gram strings are never built."""
    return _kernels().ngram_hashes(words, n, _GRAM_MUL)


def shingle_hashes(text: str, n: int = 5) -> np.ndarray:
    """64-bit hashes of the word n-grams of the normalized text (one shingle if it has fewer than n words).

    Each word of normalize_for_minhash(text) is hashed once with XXH64 over its UTF-8 bytes; an n-gram's hash
    combines its word hashes in order (h = h * K xor w, for each word), so n-gram strings are never built.
    Repeated n-grams give repeated values, which MinHash ignores. Lower-casing, splitting, folding and hashing
    run compiled (dedup/minhash_kernels.py); tests/test_near_dedup.py checks them against the plain definition.
    """
    return ngram_hashes(word_hashes(text), n)  # no words -> no shingles


def affine64_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of datasketch's `MinHash(num_perm, seed=seed, scheme="affine64").permutations`, drawn the way
    datasketch 2 draws them (numpy's RandomState(seed): num_perm odd multipliers, then num_perm offsets).

    Why not ask datasketch: importing it imports scipy, ~0.5 s of CPU in every worker process, for 224
    numbers. tests/test_near_dedup.py checks these against datasketch's own."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 63, num_perm, dtype=_U64) * _U64(2) + _U64(1)
    b = gen.randint(0, 1 << 64, num_perm, dtype=_U64)
    return a, b


class MinHasher:
    """Seeded MinHash over uint64 shingle hashes; parameters equal datasketch's, so values match it."""

    EMPTY = np.iinfo(np.uint64).max

    def __init__(self, num_perm: int = 112, seed: int = 1) -> None:
        self.a, self.b = affine64_permutations(num_perm, seed)
        self.num_perm = num_perm

    def signatures(self, shingles: Sequence[np.ndarray]) -> np.ndarray:
        """(documents x num_perm) uint64 signatures; a document without shingles gets all-EMPTY values."""
        out = np.full((len(shingles), self.num_perm), self.EMPTY, dtype=_U64)
        minhash_into = _kernels().minhash_into
        for i, hashes in enumerate(shingles):
            minhash_into(np.ascontiguousarray(hashes, dtype=_U64), self.a, self.b, out[i])
        return out


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 64-bit key per band: documents sharing any band key are candidate duplicates."""
    return [xxhash.xxh3_64_intdigest(signature[i * rows : (i + 1) * rows].tobytes()) for i in range(bands)]


def hashed_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two documents' shingle sets, computed on their 64-bit shingle hashes (a collision
    between two different 5-grams has chance ~2^-64 per pair of shingles, so this is the exact value)."""
    ua, ub = np.unique(a), np.unique(b)
    if not len(ua) and not len(ub):
        return 1.0
    both = len(np.intersect1d(ua, ub, assume_unique=True))
    return both / (len(ua) + len(ub) - both)


def check_values(signature: np.ndarray) -> bytes:
    """The low 8 bits of each signature value: what travels with every band key for the false-positive check
    (b-bit minwise hashing, Li & Koenig 2010). 112 bytes instead of 896 per band key, as plain bytes (Beam
    encodes bytes natively; a numpy array would be pickled at twice the size)."""
    return (signature & _U64(0xFF)).astype(np.uint8).tobytes()


def estimated_jaccard(a: np.ndarray | bytes, b: np.ndarray | bytes) -> float:
    """Share of equal signature values. For 8-bit check values (bytes) two unrelated values agree with chance
    1/256, so the share is corrected for it: (share - 1/256) / (1 - 1/256), unbiased for the full value."""
    if isinstance(a, bytes):
        a, b = np.frombuffer(a, dtype=np.uint8), np.frombuffer(b, dtype=np.uint8)
    share = float(np.count_nonzero(a == b)) / len(a)
    if a.dtype == np.uint8:
        return max(0.0, (share - 1 / 256) / (1 - 1 / 256))
    return share


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that two documents with this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - jaccard**rows) ** bands
