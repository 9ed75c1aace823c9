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
def _table_size(n: int) -> int:
    size = 16
    while size < 2 * n:
        size *= 2
    return size


@njit(cache=True)
def _slot(keys, used, key, mask) -> int:
    """Index of `key` in the table, or of the empty slot where it belongs."""
    i = int((key * _MIX) >> np.uint64(40)) & mask
    while used[i] and keys[i] != key:
        i = (i + 1) & mask
    return i


@njit(cache=True)
def _top_chars(h, len_cumsum, n: int) -> int:
    """Characters of the most frequent n-gram (words joined by single spaces) times its count; on ties the
    n-gram seen first."""
    m = len(h)
    if m == 0:
        return 0
    size = _table_size(m)
    mask = size - 1
    keys = np.zeros(size, dtype=np.uint64)
    used = np.zeros(size, dtype=np.bool_)
    counts = np.zeros(size, dtype=np.int64)
    first = np.zeros(size, dtype=np.int64)
    best_count, best_start = 0, 0
    for i in range(m):
        s = _slot(keys, used, h[i], mask)
        if not used[s]:
            used[s] = True
            keys[s] = h[i]
            first[s] = i
        counts[s] += 1
        c = counts[s]
        if c > best_count or (c == best_count and first[s] < best_start):
            best_count, best_start = c, first[s]
    chars = len_cumsum[best_start + n] - len_cumsum[best_start] + (n - 1)
    return chars * best_count


@njit(cache=True)
def _dup_chars(h, lengths, n: int) -> int:
    """Characters of words covered by repeated occurrences of n-grams (every occurrence after the first), each
    word once, plus the spaces between covered neighbours."""
    m = len(h)
    words = len(lengths)
    if m == 0:
        return 0
    size = _table_size(m)
    mask = size - 1
    keys = np.zeros(size, dtype=np.uint64)
    used = np.zeros(size, dtype=np.bool_)
    cover = np.zeros(words + 1, dtype=np.int64)
    any_repeat = False
    for i in range(m):
        s = _slot(keys, used, h[i], mask)
        if used[s]:
            cover[i] += 1
            cover[i + n] -= 1
            any_repeat = True
        else:
            used[s] = True
            keys[s] = h[i]
    if not any_repeat:
        return 0
    total = 0
    depth = 0
    previous = False
    for j in range(words):
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
        if n <= 4:
            top[n - 2] = _top_chars(h, len_cumsum, n)
        else:
            dup[n - 5] = _dup_chars(h, lengths, n)
    return top, dup
