"""Exact Python equivalents of trafilatura's two boilerplate XPath expressions (`OVERALL_DISCARD_XPATH`).

Why: trafilatura prunes boilerplate sections (navigation, share bars, ads, hidden blocks) with two XPath
expressions built on `re:test(...)`, an EXSLT extension that libxml2 calls back into Python for, once per
candidate element and attribute. On trafilatura_eval's pages they cost about a quarter of all extraction
time, and extraction is most of a run's CPU. A plain loop over the same elements with the same compiled
regular expressions finds the same elements in the same order in well under half the time.

Same result, guarded rather than assumed: `install()` swaps the two expressions in trafilatura's list only
when each one's text is exactly the text these classes were written from (sha256 of `XPath.path`); any other
trafilatura keeps its own XPath, and `installed()` says which is in use. The semantics followed, from
lxml's EXSLT implementation and XPath 1.0:
- `re:test(X, p)` is `re.compile(p, re.UNICODE).search(s) is not None`, where s is the string value of X:
  an attribute's value, "" when it is absent, and for `@a|@b` the value of whichever of the two comes
  first in the element's source order.
- `.//*` is every descendant element of the node the expression is applied to, in document order.
tests/test_extract.py checks element-for-element equality with the original expressions on real pages.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from lxml import etree

# sha256 of the two expressions' XPath.path in trafilatura 2.3.1, the text the classes below implement.
_EXPECTED = (
    "a837e58a1b1ea116ce1dada53d856dec093fe9f64b37dc503698e30f96a87dd3",
    "c1d5b70b8cd03783545d6b715c69062ae6967c222b2d8f4e2399762362d426c0",
)


# Benchmarks set this to False (and call uninstall()) to time trafilatura's own expressions.
ENABLED = True


def _first(element: Any, a: str, b: str) -> str:
    """String value of `@a|@b`: the value of the one that comes first in source order, "" if neither."""
    value_a, value_b = element.get(a), element.get(b)
    if value_a is None:
        return value_b or ""
    if value_b is None:
        return value_a
    keys = element.keys()
    return value_a if keys.index(a) < keys.index(b) else value_b


class _Expression:
    """Callable like an lxml XPath on an element: the matching descendant elements, in document order."""

    def __init__(self, original: Any) -> None:
        self.original = original  # kept for uninstall() and for anything that is not an element
        self.path = original.path

    def __call__(self, node: Any) -> list:
        if not isinstance(node, etree._Element):
            return self.original(node)
        return self.matches(node)

    def matches(self, node: Any) -> list:
        raise NotImplementedError


class _DiscardSections(_Expression):
    """OVERALL_DISCARD_XPATH[0]: div/item/list/p/section/span whose role, data attributes, id or class name
    boilerplate."""

    TAGS = ("div", "item", "list", "p", "section", "span")

    def __init__(self, original: Any, consent: str, ids: str, classes: str) -> None:
        super().__init__(original)
        self.consent = re.compile(consent, re.UNICODE)
        self.ids = re.compile(ids, re.UNICODE)
        self.classes = re.compile(classes, re.UNICODE)

    def matches(self, node: Any) -> list:
        found = []
        for element in node.iterdescendants(*self.TAGS):
            get = element.get
            if (
                get("data-lp-replacement-content") is not None
                or "nav" in (get("role") or "").replace("N", "n")
                or "MostPopularStories" in (get("data-component") or "")
                or self.consent.search(_first(element, "id", "class"))
                or self.ids.search(get("id") or "")
                or self.classes.search(get("class") or "")
            ):
                found.append(element)
        return found


class _DiscardHidden(_Expression):
    """OVERALL_DISCARD_XPATH[1]: any element that is hidden, a comment title or a reply form."""

    HIDDEN = "hidden"
    READER = "reader-comments|akismet"
    CLASSES = (
        "^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-|hide-print| hidden| hide"
        "|noprint|notloaded"
    )

    def __init__(self, original: Any) -> None:
        super().__init__(original)
        self.hidden = re.compile(self.HIDDEN, re.UNICODE)
        self.reader = re.compile(self.READER, re.UNICODE)
        self.classes = re.compile(self.CLASSES, re.UNICODE)

    def matches(self, node: Any) -> list:
        found = []
        for element in node.iterdescendants(etree.Element):  # elements only, as `*`
            if not element.attrib:  # every test below is false without attributes (none of the regexes
                continue  # matches "")
            get = element.get
            cls, style = get("class"), get("style")
            if (
                cls == "comments-title"
                or _first(element, "id", "class").startswith("reply-")
                or self.hidden.search(_first(element, "id", "style"))
                or (style is not None and ("display:none" in style or "display: none" in style))
                or self.reader.search(get("id") or "")
                or self.classes.search(cls or "")
                or get("aria-hidden") == "true"
            ):
                found.append(element)
        return found


def _digest(xpath: Any) -> str:
    return hashlib.sha256(xpath.path.encode()).hexdigest()


def install() -> bool:
    """Swap the Python equivalents into trafilatura's OVERALL_DISCARD_XPATH (a list every trafilatura module
    shares) if both expressions are the ones implemented here. Idempotent; returns installed()."""
    from trafilatura import xpaths

    exprs = xpaths.OVERALL_DISCARD_XPATH
    if not ENABLED or installed() or len(exprs) != 2 or tuple(_digest(x) for x in exprs) != _EXPECTED:
        return installed()
    both = xpaths._OVERALL_DISCARD_BOTH_TOKENS
    exprs[0] = _DiscardSections(
        exprs[0],
        consent=xpaths._alt(xpaths._CONSENT_ID_CLASS_TOKENS),
        ids=xpaths._alt(both + xpaths._OVERALL_DISCARD_ID_TOKENS),
        classes=xpaths._alt(both + xpaths._OVERALL_DISCARD_CLASS_TOKENS),
    )
    exprs[1] = _DiscardHidden(exprs[1])
    return True


def uninstall() -> None:
    """Put trafilatura's own expressions back (benchmarks compare both)."""
    from trafilatura import xpaths

    exprs = xpaths.OVERALL_DISCARD_XPATH
    for i, expr in enumerate(exprs):
        if isinstance(expr, _Expression):
            exprs[i] = expr.original


def installed() -> bool:
    from trafilatura import xpaths

    return all(isinstance(x, _Expression) for x in xpaths.OVERALL_DISCARD_XPATH)
