"""The `tokenmill` command: one module per command group (runs, reading, releases, mixtures, classifiers); `main` picks
the command. Only `run`, `select` and `demo` import Apache Beam."""

from __future__ import annotations

import sys
from collections.abc import Callable

from console.safe import ArgumentParser
from tokenmill_cli.classifiers import cmd_eval_classifier, cmd_train_classifier
from tokenmill_cli.exports import cmd_export
from tokenmill_cli.mixtures import cmd_mix
from tokenmill_cli.reading import cmd_decode, cmd_diff, cmd_inspect, cmd_report, cmd_stats
from tokenmill_cli.releases import cmd_release, cmd_verify
from tokenmill_cli.runs import _run, _select, cmd_demo, cmd_recipes

USAGE = """usage: tokenmill <command> [args]        (tokenmill --version)

commands:
  run       run the pipeline (same flags as run_pipeline.py; unknown flags go to Beam)
  demo      build a small demo crawl, run the pipeline on it, print where the output is
  select    apply another recipe to a run made with --keep-scored, without re-reading the crawl
  recipes   list the built-in recipes; --show NAME prints one resolved, as TOML
  stats     the funnel of a run: per stage in/out/dropped by reason, mix by language and topic (or a mixture's sources)
  inspect   show kept or dropped documents (sampled, filtered), or one document's whole history
  diff      what one run kept and the other dropped, with reasons
  report    write a self-contained HTML report of a run (charts, sampled drops) or of a mixture's composition
  release   copy a run's shards into an immutable, checksummed release with a dataset card
  verify    check a release's (or a mixture's) checksums and schema (non-zero exit on any mismatch)
  mix       blend releases by weight into a mixture a training run reads (MIX.toml --to DIR)
  export    a release or mixture in a training stack's format: megatron, mds, litdata, hf (datasets)
  decode    token ids back to text, offline (--tokenizer NAME or --from RUN_OR_RELEASE)
  train-classifier  train a fastText classifier from labeled JSONL
  eval-classifier   evaluate a classifier on labeled JSONL (per-class P/R/F1, macro-F1, confusion)

`tokenmill COMMAND --help` says what a command reads and writes, every option with its default, and an example.

Paths may be local or on any Beam FileSystems store (gs://, s3://). Stores take their settings from the
standard environment (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ..., GOOGLE_APPLICATION_CREDENTIALS) or from
Beam's own flags on any command (--s3_endpoint_url=URL, --s3_access_key_id=..., --project=...).
"""


def parsers() -> dict[str, Callable[[], ArgumentParser]]:
    """Each command's argument parser, built when called (`run` and `select` import Apache Beam): what
    `tokenmill COMMAND --help` prints, walked by the tests so that no option goes without a help line."""
    from tokenmill_cli.classifiers import eval_parser, train_parser
    from tokenmill_cli.exports import export_parser
    from tokenmill_cli.mixtures import mix_parser
    from tokenmill_cli.reading import decode_parser, diff_parser, inspect_parser, report_parser, stats_parser
    from tokenmill_cli.releases import release_parser, verify_parser
    from tokenmill_cli.runs import demo_parser, recipes_parser

    def run_parser() -> ArgumentParser:
        import run_pipeline

        return run_pipeline.parser()

    def select_parser() -> ArgumentParser:
        import run_pipeline

        return run_pipeline.select_parser()

    return {"run": run_parser, "demo": demo_parser, "select": select_parser, "recipes": recipes_parser,
            "stats": stats_parser, "inspect": inspect_parser, "diff": diff_parser, "report": report_parser,
            "release": release_parser, "verify": verify_parser, "mix": mix_parser, "export": export_parser,
            "decode": decode_parser,
            "train-classifier": train_parser, "eval-classifier": eval_parser}


def _paged(command):
    """Run a printing command; on a terminal, long output goes through the pager (as git does)."""

    def run(argv: list[str]) -> int:
        if not sys.stdout.isatty() or "--json" in argv:
            return command(argv)
        import contextlib
        import io
        import pydoc

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = command(argv)
        text = buffer.getvalue()
        if text.count("\n") > 40:
            pydoc.pager(text)
        else:
            sys.stdout.write(text)
        return code

    return run


def _ends_as_unix_tools_do(command):
    """`main`, ending quietly when stopped from outside: Ctrl-C gives one line and 130, a reader that closes the
    pipe (`tokenmill inspect RUN | head -1`) nothing and 141 (console/endings.py says why)."""

    def run(argv: list[str] | None = None) -> int:
        from console.endings import RESUME, finish, leave

        name = (sys.argv[1:] if argv is None else argv)[:1]
        beam = name in (["run"], ["select"], ["demo"])
        code = finish(lambda: command(argv), interrupted=RESUME if beam else "interrupted")
        if argv is None:  # the command's own process: it ends here (console/endings.leave says why this way)
            leave(code)
        return code

    return run


@_ends_as_unix_tools_do
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("--version", "-V"):
        from outputs.run_files import tokenmill_version

        print(f"tokenmill {tokenmill_version()}")
        return 0
    command, rest = argv[0], argv[1:]
    commands = {
        "run": _run,
        "select": _select,
        "demo": cmd_demo,
        "recipes": cmd_recipes,
        "stats": cmd_stats,
        "inspect": _paged(cmd_inspect),
        "diff": _paged(cmd_diff),
        "report": cmd_report,
        "release": cmd_release,
        "verify": cmd_verify,
        "mix": cmd_mix,
        "export": cmd_export,
        "decode": cmd_decode,
        "train-classifier": cmd_train_classifier,
        "eval-classifier": cmd_eval_classifier,
    }
    if command not in commands:
        import difflib

        from console.safe import shown

        close = difflib.get_close_matches(command, commands, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        print(f"tokenmill: unknown command '{shown(command)}'{hint} (tokenmill --help lists the commands)",
              file=sys.stderr)
        return 2
    if command not in ("run", "select", "demo"):  # those hand every Beam flag to the pipeline
        from storage.files import configure, split_store_flags

        store, rest = split_store_flags(rest)
        if store:
            configure(store)
    from storage.paths import UnsafePathError

    try:
        return commands[command](rest)
    except UnsafePathError as exc:  # a manifest listing a path outside its folder (a mixture's, read by any command)
        from console.safe import say

        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
