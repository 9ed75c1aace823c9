"""A Hugging Face dataset folder: what `datasets.load_dataset(DIR)` and the Hub's dataset viewer read as it is.

    DIR/data/train-00000-of-00004.parquet            a release: one file per release shard
    DIR/data/<source>/train-00000-of-00002.parquet   a mixture: one folder (and config) per source
    DIR/README.md                                    the dataset card, with the YAML header the Hub reads

Each row is a document: `input_ids` (int32, the tokenizer's ids, ending with its end-of-text id: what
`tokenizer(text)["input_ids"]` gives a training loop, in the type `datasets` gives it) and the release's
metadata columns (doc_id, url, language, scores, ...). Releases keep no text (`tokenmill decode` turns ids
back into it), so there is no text column; the card says so.

The card's header (huggingface.co/docs/hub/datasets-cards, datasets-manual-configuration): `configs` with
each config's data files and its train split, `license` (`--license`; "other" when not given, with the card
saying why), `language` (the languages of the exported documents), `size_categories`, `task_categories`,
`pretty_name`. A mixture's card gives each source's weight and the `interleave_datasets` line that draws
from them by it.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from exports.sources import (
    META_COLUMNS,
    ExportSource,
    Part,
    Source,
    flat_tokens,
    folder_of,
    int32_ids,
    part_tables,
    score_columns,
)
from outputs.parquet_parts import HashingWriter
from storage.files import create, join

# The Hub's size categories (huggingface.co/docs/hub/datasets-cards: size_categories), by document count.
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
                   (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"),
                   (1_000_000_000_000, "100B<n<1T")]


def size_category(documents: int) -> str:
    return next((name for top, name in SIZE_CATEGORIES if documents < top), "n>1T")


def columns_of(source: Source) -> list[str]:
    """The shard columns a row carries: the metadata, then the source's score columns."""
    return [c for c in META_COLUMNS if c in source.schema.names] + score_columns(source)


def part_path(src: ExportSource, source: Source, part: Part) -> str:
    return f"data/{folder_of(src, source)}train-{part.index:05d}-of-{len(source.parts):05d}.parquet"


def write_part(src: ExportSource, part: Part, build: str) -> list[dict]:
    """One part as one Parquet file (zstd, a row group per source row group): its file entry, with the
    documents, tokens and documents per language it holds. A part whose rows are all left out by its source's
    `where` writes no file."""
    source = src.sources[part.source]
    columns = columns_of(source)
    rel = part_path(src, source, part)
    documents = tokens = 0
    languages: dict[str, int] = {}
    writer = sink = None
    try:
        for table in part_tables(source, part, [*columns, "tokens"]):
            if not table.num_rows:
                continue
            flat, lengths = flat_tokens(table)
            ids = pa.ListArray.from_arrays(pa.array(_offsets(lengths), pa.int32()),
                                           pa.array(int32_ids(flat)))
            out = table.select(columns).append_column(pa.field("input_ids", pa.list_(pa.int32())), ids)
            if writer is None:
                sink = HashingWriter(create(join(build, rel)))
                writer = pq.ParquetWriter(sink, out.schema, compression="zstd")
            writer.write_table(out)
            documents += out.num_rows
            tokens += len(flat)
            if "language" in out.column_names:
                counts = out.column("language").fill_null("").combine_chunks().value_counts()
                for lang, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                                   strict=True):
                    languages[lang] = languages.get(lang, 0) + n
    finally:
        if writer is not None:
            writer.close()
    if sink is None:
        return []
    return [{"path": rel, "bytes": sink.size, "sha256": sink.hexdigest, "documents": documents,
             "tokens": tokens, "source": source.label, "languages": languages}]


def _offsets(lengths):
    import numpy as np

    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    if out[-1] > np.iinfo(np.int32).max:
        raise ValueError("a row group of more than 2^31 tokens")
    return out.astype(np.int32)


def card(src: ExportSource, files: list[dict], license_id: str | None) -> str:
    """README.md: the YAML header the Hub reads, then what the folder holds and how to load it."""
    documents = sum(f.get("documents", 0) for f in files)
    tokens = sum(f.get("tokens", 0) for f in files)
    languages: dict[str, int] = {}
    for f in files:
        for lang, n in f.get("languages", {}).items():
            languages[lang] = languages.get(lang, 0) + n
    title = f"{src.name} {src.version}".strip() if src.kind == "release" else f"mixture {src.name}"
    head = ["---", f"pretty_name: {json.dumps(title)}", f"license: {license_id or 'other'}"]
    langs = [lang for lang, _ in sorted(languages.items(), key=lambda kv: (-kv[1], kv[0])) if lang]
    if langs:
        head += ["language:"] + [f"- {json.dumps(lang)}" for lang in langs]
    head += ["size_categories:", f"- {size_category(documents)}", "task_categories:", "- text-generation",
             "configs:"]
    if src.kind == "release":
        head += ["- config_name: default", "  data_files:", "  - split: train", "    path: data/train-*"]
    else:
        for i, s in enumerate(src.sources):
            head += [f"- config_name: {json.dumps(s.label)}"] + (["  default: true"] if i == 0 else []) + [
                "  data_files:", "  - split: train", f"    path: data/{s.label}/train-*"]
    head.append("---")
    body = ["", f"# {title}", "", f"Exported by `tokenmill export --format hf` from {src.kind} `{src.path}` "
            f"(manifest sha256 {src.manifest_sha256}).", "",
            f"- documents: {documents:,}", f"- tokens: {tokens:,}",
            f"- tokenizer: {src.tokenizer['name']} (vocabulary sha256 {src.tokenizer['vocab_sha256']}, "
            f"end-of-text id {src.tokenizer['eos_id']}, ending every document)",
            "- columns: `input_ids` (int32 token ids) and the release's metadata (doc_id, url, language, "
            "language_score, token_count, cluster_size, topic, scores). No text: the release keeps token ids "
            "only; `tokenmill decode` turns them back into text.", ""]
    if not license_id:
        body += ["License: not set at export (`tokenmill export --license ID`). The documents are web pages "
                 "from a crawl; their use is subject to the crawl's terms (Common Crawl: "
                 "https://commoncrawl.org/terms-of-use) and to each page's own rights.", ""]
    if src.kind == "release":
        body += ["```python", "from datasets import load_dataset", "", 'ds = load_dataset("PATH/TO/THIS/FOLDER", '
                 'split="train")', "```", ""]
    else:
        body += ["## Sources", "", "| config | weight (share of the mixture's tokens) | where | documents | "
                 "tokens |", "|---|---|---|---|---|"]
        for s in src.sources:
            mine = [f for f in files if f.get("source") == s.label]
            body.append(f"| {s.label} | {s.weight:.6g} | {(s.where or '-').replace('|', '/')} | "
                        f"{sum(f['documents'] for f in mine):,} | {sum(f['tokens'] for f in mine):,} |")
        labels = ", ".join(json.dumps(s.label) for s in src.sources)
        weights = ", ".join(f"{s.weight:.6g}" for s in src.sources)
        body += ["", "Each source's documents are those its `where` selects, repeated by its "
                 "`repeat_by_cluster_size` table; drawn by weight (the columns all sources share: their score "
                 "columns may differ):", "", "```python",
                 "from datasets import interleave_datasets, load_dataset", "",
                 f"parts = [load_dataset(\"PATH/TO/THIS/FOLDER\", name, split=\"train\").select_columns("
                 f"[\"input_ids\", \"doc_id\", \"language\"]) for name in [{labels}]]",
                 f"ds = interleave_datasets(parts, probabilities=[{weights}], seed=0, "
                 "stopping_strategy=\"all_exhausted\")", "```", ""]
    return "\n".join(head + body)
