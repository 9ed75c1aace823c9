"""Ours vs the peer (datatrove's FineWeb recipe) on the same crawl, same machine, one run each.

    python bench/compare_peer.py [--docs 2500] [--keep DIR] [--no-variants] [--peer-version 0.10.1]

Peer: datatrove's FineWeb pipeline end to end, its filters then its four MinHash stages, installed in its own
virtualenv as its maintainers ship it, and in a second one on tokenmill's trafilatura release (bench/peer.py
says how it is run offline).

Ours: the `fineweb` recipe as shipped (its filters, exact dedup, FineWeb's MinHash dedup per snapshot) plus
tokenization to shards (more work than the peer does), run as a user runs it (no runner flag: the local
runner on all cores). Prints each peer's time and its ratio to ours. Ours also runs a
second time without the cheap-first language cascade (precheck_margin = 0) to report how far the cascade changes
what is kept (agreement = documents kept by both / kept by either; goal >= 99.5 %), and a third time with
`extract.fast = true` (trafilatura without its fallback comparison: not the peer's recipe, reported apart).
How far the two keep the same documents: bench/parity_datatrove.py.

It also prints the extraction floor (bench/extract_floor.py): stock trafilatura's CPU time on the pages past
the precheck, over the cores. No change outside extraction can bring our wall time below it, so peer time /
floor is the highest ratio this recipe can reach on this machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_crawl  # noqa: E402
from bench.peer import ensure_peer, our_trafilatura, run_peer  # noqa: E402

# The fineweb recipe as shipped (its MinHash dedup included), read from its file so the variants below can
# change one value of it.
RECIPE = (REPO / "schemas" / "builtin_recipes" / "fineweb.toml").read_text()


def kept_ids(out: Path) -> set[str]:
    import pyarrow.parquet as pq

    return set(pq.read_table(sorted((out / "shards").glob("*.parquet")), columns=["doc_id"]).column("doc_id")
               .to_pylist())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--keep", default=None)
    ap.add_argument("--peer-venv", default=str(REPO / ".bench-venvs" / "datatrove"))
    ap.add_argument("--peer-ours-venv", default=str(REPO / ".bench-venvs" / "datatrove-ourtraf"),
                    help="the peer on tokenmill's trafilatura release")
    ap.add_argument("--peer-version", default="0.10.1")
    ap.add_argument("--no-variants", action="store_true",
                    help="leave out the runs without the cascade and with extract.fast (the ratios only)")
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="tokenmill-peer-"))
    crawl = bench_crawl(root / "crawl", args.docs)
    peers = {"as shipped": ensure_peer(Path(args.peer_venv), args.peer_version),
             f"on trafilatura {our_trafilatura()}": ensure_peer(Path(args.peer_ours_venv), args.peer_version,
                                                                 our_trafilatura())}

    def timed(cmd: list[str]) -> tuple[float, str]:
        """(wall seconds, stdout) of one command."""
        start = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return time.perf_counter() - start, done.stdout

    def ours(name: str, recipe_text: str) -> tuple[float, dict]:
        recipe = root / f"{name}.toml"
        recipe.write_text(recipe_text)
        wall, _ = timed([sys.executable, str(REPO / "run_pipeline.py"), "--input", f"{crawl}/*.warc.gz",
                         "--output", str(root / name), "--config", str(recipe), "--overwrite"])
        return wall, json.loads((root / name / "stats.json").read_text())

    # Ours runs before and after each peer, and each ratio takes the mean of the two runs around its peer: on a
    # shared machine the load drifts over the peer's minutes, and bracketing it cancels a steady drift. Ours runs
    # as a user runs it: no runner flag (the local runner on all cores).
    walls, stats = [], None
    first_s, stats = ours("ours", RECIPE)
    walls.append(first_s)
    peer_runs: dict[str, tuple[float, dict]] = {}
    for i, (label, python) in enumerate(peers.items()):
        start = time.perf_counter()
        parts = run_peer(python, crawl, root / f"peer-{i}")
        peer_runs[label] = (time.perf_counter() - start, parts)
        walls.append(ours(f"ours-{i + 2}", RECIPE)[0])
    html_docs = stats["stages"]["read"]["out"]

    def jsonl_docs(folder: Path) -> int:
        return sum(1 for f in folder.glob("*.jsonl*") for _ in gzip.open(f, "rt"))

    print(f"crawl: {crawl} ({html_docs} HTML documents; {stats['stages']['extract']['in']} reach extraction in "
          f"our run)")
    print(f"ours (fineweb recipe + exact and near dedup + tokenized shards): runs "
          f"{' / '.join(f'{w:.1f}' for w in walls)} s; kept {stats['kept']}")
    for i, (label, (peer_s, parts)) in enumerate(peer_runs.items()):
        ours_s = (walls[i] + walls[i + 1]) / 2
        out = root / f"peer-{i}"
        print(f"peer {label} (datatrove {args.peer_version} FineWeb: filters, then MinHash): {peer_s:.1f} s "
              f"(filters {parts['filters_s']:.1f} s, MinHash {parts['minhash_s']:.1f} s), kept "
              f"{jsonl_docs(out / 'deduped')} ({jsonl_docs(out / 'filtered')} after its filters; ~0 would mean a "
              f"broken extractor); ours around it {ours_s:.1f} s: ratio {peer_s / ours_s:.2f}x")
    from bench.extract_floor import floor

    f = floor(crawl, "fineweb")
    f["floor_seconds"] = max(f["floor_seconds"], 1e-9)  # a crawl with no page to extract
    mean = sum(walls) / len(walls)
    print(f"extraction floor: stock trafilatura {f['version']} on the {f['pages']} pages past the precheck: "
          f"{f['cpu_seconds']:.1f} CPU s ({f['ms_per_page']:.1f} ms a page) / {f['cores']} cores = "
          f"{f['floor_seconds']:.1f} s; our run is {mean / f['floor_seconds']:.2f}x the floor; the highest ratio "
          f"against each peer: " + ", ".join(f"{label} {peer_s / f['floor_seconds']:.2f}x"
                                            for label, (peer_s, _p) in peer_runs.items()))
    if args.no_variants:
        return 0
    # The same recipe without the cheap-first language cascade: the kept sets must agree (goal >= 99.5 %).
    plain_s, _ = ours("ours-no-precheck", RECIPE.replace("min_score = 0.65\n",
                                                         "min_score = 0.65\nprecheck_margin = 0\n", 1))
    fast_s, _ = ours("ours-fast-extract", RECIPE.replace("favor_precision = true\n",
                                                         "favor_precision = true\nfast = true\n", 1))
    with_cascade, without = kept_ids(root / "ours"), kept_ids(root / "ours-no-precheck")
    agreement = len(with_cascade & without) / max(1, len(with_cascade | without))
    pre = stats["stages"]["language_precheck"]
    print(f"cascade: {sum(pre['dropped'].values())} of {pre['in']} pages dropped before extraction; kept sets with "
          f"and without it: {len(with_cascade)} / {len(without)}, {len(with_cascade & without)} in both, agreement "
          f"(|both| / |either|) {agreement:.4f} (goal >= 0.995); without the cascade {plain_s:.1f} s")
    print(f"ours with extract.fast = true (not the peer's recipe): {fast_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
