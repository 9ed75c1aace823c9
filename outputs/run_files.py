"""manifest.json and stats.json: built from what the pipeline wrote, as plain dicts.

The funnel in stats.json is derived from ledger counts in stage order, so it always agrees with the ledger
(the ledger is the truth; Beam counters are the live view of the same numbers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from outputs.parquet_parts import PartInfo
from outputs.staging import staging_dir
from schemas import SCHEMA_VERSION
from schemas.records import DOC_ID_SCHEME, REASON_INTERNAL_ERROR, STAGE_KEPT, STAGES
from storage.files import exists, filesystems, read_bytes, write_bytes

# Written when a run starts and removed when it finishes: what an interrupted run was asked to do (a folder
# holding it and no manifest.json holds a run that was interrupted or is still running).
STARTED = "_started.json"

# Written, before STARTED is removed, into the folder of a run that ended in an error (exit 1: it read no
# record, more file or record errors than allowed, or the pipeline raised). Its outputs stay for stats and
# inspect, but it is no finished run: the next run into the folder replaces it without --overwrite, `stats`
# says so, and `release`, `mix` and `select` refuse it.
FAILED = "_failed.json"


# What every command that meets a failed run tells the user to do (rerunning alone repeats most errors).
FIX_AND_RERUN = "fix its cause and run it again"


def run_failure(root: str) -> str | None:
    """Why the run in `root` failed (its last error line, the one that failed it), or None for a run that did not
    fail."""
    path = f"{root.rstrip('/')}/{FAILED}"
    if not exists(path):
        return None
    errors = read_json(path).get("errors") or ["(no error recorded)"]
    return str(errors[-1])


def tokenmill_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokenmill")
    except PackageNotFoundError:
        return "0+unknown"


def funnel(counts: Mapping[tuple[str, str], int]) -> dict[str, Any]:
    """Per stage: in, out, dropped by reason, from {(stage, reason): rows} of the ledger."""
    total = sum(counts.values())
    stages: dict[str, Any] = {}
    remaining = total
    for stage in STAGES:
        by_reason = {r: n for (s, r), n in sorted(counts.items()) if s == stage}
        dropped = sum(by_reason.values())
        stages[stage] = {"in": remaining, "out": remaining - dropped, "dropped": by_reason}
        remaining -= dropped
    unknown = {f"{s}/{r}": n for (s, r), n in counts.items() if s not in STAGES and s != STAGE_KEPT}
    if unknown:
        raise ValueError(f"ledger rows with unknown stages: {unknown}")
    kept = sum(n for (s, _r), n in counts.items() if s == STAGE_KEPT)
    if kept != remaining:
        raise ValueError(f"funnel does not close: {remaining} left after the last stage, {kept} kept")
    out: dict[str, Any] = {"records": total, "kept": kept, "stages": stages}
    # Kept rows with a reason: findings that keep the document (decontamination's action "flag").
    flagged = {r: n for (s, r), n in sorted(counts.items()) if s == STAGE_KEPT and r}
    if flagged:
        out["flagged"] = flagged
    return out


def internal_errors(counts: Mapping[tuple[str, str], int], examples: Mapping[str, str]) -> dict[str, Any]:
    """stats.json `internal_errors`: per stage, the records a step raised on (pipelines/isolation.py) and the
    smallest such doc id, from the ledger's counts; {} when there were none."""
    return {stage: {"records": n, "example": examples.get(stage, "")}
            for (stage, reason), n in sorted(counts.items()) if reason == REASON_INTERNAL_ERROR and n}


def part_entry(info: PartInfo, output_root: str) -> dict[str, Any]:
    rel = info.path[len(output_root) :].lstrip("/") if info.path.startswith(output_root) else info.path
    entry = {"path": rel, "rows": info.rows, "bytes": info.bytes, "sha256": info.sha256}
    if info.tokens:
        entry["tokens"] = info.tokens
    return entry


def build_manifest(
    *,
    output_root: str,
    shards: Iterable[PartInfo],
    ledger_parts: Iterable[PartInfo],
    score_columns: list[str],
    recipe: dict[str, Any],
    recipe_sha256: str,
    tokenizer: dict[str, Any],
    inputs: list[str],
    snapshots: dict[str, str] | None = None,
    dedup_index: Iterable[PartInfo] = (),
    dedup_settings: dict[str, Any] | None = None,
    scored: Iterable[PartInfo] | None = None,
) -> dict[str, Any]:
    """`scored`: the parts of scored/ of a --keep-scored run (None for a run without it: no `scored` entry), listed
    like the shards, with rows, bytes and sha256, so `select` reads what the run wrote and verify can check it.
    `snapshots`: each input file's (by its name in the run, ingest.warc.source_name) crawl snapshot, where it
    has one. `dedup_index`: the parts of dedup_index/ (the kept documents' dedup keys, for releases to carry)
    and `dedup_settings` what they were made with. `doc_id` names the scheme of the ids in every part
    (schemas.records.DOC_ID_SCHEME)."""
    shard_entries = [part_entry(s, output_root) for s in sorted(shards, key=lambda s: s.path)]
    ledger_entries = [part_entry(s, output_root) for s in sorted(ledger_parts, key=lambda s: s.path)]
    index_entries = [part_entry(s, output_root) for s in sorted(dedup_index, key=lambda s: s.path)]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "tokenmill_version": tokenmill_version(),
        "tokenizer": tokenizer,
        "doc_id": DOC_ID_SCHEME,
        "recipe": recipe,
        "recipe_sha256": recipe_sha256,
        "inputs": inputs,
        "snapshots": {k: v for k, v in sorted((snapshots or {}).items()) if v},
        "score_columns": score_columns,
        "totals": {
            "documents": sum(e["rows"] for e in shard_entries),
            "tokens": sum(e.get("tokens", 0) for e in shard_entries),
            "ledger_rows": sum(e["rows"] for e in ledger_entries),
        },
        "shards": shard_entries,
        "ledger": ledger_entries,
        "dedup_index": {"parts": index_entries, "settings": dedup_settings or {}},
    }
    if scored is not None:
        manifest["scored"] = [part_entry(s, output_root) for s in sorted(scored, key=lambda s: s.path)]
    return manifest


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write JSON atomically (temporary name, then rename), through Beam FileSystems."""
    FileSystems = filesystems()  # noqa: N806 - the class, as Beam names it
    tmp = f"{path}.tmp"
    with FileSystems.create(tmp) as f:
        f.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def write_input_list(path: str, inputs: list[str]) -> None:
    """The run's input files, one path a line, in index order (a file's index is its place in the input order
    the parts are cut across input files in, pipelines/recut.py, and names its pieces in _staging/)."""
    if any("\n" in p for p in inputs):
        raise ValueError("an input path holds a line break")
    write_bytes(path, "".join(f"{p}\n" for p in inputs).encode("utf-8"))


def read_input_list(path: str) -> list[str]:
    """The paths of an input list file: one a line; blank lines and lines starting with # are skipped."""
    lines = read_bytes(path).decode("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def inputs_root(paths: list[str]) -> str:
    """The longest folder holding every one of `paths`, with its trailing "/" ("" when they share none): what
    a file's name in the run is relative to (ingest.warc.source_name). "crawl/a/x.warc.gz" and
    "crawl/b/x.warc.gz" -> "crawl/", one file -> its folder; the same for s3://bucket/crawl/... paths."""
    folders = [p.rstrip("/").split("/")[:-1] for p in paths]
    common = folders[0] if folders else []
    for folder in folders[1:]:
        n = 0
        while n < min(len(common), len(folder)) and common[n] == folder[n]:
            n += 1
        common = common[:n]
    return "".join(f"{part}/" for part in common)


def read_json(path: str) -> dict[str, Any]:
    return json.loads(read_bytes(path).decode("utf-8"))


# The releases of [dedup] against, handed from the driver to the pipeline (moved from pipelines/build.py on
# 2026-12-07, issue 35).
def against_list_path(output: str) -> str:
    """Where the driver lists the released index files to read ([dedup] against), one JSON list [release name,
    release path, index file path in the release, its manifest sha256] a line: read by the pipeline, so the job
    graph does not grow with a release's files. Written from the manifests alone (release/against.py)."""
    return f"{staging_dir(output)}/dedup-against.txt"


def write_against_list(output: str, against: list[dict[str, Any]]) -> None:
    if against:
        write_input_list(against_list_path(output), [json.dumps([r["name"], r["path"], f["path"], f["sha256"]])
                                                     for r in against for f in r["files"]])


def read_against_list(path: str) -> Iterator[tuple[str, str, str, str]]:
    for line in read_input_list(path):
        name, release, entry, sha256 = json.loads(line)
        yield name, release, entry, sha256


def near_rounds_line(near: dict) -> str:
    """'U of R rounds, converged' from stats.json's near_dedup section, as `tokenmill stats` and the report say
    it: the rounds used of those the job graph held (runs before 2026-12-07 recorded max_rounds only), and
    whether the rounds left stars, the graph was finished in one group, or neither."""
    state = ("converged" if near.get("converged") else "finished in one group" if near.get("finished_in_one_group")
             else "NOT converged")
    return f"{near.get('rounds_used', 0)} of {near.get('rounds_unrolled', near.get('max_rounds', 0))} rounds, {state}"
