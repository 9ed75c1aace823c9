"""Compiled (numba) loops behind dedup.minhash: word splitting + folding, XXH64 per word, n-gram combination,
and the MinHash min over (shingles x permutations).

Why compiled: a 3 KB page has ~500 shingles and 112 permutations, ~57,000 multiply-add-min steps; numpy spends
more time on temporaries and Python on the per-word hash calls than the arithmetic costs. These loops do the
same arithmetic as the reference definitions in dedup.minhash (tests compare them), at ~10x the speed.

All arithmetic is on uint64 and wraps mod 2^64, like numpy's and datasketch's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_U64 = np.uint64
_P1 = _U64(11400714785074694791)
_P2 = _U64(14029467366897019727)
_P3 = _U64(1609587929392839161)
_P4 = _U64(9650029242287828579)
_P5 = _U64(2870177450012600261)

# Character classes of a code point after NFKC + lower-casing (dedup.minhash.char_classes builds the table).
SEPARATOR, WORD, DIGIT = 0, 1, 2


@njit(cache=True, inline="always")
def _rotl(x, r):
    return (x << _U64(r)) | (x >> _U64(64 - r))


@njit(cache=True, inline="always")
def _read_le(buf, i, nbytes):
    """buf[i:i+nbytes] as a little-endian unsigned integer (XXH64 reads 8- and 4-byte lanes)."""
    v = _U64(0)
    for k in range(nbytes):
        v |= _U64(buf[i + k]) << _U64(8 * k)
    return v


@njit(cache=True, inline="always")
def _round(acc, lane):
    acc = acc + lane * _P2
    acc = _rotl(acc, 31)
    return acc * _P1


@njit(cache=True)
def xxh64(buf, start, end):
    """XXH64 (seed 0) of buf[start:end] (uint8), equal to xxhash.xxh64_intdigest(bytes(buf[start:end]))."""
    length = end - start
    i = start
    if length >= 32:
        v1 = _P1 + _P2
        v2 = _P2
        v3 = _U64(0)
        v4 = _U64(0) - _P1
        limit = end - 32
        while i <= limit:
            v1 = _round(v1, _read_le(buf, i, 8))
            v2 = _round(v2, _read_le(buf, i + 8, 8))
            v3 = _round(v3, _read_le(buf, i + 16, 8))
            v4 = _round(v4, _read_le(buf, i + 24, 8))
            i += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        for v in (v1, v2, v3, v4):
            h ^= _round(_U64(0), v)
            h = h * _P1 + _P4
    else:
        h = _P5
    h += _U64(length)
    while i + 8 <= end:
        h ^= _round(_U64(0), _read_le(buf, i, 8))
        h = _rotl(h, 27) * _P1 + _P4
        i += 8
    if i + 4 <= end:
        h ^= _read_le(buf, i, 4) * _P1
        h = _rotl(h, 23) * _P2 + _P3
        i += 4
    while i < end:
        h ^= _U64(buf[i]) * _P5
        h = _rotl(h, 11) * _P1
        i += 1
    h ^= h >> _U64(33)
    h *= _P2
    h ^= h >> _U64(29)
    h *= _P3
    h ^= h >> _U64(32)
    return h


@njit(cache=True)
def word_hashes(cps, lower, classes):
    """XXH64 of the UTF-8 bytes of each word of `cps` (code points of NFKC text), each code point first mapped
    through `lower`: a word is a run of WORD/DIGIT code points, digits written as "0"; SEPARATOR code points
    (whitespace, punctuation, "_") split words. Equal to
    [xxh64(w.encode()) for w in normalize_for_minhash(text).split()]."""
    buf = np.empty(len(cps) * 4, dtype=np.uint8)
    begins = np.empty(len(cps) // 2 + 1, dtype=np.int64)  # words are separated, so at most half as many
    ends = np.empty(len(cps) // 2 + 1, dtype=np.int64)
    n = 0
    pos = 0
    in_word = False
    for i in range(len(cps)):
        cp = np.int64(lower[cps[i]])
        c = classes[cp]
        if c == SEPARATOR:
            if in_word:
                ends[n] = pos
                n += 1
                in_word = False
            continue
        if not in_word:
            begins[n] = pos
            in_word = True
        if c == DIGIT:
            cp = 48
        if cp < 0x80:
            buf[pos] = cp
            pos += 1
        elif cp < 0x800:
            buf[pos] = 0xC0 | (cp >> 6)
            buf[pos + 1] = 0x80 | (cp & 0x3F)
            pos += 2
        elif cp < 0x10000:
            buf[pos] = 0xE0 | (cp >> 12)
            buf[pos + 1] = 0x80 | ((cp >> 6) & 0x3F)
            buf[pos + 2] = 0x80 | (cp & 0x3F)
            pos += 3
        else:
            buf[pos] = 0xF0 | (cp >> 18)
            buf[pos + 1] = 0x80 | ((cp >> 12) & 0x3F)
            buf[pos + 2] = 0x80 | ((cp >> 6) & 0x3F)
            buf[pos + 3] = 0x80 | (cp & 0x3F)
            pos += 4
    if in_word:
        ends[n] = pos
        n += 1
    out = np.empty(n, dtype=np.uint64)
    for w in range(n):
        out[w] = xxh64(buf, begins[w], ends[w])
    return out


@njit(cache=True)
def ngram_hashes(words, n, mul):
    """Hash of each word n-gram (one for the whole text when it has fewer than n words): h = h * mul xor w over
    the n-gram's word hashes in order, so n-gram strings are never built."""
    k = min(n, len(words))
    count = len(words) - k + 1 if k > 0 else 0
    out = np.empty(count, dtype=np.uint64)
    for i in range(count):
        h = words[i]
        for t in range(1, k):
            h = (h * mul) ^ words[i + t]
        out[i] = h
    return out


@njit(cache=True)
def minhash_into(shingles, a, b, out):
    """out[j] = min(out[j], min over shingles h of a[j] * fmix64(h) + b[j]) (datasketch's affine64 scheme).

    Mixed hashes first, then one pass per permutation: the inner loop is a min-reduction over a contiguous
    array, which the compiler vectorizes (measured 1.7x faster than the shingle-major loop)."""
    n = len(shingles)
    x = np.empty(n, dtype=np.uint64)
    for s in range(n):
        h = shingles[s]
        h ^= h >> _U64(33)
        h *= _U64(0xFF51AFD7ED558CCD)
        h ^= h >> _U64(33)
        h *= _U64(0xC4CEB9FE1A85EC53)
        h ^= h >> _U64(33)
        x[s] = h
    for j in range(len(a)):
        aj = a[j]
        bj = b[j]
        m = out[j]
        for s in range(n):
            m = min(m, aj * x[s] + bj)
        out[j] = m
