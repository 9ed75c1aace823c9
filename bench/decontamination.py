"""Decontamination index size and matching speed at 10 M n-grams.

    python bench/decontamination.py [--ngrams 10000000] [--docs 3000] [--pages RUN_WITH_SCORED]

Builds benchmark items from real words (the vocabulary of ../shared's Gutenberg and WikiText-2 texts, drawn
at random with their frequencies), 90 % of them 40 words long and 10 % of 8-12 words (short items are one
n-gram of their own length, so the index holds every length from 8 to 13), until the index holds --ngrams
13-gram entries, written as a jsonl file and indexed the way a run does (decontamination.index.build_index:
read, normalize, hash in plain Python, sort). Then times DecontaminationIndex.match over 3 KB documents of
real prose (Gutenberg texts cut at 3,000 characters; with --pages, also the extracted texts in a
--keep-scored run's scored/ folder), with a few planted items to check the index finds them.

Prints: build seconds, index bytes (the arrays a worker holds) and the process's RSS growth on loading it,
and matching microseconds per 3 KB document (mean over the documents, after a warm-up). Goals (issue 23):
<= 200 MB for 10 M n-grams, <= 0.3 ms per 3 KB document.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import SHARED  # noqa: E402
from decontamination.index import DecontaminationIndex, build_index  # noqa: E402
from decontamination.text import normalized_words  # noqa: E402

GUTENBERG = SHARED / "data" / "gutenberg_nltk"
WIKITEXT = SHARED / "data" / "wikitext2_test" / "wiki.test.raw.gz"


def _prose() -> list[str]:
    texts = [gzip.open(p, "rt", encoding="latin-1").read() for p in sorted(GUTENBERG.glob("*.txt.gz"))]
    assert texts, f"shared data missing: {GUTENBERG}"
    return texts


def write_items(path: Path, ngrams: int, seed: int = 0) -> int:
    """Items of real words until they give `ngrams` n-grams; returns the number of items."""
    words = Counter(w for text in _prose() for w in normalized_words(text))
    words.update(normalized_words(gzip.open(WIKITEXT, "rt", encoding="utf-8").read()))
    vocab = list(words)
    cum = list(itertools.accumulate(words[w] for w in vocab))
    rng = random.Random(seed)
    made = items = 0
    with path.open("w") as f:
        while made < ngrams:
            length = 40 if rng.random() < 0.9 else rng.randint(8, 12)
            text = " ".join(rng.choices(vocab, cum_weights=cum, k=length))
            f.write(json.dumps({"question": text}) + "\n")
            made += max(1, length - 12)
            items += 1
    return items


def prose_documents(count: int) -> list[str]:
    """`count` documents of 3,000 characters: the Gutenberg texts in turn, cut, repeated if need be."""
    prose = "\n".join(_prose())
    docs = [prose[i : i + 3000] for i in range(0, len(prose) - 3000, 3000)]
    return (docs * (count // len(docs) + 1))[:count]


def page_documents(run: str) -> list[str]:
    import pyarrow.parquet as pq

    parts = sorted(Path(run, "scored").glob("*.parquet"))
    assert parts, f"{run}: no scored/ parts (run it with --keep-scored)"
    return [t for part in parts for t in pq.read_table(part, columns=["text"]).column("text").to_pylist()]


def timed_matches(index: DecontaminationIndex, docs: list[str]) -> tuple[float, int]:
    """(seconds, documents matched) of one pass over `docs`."""
    start = time.perf_counter()
    matched = sum(index.match(d) is not None for d in docs)
    return time.perf_counter() - start, matched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ngrams", type=int, default=10_000_000)
    ap.add_argument("--docs", type=int, default=3000, help="3 KB prose documents to match")
    ap.add_argument("--pages", help="a --keep-scored run: also match its extracted pages")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "items.jsonl"
        t = time.perf_counter()
        items = write_items(source, args.ngrams)
        print(f"items: {items:,} written in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        index, _ = build_index([str(source)], ["question"], ngram=13, min_item_words=8, min_matches=1)
        built = time.perf_counter() - t
        data = index.to_bytes()
        planted = [json.loads(line)["question"] for line in source.open().readlines()[:: max(1, items // 20)]]
    print(f"index: {len(index.hashes):,} n-grams, lengths {index.lengths.tolist()}, built in {built:.1f} s")
    index = DecontaminationIndex.from_bytes(data)  # as a worker loads it
    print(f"memory: {index.nbytes / 1e6:.1f} MB of arrays ({index.nbytes / len(index.hashes):.1f} bytes per "
          f"n-gram; hashes {index.hashes.nbytes / 1e6:.0f}, items {index.items.nbytes / 1e6:.0f}, buckets "
          f"{index.offsets.nbytes / 1e6:.0f}, prefix bitmap {index.prefix.nbytes / 1e6:.0f} MB)")

    docs = prose_documents(args.docs)
    for doc in docs[:50]:
        index.match(doc)  # compile / load the kernels
    hits = sum(index.match(f"Some page text. {item} More text after it.") is not None for item in planted)
    print(f"planted items found: {hits} of {len(planted)}")
    took, matched = timed_matches(index, docs)
    print(f"prose: {len(docs):,} documents of 3,000 chars: {took / len(docs) * 1e3:.3f} ms each, {matched} matched")
    if args.pages:
        pages = page_documents(args.pages)
        chars = sum(len(d) for d in pages)
        took, matched = timed_matches(index, pages)
        print(f"pages: {len(pages):,} extracted pages of {chars / len(pages):,.0f} chars: "
              f"{took / len(pages) * 1e3:.3f} ms each ({took / (chars / 3000) * 1e3:.3f} ms per 3 KB), "
              f"{matched} matched")


if __name__ == "__main__":
    main()
