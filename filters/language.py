"""Keep rule on the language label every document already carries (set by classifiers.language)."""

from __future__ import annotations

from filters.base import Filter
from schemas.recipe import LanguageFilterConfig
from schemas.records import Document


class LanguageFilter(Filter):
    name = "language"

    def __init__(self, config: LanguageFilterConfig) -> None:
        self.keep = frozenset(config.keep)
        self.min_score = config.min_score

    def decide(self, doc: Document, signals: dict[str, float]) -> tuple[str, float] | None:
        if self.keep and doc.language not in self.keep:
            return "language_not_kept", doc.language_score
        if doc.language_score < self.min_score:
            return "language_score_low", doc.language_score
        return None
