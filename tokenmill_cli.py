"""The `tokenmill` command: `run` (the pipeline, same as run_pipeline.py), `demo`, `recipes`."""

from __future__ import annotations

import argparse
import os
import sys

import run_pipeline
from schemas.recipe import builtin_recipes, load_recipe

USAGE = """usage: tokenmill <command> [args]

commands:
  run       run the pipeline (same flags as run_pipeline.py; unknown flags go to Beam)
  demo      build a small demo crawl, run the pipeline on it, print where the output is
  select    apply another recipe to a run made with --keep-scored, without re-reading the crawl
  recipes   list the built-in recipes
"""


def cmd_demo(argv: list[str]) -> int:
    from demo.crawl import build_demo_crawl

    ap = argparse.ArgumentParser(prog="tokenmill demo")
    ap.add_argument("--dir", default="demo_out", help="where to write the crawl and the output")
    args, beam_args = ap.parse_known_args(argv)
    crawl = os.path.join(args.dir, "crawl")
    output = os.path.join(args.dir, "out")
    paths = build_demo_crawl(crawl)
    print(f"tokenmill demo: wrote {len(paths)} WARC files to {crawl}/")
    code = run_pipeline.main(["--input", f"{crawl}/*.warc.gz", "--output", output, *beam_args])
    if code == 0:
        print(f"tokenmill demo: output in {output}/ (shards/, ledger/, manifest.json, stats.json)")
    return code


def cmd_recipes(argv: list[str]) -> int:
    for name, path in builtin_recipes().items():
        print(f"{name:12s} {load_recipe(str(path)).description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    commands = {
        "run": run_pipeline.main,
        "select": lambda a: run_pipeline.main(a, command=run_pipeline.select),
        "demo": cmd_demo,
        "recipes": cmd_recipes,
    }
    if command not in commands:
        print(f"tokenmill: unknown command '{command}'\n{USAGE}", file=sys.stderr)
        return 2
    return commands[command](rest)


if __name__ == "__main__":
    sys.exit(main())
