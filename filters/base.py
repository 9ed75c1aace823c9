"""The filter contract: signals once, decision from thresholds.

A filter splits its work in two so a threshold can be changed without recomputing anything:
`signals(doc)` measures (word counts, ratios, scores) and `decide(doc, signals)` only compares. Calling the
filter does both, stores the signals on the document (they reach the ledger for kept and dropped documents
alike) and returns None to keep or a Decision naming the reason and the score that crossed the line.

Modifiers (C4 line cleaning, PII) change `doc.text` inside `signals` and name themselves in
`doc.modified_by`; later filters see the modified text.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from schemas.records import STAGE_FILTERS, Decision, Document


class Filter(ABC):
    name: ClassVar[str]
    # Names of the signals `signals()` returns; each becomes a float64 column of the shards.
    signal_names: ClassVar[tuple[str, ...]] = ()
    # False for filters that only look at the URL: they run before extraction (cheap-first).
    needs_text: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        self.config = config
        self._by_language: dict[str, Any] = {}

    def config_for(self, language: str) -> Any:
        """The config with this language's `per_language` overrides applied (cached per language)."""
        overrides = getattr(self.config, "per_language", None)
        if not overrides or language not in overrides:
            return self.config
        if language not in self._by_language:
            merged = copy.deepcopy(self.config)
            for key, value in overrides[language].items():
                setattr(merged, key, value)
            self._by_language[language] = merged
        return self._by_language[language]

    def prepare(self) -> None:  # noqa: B027 - a hook most filters do not need, not abstract
        """Load now what the first document would otherwise pay for (a compiled kernel), so that a worker's
        set-up carries it and a stage's seconds count documents only. Default: nothing to load."""

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


def fields_of(config: Any) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
