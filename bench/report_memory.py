"""Peak memory and time of `tokenmill report` on synthetic ledgers of 10^6 and 10^7 rows.

    python bench/report_memory.py [--rows 1000000 10000000] [--keep DIR] [--checkout PATH]

Each ledger is made once under --keep (`synthetic_run`): parts of 1,000,000 rows in row groups of 2,000,
sorted by doc id (as the pipeline orders one input file's rows; a run's parts are in input order, file then
doc id); 25 % kept, the rest dropped over 12 (stage, reason) pairs; every row has a language score and half a
`quality_score`; 2 % of dropped rows carry a 1,000-character text (the sampled texts). The report runs in its
own process on it; the figure is that process's peak RSS. `--checkout` runs another checkout's `tokenmill
report` (an older commit, for a before/after). Issue 35's goal: the peak at 10^7 rows within 10 % of the peak
at 10^6.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.inspect_memory import peak_mb  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PART_ROWS = 1_000_000
DROPS = [("read", "not_html"), ("read", "http_status"), ("extract", "empty_text"), ("extract", "extract_error"),
         ("language", "language"), ("filters", "gopher_length"), ("filters", "gopher_repetition"),
         ("filters", "fineweb_lines"), ("filters", "c4_badwords"), ("exact_dedup", "duplicate"),
         ("near_dedup", "near_duplicate"), ("quality", "below_threshold")]


def synthetic_part(rows: int, seed: int, text_share: float = 0.02):
    """One ledger part of `rows` made-up rows (LEDGER_SCHEMA), sorted by doc id."""
    import numpy as np
    import pyarrow as pa

    from schemas.tables import LEDGER_SCHEMA, SCORE_STRUCT

    rng = np.random.default_rng(seed)
    ids = np.frombuffer(rng.bytes(16 * rows), dtype="S16")
    doc_id = sorted(bytes(b).hex().ljust(32, "0") for b in ids)
    kept = rng.random(rows) < 0.25
    which = rng.choice(len(DROPS), size=rows, p=np.arange(len(DROPS), 0, -1) / sum(range(1, len(DROPS) + 1)))
    stage = np.where(kept, "kept", np.array([s for s, _ in DROPS])[which])
    reason = np.where(kept, "", np.array([r for _, r in DROPS])[which])
    language_score = rng.random(rows)
    token_count = np.where(kept, np.exp(rng.normal(6.5, 1.2, rows)).astype(np.int64), 0)
    quality = rng.random(rows) < 0.5
    names = np.where(quality, "quality_score", "gopher_words")
    offsets = np.arange(rows + 1, dtype=np.int32)
    scores = pa.ListArray.from_arrays(pa.array(offsets), pa.StructArray.from_arrays(
        [pa.array(names), pa.array(rng.random(rows))], fields=list(SCORE_STRUCT)))
    with_text = ~kept & (rng.random(rows) < text_share)
    letters = np.frombuffer(b"abcdefghij klmnop qrstuv wxyz ", dtype="S1")
    texts = [None] * rows
    for i in np.flatnonzero(with_text):
        texts[i] = rng.choice(letters, 1000).tobytes().decode()
    columns = {
        "doc_id": pa.array(doc_id), "source": pa.array(["crawl/part-0.warc.gz"] * rows),
        "offset": pa.array(np.arange(rows, dtype=np.int64)), "record_type": pa.array(["response"] * rows),
        "url": pa.array([f"https://example.com/{i}" for i in range(rows)]),
        "stage": pa.array(stage), "reason": pa.array(reason), "kept": pa.array(kept),
        "language": pa.array(["en"] * rows), "language_score": pa.array(language_score),
        "token_count": pa.array(token_count), "scores": scores, "text": pa.array(texts, pa.string()),
    }
    return pa.table({f.name: columns.get(f.name, pa.nulls(rows, f.type)).cast(f.type) for f in LEDGER_SCHEMA},
                    schema=LEDGER_SCHEMA)


def synthetic_run(folder: Path, rows: int, part_rows: int = PART_ROWS, row_group_rows: int = 2_000) -> Path:
    """A run folder `tokenmill report` opens, with a synthetic ledger of `rows` rows (made once)."""
    import pyarrow.parquet as pq

    from schemas import SCHEMA_VERSION

    if (folder / "manifest.json").exists():
        return folder
    (folder / "ledger").mkdir(parents=True, exist_ok=True)
    entries = []
    for part, first in enumerate(range(0, rows, part_rows)):
        table = synthetic_part(min(part_rows, rows - first), seed=part)
        path = f"ledger/part-{part:05d}-000.parquet"
        pq.write_table(table, folder / path, row_group_size=row_group_rows, compression="zstd")
        entries.append({"path": path, "rows": table.num_rows})
    manifest = {"schema_version": SCHEMA_VERSION, "shards": [], "ledger": entries,
                "tokenizer": {"name": "synthetic"}, "recipe": {"name": "synthetic"}, "recipe_sha256": "0" * 64}
    stats = {"records": rows, "kept": 0, "tokens": 0, "stages": {}}
    (folder / "stats.json").write_text(json.dumps(stats))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--keep", type=Path, default=None, help="folder for the ledgers (kept between calls)")
    ap.add_argument("--checkout", type=Path, default=REPO, help="the tokenmill checkout whose report to measure")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp())
    print(f"tokenmill report of {args.checkout}")
    for rows in args.rows:
        run = synthetic_run(root / f"ledger-{rows}", rows)
        start = time.perf_counter()
        mb, code = peak_mb([sys.executable, "-m", "tokenmill_cli", "report", str(run), "-o",
                            str(root / f"report-{rows}.html")], args.checkout)
        print(f"{rows:>12,} ledger rows: peak RSS {mb:7.1f} MB, {time.perf_counter() - start:6.1f} s, exit {code}")


if __name__ == "__main__":
    main()
