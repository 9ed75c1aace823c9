"""`select` and `--keep-scored` at snapshot scale: staging objects and peak memory per process, by run size.

    python bench/select_scale.py [--sizes 100000 1000000] [--files 16] [--hashed-sizes 10000 100000]

For each size N it writes a synthetic --keep-scored run of N documents over --files input files (seeded word
salad, a quarter of the documents too short for gopher_quality), then runs select's per-file steps on it as
a worker runs them, and prints one line per step:

- `keep-scored write`: the documents through StageLedgerRows("scored-") (one bundle per input file, as the read
  step's bundles are), WriteSourceParts._write_scored (each input file's scored pieces in _staging/) and the
  cut of pipelines/recut.py (scored/part-<n>, every ledger_rows_per_part rows in input order, since 3cfa022;
  the manifest's entries): the path a --keep-scored run's scored documents take since 2026-12-07, with no
  shuffle carrying their text;
- `select staging`: the scored parts read as build_select_pipeline reads them (scored_files, one bundle per
  part, document_from_scored), FilterDocuments with `order = ["gopher_quality"]`, its drops through
  StageLedgerRows and the kept documents in batches of `tokenizer.batch_size` through StageDocuments: the
  staging objects `select` writes before the shuffles.

Columns: staging objects written (files in _staging/), the process's peak RSS, and its RSS before the first
document (imports, setup), so the difference is what the step holds. --hashed-sizes runs the select step on
the scored layout written before 2026-12-07 (one part of every input file's documents, sorted by doc id, as
the hash of the doc id spread them; read by listing scored/): its staging objects grow with N.

The shuffles, the per-file writer of shards and ledger and the finalize step are not run here (a 10^6-document
select through Beam's local runner takes hours on 2 cores, and its driver holds every shuffle: see
docs/scaling.md "Memory on the local runner").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RECIPE = '[filters]\norder = ["gopher_quality"]\n'
WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have "
         "an had they you were their one all we can her has there been if more when will would who so no she "
         "river garden window market letter engine winter harbor pencil bridge silver forest doctor orange "
         "quietly slowly brightly carefully suddenly finally rarely gently loudly early").split()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _documents(n: int, files: int):
    """(file index, Document) for n seeded documents, file after file; ids as a run makes them."""
    from schemas.records import Document, RecordMeta, make_doc_id

    per_file = -(-n // files)
    for f in range(files):
        source = f"crawl/part-{f:05d}.warc.gz"
        for i in range(f * per_file, min(n, (f + 1) * per_file)):
            rng = random.Random(i)
            words = rng.randint(10, 40) if i % 4 == 0 else rng.randint(80, 160)
            text = ". ".join(" ".join(rng.choices(WORDS, k=8)) for _ in range(words // 8)) + "."
            record_id = f"<urn:uuid:{i:032x}>"
            yield f, Document(
                doc_id=make_doc_id(source, record_id), source=source, url=f"https://example.org/{i}",
                warc_record_id=record_id, crawl_date="2026-01-01T00:00:00Z",
                meta=RecordMeta(i * 1000, "response", 200, "text/html"), text=text, language="en",
                language_score=0.95, scores={"gopher_words": float(words)},
            )


def _cut_scored(root: str, recipe, pieces: list) -> list:
    """The files' scored pieces cut into scored/part-<n> as pipelines/recut.py's steps do (the plan, the row
    ranges grouped by part, one part written at a time), in this process: the PartInfos the manifest lists."""
    from pipelines.recut import PartSpec, _plan, _ranges, _raw_parts, _WriteCutPart
    from pipelines.source_parts import SCORED_PARTS
    from schemas.tables import SCORED_SCHEMA

    out = recipe.output
    specs = {SCORED_PARTS: PartSpec("scored", SCORED_SCHEMA, out.ledger_rows_per_part, None)}
    tagged = [(SCORED_PARTS, piece) for piece in pieces]
    starts = _plan(tagged)
    groups: dict = {}
    for element in tagged:
        for key, rows in _ranges(element, starts, specs):
            groups.setdefault(key, []).append(rows)
    raw_parts = _raw_parts(list(groups))
    writer = _WriteCutPart(root, specs, out.row_group_rows, out.zstd_level)
    return [o.value for key in sorted(groups) for o in writer.process((key, groups[key]), raw_parts)]


def _write_run(root: str, n: int, files: int, hashed: bool) -> dict:
    """A --keep-scored run's scored/ parts and the manifest entries select reads."""
    from outputs.parquet_parts import write_sorted_parts
    from outputs.run_files import part_entry
    from outputs.staging import staging_dir
    from pipelines.source_parts import SCORED_PARTS, WriteSourceParts
    from pipelines.staging import StageLedgerRows
    from schemas.recipe import Recipe
    from schemas.tables import SCORED_SCHEMA, scored_table

    recipe = Recipe()
    os.makedirs(f"{root}/scored", exist_ok=True)
    manifest: dict = {"ledger": []}
    before = _current_rss_mib()
    if hashed:  # before 2026-12-07: parts by a hash of the doc id; with N <= ledger_rows_per_part, one part
        write_sorted_parts(
            (doc for _f, doc in _documents(n, files)), path_of=lambda k, parts: f"{root}/scored/part-{k:05d}.parquet",
            max_rows=recipe.output.ledger_rows_per_part, schema=SCORED_SCHEMA, key=lambda d: d.doc_id,
            to_table=scored_table, row_group_rows=recipe.output.row_group_rows, zstd_level=recipe.output.zstd_level,
            spill_rows=recipe.output.row_group_rows)
        objects = 0
    else:
        stage, writer = StageLedgerRows(root, "scored-"), WriteSourceParts(recipe, root, [])
        infos, objects, current, staged = [], 0, None, []

        def flush() -> None:
            stage.finish_bundle()
            for _source, path in staged:
                infos.extend(o.value for o in writer._write_scored((current, files), [path])
                             if o.tag == SCORED_PARTS)
            staged.clear()

        for f, doc in _documents(n, files):
            if f != current:
                if current is not None:
                    flush()
                current = f
                stage.start_bundle()
            staged.extend(stage.process(doc))
        flush()
        objects = len(os.listdir(staging_dir(root))) - len(infos)  # the staging files, not the scored pieces
        infos = _cut_scored(root, recipe, infos)
        manifest["scored"] = [part_entry(info, root) for info in infos]
        shutil.rmtree(staging_dir(root))
    with open(f"{root}/manifest.json", "w") as out:
        json.dump(manifest, out)
    return {"objects": objects, "rss_before_mib": before, "peak_rss_mib": _rss_mib()}


def _select_staging(root: str, out: str) -> dict:
    """select's steps before the shuffles, bundle by bundle, on the run at `root`."""
    import apache_beam as beam

    from outputs.staging import staging_dir
    from pipelines.build import _parquet_rows, scored_files
    from pipelines.documents import LEDGER, FilterDocuments
    from pipelines.staging import StageDocuments, StageLedgerRows
    from schemas.recipe import load_recipe
    from schemas.tables import document_from_scored

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(RECIPE)
    recipe = load_recipe(f.name)
    os.unlink(f.name)
    filters, stage_docs, stage_rows = FilterDocuments(recipe), StageDocuments(recipe, out), StageLedgerRows(out)
    filters.setup()
    stage_docs.setup()
    batch_size = recipe.tokenizer.batch_size
    before = _current_rss_mib()
    docs = kept = 0
    for part in scored_files(root):  # one bundle per part: select's Reshuffle hands out the part paths
        for dofn in (filters, stage_docs, stage_rows):
            dofn.start_bundle()
        batch = []
        for row in _parquet_rows(part):
            docs += 1
            for output in filters.process(document_from_scored(row)):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    if output.tag == LEDGER:
                        for _ in stage_rows.process(output.value):
                            pass
                    continue
                kept += 1
                batch.append(output)
                if len(batch) >= batch_size:
                    for _ in stage_docs.process(batch):
                        pass
                    batch = []
        if batch:
            for _ in stage_docs.process(batch):
                pass
        for dofn in (filters, stage_docs, stage_rows):
            dofn.finish_bundle()
    names = os.listdir(staging_dir(out))
    return {"documents": docs, "kept": kept, "objects": len(names),
            "doc_objects": sum(n.startswith("docs-") for n in names),
            "ledger_objects": sum(n.startswith("ledger-") for n in names),
            "rss_before_mib": before, "peak_rss_mib": _rss_mib()}


def _child(argv: list[str]) -> dict:
    """Runs in its own process, so that its peak RSS is the step's own."""
    step, root, n, files, hashed = argv[0], argv[1], int(argv[2]), int(argv[3]), argv[4] == "hashed"
    start = time.perf_counter()
    result = _write_run(root, n, files, hashed) if step == "write" else _select_staging(root, f"{root}-select")
    result["seconds"] = time.perf_counter() - start
    return result


def _run_child(*args: object) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--hashed-sizes", type=int, nargs="*", default=[10_000, 100_000],
                    help="sizes to run on the scored layout before 2026-12-07 (one staging file per document)")
    ap.add_argument("--files", type=int, default=16, help="input files of the synthetic run")
    ap.add_argument("--work", default=None, help="folder for the runs (default: a temporary folder, removed)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child)))
        return
    work = args.work or tempfile.mkdtemp(prefix="select-scale-")
    print(f"{'layout':9} {'documents':>10} {'step':18} {'objects':>8} {'RSS before':>11} {'peak RSS':>9} "
          f"{'seconds':>8}")
    try:
        for layout, sizes in (("per-file", args.sizes), ("hashed", args.hashed_sizes)):
            for n in sizes:
                root = os.path.join(work, f"{layout}-{n}")
                wrote = _run_child("write", root, n, args.files, layout)
                selected = _run_child("select", root, n, args.files, layout)
                steps = [("select staging", selected)]
                if layout == "per-file":
                    steps.insert(0, ("keep-scored write", wrote))
                for step, r in steps:
                    print(f"{layout:9} {n:>10,} {step:18} {r['objects']:>8,} {r['rss_before_mib']:>9.0f} M "
                          f"{r['peak_rss_mib']:>7.0f} M {r['seconds']:>8.1f}", flush=True)
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(f"{root}-select", ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
