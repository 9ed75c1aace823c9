"""Decontamination: benchmark passages from ../shared (AG News test, WikiText-2 test) planted into real bench-crawl
pages, verbatim and re-laid-out, are all caught and nothing else is; the index's words and n-grams are the
same in the driver (plain Python) and the workers (compiled); bad sources stop the run before it starts."""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

import run_pipeline
import tokenmill_cli
from decontamination.index import build_index
from decontamination.sources import Item, SourceError, read_items
from decontamination.text import gram_hashes, item_word_hashes, normalized_words, page_gram_hashes, page_word_hashes
from demo.warc_writer import WarcWriter
from ingest.extract import extract_main_text
from schemas.recipe import load_recipe
from tests.conftest import shared_path
from tests.test_pipeline import IN_MEMORY, ledger, run, shards

# Items planted (AG News test rows, WikiText-2 test lines) and how each page lays its passage out.
AG_ROWS = (5, 118, 1234, 3001, 5555, 7042)
WIKI_LINES = (5, 45, 200, 900, 1500, 2400)


def write_sources(folder: Path) -> tuple[Path, Path]:
    """AG News test as jsonl (title, description per row) and WikiText-2 test as .txt.gz, one item a line."""
    rows = list(csv.reader(io.StringIO(gzip.open(shared_path("data", "ag_news", "test.csv.gz"), "rt").read())))
    ag = folder / "ag_news_test.jsonl"
    with ag.open("w") as f:
        for label, title, description in rows:
            f.write(json.dumps({"label": int(label), "title": title,
                                "description": description.replace("\\n", "\n")}) + "\n")
    wiki = folder / "wikitext2_test.txt.gz"
    shutil.copyfile(shared_path("data", "wikitext2_test", "wiki.test.raw.gz"), wiki)
    return ag, wiki


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def wikipedia_layout(line: str) -> str:
    """WikiText's tokenized form back to the text a Wikipedia page shows."""
    text = line.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
    text = re.sub(r" ([,.;:!?)'])", r"\1", text)
    return re.sub(r"\( ", "(", text).replace(" 's", "'s")


def relaid(text: str) -> str:
    """One sentence a line, typographic quotes, other spacing and case: the same item to the normalizer."""
    text = re.sub(r'"([^"]*)"', "\u201c\\1\u201d", text).replace("'", "\u2019")
    lines = [("  ".join(s.split()) if i % 2 else s.upper()) for i, s in enumerate(_sentences(text))]
    return "<br>\n".join(html.escape(s, quote=False) for s in lines)


def passages(ag: Path, wiki: Path) -> list[tuple[str, int, str, bool]]:
    """(source, item index, passage, re-laid-out) for every planted item: AG News descriptions whole, the first
    ~60 words of WikiText paragraphs (a page quoting part of an article)."""
    ag_rows = ag.read_text().split("\n")
    wiki_lines = gzip.open(wiki, "rt").read().split("\n")
    out = []
    for i, row in enumerate(AG_ROWS):
        out.append((str(ag), row, json.loads(ag_rows[row])["description"], i % 2 == 1))
    for i, line in enumerate(WIKI_LINES):
        text = wiki_lines[line]
        assert len(text.split()) > 40, line
        quoted = " ".join(wikipedia_layout(text).split()[:60])
        out.append((str(wiki), line, quoted if i % 2 else " ".join(text.split()[:60]), i % 2 == 1))
    return out


def plant(page: str, block: str) -> str | None:
    """The page with `block` (a paragraph) after its longest paragraph, where the main text is."""
    paragraphs = list(re.finditer(r"<p[ >].*?</p>", page, flags=re.S | re.I))
    best = max(paragraphs, key=lambda m: len(m.group()), default=None)
    if best is None or len(best.group()) < 400:
        return None
    return page[: best.end()] + f"\n<p>{block}</p>\n" + page[best.end() :]


def planted_crawl(bench: Path, out: Path, plants: list[tuple[str, int, str, bool]]) -> dict[str, tuple[str, int]]:
    """A WARC file of bench-crawl pages, each with one passage planted; {planted url: (source, item)}."""
    pages = []
    for path in sorted(bench.glob("*.warc.gz")):
        with path.open("rb") as f:
            for record in ArchiveIterator(f):
                http = record.http_headers
                if record.rec_type == "response" and http and http.get_statuscode() == "200":
                    try:
                        page = record.content_stream().read().decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                    pages.append((record.rec_headers.get_header("WARC-Target-URI"), page))
    pages.sort()
    config = load_recipe("default").extract

    def kept_by_extraction(page: str, passage: str) -> bool:
        """Whether trafilatura keeps the planted paragraph: a block it leaves out never reaches the stage."""
        text = extract_main_text(page, "", config).text
        return " ".join(normalized_words(passage)[:12]) in " ".join(normalized_words(text))

    truth = {}
    with out.open("wb") as f:
        writer = WarcWriter(f, seed="planted")
        writer.warcinfo()
        used = 0
        for source, item, passage, relaid_out in plants:
            block = relaid(passage) if relaid_out else html.escape(passage, quote=False)
            while True:
                url, page = pages[used * 7 % len(pages)]
                used += 1
                planted = plant(page, block)
                if planted is not None and kept_by_extraction(planted, passage):
                    break
            url = f"{url}#planted-{len(truth)}"
            writer.response(url, planted.encode())
            truth[url] = (source, item)
    return truth


def recipe(folder: Path, sources: list[Path], action: str = "drop", extra: str = "") -> Path:
    path = folder / f"decontaminate-{action}.toml"
    path.write_text("[decontamination]\nenabled = true\n"
                    f"sources = {json.dumps([str(s) for s in sources])}\n"
                    'text_fields = ["title", "description"]\n'
                    f'action = "{action}"\n' + extra)
    return path


@pytest.fixture(scope="module")
def contaminated(bench_crawl_300, tmp_path_factory):
    root = tmp_path_factory.mktemp("decontamination")
    ag, wiki = write_sources(root)
    plants = passages(ag, wiki)
    truth = planted_crawl(bench_crawl_300, root / "planted.warc.gz", plants)
    inputs = [str(p) for p in sorted(bench_crawl_300.glob("*.warc.gz"))] + [str(root / "planted.warc.gz")]
    stats = run(inputs, root / "drop", "--config", str(recipe(root, [ag, wiki])), "--quiet", *IN_MEMORY)
    return {"root": root, "truth": truth, "stats": stats, "ag": ag, "wiki": wiki, "plants": plants}


def test_every_planted_page_is_caught_and_no_other(contaminated):
    rows = ledger(contaminated["root"] / "drop")
    caught = {r["url"]: r for r in rows if r["reason"] == "contaminated"}
    truth = contaminated["truth"]
    assert set(caught) == set(truth), (sorted(set(caught) - set(truth)), sorted(set(truth) - set(caught)))
    for url, (source, item) in truth.items():
        row = caught[url]
        assert row["stage"] == "decontamination" and not row["kept"]
        assert row["detail"].startswith(f'{source} item {item}: "'), row["detail"]
        assert row["score"] >= 1
    # The passage quoted is the page's own text, laid out as the page has it.
    for source, item, passage, relaid_out in contaminated["plants"]:
        row = next(caught[u] for u, planted in truth.items() if planted == (source, item))
        quoted = row["detail"].partition(': "')[2].removesuffix('"').removesuffix("\u2026")
        on_page = " ".join(html.unescape(relaid(passage).replace("<br>", " ") if relaid_out else passage).split())
        assert len(quoted) > 100 and on_page.startswith(quoted), (quoted, on_page)

    dc = contaminated["stats"]["decontamination"]
    assert contaminated["stats"]["stages"]["decontamination"]["dropped"] == {"contaminated": len(truth)}
    by_path = {s["path"]: s for s in dc["sources"]}
    for path, planted in ((str(contaminated["ag"]), AG_ROWS), (str(contaminated["wiki"]), WIKI_LINES)):
        s = by_path[path]
        # WikiText line 5 repeats a sentence of line 1 (the same article), so its page holds both items.
        assert s["documents"] == len(planted) and s["items_found"] >= len(planted)
        assert set(planted) <= {t["item"] for t in s["top_items"]}
        assert len(s["sha256"]) == 64 and s["indexed"] + s["too_short"] == s["items"]
    assert by_path[str(contaminated["wiki"])]["too_short"] > 0  # headings (" = Robert Boulter = ") are left out
    manifest = json.loads((contaminated["root"] / "drop" / "manifest.json").read_text())
    assert [s["path"] for s in manifest["decontamination"]["sources"]] == [str(contaminated["ag"]),
                                                                           str(contaminated["wiki"])]


def test_inspect_shows_the_matched_passage_and_stats_and_report_list_each_source(contaminated, capsys, tmp_path):
    out = contaminated["root"] / "drop"
    assert tokenmill_cli.main(["inspect", str(out), "--reason", "contaminated", "--sample", "3"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("DROPPED at decontamination: contaminated") == 3
    assert shown.count(">>> matched passage: ") == 3
    assert tokenmill_cli.main(["stats", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"decontamination (drop): {contaminated['ag']}: 6 of 7,600 items found, 6 documents" in printed

    from outputs.browser import render
    from tests.conftest import require_chromium

    require_chromium()
    report = tmp_path / "report.html"
    assert tokenmill_cli.main(["report", str(out), "-o", str(report)]) == 0
    dom, console = render(str(report))
    assert "Decontamination" in dom and "wikitext2_test.txt.gz" in dom and not console, console

    # A release's dataset card says what it was checked against, byte for byte.
    assert tokenmill_cli.main(["release", str(out), "--name", "web", "--version", "1", "--to",
                               str(tmp_path / "rel")]) == 0
    card = (tmp_path / "rel" / "README.md").read_text()
    sources = contaminated["stats"]["decontamination"]["sources"]
    assert "## Decontamination" in card and all(f"| {s['path']} | {s['sha256']} |" in card for s in sources)


def test_flag_keeps_the_documents_with_the_match_on_their_ledger_row(contaminated):
    root = contaminated["root"]
    out = root / "flag"
    stats = run([str(root / "planted.warc.gz")], out, "--config",
                str(recipe(root, [contaminated["ag"], contaminated["wiki"]], "flag")), "--quiet", *IN_MEMORY)
    truth = contaminated["truth"]
    rows = {r["url"]: r for r in ledger(out)}
    flagged = {u for u, r in rows.items() if r["reason"] == "contaminated"}
    assert flagged == set(truth)
    for url in flagged:
        assert rows[url]["stage"] == "kept" and rows[url]["score"] >= 1
        assert rows[url]["detail"].startswith(f"{truth[url][0]} item {truth[url][1]}: ")
    assert stats["flagged"] == {"contaminated": len(flagged)}
    assert stats["stages"]["decontamination"]["dropped"] == {}
    column = {r["url"]: r["contamination_ngrams"] for r in shards(out)}
    assert all(column[u] >= 1 for u in flagged)


def test_page_words_and_ngrams_equal_the_drivers():
    """The index is built by plain Python in the driver and looked up by compiled code in the workers: the same
    words and n-gram hashes for real text (WikiText-2, AG News) and the characters normalization touches."""
    texts = gzip.open(shared_path("data", "wikitext2_test", "wiki.test.raw.gz"), "rt").read().split("\n")[:400]
    texts += [
        "The \u201cquick\u201d brown fox\u2014jumped_over  the lazy dog's back!", "\ufb01ne \u2460 \uff21\uff22 \u00bd",
        "\u039f\u0394\u039f\u03a3 \u0130stanbul \u00dfeta", "\u0663\u0664 12,345.67 caf\u00e9 cafe\u0301",
        "\u4e2d\u6587\u5b57 \U0001f600 emoji", "", "   ", "a\u00a0b\u2003c\td\ne",
    ]
    for text in texts:
        words = item_word_hashes(text)
        assert np.array_equal(words, page_word_hashes(text)), repr(text)
        for n in (1, 8, 13):
            assert np.array_equal(gram_hashes(words, n), page_gram_hashes(words, n)), (repr(text), n)


def _index(tmp_path: Path, rows: list[dict], **kw):
    source = tmp_path / "items.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = {"ngram": 13, "min_item_words": 8, "min_matches": 1} | kw
    return build_index([str(source)], ["question"], **settings)


QUESTION = ("Which of the following best describes the role of the mitochondria in a eukaryotic cell, "
            "according to the standard model taught in introductory biology courses?")


def test_a_re_laid_out_item_matches_and_its_passage_is_quoted(tmp_path):
    index, (summary,) = _index(tmp_path, [{"question": QUESTION}])
    assert summary.items == summary.indexed == 1 and summary.ngrams == len(QUESTION.split()) - 12
    laid_out = ("Quiz 4.\n\nWHICH of the following  best describes\nthe role of the \u201cmitochondria\u201d in a "
                "eukaryotic cell \u2013 according to the standard model taught in introductory biology courses ?\n"
                "Answer below.")
    found = index.match(laid_out)
    assert found is not None and found.best == (0, summary.ngrams)
    assert found.passage.startswith("WHICH of the following best describes the role of the \u201cmitochondria\u201d")
    assert found.passage.endswith("introductory biology courses")
    assert index.match(QUESTION.replace("mitochondria", "ribosome")[:60] + " and more words") is None


def test_short_items_are_one_ngram_or_left_out_and_min_matches_counts_per_item(tmp_path):
    rows = [{"question": "Yes."}, {"question": "Paris is the capital city of France, is it not?"},
            {"question": QUESTION}]
    index, (summary,) = _index(tmp_path, rows, min_matches=3)
    assert (summary.items, summary.indexed, summary.too_short) == (3, 2, 1)
    assert index.match("yes") is None
    # 10 words: one 10-gram, matched whole (min_matches 3 asks at most the item's one n-gram) ...
    found = index.match("Some say: paris is the capital city of France; is it not? Indeed.")
    assert found is not None and index.describe(found.best[0])[1] == 1
    assert index.match("Paris is the capital city of France, is it") is None  # ... and only whole
    # A long item needs 3 of its n-grams: 14 of its words are two, 15 are three.
    words = QUESTION.split()
    assert index.match(" ".join(words[:14])) is None
    assert index.match(" ".join(words[:15])).best == (1, 3)


def test_sources_name_their_items_by_line_or_row(tmp_path):
    txt = tmp_path / "lines.txt"
    txt.write_text("first line\n\nthird line\n")
    assert read_items(str(txt), ["text"])[1] == [Item(0, ("first line",)), Item(2, ("third line",))]
    table = pa.table({"question": ["a b", None, "c"], "choices": [["x", "y"], ["z"], None]})
    pq.write_table(table, tmp_path / "q.parquet")
    _sha, items = read_items(str(tmp_path / "q.parquet"), ["question", "choices"])
    assert items == [Item(0, ("a b", "x", "y")), Item(1, ("z",)), Item(2, ("c",))]


@pytest.mark.parametrize(("name", "content", "says"), [
    ("missing.jsonl", None, "'{path}' matches no file"),
    ("empty.jsonl", "", "{path}: empty (no items)"),
    ("fields.jsonl", '{"question": "' + QUESTION + '"}\n{"prompt": "x"}\n', "{path} line 2: none of the text fields"),
    ("broken.jsonl", '{"question": "a"\n', "{path} line 1: not JSON"),
    ("short.txt", "Yes.\nNo.\n", "{path}: none of its 2 items has 8 words"),
    ("columns.parquet", "parquet", "{path}: none of the text fields ['question']"),
    ("items.csv", "question\nx\n", "{path}: not a benchmark file this reads"),
])
def test_a_bad_source_stops_the_run_at_start_naming_the_file(demo_crawl, tmp_path, capsys, name, content, says):
    path = tmp_path / name
    if content == "parquet":
        pq.write_table(pa.table({"prompt": ["x"]}), path)
    elif content is not None:
        path.write_text(content)
    config = tmp_path / "r.toml"
    config.write_text(f'[decontamination]\nenabled = true\nsources = ["{path}"]\ntext_fields = ["question"]\n')
    out = tmp_path / "o"
    assert run_pipeline.main(["--input", demo_crawl[0], "--output", str(out), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tokenmill: decontamination.sources: ")
    assert says.format(path=path) in err[0], err[0]
    assert not out.exists()
    with pytest.raises(SourceError):
        build_index([str(path)], ["question"], ngram=13, min_item_words=8, min_matches=1)


def test_an_enabled_stage_without_sources_is_a_recipe_error(tmp_path):
    from schemas.recipe import RecipeError, recipe_from_dict

    with pytest.raises(RecipeError, match="names no benchmark file"):
        recipe_from_dict({"decontamination": {"enabled": True}})
    with pytest.raises(RecipeError, match="must be 'drop' or 'flag'"):
        recipe_from_dict({"decontamination": {"action": "remove"}})


def test_the_index_is_loaded_once_per_worker_process(tmp_path):
    """Two copies of the step in one process, unpickled as a runner gives them to its threads, share one index."""
    import pickle

    from pipelines.decontaminate import _Decontaminate
    from schemas.recipe import recipe_from_dict

    index, _ = _index(tmp_path, [{"question": QUESTION}])
    path = tmp_path / "index.npz"
    path.write_bytes(index.to_bytes())
    recipe = recipe_from_dict({"decontamination": {"enabled": True, "sources": ["unused.jsonl"]}})
    step = pickle.dumps(_Decontaminate(recipe, str(path)))
    first, second = pickle.loads(step), pickle.loads(step)
    first.setup()
    second.setup()
    assert first.index is second.index and np.array_equal(first.index.hashes, index.hashes)
