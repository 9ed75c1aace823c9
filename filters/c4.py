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
from filters.text import cached_words, count_words, remember_word_count, split_lines
from schemas.records import Document

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?:\s|$)")
_CLOSERS = "\"'”’)]"
_MARKS = (".", "!", "?")


def count_sentences(line: str) -> int:
    """Terminal-mark runs followed by whitespace or the end, at least 1 for a non-empty line."""
    return max(1, len(SENTENCE_END.findall(line))) if line.strip() else 0


def count_sentences_of_lines(lines: list[str], joined: str) -> int:
    """sum(map(count_sentences, lines)) for lines without line breaks, `joined` the lines joined by newlines:
    every match in the joined text lies in one line (nothing in SENTENCE_END matches a newline but its closing
    whitespace, where a line alone has its end), so one scan counts them all; a non-empty line without a match
    adds one, and only a line that does not end in a mark and closers needs asking. 8e36f4e scanned each line
    (~40 a bench page) alone."""
    total = len(SENTENCE_END.findall(joined))
    for line in lines:
        if not line.rstrip(_CLOSERS).endswith(_MARKS) and line.strip() and SENTENCE_END.search(line) is None:
            total += 1
    return total


class C4Filter(Filter):
    name = "c4"
    signal_names = ("c4_lines_kept_ratio", "c4_sentences", "c4_page_rule")
    # Page rules as a signal value, so decide() reads everything from the signals.
    PAGE_RULES = ("", "c4_lorem_ipsum", "c4_curly_bracket")

    def _clean(self, doc: Document, count_removed: bool) -> tuple[list[str], str, int, int, str, int]:
        """(kept lines, the kept lines joined by newlines, sentences, lines seen, page-drop reason or '', words
        removed: those of dropped lines and of citations, counted only when `count_removed`).

        Per page first, then per line (8e36f4e lower-cased and searched every line): a phrase (all ASCII)
        absent from the lower-cased page is absent from every lower-cased line, as lower-casing maps each
        character alone (only a final sigma looks at its neighbours, and it lower-cases to a Greek letter
        either way); only a line whose citations were removed can newly hold one ("java[1]script"), and it is
        checked in full. A '{' cannot appear by removing citations. No word is longer than its line, and a line has
        fewer than n words exactly when splitting it at most n - 1 times gives fewer than n parts."""
        c = self.config_for(doc.language)
        end_marks = tuple(c.end_marks)
        kept: list[str] = []
        removed = 0
        min_words = c.min_words_per_line
        text = doc.text
        lines = split_lines(text)
        lowered = text.lower() if c.filter_lorem_ipsum or c.filter_javascript or c.filter_policy else ""
        phrase_on_page = ((c.filter_lorem_ipsum and "lorem ipsum" in lowered)
                          or (c.filter_javascript and "javascript" in lowered)
                          or (c.filter_policy and any(p in lowered for p in POLICY)))
        curly_on_page = c.filter_curly_bracket and "{" in text
        max_word_length = c.max_word_length
        for raw in lines:
            line = raw.strip()
            if len(line) > max_word_length and (words := line.split()) and max(map(len, words)) > max_word_length:
                removed += count_removed and count_words(line)
                continue
            few_words = min_words > 0 and len(line.split(None, min_words - 1)) < min_words
            cited = False
            if c.remove_citations and "[" in line:
                uncited = CITATION.sub("", line)
                if uncited != line:
                    cited = True
                    if count_removed:
                        removed += count_words(line) - count_words(uncited)
                    line = uncited
            if c.filter_no_terminal_punct and (not line.endswith(end_marks) or line.endswith("...")) \
                    or few_words:
                removed += count_removed and count_words(line)
                continue
            if phrase_on_page or cited:
                lower = line.lower()
                if c.filter_lorem_ipsum and "lorem ipsum" in lower:
                    return [], "", 0, len(lines), "c4_lorem_ipsum", 0
                if c.filter_javascript and "javascript" in lower:
                    removed += count_removed and count_words(line)
                    continue
                if c.filter_curly_bracket and "{" in line:
                    return [], "", 0, len(lines), "c4_curly_bracket", 0
                if c.filter_policy and any(p in lower for p in POLICY):
                    removed += count_removed and count_words(line)
                    continue
            elif curly_on_page and "{" in line:
                return [], "", 0, len(lines), "c4_curly_bracket", 0
            kept.append(line)
        joined = "\n".join(kept)
        return kept, joined, count_sentences_of_lines(kept, joined), len(lines), "", removed

    def signals(self, doc: Document) -> dict[str, float]:
        # The page's words when the filters before split it (Gopher's): the cleaned page's count then follows
        # from the removed lines' (a word never spans a line break), and FineWeb, next, splits nothing.
        words = cached_words(doc.text)
        kept, joined, sentences, seen, page_reason, removed = self._clean(doc, words is not None)
        if not page_reason:
            cleaned = joined.strip()
            if cleaned != doc.text:
                doc.text = cleaned
                doc.modified_by.append(self.name)
                if words is not None:
                    remember_word_count(cleaned, len(words) - removed)
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
