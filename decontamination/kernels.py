"""The compiled loop behind DecontaminationIndex.match: every n-gram of a page, of every length the index
holds, looked up in the bucketed sorted hash array. Imported on first use (numba), never by the driver."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _probe(q, offsets, hashes, shift):
    """Index of the first entry equal to q, or -1. Entries are sorted; a bucket holds those with q's top bits."""
    b = np.int64(q >> shift)
    j = np.int64(offsets[b])
    end = np.int64(offsets[b + 1])
    while j < end:
        h = hashes[j]
        if h == q:
            return j
        if h > q:
            return np.int64(-1)
        j += 1
    return np.int64(-1)


@njit(cache=True)
def _scan(words, wanted, offsets, hashes, mul, shift, prefix, prefix_len, prefix_shift, pos, lens, entries):
    """Count (and, given room, record) the hits of every n-gram whose length k has wanted[k]. For each start i
    one chain h = words[i], h = h * mul xor words[i + t] gives the hashes of lengths 1, 2, ... in turn, so all
    lengths cost the longest one's multiplications. At prefix_len words (the shortest length held) the chain's
    hash is looked up in `prefix`, a bitmap of the first prefix_len words of every n-gram held: a start no
    n-gram of the index begins with (~93 % at 10 M n-grams) stops there, after one memory access instead of a
    bucket and entry access per length."""
    hits = 0
    n = len(words)
    longest = len(wanted) - 1
    for i in range(n - prefix_len + 1):
        h = words[i]
        for t in range(1, longest):
            if i + t >= n:
                break
            h = (h * mul) ^ words[i + t]
            if t + 1 == prefix_len:
                bit = h >> prefix_shift
                if not (prefix[bit >> np.uint64(6)] >> (bit & np.uint64(63))) & np.uint64(1):
                    break
            if wanted[t + 1]:
                j = _probe(h, offsets, hashes, shift)
                while j >= 0 and j < len(hashes) and hashes[j] == h:
                    if hits < len(entries):
                        pos[hits] = i
                        lens[hits] = t + 1
                        entries[hits] = j
                    hits += 1
                    j += 1
    return hits


@njit(cache=True)
def find(words, wanted, offsets, hashes, mul, shift, prefix, prefix_len, prefix_shift):
    """(word position, n-gram length, entry) of every index entry a page n-gram equals, for the lengths k with
    wanted[k] (k >= 2). h = words[i], then h = h * mul xor words[i + t]: dedup.minhash's combination. Counted
    first, recorded in a second pass only when something matched, so a clean page allocates nothing more."""
    empty = np.empty(0, dtype=np.int64)
    hits = _scan(words, wanted, offsets, hashes, mul, shift, prefix, prefix_len, prefix_shift, empty, empty, empty)
    pos = np.empty(hits, dtype=np.int64)
    lens = np.empty(hits, dtype=np.int64)
    entries = np.empty(hits, dtype=np.int64)
    if hits:
        _scan(words, wanted, offsets, hashes, mul, shift, prefix, prefix_len, prefix_shift, pos, lens, entries)
    return pos, lens, entries
