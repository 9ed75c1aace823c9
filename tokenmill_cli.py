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
  train-classifier  train a fastText classifier from labeled JSONL
  eval-classifier   evaluate a classifier on labeled JSONL (per-class P/R/F1, macro-F1, confusion)
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


def _data_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--label-field", default="label")


def _print_eval(ev, out_json: str | None) -> None:
    import json

    print(f"examples {ev.examples}  accuracy {ev.accuracy:.4f}  macro-F1 {ev.macro_f1:.4f}")
    print(f"{'class':28s} {'precision':>9s} {'recall':>7s} {'f1':>7s} {'support':>8s}")
    for label, m in ev.per_class.items():
        print(f"{label:28s} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:7.3f} {m['support']:8d}")
    if out_json:
        with open(out_json, "w") as f:
            json.dump(ev.to_dict(), f, indent=2, sort_keys=True)
        print(f"metrics written to {out_json}")


def cmd_train_classifier(argv: list[str]) -> int:
    from classifiers.training import DataError, TrainParams, evaluate, quantize, read_jsonl, train

    defaults = TrainParams()
    ap = argparse.ArgumentParser(prog="tokenmill train-classifier")
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", default=None)
    ap.add_argument("--out", required=True, help="model path (.bin); with --quantize also a .ftz beside it")
    ap.add_argument("--quantize", action="store_true")
    _data_args(ap)
    for name in ("epoch", "wordNgrams", "dim", "minCount", "seed"):
        ap.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    ap.add_argument("--lr", type=float, default=defaults.lr)
    ap.add_argument("--loss", default=defaults.loss)
    args = ap.parse_args(argv)
    try:
        rows = read_jsonl(args.train, args.text_field, args.label_field)
        valid = read_jsonl(args.valid, args.text_field, args.label_field) if args.valid else None
    except (DataError, OSError) as exc:
        print(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    params = TrainParams(epoch=args.epoch, lr=args.lr, wordNgrams=args.wordNgrams, dim=args.dim,
                         minCount=args.minCount, loss=args.loss, seed=args.seed)
    model = train(rows, args.out, params)
    print(f"trained on {len(rows)} examples, {len(model.labels)} labels: {args.out}")
    if valid:
        ev = evaluate(model, valid)
        _print_eval(ev, os.path.splitext(args.out)[0] + ".eval.json")
        if args.quantize:
            ftz = os.path.splitext(args.out)[0] + ".ftz"
            small = quantize(args.out, ftz)
            qev = evaluate(small, valid)
            sizes = f"{os.path.getsize(ftz) / 1e6:.1f} MB vs {os.path.getsize(args.out) / 1e6:.1f} MB"
            print(f"quantized: {ftz} ({sizes}), "
                  f"accuracy {qev.accuracy:.4f} ({qev.accuracy - ev.accuracy:+.4f}), "
                  f"macro-F1 {qev.macro_f1:.4f} ({qev.macro_f1 - ev.macro_f1:+.4f})")
    elif args.quantize:
        ftz = os.path.splitext(args.out)[0] + ".ftz"
        quantize(args.out, ftz)
        print(f"quantized: {ftz} (give --valid to see the accuracy change)")
    return 0


def cmd_eval_classifier(argv: list[str]) -> int:
    from classifiers.fasttext_model import FastTextClassifier
    from classifiers.training import DataError, evaluate, read_jsonl

    ap = argparse.ArgumentParser(prog="tokenmill eval-classifier")
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", default=None, help="metrics file (default: next to the model)")
    _data_args(ap)
    args = ap.parse_args(argv)
    try:
        rows = read_jsonl(args.data, args.text_field, args.label_field)
    except (DataError, OSError) as exc:
        print(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    ev = evaluate(FastTextClassifier(args.model), rows)
    _print_eval(ev, args.json or os.path.splitext(args.model)[0] + ".eval.json")
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
        "train-classifier": cmd_train_classifier,
        "eval-classifier": cmd_eval_classifier,
    }
    if command not in commands:
        print(f"tokenmill: unknown command '{command}'\n{USAGE}", file=sys.stderr)
        return 2
    return commands[command](rest)


if __name__ == "__main__":
    sys.exit(main())
