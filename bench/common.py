"""What every benchmark needs: where ../shared is, and a bench crawl built once with make_bench_warc.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOKENMILL_SHARED", REPO.parent / "shared"))


def bench_crawl(crawl: Path, docs: int = 2500, shards: int = 4, seed: int = 0) -> Path:
    """`crawl`, holding a crawl from ../shared/tools/make_bench_warc.py (built unless already there)."""
    if not list(crawl.glob("*.warc.gz")):
        subprocess.run([sys.executable, str(SHARED / "tools" / "make_bench_warc.py"), "--out", str(crawl),
                        "--docs", str(docs), "--shards", str(shards), "--seed", str(seed)],
                       check=True, capture_output=True)
    return crawl
