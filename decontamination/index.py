"""The n-gram index of the benchmark items, and a page matched against it.

Built once per run, in the driver, before anything is written (`build_index`): every item's distinct n-grams
(an item of fewer than `ngram` words, but at least `min_item_words`, is one n-gram of its own length; shorter
items are left out and counted) as 64-bit hashes, sorted, each with the item it came from. Written to the
run's staging folder; each worker process loads one copy (pipelines/decontaminate.py).

Memory: 8 bytes of hash and 4 of item per n-gram, plus a bucket table (4 bytes per ~2.4 n-grams) that finds an
n-gram's place in the sorted array in one step instead of a 24-step binary search (a cache miss each on a
120 MB array): ~13.7 bytes per n-gram, 137 MB for 10 M (bench/decontamination.py). A 64-bit hash makes a false
match of one page n-gram with one of 10 M item n-grams a ~5e-13 event; one is counted only when the page
shares `min_matches` n-grams with one item.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from decontamination.sources import Item, SourceError, expand_sources, read_items
from decontamination.text import GRAM_MUL, gram_hashes, item_word_hashes, page_word_hashes, word_spans

# Longest passage quoted in a ledger row's detail.
PASSAGE_CHARS = 300


@dataclass
class SourceSummary:
    """What one benchmark file gave the index (stats.json `decontamination.sources`)."""

    path: str
    sha256: str
    items: int  # items read
    indexed: int  # items with at least one n-gram
    too_short: int  # items of fewer than min_item_words words in every field
    ngrams: int  # distinct n-grams of its items (an n-gram two items share counts for both)


@dataclass
class Match:
    """The items a page is contaminated with (n-grams shared >= the item's requirement), best first."""

    items: list[tuple[int, int]]  # (item number in the index, distinct n-grams shared)
    passage: str  # the page's text of the best item's first matched run of n-grams

    @property
    def best(self) -> tuple[int, int]:
        return self.items[0]


def _kernels() -> ModuleType:
    from decontamination import kernels  # numba: loaded by the workers that match, never by the driver

    return kernels


@dataclass
class DecontaminationIndex:
    hashes: np.ndarray  # uint64, sorted
    items: np.ndarray  # uint32: the item number of each hash
    offsets: np.ndarray  # uint32: bucket b's entries are hashes[offsets[b]:offsets[b + 1]], b = hash >> shift
    shift: int
    lengths: np.ndarray  # int64: the n-gram lengths the index holds (ngram, and shorter items' own lengths)
    item_source: np.ndarray  # uint32: the source file of each item (an index into `sources`)
    item_index: np.ndarray  # int64: the item's line or row in its file
    item_ngrams: np.ndarray  # uint32: distinct n-grams of each item
    # A bitmap of the first `prefix_len` words of every n-gram held (hash >> prefix_shift picks the bit): most
    # page positions stop after one look at it (decontamination/kernels.py).
    prefix: np.ndarray
    prefix_len: int
    prefix_shift: int
    sources: list[str]
    min_matches: int
    # wanted[k]: whether the index holds n-grams of k words (the compiled scan's form of `lengths`).
    wanted: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.wanted = np.zeros(int(self.lengths.max(initial=1)) + 1, dtype=np.bool_)
        self.wanted[self.lengths] = True

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.hashes, self.items, self.offsets, self.item_source, self.item_index,
                                      self.item_ngrams, self.prefix))

    def describe(self, item: int) -> tuple[str, int]:
        """(benchmark file, the item's line or row in it)."""
        return self.sources[int(self.item_source[item])], int(self.item_index[item])

    def match(self, text: str) -> Match | None:
        """The items `text` shares at least min(min_matches, the item's n-gram count) distinct n-grams with, or
        None. One compiled pass per page; the rest runs only for a page that hit an entry."""
        if not len(self.hashes):
            return None
        words = page_word_hashes(text)
        pos, lens, entries = _kernels().find(words, self.wanted, self.offsets, self.hashes, GRAM_MUL,
                                             np.uint64(self.shift), self.prefix, self.prefix_len,
                                             np.uint64(self.prefix_shift))
        if not len(entries):
            return None
        found: dict[int, dict[int, tuple[int, int]]] = {}
        for p, k, e in zip(pos.tolist(), lens.tolist(), entries.tolist(), strict=True):
            grams = found.setdefault(int(self.items[e]), {})
            grams.setdefault(int(self.hashes[e]), (p, k))
        items = [(item, len(grams)) for item, grams in found.items()
                 if len(grams) >= min(self.min_matches, int(self.item_ngrams[item]))]
        if not items:
            return None
        items.sort(key=lambda ic: (-ic[1], ic[0]))
        return Match(items, _passage(text, len(words), sorted(found[items[0][0]].values())))

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez(out, hashes=self.hashes, items=self.items, offsets=self.offsets, shift=np.int64(self.shift),
                 lengths=self.lengths, item_source=self.item_source, item_index=self.item_index,
                 item_ngrams=self.item_ngrams, prefix=self.prefix, prefix_len=np.int64(self.prefix_len),
                 prefix_shift=np.int64(self.prefix_shift), sources=np.array(self.sources, dtype=str),
                 min_matches=np.int64(self.min_matches))
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DecontaminationIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(hashes=z["hashes"], items=z["items"], offsets=z["offsets"], shift=int(z["shift"]),
                       lengths=z["lengths"], item_source=z["item_source"], item_index=z["item_index"],
                       item_ngrams=z["item_ngrams"], prefix=z["prefix"], prefix_len=int(z["prefix_len"]),
                       prefix_shift=int(z["prefix_shift"]), sources=[str(s) for s in z["sources"]],
                       min_matches=int(z["min_matches"]))


def _passage(text: str, word_count: int, grams: list[tuple[int, int]]) -> str:
    """The page's text from the first matched n-gram to the end of the run of n-grams overlapping it."""
    shown, spans = word_spans(text)
    if len(spans) != word_count:  # cannot happen by construction; quote nothing rather than the wrong words
        return ""
    start, end = grams[0][0], grams[0][0] + grams[0][1]
    for p, k in grams[1:]:
        if p > end:
            break
        end = max(end, p + k)
    passage = shown[spans[start][0] : spans[end - 1][1]]
    passage = " ".join(passage.split())
    return passage if len(passage) <= PASSAGE_CHARS else passage[: PASSAGE_CHARS - 1] + "\u2026"


def item_ngrams(item: Item, ngram: int, min_item_words: int) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """(distinct n-gram hashes of the item, the hashes of their first min(ngram, min_item_words) words, the
    n-gram lengths used): each piece (field) on its own, a piece of fewer than `ngram` words one n-gram of its
    length, pieces under `min_item_words` words nothing."""
    parts, prefixes, lengths = [], [], set()
    shortest = min(ngram, min_item_words)
    for piece in item.pieces:
        words = item_word_hashes(piece)
        if len(words) < min_item_words:
            continue
        k = min(ngram, len(words))
        grams = gram_hashes(words, k)
        parts.append(grams)
        prefixes.append(gram_hashes(words, shortest)[: len(grams)])
        lengths.add(k)
    if not parts:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64), lengths
    return np.unique(np.concatenate(parts)), np.concatenate(prefixes), lengths


def _prefix_bitmap(prefixes: list[np.ndarray], count: int) -> tuple[np.ndarray, int]:
    """(bitmap, shift): ~8 bits per n-gram, one bit per prefix hash (its top bits): ~7 % of page positions
    that begin no n-gram of the index still pass it."""
    bits = min(max((8 * count).bit_length(), 12), 36)
    shift = 64 - bits
    bitmap = np.zeros(1 << (bits - 6), dtype=np.uint64)
    for part in prefixes:
        at = part >> np.uint64(shift)
        np.bitwise_or.at(bitmap, (at >> np.uint64(6)).astype(np.int64), np.uint64(1) << (at & np.uint64(63)))
    return bitmap, shift


def _bucket_bits(n: int) -> int:
    """Bits of the bucket table: ~2-4 entries per bucket (a 4-byte offset per bucket)."""
    return min(max((n // 4).bit_length(), 4), 30)


def build_index(
    patterns: list[str],
    text_fields: list[str],
    *,
    ngram: int,
    min_item_words: int,
    min_matches: int,
    progress: Callable[[str], None] | None = None,
) -> tuple[DecontaminationIndex, list[SourceSummary]]:
    """The index of every item of the files `patterns` name, and what each file gave. Raises
    decontamination.sources.SourceError (one line naming the file) for a source that cannot be used."""
    paths = expand_sources(patterns)
    hash_parts: list[np.ndarray] = []
    prefix_parts: list[np.ndarray] = []
    item_parts: list[np.ndarray] = []
    item_source: list[int] = []
    item_index: list[int] = []
    item_counts: list[int] = []
    lengths: set[int] = set()
    summaries: list[SourceSummary] = []
    for s, path in enumerate(paths):
        sha256, items = read_items(path, text_fields)
        indexed = ngrams = 0
        for item in items:
            grams, prefixes, used = item_ngrams(item, ngram, min_item_words)
            if not len(grams):
                continue
            number = len(item_counts)
            hash_parts.append(grams)
            prefix_parts.append(prefixes)
            item_parts.append(np.full(len(grams), number, dtype=np.uint32))
            item_source.append(s)
            item_index.append(item.index)
            item_counts.append(len(grams))
            lengths |= used
            indexed += 1
            ngrams += len(grams)
        if not indexed:  # a file that can match nothing would make the run look checked against it
            raise SourceError(f"decontamination.sources: {path}: none of its {len(items):,} items has "
                              f"{min_item_words} words (decontamination.min_item_words) in a text field; it "
                              "would match nothing")
        summaries.append(SourceSummary(path, sha256, len(items), indexed, len(items) - indexed, ngrams))
        if progress is not None:
            progress(f"{path}: {len(items):,} items, {indexed:,} indexed, {ngrams:,} n-grams")
    hashes, items, offsets, shift = _sorted_entries(hash_parts, item_parts)
    prefix, prefix_shift = _prefix_bitmap(prefix_parts, len(hashes))
    index = DecontaminationIndex(
        hashes=hashes, items=items, offsets=offsets, shift=shift, lengths=np.array(sorted(lengths), dtype=np.int64),
        item_source=np.array(item_source, dtype=np.uint32), item_index=np.array(item_index, dtype=np.int64),
        item_ngrams=np.array(item_counts, dtype=np.uint32), prefix=prefix, prefix_len=min(ngram, min_item_words),
        prefix_shift=prefix_shift, sources=paths, min_matches=min_matches,
    )
    return index, summaries


def _sorted_entries(hash_parts: Iterable[np.ndarray], item_parts: Iterable[np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(hashes sorted, their items, the bucket table, its shift) of every item's n-grams."""
    hashes = np.concatenate(list(hash_parts) or [np.zeros(0, dtype=np.uint64)])
    items = np.concatenate(list(item_parts) or [np.zeros(0, dtype=np.uint32)])
    order = np.lexsort((items, hashes))  # by hash, then item: the lookup reads an n-gram's items in a row
    hashes, items = hashes[order], items[order]
    del order
    bits = _bucket_bits(len(hashes))
    shift = 64 - bits
    counts = np.bincount((hashes >> np.uint64(shift)).astype(np.int64), minlength=1 << bits)
    offsets = np.zeros((1 << bits) + 1, dtype=np.uint32)
    np.cumsum(counts, out=offsets[1:])
    return hashes, items, offsets, shift
