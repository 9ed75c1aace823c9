"""Build a crawl of any size from text the project writes itself, with planted duplicates and a truth file.

The demo crawl (demo/crawl.py) is 18 records; the tests of dedup, release, the reader and mixtures want a few
hundred pages with known duplicates, and a fresh clone has no data folder to make them from. This builds one
the way `../shared/tools/make_bench_warc.py` builds its crawl from real pages: warcinfo, request and metadata
records, 404s, redirects, images and PDFs beside the HTML, and among the pages

  page     - a new article (seeded English prose, demo/prose.py, in a site's boilerplate)
  exact    - an earlier page's body served again under another URL (a mirror)
  near     - an earlier page with a small edit (a sentence changed, a paragraph dropped, a line added)
  short    - a page of one or two sentences (Gopher's minimum length drops it)
  menu     - a page of link names without punctuation (FineWeb's and C4's line rules drop it)
  repeat   - one paragraph said over and over (Gopher's repetition rules and FineWeb's duplicate lines drop it)
  echo     - paragraphs that reuse each other's sentences, no two lines alike (Gopher's duplicate n-gram rules
             drop it; FineWeb's and C4's line rules keep it)
  code     - an article with a line of code in curly brackets (C4's bracket rule drops it; Gopher keeps it)
  foreign  - a German or French article from the demo crawl, each once (a recipe keeping English drops it)

truth.jsonl has one row per HTML response: record id, URL, family (the page it derives from), kind. Two
documents are planted duplicates when they share a family. Everything follows from the seed: the same seed and
sizes give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import os
import random

from demo.crawl import ARTICLES, page
from demo.prose import Prose
from demo.warc_writer import WarcWriter

# Shares of the HTML pages by kind; the rest are new articles.
KIND_SHARES = {"exact": 0.07, "near": 0.08, "short": 0.04, "menu": 0.03, "repeat": 0.03, "echo": 0.03,
               "code": 0.03, "foreign": 0.02}


def _near_copy(paragraphs: list[str], prose: Prose, rng: random.Random) -> list[str]:
    """An edit small enough that the copy stays a near duplicate (word 5-gram Jaccard well above 0.8)."""
    edited = list(paragraphs)
    how = rng.choice(["sentence", "drop", "line"] if len(edited) >= 6 else ["sentence", "line"])
    if how == "drop":
        del edited[rng.randrange(len(edited))]
    elif how == "sentence":
        k = rng.randrange(len(edited))
        sentences = edited[k].split(". ")
        sentences[rng.randrange(len(sentences))] = prose.sentence().rstrip(".")
        edited[k] = ". ".join(sentences).rstrip(".") + "."
    else:
        edited.append(f"This article was updated on {rng.randint(1, 28)} March {rng.randint(2015, 2025)}.")
    return edited


def build_bench_crawl(out_dir: str, docs: int = 300, shards: int = 2, seed: int = 0) -> list[str]:
    """Write crawl-K.warc.gz (K < shards) and truth.jsonl into out_dir; return the WARC paths."""
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(f"tokenmill-bench-crawl/{seed}")
    prose = Prose(seed)
    first = max(1, docs // 10)  # new articles first, so that the first copy has something to copy
    kinds = [kind for kind, share in KIND_SHARES.items() for _ in range(round(share * docs))][: docs - first]
    kinds += ["page"] * (docs - first - len(kinds))
    rng.shuffle(kinds)
    kinds = ["page"] * first + kinds
    writers, files, paths = [], [], []
    for k in range(shards):
        path = os.path.join(out_dir, f"crawl-{k}.warc.gz")
        files.append(open(path, "wb"))  # noqa: SIM115 - closed below, one per shard
        writers.append(WarcWriter(files[-1], seed=f"bench-{seed}-{k}"))
        writers[-1].warcinfo("software: tokenmill bench crawl")
        paths.append(path)
    foreign = [a for a in ARTICLES if a[0] != "en"]
    articles: list[tuple[str, str, list[str], str]] = []  # family, title, paragraphs, language
    truth = []
    for i, kind in enumerate(kinds):
        w = writers[rng.randrange(shards)]
        site = f"site{rng.randrange(40)}.example"
        url = f"https://{site}/{kind}/{i}"
        lang = "en"
        if kind in ("exact", "near") and articles:
            family, title, paragraphs, lang = rng.choice(articles)
            if kind == "near":
                paragraphs = _near_copy(paragraphs, prose, rng)
            body = page(title, paragraphs, lang, site if kind == "near" else "mirror.example")
        else:
            family = f"f{i}"
            if kind == "foreign" and foreign:  # each once: a second copy would be an unplanted duplicate
                lang, title, paragraphs = foreign.pop(rng.randrange(len(foreign)))
            elif kind == "short":
                title, paragraphs = prose.title(), [prose.sentence()]
            elif kind == "menu":
                title, paragraphs = prose.title(), ["\n".join(prose.words(rng.randint(12, 30)))]
            elif kind == "echo":
                title, said = prose.title(), [prose.sentence() for _ in range(6)]
                paragraphs = [" ".join(said[(k + j) % 6] for j in range(4)) for k in range(rng.randint(6, 9))]
            elif kind == "code":
                title, paragraphs = prose.title(), prose.paragraphs()
                paragraphs.insert(1, f'The settings file reads {{"{prose.words(1)[0].lower()}": {rng.randint(1, 9)}}} '
                                     "and nothing else.")
            elif kind == "repeat":
                title, line = prose.title(), prose.paragraph()
                paragraphs = [line] * rng.randint(8, 15)
            else:
                kind = "page"
                title, paragraphs = prose.title(), prose.paragraphs()
                articles.append((family, title, paragraphs, lang))
            body = page(title, paragraphs, lang, site)
        w.request(url)
        record_id = w.response(url, body)
        w.metadata(url, f"fetchTimeMs: {rng.randint(50, 900)}")
        truth.append({"record_id": record_id, "url": url, "family": family, "kind": kind})
        if rng.random() < 0.05:
            extra = rng.choice(["404", "301", "png", "pdf"])
            if extra == "404":
                w.response(f"https://{site}/gone/{i}", b"<html><body>Not found</body></html>", status=404)
            elif extra == "301":
                w.response(f"https://{site}/old/{i}", b"", status=301, extra_headers={"Location": url})
            elif extra == "png":
                w.response(f"https://{site}/img/{i}.png", b"\x89PNG\r\n\x1a\n" + bytes(64), content_type="image/png")
            else:
                w.response(f"https://{site}/doc/{i}.pdf", b"%PDF-1.4\n%bench\n", content_type="application/pdf")
    for f in files:
        f.close()
    with open(os.path.join(out_dir, "truth.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in truth)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write crawl-K.warc.gz and truth.jsonl into")
    parser.add_argument("--docs", type=int, default=300, help="HTML pages (default: %(default)s)")
    parser.add_argument("--shards", type=int, default=2, help="WARC files (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same files (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in build_bench_crawl(args.out, args.docs, args.shards, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
