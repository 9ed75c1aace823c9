"""What MDS shards (exports/mds.py) and LitData chunks (exports/litdata_chunks.py) share: a file of
length-prefixed records, cut by size, filled with the same per-document fields.

Both formats lay a file out as the record count (uint32), the records' byte offsets counted from the file's
start (uint32, count + 1), an optional header (MDS: its writer config), then the records; both close a file
before it passes a byte limit, counting 4 bytes per record for its offset; both write, per document, its token
ids, doc_id and language (a missing one as "") and float columns (a missing value as NaN: neither format has a
null). Each format encodes its own record from those fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa


def framed_file(records: list[bytes], header: bytes = b"") -> bytes:
    """The file holding `records`: count, offsets from the file's start, `header`, the records."""
    n = len(records)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(r) for r in records], out=offsets[1:])
    offsets += 4 + 4 * (n + 1) + len(header)
    if offsets[-1] >= 1 << 32:
        raise ValueError("a file of records over 4 GiB (its offsets are uint32)")
    return np.uint32(n).tobytes() + offsets.astype(np.uint32).tobytes() + header + b"".join(records)


def cut_by_size(records: Iterable[tuple[bytes, int]], limit: int, fixed: int
                ) -> Iterator[tuple[list[bytes], int]]:
    """(records, tokens) of each file: (record, tokens) pairs in order, a file closed before the next record
    would take it past `limit` bytes, counting `fixed` bytes (the count, the last offset, a header) and 4 per
    record (its offset). A record alone over the limit gets a file of its own."""
    batch: list[bytes] = []
    size, tokens = fixed, 0
    for record, n in records:
        if batch and size + len(record) + 4 > limit:
            yield batch, tokens
            batch, size, tokens = [], fixed, 0
        batch.append(record)
        size += len(record) + 4
        tokens += n
    if batch:
        yield batch, tokens


def document_rows(tables: Iterable[pa.Table], floats: list[str]
                  ) -> Iterator[tuple[np.ndarray, str, str, list[float]]]:
    """Per document of `tables` (each with `tokens`, `doc_id`, `language` and the `floats` columns): its token
    ids, doc_id, language ("" when missing) and the `floats` values (NaN when missing)."""
    for table in tables:
        if not table.num_rows:
            continue
        column = table.column("tokens").combine_chunks()
        offsets = column.offsets.to_numpy()
        values = column.values.to_numpy()
        doc_ids, languages = ([v if v is not None else "" for v in table.column(name).to_pylist()]
                              for name in ("doc_id", "language"))
        numbers = [table.column(name).cast(pa.float64()).fill_null(float("nan")).to_numpy(zero_copy_only=False)
                   for name in floats]
        for r in range(table.num_rows):
            yield values[offsets[r]:offsets[r + 1]], doc_ids[r], languages[r], [float(c[r]) for c in numbers]
