"""Scale of the near-dedup clustering stage: synthetic signatures through the Beam stage on the DirectRunner.

    python bench/dedup_scale.py [--sizes 10000 100000 1000000] [--dup-share 0.2] [--workers 2] [--baseline]

Each run builds N random 112-value signatures with a share of planted duplicate groups (copies with a few
values changed, so they share LSH bands), runs ClusterSignatures (band keys -> star edges -> connected
components -> cluster sizes) in a child process, and reports wall time, peak RSS of the largest process and
the number of clustered documents. Linear scaling shows as a flat seconds-per-million column. The
DirectRunner keeps every shuffle in its own memory, so its RSS grows with N whatever the stage does; with
--baseline each size also runs the band shuffle alone (band keys -> GroupByKey, the data any LSH must
shuffle), and the stage's RSS is compared with that: what the stage holds beyond what Beam itself holds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from pipelines.near_dedup import ClusterSignatures, _bucket_keys
from schemas.recipe import NearDedupConfig

n, dup_share, workers, chunk = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), 10_000
result_path, mode = sys.argv[5], sys.argv[6]  # read here: worker processes have their own sys.argv
cfg = NearDedupConfig(enabled=True)
perm = cfg.bands * cfg.rows

def make(start):
    rng = np.random.default_rng(start)
    out = []
    for i in range(start, min(n, start + chunk)):
        family = i if rng.random() > dup_share else int(rng.integers(0, max(1, n // 10)))
        base = np.random.default_rng(family).integers(0, 2**63, perm, dtype=np.uint64)
        if family != i:
            idx = rng.integers(0, perm, 5)
            base = base.copy(); base[idx] = rng.integers(0, 2**63, 5, dtype=np.uint64)
        out.append((f"{i:012d}", "", (float("inf"), f"{i:012d}"), base))  # (doc id, scope, rank, signature)
    return out

opts = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                        f"--direct_num_workers={workers}"])
start = time.perf_counter()
with beam.Pipeline(options=opts) as p:
    signed = p | beam.Create(list(range(0, n, chunk))) | beam.Reshuffle() | beam.FlatMap(make)
    if mode == "baseline":  # the band shuffle alone: what any LSH over these signatures makes Beam hold
        cluster = (signed | beam.FlatMap(_bucket_keys, cfg=cfg) | beam.GroupByKey()
                   | beam.FlatMap(lambda kv: [kv[0]] if sum(1 for _ in kv[1]) > 1 else []))
    else:
        cluster, violations = signed | ClusterSignatures(cfg)
    (cluster | beam.combiners.Count.Globally()
     | beam.Map(lambda c, path=result_path: open(path, "w").write(json.dumps({"clustered": c}))))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def signature_rate(seconds: float = 5.0) -> float:
    """Signatures per second on one core for 3 KB slices of real article text (scrapinghub_aeb gold)."""
    import gzip
    import os

    sys.path.insert(0, str(REPO))
    from dedup.minhash import MinHasher, shingle_hashes

    shared = Path(os.environ.get("TOKENMILL_SHARED", REPO.parent / "shared"))
    gold = json.loads(gzip.open(shared / "data" / "scrapinghub_aeb" / "ground-truth.json.gz").read())
    texts = [e["articleBody"][:3000] for e in gold.values() if len(e["articleBody"]) >= 3000]
    hasher = MinHasher(112)
    setup = time.perf_counter()
    hasher.signatures([shingle_hashes(texts[0])])  # once per worker: character tables + compiled code (cached)
    print(f"per-worker setup (tables, compiled kernels): {time.perf_counter() - setup:.2f} s")
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for t in texts:
            hasher.signatures([shingle_hashes(t)])
        done += len(texts)
    return done / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dup-share", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline", action="store_true",
                    help="also run the band shuffle alone (band keys -> GroupByKey) for each size: the memory the "
                         "DirectRunner needs for the LSH data itself, to compare the full stage with")
    args = ap.parse_args()
    print(f"MinHash signatures on 3 KB real article text, one core: {signature_rate():.0f}/s")
    print(f"{'mode':>9s} {'signatures':>12s} {'seconds':>9s} {'s per 1M':>9s} {'peak RSS MiB':>13s} "
          f"{'clustered':>10s}")
    for n in args.sizes:
        for mode in (("baseline", "stage") if args.baseline else ("stage",)):
            result = Path(f"/tmp/tokenmill-dedup-scale-{mode}-{n}.json")
            start = time.perf_counter()
            # wait4 gives this run's own peak: the largest of the child and its reaped descendants (the
            # DirectRunner's worker processes), in KiB on Linux.
            proc = subprocess.Popen([sys.executable, "-c", CHILD, str(REPO), str(n), str(args.dup_share),
                                     str(args.workers), str(result), mode],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _pid, status, usage = os.wait4(proc.pid, 0)
            if status:
                raise SystemExit(f"{mode} run with {n} signatures failed ({status})")
            wall = time.perf_counter() - start
            rss = usage.ru_maxrss / 1024
            clustered = json.loads(result.read_text())["clustered"]
            print(f"{mode:>9s} {n:12d} {wall:9.1f} {wall / n * 1e6:9.1f} {rss:13.0f} {clustered:10d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
