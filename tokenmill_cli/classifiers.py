"""`tokenmill train-classifier` and `eval-classifier`."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from console.safe import ArgumentParser, say


def _data_args(ap: ArgumentParser) -> None:
    ap.add_argument("--text-field", default="text", metavar="FIELD",
                    help="the JSON field holding each example's text (default %(default)s)")
    ap.add_argument("--label-field", default="label", metavar="FIELD",
                    help="the JSON field holding each example's label (default %(default)s)")


# fastText's training parameters, as train-classifier takes them.
_PARAM_HELP = {
    "epoch": "passes over the training data (default %(default)s)",
    "wordNgrams": "longest word n-gram used as a feature (default %(default)s)",
    "dim": "size of the word vectors (default %(default)s)",
    "minCount": "words seen fewer times than this are left out (default %(default)s)",
    "seed": "fastText's random seed: the same seed and data give the same model (default %(default)s)",
    "passage_words": "also train on passages of this many words cut from longer examples, same label; 0 = off "
                     "(default %(default)s)",
}


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


def train_parser() -> ArgumentParser:
    from classifiers.training import TrainParams

    defaults = TrainParams()
    ap = ArgumentParser(
        prog="tokenmill train-classifier",
        description="Train a fastText classifier (quality or topic) from labeled JSONL, one example a line. "
        "Writes the model\n(--out); with --valid also its evaluation beside it (.eval.json); with --quantize a "
        "smaller .ftz too.\nA recipe's [quality] or [topic] section then names the model.",
        epilog="example:\n  tokenmill train-classifier --train train.jsonl --valid valid.jsonl --out topic.bin "
        "--quantize")
    ap.add_argument("--train", required=True, metavar="JSONL", help="the training examples (any FileSystems path)")
    ap.add_argument("--valid", default=None, metavar="JSONL",
                    help="held-out examples to evaluate the model on (default: none, no evaluation)")
    ap.add_argument("--out", required=True, help="model path (.bin); with --quantize also a .ftz beside it")
    ap.add_argument("--quantize", action="store_true",
                    help="also write a quantized model (.ftz, much smaller) and, with --valid, its accuracy")
    _data_args(ap)
    # A parameter given is fixed; one not given is searched (classifiers/tuning.py) unless --no-tune, when it
    # takes the default shown. The defaults are read from TrainParams, not set on the parser, so that "given"
    # can be told from "left at its default".
    for name, text in _PARAM_HELP.items():
        ap.add_argument(f"--{name}", type=int, default=None, metavar="N",
                        help=text.replace("%(default)s", str(getattr(defaults, name))) + _searched(name))
    ap.add_argument("--lr", type=float, default=None, help=f"learning rate (default {defaults.lr})")
    ap.add_argument("--loss", default=None, choices=["softmax", "ns", "hs", "ova"],
                    help=f"fastText's loss: one of %(choices)s (default {defaults.loss})" + _searched("loss"))
    ap.add_argument("--no-tune", action="store_true",
                    help="train once with the parameters given and tokenmill's defaults for the rest (shown above), "
                    "instead of picking "
                    "the rest on a held-out fifth of --train (8 candidate settings, each trained on one thread: "
                    "docs/classifiers.md gives their cost)")
    return ap


def _searched(name: str) -> str:
    from classifiers.tuning import CANDIDATES, SEARCHED

    values = sorted({c[name] for c in CANDIDATES}, key=str) if name in SEARCHED else []
    if len(values) == 1:
        return f"; {values[0]} when the settings are searched (not given)"
    return "; searched on held-out data when not given" if values else ""


def cmd_train_classifier(argv: list[str]) -> int:
    from classifiers.training import DataError, TrainParams, evaluate, quantize, read_jsonl, train

    args = train_parser().parse_args(argv)
    try:
        rows = read_jsonl(args.train, args.text_field, args.label_field)
        valid = read_jsonl(args.valid, args.text_field, args.label_field) if args.valid else None
    except (DataError, OSError) as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    from classifiers.training import _require_trainer

    try:
        _require_trainer()
    except RuntimeError as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    names = [*_PARAM_HELP, "lr", "loss"]
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    params = dataclasses.replace(TrainParams(), **given)
    found = None
    if not args.no_tune:
        from classifiers.tuning import SEARCHED, TuningError, search

        say(f"picking {', '.join(n for n in SEARCHED if n not in given) or 'nothing'} on a held-out fifth of "
            f"{len(rows)} examples")
        try:
            found = search(rows, params, set(given), log=say)
        except TuningError as exc:
            say(f"tokenmill: {exc}", file=sys.stderr)
            return 2
        params = found.chosen
        if found.why:
            say(f"not searched: {found.why}")
        else:
            say(f"chosen: {' '.join(f'{n}={getattr(params, n)}' for n in SEARCHED)} (held-out macro-F1 "
                f"{found.held_out_f1:.4f} on {found.held_out_rows} examples); trained on all {len(rows)}")
    # The chosen setting on all rows can still meet fastText's "Encountered NaN" (other data than its trial's):
    # then the next best, in the search's order (deterministic), and so on.
    fallbacks = found.ranked()[1:] if found is not None and found.trials else []
    while True:
        try:
            model = train(rows, args.out, params)
            break
        except RuntimeError as exc:
            if not fallbacks:
                say(f"tokenmill: fastText could not train {args.out} with these settings: {exc}; try a lower --lr",
                    file=sys.stderr)
                return 2
            say(f"fastText failed on all rows with the chosen setting ({exc}); the next best")
            params = fallbacks.pop(0)
            found.chosen = params
    if found is not None:  # how the settings were chosen, beside the model (byte-identical for the same data)
        from storage.files import write_bytes

        tuning = os.path.splitext(args.out)[0] + ".tuning.json"
        write_bytes(tuning, (json.dumps(found.to_dict(), indent=2, sort_keys=True) + "\n").encode())
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


def eval_parser() -> ArgumentParser:
    ap = ArgumentParser(
        prog="tokenmill eval-classifier",
        description="Evaluate a fastText classifier on labeled JSONL: accuracy, macro-F1 and per class precision, "
        "recall, F1\nand support on the terminal; the metrics (with the confusion matrix) to a JSON file.",
        epilog="example:\n  tokenmill eval-classifier --model topic.bin --data test.jsonl")
    ap.add_argument("--model", required=True, help="the model (.bin or .ftz)")
    ap.add_argument("--data", required=True, metavar="JSONL", help="the labeled examples to evaluate on")
    ap.add_argument("--json", default=None, metavar="FILE",
                    help="metrics file (default: the model's path with .eval.json)")
    _data_args(ap)
    return ap


def cmd_eval_classifier(argv: list[str]) -> int:
    from classifiers.fasttext_model import FastTextClassifier
    from classifiers.training import DataError, evaluate, read_jsonl

    args = eval_parser().parse_args(argv)
    try:
        rows = read_jsonl(args.data, args.text_field, args.label_field)
    except (DataError, OSError) as exc:
        say(f"tokenmill: {exc}", file=sys.stderr)
        return 2
    ev = evaluate(FastTextClassifier(args.model), rows)
    _print_eval(ev, args.json or os.path.splitext(args.model)[0] + ".eval.json")
    return 0
