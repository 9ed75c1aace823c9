"""The record stages' speed-ups change no value: every filter signal, decision and modified text, and the
language precheck's quick text, are digested per input and compared with digests recorded from the code
before the speed-ups (8e36f4e, 2026-12-07) in tests/fixtures/perdoc_reference.json.

The inputs are texts and pages the project writes itself (seeded prose, seeded lines of every kind a rule
looks at: bullets, ellipses, citations, policy phrases, curly brackets, e-mail and IPv4 addresses, CJK and
Thai, odd line breaks and case mappings; seeded hostile HTML; the 300-page bench crawl's pages) and, in the
second test, public texts and pages read from ../shared at test time (skipped without it, failed under CI).
Each text runs through four filter orders (fineweb's, gopher's, c4's, and one with C4 first, every rule on and
Gopher counting punctuation), so the shared per-document views are used cached and uncached.

A digest that differs names the input; a change meant to change a value records the fixture again, saying
so in its commit:

    python tests/test_perdoc_reference.py --record
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import random
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script to record
    sys.path.insert(0, str(REPO))

from tests.conftest import shared_path  # noqa: E402

FIXTURE = Path(__file__).with_name("fixtures") / "perdoc_reference.json"

# ------------------------------------------------------------------------------------------- the filter orders


def _filter_sets() -> list[list]:
    from filters.registry import build_filters
    from schemas.recipe import load_recipe, recipe_from_dict

    custom = recipe_from_dict({
        "filters": {
            "order": ["language", "c4", "gopher_quality", "gopher_repetition", "fineweb", "pii"],
            "c4": {"min_words_per_line": 0, "filter_no_terminal_punct": True},
            "gopher_quality": {"alpha_ratio_counts_punctuation": True},
        },
    })
    recipes = [load_recipe("fineweb"), load_recipe("gopher"), load_recipe("c4"), custom]
    return [[f for f in build_filters(r) if f.needs_text] for r in recipes]


def _filter_digest(filter_sets: list[list], text: str, language: str) -> str:
    from filters.registry import apply_filters
    from schemas.records import Document, RecordMeta

    out = []
    for filters in filter_sets:
        doc = Document(doc_id="0123456789abcdef0123456789abcdef", source="s", url="https://example.com/a",
                       warc_record_id="r", crawl_date="c", meta=RecordMeta(0, "response", 200, "text/html"),
                       text=text, language=language, language_score=0.9)
        decision = apply_filters(filters, doc)
        out.append([None if decision is None else [decision.reason, repr(decision.score)],
                    sorted((k, repr(v)) for k, v in doc.scores.items()), doc.text, doc.modified_by])
    return hashlib.sha256(json.dumps(out, ensure_ascii=False).encode()).hexdigest()[:12]


def _page_digest(page: str) -> str:
    from ingest.extract import quick_text

    return hashlib.sha256("\x00".join([quick_text(page), quick_text(page, 300, 5000)]).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------ inputs the project writes itself

_EXTRA_LINES = [
    "• first point of the list", "- a dash item", "* starred item", "‣ triangle bullet", "  ◦ indented bullet",
    "To be continued...", "And so on…", "Wait... what?", "The end. . .",
    "Smith[1] wrote it[2] in 1990[edit].", "This needs a source[citation needed] here, really.",
    "java[3]script is used on this page.", "We use cookies to improve the site.", "This site uses cookies.",
    "Read our Privacy Policy and Terms of Use before you go.", "Cookie Policy", "lorem ipsum dolor sit amet.",
    "Please enable JavaScript to view the comments.", "function f() { return 1; }", "{}",
    "Write to john.doe@example.com or to a_b+c@mail.example.org today.", "Server at 8.8.8.8 and 192.168.1.20.",
    "Version 1.2.3.4.5 of 999.1.1.1, and 10.0.0.1; also 203.0.113.9 and 1.1.1.1.", "#tag #another ## ###",
    "日本語のテキストです。これは文です。", "ภาษาไทยเป็นภาษาที่สวยงามมาก", "한국어 문장입니다.", "中文句子，没有空格。",
    "ΟΔΟΣ ΚΑΙ ΣΟΦΙΑΣ.", "İstanbul'da KELVIN ＫＫ Kelvin sign: \u212a.", "Don't stop: e-mail 2024, U.S. ... — ok.",
    "rock’n’roll and well-known-thing; a--b -c d- 'quoted' ‘single’.", "2024 1999 42 3.14 _under_score_ 1_000",
    'He said "yes." Then he left.', "(see above.) [sic.] Really?! Yes!!", "Ends with a quote.'", "Ends with?\"",
    "", "   ", "\t", "x", "THE QUICK BROWN FOX.", "Menu Home About Contact", "Page 1 of 2 Next", "© 2024 Site",
]
_BREAKS = ["\n", "\n", "\n", "\n\n", "\n\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]


def generated_texts(count: int = 500, seed: int = 0) -> list[tuple[str, str]]:
    """(text, language) pairs: seeded prose pages, and pages of seeded lines of every kind a rule looks at."""
    from demo.prose import Prose

    rng = random.Random(f"tokenmill-perdoc-reference/{seed}")
    prose = Prose(seed)
    out: list[tuple[str, str]] = [("", "en"), (" \n\n ", "en"), ("word", "en"), ("a" * 1200 + " is long.", "en")]
    while len(out) < count:
        lines: list[str] = []
        kind = rng.random()
        if kind < 0.3:  # an article
            lines = [prose.title()] + prose.paragraphs((2, 12))
            breaks = ["\n\n"] if rng.random() < 0.5 else ["\n"]
        else:  # lines of every kind
            for _ in range(rng.randint(1, 70)):
                r = rng.random()
                if r < 0.35:
                    lines.append(prose.sentence() if rng.random() < 0.6 else prose.paragraph((1, 4)))
                elif r < 0.5:
                    lines.append(" ".join(prose.words(rng.randint(1, 6))))
                elif r < 0.6 and lines:
                    lines.append(rng.choice(lines))  # a repeated line
                elif r < 0.62:
                    lines.append(prose.sentence().rstrip(".") + " " + "x" * rng.randint(990, 1010) + ".")
                else:
                    lines.append(rng.choice(_EXTRA_LINES))
            breaks = _BREAKS
        text = lines[0] if lines else ""
        for line in lines[1:]:
            text += rng.choice(breaks) + line
        if rng.random() < 0.2:
            text = rng.choice(["\n", "  ", "\n\n", "\t"]) + text + rng.choice(["\n", " ", "\n\n", ""])
        out.append((text, rng.choice(["en"] * 8 + ["de", "zh"])))
    return out


_TAGS = ["<p>", "</p>", "<div class=\"x\">", "</div>", "<br/>", "<a href='/a?b=1&c=2'>", "</a>", "<span>", "<li>",
         "<h1 id=t>", "</h1>", "<img src=x alt='a > b'>", "<!DOCTYPE html>", "<meta charset=utf-8>", "< p>", "<>"]
_HIDDEN = ["<script>var a = '<p>not text</p>';</script>", "<SCRIPT type=x>if (a < b) {}</SCRIPT >",
           "<style>p { color: red }</style>", "<noscript>Enable JavaScript</noscript>",
           "<template><p>t</p></template>", "<svg><text>svg text</text></svg>", "<textarea>typed</textarea>",
           "<!-- a comment <p>x</p> -->", "<!---->", "<script src=a.js></script>", "<scripts>visible?</scripts>"]
_ENTITIES = ["&amp;", "&amp", "&lt;script&gt;", "&#32;", "&#x41;", "&nbsp;", "&#0;", "&#xD800;", "&notit;",
             "&eacute;", "&unknown;", "&", "&#", "&#x;", "&AMP;", "&copy2024"]


def generated_pages(count: int = 250, seed: int = 0) -> list[str]:
    """Seeded hostile HTML: tags, invisible blocks (some never closed), comments, entities, stray brackets,
    text before, between and after, pages long enough to stop early and pages past the scan limit."""
    from demo.prose import Prose

    rng = random.Random(f"tokenmill-perdoc-pages/{seed}")
    prose = Prose(f"pages-{seed}")
    pages = ["", "plain text, no tag at all", "<p>", "<script>never closed <p>after</p>", "<!-- open comment <p>x",
             "a <b>bold</b> &amp; <i>italic</i> tail", "<div>" * 5000 + "deep" + "</div>" * 5000,
             "<p>x</p>" * 40_000 + "<p>after the scan limit</p>"]
    while len(pages) < count:
        parts = []
        for _ in range(rng.choice([3, 30, 300, 3000])):
            r = rng.random()
            if r < 0.35:
                parts.append(rng.choice(_TAGS))
            elif r < 0.45:
                parts.append(rng.choice(_HIDDEN))
            elif r < 0.55:
                parts.append(rng.choice(_ENTITIES))
            elif r < 0.65:
                parts.append(rng.choice([" ", "\n", "\t\n  ", "", "\u00a0", "\u3000", "<", ">"]))
            else:
                parts.append(html.escape(prose.sentence()) if rng.random() < 0.8 else " ".join(prose.words(3)))
        if rng.random() < 0.1:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(["<script>", "<style>", "<!--", "<p"]))
        pages.append("".join(parts))
    return pages


def bench_crawl_pages(folder: Path) -> list[str]:
    """The decoded HTML pages of a crawl's WARC files, in file order."""
    from ingest.decode import decode_body
    from ingest.warc import read_warc, triage
    from schemas.recipe import ReadConfig
    from schemas.records import Record

    pages = []
    for path in sorted(folder.glob("*.warc.gz")):
        with open(path, "rb") as f:
            for rec in read_warc(f, str(path)):
                if isinstance(rec, Record) and triage(rec, ReadConfig()) is None:
                    pages.append(decode_body(rec.body, rec.content_type)[0])
    return pages


# ------------------------------------------------------------------------------------- inputs read from ../shared

_UDHR_TAG = re.compile(r"<[^>]+>")
_WIKI_TITLE = re.compile(r"\n = [^=\n]+ = \n")


def shared_texts() -> list[tuple[str, str]]:
    """Public texts: newsgroup posts (addresses, quoting, signatures), Wikipedia articles, the UDHR in 116
    languages and scripts, CleanEval's hand-cleaned web pages."""
    data = shared_path("data")
    texts: list[tuple[str, str]] = []
    with gzip.open(data / "20newsgroups" / "20news-bydate.jsonl.gz", "rt") as f:
        for i, line in enumerate(f):
            if i >= 3000:
                break
            if i % 15 == 0:
                texts.append((json.loads(line)["text"], "en"))
    wiki = gzip.open(data / "wikitext2_test" / "wiki.test.raw.gz", "rt", encoding="utf-8").read()
    texts += [(article, "en") for article in _WIKI_TITLE.split(wiki)[:60]]
    for path in sorted((data / "udhr").glob("udhr_*.xml"))[::4]:
        xml = path.read_text(encoding="utf-8")
        texts.append((html.unescape(_UDHR_TAG.sub("", xml.split("?>", 1)[-1])), "en"))
    for path in sorted((data / "cleaneval" / "dev" / "gold").glob("*.txt.gz")):
        texts.append((gzip.open(path, "rt", encoding="utf-8", errors="replace").read(), "en"))
    return texts


def shared_pages() -> list[str]:
    """Public HTML pages: trafilatura's evaluation set (every third), Mozilla readability's test pages,
    CleanEval's inputs."""
    from ingest.decode import decode_body

    data = shared_path("data")
    paths = sorted((data / "trafilatura_eval" / "html").glob("*.html.gz"))[::3]
    paths += sorted((data / "readability_testpages").glob("*/source.html.gz"))
    paths += sorted((data / "cleaneval" / "dev" / "input").glob("*.html.gz"))
    return [decode_body(gzip.decompress(p.read_bytes()), "text/html")[0] for p in paths]


def extracted_texts(pages: list[str]) -> list[tuple[str, str]]:
    """Main text of every fifth page, as extraction gives it to the filters (fineweb's settings)."""
    from ingest.extract import extract_main_text
    from schemas.recipe import load_recipe

    config = load_recipe("fineweb").extract
    return [(extract_main_text(p, "https://example.com/a", config).text, "en") for p in pages[::5]]


# ---------------------------------------------------------------------------------------------- digests


def project_digests(crawl: Path) -> dict[str, list[str]]:
    sets = _filter_sets()
    return {
        "generated_texts": [_filter_digest(sets, t, lang) for t, lang in generated_texts()],
        "generated_pages": [_page_digest(p) for p in generated_pages()],
        "bench_crawl_300_pages": [_page_digest(p) for p in bench_crawl_pages(crawl)],
    }


def shared_digests() -> dict[str, list[str]]:
    sets = _filter_sets()
    pages = shared_pages()
    return {
        "shared_texts": [_filter_digest(sets, t, lang) for t, lang in shared_texts()],
        "shared_extracted_texts": [_filter_digest(sets, t, lang) for t, lang in extracted_texts(pages)],
        "shared_pages": [_page_digest(p) for p in pages],
    }


def _compare(found: dict[str, list[str]]) -> None:
    reference = json.loads(FIXTURE.read_text())
    for name, digests in found.items():
        expected = reference[name]
        assert len(digests) == len(expected), f"{name}: {len(digests)} inputs, the reference has {len(expected)}"
        differing = [i for i, (a, b) in enumerate(zip(digests, expected, strict=True)) if a != b]
        assert not differing, f"{name}: {len(differing)} of {len(digests)} inputs differ, first {differing[:10]}"


def test_signals_decisions_texts_and_quick_text_as_recorded(bench_crawl_300):
    found = project_digests(bench_crawl_300)
    assert len(found["generated_texts"]) == 500 and len(found["bench_crawl_300_pages"]) > 200
    _compare(found)


def test_same_on_public_texts_and_pages():
    found = shared_digests()
    assert len(found["shared_texts"]) > 300 and len(found["shared_pages"]) > 400
    _compare(found)


def test_a_changed_value_is_caught():
    """The digests see one signal, one decision, one character of quick text change (a test that cannot fail is
    a defect)."""
    sets = _filter_sets()
    text, lang = "Some words stand here. And a few more words follow them.", "en"
    before = _filter_digest(sets, text, lang)
    assert _filter_digest(sets, text + " #", lang) != before  # gopher_hash_ratio changes
    sets[0][0].config.min_score = 0.95  # fineweb's language rule now drops it: only the decision changes
    assert _filter_digest(sets, text, lang) != before
    assert _page_digest("<p>a</p>b") != _page_digest("<p>a</p>b c")


def _record() -> None:
    import tempfile

    from demo.bench_crawl import build_bench_crawl

    with tempfile.TemporaryDirectory() as tmp:
        build_bench_crawl(tmp, docs=300, shards=2, seed=0)
        found = project_digests(Path(tmp))
    found.update(shared_digests())
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(found, indent=0) + "\n")
    print(f"{FIXTURE}: " + ", ".join(f"{k} {len(v)}" for k, v in found.items()))


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_perdoc_reference.py --record")
    try:
        _record()
    except pytest.skip.Exception as exc:
        sys.exit(f"cannot record without ../shared: {exc}")
