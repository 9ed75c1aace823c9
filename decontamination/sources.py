"""Benchmark files into items: one item per jsonl line, Parquet row or text line, with the text of the recipe's
`text_fields`. Anything that cannot be read stops the run before it starts, in one line naming the file (and
the row): a pattern that matches nothing, an empty file, a row without any of the fields, a line that is not
JSON. A file that silently gave no items would make a contaminated run look clean.

An item's index is what a user finds it by: the 0-based line of a jsonl or txt file (blank lines count, so
`sed -n "$((i + 1))p"` prints it) and the 0-based row of a Parquet file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from storage.files import match, read_bytes

# File kinds by name ending; .gz and .zst are decompressed first.
JSONL = (".jsonl", ".ndjson")
TEXT = (".txt",)
PARQUET = (".parquet",)
COMPRESSED = (".gz", ".zst")


class SourceError(ValueError):
    """A benchmark source that cannot be used; the message is the one line the run prints."""


@dataclass(frozen=True)
class Item:
    index: int  # the line (jsonl, txt) or row (Parquet) of the item in its file, 0-based
    pieces: tuple[str, ...]  # the texts of its fields (a list field gives one piece per element)


def expand_sources(patterns: list[str]) -> list[str]:
    """Every file the patterns name, each once, in the order given (a glob's matches sorted)."""
    out: list[str] = []
    for pattern in patterns:
        found = [path for path, _size in match(pattern)]
        if not found:
            raise SourceError(f"decontamination.sources: '{pattern}' matches no file")
        out += [p for p in found if p not in out]
    return out


def _kind(path: str) -> tuple[str, str]:
    """(kind, compression) from the file name."""
    name = path.lower()
    compression = next((c for c in COMPRESSED if name.endswith(c)), "")
    name = name.removesuffix(compression)
    for kind, endings in (("jsonl", JSONL), ("txt", TEXT), ("parquet", PARQUET)):
        if name.endswith(endings):
            return kind, compression
    raise SourceError(f"decontamination.sources: {path}: not a benchmark file this reads (.jsonl, .ndjson, "
                      ".parquet or .txt, optionally .gz or .zst)")


def _decompress(path: str, data: bytes, compression: str) -> bytes:
    try:
        if compression == ".gz":
            return gzip.decompress(data)
        if compression == ".zst":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except Exception as exc:  # noqa: BLE001 - a damaged archive: name it
        raise SourceError(f"decontamination.sources: {path}: cannot decompress: {exc}") from exc
    return data


def _pieces(path: str, where: str, row: dict, fields: list[str]) -> tuple[str, ...]:
    pieces: list[str] = []
    present = False
    for name in fields:
        value = row.get(name)
        if value is None:
            continue
        present = True
        if isinstance(value, str):
            pieces.append(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            pieces += value
        else:
            raise SourceError(f"decontamination.sources: {path} {where}: field '{name}' is not text "
                              f"({type(value).__name__})")
    if not present:
        raise SourceError(f"decontamination.sources: {path} {where}: none of the text fields "
                          f"{fields} (decontamination.text_fields); the row has {sorted(row)[:8]}")
    return tuple(pieces)


def _jsonl_items(path: str, text: str, fields: list[str]) -> Iterator[Item]:
    for i, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise SourceError(f"decontamination.sources: {path} line {i + 1}: not JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise SourceError(f"decontamination.sources: {path} line {i + 1}: not a JSON object")
        yield Item(i, _pieces(path, f"line {i + 1}", row, fields))


def _parquet_items(path: str, data: bytes, fields: list[str]) -> Iterator[Item]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - not Parquet, damaged
        raise SourceError(f"decontamination.sources: {path}: not a Parquet file ({exc})") from exc
    columns = [name for name in fields if name in parquet.schema_arrow.names]
    if not columns:
        raise SourceError(f"decontamination.sources: {path}: none of the text fields {fields} "
                          f"(decontamination.text_fields) among its columns {parquet.schema_arrow.names[:8]}")
    index = 0
    for batch in parquet.iter_batches(batch_size=10_000, columns=columns):
        for row in batch.to_pylist():
            yield Item(index, _pieces(path, f"row {index}", row, columns))
            index += 1


def read_items(path: str, fields: list[str]) -> tuple[str, list[Item]]:
    """(sha256 of the file's bytes, its items). Raises SourceError naming the file for anything unusable."""
    kind, compression = _kind(path)
    try:
        data = read_bytes(path)
    except Exception as exc:  # noqa: BLE001 - gone since it was listed, forbidden
        raise SourceError(f"decontamination.sources: {path}: cannot read ({exc})") from exc
    sha256 = hashlib.sha256(data).hexdigest()
    data = _decompress(path, data, compression)
    if kind == "parquet":
        items = list(_parquet_items(path, data, fields))
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"decontamination.sources: {path}: not UTF-8 text ({exc})") from exc
        if kind == "jsonl":
            items = list(_jsonl_items(path, text, fields))
        else:
            items = [Item(i, (line,)) for i, line in enumerate(text.split("\n")) if line.strip()]
    if not items:
        raise SourceError(f"decontamination.sources: {path}: empty (no items)")
    return sha256, items
