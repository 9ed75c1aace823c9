"""Classifier training, evaluation, save/load, bad input, and both classifiers inside the pipeline."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import xxhash

import tokenmill_cli
from classifiers.fasttext_model import FastTextClassifier
from classifiers.text import normalize_for_classifier
from classifiers.training import DataError, TrainParams, evaluate, read_jsonl, train
from pipelines.classify import cut_from_histogram
from tests.conftest import shared_path
from tests.test_pipeline import IN_MEMORY, file_bytes, run


def bbc_split() -> tuple[list, list]:
    """bbc_news with a fixed held-out fifth: articles whose id hashes to 0 mod 5 (documented in bench)."""
    rows = [json.loads(line) for line in gzip.open(shared_path("data", "bbc_news", "bbc_news.jsonl.gz"), "rt")]
    train_rows, test_rows = [], []
    for r in rows:
        item = (r["title"] + "\n" + r["text"], r["label"])
        (test_rows if xxhash.xxh3_64_intdigest(r["id"].encode()) % 5 == 0 else train_rows).append(item)
    return train_rows, test_rows


def made_split() -> tuple[list, list]:
    """Labeled paragraphs the project writes itself (demo/prose.py: topics sea, food, science), every fifth
    held out: what the tests of the classifier's code read, so that they run on a fresh clone."""
    from demo.prose import labeled_paragraphs

    rows = labeled_paragraphs(200)
    return [r for i, r in enumerate(rows) if i % 5], rows[::5]


@pytest.fixture(scope="module")
def topic_model(tmp_path_factory) -> Path:
    """A topic model trained on real news (bbc_news, shared data): for the quality measure on held-out news."""
    train_rows, _ = bbc_split()
    path = tmp_path_factory.mktemp("models") / "topic.bin"
    train(train_rows, str(path), TrainParams(epoch=15))
    return path


@pytest.fixture(scope="module")
def made_model(tmp_path_factory) -> Path:
    """A topic model trained on made_split's paragraphs: for everything but the quality measure."""
    train_rows, _ = made_split()
    path = tmp_path_factory.mktemp("models") / "made.bin"
    train(train_rows, str(path), TrainParams(epoch=10))
    return path


def test_normalization_is_shared_and_folds_case_punctuation_newlines():
    assert normalize_for_classifier("Hello,\nWorld! e-mail a@b.com") == "hello , world ! e-mail a@b.com"


def test_normalization_equals_the_plain_definition():
    """The fast pattern must split exactly the punctuation the plain definition splits: not preceded by a word
    character, or not followed by one (a changed split would silently change every trained model's input)."""
    import random
    import re

    plain = re.compile(r"(?<!\w)([^\w\s])|([^\w\s])(?!\w)")
    rnd = random.Random(0)
    alphabet = "ab.,-'_ \n!?\u00e91\u4e2d\u0301\t"
    for _ in range(20_000):
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14)))
        assert normalize_for_classifier(s) == " ".join(plain.sub(r" \1\2 ", s.lower()).split()), repr(s)


def test_topic_model_macro_f1_on_held_out_bbc(topic_model):
    _, test_rows = bbc_split()
    ev = evaluate(FastTextClassifier(str(topic_model)), test_rows)
    assert ev.macro_f1 >= 0.9 and ev.examples == len(test_rows)
    assert set(ev.per_class) == {"business", "entertainment", "politics", "sport", "tech"}
    assert sum(sum(row.values()) for row in ev.confusion.values()) == len(test_rows)


def test_save_load_round_trip_and_batch_prediction(made_model, tmp_path):
    topic_model = made_model
    model = FastTextClassifier(str(topic_model))
    _, test_rows = made_split()
    texts = [t for t, _ in test_rows[:20]]
    batch = model.predict(texts)
    assert batch == [model.predict([t])[0] for t in texts]  # a batch changes nothing
    assert batch == FastTextClassifier(str(topic_model)).predict(texts)  # reload changes nothing
    assert sum(label == gold for (label, _), (_, gold) in zip(batch, test_rows[:20], strict=True)) >= 17
    sea = model.probability(texts, "sea")
    assert all(abs(p - (s if label == "sea" else p)) < 1e-6 for p, (label, s) in zip(sea, batch, strict=True))
    assert model.predict([]) == []


def test_bad_input_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "no label"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing field 'label'"):
        read_jsonl(str(path), "text", "label")
    path.write_bytes(b'{"text": "ok", "label": " "}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: empty label"):
        read_jsonl(str(path), "text", "label")
    path.write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "\xff\xfe", "label": "b"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not UTF-8"):
        read_jsonl(str(path), "text", "label")


def test_cli_train_and_eval(tmp_path, capsys):
    train_rows, test_rows = made_split()
    for name, rows in (("train", train_rows), ("valid", test_rows)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            for text, label in rows:
                f.write(json.dumps({"body": text, "topic": label}) + "\n")
    args = ["--train", str(tmp_path / "train.jsonl"), "--valid", str(tmp_path / "valid.jsonl"), "--text-field", "body",
            "--label-field", "topic", "--out", str(tmp_path / "m.bin"), "--epoch", "15", "--quantize"]
    assert tokenmill_cli.main(["train-classifier", *args]) == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out and "quantized" in out
    metrics = json.loads((tmp_path / "m.eval.json").read_text())
    assert metrics["macro_f1"] > 0.9 and "confusion" in metrics
    assert (tmp_path / "m.ftz").stat().st_size < (tmp_path / "m.bin").stat().st_size / 10
    assert tokenmill_cli.main(["eval-classifier", "--model", str(tmp_path / "m.ftz"), "--data",
                               str(tmp_path / "valid.jsonl"), "--text-field", "body", "--label-field", "topic"]) == 0
    assert tokenmill_cli.main(["train-classifier", "--train", str(tmp_path / "valid.jsonl"), "--out",
                               str(tmp_path / "x.bin")]) == 2  # default fields missing
    assert "missing field 'text'" in capsys.readouterr().err


def test_cut_from_histogram():
    hist = {10: 5, 50: 3, 90: 2}
    assert cut_from_histogram(hist, 0.2) == 90
    assert cut_from_histogram(hist, 0.5) == 50
    assert cut_from_histogram(hist, 1.0) == 10


def test_pipeline_with_quality_and_topic(made_model, demo_crawl, tmp_path):
    # A quality model from the same topic data ("science" = the positive label) is enough to exercise the stage.
    recipe = tmp_path / "cls.toml"
    recipe.write_text(
        f'[quality]\nenabled = true\nmodel_path = "{made_model}"\npositive_label = "science"\n'
        'keep_top_fraction = 0.5\n'
        f'[topic]\nenabled = true\nmodel_path = "{made_model}"\ndrop = ["food"]\n'
    )
    stats = run(demo_crawl, tmp_path / "a", "--config", str(recipe), *IN_MEMORY)
    run(demo_crawl, tmp_path / "b", "--config", str(recipe), *IN_MEMORY)
    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b")
    shards = pq.read_table(sorted((tmp_path / "a" / "shards").glob("*.parquet"))).to_pylist()
    assert shards and all(0.0 <= d["quality_score"] <= 1.0 and d["topic"] and d["topic_score"] > 0 for d in shards)
    ledger = pq.read_table(sorted((tmp_path / "a" / "ledger").glob("*.parquet"))).to_pylist()
    dropped = stats["stages"]["classifiers"]["dropped"]
    assert dropped.get("quality_classifier", 0) >= 1
    assert all(any(s["name"] == "quality_score" for s in r["scores"]) for r in ledger if r["stage"] == "classifiers")
    assert stats["kept_by_topic"] and sum(v["documents"] for v in stats["kept_by_topic"].values()) == stats["kept"]
    assert sum(v["tokens"] for v in stats["kept_by_language"].values()) == stats["tokens"]


def test_passages_add_views_of_long_documents_only():
    from classifiers.training import with_passages

    rows = [("a b c d e", "x"), ("f g", "y")]
    assert with_passages(rows, 0) == rows
    assert with_passages(rows, 2) == rows + [("a b", "x"), ("c d", "x"), ("e", "x")]


def test_workers_score_with_fasttext_predict_alone(made_model, tmp_path):
    """A worker installs tokenmill's runtime dependencies: its one `fasttext` module is fasttext-predict's
    wheel (no compiler; no training). Language ID and a trained topic model score exactly as with the
    training-capable module. The wheel comes from `.ci/run` (the worker dependencies it downloads) or
    TOKENMILL_WHEELS; without it the test is skipped here and fails under CI."""
    import os
    import subprocess
    import sys
    import zipfile

    from tests.conftest import REPO

    folder = Path(os.environ.get("TOKENMILL_WHEELS", REPO / ".ci" / "worker-deps"))
    wheels = sorted(folder.glob("fasttext_predict-*.whl"))
    if not wheels:
        if os.environ.get("CI"):
            pytest.fail(f"no fasttext_predict wheel in {folder}: .ci/run downloads it")
        pytest.skip(f"no fasttext_predict wheel in {folder} (pip download --no-deps -d {folder} fasttext-predict)")
    site = tmp_path / "predict_only"
    zipfile.ZipFile(wheels[-1]).extractall(site)
    topic_model = made_model
    _, test_rows = made_split()
    texts = [text for text, _label in test_rows[:300]]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    probe = (
        "import json, sys, fasttext\n"
        "from classifiers.fasttext_model import FastTextClassifier\n"
        "from classifiers.language import LanguageIdentifier\n"
        f"texts = json.load(open({str(tmp_path / 'texts.json')!r}))\n"
        f"model = FastTextClassifier({str(topic_model)!r})\n"
        "lid = LanguageIdentifier()\n"
        "print(json.dumps([hasattr(fasttext, 'train_supervised'), fasttext.__file__, model.predict(texts),"
        " model.probability(texts, 'sea'), lid.predict(texts), lid.best_of(texts, ['en', 'de'], 0.01)]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    out = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                    env=env, cwd=tmp_path).stdout)
    trains, module, *scores = out
    assert not trains and module.startswith(str(site)), module
    from classifiers.language import LanguageIdentifier

    model, lid = FastTextClassifier(str(topic_model)), LanguageIdentifier()
    expected = [model.predict(texts), model.probability(texts, "sea"), lid.predict(texts),
                lid.best_of(texts, ["en", "de"], 0.01)]
    assert scores == json.loads(json.dumps(expected))


def test_the_held_out_fifth_is_per_label_seeded_and_order_free():
    from classifiers.tuning import held_out

    rows = made_split()[0]
    train_part, valid = held_out(rows)
    assert sorted(train_part + valid) == sorted(rows)
    for label in {lab for _, lab in rows}:
        total = sum(lab == label for _, lab in rows)
        assert sum(lab == label for _, lab in valid) == round(total * 0.2)
    assert held_out(list(reversed(rows)))[1] == list(reversed(valid))  # the same rows, whatever the order
    assert held_out(rows, seed=1)[1] != valid
    assert held_out([("only one", "x"), ("a", "y"), ("b", "y")])[1] == [("a", "y")] or \
        held_out([("only one", "x"), ("a", "y"), ("b", "y")])[1] == [("b", "y")]


def test_a_given_parameter_is_fixed_and_the_grid_shrinks():
    from classifiers.tuning import CANDIDATES, candidates

    assert len(candidates(TrainParams(), set())) == len(CANDIDATES) == 8
    fixed = candidates(TrainParams(epoch=7, loss="ova"), {"epoch", "loss"})
    assert len(fixed) == 2 and {(p.epoch, p.loss) for p in fixed} == {(7, "ova")}
    everything = {"epoch", "loss", "wordNgrams", "passage_words", "minCount"}
    assert candidates(TrainParams(), everything) == [TrainParams()]


def test_the_search_picks_the_same_setting_on_any_number_of_workers():
    from classifiers.tuning import search

    rows = made_split()[0]
    base = TrainParams(minCount=2, lr=50.0)  # lr 50: fastText diverges ("Encountered NaN") on every candidate
    with pytest.raises(ValueError, match="fastText failed on every candidate setting"):
        search(rows, base, {"minCount", "lr"}, workers=2)
    base = TrainParams(passage_words=0, minCount=2)
    one = search(rows, base, {"passage_words", "minCount"}, workers=1)
    two = search(rows, base, {"passage_words", "minCount"}, workers=2)
    assert len(one.trials) == 4 and one.trials == two.trials and one.chosen == two.chosen
    assert one.held_out_f1 == max(t.macro_f1 for t in one.trials) and one.ranked()[0] == one.chosen
    assert one.chosen.passage_words == 0 and one.train_rows + one.held_out_rows == len(rows)


def test_train_classifier_tunes_unless_told_not_to(tmp_path, capsys):
    train_rows, test_rows = made_split()
    for name, rows in (("train", train_rows), ("valid", test_rows)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            f.writelines(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows)
    base = ["--train", str(tmp_path / "train.jsonl"), "--valid", str(tmp_path / "valid.jsonl")]
    assert tokenmill_cli.main(["train-classifier", *base, "--out", str(tmp_path / "t.bin"), "--epoch", "15",
                               "--passage_words", "0"]) == 0
    out = capsys.readouterr().out
    assert "picking loss, wordNgrams, minCount on a held-out fifth of 480 examples" in out
    assert out.count("candidate ") == 2 and "chosen: loss=" in out
    tuning = json.loads((tmp_path / "t.tuning.json").read_text())
    assert tuning["chosen"]["epoch"] == 15 and len(tuning["trials"]) == 2
    assert tuning["held_out_macro_f1"] == max(t["macro_f1"] for t in tuning["trials"] if t["macro_f1"] is not None)
    first = (tmp_path / "t.tuning.json").read_bytes()
    assert tokenmill_cli.main(["train-classifier", *base, "--out", str(tmp_path / "t.bin"), "--epoch", "15",
                               "--passage_words", "0"]) == 0
    assert (tmp_path / "t.tuning.json").read_bytes() == first  # the same data: the same bytes
    capsys.readouterr()
    assert tokenmill_cli.main(["train-classifier", *base, "--out", str(tmp_path / "n.bin"), "--no-tune"]) == 0
    out = capsys.readouterr().out
    assert "candidate" not in out and not (tmp_path / "n.tuning.json").exists()
    # fastText fails on every candidate (lr 50 diverges): one line, exit 2
    assert tokenmill_cli.main(["train-classifier", *base, "--out", str(tmp_path / "u.bin"), "--lr", "50",
                               "--epoch", "15", "--passage_words", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tokenmill: fastText failed on every candidate setting") and "\n" not in err
    # too few examples to hold out: the defaults, said so
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in train_rows[:40]))
    assert tokenmill_cli.main(["train-classifier", "--train", str(few), "--out", str(tmp_path / "f.bin")]) == 0
    import re

    assert re.search(r"not searched: \d examples held out, fewer than 20: the defaults", capsys.readouterr().out)
    assert json.loads((tmp_path / "f.tuning.json").read_text())["chosen"]["epoch"] == TrainParams().epoch
