"""Extraction quality and cost per extract setting, on the 990 gold pages of trafilatura_eval; and the table
layouts (`extract.table_text`) on all three gold sets.

    python bench/extract_quality.py [--pages 990] [--config fineweb] [--tables-only]

Runs the pipeline's own extract_main_text (one process, no isolation) with the recipe's [extract] table
as is; as is with trafilatura as shipped (without ingest/boilerplate_xpath.py, ingest/readability_skip.py
and ingest.speedups.element_lookup), counting pages whose text differs (it must be 0); and with
`fast = true` (no readability/justext comparison). Prints per setting: ms per page and
snippet precision / recall / F1, scored as upstream scores it (a `with` snippet found in the output is a
true positive, a `without` snippet found is a false positive, a `with` snippet missing a false negative).
The page is decoded with our charset logic first, as the pipeline does.

Then, per gold set (trafilatura_eval: snippet scores as above; scrapinghub_aeb and cleaneval: mean per-page
bag-of-words precision / recall / F1 against the full gold text) and per `table_text` (blocks, rows, markdown),
with the recipe's other extract settings: the scores and how many pages' texts differ from "markdown"
(trafilatura 2's own table rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bag_f1, gold_pages  # noqa: E402
from ingest import speedups  # noqa: E402
from ingest.decode import decode_body  # noqa: E402
from ingest.extract import extract_main_text  # noqa: E402
from schemas.recipe import ExtractConfig, load_recipe  # noqa: E402


def snippet_scores(texts: list[str], golds: list[dict]) -> tuple[float, float, float]:
    """(precision, recall, F1) as upstream scores trafilatura_eval: a `with` snippet in the text is a true
    positive, one missing a false negative, a `without` snippet in the text a false positive."""
    tp = fp = fn = 0
    for text, gold in zip(texts, golds, strict=True):
        tp += sum(s in text for s in gold.get("with", []))
        fn += sum(s not in text for s in gold.get("with", []))
        fp += sum(s in text for s in gold.get("without", []))
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return precision, recall, 2 * precision * recall / max(1e-9, precision + recall)


def score(pages: list[tuple[str, str, dict]], config: ExtractConfig, texts: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    texts.extend(extract_main_text(page, url, config).text for url, page, _gold in pages)
    ms = 1000 * (time.perf_counter() - start) / len(pages)
    precision, recall, f1 = snippet_scores(texts, [gold for _url, _page, gold in pages])
    return {"ms_per_page": ms, "precision": precision, "recall": recall, "f1": f1}


def tables(config: ExtractConfig) -> None:
    """Scores per gold set and table_text (see the module docstring)."""
    print(f"{'gold set':16s} {'table_text':10s} {'pages':>5s} {'precision':>9s} {'recall':>7s} {'F1':>6s}  changed")
    for name in ("trafilatura_eval", "scrapinghub_aeb", "cleaneval"):
        pages = [(url, decode_body(raw, "text/html")[0], gold) for url, raw, gold in gold_pages(name)]
        texts = {}
        for mode in ("markdown", "blocks", "rows"):
            setting = dataclasses.replace(config, table_text=mode)
            texts[mode] = [extract_main_text(page, url, setting).text for url, page, _ in pages]
            if name == "trafilatura_eval":
                p, r, f = snippet_scores(texts[mode], [gold for _url, _page, gold in pages])
            else:
                scores = [bag_f1(text, gold["text"]) for text, (_, _, gold) in zip(texts[mode], pages, strict=True)]
                p, r, f = (sum(x) / len(scores) for x in zip(*scores, strict=True))
            changed = sum(a != b for a, b in zip(texts[mode], texts["markdown"], strict=True))
            print(f"{name:16s} {mode:10s} {len(pages):5d} {p:9.3f} {r:7.3f} {f:6.3f}  {changed}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=990)
    ap.add_argument("--config", default="fineweb", help="recipe whose [extract] table is measured")
    ap.add_argument("--tables-only", action="store_true", help="only the table_text comparison")
    args = ap.parse_args()
    if args.tables_only:
        tables(load_recipe(args.config).extract)
        return 0
    pages = [(url, decode_body(raw, "text/html")[0], entry)
             for url, raw, entry in gold_pages("trafilatura_eval")[: args.pages]]
    base = load_recipe(args.config).extract
    extract_main_text(pages[0][1], pages[0][0], base)  # imports and warm-up outside the timing
    print(f"{len(pages)} pages of trafilatura_eval, recipe {args.config}")
    fast = dataclasses.replace(base, fast=True)
    texts: dict[str, list[str]] = {}
    settings = (("as recipe", base, False), ("as shipped", base, True), ("fast = true", fast, False))
    for name, config, as_shipped in settings:
        speedups.ENABLED = not as_shipped
        if as_shipped:
            speedups.uninstall()
        r = score(pages, config, texts.setdefault(name, []))
        print(f"{name:12s} {r['ms_per_page']:6.1f} ms/page  precision {r['precision']:.3f}  recall "
              f"{r['recall']:.3f}  F1 {r['f1']:.3f}")
    differ = sum(a != b for a, b in zip(texts["as recipe"], texts["as shipped"], strict=True))
    print(f"pages whose text differs with trafilatura as shipped: {differ} of {len(pages)}")
    speedups.ENABLED = True
    tables(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
