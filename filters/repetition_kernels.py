"""Compiled (numba) n-gram statistics behind the Gopher repetition filter (filters.gopher).

Why compiled: the filter asks nine questions of one word sequence (the most frequent 2-, 3- and 4-gram, the
characters covered by repeated 5- to 10-grams). With numpy each is a stable sort of the n-gram hashes (~0.1 ms
per sort on a 10 KB page, 2.8 ms per page in all); one open-addressing hash table per n answers it in a single
linear pass. tests/test_filters.py checks the results against a brute-force definition over word tuples.

Input is one integer id per word (equal words, equal ids) and each word's length. An n-gram is a 64-bit
rolling hash of its ids; all arithmetic wraps mod 2^64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MIX = np.uint64(0x9E3779B97F4A7C15)
TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)


@njit(cache=True)
def _first_positions(h):
    """For every n-gram position i, the first position whose n-gram hash equals h[i] (i itself when new): one
    pass over an open-addressing table of at least twice as many slots as n-grams."""
    m = len(h)
    size = 16
    while size < 2 * m:
        size *= 2
    mask = size - 1
    keys = np.zeros(size, dtype=np.uint64)
    firsts = np.full(size, -1, dtype=np.int64)
    out = np.empty(m, dtype=np.int64)
    for i in range(m):
        s = int((h[i] * _MIX) >> np.uint64(40)) & mask
        while firsts[s] >= 0 and keys[s] != h[i]:
            s = (s + 1) & mask
        if firsts[s] < 0:
            keys[s] = h[i]
            firsts[s] = i
        out[i] = firsts[s]
    return out


@njit(cache=True)
def _top_chars(first, len_cumsum, n: int) -> int:
    """Characters of the most frequent n-gram (words joined by single spaces) times its count; on ties the
    n-gram seen first."""
    counts = np.zeros(len(first), dtype=np.int64)
    best_count, best_start = 0, 0
    for i in range(len(first)):
        f = first[i]
        counts[f] += 1
        if counts[f] > best_count or (counts[f] == best_count and f < best_start):
            best_count, best_start = counts[f], f
    if best_count == 0:
        return 0
    return (len_cumsum[best_start + n] - len_cumsum[best_start] + (n - 1)) * best_count


@njit(cache=True)
def _dup_chars(first, lengths, n: int) -> int:
    """Characters of words covered by repeated occurrences of n-grams (every occurrence after the first), each
    word once, plus the spaces between covered neighbours."""
    cover = np.zeros(len(lengths) + 1, dtype=np.int64)
    for i in range(len(first)):
        if first[i] != i:
            cover[i] += 1
            cover[i + n] -= 1
    total = 0
    depth = 0
    previous = False
    for j in range(len(lengths)):
        depth += cover[j]
        covered = depth > 0
        if covered:
            total += lengths[j]
            if previous:
                total += 1
        previous = covered
    return total


@njit(cache=True)
def repetition_stats(ids, lengths):
    """(top-n-gram characters for n = 2, 3, 4; duplicated-n-gram characters for n = 5..10)."""
    len_cumsum = np.zeros(len(lengths) + 1, dtype=np.int64)
    for j in range(len(lengths)):
        len_cumsum[j + 1] = len_cumsum[j] + lengths[j]
    top = np.zeros(3, dtype=np.int64)
    dup = np.zeros(6, dtype=np.int64)
    h = ids * _MIX + np.uint64(1)
    for n in range(2, 11):
        if len(h) == 0:
            break
        h = (h[:-1] * _MIX) ^ (ids[n - 1:] + np.uint64(n))
        first = _first_positions(h)
        if n <= 4:
            top[n - 2] = _top_chars(first, len_cumsum, n)
        else:
            dup[n - 5] = _dup_chars(first, lengths, n)
    return top, dup
