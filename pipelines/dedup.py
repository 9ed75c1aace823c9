"""Exact deduplication as one global shuffle: key by hash of normalized text, one survivor per key."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam

from dedup.exact import exact_key, survivor_id
from pipelines.documents import LEDGER
from pipelines.metrics import StageCounters
from schemas.recipe import Recipe
from schemas.records import STAGE_EXACT_DEDUP, Decision, Document, ledger_row_for_drop


class _SplitGroup(beam.DoFn):
    """Two passes over a key group (ids, then documents): memory stays flat however large the group."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def setup(self) -> None:
        self.counters = StageCounters(STAGE_EXACT_DEDUP)

    def process(self, element: tuple[str, Iterable[Document]]) -> Iterator:
        _key, group = element
        keep = survivor_id(d.doc_id for d in group)
        out = self.recipe.output
        size = 0
        survivor = None
        for doc in group:
            self.counters.inp.inc()
            size += 1
            if doc.doc_id == keep:
                survivor = doc
                continue
            doc.cluster_id = keep
            self.counters.dropped("exact_duplicate")
            decision = Decision(STAGE_EXACT_DEDUP, "exact_duplicate", detail=f"duplicate of {keep}")
            row = ledger_row_for_drop(doc, decision, out.seed, out.dropped_text_sample_rate)
            yield beam.pvalue.TaggedOutput(LEDGER, row)
        self.counters.kept.inc()
        survivor.cluster_size = size
        survivor.cluster_id = keep if size > 1 else ""
        yield survivor


class ExactDedup(beam.PTransform):
    """Documents -> survivors (main) and ledger rows of exact duplicates (LEDGER)."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe

    def expand(self, docs):
        return (
            docs
            | "KeyByText" >> beam.Map(lambda d: (d.exact_key or exact_key(d.text), d))
            | "GroupByText" >> beam.GroupByKey()
            | "PickSurvivor" >> beam.ParDo(_SplitGroup(self.recipe)).with_outputs(LEDGER, main="survivors")
        )
