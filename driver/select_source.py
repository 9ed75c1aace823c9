"""What `tokenmill select` checks of the run it reads before anything is written: that it is a finished
--keep-scored run of this doc id scheme whose manifest lists only paths inside it (`checked_source`), and that
the new recipe leaves alone what decided extraction (`check_fixed_before_filters`). Moved from
run_pipeline.select on 2026-12-07 (issue 35)."""

from __future__ import annotations

from typing import Any

from apache_beam.io.filesystems import FileSystems

from driver.errors import UsageError
from outputs.run_files import FIX_AND_RERUN, STARTED, read_json, run_failure
from schemas.recipe import RecipeError
from schemas.records import DOC_ID_SCHEME, doc_id_scheme
from storage.paths import check_entries


def checked_source(source: str) -> dict[str, Any]:
    """The manifest of `source`, the run `select` reads, or a UsageError saying why it cannot be read: no run,
    another doc id scheme, a run that ended in an error or has not ended, no scored/ documents, a listed path
    outside the run."""
    if not FileSystems.exists(f"{source}/manifest.json"):
        raise UsageError(f"{source} is not a tokenmill run (no manifest.json)")
    manifest = read_json(f"{source}/manifest.json")
    if doc_id_scheme(manifest) != DOC_ID_SCHEME:  # its scored/ rows hold ids and file names of that scheme
        raise UsageError(f"{source} has doc ids {doc_id_scheme(manifest)}, this tokenmill makes {DOC_ID_SCHEME}: "
                         "run its crawl again with --keep-scored")
    failure = run_failure(source)
    if failure is not None:  # its output would be a finished run: release and mix would take what it could read
        raise UsageError(f"{source}: the run ended in an error, so nothing is selected from it: {failure}; "
                         f"{FIX_AND_RERUN}")
    if FileSystems.exists(f"{source}/{STARTED}"):  # manifest written, run not ended (outputs.reading.open_manifest)
        raise UsageError(f"{source} holds a run that was interrupted or is still running: run its own command again "
                         "to finish it first")
    if not FileSystems.match([f"{source}/scored/*.parquet"])[0].metadata_list:
        raise UsageError(f"{source} has no scored/ documents: run it with --keep-scored")
    # The workers read the parts these lists name (pipelines/build.py: scored_files): refused here, in one line.
    check_entries(manifest["ledger"], f"{source}/manifest.json ledger")
    check_entries(manifest.get("scored", []), f"{source}/manifest.json scored")
    return manifest


def scored_bytes(manifest: dict[str, Any]) -> int | None:
    """The bytes of the scored/ parts the source's manifest lists: what `select` reads, which decides its local
    runner's mode and its near-dedup rounds as a crawl's size does a run's. None (not known: counted as large)
    for a manifest without the list (runs before 2026-12-07) or with a size that is not a count of bytes."""
    parts = manifest.get("scored")
    if not isinstance(parts, list):
        return None
    sizes = [part.get("bytes") if isinstance(part, dict) else None for part in parts]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes):
        return None
    return sum(sizes)


# Recipe sections that decide what reaches the filters; `select` can only change what comes after.
_FIXED_BEFORE_FILTERS = ("read", "extract", "language")


def check_fixed_before_filters(before: dict[str, Any], now: dict[str, Any]) -> None:
    """RecipeError when the recipe `now` (as a dict) changes what decided extraction in the source's `before`:
    [read], [extract], [language] or the URL filter."""
    for section in _FIXED_BEFORE_FILTERS:
        if before[section] != now[section]:
            raise RecipeError(f"select cannot change [{section}]: it decides what was extracted; rerun the crawl")
    uses_url = "url" in before["filters"]["order"] or "url" in now["filters"]["order"]
    if uses_url and (before["filters"]["url"] != now["filters"]["url"]
                     or ("url" in before["filters"]["order"]) != ("url" in now["filters"]["order"])):
        raise RecipeError("select cannot change the URL filter: it runs before extraction; rerun the crawl")
