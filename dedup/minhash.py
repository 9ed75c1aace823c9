"""MinHash signatures and LSH band keys for near-duplicate detection.

Text -> normalized word 5-grams (shingles) -> 64-bit xxhash per shingle -> MinHash signature of
`bands * rows` values (default 14 x 8 = 112, FineWeb's setting: candidates above a Jaccard of about 0.75).

The signature math is datasketch's "affine64" scheme exactly (murmur3's fmix64 on each shingle hash, then
h -> a*h + b mod 2^64 with datasketch's seeded odd `a`), vectorized over a whole batch of documents:
`MinHash(num_perm, seed, hashfunc=lambda h: h, scheme="affine64")` fed our shingle hashes gives the same values
(tests/test_near_dedup.py checks it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import xxhash

_PUNCT = re.compile(r"[^\w\s]|_")
_DIGIT = re.compile(r"\d")
_U64 = np.uint64


def normalize_for_minhash(text: str) -> str:
    """NFKC, lower case, punctuation removed, digits folded to 0, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _DIGIT.sub("0", _PUNCT.sub(" ", text))
    return " ".join(text.split())


_GRAM_MUL = _U64(0x9E3779B97F4A7C15)


def shingle_hashes(text: str, n: int = 5) -> np.ndarray:
    """64-bit hashes of the word n-grams of the normalized text (one shingle if it has fewer than n words).

    Each word is hashed once with xxh3-64; an n-gram's hash combines its word hashes in order
    (h = h * K xor w, for each word), so building n-gram strings is never needed. Repeated n-grams give
    repeated values, which MinHash ignores.
    """
    words = normalize_for_minhash(text).split()
    if not words:
        return np.zeros(0, dtype=_U64)
    wh = np.fromiter(map(xxhash.xxh3_64_intdigest, map(str.encode, words)), dtype=_U64, count=len(words))
    k = min(n, len(wh))
    grams = wh[: len(wh) - k + 1].copy()
    with np.errstate(over="ignore"):
        for i in range(1, k):
            grams = (grams * _GRAM_MUL) ^ wh[i : len(wh) - k + 1 + i]
    return grams


def fmix64(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finalizer (datasketch mixes raw hashes with it before the affine permutation)."""
    h = h.copy()
    with np.errstate(over="ignore"):
        h ^= h >> _U64(33)
        h *= _U64(0xFF51AFD7ED558CCD)
        h ^= h >> _U64(33)
        h *= _U64(0xC4CEB9FE1A85EC53)
        h ^= h >> _U64(33)
    return h


class MinHasher:
    """Seeded MinHash over uint64 shingle hashes; parameters taken from datasketch so values match it."""

    EMPTY = np.iinfo(np.uint64).max

    def __init__(self, num_perm: int = 112, seed: int = 1) -> None:
        from datasketch import MinHash

        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine64").permutations
        self.a = np.asarray(a, dtype=_U64)
        self.b = np.asarray(b, dtype=_U64)
        self.num_perm = num_perm

    def signatures(self, shingles: Sequence[np.ndarray]) -> np.ndarray:
        """(documents x num_perm) uint64 signatures; a document without shingles gets all-EMPTY values."""
        out = np.full((len(shingles), self.num_perm), self.EMPTY, dtype=_U64)
        # One document at a time: its (shingles x num_perm) block stays in cache, which measured faster
        # than one large block for a whole batch.
        with np.errstate(over="ignore"):
            for i, hashes in enumerate(shingles):
                if len(hashes):
                    np.min(fmix64(hashes)[:, None] * self.a + self.b, axis=0, out=out[i])
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


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / len(a)


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that two documents with this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - jaccard**rows) ** bands
