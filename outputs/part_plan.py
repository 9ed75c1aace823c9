"""The plan that re-cuts per-input-file pieces into the run's global parts, cut by a measure (no Beam).

Why: cut per input file, a Common Crawl snapshot's ~90,000 WARC files (~7 M kept tokens each) became ~90,000
shards far below what training readers and object stores like (issue 35). The per-file writer now writes
each file's rows to staging as pieces (pipelines/source_parts.py), and the run's parts are cut across them:

- the pieces, in input order ((file index, chunk) order, never arrival order), are laid end to end; a piece's
  global start is the sum of the measures (tokens for shards, rows for the ledger) of the pieces before it
  (`piece_starts`: one small record per piece, so what it holds grows with the input files only);
- a row whose global start is s belongs to raw part floor(s / target) (`row_ranges`): a part holds target
  ± one row's measure, a document is never split, and a row larger than target is a part of its own;
- raw parts that no row starts in (after a row larger than target) are skipped: the parts that hold rows are
  numbered densely in raw order (`dense_index`) and named so that names sort as numbers (`part_name`).

Everything is a function of the pieces' (file, chunk, measures), so any runner, worker count or retry gives
the same parts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, order=True)
class Piece:
    """One per-file piece waiting in staging: its place in the run's order (file index, chunk), its path, its
    rows and its measure (tokens for shards, rows for the ledger and the other row-cut parts)."""

    file: int
    chunk: int
    path: str
    rows: int
    measure: int


@dataclass(frozen=True, order=True)
class RowRange:
    """Rows [first, end) of the piece at (file, chunk) that go to one part, with their measure; ordered as
    they are written (input order, then row order)."""

    file: int
    chunk: int
    first: int
    end: int
    path: str
    measure: int


def piece_starts(pieces: Iterable[Piece]) -> dict[tuple[int, int], int]:
    """{(file, chunk): the piece's global start}: prefix sums of the measures in (file, chunk) order, whatever
    order the pieces arrive in. Two pieces at one (file, chunk) are a bug upstream: refused."""
    starts: dict[tuple[int, int], int] = {}
    total = 0
    for piece in sorted(pieces):
        key = (piece.file, piece.chunk)
        if key in starts:
            raise ValueError(f"two pieces at file {piece.file} chunk {piece.chunk}: {piece.path}")
        starts[key] = total
        total += piece.measure
    return starts


def row_ranges(piece: Piece, start: int, sizes: Sequence[int] | np.ndarray | None, target: int
               ) -> list[tuple[int, RowRange]]:
    """(raw part, RowRange) for each run of the piece's rows that share a raw part: a row whose global start is
    s goes to floor(s / target). `sizes`: each row's measure (a shard piece's token_count column), or None when
    the measure is rows (each row 1, no column read). `start`: the piece's global start (piece_starts)."""
    if target <= 0:
        raise ValueError(f"target must be > 0, got {target}")
    if sizes is None:
        return _ranges_of_unit_rows(piece, start, target)
    measure = np.asarray(sizes, dtype=np.int64)
    if len(measure) != piece.rows:
        raise ValueError(f"{piece.path}: {len(measure)} sizes for {piece.rows} rows")
    if not len(measure):
        return []
    ends = np.cumsum(measure)
    raw = (start + ends - measure) // target  # each row's part, from its global start
    cuts = np.flatnonzero(np.diff(raw)) + 1
    bounds = [0, *cuts.tolist(), len(measure)]
    return [(int(raw[a]), RowRange(piece.file, piece.chunk, a, b, piece.path, int(ends[b - 1] - ends[a] + measure[a])))
            for a, b in zip(bounds, bounds[1:], strict=False)]


def _ranges_of_unit_rows(piece: Piece, start: int, target: int) -> list[tuple[int, RowRange]]:
    """row_ranges when every row measures 1: the cuts are arithmetic, the piece need not be read."""
    out = []
    first = 0
    while first < piece.rows:
        part = (start + first) // target
        end = min(piece.rows, (part + 1) * target - start)
        out.append((part, RowRange(piece.file, piece.chunk, first, end, piece.path, end - first)))
        first = end
    return out


def dense_index(raw_parts: Sequence[int], raw: int) -> int:
    """The part's number among the parts that hold rows (`raw_parts` sorted, distinct)."""
    at = bisect_left(raw_parts, raw)
    if at == len(raw_parts) or raw_parts[at] != raw:
        raise KeyError(f"raw part {raw} is not among the run's parts")
    return at


def part_name(index: int, count: int) -> str:
    """`part-<index>`, zero-padded to the digits of the largest index (at least 5), so names sort as numbers for
    any count: with 100,001 parts the first is part-000000, as wide as part-100000."""
    return f"part-{index:0{max(5, len(str(max(count, 1) - 1)))}d}"
