"""Hyper-parameters picked on held-out data: what `tokenmill train-classifier` does unless every parameter is
given.

A small seeded search, not fastText's autotune: autotune searches for as long as its time budget lasts, so the
model it returns depends on how fast the machine is and what else runs on it; this search trains a fixed list of
candidates (`CANDIDATES`), each with one thread and a fixed seed, so the same data always picks the same
parameters and gives the same model. The budget is the list: 8 candidates, stated with their cost on the
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

# The grid: loss x passages x epochs, bigrams, minCount 2 (words seen once are mostly noise in these sizes).
# Where each value comes from (docs/classifiers.md, bench/train_topic.py): bbc_news needs more than fastText's
# usual 5-10 epochs (0.894 at 10, 0.945 at 15); 20 Newsgroups needs one-vs-all and 60-word passages. Unigrams
# (wordNgrams 1), which the hand-picked 20 Newsgroups setting used, are left out: fasttext-numpy2 0.10.4's
# training with them is not deterministic (the same rows and seed in fresh processes: "Encountered NaN" in 4 of
# 6 runs, a model in the others, at lr 0.5 and at 0.1), so a search that tried them could pick differently
# from run to run; with bigrams the same inputs gave the same model bytes every time.
SEARCHED = ("loss", "wordNgrams", "passage_words", "epoch", "minCount")
CANDIDATES: list[dict] = [
    {"loss": loss, "wordNgrams": 2, "passage_words": passages, "epoch": epoch, "minCount": 2}
    for epoch in (15, 40) for loss in ("softmax", "ova") for passages in (0, 60)
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


# Fewer held-out rows than this pick by noise: the search is skipped and the defaults train (said so).
MIN_HELD_OUT = 20


class TuningError(ValueError):
    """The search cannot pick a setting: one line for the user."""


@dataclass
class Trial:
    params: dict
    macro_f1: float | None  # None: fastText failed on this setting (its "Encountered NaN", say)
    seconds: float = field(default=0.0, compare=False)  # in the log only: .tuning.json stays byte-identical
    error: str = ""


@dataclass
class Search:
    chosen: TrainParams
    held_out_f1: float | None
    train_rows: int
    held_out_rows: int
    trials: list[Trial] = field(default_factory=list)
    why: str = ""  # why nothing was searched, when nothing was

    def ranked(self) -> list[TrainParams]:
        """The candidates fastText trained, best held-out macro-F1 first (the earlier on a tie)."""
        scored = [(t.macro_f1, -i) for i, t in enumerate(self.trials) if t.macro_f1 is not None]
        return [self.params_of(self.trials[-i]) for _, i in sorted(scored, reverse=True)]

    def params_of(self, trial: Trial) -> TrainParams:
        return dataclasses.replace(self.chosen, **trial.params)

    def to_dict(self) -> dict:
        return {"chosen": dataclasses.asdict(self.chosen), "held_out_macro_f1": self.held_out_f1,
                "train_rows": self.train_rows, "held_out_rows": self.held_out_rows, "searched": bool(self.trials),
                "why_not_searched": self.why,
                "trials": [{"params": t.params, "macro_f1": t.macro_f1, "error": t.error} for t in self.trials]}


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


_ROWS: tuple[list, list, str] = ([], [], "")  # a search worker's training part, held-out part, scratch folder


def _set_rows(train_rows: list, valid: list, scratch: str) -> None:
    """A search worker's start: its data, once; Ctrl-C is the parent's to handle (it ends the workers)."""
    import signal

    global _ROWS
    _ROWS = (train_rows, valid, scratch)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _trial(params: TrainParams) -> Trial:
    """One candidate, in a search worker: trained on the training part, scored on the held-out part."""
    start = time.perf_counter()
    varied = {k: getattr(params, k) for k in SEARCHED}
    path = os.path.join(_ROWS[2], f"candidate-{os.getpid()}.bin")
    try:
        model = train(_ROWS[0], path, params)
        return Trial(varied, round(evaluate(model, _ROWS[1]).macro_f1, 6), round(time.perf_counter() - start, 2))
    except (RuntimeError, ValueError) as exc:  # fastText raises RuntimeError for "Encountered NaN"
        return Trial(varied, None, round(time.perf_counter() - start, 2), str(exc)[:200])


def _cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def search(rows: list[tuple[str, str]], base: TrainParams, fixed: set[str], log=lambda _line: None,
           workers: int | None = None) -> Search:
    """Each candidate trained on the training part and scored on the held-out part, `workers` processes at a
    time (default: one per core this process may use, at most 8: each holds the rows; each trains on one
    thread with its seed, so the result does not depend on how many); the best one's params. With too few
    rows to hold out, or one setting left, nothing is searched (`why`). Raises TuningError when fastText
    fails on every candidate."""
    import multiprocessing

    from classifiers.training import _require_trainer

    _require_trainer()  # here, once, not as sixteen failed candidates
    train_rows, valid = held_out(rows, seed=base.seed)
    options = candidates(base, fixed)
    result = Search(options[0], None, len(train_rows), len(valid))
    if len(options) == 1:
        result.why = "every searched setting is given"
        return result
    if len(valid) < MIN_HELD_OUT:
        result.chosen, result.why = base, f"{len(valid)} examples held out, fewer than {MIN_HELD_OUT}: the defaults"
        return result
    workers = max(1, min(len(options), workers or _cores(), 8))
    best = None
    # One fresh process per candidate (maxtasksperchild=1): fastText's training is not a pure function of its
    # inputs and seed within a process that trained before (a setting that diverged to NaN after one history
    # trained cleanly after another, tests/test_classifiers.py), so no candidate may follow another.
    with tempfile.TemporaryDirectory() as scratch, multiprocessing.get_context("spawn").Pool(
            workers, initializer=_set_rows, initargs=(train_rows, valid, scratch), maxtasksperchild=1) as pool:
        # imap keeps the candidates' order; leaving the block (a Ctrl-C too) terminates the workers at once.
        for n, (params, trial) in enumerate(zip(options, pool.imap(_trial, options, chunksize=1), strict=True), 1):
            result.trials.append(trial)
            score = "failed: " + trial.error if trial.macro_f1 is None else format(trial.macro_f1, ".4f")
            log(f"  candidate {n}/{len(options)} {_short(trial.params)}: held-out macro-F1 {score} "
                f"({trial.seconds:.1f} s)")
            if trial.macro_f1 is not None and (best is None or trial.macro_f1 > best[0]):
                best = (trial.macro_f1, params)
    if best is None:
        raise TuningError(f"fastText failed on every candidate setting ({result.trials[-1].error}); give the "
                          "settings yourself, e.g. a lower --lr, or --no-tune")
    result.held_out_f1, result.chosen = best
    return result


def _short(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())
