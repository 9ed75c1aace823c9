"""Decontamination as a Beam step: each Document is matched against the benchmark n-gram index (built once by
the driver, decontamination/index.py) and dropped to the ledger (reason contaminated) or kept with a flag.

The index is loaded once per worker process, whatever number of threads and DoFn instances the runner gives
it (Beam's `Shared`, as RunInference holds a model), from the file the driver wrote in the run's _staging/.
Per benchmark file, the items found and the documents matching them leave as keyed counts (CombinePerKey)
for stats.json and the report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from decontamination.index import DecontaminationIndex
from pipelines.documents import LEDGER
from pipelines.isolation import ENVIRONMENT_ERRORS, dropped_row, internal_error
from pipelines.metrics import NAMESPACE, StageCounters
from pipelines.worker import apply_worker_settings
from schemas.recipe import Recipe
from schemas.records import (
    CONTAMINATION_SCORE,
    REASON_CONTAMINATED,
    STAGE_DECONTAMINATION,
    Decision,
    Document,
    ledger_row_for_drop,
)
from storage.files import read_bytes

FOUND = "found"  # side output: ((kind, source, item), 1)
TOP_ITEMS = 10  # items per source listed in stats.json, most documents first


@dataclass(frozen=True)
class DecontaminationPlan:
    """What the driver hands the pipeline: where the index is and what each benchmark file gave it."""

    index_path: str
    sources: list[dict[str, Any]]  # decontamination.index.SourceSummary as dicts, in source order
    index: dict[str, Any]  # n-grams, bytes, lengths, build seconds


class _Decontaminate(beam.DoFn):
    def __init__(self, recipe: Recipe, index_path: str) -> None:
        self.recipe = recipe
        self.index_path = index_path
        self.handle = shared.Shared()

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.index = self.handle.acquire(lambda: DecontaminationIndex.from_bytes(read_bytes(self.index_path)),
                                         tag=self.index_path)
        self.index.match("load the compiled scan")  # in setup, as a model loads: not a document's time
        self.counters = StageCounters(STAGE_DECONTAMINATION)
        self.flagged = Metrics.counter(NAMESPACE, f"{STAGE_DECONTAMINATION}/flagged/{REASON_CONTAMINATED}")

    def process(self, doc: Document) -> Iterator:
        self.counters.inp.inc()
        try:
            with self.counters.timed():
                found = self.index.match(doc.text)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - this document's failure is its ledger row
            decision = internal_error(STAGE_DECONTAMINATION, "decontamination", exc, doc.doc_id)
            yield beam.pvalue.TaggedOutput(LEDGER, dropped_row(doc, decision, self.counters, self.recipe))
            return
        if found is None:
            self.counters.kept.inc()
            yield doc
            return
        best, count = found.best
        path, row = self.index.describe(best)
        decision = Decision(STAGE_DECONTAMINATION, REASON_CONTAMINATED, float(count),
                            detail=f'{path} item {row}: "{found.passage}"')
        # A copy with the score: Beam forbids changing an input element.
        doc = dataclasses.replace(doc, scores={**doc.scores, CONTAMINATION_SCORE: float(count)})
        sources = set()
        for item, _count in found.items:
            source, row = self.index.describe(item)
            sources.add(source)
            yield beam.pvalue.TaggedOutput(FOUND, (("item", source, row), 1))
        for source in sorted(sources):
            yield beam.pvalue.TaggedOutput(FOUND, (("documents", source, -1), 1))
        if self.recipe.decontamination.action == "flag":
            self.counters.kept.inc()
            self.flagged.inc()
            doc.flag = decision
            yield doc
            return
        self.counters.dropped(REASON_CONTAMINATED)
        out = self.recipe.output
        yield beam.pvalue.TaggedOutput(LEDGER, ledger_row_for_drop(doc, decision, out.seed,
                                                                   out.dropped_text_sample_rate))


class Decontaminate(beam.PTransform):
    """Documents -> kept Documents (main), ledger rows of dropped ones (LEDGER), and per (source, item) counts
    of documents found (FOUND, summed). Fuses with the filter step before it."""

    def __init__(self, recipe: Recipe, plan: DecontaminationPlan) -> None:
        super().__init__()
        self.recipe = recipe
        self.plan = plan

    def expand(self, docs):
        out = docs | "Match" >> beam.ParDo(_Decontaminate(self.recipe, self.plan.index_path)).with_outputs(
            LEDGER, FOUND, main="kept")
        found = out[FOUND] | "SumFound" >> beam.CombinePerKey(sum)
        return out.kept, out[LEDGER], found


def decontamination_stats(recipe: Recipe, plan: DecontaminationPlan, found: list[tuple[tuple, int]]
                          ) -> dict[str, Any]:
    """stats.json `decontamination`: the settings, the index, and per benchmark file what it gave the index,
    the items found in the crawl, the documents that matched them (dropped or flagged, by `action`) and the
    items found in most documents."""
    cfg = recipe.decontamination
    items: dict[str, list[tuple[int, int]]] = {}
    documents: dict[str, int] = {}
    for (kind, source, row), n in found:
        if kind == "item":
            items.setdefault(source, []).append((row, n))
        else:
            documents[source] = n
    sources = []
    for summary in plan.sources:
        path = summary["path"]
        top = sorted(items.get(path, []), key=lambda rn: (-rn[1], rn[0]))
        sources.append({**summary, "items_found": len(top), "documents": documents.get(path, 0),
                        "top_items": [{"item": r, "documents": n} for r, n in top[:TOP_ITEMS]]})
    return {"action": cfg.action, "ngram": cfg.ngram, "min_matches": cfg.min_matches,
            "min_item_words": cfg.min_item_words, "text_fields": list(cfg.text_fields), "index": plan.index,
            "sources": sources}
