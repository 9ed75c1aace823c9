"""Write Parquet parts from an unordered stream of items: sorted by key, row group by row group, cut into parts.

Items arrive in whatever order the runner shuffled them. To give byte-identical files on every runner the
part is written sorted by doc id; to never hold a whole part in memory, items are buffered `spill_rows` at
a time, each buffer is sorted and spilled to a local Arrow IPC file, and the output row groups are cut from
a k-way merge of the (memory-mapped) spills. A part that fits one buffer skips the spill entirely.

The part is written under a temporary name and renamed into place, so a retried bundle never leaves a half
file behind, and its sha256 is computed while writing.

The per-file writer writes its pieces in _staging/ this way (pipelines/source_parts.py); the run's parts are cut
from them across input files, in input order, with read_row_range, rebatch and write_part (pipelines/recut.py,
since bdc7f72 and 3cfa022, 2026-12-07).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import operator
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

T = TypeVar("T")


@dataclass(frozen=True)
class PartInfo:
    """What the manifest records about one written part."""

    path: str
    rows: int
    bytes: int
    sha256: str
    tokens: int = 0


class HashingWriter:
    """File-like wrapper that hashes and counts what passes through to the underlying stream (a part here, a
    mixture's plan file in mixing/folder.py). With `close_raw=False` closing it leaves the stream open for the
    `with` block that opened it (pyarrow's ParquetWriter closes the sink it was given)."""

    def __init__(self, raw: Any, close_raw: bool = True) -> None:
        self._raw = raw
        self._close_raw = close_raw
        self._sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        data = bytes(data)
        self._sha.update(data)
        self.size += len(data)
        self._raw.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        if not self.closed:
            if self._close_raw:
                self._raw.close()
            self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _sorted_runs(
    items: Iterable[T], key: Callable[[T], str], to_table: Callable[[list[T]], pa.Table], spill_rows: int,
    spill_dir: str,
) -> tuple[list[pa.Table], int]:
    """Sort the stream in runs of spill_rows; return in-memory table (one run) or memory-mapped spills."""
    runs: list[pa.Table] = []
    buffer: list[T] = []
    spilled: list[str] = []
    total = 0

    def flush(to_disk: bool) -> None:
        buffer.sort(key=key)
        table = to_table(buffer)
        buffer.clear()
        if not to_disk:
            runs.append(table)
            return
        path = os.path.join(spill_dir, f"run-{len(spilled):05d}.arrow")
        with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        spilled.append(path)

    for item in items:
        buffer.append(item)
        total += 1
        if len(buffer) >= spill_rows:
            flush(to_disk=True)
    if buffer or not spilled:
        flush(to_disk=bool(spilled))
    for path in spilled:
        runs.append(ipc.open_file(pa.memory_map(path, "r")).read_all())
    return runs, total


def _merged_row_groups(runs: list[pa.Table], key_column: str, row_group_rows: int) -> Iterable[pa.Table]:
    """Row groups of `row_group_rows` rows in global key order, from individually sorted runs."""
    if len(runs) == 1:
        table = runs[0]
        for start in range(0, table.num_rows, row_group_rows):
            yield table.slice(start, row_group_rows)
        return

    def keyed(run_idx: int) -> Iterable[tuple[str, int, int]]:
        for row_idx, k in enumerate(runs[run_idx].column(key_column).to_pylist()):
            yield k, run_idx, row_idx

    picks: list[tuple[int, int]] = []

    def emit() -> pa.Table:
        """The picked rows in pick order: each run's rows taken in one call, then put in order. (A one-row
        slice per pick made ~40,000 Arrow arrays per 2,000-row ledger row group: ~30 MiB and ~0.15 s.)"""
        run_of = np.array([run for run, _ in picks], dtype=np.int64)
        row_of = np.array([row for _, row in picks], dtype=np.int64)
        picks.clear()
        taken: list[pa.Table] = []
        at = np.empty(len(run_of), dtype=np.int64)  # where each pick lands among the taken rows
        done = 0
        for run in np.unique(run_of):
            mine = np.flatnonzero(run_of == run)
            at[mine] = np.arange(done, done + len(mine))
            taken.append(runs[run].take(row_of[mine]))
            done += len(mine)
        return pa.concat_tables(taken).combine_chunks().take(at)

    for _, run_idx, row_idx in heapq.merge(*(keyed(i) for i in range(len(runs)))):
        picks.append((run_idx, row_idx))
        if len(picks) >= row_group_rows:
            yield emit()
    if picks:
        yield emit()


def write_sorted_parts(
    items: Iterable[T],
    *,
    path_of: Callable[[int, int], str],
    max_rows: int,
    schema: pa.Schema,
    key: Callable[[T], str],
    to_table: Callable[[list[T]], pa.Table],
    row_group_rows: int,
    zstd_level: int,
    spill_rows: int = 10_000,
    count_tokens: Callable[[pa.Table], int] | None = None,
) -> list[PartInfo]:
    """Write `items` sorted by `key` into parts of at most `max_rows` rows, named path_of(k, parts) for k = 0, 1,
    ... of `parts` (a first part even when there are no items): every item is read before the first part is
    named, so a name can be as wide as the last part's number needs. Items are buffered `spill_rows` at a time,
    each buffer sorted and spilled, and the parts' row groups cut from a k-way merge of the spills."""
    spill_dir = tempfile.mkdtemp(prefix="tokenmill-spill-")
    try:
        runs, total = _sorted_runs(items, key, to_table, spill_rows, spill_dir)
        parts = max(1, -(-total // max_rows))
        groups = _cut(_merged_row_groups(runs, schema.names[0], row_group_rows), max_rows)
        # Row groups stream into the part being written: groupby hands each part's groups over lazily.
        infos = [
            write_part((group for _, group in part), path_of(index, parts), schema, row_group_rows, zstd_level,
                       count_tokens)
            for index, part in itertools.groupby(groups, key=operator.itemgetter(0))
        ]
        return infos or [write_part([], path_of(0, 1), schema, row_group_rows, zstd_level, count_tokens)]
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)


def _cut(groups: Iterable[pa.Table], max_rows: int) -> Iterator[tuple[int, pa.Table]]:
    """(part index, row group) with groups sliced where a part reaches `max_rows` rows."""
    rows = 0
    for group in groups:
        while group.num_rows:
            take = min(group.num_rows, max_rows - rows % max_rows)
            yield rows // max_rows, group.slice(0, take)
            group = group.slice(take)
            rows += take


# Levels Arrow's Parquet writer takes per internal batch. It checks whether the page (data page size, 1 MiB)
# or the dictionary (its page size limit) is full only after a batch, and counts batches from the start of
# each column chunk it is handed (each chunk of a ChunkedArray is one call), so with the default of 1,024 a
# page ended at a place that depended on how the row group was chunked: a shard row group handed over in
# pieces (pipelines/source_parts.PIECE_TOKENS) got other token pages than the same rows handed over whole, on
# pyarrow 16.1 for the 600-document test and on 25.0 too with shorter documents or smaller pieces. With one
# level per batch the check runs after every level and the pages depend on the rows alone. It costs ~0.14 s
# of CPU per 2.25 M-token row group (0.11 -> 0.25 s, one measurement); the memory is that of the call.
WRITE_BATCH_LEVELS = 1


# A part is written under `<path>.tmp-<pid>` and renamed into place (write_part).
TMP_INFIX = ".tmp-"


def write_part(
    tables: Iterable[pa.Table], path: str, schema: pa.Schema, row_group_rows: int, zstd_level: int,
    count_tokens: Callable[[pa.Table], int] | None,
) -> PartInfo:
    """Write row groups, already in key order, to `path` under a temporary name, then rename; sha256 and size
    while writing. Tables stream: only the row group being written is held. The pages are the same however
    a table's columns are chunked (WRITE_BATCH_LEVELS), so a caller may hand a column over in pieces."""
    from storage.files import filesystems

    FileSystems = filesystems()  # noqa: N806 - the class, as Beam names it
    tmp_path = f"{path}{TMP_INFIX}{os.getpid()}"
    try:
        sink = HashingWriter(FileSystems.create(tmp_path))
        tokens = rows = 0
        writer = pq.ParquetWriter(sink, schema, compression="zstd", compression_level=zstd_level,
                                  write_statistics=True, write_batch_size=WRITE_BATCH_LEVELS)
        for group in tables:
            group = group.cast(schema)
            rows += group.num_rows
            if count_tokens is not None:
                tokens += count_tokens(group)
            writer.write_table(group, row_group_size=row_group_rows)
        writer.close()
        sink.close()
        if FileSystems.exists(path):
            FileSystems.delete([path])
        FileSystems.rename([tmp_path], [path])
        return PartInfo(path=path, rows=rows, bytes=sink.size, sha256=sink.hexdigest, tokens=tokens)
    finally:
        if FileSystems.exists(tmp_path):
            FileSystems.delete([tmp_path])
        # Arrow's allocator keeps what a written part used for its next allocations instead of handing it
        # back. With mimalloc (the pyarrow wheels' default) a worker writing one input file's parts after
        # another kept 27-38 MiB more after each such bundle at 25,000 pages (1-19 MiB with this); a run picks
        # glibc instead (driver.runner.tune_malloc), where this trims the heap. ~1 ms per part.
        pa.default_memory_pool().release_unused()


def remove_partial_parts(output_root: str, folders: Iterable[str]) -> list[str]:
    """Delete what a writer killed mid-part left (`<part>.tmp-<pid>`: its `finally` never ran) in the run's part
    folders; returns the paths removed. Run by the finalize step, when every part has been written: a retried
    bundle wrote its parts again under their own names, so such a file is never one the manifest lists, and
    the output folder is left as a run that was never retried leaves it."""
    from storage.files import filesystems

    FileSystems = filesystems()  # noqa: N806 - the class, as Beam names it
    patterns = [f"{output_root.rstrip('/')}/{folder}/*{TMP_INFIX}*" for folder in folders]
    stray = sorted(m.path for result in FileSystems.match(patterns) for m in result.metadata_list)
    if stray:
        FileSystems.delete(stray)
    return stray


def write_sorted_part(items: Iterable[T], *, path: str, **kwargs: Any) -> PartInfo:
    """Write `items` to `path` (any Beam FileSystems path) as one zstd Parquet part sorted by `key`
    (write_sorted_parts' other arguments)."""
    return write_sorted_parts(items, path_of=lambda _k, _n: path, max_rows=sys.maxsize, **kwargs)[0]


def read_row_range(path: str, first: int, end: int, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Rows [first, end) of the Parquet file at `path` (any store: storage.files.open_read, whose open a
    transient store error retries, as every other read of a run's files), one of its row groups at a
    time, so what is held is one row group however large the range."""
    from storage.files import open_read

    with open_read(path) as f:
        parquet = pq.ParquetFile(f)
        at = 0
        for group in range(parquet.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if at < end and at + rows > first:
                table = parquet.read_row_group(group, columns=columns)
                lo = max(first, at)
                yield table.slice(lo - at, min(end, at + rows) - lo)
            at += rows
            if at >= end:
                break


def read_column(path: str, column: str) -> pa.Array:
    """One column of the Parquet file at `path`, whole (a piece's token_count column: one int a row)."""
    from storage.files import open_read

    with open_read(path) as f:
        return pq.ParquetFile(f).read(columns=[column]).column(column).combine_chunks()


def rebatch(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of `tables`, in order, as tables of exactly `rows` rows (the last may be shorter): a part's row
    groups start every `rows` rows of the part, however its rows were read."""
    held: list[pa.Table] = []
    count = 0
    for table in tables:
        while table.num_rows:
            take = min(table.num_rows, rows - count)
            held.append(table.slice(0, take))
            count += take
            table = table.slice(take)
            if count == rows:
                yield pa.concat_tables(held)
                held, count = [], 0
    if count:
        yield pa.concat_tables(held)
