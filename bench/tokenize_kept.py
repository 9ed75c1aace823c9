"""Tokenization spent on documents a run keeps vs drops later: a `keep_top_fraction = 0.1` recipe, two checkouts.

    python bench/tokenize_kept.py --keep DIR [--checkout OLD] [--docs 2500 --shards 4]

Trains the quality model of bench/train_quality.py once (into DIR/quality), then runs the recipe below on
the bench crawl with this checkout and, given `--checkout`, with another one (an older commit, in a git
worktree): prints each run's `tokenize` stage seconds (stats.json `stage_seconds`, summed over workers),
its wall time, and whether the two runs' shards and ledger parts are byte for byte the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_crawl  # noqa: E402

RECIPE = """base = "fineweb"
name = "top-tenth"
[quality]
enabled = true
model_path = "{model}"
keep_top_fraction = 0.1
"""


def digest(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*.parquet"))}


def run(checkout: Path, crawl: Path, recipe: Path, out: Path) -> dict:
    subprocess.run([sys.executable, str(checkout / "run_pipeline.py"), "--input", f"{crawl}/*.warc.gz", "--output",
                    str(out), "--config", str(recipe), "--overwrite", "--quiet"], check=True, cwd=checkout)
    return json.loads((out / "stats.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=Path, required=True, help="folder for the crawl, the model and the runs")
    ap.add_argument("--checkout", type=Path, default=None, help="another checkout to compare with")
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--shards", type=int, default=4)
    args = ap.parse_args()
    crawl = bench_crawl(args.keep / f"crawl-{args.docs}-{args.shards}", args.docs, args.shards)
    model = args.keep / "quality" / "quality.bin"
    if not model.exists():
        subprocess.run([sys.executable, str(REPO / "bench" / "train_quality.py"), "--out", str(model.parent),
                        "--keep", str(args.keep)], check=True, cwd=REPO)
    recipe = args.keep / "top-tenth.toml"
    recipe.write_text(RECIPE.format(model=model))
    results = {}
    for name, checkout in (("this checkout", REPO), ("--checkout", args.checkout)):
        if checkout is None:
            continue
        out = args.keep / f"out-{'new' if checkout == REPO else 'old'}"
        stats = run(checkout.resolve(), crawl, recipe, out)
        results[name] = digest(out)
        kept, passed = stats["kept"], stats["stages"]["filters"]["out"]
        print(f"{name:14s} {checkout}: {passed:,} documents past the filters, {kept:,} kept; tokenize "
              f"{stats['stage_seconds'].get('tokenize', 0):.2f} s; wall {stats['wall_seconds']:.1f} s")
    if len(results) == 2:
        same = results["this checkout"] == results["--checkout"]
        print(f"shards and ledger parts byte-identical: {same} ({len(results['this checkout'])} files)")


if __name__ == "__main__":
    main()
