"""What `tokenmill mix` holds and takes, by source size: the planner's peak RSS and wall time on synthetic
releases of 10^6, 10^7 (and, if given, 10^8) documents, and whether two checkouts write the same mixture.

    python bench/mix_scale.py [--docs 1000000 10000000] [--keep DIR] [--checkout OLD ...] [--rows-cache-bytes N]
        [--old-verify-only]

Synthetic releases, as small as the planner allows: a release manifest and shard files holding only the
columns the plan reads (token_count, cluster_size, language, topic; no tokens), row groups of 2,000 rows
(`output.row_group_rows`' default), 500,000 rows a file, values drawn from a seeded generator (60 % of the
documents `en`, cluster sizes Zipf-distributed, 20-3,000 tokens). Per size the spec mixes `web` (the N
documents, `where = "language = 'en'"`, FineWeb-2's repeat table, weight 0.7) with `books` (N / 10
documents, weight 0.3), total_tokens set so web runs 1.5 epochs (whole epochs, a partial one, copies,
interleaving: every part of the planner).

Each checkout's `python -m tokenmill_cli mix`, then `verify` of the mixture it wrote, runs as a fresh process,
one at a time; its peak RSS is the child's ru_maxrss (os.wait4), its time the wall clock around it. With
--checkout OLD (e.g. `git archive <commit> | tar -x -C OLD`) OLD runs first, then this checkout, and the
bench compares every plan file's bytes and the manifests (apart from `created`): "same mixture" or the first
difference. --rows-cache-bytes 0 runs this checkout's mix with no rows cache (mixing.sources.ROWS_CACHE_BYTES):
the path a source past the cache takes. --old-verify-only: the --checkout ones do not mix, they verify this
checkout's mixture (at 10^8 documents the mix at bd2d4b3 would need ~11 GiB).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
FINEWEB2 = {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}
FILE_ROWS = 500_000
ROW_GROUP_ROWS = 2_000
LANGUAGES = ["en", "de", "fr", "es", "zh", "ja", "ru", "pt"]
LANGUAGE_P = [0.6, 0.08, 0.07, 0.07, 0.06, 0.05, 0.04, 0.03]
TOPICS = ["", "science", "sports", "news", "code"]
SCHEMA = pa.schema([pa.field("language", pa.string()), pa.field("token_count", pa.int64()),
                    pa.field("cluster_size", pa.int64()), pa.field("topic", pa.string())])


def _copies(cluster: np.ndarray) -> np.ndarray:
    keys = np.array(sorted(FINEWEB2))
    values = np.array([FINEWEB2[k] for k in keys])
    return values[np.searchsorted(keys, cluster, side="right") - 1]


def synthetic_release(folder: Path, name: str, docs: int, seed: int) -> int:
    """A release of `docs` synthetic documents; returns the pool of its `en` documents under FineWeb-2's
    table (the tokens of one epoch of web)."""
    (folder / "shards").mkdir(parents=True)
    files, pool = [], 0
    for k, start in enumerate(range(0, docs, FILE_ROWS)):
        n = min(FILE_ROWS, docs - start)
        rng = np.random.default_rng([seed, k])
        lang = rng.choice(len(LANGUAGES), n, p=LANGUAGE_P)
        tokens = rng.integers(20, 3_000, n)
        cluster = np.minimum(rng.zipf(2.0, n), 5_000)
        table = pa.Table.from_arrays([
            pa.DictionaryArray.from_arrays(pa.array(lang.astype(np.int32)), pa.array(LANGUAGES)).cast(pa.string()),
            pa.array(tokens, pa.int64()), pa.array(cluster, pa.int64()),
            pa.array(np.array(TOPICS, dtype=object)[rng.integers(0, len(TOPICS), n)], pa.string())], schema=SCHEMA)
        en = lang == 0
        pool += int((tokens[en] * _copies(cluster[en])).sum())
        rel = f"shards/part-{k:05d}.parquet"
        pq.write_table(table, folder / rel, row_group_size=ROW_GROUP_ROWS, compression="zstd")
        data = (folder / rel).read_bytes()
        files.append({"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "rows": n,
                      "tokens": int(tokens.sum())})
    (folder / "manifest.json").write_text(json.dumps({
        "name": name, "version": "1.0.0", "files": files, "score_columns": [],
        "tokenizer": {"name": "synthetic", "vocab_sha256": "0" * 64, "append_eos": True, "eos_id": 0},
        "totals": {"documents": docs, "tokens": sum(f["tokens"] for f in files)}}))
    return pool


def run_mix(checkout: Path, spec: Path, target: Path, cache_bytes: int | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of `tokenmill mix` from `checkout` in a fresh process (with
    mixing.sources.ROWS_CACHE_BYTES set to `cache_bytes` when given)."""
    argv = ["mix", str(spec), "--to", str(target)]
    command = [sys.executable, "-m", "tokenmill_cli", *argv] if cache_bytes is None else [
        sys.executable, "-c", f"import sys, mixing.sources, tokenmill_cli; mixing.sources.ROWS_CACHE_BYTES = "
        f"{cache_bytes}; sys.exit(tokenmill_cli.main({argv!r}))"]
    return run_child(command, checkout)


def run_child(command: list[str], checkout: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of `command` run from `checkout` in a fresh process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{command[-4:]} from {checkout} failed ({child.returncode}): {out}{err}")
    return seconds, usage.ru_maxrss * 1024


def difference(a: Path, b: Path) -> str | None:
    """The first difference between two mixture folders (plan bytes, manifests apart from `created`)."""
    ma, mb = (json.loads((m / "manifest.json").read_text()) for m in (a, b))
    for m in (ma, mb):
        m.pop("created")
        m.pop("tokenmill_version", None)
    for key in sorted(set(ma) | set(mb)):
        if ma.get(key) != mb.get(key):
            return f"manifest {key}"
    for f in ma["plan"]["files"]:
        if (a / f["path"]).read_bytes() != (b / f["path"]).read_bytes():
            return f["path"]
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--keep", type=Path, help="work here and keep the releases (reused when present)")
    ap.add_argument("--checkout", type=Path, action="append", default=[], help="another checkout to run first")
    ap.add_argument("--rows-cache-bytes", type=int, help="this checkout's mixing.sources.ROWS_CACHE_BYTES "
                    "(0: every row group's rows read again from the shards when the plan is written)")
    ap.add_argument("--old-verify-only", action="store_true", help="the --checkout ones only verify this "
                    "checkout's mixture (for sizes their mix cannot hold)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tm-mixscale-"))
    work.mkdir(parents=True, exist_ok=True)
    checkouts = [c.resolve() for c in args.checkout] + [REPO]
    try:
        for n in args.docs:
            root = work / f"n{n}"
            if not (root / "pool.json").exists():
                shutil.rmtree(root, ignore_errors=True)
                start = time.perf_counter()
                pool = synthetic_release(root / "web", "web", n, 1)
                synthetic_release(root / "books", "books", n // 10, 2)
                (root / "pool.json").write_text(json.dumps(pool))
                print(f"{n:,} documents: releases written in {time.perf_counter() - start:.1f} s")
            pool = json.loads((root / "pool.json").read_text())
            total = int(pool * 1.5 / 0.7)
            spec = root / "mix.toml"
            spec.write_text(f'name = "scale"\ntotal_tokens = {total}\nseed = 0\n'
                            f'[[sources]]\npath = "{root / "web"}"\nweight = 0.7\nwhere = "language = \'en\'"\n'
                            "[sources.repeat_by_cluster_size]\n"
                            + "".join(f"{k} = {v}\n" for k, v in FINEWEB2.items())
                            + f'[[sources]]\npath = "{root / "books"}"\nweight = 0.3\n')
            done = []
            for i, checkout in enumerate(checkouts):
                if args.old_verify_only and checkout != REPO:
                    continue
                target = root / f"mix-{i}"
                shutil.rmtree(target, ignore_errors=True)
                seconds, rss = run_mix(checkout, spec, target, args.rows_cache_bytes if checkout == REPO else None)
                manifest = json.loads((target / "manifest.json").read_text())
                plan = manifest["plan"]
                print(f"{n:>11,} docs  {str(checkout):<28s} mix {seconds:7.1f} s  peak RSS {rss / 2**20:8,.0f} MiB  "
                      f"({plan['units']:,} units, {plan['entries']:,} entries, plan "
                      f"{sum(f['bytes'] for f in plan['files']) / 2**20:,.1f} MiB in {len(plan['files'])} files)")
                for verifier in checkouts if args.old_verify_only else [checkout]:
                    seconds, rss = run_child([sys.executable, "-m", "tokenmill_cli", "verify", str(target)], verifier)
                    print(f"{'':>16s} {str(verifier):<28s} verify {seconds:4.1f} s  peak RSS {rss / 2**20:8,.0f} MiB")
                done.append(target)
            for other in done[:-1]:
                diff = difference(other, done[-1])
                print(f"  {other.name} vs {done[-1].name}: " + ("same mixture" if diff is None else f"differ: {diff}"))
            for target in done:
                shutil.rmtree(target)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
