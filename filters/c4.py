"""C4 rules (Raffel et al. 2020, §2.2; tfds c4_utils.py): line cleaning (a modifier) plus page drops.

Line rules drop single lines: a word longer than max_word_length, no terminal punctuation (or ending in an
ellipsis), fewer than min_words_per_line words, "javascript", cookie/privacy/terms boilerplate. Page rules
drop the document: "lorem ipsum", a curly bracket, fewer than min_num_sentences sentences left.
Sentences are counted with a regex (terminal mark followed by space or end), not NLTK's punkt model.
Reasons: c4_lorem_ipsum, c4_curly_bracket, c4_too_few_sentences.
"""

from __future__ import annotations

import re

from filters.base import Filter
from schemas.records import Document

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?:\s|$)")


def count_sentences(line: str) -> int:
    """Terminal-mark runs followed by whitespace or the end, at least 1 for a non-empty line."""
    return max(1, len(SENTENCE_END.findall(line))) if line.strip() else 0


class C4Filter(Filter):
    name = "c4"
    signal_names = ("c4_lines_kept_ratio", "c4_sentences", "c4_page_rule")
    # Page rules as a signal value, so decide() reads everything from the signals.
    PAGE_RULES = ("", "c4_lorem_ipsum", "c4_curly_bracket")

    def _clean(self, doc: Document) -> tuple[list[str], int, int, str]:
        """(kept lines, sentences, lines seen, page-drop reason or '')."""
        c = self.config_for(doc.language)
        end_marks = tuple(c.end_marks)
        kept: list[str] = []
        sentences = 0
        lines = doc.text.splitlines()
        for raw in lines:
            line = raw.strip()
            words = line.split()
            if words and max(map(len, words)) > c.max_word_length:
                continue
            if c.remove_citations and "[" in line:
                line = CITATION.sub("", line)
            if c.filter_no_terminal_punct and (not line.endswith(end_marks) or line.endswith("...")):
                continue
            if len(words) < c.min_words_per_line:
                continue
            lower = line.lower()
            if c.filter_lorem_ipsum and "lorem ipsum" in lower:
                return [], 0, len(lines), "c4_lorem_ipsum"
            if c.filter_javascript and "javascript" in lower:
                continue
            if c.filter_curly_bracket and "{" in line:
                return [], 0, len(lines), "c4_curly_bracket"
            if c.filter_policy and any(p in lower for p in POLICY):
                continue
            sentences += count_sentences(line)
            kept.append(line)
        return kept, sentences, len(lines), ""

    def signals(self, doc: Document) -> dict[str, float]:
        kept, sentences, seen, page_reason = self._clean(doc)
        if not page_reason:
            cleaned = "\n".join(kept).strip()
            if cleaned != doc.text:
                doc.text = cleaned
                doc.modified_by.append(self.name)
        return {
            "c4_lines_kept_ratio": len(kept) / seen if seen else 0.0,
            "c4_sentences": float(sentences),
            "c4_page_rule": float(self.PAGE_RULES.index(page_reason)),
        }

    def decide(self, doc: Document, s: dict[str, float]) -> tuple[str, float] | None:
        if s["c4_page_rule"]:
            return self.PAGE_RULES[int(s["c4_page_rule"])], 1.0
        c = self.config_for(doc.language)
        if s["c4_sentences"] < c.min_num_sentences:
            return "c4_too_few_sentences", s["c4_sentences"]
        return None
