"""Filter names (as recipes spell them) to filter classes, and the recipe -> filter list builder."""

from __future__ import annotations

from filters.bad_words import BadWordsFilter
from filters.base import Filter
from filters.c4 import C4Filter
from filters.fineweb import FineWebFilter
from filters.gopher import GopherQualityFilter, GopherRepetitionFilter
from filters.language import LanguageFilter
from filters.pii import PiiFilter
from filters.url import UrlFilter
from schemas.recipe import Recipe
from schemas.records import CONTAMINATION_SCORE, STAGE_FILTERS, Decision, Document

FILTERS: dict[str, type[Filter]] = {
    f.name: f
    for f in (
        LanguageFilter, UrlFilter, GopherQualityFilter, GopherRepetitionFilter, C4Filter, FineWebFilter,
        BadWordsFilter, PiiFilter,
    )
}


def build_filters(recipe: Recipe) -> list[Filter]:
    """Instantiate the recipe's filters in `filters.order`, each with its own config table."""
    return [FILTERS[name](getattr(recipe.filters, name)) for name in recipe.filters.order]


def prepare_filters(filters: list[Filter]) -> list[Filter]:
    """`filters`, each with what its first document would load loaded (`Filter.prepare`): called in a worker's
    set-up, never by the driver, which builds filters only for their names."""
    for f in filters:
        f.prepare()
    return filters


def score_columns(recipe: Recipe) -> list[str]:
    """Shard score columns for this recipe: every signal of every enabled filter, in filter order, then the
    decontamination flag's n-gram count, then the classifier scores."""
    columns = [name for f in recipe.filters.order for name in FILTERS[f].signal_names]
    if recipe.decontamination.enabled and recipe.decontamination.action == "flag":
        columns.append(CONTAMINATION_SCORE)  # None on clean documents
    if recipe.quality.enabled:
        columns.append("quality_score")
    if recipe.topic.enabled:
        columns.append("topic_score")
    return columns


def apply_filters(filters: list[Filter], doc: Document, stage: str = STAGE_FILTERS) -> Decision | None:
    """Run every filter's signals (all of them, so the ledger holds every signal for kept and dropped
    documents alike) and return the first drop in order, or None to keep."""
    decision = None
    for f in filters:
        signals = f.signals(doc)
        doc.scores.update(signals)
        if decision is None and (verdict := f.decide(doc, signals)) is not None:
            decision = Decision(stage, verdict[0], verdict[1])
    return decision
