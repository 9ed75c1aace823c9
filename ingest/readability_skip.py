"""Skip trafilatura's readability run on pages where its text provably cannot be the one kept.

Why: with its fallback comparison on (every built-in recipe; `extract.fast` turns it off and changes the
output), trafilatura's compare_extraction runs readability (its port of readability-lxml) on a copy of the raw
page after its own extraction, and `_prefer_readability` then decides which text to keep. Readability is
~18 % of extraction CPU on the bench crawl's pages. On 57 % of them (27 % of trafilatura_eval's) the decision
is known before readability runs, from an upper bound on the length of its text; skipping those runs, and the
copying and pruning of the page they read, saves ~13 % of extraction CPU (1,631 bench pages, interleaved per
page).

The bound. Readability's text is made of the raw tree's own text nodes: it drops script, style and
fencedframe elements, drops or moves others (lxml's append moves an element, drop_tree keeps the tail; nothing
is copied), and sanitize gives a video iframe the text "VIDEO"; the summary is serialized and parsed back,
which keeps the text; `trim` only shortens. So its text has at most
    bound = characters of the raw tree's text - characters inside its script and style elements
            + 5 x its iframes.

The decision. Outside recall mode (which has two more rules, and is never skipped here) `_prefer_readability`
keeps readability's text only if (a) the own text is empty, (b) readability's is more than twice as long, or
(c) readability's is longer than 2 x min_extracted_size while the own extraction has no paragraph text or more
tables than paragraphs. With a non-empty own text, bound <= 2 x its length rules out (b), and
bound <= 2 x min_extracted_size or a sound own extraction rules out (c). compare_extraction is then called with
an empty raw tree instead of a copy of the page: nothing to copy or prune, readability finds no text, and
everything after it (the justext rescue, which reads the cleaned tree) runs exactly as before.

Guarded like ingest/boilerplate_xpath.py: `install()` puts `_Gated` in place of trafilatura.core's
_extract_and_compare (the four lines that run the own extraction, then compare_extraction on a copy of the raw
tree) only when the source of the code this reasoning reads (those two, _prefer_readability, try_readability,
readability's Document) is the one it was made for (sha256). tests/test_decode_extract.py checks that the texts
are the same with and without on real pages, and that the bound holds on each of them.
"""

from __future__ import annotations

import hashlib
import inspect
from copy import copy
from typing import Any

from lxml.etree import tostring

# sha256 of the sources named in _guarded() (trafilatura 2.3.1).
_SOURCE_DIGEST = "87070554781118526c48b98269372701124e82e313b0312de35d6da39160026a"


def _guarded() -> str:
    from trafilatura import core, external, readability_lxml

    sources = (core._extract_and_compare, external.compare_extraction, external._prefer_readability,
               external.try_readability, readability_lxml.Document)
    return hashlib.sha256("\n".join(inspect.getsource(s) for s in sources).encode()).hexdigest()


def text_bound(raw_tree: Any) -> int:
    """Most characters readability's text can have on this raw tree (see the module docstring)."""
    text = tostring(raw_tree, method="text", encoding=str)
    hidden = sum(len(e.text or "") for e in raw_tree.iter("script", "style"))
    return len(text) - hidden + 5 * sum(1 for _ in raw_tree.iter("iframe"))


def readability_cannot_win(raw_tree: Any, body: Any, text: str, options: Any) -> bool:
    """Whether `_prefer_readability` keeps the own text whatever readability returns on `raw_tree`."""
    if options.focus == "recall" or not text:
        return False
    try:
        bound = text_bound(raw_tree)
    except Exception:  # noqa: BLE001 - a tree the bound cannot read takes trafilatura's own path, as before
        return False
    if bound > 2 * len(text):
        return False
    if bound <= 2 * options.min_extracted_size:
        return True
    # _prefer_readability's test of a structurally deficient own extraction, as written there.
    return bool(body.xpath(".//p//text()")) and len(body.findall(".//table")) <= len(body.findall(".//p"))


class _Gated:
    """trafilatura.core's _extract_and_compare (own extraction, then compare_extraction on a copy of the raw
    tree), with an empty raw tree instead of the copy where readability cannot win."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def __call__(self, cleaned_tree: Any, cleaned_tree_backup: Any, tree: Any, options: Any) -> Any:
        from trafilatura import core

        postbody, temp_text = core.extract_content(cleaned_tree, options)
        if not options.fast:
            if readability_cannot_win(tree, postbody, temp_text, options):
                from lxml.html import HtmlElement

                raw_tree = HtmlElement()
            else:
                raw_tree = copy(tree)
            postbody, temp_text = core.compare_extraction(cleaned_tree_backup, raw_tree, postbody, temp_text,
                                                          options)
        return postbody, temp_text


_expected_sources: bool | None = None  # _guarded() == _SOURCE_DIGEST, asked once per process (~20 ms)


def install() -> bool:
    """Replace trafilatura.core's _extract_and_compare where the guarded sources are the expected ones;
    returns installed(). Cheap once done, also where they are not (extract_main_text asks on every page)."""
    global _expected_sources
    from trafilatura import core

    if installed():
        return True
    if _expected_sources is None:
        _expected_sources = _guarded() == _SOURCE_DIGEST
    if _expected_sources:
        core._extract_and_compare = _Gated(core._extract_and_compare)
    return installed()


def uninstall() -> None:
    """Put trafilatura's own _extract_and_compare back (benchmarks compare both)."""
    from trafilatura import core

    if isinstance(core._extract_and_compare, _Gated):
        core._extract_and_compare = core._extract_and_compare.original


def installed() -> bool:
    from trafilatura import core

    return isinstance(core._extract_and_compare, _Gated)
