"""`tokenmill run`, `select`, `demo`, `recipes`: the commands that run a pipeline or show its recipes."""

from __future__ import annotations

import os
import sys

from console.safe import ArgumentParser, say
from schemas.recipe import builtin_recipes, load_recipe


def demo_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill demo",
        description="Build a small demo crawl (two WARC files of pages written for the purpose: kept ones, "
        "duplicates, error\npages, boilerplate) and run the default recipe on it, as `tokenmill run` would. "
        "Writes DIR/crawl/ and\nDIR/out/ (shards/, ledger/, manifest.json, stats.json), replacing an earlier "
        "demo there. Other flags go\nto `tokenmill run` (--verbose, --quiet, Beam's).",
        epilog="example:\n  tokenmill demo && tokenmill stats demo_out/out")
    ap.add_argument("--dir", default="demo_out", help="where to write the crawl and the output (default "
                    "%(default)s)")
    return ap


def cmd_demo(argv: list[str]) -> int:
    from demo.crawl import build_demo_crawl

    args, beam_args = demo_parser().parse_known_args(argv)
    crawl = os.path.join(args.dir, "crawl")
    output = os.path.join(args.dir, "out")
    paths = build_demo_crawl(crawl)
    say(f"tokenmill demo: wrote {len(paths)} WARC files to {crawl}/")
    # The demo owns its folder: a second demo replaces the first.
    code = _run(["--input", f"{crawl}/*.warc.gz", "--output", output, "--overwrite", *beam_args])
    if code == 0:
        say(f"tokenmill demo: output in {output}/ (shards/, ledger/, manifest.json, stats.json)")
    return code


def recipes_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill recipes",
        description="List the built-in recipes with a line on each, or print one resolved (its base applied, "
        "every default\nfilled in) as TOML: a starting point for a recipe of your own. Reads and writes nothing "
        "else.",
        epilog="examples:\n  tokenmill recipes\n  tokenmill recipes --show fineweb > my.toml   "
        "(then: tokenmill run ... --config my.toml)")
    ap.add_argument("--show", metavar="RECIPE", help="print this recipe (a built-in name or a file) resolved: its "
                    "base applied, every default filled in, as TOML")
    return ap


def cmd_recipes(argv: list[str]) -> int:
    from schemas.recipe import RecipeError, to_toml

    args = recipes_parser().parse_args(argv)
    if args.show:
        try:
            print(to_toml(load_recipe(args.show).to_dict()), end="")
        except RecipeError as exc:
            say(f"tokenmill: {exc}", file=sys.stderr)
            return 2
        return 0
    for name, path in builtin_recipes().items():
        say(f"{name:12s} {load_recipe(str(path)).description}")
    return 0


# The pipeline commands import Apache Beam (~0.9 s); the commands that read a finished run do not need it.
def _import_run_pipeline():
    """run_pipeline, which imports Apache Beam: a Ctrl-C during the import is held until it ends
    (console/endings.held_interrupts says why)."""
    from console.endings import held_interrupts

    with held_interrupts():
        import run_pipeline
    return run_pipeline


def _run(argv: list[str]) -> int:
    return _import_run_pipeline().main(argv)


def _select(argv: list[str]) -> int:
    run_pipeline = _import_run_pipeline()
    return run_pipeline.main(argv, command=run_pipeline.select)
