"""Re-cut per-file pieces into the run's global parts (the plan: outputs/part_plan.py), thin Beam wiring.

    pieces (one small Piece per per-file part in _staging/) ─ToList─▶ the plan: each piece's global start
    each piece ─(its measure column read, or its row count)─▶ (raw part, RowRange) per part it touches
    ─GroupByKey on the raw part─▶ a part's few ranges ─WriteCutPart─▶ <folder>/part-<n>.parquet (PartInfo)

Shards are cut by tokens (the pieces' token_count column), ledger/, dedup_index/ and scored/ by rows: all four
follow one layout, part-<n> in input order, so a part's number says where its rows stand in the run.

What one process holds: the plan (one record per piece, as many as input files, like the run's input list),
the sorted raw part numbers (one int per output part), one piece's measure column, and one row group while a
part is written. The staged pieces are removed with _staging/ by the finalize step, after the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa

from outputs.parquet_parts import PartInfo, read_column, read_row_range, rebatch, write_part
from outputs.part_plan import Piece, RowRange, dense_index, part_name, piece_starts, row_ranges
from pipelines.source_parts import INDEX_PARTS, LEDGER_PARTS, SCORED_PARTS, SHARD_PARTS, count_tokens
from pipelines.worker import apply_worker_settings
from schemas.recipe import Recipe
from schemas.tables import DEDUP_INDEX_SCHEMA, LEDGER_SCHEMA, SCORED_SCHEMA, shard_schema


def _ranges(piece: Piece, starts: dict[tuple[int, int], int], target: int, column: str | None
            ) -> Iterator[tuple[int, RowRange]]:
    if not piece.rows:
        return
    sizes = None if column is None else read_column(piece.path, column).to_numpy(zero_copy_only=False)
    yield from row_ranges(piece, starts[(piece.file, piece.chunk)], sizes, target)


class _WriteCutPart(beam.DoFn):
    """One part from its ranges, read in input order, in row groups of `row_group_rows` counted from the part's
    first row; written under a temporary name and renamed (write_part), so a retry writes the same bytes."""

    def __init__(self, output_root: str, folder: str, schema: pa.Schema, row_group_rows: int, zstd_level: int,
                 count_tokens: Callable[[pa.Table], int] | None) -> None:
        self.output_root = output_root.rstrip("/")
        self.folder = folder
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.zstd_level = zstd_level
        self.count_tokens = count_tokens

    def setup(self) -> None:
        apply_worker_settings()

    def process(self, element: tuple[int, Any], raw_parts: list[int]) -> Iterator[PartInfo]:
        raw, ranges = element
        ranges = sorted(ranges)  # (file, chunk, first): input order, whatever order the shuffle gave
        path = f"{self.output_root}/{self.folder}/{part_name(dense_index(raw_parts, raw), len(raw_parts))}.parquet"

        def tables() -> Iterator[pa.Table]:
            for r in ranges:
                yield from read_row_range(r.path, r.first, r.end)

        yield write_part(rebatch(tables(), self.row_group_rows), path, self.schema, self.row_group_rows,
                         self.zstd_level, self.count_tokens)


class CutParts(beam.PTransform):
    """Pieces -> PartInfos of `<output>/<folder>/part-<n>.parquet`, each holding `target` ± one row's measure,
    measured by `column` (a piece's int column, e.g. token_count) or by rows (column None)."""

    def __init__(self, output_root: str, folder: str, *, schema: pa.Schema, target: int, column: str | None,
                 row_group_rows: int, zstd_level: int, count_tokens: Callable[[pa.Table], int] | None = None) -> None:
        super().__init__()
        self.output_root = output_root
        self.folder = folder
        self.schema = schema
        self.target = target
        self.column = column
        self.row_group_rows = row_group_rows
        self.zstd_level = zstd_level
        self.count_tokens = count_tokens

    def expand(self, pieces):
        starts = (
            pieces
            | "GatherPieces" >> beam.combiners.ToList()
            | "PieceStarts" >> beam.Map(piece_starts)
        )
        grouped = (
            pieces
            | "RowRanges" >> beam.FlatMap(_ranges, beam.pvalue.AsSingleton(starts), self.target, self.column)
            | "GroupByPart" >> beam.GroupByKey()
        )
        raw_parts = (
            grouped
            | "RawPart" >> beam.Keys()
            | "GatherParts" >> beam.combiners.ToList()
            | "SortParts" >> beam.Map(sorted)
        )
        return grouped | "WriteCutPart" >> beam.ParDo(
            _WriteCutPart(self.output_root, self.folder, self.schema, self.row_group_rows, self.zstd_level,
                          self.count_tokens),
            beam.pvalue.AsSingleton(raw_parts),
        )


def cut_pieces(written: Any, recipe: Recipe, output_root: str, columns: list[str]) -> dict[str, Any]:
    """{tag: PartInfos} of the four kinds of pieces WriteSourceParts stages, each cut across input files in input
    order (input file, then doc id): shards/ every `output.shard_tokens` tokens (± one document's); ledger/,
    dedup_index/ and scored/ every `output.ledger_rows_per_part` rows."""
    out = recipe.output
    common = dict(row_group_rows=out.row_group_rows, zstd_level=out.zstd_level)
    rows = dict(target=out.ledger_rows_per_part, column=None, **common)
    return {
        SHARD_PARTS: written[SHARD_PARTS] | "CutShards" >> CutParts(
            output_root, "shards", schema=shard_schema(columns), target=out.shard_tokens, column="token_count",
            count_tokens=count_tokens, **common),
        LEDGER_PARTS: written[LEDGER_PARTS] | "CutLedger" >> CutParts(
            output_root, "ledger", schema=LEDGER_SCHEMA, **rows),
        INDEX_PARTS: written[INDEX_PARTS] | "CutDedupIndex" >> CutParts(
            output_root, "dedup_index", schema=DEDUP_INDEX_SCHEMA, **rows),
        SCORED_PARTS: written[SCORED_PARTS] | "CutScored" >> CutParts(
            output_root, "scored", schema=SCORED_SCHEMA, **rows),
    }
