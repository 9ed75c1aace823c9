from __future__ import annotations

import gzip
import json
import os
import time
from collections import Counter
from dataclasses import replace

import pytest

from ingest.decode import declared_charsets, decode_body
from ingest.extract import (
    Extracted,
    Extractor,
    ExtractorPool,
    ExtractorUnavailable,
    extract_main_text,
    head_metadata,
)
from schemas.recipe import ExtractConfig
from schemas.records import STAGE_EXTRACT, Decision
from tests.conftest import shared_path


def test_header_charset_wins_then_meta_then_detection():
    text = "Grüße aus Köln – schön"
    assert decode_body(text.encode("cp1252"), "text/html; charset=windows-1252") == (text, "cp1252")
    meta = f'<meta charset="iso-8859-1"><p>{text.replace("–", "-")}</p>'.encode("latin-1")
    decoded, codec = decode_body(meta, "text/html")
    assert "Grüße" in decoded and codec == "cp1252"  # latin-1 label decodes as its superset, like browsers
    assert decode_body("日本語のテキスト".encode("euc-jp"), "text/html; charset=EUC-JP")[0] == "日本語のテキスト"


def test_lying_charset_falls_through_to_one_that_decodes():
    body = "Ελληνικά και Русский текст".encode()
    decoded, codec = decode_body(body, "text/html; charset=us-ascii")
    # us-ascii maps to cp1252, which cannot decode these UTF-8 bytes without error -> next candidate
    assert codec == "utf-8" and decoded == "Ελληνικά και Русский текст"


def test_unknown_charset_label_is_ignored():
    assert declared_charsets(b"<p>x</p>", "text/html; charset=no-such-codec") == []
    assert decode_body(b"plain ascii", "text/html; charset=no-such-codec") == ("plain ascii", "utf-8")


def test_detection_for_undeclared_legacy_encoding():
    text = "Привет, как дела? Это длинный русский текст для проверки определения кодировки. " * 5
    decoded, codec = decode_body(text.encode("cp1251"), "text/html")
    assert decoded == text and codec != "utf-8"


def test_head_metadata():
    page = '<html><head><title> A &amp; B </title><meta property="article:published_time" content="2024-05-01"></head>'
    assert head_metadata(page) == ("A & B", "2024-05-01")


def test_extraction_agrees_with_gold_article_bodies():
    """Bag-of-words precision/recall against scrapinghub_aeb gold on 20 real pages, with our settings."""
    root = shared_path("data", "scrapinghub_aeb")
    gold = json.loads(gzip.open(root / "ground-truth.json.gz").read())
    precision, recall = [], []
    for page_file in sorted((root / "html").glob("*.html.gz"))[:20]:
        page = gzip.open(page_file).read().decode("utf-8", "replace")
        entry = gold[page_file.name.removesuffix(".html.gz")]
        got = Counter(extract_main_text(page, entry["url"], ExtractConfig()).text.lower().split())
        want = Counter(entry["articleBody"].lower().split())
        common = sum((got & want).values())
        precision.append(common / max(1, sum(got.values())))
        recall.append(common / max(1, sum(want.values())))
    # favor_precision trades some recall; upstream reports ~0.93 / ~0.98 for trafilatura's defaults.
    assert sum(precision) / len(precision) > 0.85
    assert sum(recall) / len(recall) > 0.75


def _burn(seconds: float) -> None:
    """Spend `seconds` of this process's CPU time (the extraction limit counts CPU time, not waiting)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def _slow_extract(page: str, url: str, config: ExtractConfig) -> Extracted:
    if "SLOW" in page:
        _burn(60)
    return Extracted(text=page.upper(), title="", published_date="")


def _env_extract(page: str, url: str, config: ExtractConfig) -> Extracted:
    return Extracted(text=os.environ.get(page, "unset"), title="", published_date="")


def _broken_extract(page: str, url: str, config: ExtractConfig) -> Extracted:
    raise ImportError("No module named 'lxml_html_clean'")


def _modules_extract(page: str, url: str, config: ExtractConfig) -> Extracted:
    import sys

    return Extracted(text=str(page in sys.modules), title="", published_date="")


def test_the_extraction_child_does_not_run_the_parents_main_module(tmp_path):
    """multiprocessing's spawn would run the parent's __main__ again in the child: in an SDK worker that is
    Beam's worker harness (all of Beam and gRPC imported in every child for nothing)."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "heavy_marker.py").write_text("")
    (tmp_path / "parent_main.py").write_text(
        "import sys\n"
        "import heavy_marker\n"
        "from ingest.extract import Extractor\n"
        "from schemas.recipe import ExtractConfig\n"
        "from tests.test_decode_extract import _modules_extract\n"
        "if __name__ == '__main__':\n"
        "    main = sys.modules['__main__']\n"
        "    before = (main.__spec__, main.__file__)\n"
        "    ex = Extractor(ExtractConfig(), extract_fn=_modules_extract)\n"
        "    print(ex.extract('heavy_marker', 'u').text, ex.extract('ingest.extract', 'u').text)\n"
        "    ex.close()\n"
        "    print((main.__spec__, main.__file__) == before)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), root])}
    out = subprocess.run([sys.executable, "-m", "parent_main"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]


def _raising_extract(page: str, url: str, config: ExtractConfig) -> Extracted:
    if "BAD" in page:
        raise ValueError("parser exploded")
    return Extracted(text=page, title="", published_date="")


def test_timeout_really_stops_the_call_and_the_extractor_recovers():
    ex = Extractor(ExtractConfig(timeout_seconds=0.5), extract_fn=_slow_extract)
    try:
        start = time.monotonic()
        decision = ex.extract("<p>SLOW</p>", "u")
        assert time.monotonic() - start < 5
        assert decision.reason == "extract_timeout" and decision.score == 0.5
        assert ex.extract("<p>fine</p>", "u").text == "<P>FINE</P>"
    finally:
        ex.close()


def _sleepy_extract(page: str, url: str, config: ExtractConfig) -> Extracted:
    if "SLEEPY" in page:
        _burn(1.0)
    return Extracted(text=page.lower(), title="", published_date="")


def test_isolation_inline_has_no_time_limit_and_process_has_one():
    """extract.isolation: "process" kills a page at timeout_seconds; "inline" (debugging, profiling) runs it in
    this process to the end."""
    results = {}
    for isolation in ("process", "inline"):
        ex = Extractor(ExtractConfig(isolation=isolation, timeout_seconds=0.3), extract_fn=_sleepy_extract)
        try:
            results[isolation] = ex.extract("<p>SLEEPY</p>", "u")
        finally:
            ex.close()
    assert results["process"] == Decision(STAGE_EXTRACT, "extract_timeout", 0.3)
    assert results["inline"].text == "<p>sleepy</p>"


def test_submit_and_collect_overlap_with_other_work_and_never_mix_up_pages():
    """The pipeline submits a page, works on the previous document, then collects: the child works meanwhile,
    the time limit counts from submit, and a page that was never collected cannot answer for the next one."""
    ex = Extractor(ExtractConfig(timeout_seconds=0.5), extract_fn=_slow_extract)
    try:
        ex.submit("<p>a</p>", "u")
        time.sleep(0.2)  # the caller's own work
        assert ex.collect().text == "<P>A</P>" and 0 <= ex.seconds < 0.2
        ex.submit("<p>SLOW</p>", "u")  # its caller failed before collecting
        ex.submit("<p>b</p>", "u")
        assert ex.collect().text == "<P>B</P>"
        ex.submit("<p>SLOW</p>", "u")
        time.sleep(0.6)
        start = time.monotonic()
        decision = ex.collect()
        assert decision.reason == "extract_timeout" and ex.seconds == 0.5
        assert time.monotonic() - start < 0.3  # the limit had passed already: no second wait
        ex.submit("<p>c</p>", "u")
        assert ex.collect().text == "<P>C</P>"
    finally:
        ex.close()


def test_the_extraction_child_keeps_glibcs_own_malloc_thresholds(monkeypatch):
    """run_pipeline fixes glibc's mmap/trim thresholds for the driver and workers (memory); the child must not
    inherit them (they slow trafilatura down), and the worker's own environment stays as it was."""
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    ex = Extractor(ExtractConfig(), extract_fn=_env_extract)
    try:
        assert ex.extract("MALLOC_MMAP_THRESHOLD_", "u").text == "unset"
        assert ex.extract("MALLOC_ARENA_MAX", "u").text == "2"
    finally:
        ex.close()
    assert os.environ["MALLOC_MMAP_THRESHOLD_"] == "131072"


def test_an_exception_is_that_pages_reason_and_the_run_goes_on():
    ex = Extractor(ExtractConfig(), extract_fn=_raising_extract)
    try:
        decision = ex.extract("<p>BAD</p>", "u")
        assert decision.reason == "extract_error" and "parser exploded" in decision.detail
        assert ex.extract("<p>ok</p>", "u").text == "<p>ok</p>"
    finally:
        ex.close()


@pytest.mark.parametrize("isolation", ["process", "inline"])
def test_an_extractor_that_cannot_start_fails_loudly(isolation):
    with pytest.raises(ExtractorUnavailable, match="lxml_html_clean"):
        Extractor(ExtractConfig(isolation=isolation), extract_fn=_broken_extract)


def test_a_child_started_in_the_background_fails_loudly_at_first_use():
    """The pipeline does not wait for the child at setup; the first page (or the end of the bundle) does."""
    ex = Extractor(ExtractConfig(), extract_fn=_broken_extract, wait=False)
    with pytest.raises(ExtractorUnavailable, match="lxml_html_clean"):
        ex.extract("<p>x</p>", "u")
    ex = Extractor(ExtractConfig(), extract_fn=_broken_extract, wait=False)
    with pytest.raises(ExtractorUnavailable, match="lxml_html_clean"):
        ex.ensure_ready()
    ok = Extractor(ExtractConfig(), extract_fn=_raising_extract, wait=False)
    try:
        assert ok.extract("<p>fine</p>", "u").text == "<p>fine</p>"
    finally:
        ok.close()


def test_worker_restarts_after_restart_every_documents():
    ex = Extractor(ExtractConfig(restart_every=2), extract_fn=_raising_extract)
    try:
        pids = set()
        for i in range(5):
            assert ex.extract(f"<p>{i}</p>", "u").text == f"<p>{i}</p>"
            pids.add(ex._process.pid)
        assert len(pids) == 3
    finally:
        ex.close()


def test_a_pool_of_two_children_gives_each_page_its_own_result_in_the_order_submitted():
    """ingest.extract.ExtractorPool with two pages in flight: the results come back in submission order, from
    both children, and a page that hits the CPU-time limit in one child neither delays nor touches the page in
    the other; the pool refuses a third page in flight (its answer could become another page's)."""
    pages = ["<p>a</p>", "SLOW page", "<p>c</p>", "BAD page", "<p>e</p>", "<p>f</p>", "<p>g</p>"]
    pool = ExtractorPool(ExtractConfig(timeout_seconds=0.5), children=2, extract_fn=_slow_or_raising_extract)
    try:
        results, in_flight, served_by = [], [], []
        for page in pages:
            if len(in_flight) == pool.depth:
                results.append((in_flight.pop(0), pool.collect()))
            pool.submit(page, "u")
            served_by.append(pool._order[-1]._process.pid)
            in_flight.append(page)
        with pytest.raises(RuntimeError, match="in flight"):
            pool.submit("<p>one too many</p>", "u")
        while in_flight:
            results.append((in_flight.pop(0), pool.collect()))
    finally:
        pool.close()
    assert [page for page, _ in results] == pages
    shown = {page: (r.text if isinstance(r, Extracted) else r.reason) for page, r in results}
    assert shown == {"<p>a</p>": "<P>A</P>", "SLOW page": "extract_timeout", "<p>c</p>": "<P>C</P>",
                     "BAD page": "extract_error", "<p>e</p>": "<P>E</P>", "<p>f</p>": "<P>F</P>",
                     "<p>g</p>": "<P>G</P>"}
    assert len(set(served_by[:2])) == 2  # both children extracted


def test_pages_an_abandoned_bundle_left_in_the_pool_never_answer_a_later_page():
    """A bundle abandoned with pages in flight (a later stage raised while ExtractDocuments yielded) left them
    in the pool: the next page's collect() would have returned an old page's answer. drop_in_flight(), which
    ExtractDocuments calls as each batch starts, forgets them; a child holding one is killed when it is next
    handed a page."""
    pool = ExtractorPool(ExtractConfig(), children=2, extract_fn=_raising_extract)
    try:
        pool.submit("<p>old one</p>", "u")
        pool.submit("<p>old two</p>", "u")
        holders = [e._process.pid for e in pool._order]
        pool.drop_in_flight()
        pool.submit("<p>new</p>", "u")
        assert pool.collect().text == "<p>new</p>"
        assert [e._process.pid for e in pool.extractors if e._process is not None] != holders
        pool.drop_in_flight()  # nothing in flight: nothing killed
        assert pool.extract("<p>again</p>", "u").text == "<p>again</p>"
    finally:
        pool.close()


def _slow_or_raising_extract(page: str, url: str, config: ExtractConfig) -> Extracted:
    if "BAD" in page:
        raise ValueError("parser exploded")
    return _slow_extract(page, url, config)


def test_fast_mode_reaches_trafilatura_and_still_extracts_the_article(monkeypatch):
    """extract.fast skips trafilatura's fallback comparison; on a plain article page the text is the same."""
    import trafilatura

    seen: list[bool] = []
    real = trafilatura.bare_extraction
    monkeypatch.setattr(trafilatura, "bare_extraction", lambda *a, **k: seen.append(k["fast"]) or real(*a, **k))
    page = ("<html><body><nav><a href='/'>Home</a> | <a href='/a'>About</a></nav><article><h1>Title</h1>"
            + "".join(f"<p>Paragraph {i} of a long article about rivers, valleys and the weather in spring.</p>"
                      for i in range(12))
            + "</article><footer>Copyright</footer></body></html>")
    slow = extract_main_text(page, "https://example.com/a", ExtractConfig()).text
    fast = extract_main_text(page, "https://example.com/a", ExtractConfig(fast=True)).text
    assert "Paragraph 11 of a long article" in fast and "Copyright" not in fast
    assert fast == slow and seen == [False, True]


def gold_pages(first: int | None = None, stop: int | None = None) -> list[tuple[str, str]]:
    """(url, decoded page) of trafilatura_eval's gold pages in url order, [first:stop]."""
    root = shared_path("data", "trafilatura_eval")
    gold = json.loads(gzip.open(root / "evaldata.json.gz").read())
    return [(url, decode_body(gzip.open(root / "html" / f"{entry['file']}.gz").read(), "text/html")[0])
            for url, entry in sorted(gold.items())[first:stop]]


def test_boilerplate_xpath_finds_what_trafilaturas_own_finds(monkeypatch):
    """ingest/boilerplate_xpath.py stands in for trafilatura's pruning XPath expressions only where their
    text is the one it implements; where it does, every call must return the very elements trafilatura's
    expression returns, on raw pages and on converted trees alike, with and without comment pruning."""
    from trafilatura import xpaths

    from ingest import boilerplate_xpath as bx
    from schemas.recipe import load_recipe

    bx.uninstall()
    own = {target: getattr(xpaths, target[0])[target[1]] for target in bx.TARGETS}
    expected = {target: digest for target, (digest, _make) in bx._replacements(xpaths).items()}
    assert set(expected) == set(bx.TARGETS)
    bx.install()
    for (name, index), expr in own.items():
        now = getattr(xpaths, name)[index]
        if bx._digest(expr) == expected[(name, index)]:
            assert isinstance(now, bx._Expression) and now.original is expr
        else:  # another trafilatura: the guard must leave that expression alone
            assert now is expr
    label = {getattr(xpaths, name)[index].path: (name, index) for name, index in bx.TARGETS}
    calls, found_some = Counter(), Counter()
    ours = bx._Expression.__call__

    def both(self, node):
        found = ours(self, node)
        assert found == self.original(node), self.path[:80]
        calls[label[self.path]] += 1
        found_some[label[self.path]] += bool(found)
        return found

    monkeypatch.setattr(bx._Expression, "__call__", both)
    fineweb = load_recipe("fineweb").extract  # favor_precision, no comments: every replaced expression runs
    for i, (url, page) in enumerate(gold_pages(stop=160)):
        extract_main_text(page, url, fineweb if i % 2 else replace(fineweb, favor_precision=False))
    replaced = [t for t in bx.TARGETS if isinstance(getattr(xpaths, t[0])[t[1]], bx._Expression)]
    # Each replaced expression ran often, and found elements on several pages (an expression that always
    # finds nothing would agree with any stand-in). BODY_XPATH[2] and [3] run only where [0] and [1] found no
    # main content, PRECISION_DISCARD_XPATH only with favor_precision. Three find something on few pages of any
    # sample (of all 2,099 gold pages: 9, 6 and 1), so they are only asked to run.
    rare = {("RAW_TREE_PRUNE_XPATH", 0), ("RAW_TREE_PRUNE_XPATH", 1), ("REMOVE_COMMENTS_XPATH", 0)}
    assert all(calls[t] >= 40 and (t in rare or found_some[t] >= 3) for t in replaced), (calls, found_some)


def test_readability_skip_keeps_every_text_and_its_bound_holds(monkeypatch):
    """ingest/readability_skip.py skips readability only where its text cannot be the one kept: the texts must
    be the same with and without it, on real pages in precision and balanced mode; wherever readability does
    run, its text must be within the bound the skip relies on; and the skip must be taken often enough to
    matter."""
    from trafilatura import core, external

    from ingest import readability_skip as rs
    from ingest import speedups
    from schemas.recipe import load_recipe

    pages = gold_pages(160, 280)
    fineweb = load_recipe("fineweb").extract
    extract_main_text(pages[0][1], pages[0][0], fineweb)  # installs the skip
    assert rs.installed(), "trafilatura changed: re-check readability_skip's reasoning, then its digest"
    gated, compare, prefer, decide = (core._extract_and_compare, core.compare_extraction,
                                      external._prefer_readability, rs.readability_cannot_win)
    skipped, bounds, lengths = Counter(), [], []

    def counting(raw_tree, body, text, options):
        answer = decide(raw_tree, body, text, options)
        skipped[answer] += 1
        return answer

    def bounded(cleaned_tree, raw_tree, body, text, options):
        bounds.append(rs.text_bound(raw_tree))
        return compare(cleaned_tree, raw_tree, body, text, options)

    def measured(body, algo_body, algo_text, len_text, len_algo, options):
        lengths.append(len_algo)
        return prefer(body, algo_body, algo_text, len_text, len_algo, options)

    monkeypatch.setattr(rs, "readability_cannot_win", counting)
    for config in (fineweb, replace(fineweb, favor_precision=False)):
        with_skip = [extract_main_text(page, url, config).text for url, page in pages]
        # trafilatura's own _extract_and_compare: readability on every page, its bound and length recorded.
        monkeypatch.setattr(speedups, "ENABLED", False)  # no re-install; the XPath stand-ins stay
        monkeypatch.setattr(core, "_extract_and_compare", gated.original)
        monkeypatch.setattr(core, "compare_extraction", bounded)
        monkeypatch.setattr(external, "_prefer_readability", measured)
        without = [extract_main_text(page, url, config).text for url, page in pages]
        monkeypatch.undo()
        monkeypatch.setattr(rs, "readability_cannot_win", counting)
        assert rs.installed() and with_skip == without
    assert len(bounds) == len(lengths) >= 200
    assert all(length <= bound for length, bound in zip(lengths, bounds, strict=True))
    # These 120 gold pages: 67 of 250 comparisons skipped; the 1,631 pages of the bench crawl that reach
    # extraction: 894 of 1,563.
    assert skipped[True] >= 0.2 * sum(skipped.values()), skipped


def test_readability_skip_stays_out_over_other_trafilatura_code(monkeypatch):
    """Where trafilatura's guarded sources are not the ones the skip was reasoned from, install() leaves its
    _extract_and_compare alone, and decides that once per process."""
    from trafilatura import core

    from ingest import readability_skip as rs

    rs.install()
    own = core._extract_and_compare.original
    monkeypatch.setattr(core, "_extract_and_compare", own)
    monkeypatch.setattr(rs, "_SOURCE_DIGEST", "0" * 64)
    monkeypatch.setattr(rs, "_expected_sources", None)
    asked = []
    monkeypatch.setattr(rs, "_guarded", lambda: asked.append(1) or "1" * 64)
    assert not rs.install() and not rs.install()
    assert core._extract_and_compare is own and asked == [1]


def test_plain_element_lookup_leaves_the_text_unchanged(monkeypatch):
    """speedups.element_lookup swaps lxml.html's per-element Python class lookup for a C-level one; every
    page's text must be what it is with lxml.html's own lookup."""
    from ingest import speedups
    from schemas.recipe import load_recipe

    pages = [page for _url, page in gold_pages(-100)]
    config = load_recipe("fineweb").extract
    monkeypatch.setattr(speedups, "ENABLED", False)  # the lookup stays as each loop sets it
    texts = {}
    try:
        for plain in (True, False):
            speedups.element_lookup(plain)
            texts[plain] = [extract_main_text(page, "", config).text for page in pages]
    finally:
        speedups.element_lookup(True)
    assert texts[True] == texts[False]
    assert sum(bool(t) for t in texts[True]) > 80


def test_on_an_unverified_trafilatura_no_patch_reads_a_private_name(monkeypatch):
    """The version guard comes before every patch: on another trafilatura release nothing private is read
    (here `xpaths._COMMENTS_ID` is gone, as it may be in a later release), the text is trafilatura's own, and
    the status says every patch is off and why, in one line."""
    from trafilatura import xpaths

    from ingest import boilerplate_xpath, readability_skip, speedups

    page = gold_pages(stop=1)[0][1]
    speedups.uninstall()
    monkeypatch.setattr(speedups, "ENABLED", False)
    stock = extract_main_text(page, "", ExtractConfig()).text
    monkeypatch.setattr(speedups, "ENABLED", True)
    monkeypatch.setattr(speedups, "trafilatura_version", lambda: "2.9.0")
    monkeypatch.delattr(xpaths, "_COMMENTS_ID")
    try:
        assert extract_main_text(page, "", ExtractConfig()).text == stock
        assert not boilerplate_xpath.installed() and not readability_skip.installed()
        report = speedups.status()
        assert report["trafilatura"] == "2.9.0" and not any(report["patches"].values())
        assert set(report["off_because"]) == set(speedups.PATCHES)
        line = speedups.off_line(report)
        assert "\n" not in line and "2.9.0" in line and "2.3.1" in line and "1.6x the CPU" in line
    finally:
        monkeypatch.undo()
        speedups.uninstall()  # the next extraction installs again


def test_a_patch_that_cannot_install_is_off_with_its_error_and_the_others_run(monkeypatch):
    """On the verified release, a patch whose install raises is reported off with the error; the run goes on
    with the other patches and trafilatura's own code in its place."""
    from trafilatura import xpaths

    from ingest import boilerplate_xpath, readability_skip, speedups

    speedups.uninstall()
    monkeypatch.delattr(xpaths, "_COMMENTS_ID")
    try:
        text = extract_main_text(gold_pages(stop=1)[0][1], "", ExtractConfig()).text
        assert text
        report = speedups.status()
        assert report["patches"] == {"boilerplate_xpath": False, "readability_skip": True, "element_lookup": True}
        assert "AttributeError" in report["off_because"]["boilerplate_xpath"]
        assert readability_skip.installed() and not boilerplate_xpath.installed()
        assert "boilerplate_xpath" in speedups.off_line(report)
        assert speedups.summarize([report, report])["speed_patches_off"].keys() == {"boilerplate_xpath"}
    finally:
        monkeypatch.undo()
        speedups._state["errors"].clear()
        speedups.uninstall()
    extract_main_text("<html><body><p>again</p></body></html>", "", ExtractConfig())
    assert all(speedups.status()["patches"].values())


def test_pyproject_pins_the_trafilatura_the_patches_were_verified_on():
    """pyproject admits only the releases the speed patches were checked on, and the one installed is one."""
    import tomllib
    from pathlib import Path

    from ingest import speedups

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    pins = [d for d in project["project"]["dependencies"] if d.startswith("trafilatura")]
    assert pins == [f"trafilatura=={v}" for v in speedups.VERIFIED_TRAFILATURA]
    assert speedups.trafilatura_version() in speedups.VERIFIED_TRAFILATURA


# A page with an article, a data table and a comment section: each extract option changes what comes out of it.
_ARTICLE = "".join(f"<p>Paragraph {i} of a long article about rivers, valleys and the weather in the spring.</p>"
                   for i in range(8))
_OPTIONS_PAGE = (
    "<html><head><title>Rivers | Example Site</title></head><body><article><h1>Rivers</h1>" + _ARTICLE
    + "<table><tr><th>River</th><th>Length</th></tr><tr><td>Nile</td><td>6,650 km</td></tr>"
    "<tr><td>Amazon</td><td>6,400 km</td></tr></table></article>"
    "<div id='comments' class='comments'><h3>Comments</h3><div class='comment'><p>Great read about the Nile, "
    "thank you for writing this piece!</p></div><div class='comment'><p>I disagree with the part about valleys in "
    "spring, they are dry.</p></div></div></body></html>"
)
_OPTIONS_URL = "https://example.com/2021/05/03/rivers"


def _extract(page: str = _OPTIONS_PAGE, url: str = _OPTIONS_URL, **options) -> Extracted:
    return extract_main_text(page, url, ExtractConfig(**options))


@pytest.mark.parametrize("favor_precision", [True, False])
def test_include_comments_puts_the_comments_in_the_text_as_trafilatura_extract_does(favor_precision):
    """bare_extraction keeps comments in a field of their own; the text must hold them, after the main text,
    as trafilatura.extract writes them (lines without trailing whitespace, see ingest/render.py)."""
    import trafilatura

    without = _extract(favor_precision=favor_precision).text
    with_comments = _extract(include_comments=True, favor_precision=favor_precision).text
    assert "Great read about the Nile" not in without
    assert with_comments.startswith(without) and with_comments.endswith("in spring, they are dry.")
    stock = trafilatura.extract(_OPTIONS_PAGE, url=_OPTIONS_URL, include_comments=True,
                                favor_precision=favor_precision)
    assert with_comments == "\n".join(line.rstrip() for line in stock.split("\n"))


def test_include_tables_and_table_text():
    """include_tables = false leaves tables out; a data table keeps trafilatura's rows in every table_text."""
    assert "Nile" not in _extract(include_tables=False).text
    rows = ["| River | Length |", "|---|---|", "| Nile | 6,650 km |", "| Amazon | 6,400 km |"]
    for mode in ("blocks", "rows", "markdown"):
        lines = _extract(table_text=mode).text.split("\n")
        assert lines[-4:] == rows, mode


def test_a_layout_table_keeps_its_paragraphs_on_their_own_lines():
    """A page laid out with a table (a message board: navigation in one cell, posts in another). "markdown"
    folds every post into one row line ending in "|", so FineWeb's line rule (>= 12 % of lines ending in
    punctuation) drops the page; "blocks" writes the cells as the page reads; "rows" as trafilatura 1.11 did
    (one line per row, a cell's line breaks kept)."""
    from filters.fineweb import FineWebFilter
    from schemas.recipe import FineWebConfig
    from schemas.records import Document, RecordMeta

    posts = "".join(f"<p>Post {i}: we went to the river on Sunday and it was lovely, thank you all.<br>"
                    f"See you next week at the valley meeting, everyone is welcome.</p>" for i in range(6))
    page = ("<html><body><table><tr><td><p>Home</p><p>Topics</p><p>Search</p></td><td>" + posts
            + "</td></tr></table></body></html>")
    texts = {mode: _extract(page, "https://board.example.com/t/1", table_text=mode).text
             for mode in ("blocks", "rows", "markdown")}
    assert texts["markdown"].count("\n") == 0 and texts["markdown"].endswith("|")
    assert "\nPost 3: we went to the river on Sunday and it was lovely, thank you all.\n" in texts["blocks"]
    assert texts["blocks"].split("\n")[:3] == ["Home", "Topics", "Search"]
    assert texts["rows"].startswith("Home Topics Search | Post 0: we went") and texts["rows"].endswith("|")
    assert "thank you all.\nSee you next week at the valley meeting, everyone is welcome. Post 1:" in texts["rows"]
    fineweb = FineWebFilter(FineWebConfig())

    def line_rule(text: str) -> str:
        doc = Document(doc_id="x", source="", url="", warc_record_id="", crawl_date="",
                       meta=RecordMeta(0, "response", 200, ""), text=text, language="en", language_score=1.0)
        decision = fineweb(doc)
        return decision.reason if decision else "kept"

    assert line_rule(texts["markdown"]) == "line_punct_ratio"
    assert line_rule(texts["blocks"]) != "line_punct_ratio" and line_rule(texts["rows"]) != "line_punct_ratio"


def test_with_metadata_takes_trafilaturas_title_and_date():
    """Without the metadata pass the title and date come from two regexes over <head> (no date here); with it
    from trafilatura (htmldate finds the date in the URL)."""
    plain, full = _extract(), _extract(with_metadata=True)
    assert (plain.title, plain.published_date) == ("Rivers | Example Site", "")
    assert full.published_date == "2021-05-03" and full.title and full.title != plain.title
    assert full.text == plain.text


@pytest.mark.parametrize("option", ["favor_precision", "fast"])
def test_favor_precision_and_fast_change_the_text_of_real_pages(option):
    """Each reaches trafilatura and changes what it keeps on some of the first 40 gold pages."""
    base = ExtractConfig()
    other = replace(base, **{option: not getattr(base, option)})
    changed = [url for url, page in gold_pages(stop=40)
               if extract_main_text(page, url, base).text != extract_main_text(page, url, other).text]
    assert len(changed) >= 2, changed


def test_deduplicate_leaves_out_segments_repeated_on_the_page():
    """extract.deduplicate: a paragraph of over 100 characters (a newsletter box) that comes back a fourth time
    on the page is left out from then on; with false every copy stays."""
    box = ("<p>Subscribe to our newsletter for weekly stories about rivers, lakes, mountain valleys and the open "
           "sea, delivered every Sunday morning.</p>")
    paragraphs = [f"<p>Paragraph {i} of a long article about rivers, valleys and the weather in spring.</p>"
                  for i in range(8)]
    page = ("<html><body><article><h1>Rivers</h1>" + "".join(p + box * (i % 2) for i, p in enumerate(paragraphs))
            + "</article></body></html>")
    counts = {dedup: _extract(page, deduplicate=dedup).text.count("Subscribe to our newsletter")
              for dedup in (True, False)}
    assert counts == {True: 3, False: 4}


def test_the_pipelines_text_scores_as_stock_trafilatura_with_the_same_settings(tmp_path):
    """The text a run writes to its shards (trafilatura in its child with the speed patches, comments and tables
    rendered by ingest/render.py, tokenized, decoded back here) scores on held-out gold pages as
    trafilatura.extract does with the same settings: bag-of-words F1 >= 0.99x, for the default recipe and for
    include_comments = true, favor_precision = false (bench/extract_fidelity.py runs every page)."""
    from bench.common import gold_pages as gold_set
    from bench.extract_fidelity import compare

    shared_path("data", "scrapinghub_aeb")  # gold_set reads it: skipped without it (failed under CI)
    result = compare(gold_set("scrapinghub_aeb")[-40:], tmp_path, ["--direct_num_workers=2"])
    assert set(result) == {"default", "comments, recall"}
    for r in result.values():
        assert r["stock_f1"] > 0.8 and r["pipeline_f1"] >= 0.99 * r["stock_f1"], result


def test_a_row_left_outside_any_table_is_written_as_a_layout_table():
    """trafilatura sometimes keeps a layout table's row and cell without their table (div > row > cell): such a
    row is a table of its own, written as blocks; a data row outside a table keeps its markdown row."""
    from lxml import etree

    from ingest.render import document_text

    body = etree.fromstring(
        "<body><div><row><cell>\n   <p>School Nurse Pay Equity News</p><quote>A hearing was held in court on "
        "Monday.</quote><lb/>   Attention: School Nurses!<lb/></cell></row></div>"
        "<div><row><cell>Nile</cell><cell>6,650 km</cell></row></div></body>")
    assert document_text(body, None, "blocks").split("\n") == [
        "School Nurse Pay Equity News", "A hearing was held in court on Monday.", "Attention: School Nurses!",
        "| Nile | 6,650 km |"]
    assert document_text(body, None, "markdown").split("\n")[0].startswith("| School Nurse Pay Equity News A")


def test_all_speed_patches_together_leave_every_text_as_stock_trafilatura_writes_it(monkeypatch):
    """The three patches at once against trafilatura as shipped, on 100 gold pages (every other one of the first
    200) in the fineweb recipe's and the default's settings (bench/extract_quality.py compares all 990)."""
    from ingest import speedups
    from schemas.recipe import load_recipe

    pages = gold_pages(stop=200)[::2]
    configs = (load_recipe("fineweb").extract, replace(ExtractConfig(), favor_precision=False, include_comments=True))
    speedups.uninstall()
    monkeypatch.setattr(speedups, "ENABLED", False)
    try:
        stock = [[extract_main_text(page, url, c).text for url, page in pages] for c in configs]
    finally:
        monkeypatch.undo()
    patched = [[extract_main_text(page, url, c).text for url, page in pages] for c in configs]
    assert all(speedups.status()["patches"].values())
    assert patched == stock and sum(bool(t) for t in patched[0]) > 80
