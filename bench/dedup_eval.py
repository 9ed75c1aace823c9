"""Near-duplicate removal measured against brute-force exact Jaccard, and against human judgments.

    python bench/dedup_eval.py [--docs 2500] [--keep DIR] [--threshold 0.8]
    python bench/dedup_eval.py --snapshots [--docs 2500] [--keep DIR]

1. Builds a crawl with ../shared/tools/make_bench_warc.py (planted exact and near duplicates).
2. Runs the pipeline with near dedup on (default recipe otherwise) and --keep-scored, so every extracted
   document's text is at hand.
3. Computes exact word-5-gram Jaccard over all pairs of extracted documents that survived exact dedup
   (exhaustive via an inverted index) and takes pairs >= --threshold as true duplicates.
4. Reports precision (removed documents with a true duplicate among the survivors) and recall (correct
   removals / all-but-one of each true-duplicate group). Goal: precision >= 0.98, recall >= 0.95.
5. Agreement with the 480 human-judged pairs of ../shared/data/copycat_neardup_judgments: label 2 or 3 =
   duplicate, 0.5 = not a duplicate, 1 and unknown left out; our call for a pair (one of them the survivor) =
   shares an LSH band, the signature-estimated Jaccard reaches `threshold`, and the exact shingle Jaccard
   reaches `confirm_threshold`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import SHARED, bench_crawl  # noqa: E402
from bench.dedup_truth import jaccard, score_removals, shingle_set, similar_pairs  # noqa: E402
from dedup.minhash import MinHasher, band_keys, estimated_jaccard, shingle_hashes  # noqa: E402
from schemas.recipe import NearDedupConfig  # noqa: E402

RECIPE = "[dedup.near]\nenabled = true\n"


def run(crawl: Path, out: Path, recipe: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--input", f"{crawl}/*.warc.gz", "--output",
                    str(out), "--config", str(recipe), "--keep-scored"], check=True, capture_output=True)


def evaluate_run(out: Path, threshold: float) -> tuple[dict, object]:
    scored = pq.read_table(sorted((out / "scored").glob("*.parquet")), columns=["doc_id", "text"]).to_pylist()
    ledger = pq.read_table(sorted((out / "ledger").glob("*.parquet")),
                           columns=["doc_id", "stage", "reason"]).to_pylist()
    exact_dropped = {r["doc_id"] for r in ledger if r["reason"] == "exact_duplicate"}
    near_removed = {r["doc_id"] for r in ledger if r["reason"] == "near_duplicate"}
    texts = {r["doc_id"]: r["text"] for r in scored if r["doc_id"] not in exact_dropped}
    pairs = similar_pairs(texts, threshold)
    return {"documents": len(texts), "true_pairs": len(pairs)}, score_removals(texts, near_removed, pairs)


SNAPSHOTS = ("CC-MAIN-2024-10", "CC-MAIN-2024-18")


def snapshot_layout(crawl: Path, root: Path) -> dict[str, str]:
    """The crawl's files laid out and named as Common Crawl ships them, half in each of two snapshots
    (crawl-data/<snapshot>/segments/<segment>/warc/CC-MAIN-<timestamps>-<n>.warc.gz, as symlinks):
    {file base name: snapshot}."""
    files = sorted(crawl.glob("*.warc.gz"))
    snapshot_of = {}
    for i, src in enumerate(files):
        snapshot = SNAPSHOTS[i * len(SNAPSHOTS) // len(files)]
        folder = root / "crawl-data" / snapshot / "segments" / "1707947473347.0" / "warc"
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / f"CC-MAIN-20240220211055-20240221001055-{i:05d}.warc.gz"
        if not dst.exists():
            dst.symlink_to(src.resolve())
        snapshot_of[dst.name] = snapshot
    return snapshot_of


def cross_snapshot(root: Path, crawl: Path) -> None:
    """Near-duplicate removals against a copy in the other snapshot, with scope "all" and "snapshot"."""
    snapshot_of = snapshot_layout(crawl, root / "cc")
    for scope in ("all", "snapshot"):
        recipe = root / f"near-{scope}.toml"
        recipe.write_text(f'{RECIPE}scope = "{scope}"\n')
        out = root / f"cc_{scope}"
        subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--input",
                        f"{root}/cc/crawl-data/*/segments/*/warc/*.warc.gz", "--output", str(out), "--config",
                        str(recipe), "--overwrite"], check=True, capture_output=True)
        ledger = pq.read_table(sorted((out / "ledger").glob("*.parquet")),
                               columns=["doc_id", "source", "reason", "cluster_id"]).to_pylist()
        source = {r["doc_id"]: r["source"] for r in ledger}
        near = [r for r in ledger if r["reason"] == "near_duplicate"]
        cross = sum(snapshot_of[r["source"]] != snapshot_of[source[r["cluster_id"]]] for r in near)
        stats = json.loads((out / "stats.json").read_text())["near_dedup"]
        print(f"scope {scope:8s}: {len(near)} near-duplicate removals, {cross} against the other snapshot's copy; "
              f"snapshots {stats.get('snapshots', '-')}, {stats['rounds_used']} rounds")


def human_agreement(cfg: NearDedupConfig) -> dict:
    hasher = MinHasher(cfg.bands * cfg.rows, cfg.seed)
    path = SHARED / "data" / "copycat_neardup_judgments" / "judgments.jsonl.gz"
    tp = fp = fn = tn = 0
    exact_tp = exact_fp = exact_fn = exact_tn = 0
    for line in gzip.open(path, "rt"):
        row = json.loads(line)
        if row["label"] in ("2", "3"):
            truth = True
        elif row["label"] == "0.5":
            truth = False
        else:
            continue
        a, b = row["src_doc"], row["target_doc"]
        sa, sb = hasher.signatures([shingle_hashes(a, cfg.ngram), shingle_hashes(b, cfg.ngram)])
        shares_band = bool(set(band_keys(sa, cfg.bands, cfg.rows)) & set(band_keys(sb, cfg.bands, cfg.rows)))
        exact_j = jaccard(shingle_set(a, cfg.ngram), shingle_set(b, cfg.ngram))
        ours = shares_band and estimated_jaccard(sa, sb) >= cfg.threshold and exact_j >= cfg.confirm_threshold
        exact = exact_j >= 0.8
        tp += ours and truth
        fp += ours and not truth
        fn += (not ours) and truth
        tn += (not ours) and not truth
        exact_tp += exact and truth
        exact_fp += exact and not truth
        exact_fn += (not exact) and truth
        exact_tn += (not exact) and not truth
    n = tp + fp + fn + tn

    def pr(t, f, m):
        return (t / (t + f) if t + f else 1.0), (t / (t + m) if t + m else 1.0)

    p, r = pr(tp, fp, fn)
    ep, er = pr(exact_tp, exact_fp, exact_fn)
    return {"pairs": n, "duplicates": tp + fn, "accuracy": (tp + tn) / n, "precision": p, "recall": r,
            "exact_jaccard_0.8": {"accuracy": (exact_tp + exact_tn) / n, "precision": ep, "recall": er}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--keep", default=None)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--snapshots", action="store_true",
                    help="lay the crawl out as Common Crawl does, in two snapshots, and count removals across them "
                         "with scope all and snapshot")
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="tokenmill-dedup-"))
    crawl = bench_crawl(root / "crawl", args.docs)
    if args.snapshots:
        cross_snapshot(root, crawl)
        return 0
    recipe = root / "near.toml"
    recipe.write_text(RECIPE)
    out = root / "near_out"
    run(crawl, out, recipe)
    info, score = evaluate_run(out, args.threshold)
    print(f"{info['documents']} documents after exact dedup, {info['true_pairs']} pairs with exact "
          f"word-5-gram Jaccard >= {args.threshold}")
    print(f"near_duplicate removals: {score.removed}, correct {score.correct_removals}, "
          f"ideal {score.expected_removals}")
    print(f"precision {score.precision:.4f}  recall {score.recall:.4f}  (goal >= 0.98 / >= 0.95)")
    human = human_agreement(NearDedupConfig())
    print(f"human judgments (label 2,3 = duplicate; 0.5 = not; 1, unknown left out): {human['pairs']} pairs, "
          f"{human['duplicates']} duplicates; ours: accuracy {human['accuracy']:.3f}, precision "
          f"{human['precision']:.3f}, recall {human['recall']:.3f}; exact Jaccard >= 0.8 for comparison: "
          f"accuracy {human['exact_jaccard_0.8']['accuracy']:.3f}, precision "
          f"{human['exact_jaccard_0.8']['precision']:.3f}, recall {human['exact_jaccard_0.8']['recall']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
