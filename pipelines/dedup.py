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


class _RunSide:
    """The run's refs of a key group of (is released, ref or released ref) values: iterable again and again, as
    _SplitGroup's two passes need, without copying the group."""

    def __init__(self, group: Iterable[tuple[bool, object]]) -> None:
        self.group = group

    def __iter__(self) -> Iterator[StagedRef]:
        return (value for is_released, value in self.group if not is_released)


class _SplitWithReleased(_SplitGroup):
    """A key group with released documents (pipelines/against_releases.py): every run document in it is an exact
    copy of a released one (the smallest released ref names it); without, the run's own survivor rule.

    The group is (is released, value) pairs from one GroupByKey, walked in passes, never made a list: Beam's
    Python CoGroupByKey, used here until 2026-12-07, built each side's list, so a key's 10^6 run copies were
    one list on one worker (the released side is one ref per key since then: ExactDedup's combiner)."""

    def process(self, element: tuple[str, Iterable[tuple[bool, object]]]) -> Iterator:
        key, group = element
        released = min((value for is_released, value in group if is_released), default=None)
        if released is None:
            yield from super().process((key, _RunSide(group)))
            return
        name = release_name(released)
        for ref in _RunSide(group):
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
        # One released ref per key, the smallest (the one a copy cites), combined where the index is read: a
        # template released 10^6 times reaches the group as one value.
        released = (
            self.released
            | "ReleasedKeys" >> beam.Map(lambda d: (d.exact_key, d.ref))
            | "SmallestReleased" >> beam.CombinePerKey(min)
        )
        return (
            (
                keyed | "TagRun" >> beam.MapTuple(lambda key, ref: (key, (False, ref))),
                released | "TagReleased" >> beam.MapTuple(lambda key, ref: (key, (True, ref))),
            )
            | "RunAndReleased" >> beam.Flatten()
            | "GroupByTextWithReleased" >> beam.GroupByKey()
            | "PickSurvivor" >> beam.ParDo(_SplitWithReleased(self.recipe)).with_outputs(
                LEDGER, MATCHED, main="survivors")
        )
