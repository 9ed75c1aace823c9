"""The pipeline's text, decoded from its shards, against stock trafilatura with the same settings, on gold pages.

    python bench/extract_fidelity.py [--sets scrapinghub_aeb cleaneval] [--pages N] [--keep DIR]

What a user gets out of a run is the text in the shards: trafilatura in a child process with the speed patches,
comments and tables rendered by ingest/render.py, then tokenized. This writes the gold pages into a WARC file,
runs the whole pipeline on it (no filter drops a page; exact dedup runs) once per setting, decodes every shard
row's tokens back to text, and scores it per page (bag-of-words precision / recall / F1 against the full gold
text; a page the run did not keep scores 0) beside `trafilatura.extract(raw page, url=..., <same settings>)`
(favor_precision, include_comments, include_tables, fast, and deduplicate with a fresh cache per page).
Settings: the default recipe, and the default recipe with `include_comments = true, favor_precision = false`.
Goal: the pipeline's mean F1 >= 0.99 x stock's for both (tests/test_decode_extract.py checks it on 40 pages).
The gold sets were not used to tune extraction (the speed patches are checked on trafilatura_eval).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bag_f1, gold_pages  # noqa: E402

SETTINGS = {
    "default": "",
    "comments, recall": "[extract]\ninclude_comments = true\nfavor_precision = false\n",
}


def write_crawl(pages: list[tuple[str, bytes, dict]], path: Path) -> list[str]:
    """One WARC file of the pages as HTTP 200 responses; returns the URL written for each (made unique)."""
    from demo.warc_writer import WarcWriter

    urls = []
    with open(path, "wb") as f:
        writer = WarcWriter(f, seed="extract-fidelity")
        for i, (url, raw, _gold) in enumerate(pages):
            url = url if url.startswith("http") else f"https://gold.example/{i}"
            url = f"{url}{'&' if '?' in url else '?'}gold={i}"  # some gold sets repeat a URL
            urls.append(url)
            writer.response(url, raw, content_type="text/html")
    return urls


def pipeline_texts(crawl: Path, out: Path, recipe_text: str, runner: list[str]) -> dict[str, str]:
    """URL -> the text of its shard row, decoded from the tokens (end-of-text dropped)."""
    import pyarrow.parquet as pq

    from tokenization.tokenizers import Tokenizer

    recipe = out.with_suffix(".toml")
    recipe.write_text('name = "fidelity"\n' + recipe_text)
    subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--input", str(crawl), "--output", str(out),
                    "--config", str(recipe), *runner], check=True, capture_output=True)
    rows = pq.read_table(sorted((out / "shards").glob("*.parquet")), columns=["url", "tokens"]).to_pylist()
    tokenizer = Tokenizer("cl100k_base")
    return {r["url"]: tokenizer.decode([t for t in r["tokens"] if t != tokenizer.eos_id]) for r in rows}


def stock_text(raw: bytes, url: str, recipe_text: str) -> str:
    import tomllib

    import trafilatura
    from trafilatura.deduplication import LRUCache

    from schemas.recipe import recipe_from_dict

    extract = recipe_from_dict(tomllib.loads(recipe_text)).extract
    return trafilatura.extract(raw, url=url, favor_precision=extract.favor_precision,
                               include_comments=extract.include_comments, include_tables=extract.include_tables,
                               fast=extract.fast,
                               deduplicate=LRUCache(maxsize=4096) if extract.deduplicate else False) or ""


def compare(pages: list[tuple[str, bytes, dict]], root: Path, runner: list[str]) -> dict[str, dict[str, float]]:
    """Per setting: mean F1 of the pipeline and of stock trafilatura over `pages`, and the pages kept."""
    root.mkdir(parents=True, exist_ok=True)
    crawl = root / "gold.warc.gz"
    urls = write_crawl(pages, crawl)
    result = {}
    for name, recipe_text in SETTINGS.items():
        ours = pipeline_texts(crawl, root / name.replace(", ", "-"), recipe_text, runner)
        f_ours, f_stock = [], []
        for url, (_u, raw, gold) in zip(urls, pages, strict=True):
            f_ours.append(bag_f1(ours.get(url, ""), gold["text"])[2])
            f_stock.append(bag_f1(stock_text(raw, url, recipe_text), gold["text"])[2])
        result[name] = {"pipeline_f1": sum(f_ours) / len(pages), "stock_f1": sum(f_stock) / len(pages),
                        "kept": len(ours), "pages": len(pages)}
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["scrapinghub_aeb", "cleaneval"])
    ap.add_argument("--pages", type=int, default=0, help="first N pages of each set (0: all)")
    ap.add_argument("--keep", default=None)
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="tokenmill-fidelity-"))
    print(f"{'gold set':16s} {'setting':18s} {'pages':>5s} {'kept':>5s} {'pipeline F1':>11s} {'stock F1':>8s} "
          f"{'ratio':>6s}")
    for name in args.sets:
        pages = gold_pages(name)[: args.pages or None]
        for setting, r in compare(pages, root / name, ["--direct_num_workers=2"]).items():
            print(f"{name:16s} {setting:18s} {r['pages']:5d} {r['kept']:5d} {r['pipeline_f1']:11.3f} "
                  f"{r['stock_f1']:8.3f} {r['pipeline_f1'] / max(1e-9, r['stock_f1']):6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
