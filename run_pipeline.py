"""The Beam entry point: `python run_pipeline.py --input 'crawl/*.warc.gz' --output out/ [--config R] [Beam flags]`.

tokenmill's own flags are parsed here; every other flag goes to Beam's PipelineOptions unchanged, so the
same command runs on DataflowRunner, FlinkRunner, SparkRunner or PortableRunner. Without --runner it runs
locally in multi_processing mode on all cores (inputs of at most 8 MiB in one process), on Beam's FnApiRunner
(see `driver.runner.local_runner`).

This file is the run's story: the flags, the recipe and the paths it names checked, the inputs expanded, the
decontamination index built and the releases checked, the output folder prepared (`prepare_run`), the pipeline
built (pipelines/build.py) and run as a job (`driver.job.execute`), and what the console says at the end
(`main`). How each step is done lives in `driver/`, one concern a module (driver/__init__.py names them); the
names tests, bench/ and tokenmill_cli/ use are still importable from here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from console.endings import INTERRUPTED, RESUME, finish, held_interrupts, leave
from console.numbers import run_summary
from console.quiet import QuietStderr, drop_import_warning
from console.safe import ArgumentParser, shown
from outputs.timing import process_started

drop_import_warning()  # before Apache Beam is imported: it logs a bigquery/apitools warning as it loads

# `python run_pipeline.py`: a Ctrl-C while the modules below (Apache Beam among them) are imported is held until
# `main` starts, then raised inside `finish` (console/endings.held_interrupts says why). `tokenmill run` holds it
# around its own import of this module (tokenmill_cli/runs.py).
_IMPORTS_HELD = held_interrupts() if __name__ == "__main__" else None
if _IMPORTS_HELD is not None:
    _IMPORTS_HELD.__enter__()


# A compiled Beam module with the collections.abc patch (console/endings.held_interrupts) that a run would
# import later, outside the held window: imported here, inside it (5 ms).
import apache_beam.runners.worker.operations  # noqa: E402, F401

# The driver's steps (driver/). Names imported but not used here stay importable as run_pipeline.<name>, which
# tests, bench/ and tokenmill_cli/ use.
from dedup.components import rounds_to_unroll  # noqa: E402
from driver.checks import check_paths, check_worker_paths, tokenizer_info, worker_paths  # noqa: E402
from driver.decontamination import decontamination_index, write_decontamination_index  # noqa: E402
from driver.errors import JobLeftRunning, RunFailed, UsageError  # noqa: E402
from driver.flags import (  # noqa: E402, F401
    MAX_RECORD_ERRORS,
    check_flags,
    check_fraction,
    console_flags,
    parse_args,
    record_errors_flag,
    say_notes,
    shared_filesystem_flag,
    unknown_flags,
)
from driver.inputs import (  # noqa: E402, F401
    CRAWL_SUFFIXES,
    INPUTS_FILE,
    expand_inputs,
    input_patterns,
    listed_inputs,
    skipped_note,
)
from driver.job import (  # noqa: E402, F401
    _STATED_FAILURES,
    DRY_RUN,
    dry_run,
    dry_run_summary,
    execute,
    record_job,
    run_metrics,
    stop_job,
)
from driver.output_folder import prepare_output  # noqa: E402
from driver.problems import drop_warnings, input_problems, problems, record_problems  # noqa: E402, F401
from driver.releases import releases_against  # noqa: E402
from driver.runner import (  # noqa: E402, F401 - tests, bench/ and tokenmill_cli/ use these names from here
    CHECKOUT,
    DEFAULT_RUNNER_ARGS,
    FLINK_STREAMING_NOTE,
    IN_PROCESS_BYTES,
    SPARK_ENVIRONMENT_CACHE_MS,
    check_runner,
    dataflow_threads,
    extract_children,
    flink_streaming,
    is_dry_run,
    is_local,
    local_runner,
    make_pipeline,
    pin_worker_code,
    runner_name,
    spark_environment_cache,
    tune_malloc,
    worker_options,
)
from driver.select_source import (  # noqa: E402, F401
    _FIXED_BEFORE_FILTERS,
    check_fixed_before_filters,
    checked_source,
    scored_bytes,
)
from jobs.remote import remote_workers  # noqa: E402
from outputs.run_files import (  # noqa: E402, F401 - STARTED: tests name the file by run_pipeline's name
    STARTED,
    read_json,
    write_against_list,
    write_input_list,
)
from outputs.staging import STAGING  # noqa: E402
from pipelines.build import build_pipeline, build_select_pipeline  # noqa: E402
from pipelines.decontaminate import DecontaminationPlan  # noqa: E402
from pipelines.worker import _MALLOPT, ARROW_POOL, MALLOC_ARENAS, MALLOC_THRESHOLD, set_mallopt  # noqa: E402, F401
from schemas.recipe import Recipe, RecipeError, load_recipe  # noqa: E402


def parser() -> argparse.ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill run",
        description="Run the curation pipeline over WARC/WET files: read, URL filters, extraction, language, "
        "quality filters,\ndecontamination, classifiers, exact and near dedup, tokenization. Writes --output: "
        "tokenized shards/,\nthe ledger/ (one row per document: kept, or the stage and reason that dropped it), "
        "manifest.json and\nstats.json. An interrupted run is run again from the start by the same command. Flags "
        "tokenmill does not\nknow go to Beam (--runner, --project, --s3_endpoint_url, ...); without --runner it "
        "runs locally on all cores.",
        epilog="examples:\n  tokenmill run --input 'crawl/*.warc.gz' --output out --config fineweb\n"
        "  tokenmill run --input-list warc.paths --output gs://bucket/out \\\n"
        "      --runner=DataflowRunner --project=P --region=R --temp_location=gs://bucket/tmp \\\n"
        "      --machine_type=n1-standard-4 --extra_package=dist/tokenmill-0.1.0-py3-none-any.whl\n"
        "      (--dry_run=True --dataflow_job_file=job.json: build the job request offline, submit nothing)\n"
        "  tokenmill stats out   (then: inspect, diff, report, release)")
    ap.add_argument("--input", action="extend", nargs="+", default=[],
                    help="WARC/WET files, globs, folders or comma-separated lists (several values, repeatable). Any "
                    "Beam FileSystems path. A folder, with or without a trailing /, means the files in it named as "
                    f"crawls ({', '.join(CRAWL_SUFFIXES)}); the others (a README.md) are skipped with a note, and "
                    "subfolders are not read (add 'crawl/**/*.warc.gz' for theirs). A file or glob is read whatever "
                    "its name.")
    ap.add_argument("--input-list", action="append", default=[], metavar="FILE",
                    help="a file naming input files, one path a line (# comments; any FileSystems path, and so "
                    "is the file): for crawls of many files, e.g. Common Crawl's warc.paths with the bucket "
                    "prefixed. The paths are not asked for one by one on a store before the run; a missing one, "
                    "local or not, is a file error of the run (--max-file-errors), and missing local ones are "
                    "named in a warning as the run starts."),
    ap.add_argument("--output", required=True, metavar="DIR", help="output directory (local, gs://, s3://): new, "
                    "empty, an interrupted run of the same command (run again from the start), or a run that "
                    "ended in an error (replaced)")
    ap.add_argument("--config", default=None, metavar="RECIPE", help="recipe: a built-in name (tokenmill recipes "
                    "lists them) or a TOML file (default: the built-in 'default' recipe)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace a finished run, or an interrupted run of another recipe or inputs, in --output "
                    "(a run that ended in an error is replaced without it)")
    shared_filesystem_flag(ap)
    ap.add_argument("--max-file-errors", type=float, default=0.0, metavar="FRACTION",
                    help="share of input files that may fail to be read to the end before the run exits non-zero "
                    "(default 0: any file error fails the run; the outputs hold what could be read either way)")
    record_errors_flag(ap)
    console_flags(ap)
    ap.add_argument("--keep-scored", action="store_true",
                    help="also write every extracted document with its text and signals to scored/, cut across input "
                    "files in input order every [output] ledger_rows_per_part rows (for tokenmill select, which "
                    "filters the text again)")
    return ap


def prepare_run(recipe: Recipe, output: str, info: dict[str, Any], quiet: bool, dry: bool = False, **prepare: Any
                ) -> tuple[DecontaminationPlan | None, list[dict[str, Any]]]:
    """What `run` and `select` do before their pipeline, in this order: build the decontamination index and check
    the releases of [dedup] against (a UsageError touches nothing), prepare the output folder (`prepare_output`
    with `prepare`), then write the index and the release list into its _staging/. A `dry` run (`is_dry_run`)
    stops after the checks: it writes nothing."""
    decontamination, index = decontamination_index(recipe, output, quiet)
    against = releases_against(recipe, info)
    if dry:
        return decontamination, against
    note = prepare_output(output, recipe=recipe, **prepare)  # this module's name: tests patch run_pipeline's
    if note and not quiet:
        print(f"tokenmill: {shown(note)}", file=sys.stderr)
    write_decontamination_index(decontamination, index)
    write_against_list(output, against)
    return decontamination, against


# When the command's clock started: main() sets the process's start (imports count: the user waited for them);
# run() and select() called as functions start it at their own entry.
_command_started: float | None = None


def _started() -> float:
    return _command_started if _command_started is not None else time.time()


def _is_the_command() -> bool:
    """Whether this process was started as the tokenmill command (its console script, `python -m tokenmill_cli`,
    `python run_pipeline.py`): then its clock starts with the process. Called from other code (tests, a
    notebook) the process is older than the command, and run() starts the clock."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return os.path.basename(script) in ("tokenmill", "run_pipeline.py") or (
        os.path.basename(os.path.dirname(script)) == "tokenmill_cli")


def run(argv: list[str] | None = None, console_fd: int | None = None) -> dict[str, Any]:
    """Run the pipeline; returns stats.json's content, or for a --dry_run {DRY_RUN: what `driver.job.dry_run` returns}.
    Raises UsageError / RecipeError on bad input. With `console_fd` (a terminal) a local run draws its progress
    line there."""
    started = _started()
    args, beam_args, notes = parse_args(parser(), argv)
    check_fraction("--max-file-errors", args.max_file_errors, "the input files")
    check_fraction("--max-record-errors", args.max_record_errors, "the records")
    if not args.input and not args.input_list:
        raise UsageError("no input: give --input FILES_OR_GLOBS or --input-list FILE")
    remote, shared = remote_workers(beam_args), args.shared_filesystem
    recipe = load_recipe(args.config)  # a local --config suits any runner: only this driver reads it
    check_worker_paths(remote, shared, [("--output", args.output), *(("--input", p) for p in input_patterns(
        args.input)), *worker_paths(recipe)])
    check_paths(recipe)
    say_notes(notes, args.quiet)
    expanded, skipped = expand_inputs(args.input)
    listed, missing = listed_inputs(args.input_list, check=lambda list_file, path: check_worker_paths(
        remote, shared, [(f"--input-list {list_file}: the path", path)]))
    sizes: dict[str, int | None] = {**expanded, **listed}
    inputs = sorted(sizes)
    if skipped and not args.quiet:
        print(f"tokenmill: {shown(skipped_note(skipped))}", file=sys.stderr)
    if missing and not args.quiet:
        print(f"tokenmill: warning: --input-list names {len(missing)} file(s) that are not there, e.g. "
              f"{shown(missing[0])}: each is a file error of the run (--max-file-errors)", file=sys.stderr)
    output = args.output.rstrip("/")
    info = tokenizer_info(recipe)
    dry = is_dry_run(beam_args)
    decontamination, against = prepare_run(recipe, output, info, args.quiet, dry=dry, inputs=inputs,
                                           overwrite=args.overwrite)
    inputs_file = f"{output}/{INPUTS_FILE}"
    if not dry:
        write_input_list(inputs_file, inputs)
    progress, known_bytes = None, sum(n or 0 for n in sizes.values())
    if console_fd is not None and is_local(beam_args):
        from console.progress import ProgressLine

        progress = ProgressLine(f"{output}/{STAGING}", known_bytes, console_fd)
    near, input_bytes = recipe.dedup.near, None if None in sizes.values() else known_bytes
    # The job graph is fixed before the run: a small crawl's needs no unrolled near-dedup round.
    rounds = rounds_to_unroll(near.max_rounds, near.small_input_bytes, input_bytes)
    stats = execute(beam_args, output, lambda p: build_pipeline(
        p, inputs_file=inputs_file, output=output, recipe=recipe, tokenizer_info=info, keep_scored=args.keep_scored,
        progress=progress is not None, decontamination=decontamination, against=against, rounds=rounds,
        extract_children=extract_children(beam_args, input_bytes)), progress,
        started=started,
        judge=lambda stats: problems(stats, args.max_record_errors, args.max_file_errors), input_bytes=input_bytes)
    if DRY_RUN in stats:
        return stats
    if not args.quiet:
        for line in drop_warnings(stats, recipe.output.warn_drop_share):
            print(f"tokenmill: {shown(line)}", file=sys.stderr)
        if warning := stats.get("extract", {}).get("warning"):
            print(f"tokenmill: warning: {warning}", file=sys.stderr)
    return stats


def select_parser() -> argparse.ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill select",
        description="Apply another recipe to a run made with --keep-scored, without re-reading the crawl: its "
        "scored/ documents\n(text and signals) go through the new recipe's filters, decontamination, "
        "classifiers, dedup and tokenization.\nThe recipe may not change what decided extraction ([read], "
        "[extract], [language], the URL filter). Writes\n--output as `tokenmill run` does; flags tokenmill does "
        "not know go to Beam.",
        epilog="example:\n  tokenmill run --input 'crawl/*.warc.gz' --output scored --keep-scored\n"
        "  tokenmill select scored --config strict.toml --output strict")
    ap.add_argument("source", help="output directory of a run made with --keep-scored")
    ap.add_argument("--config", default=None, metavar="RECIPE", help="the recipe to apply: a built-in name or a "
                    "TOML file (default: the built-in 'default' recipe)")
    ap.add_argument("--output", required=True, metavar="DIR", help="output directory (local, gs://, s3://)")
    ap.add_argument("--overwrite", action="store_true", help="replace a finished run in --output")
    shared_filesystem_flag(ap)
    record_errors_flag(ap)
    console_flags(ap)
    return ap


def select(argv: list[str] | None = None, console_fd: int | None = None) -> dict[str, Any]:
    """`tokenmill select SRC --config R --output OUT`: another recipe over a --keep-scored run."""
    started = _started()
    args, beam_args, notes = parse_args(select_parser(), argv)
    check_fraction("--max-record-errors", args.max_record_errors, "the records")
    remote, shared = remote_workers(beam_args), args.shared_filesystem
    check_worker_paths(remote, shared, [("the source run", args.source), ("--output", args.output)])
    source = args.source.rstrip("/")
    manifest = checked_source(source)
    recipe = load_recipe(args.config)  # read by this driver only, as in run()
    check_worker_paths(remote, shared, worker_paths(recipe))
    check_paths(recipe)
    say_notes(notes, args.quiet)
    check_fixed_before_filters(manifest["recipe"], recipe.to_dict())
    source_stats = read_json(f"{source}/stats.json")
    output = args.output.rstrip("/")
    info = tokenizer_info(recipe)
    dry = is_dry_run(beam_args)
    decontamination, against = prepare_run(recipe, output, info, args.quiet, dry=dry, inputs=[source],
                                           overwrite=args.overwrite, command="select")
    inputs_file = f"{output}/{INPUTS_FILE}"
    if not dry:
        write_input_list(inputs_file, manifest["inputs"])
    near, source_bytes = recipe.dedup.near, scored_bytes(manifest)  # what select reads: the scored/ parts
    rounds = rounds_to_unroll(near.max_rounds, near.small_input_bytes, source_bytes)
    return execute(beam_args, output, lambda p: build_select_pipeline(
        p, source=source, source_stats=source_stats, output=output, recipe=recipe,
        tokenizer_info=info, inputs_file=inputs_file, decontamination=decontamination, against=against,
        rounds=rounds),
        started=started, judge=lambda stats: problems(stats, args.max_record_errors), input_bytes=source_bytes)


def main(argv: list[str] | None = None, command=None) -> int:
    import contextlib
    import logging

    flags = argparse.ArgumentParser(add_help=False)
    console_flags(flags)
    console, _ = flags.parse_known_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("apache_beam").setLevel(logging.INFO if console.verbose else logging.ERROR)
    terminal = os.isatty(2) and not console.quiet
    global _command_started
    _command_started = process_started() if _is_the_command() else None
    quiet = None if console.verbose else QuietStderr()
    try:
        with quiet or contextlib.nullcontext():
            stats = (command or run)(argv, console_fd=(quiet.saved if quiet else 2) if terminal else None)
    except (UsageError, RecipeError) as exc:
        print(f"tokenmill: {shown(str(exc))}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"tokenmill: error: {shown(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # the workers got the same Ctrl-C; what they printed is in --verbose's output
        line = f"tokenmill: {shown(str(exc)) if isinstance(exc, JobLeftRunning) else RESUME}\n"
        if quiet is not None and quiet.interrupted.is_set():
            os.write(quiet.terminal, line.encode())
        else:
            sys.stderr.write(line)
        return INTERRUPTED
    except Exception:
        # Beam's clean-up can turn the Ctrl-C into another error while it unwinds; standard error is silenced
        # from the interrupt on, so without this the user would see nothing and exit 1.
        if quiet is not None and quiet.interrupted.is_set():
            os.write(quiet.terminal, f"tokenmill: {RESUME}\n".encode())
            return INTERRUPTED
        raise
    finally:
        _command_started = None
    if DRY_RUN in stats:
        print(f"tokenmill: {shown(dry_run_summary(stats[DRY_RUN]))}")
        return 0
    print(f"tokenmill: {run_summary(stats)}")  # the same figures, in the same style, as `tokenmill stats`
    # The run's own parser reads the limits (select's arguments parse with it too: --output is the one it needs).
    limit, _ = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    reading = command is None or command is run  # select reads a finished run, not input files
    failed = False
    for lines, fails in problems(stats, limit.max_record_errors, limit.max_file_errors if reading else None):
        failed |= fails
        for line in lines if fails or not console.quiet else []:
            print(f"tokenmill: {'error' if fails else 'warning'}: {shown(line)}", file=sys.stderr)
    return 1 if failed else 0


def _main_after_imports() -> int:
    """`main`, once a Ctrl-C held during the imports (if any) is raised: inside `finish`, one line and 130."""
    _IMPORTS_HELD.__exit__(None, None, None)
    return main()


if __name__ == "__main__":
    leave(finish(_main_after_imports, interrupted=RESUME))
