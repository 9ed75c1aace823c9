"""Quality and topic classifiers as Beam steps: score every document in batches (models load once per
worker), then decide: a score threshold inline, a keep-top-fraction cut from a global histogram of scores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import apache_beam as beam

from classifiers.fasttext_model import FastTextClassifier
from classifiers.text import normalize_for_classifier
from pipelines.documents import LEDGER
from pipelines.isolation import batch_or_each, dropped_row, internal_error
from pipelines.metrics import StageCounters
from pipelines.worker import apply_worker_settings
from schemas.recipe import Recipe
from schemas.records import STAGE_CLASSIFIERS, Decision, Document, LateDrop, StagedRef

BINS = 100_000


class _Score(beam.DoFn):
    """Batch of Documents -> the same Documents with quality_score / topic / topic_score set."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        q, t = self.recipe.quality, self.recipe.topic
        self.quality = FastTextClassifier(q.model_path) if q.enabled else None
        self.topic = FastTextClassifier(t.model_path) if t.enabled else None
        self.counters = StageCounters(STAGE_CLASSIFIERS)

    def process(self, batch: list[Document]) -> Iterator:
        with self.counters.timed():
            scored = self._scored(batch)
        for doc, result in zip(batch, scored, strict=True):
            if isinstance(result, Decision):
                yield beam.pvalue.TaggedOutput(LEDGER, dropped_row(doc, result, self.counters, self.recipe))
            else:
                yield result

    def _scored(self, batch: list[Document]) -> list[Document | Decision]:
        """The batch scored by both models at once: copies of the Documents with quality_score / topic /
        topic_score (Beam forbids changing an input). A document that makes the models raise by itself becomes
        its ledger row (internal_error); the others are scored as they would be (isolation.batch_or_each)."""
        return [internal_error(STAGE_CLASSIFIERS, "classifier scores", r, doc.doc_id) if isinstance(r, Exception)
                else r for doc, r in zip(batch, batch_or_each(self._score, batch), strict=True)]

    def _score(self, batch: list[Document]) -> list[Document]:
        lines = [normalize_for_classifier(d.text) for d in batch]  # one normalization for both models
        docs = [replace(d, scores=dict(d.scores)) for d in batch]
        if self.quality is not None:
            scores = self.quality.probability(lines, self.recipe.quality.positive_label, normalized=True)
            for doc, score in zip(docs, scores, strict=True):
                doc.scores["quality_score"] = score
        if self.topic is not None:
            for doc, (label, score) in zip(docs, self.topic.predict(lines, normalized=True), strict=True):
                doc.topic = label
                doc.scores["topic_score"] = score
        return docs


def _bin(score: float) -> int:
    return min(int(score * BINS), BINS - 1)


def cut_from_histogram(histogram: dict[int, int], keep_fraction: float) -> int:
    """Smallest bin b such that keeping every bin >= b keeps at least keep_fraction of the documents."""
    total = sum(histogram.values())
    want = keep_fraction * total
    kept = 0
    for b in sorted(histogram, reverse=True):
        kept += histogram[b]
        if kept >= want:
            return b
    return 0


class _Decide(beam.DoFn):
    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def setup(self) -> None:
        apply_worker_settings()  # once per process; pipelines/worker.py
        self.counters = StageCounters(STAGE_CLASSIFIERS)

    def _reason(self, ref: StagedRef, cut_bin: int) -> tuple[str, float] | None:
        q, t = self.recipe.quality, self.recipe.topic
        if q.enabled:
            score = ref.quality
            if score < q.min_score or _bin(score) < cut_bin:
                return "quality_classifier", score
        if t.enabled and ((t.keep and ref.topic not in t.keep) or ref.topic in t.drop):
            return "topic_dropped", ref.topic_score
        return None

    def process(self, ref: StagedRef, cut_bin: int) -> Iterator:
        self.counters.inp.inc()
        verdict = self._reason(ref, cut_bin)
        if verdict is None:
            self.counters.kept.inc()
            yield ref
            return
        self.counters.dropped(verdict[0])
        decision = Decision(STAGE_CLASSIFIERS, verdict[0], verdict[1], detail=ref.topic)
        yield beam.pvalue.TaggedOutput(LEDGER, LateDrop(ref, decision))


class ScoreClassifiers(beam.PTransform):
    """Documents -> the same Documents with classifier scores (main; batched; fuses with the stages before it)
    and ledger rows of documents that made a model raise (LEDGER)."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe

    def expand(self, docs):
        size = max(self.recipe.quality.batch_size, self.recipe.topic.batch_size)
        return (
            docs
            | "BatchForClassifiers" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
            | "Score" >> beam.ParDo(_Score(self.recipe)).with_outputs(LEDGER, main="scored")
        )


class DecideClassifiers(beam.PTransform):
    """StagedRefs of scored Documents -> kept refs (main) and LateDrops (LEDGER): a score threshold, and a
    keep-top-fraction cut from a global histogram of the scores (a side input). It runs after staging so the
    documents wait there, not in the runner, while the histogram is made."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe

    def expand(self, scored):
        q = self.recipe.quality
        if q.enabled and q.keep_top_fraction < 1.0:
            histogram = (
                scored
                | "ScoreBin" >> beam.Map(lambda ref: _bin(ref.quality))
                | "Histogram" >> beam.combiners.Count.PerElement()
                | "HistogramList" >> beam.combiners.ToList()
                | "Cut" >> beam.Map(lambda pairs, f=q.keep_top_fraction: cut_from_histogram(dict(pairs), f))
            )
            cut = beam.pvalue.AsSingleton(histogram)
        else:
            cut = beam.pvalue.AsSingleton(scored.pipeline | "NoCut" >> beam.Create([0]))
        return scored | "DecideClassifiers" >> beam.ParDo(_Decide(self.recipe), cut_bin=cut).with_outputs(
            LEDGER, main="kept"
        )
