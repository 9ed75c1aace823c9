"""`tokenmill export` per format: tokens per second and peak memory on a release of ~10^8 tokens, beside each
training stack's own write path on the same tokens.

    python bench/export.py [--run DIR] [--copies 10 40] [--formats megatron hf mds litdata] [--keep DIR]

1. A real run: the 2,500-page bench crawl (../shared/tools/make_bench_warc.py) through the default recipe
   with near dedup (bench/mixture.py's), or --run DIR.
2. Releases scaled from it as bench/mixture.py does: each --copies value is a release of that many hard-linked
   copies of the run's shards (the page cache serves every read after the first).
3. For each release and format, in a fresh process each: `tokenmill export` (timed from outside, peak RSS and
   CPU seconds sampled from /proc), then the library's own writer on the same release's tokens
   (bench/export_peers.py, in the readers' environment of tests/readers/). Each output is removed before the
   next run. Peak RSS flat across the --copies sizes is the "memory flat in release size" check.

One sitting on a quiet machine: run nothing beside it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import run_sampled  # noqa: E402
from bench.mixture import make_run, scaled_release  # noqa: E402

FORMATS = ("megatron", "hf", "mds", "litdata")


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, peak RSS MiB, CPU s) of one command's run."""
    wall, roles = run_sampled(cmd)
    return wall, roles["driver"]["peak_rss_mib"], roles["driver"]["cpu_seconds"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, help="a finished run to scale up (default: run the bench crawl)")
    ap.add_argument("--copies", type=int, nargs="+", default=[10, 40])
    ap.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    ap.add_argument("--no-peers", action="store_true", help="time tokenmill export only")
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tm-export-"))
    work.mkdir(parents=True, exist_ok=True)
    readers = None
    if not args.no_peers:
        from tests.readers.venv import readers_python

        readers = str(readers_python())
    rows = []
    try:
        run = args.run or make_run(work)
        for copies in args.copies:
            rel = work / f"web-x{copies}"
            shutil.rmtree(rel, ignore_errors=True)
            tokens = scaled_release(run, rel, "web", copies)
            print(f"release x{copies}: {tokens:,} tokens", flush=True)
            for fmt in args.formats:
                out = work / f"out-{fmt}"
                shutil.rmtree(out, ignore_errors=True)
                ours = timed([sys.executable, "-m", "tokenmill_cli", "export", str(rel), "--format", fmt, "--to",
                              str(out)])
                size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
                shutil.rmtree(out)
                peer = None
                if readers:
                    peer = timed([readers, str(REPO / "bench" / "export_peers.py"), fmt, str(rel), str(out)])
                    shutil.rmtree(out)
                rows.append((copies, tokens, fmt, ours, size, peer))
                line = (f"  {fmt}: tokenmill {ours[0]:.1f} s ({tokens / ours[0] / 1e6:.1f} M tokens/s, peak "
                        f"{ours[1]:.0f} MiB, {ours[2]:.1f} CPU s, {size / 2**20:.0f} MiB written)")
                if peer:
                    line += (f"; the library's writer {peer[0]:.1f} s ({tokens / peer[0] / 1e6:.1f} M tokens/s, "
                             f"peak {peer[1]:.0f} MiB)")
                print(line, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\n| release | format | tokenmill export: s / M tokens/s / peak MiB | the library's own writer: s / M "
          "tokens/s / peak MiB | speed-up |")
    print("|---|---|---|---|---|")
    for copies, tokens, fmt, ours, _size, peer in rows:
        theirs = f"{peer[0]:.1f} / {tokens / peer[0] / 1e6:.1f} / {peer[1]:.0f}" if peer else "-"
        ratio = f"{peer[0] / ours[0]:.1f}x" if peer else "-"
        print(f"| x{copies} ({tokens / 1e6:.0f} M tokens) | {fmt} | {ours[0]:.1f} / {tokens / ours[0] / 1e6:.1f} / "
              f"{ours[1]:.0f} | {theirs} | {ratio} |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        print(f"failed: {exc.cmd}: {exc.stderr!s:.2000}", file=sys.stderr)
        sys.exit(1)
