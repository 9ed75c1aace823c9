"""Incremental releases: a crawl B that overlaps a released crawl A, run against A's release.

    python bench/incremental.py [--docs 2500] [--keep DIR]

A bench crawl of --docs pages in 4 files (../shared/tools/make_bench_warc.py: real pages with planted exact
and near duplicates, also across files). Crawl A is files 0 and 1; crawl B is file 1 again under another name
(a recrawl: the same pages, other document ids), files 2 and 3. Recipe: default + near dedup.

1. run A, release it (`tokenmill release`), report the release's dedup index bytes per document;
2. run B alone, and B with `[dedup] against = [A's release]`, timed (2 local workers);
3. truth, by brute force: every B document that reached dedup against every document A kept, exact word
   5-gram Jaccard of the normalized texts (bench/dedup_truth.py's shingle sets, as bench/dedup_eval.py
   scores near dedup); a B document with Jaccard >= 0.8 to some A document is a copy of A.

Prints the precision of B's duplicate_of_release drops against that truth (goal >= 0.98) and the recall of the
copies of A that B does not keep (>= 0.95; a copy may go as an exact duplicate of a B document that was dropped
against A),
how many of B's new documents (no A document at >= 0.8) that B alone keeps the run against A keeps too (goal:
all), and B's wall time against A over B alone (goal <= 1.3x, reading the index included).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_crawl  # noqa: E402
from bench.dedup_truth import jaccard, shingle_set  # noqa: E402

THRESHOLD = 0.8


def _run(inputs: list[Path], out: Path, config: Path, *extra: str) -> tuple[dict, float]:
    import run_pipeline

    start = time.perf_counter()
    args = [a for p in inputs for a in ("--input", str(p))] + ["--output", str(out), "--config", str(config),
                                                                "--quiet", "--direct_num_workers=2", *extra]
    assert run_pipeline.main(args) == 0, f"run {out} failed"
    return json.loads((out / "stats.json").read_text()), time.perf_counter() - start


def _texts(run: Path) -> dict[str, str]:
    """doc_id -> text as extracted, from a --keep-scored run's scored/ parts."""
    import pyarrow.parquet as pq

    out = {}
    for part in sorted((run / "scored").glob("*.parquet")):
        for row in pq.read_table(part, columns=["doc_id", "text"]).to_pylist():
            out[row["doc_id"]] = row["text"]
    return out


def _ledger(run: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(sorted((run / "ledger").glob("*.parquet")),
                         columns=["doc_id", "stage", "reason", "kept", "cluster_id"]).to_pylist()


def copies_of_a(b_texts: dict[str, str], a_texts: dict[str, str]) -> dict[str, float]:
    """Each B document's best exact 5-gram Jaccard with any A document, on bench/dedup_truth's shingle sets
    (the reference definition bench/dedup_eval.py scores near dedup with); only documents sharing a shingle are
    compared (an inverted index of A's shingles), which is exhaustive: the others have Jaccard 0."""
    a_sets = {doc: shingle_set(text) for doc, text in a_texts.items()}
    holders: dict[str, list[str]] = {}
    for doc, shingles in a_sets.items():
        for s in shingles:
            holders.setdefault(s, []).append(doc)
    best = {}
    for doc, text in b_texts.items():
        mine = shingle_set(text)
        candidates = {a for s in mine for a in holders.get(s, ())}
        best[doc] = max((jaccard(mine, a_sets[a]) for a in candidates), default=0.0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--keep", help="keep the crawl and the runs here")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="incremental-"))
    crawl = bench_crawl(root / "crawl", docs=args.docs, shards=4)
    files = sorted(crawl.glob("*.warc.gz"))
    recrawl = root / "recrawl"
    recrawl.mkdir(exist_ok=True)
    again = recrawl / f"recrawl-{files[1].name}"
    shutil.copyfile(files[1], again)
    a_inputs, b_inputs = files[:2], [again, *files[2:]]

    near = root / "near.toml"
    near.write_text("[dedup.near]\nenabled = true\n")
    for name in ("A", "B-alone", "B-against", "release-A"):
        shutil.rmtree(root / name, ignore_errors=True)
    _stats, a_seconds = _run(a_inputs, root / "A", near, "--keep-scored")
    import tokenmill_cli

    assert tokenmill_cli.main(["release", str(root / "A"), "--name", "web-a", "--version", "1", "--to",
                               str(root / "release-A")]) == 0
    release = json.loads((root / "release-A" / "manifest.json").read_text())
    index = release["dedup_index"]
    print(f"A: {len(a_inputs)} files, {release['totals']['documents']:,} documents released in {a_seconds:.1f} s; "
          f"dedup index {sum(f['bytes'] for f in index['files']):,} bytes, {index['bytes_per_document']:,.0f} "
          "bytes per document")

    against = root / "against.toml"
    against.write_text(f'[dedup]\nagainst = ["{root / "release-A"}"]\n[dedup.near]\nenabled = true\n')
    b_alone, alone_seconds = _run(b_inputs, root / "B-alone", near, "--keep-scored")
    b_against, against_seconds = _run(b_inputs, root / "B-against", against)
    print(f"B: {len(b_inputs)} files, {b_alone['records']:,} records; alone {alone_seconds:.1f} s "
          f"({b_alone['kept']:,} kept), against A {against_seconds:.1f} s ({b_against['kept']:,} kept): "
          f"{against_seconds / alone_seconds:.2f}x")
    print(f"   dedup_against: {b_against['dedup_against']}")

    a_ledger = _ledger(root / "A")
    a_kept = {r["doc_id"] for r in a_ledger if r["kept"]}
    a_texts = {d: t for d, t in _texts(root / "A").items() if d in a_kept}
    b_ledger = {r["doc_id"]: r for r in _ledger(root / "B-against")}
    # B's documents that reached dedup: every one that was not dropped before it.
    early = ("read", "url", "language_precheck", "extract", "filters", "decontamination", "classifiers")
    reached = {d for d, r in b_ledger.items() if r["kept"] or r["stage"] not in early}
    b_texts = {d: t for d, t in _texts(root / "B-alone").items() if d in reached}
    t = time.perf_counter()
    best = copies_of_a(b_texts, a_texts)
    truth = {d for d, j in best.items() if j >= THRESHOLD}
    dropped = {d for d, r in b_ledger.items() if r["reason"] == "duplicate_of_release"}
    # A copy of A is removed when B does not keep it: dropped against A, or as a duplicate within B of a
    # document that was (its exact group had no released member, its near copy in B had).
    removed = {d for d in truth if not b_ledger[d]["kept"]}
    print(f"truth: {len(truth):,} of {len(b_texts):,} B documents are copies of A (Jaccard >= {THRESHOLD}; brute "
          f"force in {time.perf_counter() - t:.1f} s)")
    print(f"duplicate_of_release: {len(dropped):,} dropped, precision {len(truth & dropped) / max(1, len(dropped)):.4f}"
          f" (recall {len(truth & dropped) / max(1, len(truth)):.4f}); copies of A removed: {len(removed):,}, "
          f"recall {len(removed) / max(1, len(truth)):.4f}")
    for d in sorted(dropped - truth)[:5]:
        print(f"   dropped, not a copy: {d} best Jaccard {best.get(d, 0):.3f} ({b_ledger[d]['cluster_id']})")
    for d in sorted(truth - removed)[:5]:
        print(f"   a copy, kept: {d} Jaccard {best[d]:.3f}")
    alone_kept = {r["doc_id"] for r in _ledger(root / "B-alone") if r["kept"]}
    new = {d for d in alone_kept if d not in truth}
    kept_new = {d for d in new if b_ledger[d]["kept"]}
    print(f"new in B (kept by B alone, no A copy): {len(new):,}; kept against A: {len(kept_new):,}")
    for d in sorted(new - kept_new)[:5]:
        print(f"   new, not kept: {d} best Jaccard {best.get(d, 0):.3f} ({b_ledger[d]['stage']}/"
              f"{b_ledger[d]['reason']} {b_ledger[d]['cluster_id']})")


if __name__ == "__main__":
    main()
