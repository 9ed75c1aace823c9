"""Mixtures at scale: `tokenmill mix` on 1 B tokens of releases, and PackedReader's tokens per second on the
mixture it writes.

    python bench/mixture.py [--run DIR] [--copies 180 100] [--total 1000000000] [--keep DIR]

1. A real run: the 2,500-page bench crawl (../shared/tools/make_bench_warc.py) through the default recipe with
   near dedup (so cluster sizes above 1 exist), or --run DIR (any finished run).
2. Two releases made from it at scale: `web` holds --copies[0] copies of the run's shards, `books`
   --copies[1] (hard links under new names, listed in a release manifest with each file's sha256: the bytes
   are the run's, so after the first read every read comes from the page cache; a cold disk or an object
   store adds its own read time).
3. `tokenmill mix` (a fresh process, timed): web 0.7 with `where = "language = 'en'"` and FineWeb-2's
   repeat table, books 0.3, total --total tokens.
4. PackedReader over the whole mixture, seq_len 2048, one process (timed from construction to the last
   sequence; the loop only sums each sequence's first token), as sequences and as batches of 8, and rank 0
   of 8; the shares it yielded.

Goals (issue "Mixtures"): the mix in minutes, the reader >= 50 M tokens/s per process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_crawl  # noqa: E402

FINEWEB2 = {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}


def make_run(work: Path) -> Path:
    crawl = bench_crawl(work / "crawl")
    recipe = work / "near.toml"
    recipe.write_text('base = "default"\n[dedup.near]\nenabled = true\n')
    out = work / "run"
    subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--input", str(crawl / "*.warc.gz"), "--output",
                    str(out), "--config", str(recipe)], check=True, capture_output=True)
    return out


def scaled_release(run: Path, target: Path, name: str, copies: int) -> int:
    """A release folder of `copies` hard-linked copies of the run's shards; its tokens."""
    manifest = json.loads((run / "manifest.json").read_text())
    (target / "shards").mkdir(parents=True)
    files = []
    digests = {e["path"]: hashlib.sha256((run / e["path"]).read_bytes()).hexdigest() for e in manifest["shards"]}
    for c in range(copies):
        for e in manifest["shards"]:
            rel = f"shards/copy{c:04d}-{Path(e['path']).name}"
            os.link(run / e["path"], target / rel)
            files.append({"path": rel, "bytes": e["bytes"], "sha256": digests[e["path"]], "rows": e["rows"],
                          "tokens": e["tokens"]})
    tokens = manifest["totals"]["tokens"] * copies
    (target / "manifest.json").write_text(json.dumps({
        "name": name, "version": "1.0.0", "schema_version": manifest["schema_version"], "files": files,
        "tokenizer": manifest["tokenizer"], "score_columns": manifest["score_columns"],
        "totals": {"documents": manifest["totals"]["documents"] * copies, "tokens": tokens}}))
    return tokens


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, help="a finished run to scale up (default: run the bench crawl)")
    ap.add_argument("--copies", type=int, nargs=2, default=[180, 100])
    ap.add_argument("--total", type=int, default=1_000_000_000)
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tm-mix-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run = args.run or make_run(work)
        for d in ("web", "books", "mix"):
            shutil.rmtree(work / d, ignore_errors=True)
        web = scaled_release(run, work / "web", "web", args.copies[0])
        books = scaled_release(run, work / "books", "books", args.copies[1])
        print(f"releases: web {web:,} tokens, books {books:,} tokens (from {run})")
        spec = work / "mix.toml"
        spec.write_text(f'name = "bench"\ntotal_tokens = {args.total}\nseed = 0\n'
                        f'[[sources]]\npath = "{work / "web"}"\nweight = 0.7\nwhere = "language = \'en\'"\n'
                        "[sources.repeat_by_cluster_size]\n" + "".join(f"{k} = {v}\n" for k, v in FINEWEB2.items())
                        + f'[[sources]]\npath = "{work / "books"}"\nweight = 0.3\n')
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tokenmill_cli", "mix", str(spec), "--to", str(work / "mix")],
                              capture_output=True, text=True, cwd=REPO)
        mix_seconds = time.perf_counter() - start
        if done.returncode:
            print(done.stdout, done.stderr)
            return 1
        manifest = json.loads((work / "mix" / "manifest.json").read_text())
        plan = manifest["plan"]
        print(f"tokenmill mix: {mix_seconds:.1f} s for {manifest['total_tokens']:,} tokens ({plan['units']:,} units, "
              f"{plan['windows']:,} windows, {plan['entries']:,} document entries; plan "
              f"{sum(f['bytes'] for f in plan['files']) / 1024:.0f} KiB)")
        for s in manifest["sources"]:
            print(f"  {s['label']}: {s['planned_tokens']:,} tokens, {s['epochs']:.2f} epochs, copies {s['copies']}")

        from training.reader import PackedReader

        for rank, world, batch in ((0, 1, 0), (0, 1, 8), (0, 8, 0)):
            start = time.perf_counter()
            reader = PackedReader(str(work / "mix"), 2048, rank=rank, world_size=world)
            check = 0
            for seq in (reader.batches(batch) if batch else reader):
                check += int(seq[0, 0] if batch else seq[0])
            seconds = time.perf_counter() - start
            yielded = reader.sequences * 2049
            shares = reader.tokens_by_source
            total = sum(shares.values())
            how = f"batches({batch})" if batch else "sequences"
            print(f"PackedReader rank {rank} of {world}, {how}: {yielded:,} tokens in {seconds:.1f} s = "
                  f"{yielded / seconds / 1e6:.1f} M tokens/s; shares "
                  + ", ".join(f"{k} {v / total:.4f}" for k, v in shares.items())
                  + f"; {len(reader.read_log):,} row-group decodes")
            reader.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
