"""Does extraction memory creep? 100,000 documents through the isolated extractor, RSS sampled as it goes.

    python bench/extract_memory.py [--docs 100000] [--page-bytes 8000] [--restart-every 5000]

Pages: the real pages of ../shared/data/trafilatura_eval and readability_testpages, cycled, each cut to its
first --page-bytes bytes (default 8,000) so 100k extractions take minutes rather than the ~45 min full pages
would; lxml and trafilatura still parse, clean and extract real markup every time, which is where growth
would come from. The extractor is the pipeline's own (`ingest.extract.Extractor`, a killable child process
restarted every --restart-every documents). Reported every 5% of the run: RSS of this process and of the
child, and the child's peak since its last restart; then the growth from the first to the last quarter.
A run with --restart-every 0 (never restart) shows what the restart guards against.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import SHARED, rss_mib  # noqa: E402
from ingest.extract import Extractor  # noqa: E402
from schemas.recipe import ExtractConfig  # noqa: E402


def pages(limit_bytes: int) -> list[str]:
    out = []
    for folder in ("trafilatura_eval", "readability_testpages"):
        for path in sorted((SHARED / "data" / folder).rglob("*")):
            if path.suffix in (".html", ".htm") or path.name.endswith(".html.gz"):
                raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
                out.append(raw[:limit_bytes].decode("utf-8", "replace"))
    if not out:
        raise SystemExit(f"no pages found under {SHARED / 'data'}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--page-bytes", type=int, default=8000)
    ap.add_argument("--restart-every", type=int, default=ExtractConfig().restart_every)
    args = ap.parse_args()
    corpus = pages(args.page_bytes)
    config = ExtractConfig(restart_every=args.restart_every or 10**12)
    extractor = Extractor(config)
    print(f"{len(corpus)} real pages cut to {args.page_bytes} bytes, cycled; restart every "
          f"{args.restart_every or 'never'}")
    print(f"{'documents':>10s} {'seconds':>8s} {'parent MiB':>11s} {'child MiB':>10s}")
    samples = []
    step = max(1, args.docs // 20)
    start = time.perf_counter()
    for i in range(1, args.docs + 1):
        extractor.extract(corpus[i % len(corpus)], f"https://page.example/{i}")
        if i % step == 0:
            child = extractor._process.pid if extractor._process is not None else 0
            sample = (i, time.perf_counter() - start, rss_mib(os.getpid()), rss_mib(child) if child else 0.0)
            samples.append(sample)
            print(f"{sample[0]:10d} {sample[1]:8.0f} {sample[2]:11.1f} {sample[3]:10.1f}", flush=True)
    extractor.close()
    quarter = max(1, len(samples) // 4)
    first = sum(s[3] for s in samples[:quarter]) / quarter
    last = sum(s[3] for s in samples[-quarter:]) / quarter
    print(f"child RSS, mean of the first vs the last quarter of samples: {first:.1f} -> {last:.1f} MiB "
          f"({last - first:+.1f}); parent {samples[0][2]:.1f} -> {samples[-1][2]:.1f} MiB; "
          f"{args.docs / (time.perf_counter() - start):.0f} documents/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
