"""Shards cut across input files (issue 35): how close each shard is to `shard_tokens`, on the bench crawl.

    python bench/shard_cut.py --keep DIR [--docs 2500 --shards 4] [--shard-tokens 1048576] [--ledger-rows N]
        [--checkout OLD]

Runs the default recipe with `[output] shard_tokens` (and `ledger_rows_per_part`) on the bench crawl (built
once into DIR/crawl by ../shared/tools/make_bench_warc.py) and prints: input files, kept documents, tokens,
shards, each shard's tokens against shard_tokens (smallest and largest, the last one apart), the largest
document, whether every shard but the last is within shard_tokens ± one document's tokens (the larger of its
own largest document and the previous shard's last), and whether every kept document of the ledger is in
exactly one shard, in input order. With `--checkout` the same run of another checkout (given the recipe key
it knows, shard_target_tokens before issue 35) prints its shard count and sizes for comparison.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_crawl  # noqa: E402


def run(checkout: Path, crawl: Path, recipe: Path, out: Path) -> None:
    subprocess.run([sys.executable, str(checkout / "run_pipeline.py"), "--input", f"{crawl}/*.warc.gz", "--output",
                    str(out), "--config", str(recipe), "--overwrite", "--quiet"], check=True, cwd=checkout)


def shard_figures(out: Path, target: int) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    shards = [pq.read_table(out / e["path"], columns=["doc_id", "token_count"]).to_pylist()
              for e in manifest["shards"]]
    tokens = [sum(d["token_count"] for d in s) for s in shards]
    within = all(
        target - max(shards[i - 1][-1]["token_count"] if i else 0, max(d["token_count"] for d in s))
        < tokens[i] < target + max(d["token_count"] for d in s)
        for i, s in enumerate(shards[:-1])
    )
    ledger = [r for e in manifest["ledger"]
              for r in pq.read_table(out / e["path"], columns=["doc_id", "source", "kept"]).to_pylist()]
    files = sorted({r["source"] for r in ledger})
    source_of = {r["doc_id"]: r["source"] for r in ledger}
    order = [d["doc_id"] for s in shards for d in s]
    kept = sorted((r["doc_id"] for r in ledger if r["kept"]), key=lambda d: (files.index(source_of[d]), d))
    return {
        "files": len(manifest["inputs"]), "kept": len(kept), "tokens": sum(tokens), "shards": len(shards),
        "tokens_min_max_but_last": (min(tokens[:-1]), max(tokens[:-1])) if len(tokens) > 1 else None,
        "tokens_last": tokens[-1] if tokens else 0,
        "largest_document": max((d["token_count"] for s in shards for d in s), default=0),
        "within_target_pm_one_document": within,
        "every_kept_document_once_in_input_order": order == kept,
        "ledger_parts": len(manifest["ledger"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, required=True, help="folder for the crawl and the runs")
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--shards", type=int, default=4, help="input WARC files of the bench crawl")
    ap.add_argument("--shard-tokens", type=int, default=1 << 20)
    ap.add_argument("--ledger-rows", type=int, default=1_000_000)
    ap.add_argument("--checkout", type=Path, help="another checkout to run the same crawl with (before issue 35)")
    args = ap.parse_args()
    crawl = bench_crawl(args.keep / "crawl", args.docs, args.shards)
    recipe = args.keep / "recipe.toml"
    recipe.write_text(f"[output]\nshard_tokens = {args.shard_tokens}\nledger_rows_per_part = {args.ledger_rows}\n")
    run(REPO, crawl, recipe, args.keep / "run")
    print(f"this checkout, shard_tokens = {args.shard_tokens}:")
    for key, value in shard_figures(args.keep / "run", args.shard_tokens).items():
        print(f"  {key}: {value}")
    if args.checkout:
        old = args.keep / "old.toml"
        old.write_text(f"[output]\nshard_target_tokens = {args.shard_tokens}\n"
                       f"ledger_rows_per_part = {args.ledger_rows}\n")
        run(args.checkout.resolve(), crawl, old, args.keep / "old")
        manifest = json.loads((args.keep / "old" / "manifest.json").read_text())
        tokens = [e["tokens"] for e in manifest["shards"]]
        print(f"{args.checkout}, shard_target_tokens = {args.shard_tokens}: shards {len(tokens)}, tokens "
              f"{sum(tokens)}, per shard min {min(tokens)} max {max(tokens)}")


if __name__ == "__main__":
    main()
