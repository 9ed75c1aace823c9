"""Dedup against a large release: the driver's start-up and the hottest released key and band bucket.

    python bench/against_scale.py [--docs 1000000] [--files 10] [--bands 2] [--keep DIR] [--checkout OLD]

Two synthetic releases (manifest.json and dedup_index/ files as `tokenmill release` writes them; no shards):

1. start-up: --docs distinct documents in --files index files (random 112-value signatures and band keys:
   ~1 KB a document, as a real index). A child process does what `tokenmill run` does before it submits
   (imports, the recipe, run_pipeline.prepare_run with [dedup] against the release, dry: nothing written);
   printed: its wall seconds, prepare_run's own seconds and its peak RSS.
2. hot template: --docs released copies of one text, all with the same exact key, and MinHash signatures of
   --bands bands of 8 rows that agree in band 0 (one band bucket of --docs members) and differ by one value in
   the others. Against it, 15 run documents: 5 with the template's exact key, 5 near copies (another exact
   key, band 0 shared), 5 unrelated. The child runs the released index reader (pipelines/against_releases.py:
   read_index_file), ExactDedup and NearAgainstReleases on Beam's local runner (2 SDK worker processes);
   printed: wall seconds, peak RSS of the driver (which holds the local runner's shuffles) and of the largest
   SDK worker, and the run documents dropped as exact and near copies (5 and 5 on any checkout).
   --bands 2 keeps the shuffle around the bucket at 2 band members per released document (the recipe's 14
   make it 1.4 x 10^7 on this machine's local runner); the bucket holds --docs members either way.

--checkout OLD runs the same children with another checkout's code (e.g. `git archive b218113 | tar -x -C OLD`),
on the same synthetic releases: before and after, one table. --baseline adds the template's index read with
its exact and band keys shuffled (Reshuffle) and no key grouped: what the local runner's processes hold to move
them, whatever the stages do with them (the local runner keeps every shuffle in its driver).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import run_sampled  # noqa: E402

ROWS = 8
RUN_EACH = 5

STARTUP_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import run_pipeline
from schemas.recipe import load_recipe
recipe = load_recipe(sys.argv[2])
info = run_pipeline.tokenizer_info(recipe)
t = time.perf_counter()
_, against = run_pipeline.prepare_run(recipe, sys.argv[3], info, True, dry=True)
open(sys.argv[4], "w").write(json.dumps({"prepare_seconds": time.perf_counter() - t,
                                         "documents": sum(r["documents"] for r in against)}))
"""

TEMPLATE_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import apache_beam as beam
import numpy as np
from run_pipeline import make_pipeline, pin_worker_code
pin_worker_code()  # the SDK workers import this checkout, as a run's do
import pipelines.against_releases as against
from pipelines.against_releases import MATCHED, NearAgainstReleases, read_index_file
from pipelines.dedup import ExactDedup
from schemas.recipe import load_recipe
from schemas.records import StagedRef

recipe, release, result_path = load_recipe(sys.argv[2]), sys.argv[3], sys.argv[4]
cfg = recipe.dedup.near
manifest = json.load(open(f"{release}/manifest.json"))
files = manifest["dedup_index"]["files"]
if hasattr(against, "checked_index_file"):  # since 02f1e6e the reader checks each file's sha256
    items = [(manifest["name"], release, f["path"], f["sha256"]) for f in files]
else:
    items = [(manifest["name"], f"{release}/{f['path']}") for f in files]
base = np.random.default_rng(7).integers(0, 2**63, cfg.bands * cfg.rows, dtype=np.uint64)
refs = []
for i in range(15):
    sig = base.copy() if i < 10 else np.random.default_rng(100 + i).integers(0, 2**63, len(base), dtype=np.uint64)
    if i < 10:
        sig[cfg.rows + i % (len(base) - cfg.rows)] ^= np.uint64(12345 + i)  # outside band 0
    refs.append(StagedRef(doc_id=f"run{i:04d}", source="s", staged="", staged_at=i, token_count=0,
                          exact_key="template" if i < 5 else f"own{i}", signature=sig.astype("<u8").tobytes()))
opts = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
with make_pipeline(opts) as p:
    released = (p | "Files" >> beam.Create(items) | beam.Reshuffle()
                | beam.FlatMap(read_index_file, near=True))
    if sys.argv[5] == "baseline":  # the index read and its band and exact keys shuffled, no key grouped
        ((released | beam.FlatMap(lambda d: [(d.exact_key, d.ref)] + [((b, k), (d.ref, d.check))
                                                                     for b, k in enumerate(d.band_keys)])
          | "ShuffleKeys" >> beam.Reshuffle() | beam.combiners.Count.Globally())
         | beam.Map(lambda c, path=result_path: open(path, "w").write(json.dumps(c))))
    else:
        exact = p | "Refs" >> beam.Create(refs) | ExactDedup(recipe, released)
        kept, _ledger, near = exact.survivors | NearAgainstReleases(recipe, released)
        ((exact[MATCHED], near) | beam.Flatten() | beam.CombinePerKey(sum) | beam.combiners.ToList()
         | beam.Map(lambda c, path=result_path: open(path, "w").write(json.dumps(sorted(c)))))
"""


def _recipe(folder: Path, release: Path, bands: int) -> Path:
    path = folder / f"against-{release.name}.toml"
    path.write_text(f'[dedup]\nagainst = ["{release}"]\n[dedup.near]\nenabled = true\nbands = {bands}\n'
                    f"rows = {ROWS}\n")
    return path


def _write_release(folder: Path, docs: int, files: int, bands: int, template: bool) -> Path:
    """A release folder of `docs` index rows in `files` parts (written once; kept with --keep)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import run_pipeline
    from dedup.exact import EXACT_KEY_DEFINITION
    from schemas.recipe import load_recipe
    from schemas.records import DOC_ID_SCHEME
    from schemas.tables import DEDUP_INDEX_SCHEMA

    if (folder / "manifest.json").exists():
        return folder
    recipe = load_recipe(str(_recipe(folder.parent, folder, bands)))
    cfg = recipe.dedup.near
    perm = cfg.bands * cfg.rows
    (folder / "dedup_index").mkdir(parents=True, exist_ok=True)
    base = np.random.default_rng(7).integers(0, 2**63, perm, dtype=np.uint64)
    entries = []
    per_file = -(-docs // files)
    for k in range(files):
        lo, hi = k * per_file, min(docs, (k + 1) * per_file)
        rng = np.random.default_rng(k)
        if template:  # one value outside band 0 changed per copy: band 0's bucket holds every copy
            sigs = np.tile(base, (hi - lo, 1))
            sigs[np.arange(hi - lo), cfg.rows + np.arange(lo, hi) % (perm - cfg.rows)] = rng.integers(
                0, 2**63, hi - lo, dtype=np.uint64)
            keys = [band_keys_of(s, cfg.bands, cfg.rows) for s in sigs]
            exact = ["template"] * (hi - lo)
        else:
            sigs = rng.integers(0, 2**63, (hi - lo, perm), dtype=np.uint64)
            keys = rng.integers(0, 2**63, (hi - lo, cfg.bands), dtype=np.uint64).tolist()
            exact = [f"{i:016x}" for i in range(lo, hi)]
        table = pa.Table.from_pydict({
            "doc_id": [f"{i:032x}" for i in range(lo, hi)], "exact_key": exact, "band_keys": keys,
            "signature": [s.astype("<u8").tobytes() for s in sigs]}, schema=DEDUP_INDEX_SCHEMA)
        rel = f"dedup_index/part-{k:05d}.parquet"
        pq.write_table(table, folder / rel, compression="zstd")
        data = (folder / rel).read_bytes()
        entries.append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "rows": hi - lo,
                        "bytes": len(data)})
    manifest = {
        "name": folder.name, "version": "1", "doc_id": DOC_ID_SCHEME, "files": [],
        "tokenizer": run_pipeline.tokenizer_info(recipe),
        "dedup_index": {"settings": {"exact_key": EXACT_KEY_DEFINITION,
                                     "minhash": {"ngram": cfg.ngram, "bands": cfg.bands, "rows": cfg.rows,
                                                 "seed": cfg.seed}},
                        "files": entries},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def band_keys_of(signature, bands: int, rows: int) -> list[int]:
    from dedup.minhash import band_keys

    return band_keys(signature, bands, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--bands", type=int, default=2, help="bands of the hot template's MinHash (8 rows each)")
    ap.add_argument("--keep", help="keep the synthetic releases here (and reuse them)")
    ap.add_argument("--baseline", action="store_true",
                    help="also run the template's index read with its keys shuffled and no key grouped: what the "
                    "local runner holds for moving them, whatever the stage does")
    ap.add_argument("--checkout", action="append", default=[], help="another checkout to run too")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="against-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    unique = _write_release(root / "release-unique", args.docs, args.files, 14, template=False)
    template = _write_release(root / "release-template", args.docs, args.files, args.bands, template=True)
    index_bytes = sum(f["bytes"] for f in json.loads((unique / "manifest.json").read_text())["dedup_index"]["files"])
    print(f"release-unique: {args.docs:,} documents, {index_bytes / 1e6:,.0f} MB of index in {args.files} files; "
          f"release-template: {args.docs:,} copies of one text, one band bucket of {args.docs:,}")
    checkouts = [Path(c).resolve() for c in args.checkout] + [REPO]
    os.chdir(root)  # `python -m` puts the working folder first on an SDK worker's sys.path: no checkout there
    print(f"{'checkout':<28s} {'start-up s':>10s} {'prepare s':>9s} {'driver MiB':>10s} | {'template s':>10s} "
          f"{'driver MiB':>10s} {'worker MiB':>10s}  dropped")
    for checkout in checkouts:
        started = root / "startup.json"
        started.unlink(missing_ok=True)
        wall, roles = run_sampled([sys.executable, "-c", STARTUP_CHILD, str(checkout),
                                   str(_recipe(root, unique, 14)), str(root / "out"), str(started)], interval=0.05)
        startup = json.loads(started.read_text())
        assert startup["documents"] == args.docs
        result = root / "matched.json"
        result.unlink(missing_ok=True)
        twall, troles = run_sampled([sys.executable, "-c", TEMPLATE_CHILD, str(checkout),
                                     str(_recipe(root, template, args.bands)), str(template), str(result), "stage"])
        matched = json.loads(result.read_text())
        print(f"{str(checkout)[-28:]:<28s} {wall:10.1f} {startup['prepare_seconds']:9.1f} "
              f"{roles['driver']['peak_rss_mib']:10.0f} | {twall:10.1f} {troles['driver']['peak_rss_mib']:10.0f} "
              f"{troles['sdk_workers']['peak_rss_mib']:10.0f}  {matched}")
    if args.baseline:
        result.unlink(missing_ok=True)
        twall, troles = run_sampled([sys.executable, "-c", TEMPLATE_CHILD, str(REPO),
                                     str(_recipe(root, template, args.bands)), str(template), str(result),
                                     "baseline"])
        print(f"{'baseline (keys shuffled)':<28s} {'':>10s} {'':>9s} {'':>10s} | {twall:10.1f} "
              f"{troles['driver']['peak_rss_mib']:10.0f} {troles['sdk_workers']['peak_rss_mib']:10.0f}  "
              f"{json.loads(result.read_text()):,} keys")


if __name__ == "__main__":
    main()
