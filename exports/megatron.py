"""Megatron-Core's indexed dataset (`.bin` + `.idx`), written without Megatron or torch, and the blend files
Megatron-LM and NeMo read a weighted list of them from.

The format (megatron/core/datasets/indexed_dataset.py, `_IndexWriter` and `_IndexReader`, read at
megatron-core 0.16.1): the `.bin` holds every sequence's token ids back to back in one dtype; the `.idx`
holds a 9-byte magic, version 1 (<Q), the dtype's code (<B), the sequence count (<Q), the document count
(<Q, one more than the documents: the indices start at 0), then the sequence lengths (int32), each
sequence's byte offset in the `.bin` (int64) and the sequence index that ends each document (int64). We write
one sequence per document, so document i is sequence i and the document indices are 0..n: the boundaries a
GPT dataset needs to keep a document whole when it is told to (each document already ends with the
end-of-text token, as `preprocess_data.py --append-eod` gives).

The dtype is the one Megatron itself picks for the vocabulary (`DType.optimal_dtype`): uint16 below 65,500
ids, int32 from there, so a reader's dtype checks against `--vocab-size` pass as for data Megatron wrote.

Memory: the `.bin` is streamed; the index keeps 4 bytes per document (the lengths) until the pair is
finished, so a pair's size, not the release's, bounds it (`exports/run.py` writes one pair per source shard).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
# DType codes of megatron.core.datasets.indexed_dataset.DType.
DTYPE_CODES = {np.dtype(np.uint8): 1, np.dtype(np.int8): 2, np.dtype(np.int16): 3, np.dtype(np.int32): 4,
               np.dtype(np.int64): 5, np.dtype(np.float64): 6, np.dtype(np.float32): 7, np.dtype(np.uint16): 8}
# DType.optimal_dtype: uint16 for a cardinality below this, else int32.
UINT16_BELOW = 65_500


def megatron_dtype(vocab_size: int) -> np.dtype:
    """The token dtype Megatron picks for a vocabulary of `vocab_size` ids (DType.optimal_dtype)."""
    return np.dtype(np.uint16 if vocab_size < UINT16_BELOW else np.int32)


class IndexedDatasetWriter:
    """One `.bin`/`.idx` pair: documents are appended to the `.bin` stream as they come; `index()` gives the
    `.idx` bytes once all are in."""

    def __init__(self, bin_stream: BinaryIO, dtype: np.dtype) -> None:
        if np.dtype(dtype) not in DTYPE_CODES:
            raise ValueError(f"{dtype}: not a dtype Megatron's indexed dataset knows")
        self.stream, self.dtype = bin_stream, np.dtype(dtype)
        self.lengths: list[np.ndarray] = []
        self.documents = 0
        self.tokens = 0

    def add(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        """Append documents: `flat` holds their token ids back to back, `lengths` each one's count. Ids
        outside the dtype raise ValueError before anything is written (the caller's check of the vocabulary
        makes that a bug, not data)."""
        if len(flat):
            info = np.iinfo(self.dtype)
            low, high = int(flat.min()), int(flat.max())
            if low < info.min or high > info.max:
                raise ValueError(f"token id {high if high > info.max else low} does not fit {self.dtype}")
        lengths = np.asarray(lengths, dtype=np.int64)
        if int(lengths.sum()) != len(flat) or (len(lengths) and int(lengths.min()) < 0):
            raise ValueError("lengths do not add up to the tokens given")
        if len(lengths) and int(lengths.max()) > np.iinfo(np.int32).max:
            raise ValueError("a document longer than Megatron's int32 sequence length")
        self.stream.write(np.ascontiguousarray(flat, dtype=self.dtype).tobytes())
        self.lengths.append(lengths.astype(np.int32))
        self.documents += len(lengths)
        self.tokens += len(flat)

    def index(self) -> bytes:
        """The `.idx` file's bytes for the documents added."""
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int32)
        pointers = np.zeros(len(lengths), np.int64)
        if len(lengths) > 1:
            np.cumsum(lengths[:-1].astype(np.int64) * self.dtype.itemsize, out=pointers[1:])
        documents = np.arange(len(lengths) + 1, dtype=np.int64)
        return b"".join([
            MAGIC, struct.pack("<Q", VERSION), struct.pack("<B", DTYPE_CODES[self.dtype]),
            struct.pack("<Q", len(lengths)), struct.pack("<Q", len(documents)),
            lengths.tobytes(), pointers.tobytes(), documents.tobytes(),
        ])


def blend_line(pairs: list[tuple[float, str]]) -> str:
    """Megatron-LM's weighted `--data-path` value, `W1 PREFIX1 W2 PREFIX2 ...` (what `--data-args-path FILE`
    reads from a file); weights are written with enough digits that their ratios survive."""
    return " ".join(f"{weight:.12g} {prefix}" for weight, prefix in pairs)


def nemo_blend(pairs: list[tuple[float, str]]) -> str:
    """NeMo's equivalent: `model.data.data_prefix` as a YAML list alternating weight and prefix."""
    lines = ["model:", "  data:", "    data_prefix:"]
    for weight, prefix in pairs:
        lines += [f"      - {weight:.12g}", f"      - {_yaml_str(prefix)}"]
    return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escaping is valid YAML)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def pair_prefix(source_label: str, part_index: int) -> str:
    """A part's pair, relative to the export folder: `<source>/<part>` (+ .bin, .idx)."""
    return f"{source_label}/{part_index:05d}"


def write_part(src, part, build: str, dtype: np.dtype) -> list[dict]:
    """One part of `src` (exports.sources.ExportSource) as one `.bin`/`.idx` pair under `build`: the two file
    entries (documents and tokens on the `.bin`'s). A part whose rows its source's `where` all leaves out
    writes nothing."""
    from exports.sources import flat_tokens, part_tables
    from outputs.parquet_parts import HashingWriter
    from storage.files import create, join, write_bytes

    source = src.sources[part.source]
    prefix = pair_prefix(source.label, part.index)
    sink = writer = None
    try:
        for table in part_tables(source, part, ["tokens"]):
            if not table.num_rows:
                continue
            if writer is None:
                sink = HashingWriter(create(join(build, f"{prefix}.bin")))
                writer = IndexedDatasetWriter(sink, dtype)
            writer.add(*flat_tokens(table))
    finally:
        if sink is not None:
            sink.close()
    if writer is None:
        return []
    index = writer.index()
    write_bytes(join(build, f"{prefix}.idx"), index)
    import hashlib

    return [{"path": f"{prefix}.bin", "bytes": sink.size, "sha256": sink.hexdigest, "documents": writer.documents,
             "tokens": writer.tokens, "source": source.label},
            {"path": f"{prefix}.idx", "bytes": len(index), "sha256": hashlib.sha256(index).hexdigest()}]


def blend_files(src, files: list[dict], target: str) -> dict[str, bytes]:
    """blend.megatron.txt (Megatron-LM: `--data-args-path` reads it; its contents are a `--data-path` value)
    and blend.nemo.yaml (NeMo's `model.data.data_prefix`): every pair by its absolute prefix in `target`,
    weighted by its source's share of the mixture (1 for a release) times the pair's share of the source's
    tokens, so drawing by weight gives each source its share and each pair its size within it."""
    pairs = []
    for s in src.sources:
        mine = [f for f in files if f.get("source") == s.label and f["path"].endswith(".bin")]
        total = sum(f["tokens"] for f in mine)
        for f in mine:
            prefix = f"{target.rstrip('/')}/{f['path'].removesuffix('.bin')}"
            pairs.append((s.weight * f["tokens"] / total, prefix))
    return {"blend.megatron.txt": (blend_line(pairs) + "\n").encode(),
            "blend.nemo.yaml": nemo_blend(pairs).encode()}
