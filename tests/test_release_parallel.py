"""release/publish.py: `verify` checks files on a bounded thread pool and says the same problems, in the same
order, as one file at a time; `in_parallel` keeps the items' order and raises the first error in it."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from release.publish import in_parallel, verify
from schemas.tables import DEDUP_INDEX_SCHEMA


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
