"""The benchmark n-gram index of an enabled [decontamination]: built by the driver once per run, before anything
is written, and written into the output's _staging/ for the workers, which load it once per process
(pipelines/decontaminate.py). Moved from run_pipeline.py on 2026-12-07 (issue 35)."""

from __future__ import annotations

import sys
import time

from driver.errors import UsageError
from outputs.staging import staging_dir
from pipelines.decontaminate import DecontaminationPlan
from schemas.recipe import Recipe
from storage.files import write_bytes


def decontamination_index(recipe: Recipe, output: str, quiet: bool = False
                          ) -> tuple[DecontaminationPlan | None, bytes]:
    """The benchmark n-gram index of an enabled [decontamination], built here once for the whole run (before
    anything is written: a source that cannot be used is a UsageError naming the file), and the plan the
    pipeline gets: where the index will be (the run's _staging/, written by `write_decontamination_index`
    once the output is prepared) and what each benchmark file gave. Plain Python and numpy: the driver loads
    no compiled kernel."""
    cfg = recipe.decontamination
    if not cfg.enabled:
        return None, b""
    from dataclasses import asdict

    from decontamination.index import build_index
    from decontamination.sources import SourceError

    start = time.perf_counter()
    try:
        index, summaries = build_index(cfg.sources, cfg.text_fields, ngram=cfg.ngram,
                                       min_item_words=cfg.min_item_words, min_matches=cfg.min_matches)
    except SourceError as exc:
        raise UsageError(str(exc)) from exc
    data = index.to_bytes()
    seconds = time.perf_counter() - start
    items, short = sum(s.indexed for s in summaries), sum(s.too_short for s in summaries)
    plan = DecontaminationPlan(
        index_path=f"{staging_dir(output)}/decontamination-index.npz",
        sources=[asdict(s) for s in summaries],
        index={"items": items, "ngrams": int(len(index.hashes)), "bytes": index.nbytes,
               "lengths": index.lengths.tolist(), "build_seconds": round(seconds, 3)},
    )
    if not quiet:
        print(f"tokenmill: decontamination: {len(summaries)} benchmark file(s), {items:,} items indexed ({short:,} "
              f"under {cfg.min_item_words} words left out), {len(index.hashes):,} n-grams, "
              f"{index.nbytes / 2**20:.1f} MiB, in {seconds:.1f} s", file=sys.stderr)
    return plan, data


def write_decontamination_index(plan: DecontaminationPlan | None, data: bytes) -> None:
    if plan is not None:
        write_bytes(plan.index_path, data)
