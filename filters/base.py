"""The filter contract: signals once, decision from thresholds.

A filter splits its work in two so a threshold can be changed without recomputing anything:
`signals(doc)` measures (word counts, ratios, scores) and `decide(doc, signals)` only compares. Calling the
filter does both, stores the signals on the document (they reach the ledger for kept and dropped documents
alike) and returns None to keep or a Decision naming the reason and the score that crossed the line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from schemas.records import STAGE_FILTERS, Decision, Document


class Filter(ABC):
    name: ClassVar[str]
    # Names of the signals `signals()` returns; each becomes a float64 column of the shards.
    signal_names: ClassVar[tuple[str, ...]] = ()

    def signals(self, doc: Document) -> dict[str, float]:
        """Measurements this filter decides on, prefixed with the filter name. Default: none."""
        return {}

    @abstractmethod
    def decide(self, doc: Document, signals: dict[str, float]) -> tuple[str, float] | None:
        """(reason, score) to drop, None to keep. Must not compute anything expensive."""

    def __call__(self, doc: Document) -> Decision | None:
        signals = self.signals(doc)
        doc.scores.update(signals)
        verdict = self.decide(doc, signals)
        if verdict is None:
            return None
        reason, score = verdict
        return Decision(STAGE_FILTERS, reason, score)
