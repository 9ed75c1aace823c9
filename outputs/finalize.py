"""The run's manifest.json and stats.json, written by the pipeline's last step (pipelines/build.py: the finalize
step) from what every other step summed up for it: part infos, ledger counts, skipped record types, file errors,
the mix, each input file's snapshot, error examples, tagged by kind in one side input (SUMMARY_KINDS). The
sections only a stage knows how to sum (near dedup's rounds, decontamination's items, the releases deduplicated
against, extraction's setup) come computed by the stage's own module. Moved from pipelines/build.py on
2026-12-07 (issue 35), which now holds the graph only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dedup.exact import EXACT_KEY_DEFINITION
from outputs.run_files import build_manifest, funnel, internal_errors, write_json
from schemas.recipe import Recipe

# What the finalize step reads, as (kind, value) pairs in one side input.
SUMMARY_KINDS = ("shards", "ledger_parts", "scored_parts", "ledger_counts", "skipped", "file_errors", "mix",
                 "near_dedup", "extraction", "snapshots", "decontamination", "dedup_index", "against", "error_examples")


def by_kind(summary: Iterable[tuple[str, Any]]) -> dict[str, list]:
    """The finalize step's side input, (kind, value) pairs, as {kind: [values]} for every SUMMARY_KINDS kind."""
    out: dict[str, list] = {kind: [] for kind in SUMMARY_KINDS}
    for kind, value in summary:
        out[kind].append(value)
    return out


def dedup_settings(recipe: Recipe, tokenizer_info: dict[str, Any]) -> dict[str, Any]:
    """What a dedup index was made with: a later run can match against it only with the same exact-key definition
    and MinHash (n-gram, bands, rows, seed). The tokenizer is named because a release's tokens are only
    comparable under it."""
    near = recipe.dedup.near
    return {
        "exact_key": EXACT_KEY_DEFINITION,
        "minhash": {"ngram": near.ngram, "bands": near.bands, "rows": near.rows, "seed": near.seed,
                    "scheme": "datasketch affine64 over XXH64 word 5-grams (dedup.minhash)"} if near.enabled else None,
        "tokenizer_vocab_sha256": tokenizer_info.get("vocab_sha256"),
    }


def write_manifest(
    *,
    output: str,
    recipe: Recipe,
    inputs: list[str],
    tokenizer_info: dict[str, Any],
    columns: list[str],
    kinds: dict[str, list],
    against: list[dict[str, Any]] | None = None,
    decontamination_sources: list[dict[str, Any]] | None = None,
    keep_scored: bool = False,
) -> dict[str, Any]:
    """Write `output`/manifest.json and return it. `decontamination_sources`: the benchmark files of an enabled
    [decontamination] (pipelines.decontaminate.DecontaminationPlan.sources), None without one."""
    manifest = build_manifest(
        output_root=output,
        shards=kinds["shards"],
        ledger_parts=kinds["ledger_parts"],
        score_columns=columns,
        recipe=recipe.to_dict(),
        recipe_sha256=recipe.sha256(),
        tokenizer=tokenizer_info,
        inputs=inputs,
        snapshots=dict(kinds["snapshots"]),
        dedup_index=kinds["dedup_index"],
        dedup_settings=dedup_settings(recipe, tokenizer_info),
        scored=kinds["scored_parts"] if keep_scored else None,
    )
    if against:  # lineage: the releases this run's documents were deduplicated against
        manifest["dedup_against"] = [{k: r[k] for k in ("name", "version", "path", "manifest_sha256", "doc_id")}
                                     for r in against]
    if decontamination_sources is not None:  # which benchmark files, byte for byte, the run was checked against
        manifest["decontamination"] = {
            "action": recipe.decontamination.action,
            "sources": [{"path": s["path"], "sha256": s["sha256"]} for s in decontamination_sources],
        }
    write_json(f"{output}/manifest.json", manifest)
    return manifest


def write_stats(
    *,
    output: str,
    inputs: list[str],
    manifest: dict[str, Any],
    kinds: dict[str, list],
    read_stats: dict[str, Any] | None,
    sections: dict[str, Any],
) -> None:
    """Write `output`/stats.json: the funnel from the ledger counts, what was read (`read_stats`: a select run's
    source's, else from the files read), tokens, internal errors, the kept documents and tokens by each mix
    column, and the stages' own `sections` (stats.json key -> value, added last)."""
    ledger_counts = kinds["ledger_counts"]
    stats = funnel(dict(ledger_counts))
    stats["read"] = read_stats or {
        "files": len(inputs),
        "skipped_record_types": dict(sorted(kinds["skipped"])),
        "file_errors": [{"file": f, "offset": o, "error": e} for f, o, e in sorted(kinds["file_errors"])],
    }
    stats["tokens"] = manifest["totals"]["tokens"]
    errors = internal_errors(dict(ledger_counts), dict(kinds["error_examples"]))
    if errors:
        stats["internal_errors"] = errors
    for (kind, value), (docs, tokens) in sorted(kinds["mix"]):
        if kind == "topic" and not value:
            continue
        stats.setdefault(f"kept_by_{kind}", {})[value] = {"documents": docs, "tokens": tokens}
    stats.update(sections)
    write_json(f"{output}/stats.json", stats)
