"""Keep rule on the language label every document already carries (set by classifiers.language)."""

from __future__ import annotations

from filters.base import Filter
from schemas.recipe import Recipe
from schemas.records import Document


def precheck_reason(best_kept: float, keep: list[str], margin: float) -> tuple[str, float] | None:
    """The cheap-first cascade's rule, applied before extraction to the quick text's language scores: drop
    only when every kept language is below `margin` there (a wide safety margin: the full filter later asks
    the top-1 label of the extracted text to be a kept language)."""
    if keep and margin > 0 and best_kept < margin:
        return "language_not_kept", best_kept
    return None


def runs_precheck(recipe: Recipe) -> bool:
    """Whether a run of `recipe` asks the cascade's question at all: its language filter is in the order, keeps
    some languages, and its precheck margin is above 0 (0 turns the cascade off)."""
    lang = recipe.filters.language
    return "language" in recipe.filters.order and bool(lang.keep) and lang.precheck_margin > 0


class LanguageFilter(Filter):
    name = "language"

    def decide(self, doc: Document, signals: dict[str, float]) -> tuple[str, float] | None:
        cfg = self.config
        if cfg.keep and doc.language not in cfg.keep:
            return "language_not_kept", doc.language_score
        if doc.language_score < cfg.min_score:
            return "language_score_low", doc.language_score
        return None
