"""Exact Python equivalents of trafilatura's costliest XPath expressions: the pruning ones that use regular
expressions or test attributes of every section, and the main-content candidates (BODY_XPATH).

Why: trafilatura prunes boilerplate (navigation, share bars, ads, hidden blocks, comment sections,
infinite-scroll appendices) and looks for the main content with XPath expressions built on `re:test(...)`, an
EXSLT extension that libxml2 calls back into Python for, once per candidate element and attribute. On
trafilatura_eval's pages they cost about a third of all extraction time, and extraction is most of a run's
CPU. A plain loop over the same elements with the same compiled regular expressions finds the same elements in
the same order in well under half the time.

Same result, guarded rather than assumed: `install()` swaps an expression in trafilatura's lists (module
globals every trafilatura module shares) only when its text is exactly the text its replacement was
written from (sha256 of `XPath.path`); any other expression stays trafilatura's own, and `installed()` says
which are in use. The semantics followed, from
lxml's EXSLT implementation and XPath 1.0:
- `re:test(X, p)` is `re.compile(p, re.UNICODE).search(s) is not None`, where s is the string value of X:
  an attribute's value, "" when it is absent, and for `@a|@b` the value of whichever of the two comes
  first in the element's source order.
- `.//*` is every descendant element of the node the expression is applied to, in document order.
- `(.//*[p])[1]` is the first of those that passes p; in `.//*[p][1]` the `[1]` binds to the child step, so
  it is, for every parent, its first child that passes p.
- `@a='v'` is false when the attribute is absent; `translate(@a, 'CM', 'cm')` replaces only those letters;
  `contains(@a, 's')` is `s in value`, false when the attribute is absent.
- Expressions without `re:test` are evaluated inside libxml2, but a per-section test of several attributes
  still costs more there than the same test in Python.
Each answer of a regular expression is remembered per attribute string (`_Search`).
tests/test_decode_extract.py checks element-for-element equality with the original expressions on real pages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from lxml import etree


def _first(element: Any, a: str, value_a: str | None, b: str, value_b: str | None) -> str:
    """String value of `@a|@b` from the two values read: the one that comes first in source order, "" if
    neither (the element's keys are only looked at when both exist)."""
    if value_a is None:
        return value_b or ""
    if value_b is None:
        return value_a
    keys = element.keys()
    return value_a if keys.index(a) < keys.index(b) else value_b


# `self::div or self::item or self::list or self::p or self::section or self::span`: block-level sections after
# trafilatura's tag conversion.
_SECTION_TAGS = ("div", "item", "list", "p", "section", "span")


class _Search:
    """`re.compile(pattern, re.UNICODE).search(s) is not None`, remembered per string.

    Why: the same id and class values come back on element after element (a menu's hundred `menu-item` list
    items) and page after page of one site, and each search runs a long alternation of tokens. A dict lookup
    is several times cheaper. The answer is a pure function of the string, so remembering it cannot change a
    result; the memory is dropped whenever it holds `limit` strings, so it stays bounded in a long-lived
    extraction process."""

    __slots__ = ("_regex", "_known", "_limit")

    def __init__(self, pattern: str, flags: int = 0, limit: int = 50_000) -> None:
        self._regex = re.compile(pattern, re.UNICODE | flags)
        self._known: dict[str, bool] = {}
        self._limit = limit

    def __call__(self, value: str) -> bool:
        known = self._known.get(value)
        if known is None:
            if len(self._known) >= self._limit:
                self._known.clear()
            known = self._known[value] = self._regex.search(value) is not None
        return known


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


def _discard_sections(consent: str, ids: str, classes: str) -> Callable[[Any], bool]:
    """OVERALL_DISCARD_XPATH[0]'s predicate (on div/item/list/p/section/span): a role, data attribute, id or
    class name that says boilerplate."""
    consent_test, id_test, class_test = _Search(consent), _Search(ids), _Search(classes)
    # What the three regular expressions say of an element with neither id nor class: asked once, here.
    anonymous = consent_test("") or id_test("") or class_test("")

    def test(element: Any) -> bool:
        get = element.get
        id_, cls = get("id"), get("class")
        if (
            get("data-lp-replacement-content") is not None
            or "nav" in (get("role") or "").replace("N", "n")
            or "MostPopularStories" in (get("data-component") or "")
        ):
            return True
        if id_ is None and cls is None:  # most sections: no _first, no lookups
            return anonymous
        return consent_test(_first(element, "id", id_, "class", cls)) or id_test(id_ or "") or class_test(cls or "")

    return test


def _discard_hidden() -> Callable[[Any], bool]:
    """OVERALL_DISCARD_XPATH[1]'s predicate (on every element): hidden, a comment title or a reply form."""
    hidden, reader = _Search("hidden"), _Search("reader-comments|akismet")
    classes = _Search(
        "^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-|hide-print| hidden| hide"
        "|noprint|notloaded"
    )

    def test(element: Any) -> bool:
        get = element.get
        id_, cls, style = get("id"), get("class"), get("style")
        if id_ is None and cls is None and style is None:
            # Every test below but the last is false then (none of the regular expressions matches "").
            return get("aria-hidden") == "true"
        return (
            cls == "comments-title"
            or _first(element, "id", id_, "class", cls).startswith("reply-")
            or hidden(_first(element, "id", id_, "style", style))
            or (style is not None and ("display:none" in style or "display: none" in style))
            or reader(id_ or "")
            or classes(cls or "")
            or get("aria-hidden") == "true"
        )

    return test


def _id_or_class(ids: str, classes: str | None = None) -> Callable[[Any], bool]:
    """`re:test(@id, ids) or re:test(@class, classes)` as a predicate (`classes` defaults to `ids`)."""
    id_test = _Search(ids)
    class_test = id_test if classes is None else _Search(classes)
    return lambda e: id_test(e.get("id") or "") or class_test(e.get("class") or "")


class _Select(_Expression):
    """`.//*[self::t1 or ...][test][keep]`: every descendant with one of the tags that passes `test` (and `keep`,
    an optional third predicate), in document order. `pick` narrows that list the way a positional `[1]` does:
    - "all": the whole list;
    - "first": `(.//*[...])[1]`, the first element of the whole list (the search stops there);
    - "first_child": `.//*[...][1]`, where `[1]` binds to the child step, so for every parent its first child
      that passes (still in document order)."""

    def __init__(self, original: Any, tags: tuple[str, ...], test: Callable[[Any], bool],
                 keep: Callable[[Any], bool] | None = None, pick: str = "all") -> None:
        super().__init__(original)
        self.tags = tags
        self.test = test
        self.keep = keep
        self.pick = pick

    def matches(self, node: Any) -> list:
        test, keep = self.test, self.keep
        if keep is None and self.pick == "all":  # the common case, without a generator frame per element
            return [e for e in node.iterdescendants(*self.tags) if test(e)]
        found = (e for e in node.iterdescendants(*self.tags) if test(e) and (keep is None or keep(e)))
        if self.pick == "first":
            first = next(found, None)
            return [] if first is None else [first]
        if self.pick == "first_child":
            parents: set = set()  # lxml hands out one proxy per element while a reference to it lives
            picked = []
            for element in found:
                parent = element.getparent()
                if parent not in parents:
                    parents.add(parent)
                    picked.append(element)
            return picked
        return list(found)


# The expressions replaced: (trafilatura.xpaths list, index). _replacements has one entry for each.
TARGETS = (
    ("OVERALL_DISCARD_XPATH", 0),
    ("OVERALL_DISCARD_XPATH", 1),
    ("REMOVE_COMMENTS_XPATH", 0),
    ("REMOVE_COMMENTS_AND_LISTS_XPATH", 0),
    ("RAW_TREE_PRUNE_XPATH", 0),
    ("PRECISION_DISCARD_XPATH", 1),
    ("BODY_XPATH", 0),
    ("BODY_XPATH", 2),
    ("BODY_XPATH", 3),
    ("RAW_TREE_PRUNE_XPATH", 1),
    ("TEASER_DISCARD_XPATH", 0),
    ("DISCARD_IMAGE_ELEMENTS", 0),
)


def _replacements(xpaths: Any) -> dict[tuple[str, int], tuple[str, Callable[[Any], _Expression]]]:
    """(list name, index) -> (sha256 of the XPath text implemented, factory of its replacement)."""
    both = xpaths._OVERALL_DISCARD_BOTH_TOKENS
    comment_ids = f"^(?:{xpaths._COMMENTS_ID}|disqus_thread|dsq-comments)"
    comment_classes = xpaths._COMMENTS_CLASS
    appended = "mvp-post-add-(?:box|wrap)"
    comment_section = _id_or_class(comment_ids, comment_classes)
    comment_list = _id_or_class(f"^(?:{xpaths._COMMENTS_ID})", comment_classes)
    appended_box = _id_or_class(appended)
    return {
        ("OVERALL_DISCARD_XPATH", 0): (
            "a837e58a1b1ea116ce1dada53d856dec093fe9f64b37dc503698e30f96a87dd3",
            lambda x: _Select(x, _SECTION_TAGS, _discard_sections(
                consent=xpaths._alt(xpaths._CONSENT_ID_CLASS_TOKENS),
                ids=xpaths._alt(both + xpaths._OVERALL_DISCARD_ID_TOKENS),
                classes=xpaths._alt(both + xpaths._OVERALL_DISCARD_CLASS_TOKENS),
            )),
        ),
        ("OVERALL_DISCARD_XPATH", 1): (
            "c1d5b70b8cd03783545d6b715c69062ae6967c222b2d8f4e2399762362d426c0",
            lambda x: _Select(x, (etree.Element,), _discard_hidden()),  # `*`: elements only
        ),
        ("REMOVE_COMMENTS_XPATH", 0): (
            "5d97216ca15d05582de538174e876b27626b7a166810320152081c7e26bb5ca2",
            lambda x: _Select(x, ("div", "list", "section", "details"), comment_section),
        ),
        ("REMOVE_COMMENTS_AND_LISTS_XPATH", 0): (
            "9cc18d34e6e2d258172b5df02bc44e578c95ef709b8e06722846c7a410c3a46f",
            lambda x: _Select(
                x, ("div", "list", "section", "details", "ol", "ul"), comment_section,
                keep=lambda e: e.tag not in ("ol", "ul") or comment_list(e),
            ),
        ),
        ("RAW_TREE_PRUNE_XPATH", 0): (
            "01e7c660fd6406f29932819d2dbd7530e2f3bdac11dde83565e977e391303444",
            lambda x: _Select(
                x, ("div", "section", "aside"), _id_or_class(f"{appended}|infinite-?scroll"),
                keep=lambda e: next(e.iterdescendants("h1"), None) is None or appended_box(e),
            ),
        ),
        ("PRECISION_DISCARD_XPATH", 1): (
            "53d31ea1df47920acee695b26b87b1ce36f16913686e547edc2ae0ba6efab5f7",
            lambda x: _Select(x, _SECTION_TAGS, _precision_discard()),
        ),
        ("BODY_XPATH", 0): (
            "caaa561ceca17064773e97bf7c610f55e6c6a64a2477328c060642912d489b3b",
            lambda x: _Select(x, _BODY_TAGS, _body_0(), pick="first_child"),
        ),
        ("BODY_XPATH", 2): (
            "6c9b5e1fdc092943ebdd87206a2e8a8b4c4666497fb00e6661d2a519d00f37f9",
            lambda x: _Select(x, _BODY_TAGS, _body_2(), pick="first"),
        ),
        ("BODY_XPATH", 3): (
            "10a7ceacc0ff8cdfd8c58a575b5197b5d07ba24000f072101735478c2c585978",
            lambda x: _Select(x, _BODY_TAGS, _body_3(), pick="first"),
        ),
        ("RAW_TREE_PRUNE_XPATH", 1): (
            "3c7afe92279543d5530365aa7b921c6e5b51243033e5622cae1dc85e08976f87",
            lambda x: _Select(x, ("div", "section", "aside"),
                              lambda e: "elementor-share-buttons" in (e.get("class") or "")),
        ),
        ("TEASER_DISCARD_XPATH", 0): (
            "ebb02f066626551dbb0222a6cb631691f6ccacf0477c1381263f112b0bc9cdfa",
            lambda x: _Select(x, _SECTION_TAGS, lambda e: "teaser" in (e.get("id") or "").replace("T", "t")
                              or "teaser" in (e.get("class") or "").replace("T", "t")),
        ),
        ("DISCARD_IMAGE_ELEMENTS", 0): (
            "cb1ab981e44913f706048bad10e9f027314ffccb36c56ffc66c8ff5e1e340c58",
            lambda x: _Select(x, _SECTION_TAGS,
                              lambda e: "caption" in (e.get("id") or "") or "caption" in (e.get("class") or "")),
        ),
    }


# The main-content candidates (BODY_XPATH): trafilatura takes the first element the first expression finds.
_BODY_TAGS = ("article", "div", "main", "section")


def _precision_discard() -> Callable[[Any], bool]:
    """`re:test(@id|@class, '(^|\\s)bottom|bottom(\\s|$)') or re:test(@id|@class, '(^|\\s)link(\\s|$)') or
    contains(@style, 'border')`."""
    bottom, link = _Search(r"(^|\s)bottom|bottom(\s|$)"), _Search(r"(^|\s)link(\s|$)")

    def test(e: Any) -> bool:
        id_, cls = e.get("id"), e.get("class")
        first = _first(e, "id", id_, "class", cls)
        return bottom(first) or link(first) or "border" in (e.get("style") or "")

    return test


def _body_0() -> Callable[[Any], bool]:
    """BODY_XPATH[0]'s predicate: class post/entry, itemprop articleBody, id articleContent, or an article-body
    id or class pattern."""
    ids = _Search(r"(?:entry|article|art)-content|article__content|article(?:-|__)?body|articleBody|body-text")
    classes = _Search(
        r"post[-_]text|post-body|post-?entry|post[-_]?content|postContent|post_inner_wrapper|article-?text"
        r"|articleText|(?:entry|page|text|article|art)-content|article__content|article(?:-|__)?body|articleBody"
        r"|ArticleContent|body-text|article__container"
    )

    def test(e: Any) -> bool:
        id_, cls = e.get("id"), e.get("class")
        return (
            cls in ("post", "entry") or e.get("itemprop") == "articleBody" or id_ == "articleContent"
            or ids(id_ or "") or classes(cls or "")
        )

    return test


def _body_2() -> Callable[[Any], bool]:
    """BODY_XPATH[2]'s predicate: role article, id article/story, one of five class names, or a story id or
    class pattern (`fulltext` matched case-insensitively, the `'i'` flag)."""
    ids = _Search(r"^primary|story-body")
    fulltext = _Search(r"fulltext", re.IGNORECASE)
    classes = _Search(
        r"^article |post-bodycopy|story-?content|(?:theme|blog|section|single)-content|single-post|main-column"
        r"|wpb_text_column|story-body|field-body"
    )

    def test(e: Any) -> bool:
        id_, cls = e.get("id"), e.get("class")
        return (
            e.get("role") == "article" or id_ in ("article", "story")
            or cls in ("postarea", "art-postcontent", "text", "cell", "story")
            or ids(id_ or "") or fulltext(cls or "") or classes(cls or "")
        )

    return test


def _body_3() -> Callable[[Any], bool]:
    """BODY_XPATH[3]'s predicate: id or class content, a content-main/-body pattern, or main-content /
    page-content with `translate` lowering only the letters it names."""
    ids = _Search(r"content-main|content-body|contentBody")
    classes = _Search(r"content[-_]main|content(?:-|__)body")

    def test(e: Any) -> bool:
        id_, cls = e.get("id") or "", e.get("class") or ""
        return (
            id_ == "content" or cls == "content" or ids(id_) or classes(cls)
            or "main-content" in id_.replace("C", "c").replace("M", "m")
            or "main-content" in cls.replace("C", "c").replace("M", "m")
            or "page-content" in cls.replace("C", "c").replace("P", "p")
        )

    return test


def _digest(xpath: Any) -> str:
    return hashlib.sha256(xpath.path.encode()).hexdigest()


def install() -> bool:
    """Swap each expression implemented here into trafilatura's lists where its text is the one implemented
    (the others stay trafilatura's own). Cheap once done; returns installed()."""
    if installed():
        return True
    from trafilatura import xpaths

    for (name, index), (digest, make) in _replacements(xpaths).items():
        exprs = getattr(xpaths, name, None)
        if exprs is not None and index < len(exprs) and not isinstance(exprs[index], _Expression):
            if _digest(exprs[index]) == digest:
                exprs[index] = make(exprs[index])
    return installed()


def uninstall() -> None:
    """Put trafilatura's own expressions back (benchmarks compare both)."""
    from trafilatura import xpaths

    for name, _index in TARGETS:
        exprs = getattr(xpaths, name, [])
        for i, expr in enumerate(exprs):
            if isinstance(expr, _Expression):
                exprs[i] = expr.original


def installed() -> bool:
    """Whether every expression implemented here is in use."""
    from trafilatura import xpaths

    try:
        return all(isinstance(getattr(xpaths, name)[index], _Expression) for name, index in TARGETS)
    except (AttributeError, IndexError):
        return False
