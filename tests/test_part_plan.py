"""The plan that cuts per-file pieces into the run's parts (outputs/part_plan.py) and the row-range reading the
part writer does (outputs/parquet_parts.py: read_row_range, rebatch); no Beam."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from outputs.parquet_parts import read_row_range, rebatch
from outputs.part_plan import Piece, RowRange, dense_index, part_name, piece_starts, row_ranges


def _plan(sizes_by_file: list[list[int]], target: int, arrival: list[int] | None = None) -> dict[int, list[RowRange]]:
    """Every piece's ranges grouped by raw part, as the GroupByKey gives them (in any order), then sorted."""
    pieces = [Piece(f, 0, f"p{f}", len(sizes), sum(sizes)) for f, sizes in enumerate(sizes_by_file)]
    order = arrival or list(range(len(pieces)))
    starts = piece_starts([pieces[i] for i in order])
    parts: dict[int, list[RowRange]] = {}
    for i in order:
        for raw, r in row_ranges(pieces[i], starts[(i, 0)], sizes_by_file[i], target):
            parts.setdefault(raw, []).append(r)
    return {raw: sorted(ranges) for raw, ranges in parts.items()}


def _docs(parts: dict[int, list[RowRange]], sizes_by_file: list[list[int]]) -> list[list[tuple[int, int]]]:
    """Each part's documents as (file, row), parts in raw order."""
    return [[(r.file, row) for r in parts[raw] for row in range(r.first, r.end)] for raw in sorted(parts)]


def test_every_document_once_in_order_and_parts_within_target_plus_minus_one_document():
    rng = random.Random(5)
    sizes = [[rng.randint(1, 900) for _ in range(rng.randint(0, 40))] for _ in range(30)]
    target = 2_000
    parts = _plan(sizes, target)
    docs = _docs(parts, sizes)
    assert [d for part in docs for d in part] == [(f, r) for f, s in enumerate(sizes) for r in range(len(s))]
    largest = max(max(s) for s in sizes if s)
    totals = [sum(sizes[f][r] for f, r in part) for part in docs]
    assert all(target - largest < t < target + largest for t in totals[:-1])
    assert 0 < totals[-1] < target + largest
    for ranges in parts.values():  # each range's measure is its rows' tokens
        assert all(r.measure == sum(sizes[r.file][r.first:r.end]) for r in ranges)
    # A part boundary: a document goes to floor(its global start / target).
    flat = [s for f in sizes for s in f]
    starts = np.cumsum([0, *flat[:-1]])
    assert [len(p) for p in docs] == np.bincount(starts // target)[np.bincount(starts // target) > 0].tolist()


def test_a_document_larger_than_the_target_is_a_part_of_its_own_and_numbers_stay_dense():
    sizes = [[10, 10], [5_000], [], [10, 10, 10]]  # the giant spans raw parts 0..5; the next doc starts in 5
    parts = _plan(sizes, 1_000)
    assert sorted(parts) == [0, 5]
    assert _docs(parts, sizes) == [[(0, 0), (0, 1), (1, 0)], [(3, 0), (3, 1), (3, 2)]]
    sizes = [[3_000], [3_000], [1]]
    parts = _plan(sizes, 1_000)
    assert sorted(parts) == [0, 3, 6] and _docs(parts, sizes) == [[(0, 0)], [(1, 0)], [(2, 0)]]
    raw = sorted(parts)
    assert [dense_index(raw, r) for r in raw] == [0, 1, 2]
    with pytest.raises(KeyError):
        dense_index(raw, 1)


def test_empty_files_and_an_empty_run():
    assert _plan([[], [], []], 100) == {}
    assert piece_starts([]) == {}
    assert _docs(_plan([[], [7], []], 100), []) == [[(1, 0)]]


def test_the_plan_does_not_depend_on_the_order_pieces_arrive_in():
    rng = random.Random(9)
    sizes = [[rng.randint(1, 300) for _ in range(rng.randint(0, 20))] for _ in range(25)]
    first = _plan(sizes, 777)
    for seed in range(5):
        arrival = list(range(len(sizes)))
        random.Random(seed).shuffle(arrival)
        assert _plan(sizes, 777, arrival) == first


def test_rows_as_the_measure_need_no_column_and_agree_with_unit_sizes():
    for start, rows, target in [(0, 10, 3), (7, 25, 5), (5, 0, 5), (4, 1, 5), (9, 11, 10), (0, 1_000, 1_000)]:
        piece = Piece(0, 0, "p", rows, rows)
        assert row_ranges(piece, start, None, target) == row_ranges(piece, start, [1] * rows, target)


def test_two_pieces_at_one_place_and_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="two pieces"):
        piece_starts([Piece(0, 0, "a", 1, 1), Piece(0, 0, "b", 1, 1)])
    with pytest.raises(ValueError, match="2 sizes for 3 rows"):
        row_ranges(Piece(0, 0, "a", 3, 3), 0, [1, 2], 10)
    with pytest.raises(ValueError, match="target"):
        row_ranges(Piece(0, 0, "a", 3, 3), 0, None, 0)


def test_part_names_sort_as_their_numbers_for_any_count():
    assert part_name(0, 1) == "part-00000" and part_name(99_999, 100_000) == "part-99999"
    names = [part_name(i, 100_001) for i in (0, 9, 10, 99_999, 100_000)]
    assert names == sorted(names) and names[0] == "part-000000" and names[-1] == "part-100000"


def test_row_ranges_are_read_a_row_group_at_a_time_and_rebatched_exactly(tmp_path):
    table = pa.table({"x": pa.array(range(103), pa.int64())})
    path = str(tmp_path / "p.parquet")
    pq.write_table(table, path, row_group_size=10)
    for first, end in [(0, 103), (5, 5), (7, 33), (30, 40), (99, 103)]:
        got = list(read_row_range(path, first, end))
        assert all(t.num_rows <= 10 for t in got)
        assert (pa.concat_tables(got).column("x").to_pylist() if got else []) == list(range(first, end))
    flat = [t for src in (read_row_range(path, 3, 50), read_row_range(path, 60, 61)) for t in src]
    out = list(rebatch(flat, 16))
    assert [t.num_rows for t in out] == [16, 16, 16]
    assert pa.concat_tables(out).column("x").to_pylist() == [*range(3, 50), 60]
