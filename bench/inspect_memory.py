"""Peak memory of `tokenmill stats / inspect / diff` on a run whose ledger has 1,000,000 rows.

    python bench/inspect_memory.py [--rows 1000000] [--keep DIR] [--checkout PATH]

A real run of the 2,500-page bench crawl (default recipe) is made once; its ledger rows are then repeated
under new doc ids into a ledger of `--rows` rows (parts of 100,000 rows, row groups of 2,000, sorted by doc
id, as the pipeline writes them) beside the run's own shards. Each command runs in its own process; the
figure is that process's peak RSS. `--checkout` runs another checkout's tokenmill_cli.py on the same folder
(an older commit, for a before/after). The issue's goal: `inspect` under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_crawl  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build_run(root: Path, rows: int) -> Path:
    """A finished run with a `rows`-row ledger (made once under root)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    big = root / f"ledger-{rows}"
    if (big / "manifest.json").exists():
        return big
    crawl = bench_crawl(root / "crawl-2500-4")
    real = root / "run"
    if not (real / "manifest.json").exists():
        subprocess.run([sys.executable, "run_pipeline.py", "--input", f"{crawl}/*.warc.gz", "--output", str(real),
                        "--overwrite", "--quiet"], check=True, cwd=REPO)
    manifest = json.loads((real / "manifest.json").read_text())
    ledger = pa.concat_tables([pq.read_table(real / e["path"]) for e in manifest["ledger"]])
    shutil.rmtree(big, ignore_errors=True)
    shutil.copytree(real / "shards", big / "shards")
    (big / "ledger").mkdir()
    shutil.copy(real / "stats.json", big / "stats.json")
    entries = []
    per_part = 100_000
    for part in range(0, rows, per_part):
        n = min(per_part, rows - part)
        take = pa.array([i % ledger.num_rows for i in range(part, part + n)])
        table = ledger.take(take)
        ids = pa.array([f"{i:016x}" for i in range(part, part + n)])
        table = table.set_column(table.schema.get_field_index("doc_id"), "doc_id", ids)
        path = f"ledger/part-{part // per_part:05d}-000.parquet"
        pq.write_table(table, big / path, row_group_size=2000, compression="zstd")
        entries.append({**manifest["ledger"][0], "path": path, "rows": n,
                        "bytes": (big / path).stat().st_size, "sha256": ""})
    manifest["ledger"] = entries
    (big / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return big


def peak_mb(command: list[str], cwd: Path) -> tuple[float, int]:
    """(peak RSS in MB of `command` run in a child process, its exit code)."""
    probe = ("import resource, subprocess, sys\n"
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n")
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True,
                         cwd=cwd).stdout.split()
    return int(out[0]) / 1024, int(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, default=None, help="folder for the crawl and runs (kept between calls)")
    ap.add_argument("--checkout", type=Path, default=REPO, help="the tokenmill checkout whose CLI to measure")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp())
    run = build_run(root, args.rows)
    cli = [sys.executable, "-m", "tokenmill_cli"] if (args.checkout / "tokenmill_cli").is_dir() else [
        sys.executable, str(args.checkout / "tokenmill_cli.py")]  # before the CLI became a package
    print(f"{args.rows:,}-row ledger in {run}; CLI of {args.checkout}")
    for name, argv in (("stats", ["stats", str(run)]),
                       ("inspect --dropped", ["inspect", str(run), "--dropped", "--json"]),
                       ("inspect (all rows)", ["inspect", str(run), "--json"]),
                       ("diff run run", ["diff", str(run), str(run)])):
        mb, code = peak_mb(cli + argv, args.checkout)
        print(f"{name:20s} peak RSS {mb:7.1f} MB  exit {code}")


if __name__ == "__main__":
    main()
