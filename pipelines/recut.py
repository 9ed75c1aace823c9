"""Re-cut per-file pieces into the run's global parts (the plan: outputs/part_plan.py), thin Beam wiring.

    (kind, Piece) for each per-file piece in _staging/ ─ToList─▶ the plan: each piece's global start, per kind
    each piece ─(its measure column read, or its row count)─▶ ((kind, raw part), RowRange) per part it touches
    ─GroupByKey─▶ a part's few ranges ─WriteCutPart─▶ <folder>/part-<n>.parquet (PartInfo, tagged by kind)

Shards are cut by tokens (the pieces' token_count column), ledger/, dedup_index/ and scored/ by rows: all four
follow one layout, part-<n> in input order, so a part's number says where its rows stand in the run. The four
kinds share one pass (one plan, one GroupByKey, one writer step) rather than a pass each, which kept the job
graph within the project's 1 MiB goal with room to spare: `python bench/graph_size.py --files 10 --config
fineweb` printed 809,563 bytes at bd2d4b3 (shards per input file), 994,078 with a pass per kind and 866,542
with one pass (2026-12-07).

What one process holds: the plan (one record per piece, as many as input files, like the run's input list),
the sorted raw part numbers (one int per output part), one piece's measure column, a part's (piece, rows)
ranges, and one row group while a part is written. The staged pieces are removed with _staging/ by the
finalize step, after the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa

from outputs.parquet_parts import read_column, read_row_range, rebatch, write_part
from outputs.part_plan import Piece, RowRange, dense_index, part_name, piece_starts, row_ranges
from pipelines.source_parts import INDEX_PARTS, LEDGER_PARTS, SCORED_PARTS, SHARD_PARTS, count_tokens
from pipelines.worker import apply_worker_settings
from schemas.recipe import Recipe
from schemas.tables import DEDUP_INDEX_SCHEMA, LEDGER_SCHEMA, SCORED_SCHEMA, shard_schema


@dataclass(frozen=True)
class PartSpec:
    """How one kind of piece is cut: into `folder`/part-<n>.parquet of `schema`, every `target` of the measure
    (`column`, an int column of the piece, or rows when None)."""

    folder: str
    schema: pa.Schema
    target: int
    column: str | None
    count_tokens: Callable[[pa.Table], int] | None = None


def _plan(tagged: list[tuple[str, Piece]]) -> dict[str, dict[tuple[int, int], int]]:
    """{kind: {(file, chunk): global start}} (outputs/part_plan.piece_starts per kind)."""
    kinds = sorted({kind for kind, _ in tagged})
    return {kind: piece_starts(p for k, p in tagged if k == kind) for kind in kinds}


def _ranges(element: tuple[str, Piece], starts: dict[str, dict[tuple[int, int], int]], specs: dict[str, PartSpec]
            ) -> Iterator[tuple[tuple[str, int], RowRange]]:
    kind, piece = element
    if not piece.rows:
        return
    spec = specs[kind]
    sizes = None if spec.column is None else read_column(piece.path, spec.column).to_numpy(zero_copy_only=False)
    for raw, rows in row_ranges(piece, starts[kind][(piece.file, piece.chunk)], sizes, spec.target):
        yield (kind, raw), rows


def _raw_parts(keys: list[tuple[str, int]]) -> dict[str, list[int]]:
    """{kind: its raw part numbers, sorted}: what numbers the parts densely (outputs/part_plan.dense_index)."""
    out: dict[str, list[int]] = {}
    for kind, raw in keys:
        out.setdefault(kind, []).append(raw)
    return {kind: sorted(raws) for kind, raws in out.items()}


class _WriteCutPart(beam.DoFn):
    """One part from its ranges, read in input order, in row groups of `row_group_rows` counted from the part's
    first row; written under a temporary name and renamed (write_part), so a retry writes the same bytes."""

    def __init__(self, output_root: str, specs: dict[str, PartSpec], row_group_rows: int, zstd_level: int) -> None:
        self.output_root = output_root.rstrip("/")
        self.specs = specs
        self.row_group_rows = row_group_rows
        self.zstd_level = zstd_level

    def setup(self) -> None:
        apply_worker_settings()

    def process(self, element: tuple[tuple[str, int], Any], raw_parts: dict[str, list[int]]) -> Iterator:
        (kind, raw), ranges = element
        spec = self.specs[kind]
        ranges = sorted(ranges)  # (file, chunk, first): input order, whatever order the shuffle gave
        number = dense_index(raw_parts[kind], raw)
        path = f"{self.output_root}/{spec.folder}/{part_name(number, len(raw_parts[kind]))}.parquet"

        def tables() -> Iterator[pa.Table]:
            for r in ranges:
                yield from read_row_range(r.path, r.first, r.end)

        info = write_part(rebatch(tables(), self.row_group_rows), path, spec.schema, self.row_group_rows,
                          self.zstd_level, spec.count_tokens)
        yield beam.pvalue.TaggedOutput(kind, info)


class CutParts(beam.PTransform):
    """(kind, Piece)s -> PartInfos of `<output>/<spec.folder>/part-<n>.parquet` on output `kind`, each part
    holding `spec.target` ± one row's measure."""

    def __init__(self, output_root: str, specs: dict[str, PartSpec], *, row_group_rows: int, zstd_level: int
                 ) -> None:
        super().__init__()
        self.output_root = output_root
        self.specs = specs
        self.row_group_rows = row_group_rows
        self.zstd_level = zstd_level

    def expand(self, tagged):
        starts = (
            tagged
            | "GatherPieces" >> beam.combiners.ToList()
            | "PieceStarts" >> beam.Map(_plan)
        )
        grouped = (
            tagged
            | "RowRanges" >> beam.FlatMap(_ranges, beam.pvalue.AsSingleton(starts), self.specs)
            | "GroupByPart" >> beam.GroupByKey()
        )
        raw_parts = (
            grouped
            | "RawPart" >> beam.Keys()
            | "GatherParts" >> beam.combiners.ToList()
            | "SortParts" >> beam.Map(_raw_parts)
        )
        return grouped | "WriteCutPart" >> beam.ParDo(
            _WriteCutPart(self.output_root, self.specs, self.row_group_rows, self.zstd_level),
            beam.pvalue.AsSingleton(raw_parts),
        ).with_outputs(*sorted(self.specs))


def cut_pieces(written: Any, recipe: Recipe, output_root: str, columns: list[str]) -> Any:
    """PartInfos by tag (SHARD_PARTS, LEDGER_PARTS, INDEX_PARTS, SCORED_PARTS) of the four kinds of pieces
    WriteSourceParts stages, each cut across input files in input order (input file, then doc id): shards/
    every `output.shard_tokens` tokens (± one document's); ledger/, dedup_index/ and scored/ every
    `output.ledger_rows_per_part` rows."""
    out = recipe.output
    rows = out.ledger_rows_per_part
    specs = {
        SHARD_PARTS: PartSpec("shards", shard_schema(columns), out.shard_tokens, "token_count", count_tokens),
        LEDGER_PARTS: PartSpec("ledger", LEDGER_SCHEMA, rows, None),
        INDEX_PARTS: PartSpec("dedup_index", DEDUP_INDEX_SCHEMA, rows, None),
        SCORED_PARTS: PartSpec("scored", SCORED_SCHEMA, rows, None),
    }
    tagged = [written[tag] | f"KindOf{tag}" >> beam.Map(lambda piece, tag=tag: (tag, piece)) for tag in sorted(specs)]
    return (
        tagged
        | "Pieces" >> beam.Flatten()
        | "CutParts" >> CutParts(output_root, specs, row_group_rows=out.row_group_rows, zstd_level=out.zstd_level)
    )
