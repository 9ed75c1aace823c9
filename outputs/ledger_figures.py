"""The ledger's figures for `tokenmill report`, read a batch at a time: what one process holds does not grow
with the ledger's rows (issue 35; a snapshot's ledger has ~3 B rows).

The report used to read the whole ledger, text column included, into Python dicts (~0.75 KB a row before
the text). It needs counts of dropped rows by (stage, reason), three histograms and a seeded sample of a
few rows per top reason; each is a fold over the rows, so the ledger is read three times, each time one
batch of `BATCH_ROWS` rows at a time:

1. drop counts by reason; the range of each histogram's values (np.histogram's automatic range);
2. each histogram's counts over that range, summed batch by batch (np.histogram with that range cuts the
   same bin edges and puts every value in the same bin as one call over all values: the figures are equal,
   `tests/test_report_streaming.py`); the `samples` lowest sample ranks of each top reason's rows;
3. the sampled rows themselves, whole, from the row groups that hold them.

The results equal `outputs/reading.py: sample_rows` and the histograms of the earlier report to the byte
(compared on a run's ledger and on synthetic ledgers with ties and nulls)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from outputs.reading import _sample_rank
from storage.files import open_read

# Rows per batch read from a ledger part. What a batch costs is its columns' bytes plus the sampled texts
# in pass 2. The report of bench/report_memory.py's 10^6-row ledger (2026-12-07, one process): 2,048 rows
# 4.38 s / 96.7 MB peak RSS, 8,192 rows 2.81 s / 100.1 MB, 65,536 rows 2.21 s / 132.2 MB.
BATCH_ROWS = 8_192

QUALITY = "quality_score"


@dataclass
class Histogram:
    """np.histogram(all values, bins) over values seen a batch at a time: `see` every batch (the range), then
    `count` every batch again. `log` bins log10 of max(value, 1), as the report's token histogram does."""

    bins: int = 20
    log: bool = False
    seen: int = 0
    low: np.generic | None = None
    high: np.generic | None = None
    counts: np.ndarray | None = None
    edges: np.ndarray | None = None

    def _data(self, values: pa.Array) -> np.ndarray:
        data = values.drop_null().to_numpy(zero_copy_only=False)
        if data.dtype.kind == "f":
            data = data[data == data]  # NaN is no value, as None is
        return np.log10(np.maximum(data, 1)) if self.log else data

    def see(self, values: pa.Array) -> None:
        data = self._data(values)
        if data.size:
            self.seen += data.size
            low, high = data.min(), data.max()
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)

    def count(self, values: pa.Array) -> None:
        data = self._data(values)
        if not data.size:
            return
        counts, edges = np.histogram(data, bins=self.bins, range=(self.low, self.high))
        self.counts = counts if self.counts is None else self.counts + counts
        self.edges = edges

    def result(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(counts, edges), or None without a value."""
        return None if self.counts is None else (self.counts, self.edges)


@dataclass(order=True)
class _Pick:
    rank: int
    position: tuple[int, int]  # (ledger part, row in the part): the ledger's order
    doc_id: str = field(compare=False)


class _Lowest:
    """The `n` rows of lowest (sample rank, position) seen, and how many were seen."""

    def __init__(self, n: int) -> None:
        self.n, self.seen, self._heap = n, 0, []  # a max-heap by (rank, position), as negated tuples

    def offer(self, rank: int, position: tuple[int, int], doc_id: str) -> None:
        self.seen += 1
        item = (-rank, (-position[0], -position[1]), doc_id)
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def picks(self) -> list[_Pick]:
        """sample_rows' order: the ledger's when all rows are picked, else doc id order."""
        picks = sorted(_Pick(-r, (-p[0], -p[1]), d) for r, p, d in self._heap)
        if self.seen <= self.n:
            return sorted(picks, key=lambda p: p.position)
        return sorted(picks, key=lambda p: p.doc_id)  # stable: equal ids stay in rank order, as sample_rows


@dataclass
class LedgerFigures:
    """What the report shows from the ledger."""

    dropped_by_reason: dict[str, int]  # "stage: reason" -> rows, in the order each first appears
    language: Histogram
    quality: Histogram
    quality_entries: int  # `quality_score` entries in `scores`, null values included (the chart is shown if any)
    tokens: Histogram
    samples: dict[str, list[dict]]  # each top reason's sampled rows, whole


Batches = Callable[[list[str]], Iterator[tuple[int, int, pa.RecordBatch]]]


def part_batches(root: str, entries: list[dict]) -> Batches:
    """A function giving the ledger's rows in manifest order as (part index, first row's index in the part,
    batch) for the columns asked, one batch in memory at a time."""
    def batches(columns: list[str]) -> Iterator[tuple[int, int, pa.RecordBatch]]:
        for part, entry in enumerate(entries):
            with open_read(f"{root.rstrip('/')}/{entry['path']}") as f:
                start = 0
                for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=columns):
                    yield part, start, batch
                    start += batch.num_rows
    return batches


def _dropped_keys(batch: pa.RecordBatch) -> pa.Array:
    """f"{stage}: {reason}" of each row not kept (a null kept counts as not kept, a null name as 'None')."""
    dropped = pc.fill_null(pc.invert(batch.column("kept")), True)
    stage = pc.fill_null(pc.filter(batch.column("stage"), dropped), "None")
    reason = pc.fill_null(pc.filter(batch.column("reason"), dropped), "None")
    return pc.binary_join_element_wise(stage, reason, ": ")


def _quality_values(scores: pa.Array) -> pa.Array:
    entries = pc.list_flatten(scores)
    return pc.filter(pc.struct_field(entries, "value"), pc.equal(pc.struct_field(entries, "name"), QUALITY))


def ledger_figures(batches: Batches, samples_per_reason: int, seed: int, top: int = 15,
                   read_rows: Callable[[int, list[int]], list[dict]] | None = None) -> LedgerFigures:
    """The report's ledger figures from `batches` (part_batches); `read_rows(part, rows)` gives those rows of a
    part, whole (`part_rows`). `top` reasons get samples."""
    dropped: dict[str, int] = {}
    language, quality, tokens = Histogram(), Histogram(), Histogram(log=True)
    quality_entries = 0

    def kept_tokens(batch: pa.RecordBatch) -> pa.Array:
        return pc.filter(batch.column("token_count"), batch.column("kept"))  # a null kept is not kept

    # Pass 1: drop counts by reason, each histogram's range.
    for _part, _start, batch in batches(["kept", "stage", "reason", "language_score", "token_count", "scores"]):
        counts = pc.value_counts(_dropped_keys(batch))
        keys, numbers = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        new = [k for k in keys if k not in dropped]
        if new:  # keys new to the count enter in the order they first appear, as Counter(rows) has them
            batch_keys = _dropped_keys(batch)
            new.sort(key=lambda k: pc.index(batch_keys, k).as_py())
            for k in new:
                dropped[k] = 0
        for k, n in zip(keys, numbers, strict=True):
            dropped[k] += n
        language.see(batch.column("language_score"))
        values = _quality_values(batch.column("scores"))
        quality_entries += len(values)
        quality.see(values)
        tokens.see(kept_tokens(batch))
    # Counter.most_common's order: by count, ties in first-seen order.
    top_keys = [k for k, _n in sorted(dropped.items(), key=lambda kv: -kv[1])[:top]]
    pairs = [tuple(k.split(": ", 1)) for k in top_keys]
    with_text = {k: _Lowest(samples_per_reason) for k in top_keys}
    every = {k: _Lowest(samples_per_reason) for k in top_keys}

    # Pass 2: histogram counts; the lowest sample ranks of each top reason's rows (all of them, and those whose
    # text was sampled).
    for part, start, batch in batches(["doc_id", "kept", "stage", "reason", "language_score", "token_count",
                                       "scores", "text"]):
        language.count(batch.column("language_score"))
        quality.count(_quality_values(batch.column("scores")))
        tokens.count(kept_tokens(batch))
        stage, reason = batch.column("stage"), batch.column("reason")
        for key, (s, r) in zip(top_keys, pairs, strict=True):
            match = pc.fill_null(pc.and_(pc.equal(stage, s), pc.equal(reason, r)), False)
            rows = pc.indices_nonzero(match)
            if not len(rows):
                continue
            ids = pc.take(batch.column("doc_id"), rows).to_pylist()
            has_text = pc.is_valid(pc.take(batch.column("text"), rows)).to_pylist()
            for i, doc_id, text in zip(rows.to_pylist(), ids, has_text, strict=True):
                rank, position = _sample_rank(seed, doc_id), (part, start + i)
                every[key].offer(rank, position, doc_id)
                if text:
                    with_text[key].offer(rank, position, doc_id)

    # Pass 3: the picked rows, whole.
    chosen = {k: (with_text[k] if with_text[k].seen else every[k]).picks() for k in top_keys}
    wanted: dict[int, set[int]] = {}
    for picks in chosen.values():
        for p in picks:
            wanted.setdefault(p.position[0], set()).add(p.position[1])
    rows_at: dict[tuple[int, int], dict] = {}
    for part, rows in sorted(wanted.items()):
        ordered = sorted(rows)
        for row, record in zip(ordered, read_rows(part, ordered), strict=True):
            rows_at[(part, row)] = record
    samples = {k: [rows_at[p.position] for p in picks] for k, picks in chosen.items()}
    return LedgerFigures(dropped, language, quality, quality_entries, tokens, samples)


def part_rows(root: str, entries: list[dict]) -> Callable[[int, list[int]], list[dict]]:
    """A function giving rows `rows` (sorted) of ledger part `part`, whole, reading only the row groups that
    hold them."""
    def read(part: int, rows: list[int]) -> list[dict]:
        with open_read(f"{root.rstrip('/')}/{entries[part]['path']}") as f:
            parquet = pq.ParquetFile(f)
            meta, out, first, group, table = parquet.metadata, [], 0, 0, None
            for row in rows:
                while row >= first + meta.row_group(group).num_rows:
                    first += meta.row_group(group).num_rows
                    group, table = group + 1, None
                if table is None:  # a ledger's row groups are `output.row_group_rows` (2,000) rows
                    table = parquet.read_row_group(group)
                out.append(table.slice(row - first, 1).to_pylist()[0])
            return out
    return read
