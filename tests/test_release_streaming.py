"""release/publish.py: `verify` checks files on a bounded thread pool and says the same problems, in the same
order, as one file at a time; `in_parallel` keeps the items' order and raises the first error in it.
release/reader.py: a release's manifest gives PackedReader each file's tokens per row group, so a rank opens
only the footers of the row groups it reads, and reads the stream it read from the footers."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from release.publish import in_parallel, verify
from schemas.tables import DEDUP_INDEX_SCHEMA
from training.reader import PackedReader


def test_in_parallel_keeps_order_bounds_threads_and_raises_the_first_error_in_order():
    running, peak, lock = [0], [0], threading.Lock()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01 * (i % 3))
        with lock:
            running[0] -= 1
        if i in (7, 12):
            raise ValueError(f"item {i}")
        return i * i

    assert list(in_parallel(work, range(7), threads=3)) == [i * i for i in range(7)]
    assert peak[0] <= 3
    with pytest.raises(ValueError, match="item 7"):
        list(in_parallel(work, range(20), threads=4))


def _part(path, table: pa.Table) -> dict:
    pq.write_table(table, path)
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "rows": table.num_rows}


def test_verify_says_each_problem_in_manifest_order_whatever_the_threads(tmp_path):
    (tmp_path / "shards").mkdir()
    (tmp_path / "dedup_index").mkdir()
    shard = pa.table({"doc_id": ["a", "b"], "tokens": [[1], [2, 3]]})
    files = []
    for i in range(12):
        path = f"shards/part-{i:02d}.parquet"
        files.append({"path": path, "tokens": 3, **_part(tmp_path / path, shard)})
    index = [{"path": "dedup_index/part-00.parquet",
              **_part(tmp_path / "dedup_index/part-00.parquet", DEDUP_INDEX_SCHEMA.empty_table())}]
    manifest = {"files": files, "dedup_index": {"files": index}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "README.md").write_text("card")
    assert verify(str(tmp_path), threads=4) == []
    (tmp_path / files[3]["path"]).unlink()
    files[5]["rows"] = 9
    files[8]["bytes"] += 1
    with open(tmp_path / files[10]["path"], "r+b") as f:
        f.seek(8)
        f.write(b"\xff")
    index[0] = {"path": "dedup_index/part-01.parquet",  # a shard listed as an index part
                **_part(tmp_path / "dedup_index/part-01.parquet", shard)}
    manifest["dedup_index"]["files"] = index
    (tmp_path / "shards/extra.parquet").write_bytes(b"x")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    want = ["dedup_index/part-00.parquet: not listed in the manifest (a reader of shards/*.parquet would read it)",
            "shards/extra.parquet: not listed in the manifest (a reader of shards/*.parquet would read it)",
            "shards/part-03.parquet: missing",
            "shards/part-05.parquet: 2 rows != 9",
            f"shards/part-08.parquet: size {files[8]['bytes'] - 1} != {files[8]['bytes']}",
            "shards/part-10.parquet: sha256 mismatch",
            "dedup_index/part-01.parquet: not a tokenmill dedup index schema"]
    assert verify(str(tmp_path), threads=1) == want
    assert verify(str(tmp_path), threads=8) == want


def _release(folder, with_counts: bool = True) -> dict:
    """A release folder of 5 shards of 3 to 7 row groups of documents of 1 to 40 tokens."""
    rng = np.random.default_rng(0)
    (folder / "shards").mkdir(parents=True)
    files = []
    for i in range(5):
        groups = [[rng.integers(0, 50_000, rng.integers(1, 40)).tolist() for _ in range(rng.integers(1, 9))]
                  for _ in range(3 + i)]
        path = f"shards/part-{i}.parquet"
        with pq.ParquetWriter(folder / path, pa.schema([("doc_id", pa.string()), ("tokens", pa.list_(pa.uint32()))])
                              ) as writer:
            for g, docs in enumerate(groups):
                writer.write_table(pa.table({"doc_id": [f"{i}-{g}-{d}" for d in range(len(docs))],
                                             "tokens": pa.array(docs, pa.list_(pa.uint32()))}))
        entry = {"path": path, "tokens": sum(map(len, sum(groups, [])))} | _part_meta(folder / path)
        if with_counts:
            entry["row_group_tokens"] = [sum(map(len, docs)) for docs in groups]
        files.append(entry)
    manifest = {"files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _part_meta(path) -> dict:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "rows": pq.ParquetFile(path).metadata.num_rows}


def test_a_rank_opens_only_the_footers_of_the_row_groups_it_reads_and_reads_the_same_stream(tmp_path, monkeypatch):
    manifest = _release(tmp_path / "new")
    _release(tmp_path / "old", with_counts=False)  # a release made before 2026-12-07: the footers say
    opened = []
    real = pq.ParquetFile
    monkeypatch.setattr(pq, "ParquetFile", lambda source, *a, **k: opened.append(1) or real(source, *a, **k))
    for rank in range(3):
        opened.clear()
        new = PackedReader(str(tmp_path / "new"), 16, seed=5, rank=rank, world_size=3)
        assert new.footer_reads == 0 and not opened
        streamed = list(new)
        assert len(opened) == len(new.read_log) > 0  # one footer per row group read, no other
        assert new.read_log == new.owned[:len(new.read_log)]
        old = PackedReader(str(tmp_path / "old"), 16, seed=5, rank=rank, world_size=3)
        assert old.footer_reads == len(manifest["files"]) == 5
        assert old.row_groups == new.row_groups and old.sequences == new.sequences > 0
        assert [s.tolist() for s in old] == [s.tolist() for s in streamed]
    assert verify(str(tmp_path / "new")) == []


def test_a_count_the_shard_does_not_hold_is_refused_by_the_reader_and_by_verify(tmp_path):
    manifest = _release(tmp_path)
    manifest["files"][2]["row_group_tokens"][1] += 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    counts = manifest["files"][2]["row_group_tokens"]
    want = [c - (i == 1) for i, c in enumerate(counts)]
    assert verify(str(tmp_path)) == [f"shards/part-2.parquet: tokens per row group {want} != the manifest's {counts}"]
    with pytest.raises(ValueError, match=f"part-2.parquet: row group 1 holds {want[1]:,} tokens, the manifest says "
                                         f"{counts[1]:,}"):
        list(PackedReader(str(tmp_path), 8))
    manifest["files"][0]["row_group_tokens"] = ["12"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="part-0.parquet: row_group_tokens is not a list of token counts"):
        PackedReader(str(tmp_path), 8)
