"""Keep rule on the language label every document already carries (set by classifiers.language)."""

from __future__ import annotations

from filters.base import Filter
from schemas.records import Document


class LanguageFilter(Filter):
    name = "language"

    def decide(self, doc: Document, signals: dict[str, float]) -> tuple[str, float] | None:
        cfg = self.config
        if cfg.keep and doc.language not in cfg.keep:
            return "language_not_kept", doc.language_score
        if doc.language_score < cfg.min_score:
            return "language_score_low", doc.language_score
        return None
