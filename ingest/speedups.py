"""The one guard in front of tokenmill's trafilatura speed patches, and what a run reports about them.

Three patches make trafilatura faster without changing its text: `ingest/boilerplate_xpath.py` (its costliest
XPath expressions as Python loops), `ingest/readability_skip.py` (no readability run where its text cannot be
kept) and `element_lookup` here (a C-level element class lookup for its HTML parser). Each reads private names
of trafilatura (`xpaths._COMMENTS_ID`, `core._extract_and_compare`, `utils.HTML_PARSER`, ...) and each was
checked on one trafilatura release. pyproject pins that release exactly; this module makes sure that, on any
other release (a user's own pin, a cluster image), no private name is read at all: the patches stay off,
trafilatura runs as shipped (~1.6x the extraction CPU: 29.5 vs 18.0 ms per trafilatura_eval page,
`python bench/extract_quality.py` at `5b822d6`), and the run says so in its console summary and in
stats.json (`extract.speed_patches`) instead of crashing or running slowly without a word. Each patch also keeps
its own finer guard (a digest of the code it replaces), and a patch that fails to install is reported off, with
the error, never raised.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from typing import Any

# The trafilatura releases the patches were verified on (tests/test_decode_extract.py compares patched and
# stock texts on real pages; bench/extract_quality.py on all 990 trafilatura_eval pages). pyproject pins these.
VERIFIED_TRAFILATURA = ("2.3.1",)
PATCHES = ("boilerplate_xpath", "readability_skip", "element_lookup")

# Benchmarks set this to False (and call uninstall()) to time trafilatura as shipped; tests to hold the patches
# as they set them.
ENABLED = True

_log = logging.getLogger(__name__)
_state: dict[str, Any] = {"asked": False, "done": False, "version": "", "errors": {}}
_element_lookup_on = False


def trafilatura_version() -> str:
    """The installed trafilatura's version, read from its metadata (nothing of trafilatura is imported)."""
    try:
        return importlib.metadata.version("trafilatura")
    except importlib.metadata.PackageNotFoundError:
        return ""


def element_lookup(enabled: bool = True) -> None:
    """Give trafilatura's HTML parser a C-level element class lookup (HtmlElement for every element).

    lxml.html's parser picks each element's Python class (FormElement, InputElement, LabelElement, ...) in a
    Python method called for every element proxy lxml creates: ~1.2 million calls for 400 pages, ~10 % of
    extraction. trafilatura uses only what every HtmlElement has, never those subclasses: its text is the
    same on 1,171 gold pages (tests/test_decode_extract.py checks 100), 19.0 -> 17.1 ms per page.
    `enabled=False` puts lxml.html's own lookup back (benchmarks)."""
    global _element_lookup_on
    from lxml import etree, html
    from trafilatura import utils

    parser = getattr(utils, "HTML_PARSER", None)
    if not isinstance(parser, html.HTMLParser):
        raise RuntimeError("trafilatura.utils.HTML_PARSER is not an lxml.html parser")
    if enabled:
        parser.set_element_class_lookup(etree.ElementDefaultClassLookup(
            element=html.HtmlElement, comment=html.HtmlComment, pi=html.HtmlProcessingInstruction,
            entity=html.HtmlEntity,
        ))
    else:
        parser.set_element_class_lookup(html.HtmlElementClassLookup())
    _element_lookup_on = enabled


def _patches() -> dict[str, tuple[Callable[[], Any], Callable[[], bool], Callable[[], Any]]]:
    """Each patch by name (PATCHES' order): (install, installed, uninstall)."""
    from ingest import boilerplate_xpath, readability_skip

    return {
        "boilerplate_xpath": (boilerplate_xpath.install, boilerplate_xpath.installed, boilerplate_xpath.uninstall),
        "readability_skip": (readability_skip.install, readability_skip.installed, readability_skip.uninstall),
        "element_lookup": (element_lookup, lambda: _element_lookup_on, lambda: element_lookup(False)),
    }


def install() -> None:
    """Install every patch the guard allows in this process, once (extract_main_text calls this on every page).

    On an unverified trafilatura nothing is installed and nothing private is read; one warning is logged per
    process. A patch whose install raises stays off and its error is kept for `status()`."""
    if _state["done"] or not ENABLED:
        return
    _state["asked"] = _state["done"] = True
    _state["version"] = trafilatura_version()
    if _state["version"] not in VERIFIED_TRAFILATURA:
        _log.warning("%s", off_line(status()))
        return
    for name, (install_one, _installed, _uninstall) in _patches().items():
        try:
            install_one()
        except Exception as exc:  # noqa: BLE001 - a patch that cannot install is off, never fatal
            _state["errors"][name] = f"{type(exc).__name__}: {exc}"[:300]


def uninstall() -> None:
    """trafilatura as shipped (benchmarks time both). Until `install()` is called again."""
    for _install, _installed, uninstall_one in _patches().values():
        uninstall_one()
    _state["done"] = False


def status() -> dict[str, Any]:
    """What this process runs: trafilatura's version, whether it is a verified one, each patch on or off, and
    why a patch is off. Reads only this module's state and the patches' own `installed()`."""
    version = _state["version"] or trafilatura_version()
    verified = version in VERIFIED_TRAFILATURA
    on = dict.fromkeys(PATCHES, False)
    if verified and _state["asked"]:
        on = {name: installed() for name, (_install, installed, _uninstall) in _patches().items()}
    why = {}
    for name in PATCHES:
        if on[name]:
            continue
        if not verified:
            why[name] = f"trafilatura {version or '(missing)'} is not a verified release"
        elif name in _state["errors"]:
            why[name] = _state["errors"][name]
        elif _state["asked"]:
            why[name] = "the code it replaces differs from the code it was made for"
        else:
            why[name] = "not installed in this process"
    return {"trafilatura": version, "verified": list(VERIFIED_TRAFILATURA), "patches": on, "off_because": why}


def off_line(report: dict[str, Any]) -> str:
    """One line for the console when a patch is off; "" when all are on."""
    off = [name for name, on in report["patches"].items() if not on]
    if not off:
        return ""
    reasons = sorted(set(report["off_because"].values()))
    return (f"trafilatura speed patches off ({', '.join(off)}): {'; '.join(reasons)}; text is unchanged, "
            f"extraction takes ~1.6x the CPU (verified on trafilatura {', '.join(report['verified'])})")


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """stats.json's `extract` entry from what every extracting process of a run reported (one per worker on a
    cluster, where images may differ): a patch counts as on only where it was on everywhere."""
    versions = sorted({r.get("trafilatura", "") for r in reports})
    on = {name: all(r.get("patches", {}).get(name, False) for r in reports) for name in PATCHES}
    why: dict[str, str] = {}
    for report in reports:
        for name, reason in sorted(report.get("off_because", {}).items()):
            why.setdefault(name, reason)
    merged = {"trafilatura": versions[0] if len(versions) == 1 else versions, "speed_patches": on}
    if not all(on.values()):
        merged["speed_patches_off"] = {name: why.get(name, "off in some worker") for name, v in on.items() if not v}
        merged["warning"] = off_line({"patches": on, "off_because": merged["speed_patches_off"],
                                      "verified": list(VERIFIED_TRAFILATURA)})
    return merged
