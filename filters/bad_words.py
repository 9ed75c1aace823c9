"""C4's bad-words rule: drop a page containing a listed word for its language (LDNOOBW-style lists).

For languages written without spaces (ja, th, zh by default) a listed word matches anywhere; elsewhere it
must stand between non-word characters. A seeded share of matching pages can be kept (keep_fraction).
Reason: bad_words. Languages without a list are kept and counted (signal bad_words_list_missing = 1).
"""

from __future__ import annotations

import re

from filters.base import Filter
from filters.lists import read_list
from schemas.records import Document, in_sample
from storage.files import is_file, join


class BadWordsFilter(Filter):
    name = "bad_words"
    signal_names = ("bad_words_found", "bad_words_list_missing")

    def __init__(self, config) -> None:
        super().__init__(config)
        self._regex: dict[str, re.Pattern | None] = {}
        self._allow = frozenset(w.lower() for w in config.allow)

    def _pattern(self, language: str) -> re.Pattern | None:
        if language not in self._regex:
            path = join(self.config.lists_dir, f"{language}.txt") if self.config.lists_dir else ""
            if not path or not is_file(path):
                self._regex[language] = None
            else:
                words = sorted(read_list(path) - self._allow, key=lambda w: (-len(w), w))
                alternation = "|".join(map(re.escape, words))
                if language in self.config.no_boundary_languages:
                    self._regex[language] = re.compile(alternation)
                else:
                    self._regex[language] = re.compile(rf"(?:\W|^)(?:{alternation})(?:\W|$)")
        return self._regex[language]

    def signals(self, doc: Document) -> dict[str, float]:
        pattern = self._pattern(doc.language)
        if pattern is None:
            return {"bad_words_found": 0.0, "bad_words_list_missing": 1.0}
        return {"bad_words_found": float(pattern.search(doc.text.lower()) is not None), "bad_words_list_missing": 0.0}

    def decide(self, doc: Document, s: dict[str, float]) -> tuple[str, float] | None:
        if not s["bad_words_found"]:
            return None
        if in_sample(doc.doc_id, self.config.seed, self.config.keep_fraction):
            return None
        return "bad_words", 1.0
