"""One record that makes a step raise becomes a ledger row (reason internal_error), a counter and a stats entry;
the run goes on and every other record ends exactly as it does in a run without the fault.

The faults are injected into the real pipeline (the in-memory runner runs the DoFns in this process, so a step's
core function is wrapped to raise on one page's marker); everything else is the product as it runs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import driver.job
import run_pipeline
from demo.crawl import ARTICLES, page
from demo.warc_writer import WarcWriter
from schemas.records import REASON_INTERNAL_ERROR
from tests.test_pipeline import IN_MEMORY, run

# The step each victim page breaks, the ledger stage its row stands at, and the step named in its detail.
FAULTS = {
    "triage": ("read", "triage"),
    "decode": ("extract", "decode"),
    "extract": ("extract", "extract"),
    "language_id": ("extract", "language_id"),
    "filters": ("filters", "filters"),
    "decontamination": ("decontamination", "decontamination"),
    "classifiers": ("classifiers", "classifier scores"),
    "signing": ("exact_dedup", "signing"),
    "staging": ("exact_dedup", "staging"),
    "tokenize": ("tokenize", "tokenize"),
}
ENGLISH = [a for a in ARTICLES if a[0] == "en"]
PAGES = 14  # one victim per fault, and four pages no fault touches


def marker(k: int) -> str:
    return f"Archive note zq{chr(ord('a') + k)}x."


def build_crawl(folder: Path) -> list[str]:
    """Two WARC files of English articles, each page made unique by a marker sentence (no exact duplicates)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(2):
        path = folder / f"iso-{shard}.warc.gz"
        with open(path, "wb") as f:
            w = WarcWriter(f, seed=f"iso-{shard}")
            w.warcinfo()
            for k in range(shard, PAGES, 2):
                lang, title, paragraphs = ENGLISH[k % len(ENGLISH)]
                w.response(f"https://iso.example/page-{k}", page(title, [*paragraphs, marker(k)], lang, "iso.example"))
        paths.append(str(path))
    return paths


VICTIM = {name: k for k, name in enumerate(FAULTS)}


def _text_has(fault: str, text) -> bool:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return isinstance(text, str) and marker(VICTIM[fault]) in text


def _raise(fault: str):
    raise ValueError(f"injected fault in {fault}")


def inject(mp: pytest.MonkeyPatch) -> None:
    """Wrap each step's core so that it raises on its victim page only."""
    import pipelines.classify as classify
    import pipelines.decontaminate as decontaminate
    import pipelines.documents as documents
    import pipelines.staging as staging
    from outputs.staging import Frames
    from schemas.records import Document
    from tokenization.tokenizers import Tokenizer

    def wrap(owner, name, fault, test):
        original = getattr(owner, name)

        def wrapped(*args, **kwargs):
            if test(*args, **kwargs):
                _raise(fault)
            return original(*args, **kwargs)

        mp.setattr(owner, name, wrapped)

    wrap(documents, "triage", "triage", lambda record, _cfg: record.url.endswith(f"/page-{VICTIM['triage']}"))
    wrap(documents, "decode_body", "decode", lambda body, _ct: _text_has("decode", body))
    collect = documents.ExtractorPool.collect

    def collect_and_fail(self):  # the oldest page in flight is the one collect() returns
        oldest = self._order[0]._pending if self._order else None
        result = collect(self)
        if _text_has("extract", oldest[0] if oldest else ""):
            _raise("extract")
        return result

    mp.setattr(documents.ExtractorPool, "collect", collect_and_fail)
    wrap(documents.LanguageIdentifier, "predict", "language_id",
         lambda _self, texts, *a, **k: any(_text_has("language_id", t) for t in texts))
    wrap(documents, "apply_filters", "filters", lambda _filters, doc, *a: _text_has("filters", doc.text))
    wrap(decontaminate.DecontaminationIndex, "match", "decontamination",
         lambda _self, text: _text_has("decontamination", text))
    wrap(classify, "normalize_for_classifier", "classifiers", lambda text: _text_has("classifiers", text))
    wrap(staging, "exact_key", "signing", lambda text: _text_has("signing", text))
    wrap(Frames, "frame", "staging", lambda _self, obj: isinstance(obj, Document) and _text_has("staging", obj.text))
    wrap(Tokenizer, "encode_batch", "tokenize",
         lambda _self, texts: any(_text_has("tokenize", t) for t in texts))


def recipe(folder: Path) -> Path:
    """The default recipe with every per-document step on: decontamination (flag) and a quality classifier."""
    from classifiers.training import TrainParams, train

    model = folder / "quality.bin"
    rows = [(f"{title} {' '.join(paragraphs)}", "hq") for _l, title, paragraphs in ENGLISH]
    rows += [("buy now cheap click here free offer " * 5, "lq"), ("login sign in cart checkout menu " * 5, "lq")]
    train(rows * 5, str(model), TrainParams(epoch=5))
    bench = folder / "bench.jsonl"
    bench.write_text(json.dumps({"text": "an unrelated benchmark question about the orbit of distant moons "
                                 "and the chemistry of their icy surfaces"}) + "\n")
    path = folder / "all-steps.toml"
    path.write_text(f'[quality]\nenabled = true\nmodel_path = "{model}"\n'
                    f'[decontamination]\nenabled = true\nsources = ["{bench}"]\ntext_fields = ["text"]\n'
                    'action = "flag"\n')
    return path


def _rows(out: Path) -> dict[str, dict]:
    return {r["url"]: r for r in pq.read_table(sorted((out / "ledger").glob("*.parquet"))).to_pylist()}


def _shard_rows(out: Path) -> dict[str, dict]:
    return {r["doc_id"]: r for r in pq.read_table(sorted((out / "shards").glob("*.parquet"))).to_pylist()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("isolation")
    crawl = build_crawl(root / "crawl")
    config = str(recipe(root))
    clean = run(crawl, root / "clean", "--config", config, *IN_MEMORY)
    counters = {}
    with pytest.MonkeyPatch.context() as mp:
        inject(mp)
        metrics = driver.job.run_metrics

        def keep_counters(result):
            from apache_beam.metrics import MetricsFilter

            for c in result.metrics().query(MetricsFilter().with_namespace("tokenmill"))["counters"]:
                counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + (c.committed or c.attempted or 0)
            return metrics(result)

        mp.setattr(driver.job, "run_metrics", keep_counters)  # execute() calls it from there
        faulty = run(crawl, root / "faulty", "--config", config, "--max-record-errors", "1", *IN_MEMORY)
    return {"root": root, "clean": clean, "faulty": faulty, "counters": counters}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_step_that_raises_on_one_record_drops_it_with_a_row_and_a_counter(runs, fault):
    stage, step = FAULTS[fault]
    url = f"https://iso.example/page-{VICTIM[fault]}"
    clean, faulty = _rows(runs["root"] / "clean"), _rows(runs["root"] / "faulty")
    assert clean[url]["kept"], "the victim is a page the clean run keeps"
    row = faulty[url]
    assert (row["stage"], row["reason"], row["kept"]) == (stage, REASON_INTERNAL_ERROR, False)
    assert row["detail"] == f"{step}: ValueError: injected fault in {fault}"
    assert runs["counters"].get(f"{stage}/dropped/{REASON_INTERNAL_ERROR}", 0) >= 1
    assert runs["faulty"]["internal_errors"][stage]["records"] >= 1


def test_every_other_record_ends_as_in_the_run_without_faults(runs):
    root = runs["root"]
    clean, faulty = _rows(root / "clean"), _rows(root / "faulty")
    victims = {f"https://iso.example/page-{k}" for k in VICTIM.values()}
    assert clean.keys() == faulty.keys() and len(clean) == PAGES
    for url in clean.keys() - victims:
        assert faulty[url] == clean[url], url
    clean_shards, faulty_shards = _shard_rows(root / "clean"), _shard_rows(root / "faulty")
    victim_ids = {faulty[u]["doc_id"] for u in victims}
    assert faulty_shards == {i: r for i, r in clean_shards.items() if i not in victim_ids}
    stats = runs["faulty"]
    assert stats["records"] == PAGES and stats["kept"] == PAGES - len(FAULTS)
    errors = stats["internal_errors"]
    assert sum(e["records"] for e in errors.values()) == len(FAULTS)
    assert {e["example"] for e in errors.values()} <= victim_ids


def test_past_max_record_errors_the_run_exits_1_naming_the_stage_count_and_a_record(runs, capsys):
    argv = ["--input", str(runs["root"] / "crawl" / "*.warc.gz"), "--output", str(runs["root"] / "again"),
            "--config", str(runs["root"] / "all-steps.toml"), *IN_MEMORY]
    with pytest.MonkeyPatch.context() as mp:
        inject(mp)
        assert run_pipeline.main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert run_pipeline.main([*argv, "--overwrite", "--max-record-errors", "0.75"]) == 0
    line = [ln for ln in err if "internal_error" in ln]
    assert len(line) == 1, err
    stats = json.loads((runs["root"] / "again" / "stats.json").read_text())
    stage, worst = max(stats["internal_errors"].items(), key=lambda kv: (kv[1]["records"], kv[0]))
    assert line[0].startswith(f"tokenmill: error: {len(FAULTS)} of {PAGES} records made a step raise ({stage}: "
                              f"{worst['records']}, e.g. record {worst['example']})")
    assert "--max-record-errors 0.0001 allows 0" in line[0]


def test_max_record_errors_must_be_a_fraction(tmp_path, capsys):
    assert run_pipeline.main(["--input", "x.warc.gz", "--output", str(tmp_path / "o"),
                              "--max-record-errors", "2"]) == 2
    assert "--max-record-errors 2: a fraction of the records" in capsys.readouterr().err


def test_stats_and_inspect_show_the_internal_errors(runs, capsys):
    import tokenmill_cli

    out = str(runs["root"] / "faulty")
    assert tokenmill_cli.main(["stats", out]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("internal errors:")]
    errors = runs["faulty"]["internal_errors"]
    assert line == [f"internal errors: {len(FAULTS)} records made a step raise: " + ", ".join(
        f"{stage} {e['records']} (e.g. {e['example']})" for stage, e in errors.items())
        + f"; tokenmill inspect {out} --reason internal_error"]
    assert tokenmill_cli.main(["inspect", out, "--reason", REASON_INTERNAL_ERROR, "--json", "--sample", "100"]) == 0
    shown = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert len(shown) == len(FAULTS) and all(r["reason"] == REASON_INTERNAL_ERROR for r in shown)


@pytest.mark.parametrize("error", ["StoreError", "OSError", "MemoryError"])
def test_an_error_of_the_environment_still_fails_the_run(runs, error, tmp_path):
    """A store that keeps failing, a disk error, memory running out: not the record's fault, so the bundle fails
    (for a runner to retry) instead of becoming a ledger row."""
    import pipelines.documents as documents
    from storage.retry import StoreError

    kinds = {"StoreError": StoreError, "OSError": OSError, "MemoryError": MemoryError}
    original = documents.apply_filters

    def failing(filters, doc, *a):
        if _text_has("filters", doc.text):
            raise kinds[error](f"injected {error}")
        return original(filters, doc, *a)

    crawl = [str(p) for p in sorted((runs["root"] / "crawl").glob("*.warc.gz"))]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(documents, "apply_filters", failing)
        with pytest.raises(Exception, match=f"injected {error}"):
            run(crawl, tmp_path / "o", *IN_MEMORY)
