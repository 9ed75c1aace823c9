"""URL filter (RefinedWeb §G.1 as datatrove's URLFilter applies it): block lists and banned words.

Runs before extraction: it needs only the URL. Reasons: url_domain_blocked, url_blocked, url_banned_word,
url_soft_banned_words, url_banned_subword.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from filters.base import Filter
from filters.lists import read_lists
from schemas.records import Document

_NON_ALNUM = re.compile(r"[\W_]+")


def normalize_url(url: str) -> tuple[str, str]:
    """(host without 'www.' and port, 'host/path?query' without scheme), lower-cased."""
    parts = urlsplit(url.strip().lower())
    host = (parts.hostname or "").removeprefix("www.")
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return host, host + rest


class UrlFilter(Filter):
    name = "url"
    needs_text = False
    signal_names = ()

    def __init__(self, config) -> None:
        super().__init__(config)
        self.domains = frozenset(d.removeprefix("www.") for d in read_lists(config.domain_files))
        self.urls = read_lists(config.url_files)
        self.banned = read_lists(config.banned_word_files)
        self.soft_banned = read_lists(config.soft_banned_word_files)
        subwords = sorted(read_lists(config.banned_subword_files))
        self.subword_re = re.compile("|".join(map(re.escape, subwords))) if subwords else None
        self._url_prefix_lengths = sorted({len(u) for u in self.urls})

    def decide(self, doc: Document, signals: dict[str, float]) -> tuple[str, float] | None:
        host, no_scheme = normalize_url(doc.url)
        if self.domains and host:
            labels = host.split(".")
            for i in range(len(labels) - 1):
                if ".".join(labels[i:]) in self.domains:
                    return "url_domain_blocked", 1.0
        if self.urls:
            for n in self._url_prefix_lengths:
                if n > len(no_scheme):
                    break
                if no_scheme[:n] in self.urls:
                    return "url_blocked", 1.0
        words = set(_NON_ALNUM.split(no_scheme))
        if self.banned and words & self.banned:
            return "url_banned_word", 1.0
        if self.soft_banned:
            soft = len(words & self.soft_banned)
            if soft >= self.config.soft_banned_min:
                return "url_soft_banned_words", float(soft)
        if self.subword_re is not None and self.subword_re.search(_NON_ALNUM.sub("", no_scheme)):
            return "url_banned_subword", 1.0
        return None
