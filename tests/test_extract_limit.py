"""The extraction limit counts the child's CPU time, so a page's fate does not depend on how busy the machine is.

The load is real: busy processes on every core while the extractor works. A wall-clock limit (the limit before
this one) cut the 0.15-CPU-second pages below once their child waited for a core; the CPU-time limit keeps
them and cuts the 1-CPU-second pages, loaded or idle."""

from __future__ import annotations

import multiprocessing
import os
import time
from contextlib import contextmanager

from demo.crawl import ARTICLES, page
from ingest.extract import Extracted, Extractor, extract_main_text
from schemas.recipe import ExtractConfig, RecipeError, recipe_from_dict
from tests.test_decode_extract import _burn


def _metered_extract(page: str, url: str, config: ExtractConfig) -> Extracted:
    """Spends the CPU seconds a page names (`BURN:<seconds>`), or waits the wall seconds it names
    (`WAIT:<seconds>`), then returns the page."""
    kind, _, amount = page.partition(":")
    if kind == "BURN":
        _burn(float(amount))
    elif kind == "WAIT":
        time.sleep(float(amount))
    return Extracted(text=page, title="", published_date="")


def _spin() -> None:
    while True:
        pass


@contextmanager
def _busy_cores(n: int):
    """`n` processes that keep a core each busy, for as long as the block runs."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_spin, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.3)  # let them take the cores
        yield
    finally:
        for p in procs:
            p.kill()
            p.join()


def _fates(pages: list[str], config: ExtractConfig, extract_fn=_metered_extract) -> list[str]:
    ex = Extractor(config, extract_fn=extract_fn)
    try:
        return [r.reason if not isinstance(r, Extracted) else r.text for r in (ex.extract(p, "") for p in pages)]
    finally:
        ex.close()


def test_a_page_fate_is_the_same_on_an_idle_and_a_loaded_machine():
    pages = ["BURN:0.15", "BURN:1.0", "BURN:0.15", "plain", "BURN:1.0", "BURN:0.15"]
    config = ExtractConfig(timeout_seconds=0.4)
    idle = _fates(pages, config)
    with _busy_cores(2 * (os.cpu_count() or 1)):
        start = time.monotonic()
        loaded = _fates(pages, config)
        loaded_wall = time.monotonic() - start
    expected = ["BURN:0.15", "extract_timeout", "BURN:0.15", "plain", "extract_timeout", "BURN:0.15"]
    assert idle == expected
    assert loaded == expected
    # The load was real: the same CPU work took longer in wall time than the limit would have allowed per page.
    assert loaded_wall > 3 * 0.15


def test_real_pages_extract_the_same_under_load():
    pages = [page(title, paragraphs, lang, "site.example").decode() for lang, title, paragraphs in ARTICLES[:6]]
    config = ExtractConfig(timeout_seconds=0.5)
    idle = _fates(pages, config, extract_main_text)
    with _busy_cores(2 * (os.cpu_count() or 1)):
        loaded = _fates(pages, config, extract_main_text)
    assert loaded == idle
    assert all(fate != "extract_timeout" and fate for fate in idle)


def test_waiting_is_not_extracting_but_the_wall_clock_backstop_still_cuts_a_hung_page():
    """A child that waits (for a core, or in a C call that never returns to Python) uses no CPU: the wall-clock
    backstop cuts it, and says so in the row's detail."""
    config = ExtractConfig(timeout_seconds=0.3, wall_limit_seconds=1.0)
    ex = Extractor(config, extract_fn=_metered_extract)
    try:
        assert ex.extract("WAIT:0.5", "").text == "WAIT:0.5"  # over the CPU limit in wall time only: kept
        start = time.monotonic()
        hung = ex.extract("WAIT:30", "")
        assert time.monotonic() - start < 5
        assert hung.reason == "extract_timeout" and "wall-clock limit 1 s" in hung.detail
        assert ex.extract("plain", "").text == "plain"  # a new child serves the next page
    finally:
        ex.close()


def test_a_wall_limit_below_the_cpu_limit_is_refused():
    try:
        recipe_from_dict({"extract": {"timeout_seconds": 5.0, "wall_limit_seconds": 2.0}})
    except RecipeError as exc:
        assert "wall_limit_seconds" in str(exc)
    else:
        raise AssertionError("accepted a wall-clock limit below the CPU-time limit")
