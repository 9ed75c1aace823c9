"""Filter names (as recipes spell them) to filter classes, and the recipe -> filter list builder."""

from __future__ import annotations

from filters.base import Filter
from filters.language import LanguageFilter
from schemas.recipe import Recipe

FILTERS: dict[str, type[Filter]] = {
    LanguageFilter.name: LanguageFilter,
}


def build_filters(recipe: Recipe) -> list[Filter]:
    """Instantiate the recipe's filters in `filters.order`, each with its own config table."""
    return [FILTERS[name](getattr(recipe.filters, name)) for name in recipe.filters.order]


def score_columns(recipe: Recipe) -> list[str]:
    """Shard score columns for this recipe: every signal of every enabled filter, in filter order."""
    return [name for f in recipe.filters.order for name in FILTERS[f].signal_names]
