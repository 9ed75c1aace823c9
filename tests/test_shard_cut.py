"""Shards cut across input files (issue 35): a run of several input files with a small `shard_tokens` gives
shards of shard_tokens ± one document's tokens, every kept document in exactly one, in input order, with
row groups counted from each shard's first row; the same bytes on a rerun with retried bundles and with two
worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.test_pipeline import IN_MEMORY, file_bytes, ledger, run

TARGET = 12_000
ROW_GROUP_ROWS = 16


@pytest.fixture(scope="module")
def crawl(tmp_path_factory) -> list[str]:
    from demo.bench_crawl import build_bench_crawl

    return sorted(build_bench_crawl(str(tmp_path_factory.mktemp("crawl5")), docs=200, shards=5, seed=3))


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("recipe") / "small.toml"
    path.write_text(f"[output]\nshard_tokens = {TARGET}\nrow_group_rows = {ROW_GROUP_ROWS}\n")
    return str(path)


@pytest.fixture(scope="module")
def cut_run(crawl, recipe, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("cut") / "out"
    return run(crawl, out, "--config", recipe, *IN_MEMORY), out


def test_shards_hold_the_target_plus_minus_one_document_every_document_once_in_input_order(cut_run, crawl):
    stats, out = cut_run
    manifest = json.loads((out / "manifest.json").read_text())
    paths = [e["path"] for e in manifest["shards"]]
    assert paths == [f"shards/part-{i:05d}.parquet" for i in range(len(paths))]
    assert sorted(p.name for p in (out / "shards").iterdir()) == [p.removeprefix("shards/") for p in paths]
    shards = [pq.read_table(out / p, columns=["doc_id", "token_count"]).to_pylist() for p in paths]
    tokens = [sum(d["token_count"] for d in s) for s in shards]
    assert tokens == [e["tokens"] for e in manifest["shards"]] and sum(tokens) == stats["tokens"]
    assert len(shards) >= 4 and stats["tokens"] // TARGET <= len(shards) <= stats["tokens"] // TARGET + 1
    for i, shard in enumerate(shards[:-1]):  # the last one holds what is left
        largest = max(d["token_count"] for d in shard)
        before = shards[i - 1][-1]["token_count"] if i else 0  # the previous shard's last document
        assert TARGET - max(before, largest) < tokens[i] < TARGET + largest, (i, tokens[i])
    assert 0 < tokens[-1] < TARGET + max(d["token_count"] for d in shards[-1])

    rows = ledger(out)
    source_of = {r["doc_id"]: r["source"] for r in rows}
    files = sorted({r["source"] for r in rows})
    order = [d["doc_id"] for s in shards for d in s]
    kept = sorted((r["doc_id"] for r in rows if r["kept"]), key=lambda d: (files.index(source_of[d]), d))
    assert order == kept and len(set(order)) == len(order) == stats["kept"]  # each once, input order
    spanning = [s for s in shards if len({source_of[d["doc_id"]] for d in s}) > 1]
    assert spanning, "no shard holds documents of two input files: the cut is still per file"
    for p in paths:  # row groups of row_group_rows from each shard's first row, the last one shorter
        meta = pq.ParquetFile(out / p).metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        assert all(n == ROW_GROUP_ROWS for n in sizes[:-1]) and 0 < sizes[-1] <= ROW_GROUP_ROWS
    assert not (out / "_staging").exists()


def test_the_same_bytes_with_retried_bundles_and_two_workers(cut_run, crawl, recipe, tmp_path):
    _stats, out = cut_run
    run(crawl, tmp_path / "retried", "--config", recipe, *IN_MEMORY, "--direct_runner_bundle_repeat=1")
    run(crawl, tmp_path / "two", "--config", recipe, "--runner=DirectRunner",
        "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    expected = file_bytes(out)
    assert file_bytes(tmp_path / "retried") == expected
    assert file_bytes(tmp_path / "two") == expected
    for folder in ("retried", "two"):
        assert not (tmp_path / folder / "_staging").exists()
