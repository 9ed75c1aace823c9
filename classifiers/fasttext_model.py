"""A trained fastText classifier: loaded once (from a local path or any Beam FileSystems path, copied to a
local cache), predicting on batches of texts. Predicts on lists only: fasttext 0.9.3's predict(str) breaks
under numpy 2."""

from __future__ import annotations

from collections.abc import Sequence

import fasttext

from classifiers.text import normalize_for_classifier
from storage.files import local_copy

LABEL_PREFIX = "__label__"


class FastTextClassifier:
    def __init__(self, path: str) -> None:
        fasttext.FastText.eprint = lambda *args, **kwargs: None
        self.path = path
        self.model = fasttext.load_model(local_copy(path))
        self.labels = [lbl.removeprefix(LABEL_PREFIX) for lbl in self.model.get_labels()]

    def predict(self, texts: Sequence[str], normalized: bool = False) -> list[tuple[str, float]]:
        """Top label and its probability per text (rounded to 6 digits so stored values are stable).
        `normalized=True` when the texts already went through normalize_for_classifier (shared between
        models scoring the same batch)."""
        if not texts:
            return []
        lines = list(texts) if normalized else [normalize_for_classifier(t) for t in texts]
        labels, probs = self.model.predict(lines, k=1)
        return [
            ((lbl[0].removeprefix(LABEL_PREFIX) if lbl else ""), round(min(float(p[0]) if len(p) else 0.0, 1.0), 6))
            for lbl, p in zip(labels, probs, strict=True)
        ]

    def probability(self, texts: Sequence[str], label: str, normalized: bool = False) -> list[float]:
        """Probability of `label` per text (0 when the model does not rank it)."""
        if not texts:
            return []
        k = len(self.labels)
        lines = list(texts) if normalized else [normalize_for_classifier(t) for t in texts]
        labels, probs = self.model.predict(lines, k=k)
        out = []
        for lbls, ps in zip(labels, probs, strict=True):
            score = 0.0
            for lbl, p in zip(lbls, ps, strict=True):
                if lbl.removeprefix(LABEL_PREFIX) == label:
                    score = float(p)
                    break
            out.append(round(min(score, 1.0), 6))
        return out
