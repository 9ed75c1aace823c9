"""Parts cut across input files (issue 35): a run of several input files with a small `shard_tokens` gives
shards of shard_tokens ± one document's tokens, every kept document in exactly one, in input order, with
row groups counted from each shard's first row; ledger/, dedup_index/ and scored/ parts of exactly
`ledger_rows_per_part` rows (the last fewer), in the same order; the same bytes on a rerun with retried
bundles and with two worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.test_pipeline import IN_MEMORY, file_bytes, ledger, run

TARGET = 12_000
ROW_GROUP_ROWS = 16
PART_ROWS = 37


@pytest.fixture(scope="module")
def crawl(tmp_path_factory) -> list[str]:
    from demo.bench_crawl import build_bench_crawl

    return sorted(build_bench_crawl(str(tmp_path_factory.mktemp("crawl5")), docs=200, shards=5, seed=3))


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("recipe") / "small.toml"
    path.write_text(f"[output]\nshard_tokens = {TARGET}\nrow_group_rows = {ROW_GROUP_ROWS}\n"
                    f"ledger_rows_per_part = {PART_ROWS}\n")
    return str(path)


@pytest.fixture(scope="module")
def cut_run(crawl, recipe, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("cut") / "out"
    return run(crawl, out, "--config", recipe, "--keep-scored", *IN_MEMORY), out


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


@pytest.mark.parametrize(("kind", "key"), [("ledger", "ledger"), ("dedup_index", "dedup_index"),
                                           ("scored", "scored")])
def test_row_cut_parts_hold_part_rows_each_in_input_order(cut_run, kind, key):
    stats, out = cut_run
    manifest = json.loads((out / "manifest.json").read_text())
    entries = manifest[key]["parts"] if kind == "dedup_index" else manifest[key]
    paths = [e["path"] for e in entries]
    assert paths == [f"{kind}/part-{i:05d}.parquet" for i in range(len(paths))] and len(paths) >= 3
    assert sorted(p.name for p in (out / kind).iterdir()) == [p.removeprefix(f"{kind}/") for p in paths]
    parts = [pq.read_table(out / p, columns=["doc_id"]).column("doc_id").to_pylist() for p in paths]
    assert all(len(p) == PART_ROWS for p in parts[:-1]) and 0 < len(parts[-1]) <= PART_ROWS
    assert [e["rows"] for e in entries] == [len(p) for p in parts]
    rows = ledger(out)
    source_of = {r["doc_id"]: r["source"] for r in rows}
    files = sorted(set(source_of.values()))
    ids = [d for p in parts for d in p]
    assert ids == sorted(ids, key=lambda d: (files.index(source_of[d]), d)) and len(set(ids)) == len(ids)
    if kind == "ledger":
        assert len(ids) == stats["records"] == len(rows)
    elif kind == "dedup_index":
        assert sorted(ids) == sorted(r["doc_id"] for r in rows if r["kept"])
    else:  # every document that reached the filters
        assert len(ids) == stats["stages"]["filters"]["in"]


def test_the_same_bytes_with_retried_bundles_and_two_workers(cut_run, crawl, recipe, tmp_path):
    _stats, out = cut_run
    run(crawl, tmp_path / "retried", "--config", recipe, "--keep-scored", *IN_MEMORY, "--direct_runner_bundle_repeat=1")
    run(crawl, tmp_path / "two", "--config", recipe, "--keep-scored", "--runner=DirectRunner",
        "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    expected = file_bytes(out)
    assert file_bytes(tmp_path / "retried") == expected
    assert file_bytes(tmp_path / "two") == expected
    for folder in ("retried", "two"):
        assert not (tmp_path / folder / "_staging").exists()
