"""End-to-end throughput and per-stage cost on a realistic crawl; where a run's wall time goes, by size.

    python bench/throughput.py [--docs 2500] [--shards 4] [--workers 0] [--keep DIR]
    python bench/throughput.py --breakdown [--sizes 24 300 2500 25000] [--config fineweb] [--keep DIR]

--breakdown: for each size (24 = the demo crawl, demo/crawl.py, 24 WARC records; any other = a crawl of that
many pages from ../shared/tools/make_bench_warc.py) one run as a user runs it (`run_pipeline.py`, no runner
flag), and a table of where its wall time went: the driver's imports (`python -c "import run_pipeline"`, timed
apart) and its job graph (build_pipeline on an empty Pipeline, timed apart), the rest of the driver's start-up,
then stats.json's phases (the workers' start, the records, near dedup's buckets, rounds and confirmation, the
writer, finalizing, what no phase covers: the runner's scheduling) and each stage's worker CPU seconds; last the
extraction floor (bench/extract_floor.py) and the run as a multiple of it. One sitting, nothing else running.

1. Builds a crawl with ../shared/tools/make_bench_warc.py (real pages, planted duplicates, non-HTML).
2. Runs the full pipeline (DirectRunner, multi_processing) in a child process: documents/s end to end,
   wall time, and per process role (the DirectRunner driver, the SDK workers, the extraction children) the
   peak RSS of its largest process and its CPU seconds, sampled from /proc.
3. Runs each pure core once per document in this process (one core, no Beam) and prints ms/doc per stage,
   median and p95, so a stage's cost is seen without runner noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_crawl, run_sampled  # noqa: E402
from classifiers.language import LanguageIdentifier  # noqa: E402
from dedup.exact import exact_key  # noqa: E402
from dedup.minhash import MinHasher, shingle_hashes  # noqa: E402
from filters.registry import build_filters  # noqa: E402

try:
    from filters.registry import prepare_filters
except ImportError:  # a checkout before fb76d37 prepared nothing (--breakdown on an older tree)
    def prepare_filters(filters):  # type: ignore[no-redef]
        return filters
from ingest.decode import decode_body  # noqa: E402
from ingest.extract import extract_main_text, quick_text  # noqa: E402
from ingest.warc import read_warc, triage  # noqa: E402
from schemas.recipe import load_recipe  # noqa: E402
from schemas.records import Document, Record  # noqa: E402
from tokenization.tokenizers import Tokenizer  # noqa: E402


def run_pipeline(crawl: Path, out: Path, workers: int, recipe: str) -> dict:
    cmd = [sys.executable, str(REPO / "run_pipeline.py"), "--input", f"{crawl}/*.warc.gz", "--output", str(out),
           "--config", recipe,
           "--runner=FnApiRunner", "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    wall, roles = run_sampled(cmd)
    stats = json.loads((out / "stats.json").read_text())
    stats["process_wall_seconds"] = wall
    stats["processes"] = roles
    stats["peak_rss_mib"] = max(r["peak_rss_mib"] for r in roles.values())
    return stats


def per_stage(crawl: Path, limit: int, recipe_name: str) -> dict[str, list[float]]:
    recipe = load_recipe(recipe_name)
    lid = LanguageIdentifier()
    filters = prepare_filters([f for f in build_filters(recipe) if f.needs_text])  # as a worker's set-up does
    tok = Tokenizer(recipe.tokenizer.name)
    hasher = MinHasher(recipe.dedup.near.bands * recipe.dedup.near.rows, recipe.dedup.near.seed)
    hasher.signatures([shingle_hashes("warm up the compiled kernels")])
    times: dict[str, list[float]] = {k: [] for k in
                                      ("read", "decode", "language_precheck", "extract", "language_id", "filters",
                                       "exact_key", "tokenize", "minhash_signature")}
    times.update({f"  filter:{f.name}": [] for f in filters})
    n = 0
    for path in sorted(crawl.glob("*.warc.gz")):
        with open(path, "rb") as f:
            it = read_warc(f, str(path))
            while n < limit:
                t0 = time.perf_counter()
                rec = next(it, None)
                t1 = time.perf_counter()
                if rec is None:
                    break
                if not isinstance(rec, Record):
                    continue
                times["read"].append(t1 - t0)
                if triage(rec, recipe.read) is not None:
                    continue
                n += 1
                t0 = time.perf_counter()
                page, _ = decode_body(rec.body, rec.content_type)
                times["decode"].append(time.perf_counter() - t0)
                lang = recipe.filters.language
                if lang.keep and lang.precheck_margin > 0:
                    p0 = time.perf_counter()
                    lid.best_of([quick_text(page)], lang.keep, lang.precheck_margin)
                    times["language_precheck"].append(time.perf_counter() - p0)
                t1 = time.perf_counter()
                ex = extract_main_text(page, rec.url, recipe.extract)
                t2 = time.perf_counter()
                doc = Document.of_record(rec, ex.text)
                ((doc.language, doc.language_score),) = lid.predict([doc.text])
                t3 = time.perf_counter()
                # Every filter computes its signals (as the pipeline does); timed one by one.
                for flt in filters:
                    f0 = time.perf_counter()
                    flt.decide(doc, flt.signals(doc))
                    times[f"  filter:{flt.name}"].append(time.perf_counter() - f0)
                t4 = time.perf_counter()
                exact_key(doc.text)
                t5 = time.perf_counter()
                tok.encode_batch([doc.text])
                t6 = time.perf_counter()
                hasher.signatures([shingle_hashes(doc.text)])
                times["minhash_signature"].append(time.perf_counter() - t6)
                for key, dt in zip(("extract", "language_id", "filters", "exact_key", "tokenize"),
                                   (t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
                    times[key].append(dt)
    return times


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def breakdown_crawl(root: Path, size: int) -> Path:
    """The crawl of one size: the demo crawl for 24, a make_bench_warc crawl (4 files) otherwise."""
    crawl = root / f"crawl-{size}"
    if size == 24:
        if not list(crawl.glob("*.warc.gz")):
            from demo.crawl import build_demo_crawl

            build_demo_crawl(str(crawl))
        return crawl
    return bench_crawl(crawl, size, 4)


def driver_parts(crawl: Path, recipe_name: str) -> tuple[float, float]:
    """(seconds to import run_pipeline in a fresh interpreter, seconds to build the run's job graph here)."""
    import subprocess

    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import run_pipeline"], cwd=REPO, check=True, capture_output=True)
    imports = time.perf_counter() - start
    import apache_beam as beam

    from pipelines.build import build_pipeline
    from run_pipeline import tokenizer_info

    recipe = load_recipe(recipe_name)
    files = sorted(crawl.glob("*.warc.gz"))
    near, extra = recipe.dedup.near, {}
    try:
        from dedup.components import rounds_to_unroll
    except ImportError:  # a checkout before 9056346 unrolled max_rounds for every run (--checkout comparisons)
        pass
    else:
        extra["rounds"] = rounds_to_unroll(near.max_rounds, near.small_input_bytes,
                                           sum(f.stat().st_size for f in files))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        build_pipeline(beam.Pipeline(), inputs_file=f"{tmp}/inputs.txt", output=f"{tmp}/out", recipe=recipe,
                       tokenizer_info=tokenizer_info(recipe), **extra)
        return imports, time.perf_counter() - start


def breakdown(sizes: list[int], root: Path, recipe_name: str) -> None:
    from bench.extract_floor import floor

    columns: dict[int, dict[str, str]] = {}
    for size in sizes:
        crawl = breakdown_crawl(root, size)
        out = root / f"out-{size}"
        wall, _roles = run_sampled([sys.executable, str(REPO / "run_pipeline.py"), "--input", f"{crawl}/*.warc.gz",
                                    "--output", str(out), "--config", recipe_name, "--overwrite"])
        stats = json.loads((out / "stats.json").read_text())
        imports, graph = driver_parts(crawl, recipe_name)
        phases = {p["phase"]: p["seconds"] for p in stats["timing"]["phases"]}
        rounds = [v for k, v in phases.items() if k.startswith("near_dedup_round_")]
        f = floor(crawl, recipe_name)
        col = {
            "documents (HTML pages past triage)": f"{stats['stages']['read']['out']:,}",
            "kept": f"{stats['kept']:,}",
            "command wall (s)": f"{wall:.1f}",
            "  driver: imports": f"{imports:.2f}",
            "  driver: job graph": f"{graph:.2f}",
            "  driver: the rest (recipe, inputs, output folder)": f"{phases['startup_driver'] - imports - graph:.2f}",
            "  workers' start (runner, processes, models)": f"{phases.get('startup_workers', 0):.2f}",
            "  records (read to staging)": f"{phases.get('records', 0):.2f}",
            "  near dedup: buckets": f"{phases.get('near_dedup_buckets', 0):.2f}",
            "  near dedup: rounds (count)": f"{sum(rounds):.2f} ({len(rounds)})",
            "  near dedup: confirm": f"{phases.get('near_dedup_confirm', 0):.2f}",
            "  per-file writer and cut": f"{phases.get('writing', 0):.2f}",
            "  finalizing (manifest, stats, shutdown)": f"{phases.get('finalizing', 0):.2f}",
            "  runner between phases (other)": f"{stats['timing']['other_seconds']:.2f}",
            "  after stats.json (exit)": f"{wall - stats['timing']['wall_seconds']:.2f}",
        }
        col.update({f"CPU: {k}": f"{v:.2f}" for k, v in sorted(stats["stage_seconds"].items())})
        col.update({f"CPU: set-up {k}": f"{v:.2f}" for k, v in sorted(stats["timing"]["setup_seconds"].items())})
        col["floor: stock trafilatura CPU s (pages)"] = f"{f['cpu_seconds']:.1f} ({f['pages']:,})"
        col[f"floor on {f['cores']} cores (s); run / floor"] = (
            f"{f['floor_seconds']:.1f}; {wall / max(f['floor_seconds'], 1e-9):.1f}x")
        columns[size] = col
    rows = list(dict.fromkeys(k for c in columns.values() for k in c))
    print(f"recipe {recipe_name}, {os.cpu_count()} cores, `python bench/throughput.py --breakdown --sizes "
          f"{' '.join(map(str, sizes))}`")
    print("| | " + " | ".join(f"{s:,} docs" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for r in rows:
        print(f"| {r.strip()} | " + " | ".join(columns[s].get(r, "-") for s in sizes) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--breakdown", action="store_true", help="where the wall time goes, at each of --sizes")
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 300, 2500, 25000])
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--workers", type=int, default=0, help="DirectRunner workers (0 = all cores)")
    ap.add_argument("--stage-sample", type=int, default=500, help="documents timed per stage in-process")
    ap.add_argument("--keep", default=None, help="keep crawl and output in this directory")
    ap.add_argument("--config", default="fineweb", help="recipe for the run and the per-stage timing")
    args = ap.parse_args()

    root = Path(args.keep or tempfile.mkdtemp(prefix="tokenmill-bench-"))
    if args.breakdown:
        breakdown(args.sizes, root, args.config)
        return 0
    crawl, out = root / "crawl", root / "out"
    bench_crawl(crawl, args.docs, args.shards)
    stats = run_pipeline(crawl, out, args.workers, args.config)
    records = stats["records"]
    html_docs = stats["stages"]["read"]["out"]  # HTML pages past triage (the language precheck may skip extraction)
    print(f"crawl: {args.docs} documents requested, {records} content records, {html_docs} HTML pages, "
          f"{stats['stages']['extract']['in']} reached extraction, "
          f"{stats['kept']} kept, {stats['tokens']} tokens")
    print(f"end to end: {stats['process_wall_seconds']:.1f} s wall (pipeline {stats['wall_seconds']:.1f} s) = "
          f"{records / stats['process_wall_seconds']:.1f} records/s, "
          f"{html_docs / stats['process_wall_seconds']:.1f} HTML documents/s, on {os.cpu_count()} cores")
    print(f"peak RSS of the largest process: {stats['peak_rss_mib']:.0f} MiB")
    for role, r in stats["processes"].items():
        print(f"  {role:20s} peak RSS {r['peak_rss_mib']:6.0f} MiB (largest one)  CPU {r['cpu_seconds']:6.1f} s (all)")
    print(f"seconds per stage summed over workers: {stats.get('stage_seconds')}")

    times = per_stage(crawl, args.stage_sample, args.config)
    print(f"\nper stage, one core, no Beam, recipe {args.config} ({len(times['extract'])} HTML documents):")
    print(f"{'stage':28s} {'median ms':>10s} {'p95 ms':>10s} {'mean ms':>10s}")
    for stage, values in times.items():
        if values:
            print(f"{stage:28s} {1000 * statistics.median(values):10.3f} {1000 * pct(values, 0.95):10.3f} "
                  f"{1000 * statistics.fmean(values):10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
