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

from exports.records import cut_by_size, document_rows, framed_file
from exports.sources import ExportSource, Part, Source, folder_of, int32_ids, part_tables, score_columns
from storage.files import is_local, join, write_bytes

SIZE_LIMIT = 1 << 26
# NDArray's 2-bit code for the smallest unsigned type that holds a shape (encodings.py: _shape_dtype2int).
_SHAPE_CODES = [(1 << 8, 0, np.uint8), (1 << 16, 1, np.uint16), (1 << 32, 2, np.uint32)]


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


def write_part(src: ExportSource, part: Part, build: str) -> list[dict]:
    """One part as MDS shards of at most SIZE_LIMIT bytes: a file entry per shard, carrying its index.json
    entry (`mds`) for `finish`."""
    source = src.sources[part.source]
    cfg = config(source)
    config_data = json.dumps(cfg, sort_keys=True).encode("utf-8")
    floats = ["language_score", *score_columns(source)]

    def samples():
        for ids, doc_id, language, numbers in document_rows(part_tables(source, part, ["tokens", "doc_id",
                                                                                        "language", *floats]), floats):
            fields = {"tokens": encode_tokens(ids), "doc_id": doc_id.encode("utf-8"),
                      "language": language.encode("utf-8")} | {
                name: np.float64(v).tobytes() for name, v in zip(floats, numbers, strict=True)}
            # the variable-size columns' sizes, then every column, both in the sorted column order
            sizes = [len(fields[n]) for n, size in zip(cfg["column_names"], cfg["column_sizes"], strict=True)
                     if size is None]
            yield np.array(sizes, np.uint32).tobytes() + b"".join(fields[n] for n in cfg["column_names"]), len(ids)

    entries: list[dict] = []
    for k, (batch, tokens) in enumerate(cut_by_size(samples(), SIZE_LIMIT, 4 + 4 + len(config_data))):
        rel = f"{folder_of(src, source)}shard.{part.index:05d}.{k:03d}.mds"
        data = framed_file(batch, config_data)
        write_bytes(join(build, rel), data)
        entries.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "documents": len(batch), "tokens": tokens, "source": source.label,
                        "mds": {"samples": len(batch), "raw_data": {"basename": rel.rsplit("/", 1)[-1],
                                                                     "bytes": len(data), "hashes": {}},
                                "zip_data": None, **cfg}})
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
