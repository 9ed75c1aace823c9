"""Scale of the near-dedup clustering stage: synthetic signatures through the Beam stage on the DirectRunner.

    python bench/dedup_scale.py [--sizes 10000 100000 1000000] [--dup-share 0.2] [--workers 2] [--baseline]
    python bench/dedup_scale.py --giant 1000000 [--background 200000] [--max-group 10000]
    python bench/dedup_scale.py --confirm 100000 [--max-group 10000]

Each run builds N random 112-value signatures with a share of planted duplicate groups (copies with a few
values changed, so they share LSH bands), runs ClusterSignatures (band keys -> star edges -> connected
components -> survivors) in a child process, and reports wall time, peak RSS of the largest process and
the number of clustered documents. Linear scaling shows as a flat seconds-per-million column. The
DirectRunner keeps every shuffle in its own memory, so its RSS grows with N whatever the stage does; with
--baseline each size also runs the band shuffle alone (band keys -> GroupByKey, the data any LSH must
shuffle), and the stage's RSS is compared with that: what the stage holds beyond what Beam itself holds.

--giant G adds one component of G members (a template's copies: one base signature, 5 of 112 values changed
per copy, so each LSH bucket of the template holds ~69 % of them) to --background signatures, and runs the
stage and the band shuffle on it and on as many signatures without the giant: the goals are the stage's
memory beyond the band shuffle's within 10 % of the same without the giant, and its time within 1.5x.

--confirm C runs the confirmation alone (salting, grouping, _Confirm) on one component of C documents with
3 KB texts (a base text with a few words changed per copy), once with --max-group and once as one group:
how much of it the workers share.
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
sys.path.insert(0, str(REPO))

from schemas.recipe import NearDedupConfig  # noqa: E402

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import apache_beam as beam
import numpy as np
from run_pipeline import make_pipeline
from pipelines.near_dedup import ClusterSignatures, _bucket_keys
from schemas.recipe import NearDedupConfig

n, dup_share, workers, chunk = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), 10_000
result_path, mode = sys.argv[5], sys.argv[6]  # read here: worker processes have their own sys.argv
giant, max_group = int(sys.argv[7]), int(sys.argv[8])
cfg = NearDedupConfig(enabled=True, max_group=max_group)
perm = cfg.bands * cfg.rows
TEMPLATE = -1  # the giant component's family

def make(start):
    rng = np.random.default_rng(start)
    out = []
    for i in range(start, min(n, start + chunk)):
        if giant and (i * 7919) % n < giant:  # the giant's members, spread over the id range
            family = TEMPLATE
        else:
            family = i if rng.random() > dup_share else int(rng.integers(0, max(1, n // 10)))
        base = np.random.default_rng(family if family >= 0 else 2**40).integers(0, 2**63, perm, dtype=np.uint64)
        if family != i:
            idx = rng.integers(0, perm, 5)
            base = base.copy(); base[idx] = rng.integers(0, 2**63, 5, dtype=np.uint64)
        out.append((f"{i:012d}", "", (float("inf"), f"{i:012d}"), base))  # (doc id, scope, rank, signature)
    return out

opts = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
start = time.perf_counter()
with make_pipeline(opts) as p:
    signed = p | beam.Create(list(range(0, n, chunk))) | beam.Reshuffle() | beam.FlatMap(make)
    if mode == "baseline":  # the band shuffle alone: what any LSH over these signatures makes Beam hold
        cluster = (signed | beam.FlatMap(_bucket_keys, cfg=cfg) | beam.GroupByKey()
                   | beam.FlatMap(lambda kv: [kv[0]] if sum(1 for _ in kv[1]) > 1 else []))
    else:
        cluster, _story = signed | ClusterSignatures(cfg)
    (cluster | beam.combiners.Count.Globally()
     | beam.Map(lambda c, path=result_path: open(path, "w").write(json.dumps({"clustered": c}))))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


CONFIRM_CHILD = r"""
import json, sys, time, random
sys.path.insert(0, sys.argv[1])
import apache_beam as beam
from run_pipeline import make_pipeline
from pipelines.near_dedup import _Confirm, _salted
from schemas.recipe import Recipe
from schemas.records import StagedRef

size, workers, max_group, result_path = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
recipe = Recipe()
recipe.dedup.near.enabled = True
_letters = random.Random(0)
# ~3 KB of letter words (digits would fold to 0 in the shingle normalization and make every word alike)
words = ["".join(_letters.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4)) for _ in range(600)]

def make(start):
    rng = random.Random(start)
    for i in range(start, min(size, start + 1000)):
        text = list(words)
        for _ in range(3 if i else 0):
            text[rng.randrange(len(text))] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
        ref = StagedRef(doc_id=f"{i:012d}", source="s", staged="", staged_at=0, token_count=0, exact_key="",
                        text=" ".join(text))
        yield ("000000000000", size), ref

opts = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
start = time.perf_counter()
with make_pipeline(opts) as p:
    out = (p | beam.Create(list(range(0, size, 1000))) | beam.Reshuffle() | beam.FlatMap(make)
           | beam.FlatMap(_salted, max_group=max_group) | beam.GroupByKey()
           | beam.ParDo(_Confirm(recipe)).with_outputs("ledger", "sizes", "survivor", main="kept"))
    (out.ledger | beam.combiners.Count.Globally()
     | beam.Map(lambda c, path=result_path: open(path, "w").write(json.dumps({"removed": c}))))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _child(code: str, args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child run. wait4 gives its own peak: the largest of the child and its
    reaped descendants (the DirectRunner's worker processes), in KiB on Linux."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(REPO), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"run {args} failed ({status})")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def giant(args) -> int:
    n = args.background + args.giant
    print(f"{n:,} signatures: {args.giant:,} in one component + {args.background:,} background "
          f"({args.dup_share:.0%} in planted groups), max_group {args.max_group:,}, {args.workers} workers")
    print(f"{'signatures':>24s} {'mode':>9s} {'seconds':>9s} {'peak RSS MiB':>13s} {'clustered':>10s}")
    rows = {}
    for label, g in (("with the giant", args.giant), ("without", 0)):
        for mode in ("baseline", "stage"):
            result = Path(f"/tmp/tokenmill-dedup-giant-{mode}-{g}.json")
            wall, rss = _child(CHILD, [str(n), str(args.dup_share), str(args.workers), str(result), mode, str(g),
                                       str(args.max_group)])
            clustered = json.loads(result.read_text())["clustered"]
            rows[label, mode] = (wall, rss)
            print(f"{label:>24s} {mode:>9s} {wall:9.1f} {rss:13.0f} {clustered:10d}")
    beyond = {label: rows[label, "stage"][1] - rows[label, "baseline"][1] for label in ("with the giant", "without")}
    ratio = rows["with the giant", "stage"][0] / rows["without", "stage"][0]
    print(f"stage memory beyond the band shuffle's: {beyond['with the giant']:.0f} MiB with the giant, "
          f"{beyond['without']:.0f} MiB without (goal: within 10 % of the stage's peak, "
          f"{0.1 * rows['without', 'stage'][1]:.0f} MiB); stage time {ratio:.2f}x (goal <= 1.5x)")
    return 0


def confirm(args) -> int:
    print(f"confirmation of one {args.confirm:,}-member component (3 KB texts), {args.workers} workers")
    for label, group in ((f"max_group {args.max_group:,}", args.max_group), ("one group", args.confirm + 1)):
        result = Path(f"/tmp/tokenmill-dedup-confirm-{group}.json")
        wall, rss = _child(CONFIRM_CHILD, [str(args.confirm), str(args.workers), str(group), str(result)])
        removed = json.loads(result.read_text())["removed"]
        print(f"{label:>20s}: {wall:7.1f} s, peak RSS {rss:6.0f} MiB, {removed:,} removed")
    return 0


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
    ap.add_argument("--giant", type=int, default=0, help="one component of this many members (see above)")
    ap.add_argument("--background", type=int, default=200_000)
    ap.add_argument("--confirm", type=int, default=0, help="confirm one component of this many documents")
    ap.add_argument("--max-group", type=int, default=NearDedupConfig.max_group)
    args = ap.parse_args()
    if args.giant:
        return giant(args)
    if args.confirm:
        return confirm(args)
    print(f"MinHash signatures on 3 KB real article text, one core: {signature_rate():.0f}/s")
    print(f"{'mode':>9s} {'signatures':>12s} {'seconds':>9s} {'s per 1M':>9s} {'peak RSS MiB':>13s} "
          f"{'clustered':>10s}")
    for n in args.sizes:
        for mode in (("baseline", "stage") if args.baseline else ("stage",)):
            result = Path(f"/tmp/tokenmill-dedup-scale-{mode}-{n}.json")
            wall, rss = _child(CHILD, [str(n), str(args.dup_share), str(args.workers), str(result), mode, "0",
                                       str(args.max_group)])
            clustered = json.loads(result.read_text())["clustered"]
            print(f"{mode:>9s} {n:12d} {wall:9.1f} {wall / n * 1e6:9.1f} {rss:13.0f} {clustered:10d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
