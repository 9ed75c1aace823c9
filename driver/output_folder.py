"""The output folder's states and the one step between them a run takes before its pipeline: new or empty, a
finished run, an interrupted run (of this command or another), a folder a job still writes, a run that ended in
an error, or something else altogether (`prepare_output` says which are refused and why). Moved from
run_pipeline.py on 2026-12-07 (issue 35)."""

from __future__ import annotations

from typing import Any

from apache_beam.io.filesystems import FileSystems

from driver.errors import UsageError
from driver.inputs import INPUTS_FILE
from jobs.record import still_running
from outputs.run_files import FAILED, STARTED, read_json, write_json
from outputs.staging import STAGING, remove_staging
from schemas.recipe import Recipe


def _differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between the run recorded in STARTED and this one, in words."""
    out = []
    if before.get("recipe_sha256") != now["recipe_sha256"]:
        out.append(f"recipe '{before.get('recipe_name')}' (sha256 {str(before.get('recipe_sha256'))[:12]}) there, "
                   f"'{now['recipe_name']}' ({now['recipe_sha256'][:12]}) now")
    gone, new = sorted(set(before.get("inputs", [])) - set(now["inputs"])), sorted(set(now["inputs"]) - set(
        before.get("inputs", [])))
    if gone or new:
        example = (new or gone)[0]
        out.append(f"inputs: {len(new)} file(s) new, {len(gone)} missing (e.g. {example})")
    if before.get("command", "run") != now["command"]:
        out.append(f"'tokenmill {before.get('command')}' there, '{now['command']}' now")
    return out


def prepare_output(output: str, *, recipe: Recipe | None = None, inputs: list[str] | None = None,
                   overwrite: bool = False, command: str = "run") -> str | None:
    """Make `output` ready for this run, or refuse with a UsageError before anything is touched.

    Refused: a directory holding files that are not a tokenmill run; a folder a job is still writing (STARTED
    names a job its job service says has not ended: jobs.record.still_running), even with `overwrite`; a
    finished run (manifest.json, no STARTED) unless `overwrite`; an interrupted run (STARTED) of another recipe,
    other inputs or another command unless `overwrite`. An interrupted run of the same command is cleared and
    run again from the start, which gives the output an uninterrupted run gives; STARTED beside a manifest.json
    is such a run too (its driver stopped after the pipeline's final step had written the manifest, before it
    removed STARTED). A run that ended in an error (FAILED) is cleared whatever it was asked: the console line
    to say so is returned. Then STARTED records this run."""
    output = output.rstrip("/")
    now = {"command": command, "recipe_name": recipe.name if recipe else "", "inputs": list(inputs or []),
           "recipe_sha256": recipe.sha256() if recipe else ""}
    # On object storage a folder is only a key prefix: FileSystems.exists(folder) is false for a folder full of
    # objects, so what the folder holds is asked of the objects themselves.
    try:
        entries = [m.path for m in FileSystems.match([f"{output}/*"])[0].metadata_list]
    except Exception:  # noqa: BLE001 - a prefix with nothing under it, on stores that raise for that
        entries = []
    note = None
    if entries or FileSystems.exists(output):
        ours = {"manifest.json", "stats.json", "shards", "ledger", "scored", "dedup_index", STAGING, STARTED,
                INPUTS_FILE, FAILED}
        foreign = [e for e in entries if e.rstrip("/").rsplit("/", 1)[-1] not in ours]
        if foreign:
            raise UsageError(
                f"output directory {output} holds files that are not a tokenmill run (e.g. {foreign[0]}); "
                "choose an empty or new directory"
            )
        failed = FileSystems.exists(f"{output}/{FAILED}")
        started = read_json(f"{output}/{STARTED}") if FileSystems.exists(f"{output}/{STARTED}") else None
        job = (started or {}).get("job")
        if job and not failed and (state := still_running(job)):  # FAILED: its driver saw the job end
            where = (f"Flink at {job['flink_master']}" if job.get("flink_master")
                     else f"{job['runner']} at {job['endpoint']}")
            raise UsageError(f"output directory {output} is being written by job {job['id']} ({where}), which is "
                             f"{state}: wait for it to end or cancel it there, then run again")
        if failed:
            note = f"note: replacing the run in {output}, which ended in an error"
        if not overwrite and not failed and started is None and FileSystems.exists(f"{output}/manifest.json"):
            raise UsageError(f"output directory {output} holds a finished run; give --overwrite to replace it, or "
                             "choose another directory")
        if not overwrite and not failed and started is not None:
            differ = _differences(started, now)
            note = f"note: running the interrupted run in {output} again from the start"
            if differ:
                raise UsageError(f"output directory {output} holds an interrupted run of another kind ("
                                 f"{'; '.join(differ)}); rerun its own command to run it again, give --overwrite to "
                                 "replace it, or choose another directory")
        old = [
            m.path
            for result in FileSystems.match([f"{output}/{d}/*" for d in ("shards", "ledger", "scored", "dedup_index")])
            for m in result.metadata_list
        ]
        old += [f"{output}/{n}" for n in ("manifest.json", "stats.json", FAILED) if FileSystems.exists(f"{output}/{n}")]
        if old:
            FileSystems.delete(sorted(set(old)))
        remove_staging(output)  # a killed run's staging files
    write_json(f"{output}/{STARTED}", now)
    return note
