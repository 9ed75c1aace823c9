"""The training stacks' own write paths on a release's tokens, for bench/export.py: run in the readers'
environment (tests/readers/requirements.txt), importing nothing of tokenmill.

    python bench/export_peers.py FORMAT RELEASE_DIR OUT_DIR

Each reads the release's shards with pyarrow, a row group at a time, and writes every document through the
library's own writer, as a user converting the data without tokenmill would:
  megatron  megatron.core.datasets.indexed_dataset.IndexedDatasetBuilder: add_document per document, then
            finalize (what tools/preprocess_data.py does with the ids it tokenized), int32 ids
  mds       streaming.MDSWriter: write per document ({"tokens": int32 array, "doc_id", "language",
            "language_score"}: the columns tokenmill's export writes for a release without score columns)
  litdata   litdata's BinaryWriter (what litdata.optimize runs in each worker): one item per document, the
            same four fields
  hf        datasets: Dataset.from_parquet over the shards, tokens renamed input_ids (kept uint32), one
            to_parquet file (the compression datasets picks; it sets its own)
Each is one process on one thread, as the libraries run by default; tokenmill's export runs eight parts at
once on threads (two cores here).
Prints the tokens written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def documents(release: Path):
    manifest = json.loads((release / "manifest.json").read_text())
    for f in manifest["files"]:
        pf = pq.ParquetFile(release / f["path"])
        for g in range(pf.num_row_groups):
            table = pf.read_row_group(g, columns=["tokens", "doc_id", "language", "language_score"])
            column = table.column("tokens").combine_chunks()
            offsets, values = column.offsets.to_numpy(), column.values.to_numpy()
            ids, langs = table.column("doc_id").to_pylist(), table.column("language").to_pylist()
            scores = table.column("language_score").to_pylist()
            for r in range(table.num_rows):
                score = float("nan") if scores[r] is None else scores[r]
                yield values[offsets[r]:offsets[r + 1]].astype(np.int32), ids[r], langs[r] or "", score


def main() -> int:
    fmt, release, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True)
    tokens = 0
    if fmt == "megatron":
        from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

        builder = IndexedDatasetBuilder(str(out / "data.bin"), dtype=np.int32)
        for ids, _doc, _lang, _score in documents(release):
            builder.add_document(ids, [len(ids)])
            tokens += len(ids)
        builder.finalize(str(out / "data.idx"))
    elif fmt == "mds":
        from streaming import MDSWriter

        columns = {"tokens": "ndarray:int32", "doc_id": "str", "language": "str", "language_score": "float64"}
        with MDSWriter(out=str(out), columns=columns) as w:
            for ids, doc, lang, score in documents(release):
                w.write({"tokens": ids, "doc_id": doc, "language": lang, "language_score": score})
                tokens += len(ids)
    elif fmt == "litdata":
        from litdata.streaming.writer import BinaryWriter

        w = BinaryWriter(str(out), chunk_bytes="64MB")
        for i, (ids, doc, lang, score) in enumerate(documents(release)):
            w[i] = {"input_ids": ids, "doc_id": doc, "language": lang, "language_score": score}
            tokens += len(ids)
        w.done()
        w.merge()
    elif fmt == "hf":
        from datasets import Dataset

        manifest = json.loads((release / "manifest.json").read_text())
        ds = Dataset.from_parquet([str(release / f["path"]) for f in manifest["files"]],
                                  cache_dir=str(out / ".cache"))
        ds = ds.rename_column("tokens", "input_ids")
        ds.to_parquet(str(out / "train.parquet"))
        tokens = sum(f.get("tokens", 0) for f in manifest["files"])
    print(tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
