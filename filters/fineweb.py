"""FineWeb's quality filter (Penedo et al. 2024). Reasons: line_punct_ratio, short_line_ratio,
char_dup_ratio, list_ratio."""

from __future__ import annotations

from filters.base import Filter
from filters.text import find_duplicates, word_count
from schemas.records import Document


class FineWebFilter(Filter):
    name = "fineweb"
    signal_names = ("fw_line_punct_ratio", "fw_short_line_ratio", "fw_char_dup_ratio", "fw_newline_per_word")

    def signals(self, doc: Document) -> dict[str, float]:
        c = self.config_for(doc.language)
        text = doc.text
        lines = text.split("\n")
        stop_chars = tuple(c.stop_chars)
        non_empty = [ln for ln in lines if ln.strip()]
        chars = len(text) - text.count("\n")
        words = word_count(text)  # counted by C4 when it cleaned the text (filters.text.remember_word_count)
        return {
            "fw_line_punct_ratio": sum(ln.endswith(stop_chars) for ln in lines) / len(lines),
            "fw_short_line_ratio": sum(len(ln) <= c.short_line_length for ln in lines) / len(lines),
            "fw_char_dup_ratio": find_duplicates(non_empty)[1] / chars if chars else 0.0,
            "fw_newline_per_word": text.count("\n") / words if words else float(text.count("\n")),
        }

    def decide(self, doc: Document, s: dict[str, float]) -> tuple[str, float] | None:
        c = self.config_for(doc.language)
        ratio = s["fw_line_punct_ratio"]
        if ratio <= c.line_punct_thr and not (ratio == 0 and c.line_punct_exclude_zero):
            return "line_punct_ratio", ratio
        if s["fw_short_line_ratio"] >= c.short_line_thr:
            return "short_line_ratio", s["fw_short_line_ratio"]
        if s["fw_char_dup_ratio"] >= c.char_duplicates_ratio:
            return "char_dup_ratio", s["fw_char_dup_ratio"]
        if s["fw_newline_per_word"] > c.new_line_ratio:
            return "list_ratio", s["fw_newline_per_word"]
        return None
