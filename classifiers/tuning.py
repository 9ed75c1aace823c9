"""Hyper-parameters picked on held-out data: what `tokenmill train-classifier` does unless every parameter is
given.

A small seeded search, not fastText's autotune: autotune searches for as long as its time budget lasts, so the
model it returns depends on how fast the machine is and what else runs on it; this search trains a fixed list of
candidates (`CANDIDATES`), each with one thread and a fixed seed, so the same data always picks the same
parameters and gives the same model. The budget is the list: 16 candidates, stated with their cost on the
project's topic sets in docs/classifiers.md.

The held-out split is a fifth of the training rows per label (`held_out`), chosen by a seeded hash of each
row's text, so it does not depend on the rows' order. Candidates are compared by macro-F1 on it (ties: the
earlier candidate); the chosen parameters are then trained on all rows. A parameter the user gave is fixed:
the candidates vary only the others, and a candidate list that collapses to one setting trains nothing twice.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass, field

import xxhash

from classifiers.training import TrainParams, evaluate, train

# The grid: loss x word n-grams x passages x epochs, at minCount 2 (words seen once are mostly noise in these
# sizes). Where each value comes from (docs/classifiers.md, bench/train_topic.py): bbc_news needs more than
# fastText's usual 5-10 epochs (0.894 at 10, 0.945 at 15); 20 Newsgroups needs unigrams, one-vs-all and 60-word
# passages (0.752 with bigrams, 0.825 with all three at 40 epochs).
SEARCHED = ("loss", "wordNgrams", "passage_words", "epoch", "minCount")
CANDIDATES: list[dict] = [
    {"loss": loss, "wordNgrams": ngrams, "passage_words": passages, "epoch": epoch, "minCount": 2}
    for epoch in (15, 40) for loss in ("softmax", "ova") for ngrams in (2, 1) for passages in (0, 60)
]
HELD_OUT_FRACTION = 0.2


def held_out(rows: list[tuple[str, str]], fraction: float = HELD_OUT_FRACTION, seed: int = 0
             ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, held out): per label, the `fraction` of its rows whose seeded text hash is smallest (at least
    one row of a label with two or more; a label seen once stays in training)."""
    by_label: dict[str, list[tuple[int, int]]] = {}
    for i, (text, label) in enumerate(rows):
        by_label.setdefault(label, []).append((xxhash.xxh3_64_intdigest(text.encode("utf-8"), seed=seed), i))
    out: set[int] = set()
    for items in by_label.values():
        if len(items) >= 2:
            out.update(i for _, i in sorted(items)[:max(1, round(len(items) * fraction))])
    return [r for i, r in enumerate(rows) if i not in out], [r for i, r in enumerate(rows) if i in out]


@dataclass
class Trial:
    params: dict
    macro_f1: float | None  # None: fastText failed on this setting (its "Encountered NaN", say)
    seconds: float
    error: str = ""


@dataclass
class Search:
    chosen: TrainParams
    held_out_f1: float | None
    train_rows: int
    held_out_rows: int
    trials: list[Trial] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"chosen": dataclasses.asdict(self.chosen), "held_out_macro_f1": self.held_out_f1,
                "train_rows": self.train_rows, "held_out_rows": self.held_out_rows,
                "trials": [dataclasses.asdict(t) for t in self.trials]}


def candidates(base: TrainParams, fixed: set[str]) -> list[TrainParams]:
    """The grid with the user's `fixed` parameters held at `base`'s values, duplicates dropped, in order."""
    seen, out = set(), []
    for c in CANDIDATES:
        params = dataclasses.replace(base, **{k: v for k, v in c.items() if k not in fixed})
        key = tuple(sorted(dataclasses.asdict(params).items()))
        if key not in seen:
            seen.add(key)
            out.append(params)
    return out


_ROWS: tuple[list, list] = ([], [])  # a search worker's (training part, held-out part), set once per process


def _set_rows(train_rows: list, valid: list) -> None:
    global _ROWS
    _ROWS = (train_rows, valid)


def _trial(params: TrainParams) -> Trial:
    """One candidate, in a search worker: trained on the training part, scored on the held-out part."""
    start = time.perf_counter()
    varied = {k: getattr(params, k) for k in SEARCHED}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model = train(_ROWS[0], os.path.join(tmp, "candidate.bin"), params)
            return Trial(varied, round(evaluate(model, _ROWS[1]).macro_f1, 6), round(time.perf_counter() - start, 2))
        except (RuntimeError, ValueError) as exc:  # fastText raises RuntimeError for "Encountered NaN"
            return Trial(varied, None, round(time.perf_counter() - start, 2), str(exc)[:200])


def search(rows: list[tuple[str, str]], base: TrainParams, fixed: set[str], log=lambda _line: None,
           workers: int | None = None) -> Search:
    """Each candidate trained on the training part and scored on the held-out part, `workers` processes at a
    time (default: one per core; each trains on one thread with its seed, so the result does not depend on
    how many); the best one's params."""
    import concurrent.futures
    import multiprocessing

    train_rows, valid = held_out(rows, seed=base.seed)
    options = candidates(base, fixed)
    result = Search(options[0], None, len(train_rows), len(valid))
    if len(options) == 1 or not valid:
        return result
    workers = max(1, min(len(options), workers or os.cpu_count() or 1))
    best = None
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_set_rows, initargs=(train_rows, valid)) as pool:
        for n, (params, trial) in enumerate(zip(options, pool.map(_trial, options), strict=True), 1):
            result.trials.append(trial)
            score = "failed: " + trial.error if trial.macro_f1 is None else format(trial.macro_f1, ".4f")
            log(f"  candidate {n}/{len(options)} {_short(trial.params)}: held-out macro-F1 {score} "
                f"({trial.seconds:.1f} s)")
            if trial.macro_f1 is not None and (best is None or trial.macro_f1 > best[0]):
                best = (trial.macro_f1, params)
    if best is None:
        raise RuntimeError("fastText failed on every candidate setting: " + result.trials[-1].error)
    result.held_out_f1, result.chosen = best
    return result


def _short(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())
