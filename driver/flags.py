"""The flags every command that runs a pipeline shares (--shared-filesystem, --max-record-errors, --verbose,
--quiet), and the checks its arguments pass before any file is touched: a flag neither tokenmill nor Beam
knows stops the run with the closest known one (`check_flags`), and `parse_args` hands Beam's flags the
runner's settings (driver/runner.py). Moved from run_pipeline.py on 2026-12-07 (issue 35)."""

from __future__ import annotations

import argparse
import sys

from apache_beam.options.pipeline_options import PipelineOptions

from console.safe import ArgumentParser, closest_flag, shown
from driver.errors import UsageError
from driver.runner import check_runner, dataflow_threads, flink_streaming, spark_environment_cache
from storage.files import configure as configure_store


def unknown_flags(beam_args: list[str]) -> list[str]:
    """The arguments among `beam_args` that no Beam PipelineOptions class knows (flags and stray values).

    Beam's own parsing drops them with a log line and runs on, so a mistyped tokenmill flag (--keep-scord) or
    a wrong one (--recipe) silently ran the default recipe. Asks Beam's parser itself, through the public
    `add_extra_args_fn` hook, so every options class Beam and its extras define is known."""
    import logging

    unknown: list[str] = []

    def probe(parser: argparse.ArgumentParser) -> None:
        unknown.extend(parser.parse_known_args(beam_args)[1])

    log = logging.getLogger("apache_beam.options.pipeline_options")
    level = log.level
    log.setLevel(logging.ERROR)  # its own "Discarding unparseable args" line
    try:
        PipelineOptions(beam_args).get_all_options(add_extra_args_fn=probe)
    finally:
        log.setLevel(level)
    return unknown


# Names other tools give what tokenmill calls otherwise.
_ALIASES = {"--recipe": "--config", "--inputs": "--input", "--output-dir": "--output"}


def check_flags(beam_args: list[str], ours: ArgumentParser) -> None:
    """UsageError naming the first argument neither tokenmill nor Beam knows."""
    unknown = unknown_flags(beam_args)
    if not unknown:
        return
    first = next((a for a in unknown if a.startswith("-")), unknown[0])
    if not first.startswith("-"):
        raise UsageError(f"unexpected argument '{first}' (several inputs: --input a.warc.gz b.warc.gz, or quote "
                         "a glob so the shell leaves it alone: --input 'crawl/*.warc.gz')")
    name = first.split("=", 1)[0]
    close = _ALIASES.get(name) or closest_flag(name, ours.flags())
    hint = f"; did you mean {close}?" if close else " (tokenmill run --help lists tokenmill's own flags)"
    raise UsageError(f"unknown flag {name}: neither tokenmill nor Beam knows it{hint}")


def shared_filesystem_flag(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--shared-filesystem", action="store_true",
                    help="the run's local paths (inputs, output, the recipe's lists, models, tokenizer and "
                    "releases) are on a filesystem mounted at the same place on every worker. Without it a runner "
                    "whose workers are not on this machine (DataflowRunner; FlinkRunner or SparkRunner with a "
                    "cluster master; PortableRunner with a --job_endpoint; containers of "
                    "--environment_type=DOCKER; never --environment_type=LOOPBACK) refuses a local path before it "
                    "starts; with it, such paths must be absolute")


def parse_args(ap: ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[str], list[str]]:
    """(tokenmill's arguments, Beam's flags, notes) of a command that runs a pipeline, after the checks every
    such command makes before it touches a file: no flag nobody knows, a runner that can start; a Dataflow run
    gets its worker harness threads (`dataflow_threads`), a Flink run streaming mode (`flink_streaming`), each
    with its note, which the command prints (`say_notes`) once its paths passed their checks: a refused command
    says one line. Then Beam's FileSystems gets the run's options (s3 endpoint and credentials, GCP project): the
    driver matches inputs and prepares the output before the pipeline runs, and the workers get the same options
    from the runner."""
    args, beam_args = ap.parse_known_args(argv)
    check_flags(beam_args, ap)
    check_runner(beam_args)
    beam_args, threads_note = dataflow_threads(beam_args)
    beam_args, streaming_note = flink_streaming(spark_environment_cache(beam_args))
    configure_store(beam_args)
    return args, beam_args, [n for n in (threads_note, streaming_note) if n]


def say_notes(notes: list[str], quiet: bool) -> None:
    """Print `parse_args`'s notes, one line each, unless --quiet."""
    if not quiet:
        for note in notes:
            print(f"tokenmill: {shown(note)}", file=sys.stderr)


def check_fraction(flag: str, value: float, of: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{flag} {value:g}: a fraction of {of}, in [0, 1]")


# One record in 10,000. A step that raises on a record is a bug or a hostile record, never a judgement on the
# text: the 2,500-page bench crawl and ../shared's WARC samples give none, so a larger share means a fault
# worth stopping for, while a 3-billion-record snapshot still finishes past up to 300,000 of them.
MAX_RECORD_ERRORS = 1e-4


def record_errors_flag(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--max-record-errors", type=float, default=MAX_RECORD_ERRORS, metavar="FRACTION",
                    help="share of records that may make a step raise (each becomes a ledger row with reason "
                    f"internal_error) before the run exits 1 (default {MAX_RECORD_ERRORS:g}, one in 10,000: a "
                    "clean crawl gives none; the outputs are complete either way)")


def console_flags(ap: argparse.ArgumentParser) -> None:
    """--verbose and --quiet, for the commands that run a pipeline."""
    ap.add_argument("--verbose", action="store_true", help="show Beam's and the workers' own logging (and, after "
                    "Ctrl-C, what each worker prints as it stops)")
    ap.add_argument("--quiet", action="store_true", help="print only the summary and errors")
