"""`tokenmill train-classifier` and `eval-classifier`."""

from __future__ import annotations

import os
import sys

from console.safe import ArgumentParser, say


def _data_args(ap: ArgumentParser) -> None:
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--label-field", default="label")


def _print_eval(ev, out_json: str | None) -> None:
    import json

    say(f"examples {ev.examples}  accuracy {ev.accuracy:.4f}  macro-F1 {ev.macro_f1:.4f}")
    say(f"{'class':28s} {'precision':>9s} {'recall':>7s} {'f1':>7s} {'support':>8s}")
    for label, m in ev.per_class.items():
        say(f"{label:28s} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:7.3f} {m['support']:8d}")
    if out_json:
        from storage.files import write_bytes

        write_bytes(out_json, (json.dumps(ev.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8"))
        say(f"metrics written to {out_json}")


def cmd_train_classifier(argv: list[str]) -> int:
    from classifiers.training import DataError, TrainParams, evaluate, quantize, read_jsonl, train

    defaults = TrainParams()
    ap = ArgumentParser(prog="tokenmill train-classifier")
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", default=None)
    ap.add_argument("--out", required=True, help="model path (.bin); with --quantize also a .ftz beside it")
    ap.add_argument("--quantize", action="store_true")
    _data_args(ap)
    for name in ("epoch", "wordNgrams", "dim", "minCount", "seed", "passage_words"):
        ap.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    ap.add_argument("--lr", type=float, default=defaults.lr)
    ap.add_argument("--loss", default=defaults.loss)
    args = ap.parse_args(argv)
    try:
        rows = read_jsonl(args.train, args.text_field, args.label_field)
        valid = read_jsonl(args.valid, args.text_field, args.label_field) if args.valid else None
    except (DataError, OSError) as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    params = TrainParams(epoch=args.epoch, lr=args.lr, wordNgrams=args.wordNgrams, dim=args.dim,
                         minCount=args.minCount, loss=args.loss, seed=args.seed, passage_words=args.passage_words)
    model = train(rows, args.out, params)
    say(f"trained on {len(rows)} examples, {len(model.labels)} labels: {args.out}")
    if valid:
        ev = evaluate(model, valid)
        _print_eval(ev, os.path.splitext(args.out)[0] + ".eval.json")
        if args.quantize:
            ftz = os.path.splitext(args.out)[0] + ".ftz"
            small = quantize(args.out, ftz)
            qev = evaluate(small, valid)
            from storage.files import size

            sizes = f"{size(ftz) / 1e6:.1f} MB vs {size(args.out) / 1e6:.1f} MB"
            say(f"quantized: {ftz} ({sizes}), "
                f"accuracy {qev.accuracy:.4f} ({qev.accuracy - ev.accuracy:+.4f}), "
                f"macro-F1 {qev.macro_f1:.4f} ({qev.macro_f1 - ev.macro_f1:+.4f})")
    elif args.quantize:
        ftz = os.path.splitext(args.out)[0] + ".ftz"
        quantize(args.out, ftz)
        say(f"quantized: {ftz} (give --valid to see the accuracy change)")
    return 0


def cmd_eval_classifier(argv: list[str]) -> int:
    from classifiers.fasttext_model import FastTextClassifier
    from classifiers.training import DataError, evaluate, read_jsonl

    ap = ArgumentParser(prog="tokenmill eval-classifier")
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", default=None, help="metrics file (default: next to the model)")
    _data_args(ap)
    args = ap.parse_args(argv)
    try:
        rows = read_jsonl(args.data, args.text_field, args.label_field)
    except (DataError, OSError) as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    ev = evaluate(FastTextClassifier(args.model), rows)
    _print_eval(ev, args.json or os.path.splitext(args.model)[0] + ".eval.json")
    return 0
