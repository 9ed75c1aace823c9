"""Exact deduplication as one global shuffle: key by hash of normalized text (computed at staging), one survivor
per key. It moves StagedRefs, not Documents (pipelines/staging.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import apache_beam as beam

from dedup.exact import survivor_order
from pipelines.against_releases import MATCHED, release_name
from pipelines.documents import LEDGER
from pipelines.metrics import StageCounters
from pipelines.worker import apply_worker_settings
from schemas.recipe import Recipe
from schemas.records import REASON_DUPLICATE_OF_RELEASE, STAGE_EXACT_DEDUP, Decision, LateDrop, StagedRef


class _SplitGroup(beam.DoFn):
    """Two passes over a key group (ids, then refs): memory stays flat however large the group."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_EXACT_DEDUP)

    def process(self, element: tuple[str, Iterable[StagedRef]]) -> Iterator:
        _key, group = element
        rule = self.recipe.dedup.survivor
        keep = min(survivor_order(ref.doc_id, ref.source, ref.offset, rule) for ref in group)[-1]
        size = 0
        survivor = None
        for ref in group:
            self.counters.inp.inc()
            size += 1
            if ref.doc_id == keep:
                survivor = ref
                continue
            self.counters.dropped("exact_duplicate")
            decision = Decision(STAGE_EXACT_DEDUP, "exact_duplicate", detail=f"duplicate of {keep}")
            # Copies with the cluster fields, here and below: Beam forbids changing an input element.
            yield beam.pvalue.TaggedOutput(LEDGER, LateDrop(replace(ref, cluster_id=keep), decision))
        self.counters.kept.inc()
        yield replace(survivor, cluster_size=size, cluster_id=keep if size > 1 else "")


class _SplitWithReleased(_SplitGroup):
    """A key group with released documents (pipelines/against_releases.py): every run document in it is an exact
    copy of a released one (the smallest released ref names it); without, the run's own survivor rule."""

    def process(self, element: tuple[str, dict[str, Iterable]]) -> Iterator:
        key, grouped = element
        released = min(grouped["released"], default=None)
        if released is None:
            yield from super().process((key, grouped["run"]))
            return
        name = release_name(released)
        for ref in grouped["run"]:
            self.counters.inp.inc()
            self.counters.dropped(REASON_DUPLICATE_OF_RELEASE)
            yield beam.pvalue.TaggedOutput(MATCHED, ((name, "exact"), 1))
            decision = Decision(STAGE_EXACT_DEDUP, REASON_DUPLICATE_OF_RELEASE,
                                detail=f"exact copy of released {released}")
            yield beam.pvalue.TaggedOutput(LEDGER, LateDrop(replace(ref, cluster_id=released), decision))


class ExactDedup(beam.PTransform):
    """StagedRefs -> survivors (main) and LateDrops of exact duplicates (LEDGER); with `released`
    (against_releases.ReleasedDoc), also of exact copies of released documents, and per-release counts
    (MATCHED)."""

    def __init__(self, recipe: Recipe, released=None) -> None:
        super().__init__()
        self.recipe = recipe
        self.released = released

    def expand(self, docs):
        keyed = docs | "KeyByText" >> beam.Map(lambda ref: (ref.exact_key, ref))
        if self.released is None:
            return (
                keyed
                | "GroupByText" >> beam.GroupByKey()
                | "PickSurvivor" >> beam.ParDo(_SplitGroup(self.recipe)).with_outputs(LEDGER, main="survivors")
            )
        released = self.released | "ReleasedKeys" >> beam.Map(lambda d: (d.exact_key, d.ref))
        return (
            {"run": keyed, "released": released}
            | "GroupByTextWithReleased" >> beam.CoGroupByKey()
            | "PickSurvivor" >> beam.ParDo(_SplitWithReleased(self.recipe)).with_outputs(
                LEDGER, MATCHED, main="survivors")
        )
