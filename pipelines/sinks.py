"""A sink for rows not tied to one input file (scored/ with --keep-scored): spread rows over parts
deterministically, write each part sorted. Shards and ledger parts are written per input file instead
(pipelines/source_parts.py: WriteSourceParts).

The number of parts comes from a global count (a side input): parts = ceil(total size / target). A row's part
is a seeded hash of its doc id, so the assignment is the same on every runner and worker count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import xxhash

from outputs.parquet_parts import PartInfo, write_sorted_part


def part_of(doc_id: str, seed: int, parts: int) -> int:
    return xxhash.xxh3_64_intdigest(f"part\x00{seed}\x00{doc_id}".encode()) % parts


def part_path(output_root: str, folder: str, index: int, parts: int) -> str:
    """folder/part-NNNNN.parquet, zero-padded to the digits of the largest index (at least 5): names sort as
    their numbers do for any number of parts."""
    width = max(5, len(str(parts - 1)))
    return f"{output_root.rstrip('/')}/{folder}/part-{index:0{width}d}.parquet"


class WriteParts(beam.PTransform):
    """Rows -> `folder/part-NNNNN.parquet` files; outputs one PartInfo per written part."""

    def __init__(
        self,
        *,
        output_root: str,
        folder: str,
        schema: pa.Schema,
        to_table: Callable[[list[Any]], pa.Table],
        size_of: Callable[[Any], int],
        target_per_part: int,
        row_group_rows: int,
        zstd_level: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.output_root = output_root
        self.folder = folder
        self.schema = schema
        self.to_table = to_table
        self.size_of = size_of
        self.target_per_part = target_per_part
        self.row_group_rows = row_group_rows
        self.zstd_level = zstd_level
        self.seed = seed

    def expand(self, rows):
        target, seed = self.target_per_part, self.seed
        total = rows | "Size" >> beam.Map(self.size_of) | "Total" >> beam.CombineGlobally(sum)

        def assign(row: Any, total_size: int) -> tuple[tuple[int, int], Any]:
            parts = max(1, math.ceil(total_size / target))
            return (part_of(row.doc_id, seed, parts), parts), row

        def write(element: tuple[tuple[int, int], Iterable[Any]]) -> PartInfo:
            (index, parts), group = element
            return write_sorted_part(
                group,
                path=part_path(self.output_root, self.folder, index, parts),
                schema=self.schema,
                key=lambda r: r.doc_id,
                to_table=self.to_table,
                row_group_rows=self.row_group_rows,
                zstd_level=self.zstd_level,
            )

        return (
            rows
            | "AssignPart" >> beam.Map(assign, total_size=beam.pvalue.AsSingleton(total))
            | "GroupByPart" >> beam.GroupByKey()
            | "WritePart" >> beam.Map(write)
        )
