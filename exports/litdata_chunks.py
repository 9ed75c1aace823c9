"""LitData's optimized format (what `litdata.optimize` writes and `litdata.StreamingDataset` reads), written
without litdata or torch.

    DIR/index.json, DIR/chunk-PPPPP-K.bin                a release
    DIR/<source>/index.json, DIR/<source>/chunk-...bin   a mixture: one dataset per source
    DIR/combined.json                                    each dataset's folder and weight, for
                                                         litdata.CombinedStreamingDataset

The layout, as litdata 0.2.76's BinaryWriter writes a dict item of a 1-D numpy array, strings and floats
(litdata/streaming/writer.py, serializers.py; checked against a folder it wrote): a chunk is the item count
(uint32), the items' byte offsets (uint32, count + 1, from the file's start), then the items; an item is each
leaf's byte size (uint32) then the leaves' bytes, in the dict's key order. index.json holds the chunks
(bytes, items, file name) and the config: the leaves' serializers (`no_header_numpy:2` is int32, `str`,
`float`), the item's tree as torch's pytree JSON (treespec_dumps, protocol 1), the column types,
`PyTreeLoader`.

Items: {"input_ids": int32 ids, "doc_id", "language", "language_score", the score columns}; a missing string is
"" and a missing score NaN (litdata serializes no None).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from exports.records import cut_by_size, document_rows, framed_file
from exports.sources import ExportSource, Part, Source, folder_of, int32_ids, part_tables, score_columns
from storage.files import join, write_bytes

CHUNK_BYTES = 64_000_000  # litdata.optimize's chunk_bytes="64MB"
INT32 = "no_header_numpy:2"  # litdata.constants._NUMPY_DTYPES_MAPPING: 2 is int32


def leaves(source: Source) -> list[tuple[str, str, str]]:
    """(key, serializer, type) of each leaf of an item, in the item's key order."""
    return ([("input_ids", INT32, "json"), ("doc_id", "str", "str"), ("language", "str", "str"),
             ("language_score", "float", "float")] + [(name, "float", "float") for name in score_columns(source)])


def config(source: Source) -> dict:
    keys = [k for k, _, _ in leaves(source)]
    leaf = {"type": None, "context": None, "children_spec": []}
    spec = [1, {"type": "builtins.dict", "context": json.dumps(keys), "children_spec": [leaf] * len(keys)}]
    return {"chunk_bytes": CHUNK_BYTES, "chunk_size": None, "compression": None, "compression_batch_size": None,
            "compression_level": None, "data_format": [s for _, s, _ in leaves(source)],
            "data_spec": json.dumps(spec), "encryption": None, "ipc_compression": None,
            "item_loader": "PyTreeLoader", "types": {k: t for k, _, t in leaves(source)}}


def write_part(src: ExportSource, part: Part, build: str) -> list[dict]:
    """One part as chunks of at most CHUNK_BYTES: a file entry per chunk, carrying its index.json entry."""
    source = src.sources[part.source]
    keys = [k for k, _, _ in leaves(source)]
    floats = [k for k, s, _ in leaves(source) if s == "float"]

    def items():
        for ids, doc_id, language, numbers in document_rows(part_tables(source, part, ["tokens", *keys[1:]]),
                                                            floats):
            data = [int32_ids(ids).tobytes(), doc_id.encode("utf-8"), language.encode("utf-8")] + [
                np.float64(v).tobytes() for v in numbers]
            yield np.array([len(d) for d in data], np.uint32).tobytes() + b"".join(data), len(ids)

    entries: list[dict] = []
    for k, (batch, tokens) in enumerate(cut_by_size(items(), CHUNK_BYTES, 8)):  # 8: the count, the last offset
        rel = f"{folder_of(src, source)}chunk-{part.index:05d}-{k}.bin"
        data = framed_file(batch)
        write_bytes(join(build, rel), data)
        entries.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "documents": len(batch), "tokens": tokens, "source": source.label,
                        "litdata": {"chunk_bytes": len(data), "chunk_size": len(batch), "dim": None,
                                    "filename": rel.rsplit("/", 1)[-1]}})
    return entries


def finish(src: ExportSource, files: list[dict], target: str) -> dict[str, bytes]:
    """Each dataset's index.json (its chunks in part order) and combined.json (folders and weights)."""
    out: dict[str, bytes] = {}
    combined = []
    for source in src.sources:
        chunks = [f["litdata"] for f in files if f.get("source") == source.label and "litdata" in f]
        out[f"{folder_of(src, source)}index.json"] = json.dumps({"chunks": chunks, "config": config(source)},
                                                               sort_keys=True).encode("utf-8")
        combined.append({"label": source.label, "weight": source.weight,
                         "input_dir": f"{target.rstrip('/')}/{folder_of(src, source)}".rstrip("/")})
    out["combined.json"] = (json.dumps(combined, indent=2) + "\n").encode("utf-8")
    return out
