"""Per-filter keep/drop agreement with the peer (datatrove's FineWeb filters) on the same extracted texts.

    python bench/parity_datatrove.py [--docs 2500] [--keep DIR] [--peer-venv DIR] [--peer-version 0.10.1]

1. Builds a crawl with ../shared/tools/make_bench_warc.py (or reuses --keep DIR/crawl).
2. Extracts every HTML page with our extractor and labels its language; keeps English (lid >= 0.65), as
   FineWeb's filters only ever see English text.
3. Runs each filter independently on the same text, ours in this process and datatrove's in a separate
   virtualenv (a benchmark-only dependency, installed on first use with spaCy for its English word
   splitting): Gopher repetition, Gopher quality, C4 quality (FineWeb's settings), FineWeb quality.
4. Prints, per filter, the share of documents where both make the same keep/drop decision, and the most
   frequent disagreements by (our reason, their reason). Goal: >= 97 % per filter.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_crawl  # noqa: E402
from classifiers.language import LanguageIdentifier  # noqa: E402
from filters.c4 import C4Filter  # noqa: E402
from filters.fineweb import FineWebFilter  # noqa: E402
from filters.gopher import GopherQualityFilter, GopherRepetitionFilter  # noqa: E402
from ingest.decode import decode_body  # noqa: E402
from ingest.extract import extract_main_text  # noqa: E402
from ingest.warc import read_warc, triage  # noqa: E402
from schemas.recipe import load_recipe  # noqa: E402
from schemas.records import Document, Record, RecordMeta  # noqa: E402

PEER_SCRIPT = r'''
import json, sys
from datatrove.data import Document
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
filters = {
    "gopher_repetition": GopherRepetitionFilter(),
    "gopher_quality": GopherQualityFilter(),
    "c4": C4QualityFilter(filter_no_terminal_punct=False),
    "fineweb": FineWebQualityFilter(None),  # exclusion_writer is positional in datatrove 0.2
}
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as dst:
    for line in src:
        row = json.loads(line)
        out = {"id": row["id"]}
        for name, f in filters.items():
            result = f.filter(Document(text=row["text"], id=row["id"]))
            out[name] = "" if result is True else (result[1] if isinstance(result, tuple) else "dropped")
        dst.write(json.dumps(out) + "\n")
'''


def ensure_peer(venv: Path, version: str) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # spaCy for its English word splitting; the WARC reader's and writer's extras; lxml_html_clean, without
        # which its trafilatura cannot import and every page silently becomes a 1-second timeout.
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"datatrove[processing]=={version}", "spacy",
                        "lxml_html_clean", "faust-cchardet", "python-magic", "warcio", "orjson"], check=True)
    return python


def extracted_english(crawl: Path, limit: int) -> list[tuple[str, str]]:
    recipe = load_recipe("fineweb")
    lid = LanguageIdentifier()
    out = []
    for path in sorted(crawl.glob("*.warc.gz")):
        with open(path, "rb") as f:
            for rec in read_warc(f, str(path)):
                if not isinstance(rec, Record) or triage(rec, recipe.read) is not None:
                    continue
                page, _ = decode_body(rec.body, rec.content_type)
                text = extract_main_text(page, rec.url, recipe.extract).text
                if not text:
                    continue
                ((lang, score),) = lid.predict([text])
                if lang == "en" and score >= 0.65:
                    out.append((rec.doc_id, text))
                if len(out) >= limit:
                    return out
    return out


def ours(texts: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    recipe = load_recipe("fineweb")
    filters = {
        "gopher_repetition": GopherRepetitionFilter(recipe.filters.gopher_repetition),
        "gopher_quality": GopherQualityFilter(recipe.filters.gopher_quality),
        # The same rule with datatrove >= 0.3's alpha-ratio denominator, to show what the one change explains.
        "gopher_quality_punct": GopherQualityFilter(
            dataclasses.replace(recipe.filters.gopher_quality, alpha_ratio_counts_punctuation=True)),
        "c4": C4Filter(recipe.filters.c4),
        "fineweb": FineWebFilter(recipe.filters.fineweb),
    }
    result = {}
    for doc_id, text in texts:
        row = {}
        for name, flt in filters.items():
            doc = Document(doc_id=doc_id, source="", url="", warc_record_id="", crawl_date="",
                           meta=RecordMeta(0, "response", 200, ""), text=text, language="en", language_score=1.0)
            decision = flt(doc)
            row[name] = decision.reason if decision else ""
        result[doc_id] = row
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--keep", default=None, help="reuse/keep the crawl in DIR/crawl")
    ap.add_argument("--peer-venv", default=str(REPO / ".bench-venvs" / "datatrove"))
    ap.add_argument("--peer-version", default="0.10.1")
    ap.add_argument("--json", default=None, help="also write the per-document decisions here")
    args = ap.parse_args()

    root = Path(args.keep or tempfile.mkdtemp(prefix="tokenmill-parity-"))
    crawl = bench_crawl(root / "crawl", args.docs)
    texts = extracted_english(crawl, args.docs)
    peer_python = ensure_peer(Path(args.peer_venv), args.peer_version)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, script = Path(tmp, "in.jsonl"), Path(tmp, "out.jsonl"), Path(tmp, "peer.py")
        src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in texts))
        script.write_text(PEER_SCRIPT)
        subprocess.run([str(peer_python), str(script), str(src), str(dst)], check=True)
        theirs = {row["id"]: row for row in map(json.loads, dst.read_text().splitlines())}
    mine = ours(texts)

    print(f"{len(texts)} English documents (lid >= 0.65) extracted from {crawl}")
    print(f"{'filter':20s} {'agree':>8s} {'we drop':>8s} {'they drop':>10s}   top disagreements (ours / theirs)")
    report = {}
    for name in ("gopher_repetition", "gopher_quality", "gopher_quality_punct", "c4", "fineweb"):
        peer = name.removesuffix("_punct")
        same = sum(bool(mine[i][name]) == bool(theirs[i][peer]) for i in mine)
        diff = Counter((mine[i][name] or "keep", theirs[i][peer] or "keep") for i in mine
                       if bool(mine[i][name]) != bool(theirs[i][peer]))
        we = sum(bool(mine[i][name]) for i in mine)
        they = sum(bool(theirs[i][peer]) for i in mine)
        top = ", ".join(f"{a}/{b}: {n}" for (a, b), n in diff.most_common(4))
        print(f"{name:20s} {same / len(mine):8.1%} {we:8d} {they:10d}   {top}")
        report[name] = {"agreement": same / len(mine), "we_drop": we, "they_drop": they,
                        "disagreements": {f"{a}/{b}": n for (a, b), n in diff.most_common()}}
    if args.json:
        Path(args.json).write_text(json.dumps({"report": report, "ours": mine, "theirs": theirs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
