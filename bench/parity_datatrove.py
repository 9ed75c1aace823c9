"""Whole runs, ours and the peer's, on the same WARC files: which documents each keeps, and why they differ.

    python bench/parity_datatrove.py [--docs 2500] [--keep DIR] [--peer-venv DIR] [--peer-version 0.10.1]
                                     [--json FILE] [--per-filter] [--shipped-only]

1. Builds a crawl with ../shared/tools/make_bench_warc.py (or reuses --keep DIR/crawl).
2. Runs the peer as shipped (bench/peer.py: datatrove's FineWeb pipeline, trafilatura 1.11; a peer run already
   in --keep DIR/peer is reused), with its filters writing what they drop: documents kept after its filters
   (filtered/), after its MinHash dedup (deduped/), and each drop's filter and reason.
3. Runs ours with `--config fineweb` as shipped, then once per recipe choice that FineWeb as built and datatrove
   today (or trafilatura 1.11 and 2.3) answer differently, with that one value changed, to count what the choice
   costs in agreement: the Gopher alpha-ratio denominator, the table layout, the survivor rule.
4. Matches documents by WARC-Record-ID. After the filters: ours = documents that reached exact dedup; the
   peer's = its filtered output. After dedup: ours = the shards; the peer's = its deduped output. Prints each
   run's kept-set Jaccard (|both| / |either|) at both points.
5. Names every disagreement of the shipped recipe after the filters: which side keeps it, our reason, the peer's
   (filter:reason), and the cause:
   - extraction: our filters, run on the peer's extracted text, reach the peer's decision (the two trafilatura
     releases wrote different text);
   - filter: they do not (a rule or a threshold differs);
   - url lists: the peer's URL filter dropped it (datatrove ships block lists; the recipe has none);
   - peer extracted nothing: the peer's trafilatura returned no text, so the page never reached its filters.
6. Like for like (issue 39): ours on the peer's own extracted text, every document its text filters saw written
   as WET conversion records with the same record ids, `fineweb` with dedup off (and with the alpha-ratio
   option): the kept-set Jaccard against the peer's filtered set on those documents, and every disagreement by
   both sides' reasons. Extraction plays no part here, so what differs is the filters.
`--per-filter` also prints the older figure: each filter on the same extracted text on both sides (a unit-level
check; it cannot see differences in extraction).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import gzip
import json
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_crawl  # noqa: E402
from bench.peer import ensure_peer, run_peer  # noqa: E402
from schemas.recipe import to_toml  # noqa: E402

# (label, recipe value changed from the shipped fineweb recipe, what the value follows)
VARIANTS = [
    ("fineweb as shipped", {}, ""),
    ("alpha ratio over all tokens", {"filters": {"gopher_quality": {"alpha_ratio_counts_punctuation": True}}},
     "datatrove >= 0.3; FineWeb was built with 0.2's, over words"),
    ("tables as trafilatura 2 rows", {"extract": {"table_text": "markdown"}}, "trafilatura 2.3 as shipped"),
    ("tables as trafilatura 1.11 rows", {"extract": {"table_text": "rows"}}, "trafilatura 1.11's writer"),
    ("survivor = smallest id", {"dedup": {"survivor": "smallest_id"}}, "tokenmill's default rule"),
]


def _merged(base: dict, change: dict) -> dict:
    out = dict(base)
    for key, value in change.items():
        out[key] = _merged(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_ours(crawl: Path, out: Path, change: dict) -> None:
    base = tomllib.loads((REPO / "schemas" / "builtin_recipes" / "fineweb.toml").read_text())
    recipe = out.with_suffix(".toml")
    recipe.write_text(to_toml(_merged(base, change)))
    subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--input", f"{crawl}/*.warc.gz", "--output",
                    str(out), "--config", str(recipe), "--direct_num_workers=2"], check=True, capture_output=True)


def our_sets(out: Path) -> tuple[set[str], set[str], dict[str, str]]:
    """(after the filters, after dedup, record id -> our ledger reason)."""
    import pyarrow.parquet as pq

    rows = pq.read_table(sorted((out / "ledger").glob("*.parquet")),
                         columns=["stage", "reason", "warc_record_id"]).to_pylist()
    after_filters = {r["warc_record_id"] for r in rows if r["stage"] in ("kept", "exact_dedup", "near_dedup")}
    kept = {r["warc_record_id"] for r in rows if r["stage"] == "kept"}
    return after_filters, kept, {r["warc_record_id"]: r["reason"] or r["stage"] for r in rows}


def _jsonl(folder: Path) -> dict[str, dict]:
    docs = {}
    for path in sorted(glob.glob(f"{folder}/*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                doc = json.loads(line)
                docs[doc["id"]] = doc
    return docs


def peer_sets(out: Path) -> tuple[dict[str, dict], set[str], dict[str, str], dict[str, str], dict[str, str]]:
    """(filtered documents by record id, deduped record ids, record id -> "filter:reason" of each drop, record id
    -> extracted text of every document the peer's text filters saw, record id -> its URL)."""
    filtered = _jsonl(out / "filtered")
    why, texts = {}, {i: d["text"] for i, d in filtered.items()}
    urls = {i: d["metadata"].get("url", "") for i, d in filtered.items()}
    for folder in sorted((out / "removed").iterdir()):
        for i, doc in _jsonl(folder).items():
            why[i] = f"{folder.name}:{doc['metadata'].get('filter_reason')}"
            if folder.name != "url":
                texts[i] = doc["text"]
                urls[i] = doc["metadata"].get("url", "")
    return filtered, set(_jsonl(out / "deduped")), why, texts, urls


# The like-for-like measurement's recipes: ours on the peer's own extracted text, dedup off on our side (the
# peer's kept set there is its filters' output, before its dedup).
DEDUP_OFF = {"dedup": {"exact": {"enabled": False}, "near": {"enabled": False}}}
LIKE_FOR_LIKE = [
    ("fineweb as shipped", {}),
    ("alpha ratio over all tokens", {"filters": {"gopher_quality": {"alpha_ratio_counts_punctuation": True}}}),
]


def like_for_like(root: Path, peer_after: set[str], peer_why: dict[str, str], peer_texts: dict[str, str],
                  peer_urls: dict[str, str]) -> dict:
    """Our recipe on the peer's extracted texts: every document the peer's text filters saw, written as WET
    conversion records with the same record ids (what a user comparing the two filters would feed ours), run
    with dedup off; our kept set against the peer's filtered set on those documents, and every disagreement
    by our reason and the peer's."""
    from demo.warc_writer import WarcWriter

    wet = root / "peer-texts"
    wet.mkdir(parents=True, exist_ok=True)
    with open(wet / "peer-texts.warc.gz", "wb") as f:
        writer = WarcWriter(f, seed="peer-texts")
        for rid in sorted(peer_texts):
            writer.conversion(peer_urls.get(rid, ""), peer_texts[rid], record_id=rid)
    universe = set(peer_texts)
    peer_keep = peer_after & universe
    out: dict = {"documents": len(universe), "peer_kept": len(peer_keep), "runs": {}}
    print(f"\nlike for like: ours on the peer's extracted text of the {len(universe)} documents its text filters "
          f"saw (WET records, dedup off); the peer keeps {len(peer_keep)}")
    for label, change in LIKE_FOR_LIKE:
        run_dir = root / ("like-" + label.replace(" ", "-"))
        run_ours(wet, run_dir, _merged(change, DEDUP_OFF))
        after, _kept, why = our_sets(run_dir)
        ours = after & universe
        jaccard = len(ours & peer_keep) / max(1, len(ours | peer_keep))
        classes: Counter = Counter()
        for rid in ours ^ peer_keep:
            ours_keep = rid in ours
            classes[("ours" if ours_keep else "peer", "keep" if ours_keep else why.get(rid, "?"),
                     "keep" if rid in peer_keep else peer_why.get(rid, "?"))] += 1
        print(f"  {label:30s} we keep {len(ours):5d}, the peer {len(peer_keep):5d}, both {len(ours & peer_keep):5d}: "
              f"Jaccard {jaccard:.3f}")
        for (side, mine, theirs), n in classes.most_common():
            print(f"    kept by {side:5s} ours {mine:28s} peer {theirs:40s} {n:5d}")
        out["runs"][label] = {"ours": len(ours), "both": len(ours & peer_keep), "jaccard": jaccard,
                              "disagreements": [dict(zip(("kept_by", "ours", "peer"), k, strict=True), documents=n)
                                                for k, n in classes.most_common()]}
    return out


def our_decision_on(texts: dict[str, str]) -> dict[str, str]:
    """Our fineweb recipe's text filters (language ID included) on given texts: record id -> reason or "keep"."""
    from classifiers.language import LanguageIdentifier
    from filters.registry import apply_filters, build_filters
    from schemas.recipe import load_recipe
    from schemas.records import Document, RecordMeta

    filters = [f for f in build_filters(load_recipe("fineweb")) if f.needs_text]
    lid = LanguageIdentifier()
    out = {}
    for rid, text in texts.items():
        doc = Document(doc_id=rid, source="", url="", warc_record_id=rid, crawl_date="",
                       meta=RecordMeta(0, "response", 200, ""), text=text)
        ((doc.language, doc.language_score),) = lid.predict([text])
        decision = apply_filters(filters, doc)
        out[rid] = decision.reason if decision else "keep"
    return out


def disagreements(ours_after: set[str], our_why: dict[str, str], peer_kept: set[str], peer_why: dict[str, str],
                  peer_texts: dict[str, str]) -> Counter:
    """(side that keeps it, our reason, the peer's, cause) -> documents, after the filters."""
    mine_on_theirs = our_decision_on({i: peer_texts[i] for i in (ours_after ^ peer_kept) if i in peer_texts})
    classes: Counter = Counter()
    for rid in sorted(ours_after ^ peer_kept):
        ours_keep = rid in ours_after
        theirs = "keep" if rid in peer_kept else peer_why.get(rid, "")
        if theirs.startswith("url:"):
            cause = "url lists"
        elif rid not in peer_texts:
            cause, theirs = "peer extracted nothing", "no text"
        else:
            cause = "extraction" if (mine_on_theirs[rid] == "keep") == (not ours_keep) else "filter"
        classes[("ours" if ours_keep else "peer", "keep" if ours_keep else our_why.get(rid, "?"), theirs, cause)] += 1
    return classes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2500)
    ap.add_argument("--keep", default=None, help="reuse/keep the crawl and the runs in DIR")
    ap.add_argument("--peer-venv", default=str(REPO / ".bench-venvs" / "datatrove"))
    ap.add_argument("--peer-version", default="0.10.1")
    ap.add_argument("--json", default=None, help="also write the figures and every disagreement here")
    ap.add_argument("--per-filter", action="store_true", help="also the per-filter agreement on the same texts")
    ap.add_argument("--shipped-only", action="store_true", help="only the shipped recipe, no variants")
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="tokenmill-parity-"))
    crawl = bench_crawl(root / "crawl", args.docs)
    if not (root / "peer" / "deduped").is_dir() or not args.keep:  # a kept peer run is reused
        run_peer(ensure_peer(Path(args.peer_venv), args.peer_version), crawl, root / "peer", removed=True)
    filtered, peer_deduped, peer_why, peer_texts, peer_urls = peer_sets(root / "peer")
    peer_after = set(filtered)

    def jaccard(a: set[str], b: set[str]) -> float:
        return len(a & b) / max(1, len(a | b))

    report: dict = {"crawl": str(crawl), "runs": {}}
    print(f"crawl: {crawl}; peer: datatrove {args.peer_version} FineWeb pipeline as shipped")
    print(f"{'run':33s} {'after the filters: ours / peer / both / Jaccard':>49s}   {'after dedup':>30s}   follows")
    shipped = None
    for label, change, follows in VARIANTS[:1] if args.shipped_only else VARIANTS:
        out = root / ("ours-" + label.replace(" ", "-").replace("=", ""))
        run_ours(crawl, out, change)
        after, kept, why = our_sets(out)
        shipped = shipped or (after, why)
        j1, j2 = jaccard(after, peer_after), jaccard(kept, peer_deduped)
        print(f"{label:33s} {len(after):17d} / {len(peer_after):4d} / {len(after & peer_after):4d} / {j1:.3f}   "
              f"{len(kept):6d} / {len(peer_deduped):4d} / {len(kept & peer_deduped):4d} / {j2:.3f}   {follows}")
        report["runs"][label] = {"change": change, "after_filters": [len(after), len(peer_after), j1],
                                 "after_dedup": [len(kept), len(peer_deduped), j2]}
    classes = disagreements(shipped[0], shipped[1], peer_after, peer_why, peer_texts)
    print(f"\ndisagreements after the filters, fineweb as shipped ({sum(classes.values())}):")
    print(f"{'kept by':8s} {'our reason':24s} {'peer (filter:reason)':40s} {'cause':22s} {'docs':>5s}")
    by_cause: Counter = Counter()
    for (side, mine, theirs, cause), n in classes.most_common():
        by_cause[cause] += n
        print(f"{side:8s} {mine:24s} {theirs:40s} {cause:22s} {n:5d}")
    print("by cause: " + ", ".join(f"{cause} {n}" for cause, n in by_cause.most_common()))
    report["disagreements"] = [dict(zip(("kept_by", "ours", "peer", "cause"), k, strict=True), documents=n)
                               for k, n in classes.most_common()]
    report["like_for_like"] = like_for_like(root, peer_after, peer_why, peer_texts, peer_urls)
    if args.per_filter:
        per_filter(crawl, args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


PER_FILTER_SCRIPT = r'''
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


def per_filter(crawl: Path, args: argparse.Namespace) -> None:
    """Each filter alone on the same texts (ours extracted, English with lid >= 0.65) on both sides."""
    from classifiers.language import LanguageIdentifier
    from filters.c4 import C4Filter
    from filters.fineweb import FineWebFilter
    from filters.gopher import GopherQualityFilter, GopherRepetitionFilter
    from ingest.decode import decode_body
    from ingest.extract import extract_main_text
    from ingest.warc import read_warc, triage
    from schemas.recipe import load_recipe
    from schemas.records import Document, Record, RecordMeta

    recipe = load_recipe("fineweb")
    lid = LanguageIdentifier()
    texts = []
    for path in sorted(crawl.glob("*.warc.gz")):
        with open(path, "rb") as f:
            for rec in read_warc(f, str(path)):
                if not isinstance(rec, Record) or triage(rec, recipe.read) is not None:
                    continue
                text = extract_main_text(decode_body(rec.body, rec.content_type)[0], rec.url, recipe.extract).text
                if not text:
                    continue
                ((lang, score),) = lid.predict([text])
                if lang == "en" and score >= 0.65:
                    texts.append((rec.doc_id, text))
    filters = {
        "gopher_repetition": GopherRepetitionFilter(recipe.filters.gopher_repetition),
        "gopher_quality": GopherQualityFilter(recipe.filters.gopher_quality),
        # The same rule with datatrove >= 0.3's alpha-ratio denominator, to show what the one change explains.
        "gopher_quality_punct": GopherQualityFilter(
            dataclasses.replace(recipe.filters.gopher_quality, alpha_ratio_counts_punctuation=True)),
        "c4": C4Filter(recipe.filters.c4),
        "fineweb": FineWebFilter(recipe.filters.fineweb),
    }
    mine = {}
    for doc_id, text in texts:
        row = {}
        for name, flt in filters.items():
            doc = Document(doc_id=doc_id, source="", url="", warc_record_id="", crawl_date="",
                           meta=RecordMeta(0, "response", 200, ""), text=text, language="en", language_score=1.0)
            decision = flt(doc)
            row[name] = decision.reason if decision else ""
        mine[doc_id] = row
    peer_python = ensure_peer(Path(args.peer_venv), args.peer_version)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, script = Path(tmp, "in.jsonl"), Path(tmp, "out.jsonl"), Path(tmp, "peer.py")
        src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in texts))
        script.write_text(PER_FILTER_SCRIPT)
        subprocess.run([str(peer_python), str(script), str(src), str(dst)], check=True)
        theirs = {row["id"]: row for row in map(json.loads, dst.read_text().splitlines())}
    print(f"\nper filter, on the same {len(texts)} English texts (ours extracted):")
    print(f"{'filter':20s} {'agree':>8s} {'we drop':>8s} {'they drop':>10s}   top disagreements (ours / theirs)")
    for name in ("gopher_repetition", "gopher_quality", "gopher_quality_punct", "c4", "fineweb"):
        peer = name.removesuffix("_punct")
        same = sum(bool(mine[i][name]) == bool(theirs[i][peer]) for i in mine)
        diff = Counter((mine[i][name] or "keep", theirs[i][peer] or "keep") for i in mine
                       if bool(mine[i][name]) != bool(theirs[i][peer]))
        top = ", ".join(f"{a}/{b}: {n}" for (a, b), n in diff.most_common(4))
        print(f"{name:20s} {same / len(mine):8.1%} {sum(bool(mine[i][name]) for i in mine):8d} "
              f"{sum(bool(theirs[i][peer]) for i in mine):10d}   {top}")


if __name__ == "__main__":
    sys.exit(main())
