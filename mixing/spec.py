"""The mixture spec (MIX.toml) as a typed object, checked before any shard is read.

    name = "m1"
    total_tokens = 1_000_000_000
    seed = 0
    [[sources]]
    path = "releases/web-1.0.0"     # a release or a finished run, any FileSystems path
    weight = 0.7                    # share of total_tokens
    where = "language = 'en' AND quality_score >= 0.5"
    [sources.repeat_by_cluster_size]   # copies of a document by its cluster_size (FineWeb-2's table)
    1 = 1
    2 = 2
    ...

Everything the spec can get wrong without reading the sources (weights, keys, types) is found here;
what needs the sources (a missing release, a `where` column, tokenizers) is found by `mixing.sources` before
any plan is written.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

import numpy as np

from storage.files import exists, read_bytes

# Weights may be written as decimals (0.7 + 0.2 + 0.1 is 0.9999999999999999 in binary floating point).
WEIGHT_TOLERANCE = 1e-6

# Passes over a source's documents above which the mix warns. Muennighoff et al. 2023, "Scaling
# Data-Constrained Language Models" (NeurIPS): up to ~4 epochs of repeated data train about as well as unique
# data; beyond that the value of added compute falls off quickly.
WARN_EPOCHS = 4.0

# Tokens of the stream whose documents are shuffled together by the reader (a window of consecutive plan
# units): ~128 MiB of uint32 token ids per reader process. Units (a row group's selected documents of one
# source, epoch and copy) are placed in a global, weight-interleaved order; documents are shuffled within a
# window. MosaicML streaming's shuffle blocks and webdataset's shuffle buffer make the same trade.
WINDOW_TOKENS = 1 << 25


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class SourceSpec:
    path: str
    weight: float
    where: str | None = None
    # (smallest cluster_size, copies) sorted by cluster size; empty: one copy of every document.
    repeat: tuple[tuple[int, int], ...] = ()
    label: str = ""  # how the mixture names the source: `name` in the spec, else the release's name

    def copies(self, cluster_size: int) -> int:
        """Copies of a document of this cluster size: the entry with the largest key <= it."""
        out = 1
        for key, n in self.repeat:
            if key > cluster_size:
                break
            out = n
        return out


def copies_by_cluster_size(repeat: tuple[tuple[int, int], ...], cluster: np.ndarray) -> np.ndarray:
    """SourceSpec.copies over an array of cluster sizes: each one's copies by the `repeat` table (the entry with
    the largest key at or below it; one copy of everything when the table is empty)."""
    if not repeat:
        return np.ones(len(cluster), np.int64)
    keys = np.array([k for k, _ in repeat])
    values = np.array([v for _, v in repeat])
    return values[np.maximum(np.searchsorted(keys, cluster, side="right") - 1, 0)].astype(np.int64)


@dataclass(frozen=True)
class MixSpec:
    name: str
    total_tokens: int
    seed: int
    sources: tuple[SourceSpec, ...]
    warn_epochs: float = WARN_EPOCHS
    window_tokens: int = WINDOW_TOKENS
    raw: dict = field(default_factory=dict, compare=False)  # the TOML as read, for the manifest


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{where} must be an integer, got {value!r}")
    return value


def _repeat(table: object, where: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(table, dict) or not table:
        raise SpecError(f"{where} must be a table of cluster_size = copies, e.g. 1 = 1, 2 = 2")
    pairs = []
    for key, copies in table.items():
        try:
            size = int(key)
        except ValueError:
            raise SpecError(f"{where}: key {key!r} is not a cluster size") from None
        if size < 1:
            raise SpecError(f"{where}: key {size} is not a cluster size (>= 1)")
        if _int(copies, f"{where}.{key}") < 0:
            raise SpecError(f"{where}.{key}: copies must be >= 0, got {copies}")
        pairs.append((size, copies))
    pairs.sort()
    if pairs[0][0] != 1:
        raise SpecError(f"{where} has no key 1: documents of cluster sizes 1..{pairs[0][0] - 1} would have no "
                        "entry")
    return tuple(pairs)


KNOWN_TOP = {"name", "total_tokens", "seed", "sources", "warn_epochs", "window_tokens"}
KNOWN_SOURCE = {"path", "weight", "where", "repeat_by_cluster_size", "name"}


def parse_spec(data: dict) -> MixSpec:
    """The spec from its TOML table. Raises SpecError with one line."""
    unknown = set(data) - KNOWN_TOP
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(KNOWN_TOP))})")
    for key in ("name", "total_tokens", "sources"):
        if key not in data:
            raise SpecError(f"missing {key}")
    name = data["name"]
    if not isinstance(name, str) or not name or "/" in name:
        raise SpecError(f"name must be a non-empty string without '/', got {name!r}")
    total = _int(data["total_tokens"], "total_tokens")
    if total <= 0:
        raise SpecError(f"total_tokens must be > 0, got {total}")
    seed = _int(data.get("seed", 0), "seed")
    warn = data.get("warn_epochs", WARN_EPOCHS)
    if isinstance(warn, bool) or not isinstance(warn, int | float) or warn <= 0:
        raise SpecError(f"warn_epochs must be a number > 0, got {warn!r}")
    window = _int(data.get("window_tokens", WINDOW_TOKENS), "window_tokens")
    if window <= 0:
        raise SpecError(f"window_tokens must be > 0, got {window}")
    raw_sources = data["sources"]
    if not isinstance(raw_sources, list) or not raw_sources:
        raise SpecError("sources must be one or more [[sources]] tables")
    sources = []
    for i, s in enumerate(raw_sources):
        where = f"sources[{i}]"
        unknown = set(s) - KNOWN_SOURCE
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(sorted(KNOWN_SOURCE))})")
        if not isinstance(s.get("path"), str) or not s["path"]:
            raise SpecError(f"{where}: missing path")
        weight = s.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise SpecError(f"{where} ({s['path']}): weight must be a number > 0, got {weight!r}")
        cond = s.get("where")
        if cond is not None and (not isinstance(cond, str) or not cond.strip()):
            raise SpecError(f"{where} ({s['path']}): where must be a non-empty string")
        repeat = _repeat(s["repeat_by_cluster_size"], f"{where}.repeat_by_cluster_size") \
            if "repeat_by_cluster_size" in s else ()
        label = s.get("name", "")
        if not isinstance(label, str):
            raise SpecError(f"{where}: name must be a string")
        sources.append(SourceSpec(path=s["path"].rstrip("/"), weight=float(weight), where=cond, repeat=repeat,
                                  label=label))
    total_weight = sum(s.weight for s in sources)
    if abs(total_weight - 1.0) > WEIGHT_TOLERANCE:
        raise SpecError(f"weights sum to {total_weight:.6g}, not 1 ("
                        + " + ".join(f"{s.weight:g}" for s in sources) + ")")
    labels = [s.label for s in sources if s.label]
    if len(labels) != len(set(labels)):
        raise SpecError("two sources have the same name")
    return MixSpec(name=name, total_tokens=total, seed=seed, sources=tuple(sources), warn_epochs=float(warn),
                   window_tokens=window, raw=data)


def load_spec(path: str) -> MixSpec:
    """MIX.toml from any store. SpecError's line does not repeat `path` (the caller names the spec)."""
    if not exists(path):
        raise SpecError("no such file")
    try:
        data = tomllib.loads(read_bytes(path).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"not TOML: {exc}") from None
    return parse_spec(data)
