"""MosaicML Streaming's MDS shards, written without `streaming` or torch: what `streaming.StreamingDataset`
and LLM-Foundry's text loader read.

    DIR/index.json, DIR/shard.PPPPP.KKK.mds              a release
    DIR/<source>/index.json, DIR/<source>/shard...mds    a mixture: one stream per source
    DIR/llm-foundry.yaml                                 the dataset's streams for LLM-Foundry's train_loader

The format (streaming/base/format/mds/writer.py and encodings.py, read at mosaicml-streaming 0.13.0): a
shard is the sample count (uint32), the samples' byte offsets (uint32, count + 1, counted from the file's
start), the writer's config as sorted JSON, then the samples. A sample is the byte sizes of its
variable-size columns (uint32, in the columns' sorted order) followed by every column's bytes in that order.
index.json lists the shards in order, each with its config, sample count and file size (version 2).

Columns: `tokens` as `ndarray:int32` (the column and encoding LLM-Foundry's convert_dataset_hf writes for
pre-tokenized text and its StreamingTextDataset reads), `doc_id` and `language` (str), `language_score` and
each of the release's score columns (float64; a missing score is NaN, MDS has no null).

A shard closes at SIZE_LIMIT bytes (MDSWriter's default, 64 MiB), so its uint32 offsets never overflow.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa

from exports.sources import ExportSource, Part, Source, int32_ids, part_tables
from schemas.tables import SHARD_BASE_FIELDS
from storage.files import is_local, join, write_bytes

SIZE_LIMIT = 1 << 26
BASE_NAMES = {f.name for f in SHARD_BASE_FIELDS}
# NDArray's 2-bit code for the smallest unsigned type that holds a shape (encodings.py: _shape_dtype2int).
_SHAPE_CODES = [(1 << 8, 0, np.uint8), (1 << 16, 1, np.uint16), (1 << 32, 2, np.uint32)]


def score_columns(source: Source) -> list[str]:
    return [c for c in source.schema.names if c not in BASE_NAMES]


def columns(source: Source) -> dict[str, str]:
    """Column name -> MDS encoding."""
    cols = {"tokens": "ndarray:int32", "doc_id": "str", "language": "str", "language_score": "float64"}
    cols.update({name: "float64" for name in score_columns(source)})
    return cols


def config(source: Source) -> dict:
    """The writer config each shard embeds and index.json repeats (MDSWriter.get_config)."""
    cols = columns(source)
    names = sorted(cols)
    return {"version": 2, "format": "mds", "compression": None, "hashes": [], "size_limit": SIZE_LIMIT,
            "column_names": names, "column_encodings": [cols[n] for n in names],
            "column_sizes": [8 if cols[n] == "float64" else None for n in names]}


def encode_tokens(ids: np.ndarray) -> bytes:
    """A 1-D int32 array as NDArray with a fixed dtype and a dynamic shape: one byte (ndim << 2 | the shape's
    type code), the shape, the values."""
    n = len(ids)
    if n == 0:
        raise ValueError("MDS cannot hold an empty array (every document has at least its end-of-text id)")
    _top, code, kind = next((c for c in _SHAPE_CODES if n < c[0]), (0, 3, np.uint64))
    return bytes([(1 << 2) | code]) + np.array([n], kind).tobytes() + int32_ids(ids).tobytes()


def shard_bytes(samples: list[bytes], config_data: bytes) -> bytes:
    n = len(samples)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(s) for s in samples], out=offsets[1:])
    offsets += 4 + 4 * (n + 1) + len(config_data)
    if offsets[-1] >= 1 << 32:
        raise ValueError("an MDS shard over 4 GiB")
    return np.uint32(n).tobytes() + offsets.astype(np.uint32).tobytes() + config_data + b"".join(samples)


def folder_of(src: ExportSource, source: Source) -> str:
    return "" if src.kind == "release" else f"{source.label}/"


def write_part(src: ExportSource, part: Part, build: str) -> list[dict]:
    """One part as MDS shards of at most SIZE_LIMIT bytes: a file entry per shard, carrying its index.json
    entry (`mds`) for `finish`."""
    source = src.sources[part.source]
    cfg = config(source)
    config_data = json.dumps(cfg, sort_keys=True).encode("utf-8")
    names = cfg["column_names"]
    scores = [n for n in names if n in set(score_columns(source))]
    read = ["tokens", "doc_id", "language", "language_score", *scores]
    entries: list[dict] = []
    samples: list[bytes] = []
    size = 0
    tokens = 0

    def flush() -> None:
        nonlocal samples, size, tokens
        rel = f"{folder_of(src, source)}shard.{part.index:05d}.{len(entries):03d}.mds"
        data = shard_bytes(samples, config_data)
        write_bytes(join(build, rel), data)
        entries.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "documents": len(samples), "tokens": tokens, "source": source.label,
                        "mds": {"samples": len(samples), "raw_data": {"basename": rel.rsplit("/", 1)[-1],
                                                                       "bytes": len(data), "hashes": {}},
                                "zip_data": None, **cfg}})
        samples, size, tokens = [], 4 + 4 + len(config_data), 0

    size = 4 + 4 + len(config_data)
    for table in part_tables(source, part, read):
        if not table.num_rows:
            continue
        column = table.column("tokens").combine_chunks()
        offsets = column.offsets.to_numpy()
        values = column.values.to_numpy()
        text = {n: [v if v is not None else "" for v in table.column(n).to_pylist()] for n in ("doc_id", "language")}
        floats = {n: table.column(n).cast(pa.float64()).fill_null(float("nan")).to_numpy(zero_copy_only=False)
                  for n in ["language_score", *scores]}
        for r in range(table.num_rows):
            ids = values[offsets[r]:offsets[r + 1]]
            parts, sizes = [], []
            for name in names:
                if name == "tokens":
                    datum = encode_tokens(ids)
                elif name in text:
                    datum = text[name][r].encode("utf-8")
                else:
                    parts.append(np.float64(floats[name][r]).tobytes())
                    continue
                sizes.append(len(datum))
                parts.append(datum)
            sample = np.array(sizes, np.uint32).tobytes() + b"".join(parts)
            if samples and size + len(sample) + 4 > SIZE_LIMIT:
                flush()
            samples.append(sample)
            size += len(sample) + 4
            tokens += len(ids)
    if samples:
        flush()
    return entries


def finish(src: ExportSource, files: list[dict], target: str) -> dict[str, bytes]:
    """Each stream's index.json (its shards in part order), and llm-foundry.yaml naming the streams with
    their proportions (a release: one stream of proportion 1)."""
    out: dict[str, bytes] = {}
    lines = ["# LLM-Foundry: merge into the training YAML (train_loader.name: text).", "train_loader:",
             "  name: text", "  dataset:", "    streams:"]
    for source in src.sources:
        shards = [f["mds"] for f in files if f.get("source") == source.label and "mds" in f]
        out[f"{folder_of(src, source)}index.json"] = json.dumps({"shards": shards, "version": 2},
                                                               sort_keys=True).encode("utf-8")
        where = f"{target.rstrip('/')}/{folder_of(src, source)}".rstrip("/")
        key = "local" if is_local(target) else "remote"  # a store's stream is downloaded to a local cache
        lines += [f"      {json.dumps(source.label)}:", f"        {key}: {json.dumps(where)}",
                  f"        proportion: {source.weight:.12g}"]
    out["llm-foundry.yaml"] = ("\n".join(lines) + "\n").encode("utf-8")
    return out
