"""The physical limit of a run: stock trafilatura's CPU time on the pages a run must extract.

    python bench/extract_floor.py --crawl DIR [--config fineweb] [--limit N]

Every page that passes triage and the language precheck (the cheap-first cascade, as the pipeline decides it)
must go through trafilatura; no change outside extraction can make a run cheaper than that. This selects those
pages with tokenmill's own read, decode and precheck, then times `trafilatura.extract` on each of them in a
child process that imports trafilatura as released (none of ingest/'s speedups, nothing of tokenmill on its
path), with the recipe's options (favor_precision, comments, tables, deduplicate, fast, metadata), one core, CPU time
(time.process_time, so another process on the machine does not count). Prints pages, CPU seconds, ms per page
and the floor of a run on N cores (CPU seconds / cores). bench/throughput.py and bench/compare_peer.py divide a
run's wall time by it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Runs in a child with only trafilatura: reads (url, html) lines, extracts each with the given options, prints
# {"pages", "cpu_seconds", "version"}. The first page is extracted once before the clock (imports, lazy tables).
STOCK = r'''
import json, sys, time
import trafilatura
pages_file, options = sys.argv[1], json.loads(sys.argv[2])
pages = [json.loads(line) for line in open(pages_file, encoding="utf-8")]
if pages:
    trafilatura.extract(pages[0][1], url=pages[0][0], **options)
start = time.process_time()
for url, html in pages:
    trafilatura.extract(html, url=url, **options)
print(json.dumps({"pages": len(pages), "cpu_seconds": time.process_time() - start,
                  "version": trafilatura.__version__}))
'''


def pages_to_extract(crawl: Path, recipe_name: str, limit: int | None = None) -> list[tuple[str, str]]:
    """(url, decoded HTML) of every page of the crawl's *.warc.gz (in name order) that reaches extraction under
    the recipe: past triage, and past the language precheck when the recipe runs it."""
    from classifiers.language import LanguageIdentifier
    from filters.language import precheck_reason
    from ingest.decode import decode_body
    from ingest.extract import quick_text
    from ingest.warc import read_warc, triage
    from schemas.recipe import load_recipe
    from schemas.records import Record

    try:
        from filters.language import runs_precheck
    except ImportError:  # a checkout before 952e528 (throughput.py --breakdown runs there too): its condition

        def runs_precheck(recipe) -> bool:
            lang = recipe.filters.language
            return "language" in recipe.filters.order and bool(lang.keep) and lang.precheck_margin > 0

    recipe = load_recipe(recipe_name)
    lang = recipe.filters.language
    lid = LanguageIdentifier() if runs_precheck(recipe) else None
    out: list[tuple[str, str]] = []
    for path in sorted(crawl.glob("*.warc.gz")):
        with open(path, "rb") as f:
            for rec in read_warc(f, str(path)):
                if not isinstance(rec, Record) or triage(rec, recipe.read) is not None:
                    continue
                page, _ = decode_body(rec.body, rec.content_type)
                if lid is not None:
                    ((best, _top),) = lid.best_of([quick_text(page)], lang.keep, lang.precheck_margin)
                    if precheck_reason(best, lang.keep, lang.precheck_margin) is not None:
                        continue
                out.append((rec.url, page))
                if limit is not None and len(out) >= limit:
                    return out
    return out


def stock_cpu(pages: list[tuple[str, str]], recipe_name: str, python: str = sys.executable) -> dict:
    """{"pages", "cpu_seconds", "version"}: stock trafilatura.extract over `pages`, one core, in a child."""
    from schemas.recipe import load_recipe

    ex = load_recipe(recipe_name).extract
    options = {"favor_precision": ex.favor_precision, "include_comments": ex.include_comments,
               "include_tables": ex.include_tables, "deduplicate": ex.deduplicate, "fast": ex.fast,
               "with_metadata": ex.with_metadata}
    with tempfile.TemporaryDirectory() as tmp:
        pages_file, script = Path(tmp, "pages.jsonl"), Path(tmp, "stock.py")
        with open(pages_file, "w", encoding="utf-8") as f:
            for url, html in pages:
                f.write(json.dumps([url, html]) + "\n")
        script.write_text(STOCK)
        # -I: isolated (no checkout, no PYTHONPATH, no user site): trafilatura as installed, nothing patched.
        done = subprocess.run([python, "-I", str(script), str(pages_file), json.dumps(options)], check=True,
                              capture_output=True, text=True, cwd=tmp)
    return json.loads(done.stdout.strip().splitlines()[-1])


def floor(crawl: Path, recipe_name: str, cores: int | None = None, limit: int | None = None) -> dict:
    """The floor of a run of `recipe_name` on `crawl`: stock extraction's CPU seconds over `cores` (default
    all of this machine's)."""
    pages = pages_to_extract(crawl, recipe_name, limit)
    stock = stock_cpu(pages, recipe_name)
    cores = cores or os.cpu_count() or 1
    return {**stock, "cores": cores, "ms_per_page": 1000 * stock["cpu_seconds"] / max(1, stock["pages"]),
            "floor_seconds": stock["cpu_seconds"] / cores}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crawl", required=True, help="folder of *.warc.gz (bench/common.bench_crawl builds one)")
    ap.add_argument("--config", default="fineweb")
    ap.add_argument("--limit", type=int, default=None, help="at most this many pages (default: all)")
    args = ap.parse_args()
    f = floor(Path(args.crawl), args.config, limit=args.limit)
    print(f"stock trafilatura {f['version']}: {f['pages']} pages past triage and the precheck, "
          f"{f['cpu_seconds']:.1f} CPU s = {f['ms_per_page']:.1f} ms a page; floor on {f['cores']} cores: "
          f"{f['floor_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
