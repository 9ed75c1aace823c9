"""Train the quality classifier from what we have and report its held-out scores.

    python bench/train_quality.py [--out DIR] [--keep DIR]

Positives ("hq"): reference text -- WikiText-2 test articles, the 13 Project Gutenberg books (cut into
~2,000-character passages) and the gold article bodies of scrapinghub_aeb.
Negatives ("lq"): main text that trafilatura extracts from the pages of a 2,500-document bench crawl
(make_bench_warc.py): ordinary web text, boilerplate and all.
Held-out: every example whose text hashes to 0 mod 5 (xxh3-64). Prints held-out precision/recall/F1 per
class, and documents/s per core for a quality + topic pass on 3 KB documents (goal >= 2,000/s).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import xxhash

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import SHARED, bench_crawl  # noqa: E402
from classifiers.fasttext_model import FastTextClassifier  # noqa: E402
from classifiers.text import normalize_for_classifier  # noqa: E402
from classifiers.training import TrainParams, evaluate, train  # noqa: E402
from ingest.decode import decode_body  # noqa: E402
from ingest.extract import extract_main_text  # noqa: E402
from ingest.warc import read_warc, triage  # noqa: E402
from schemas.recipe import Recipe  # noqa: E402
from schemas.records import Record  # noqa: E402


def passages(text: str, size: int = 2000) -> list[str]:
    out, current = [], ""
    for para in text.split("\n\n"):
        current = f"{current}\n\n{para}" if current else para
        if len(current) >= size:
            out.append(current.strip())
            current = ""
    return out


def positives() -> list[str]:
    data = SHARED / "data"
    wiki = gzip.open(data / "wikitext2_test" / "wiki.test.raw.gz", "rt").read()
    texts = [a.strip() for a in wiki.split("\n = ") if len(a) > 500]
    for book in sorted((data / "gutenberg_nltk").glob("*.txt.gz")):
        texts += passages(gzip.open(book, "rt", errors="replace").read())
    gold = json.loads(gzip.open(data / "scrapinghub_aeb" / "ground-truth.json.gz").read())
    texts += [e["articleBody"] for e in gold.values() if len(e["articleBody"]) > 300]
    return texts


def negatives(crawl: Path) -> list[str]:
    recipe = Recipe()
    out = []
    for path in sorted(crawl.glob("*.warc.gz")):
        with open(path, "rb") as f:
            for rec in read_warc(f, str(path)):
                if isinstance(rec, Record) and triage(rec, recipe.read) is None:
                    text = extract_main_text(decode_body(rec.body, rec.content_type)[0], rec.url, recipe.extract).text
                    if len(text) > 300:
                        out.append(text)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep", default=None, help="reuse/keep the bench crawl in DIR/crawl")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="tokenmill-quality-"))
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.keep or tempfile.mkdtemp(prefix="tokenmill-quality-crawl-"))
    crawl = bench_crawl(root / "crawl")
    examples = [(t, "hq") for t in positives()] + [(t, "lq") for t in negatives(crawl)]
    held = [e for e in examples if xxhash.xxh3_64_intdigest(e[0].encode()) % 5 == 0]
    train_rows = [e for e in examples if xxhash.xxh3_64_intdigest(e[0].encode()) % 5 != 0]
    model = train(train_rows, str(out / "quality.bin"), TrainParams(epoch=15))
    ev = evaluate(model, held)
    (out / "quality.eval.json").write_text(json.dumps(ev.to_dict(), indent=2, sort_keys=True))
    print(f"examples: {sum(1 for _, y in examples if y == 'hq')} hq, {sum(1 for _, y in examples if y == 'lq')} lq; "
          f"train {len(train_rows)}, held-out {len(held)}")
    for label, m in ev.per_class.items():
        print(f"  {label}: precision {m['precision']:.3f} recall {m['recall']:.3f} f1 {m['f1']:.3f} "
              f"(support {m['support']})")
    print(f"  accuracy {ev.accuracy:.4f}  macro-F1 {ev.macro_f1:.4f}")

    topic_path = out / "topic.bin"
    if not topic_path.exists():
        from bench.train_topic import bbc  # noqa: PLC0415

        train(bbc()[0], str(topic_path), TrainParams(epoch=15))
    quality, topic = FastTextClassifier(str(out / "quality.bin")), FastTextClassifier(str(topic_path))
    docs = [t[:3000] for t, _ in held if len(t) >= 3000][:500] or [t for t, _ in held][:500]
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < 5:
        for i in range(0, len(docs), 256):
            lines = [normalize_for_classifier(t) for t in docs[i : i + 256]]  # once for both models, as the stage does
            quality.probability(lines, "hq", normalized=True)
            topic.predict(lines, normalized=True)
        done += len(docs)
    print(f"quality + topic scoring, one core, 3 KB documents in batches of 256: "
          f"{done / (time.perf_counter() - start):.0f} documents/s (goal >= 2,000)")
    print(f"models and metrics in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
