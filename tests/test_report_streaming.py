"""outputs/ledger_figures.py: the report's ledger figures read a batch at a time equal those of the whole ledger
read into Python rows (the report before issue 35), on a synthetic ledger with nulls, NaN, ties and reasons
with fewer rows than the sample or no sampled text."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import outputs.ledger_figures as figures_module
from bench.report_memory import synthetic_part, synthetic_run
from outputs.ledger_figures import Histogram, ledger_figures, part_batches, part_rows
from outputs.reading import sample_rows
from outputs.report import build_report


def _reference(ledger: pa.Table, n: int, seed: int) -> dict:
    """The figures as the report computed them from the whole ledger (outputs/report.py at b218113)."""
    rows = ledger.select(["kept", "stage", "reason", "language_score", "token_count", "scores"]).to_pylist()
    top = Counter(f"{r['stage']}: {r['reason']}" for r in rows if not r["kept"]).most_common(15)

    def hist(values, log=False):
        values = [v for v in values if v is not None and v == v]
        if not values:
            return None
        data = np.log10(np.maximum(values, 1)) if log else np.asarray(values)
        return np.histogram(data, bins=20)

    samples = {}
    for key, _count in top:
        stage, reason = key.split(": ", 1)
        table = ledger.filter((pc.field("stage") == stage) & (pc.field("reason") == reason))
        with_text = table.filter(pc.field("text").is_valid())
        samples[key] = sample_rows(with_text if with_text.num_rows else table, n, seed)
    return {"top": top, "language": hist([r["language_score"] for r in rows]),
            "quality": hist([s["value"] for r in rows for s in (r["scores"] or []) if s["name"] == "quality_score"]),
            "tokens": hist([r["token_count"] for r in rows if r["kept"]], log=True), "samples": samples}


def _same(histogram: Histogram, reference) -> bool:
    if reference is None:
        return histogram.result() is None
    counts, edges = histogram.result()
    return counts.tolist() == reference[0].tolist() and edges.tolist() == reference[1].tolist()


def _awkward_part(rows: int, seed: int) -> pa.Table:
    """A synthetic part with what the Python rows treated specially: null and NaN scores, a null `kept`
    (counted as dropped, its tokens not counted), a reason of two rows (fewer than the sample), a reason
    without a sampled text, ties in the drop counts."""
    table = synthetic_part(rows, seed, text_share=0.05).to_pylist()
    for i, row in enumerate(table):
        if i % 97 == 0:
            row["language_score"] = None
        if i % 89 == 0:
            row["language_score"] = float("nan")
        if i % 53 == 0 and row["scores"]:
            row["scores"][0]["value"] = None
    if seed == 0:
        table[5].update(kept=None, stage="odd", reason="null kept", token_count=7)
        table[6].update(kept=False, stage="odd", reason="null kept", text=None)
        for i in (10, 11, 12, 13):
            table[i].update(kept=False, stage="tie", reason=f"t{(i + 1) % 2}", text=None)
    return pa.Table.from_pylist(table, schema=synthetic_part(1, 0).schema)


def test_batched_figures_equal_those_of_the_whole_ledger(tmp_path, monkeypatch):
    monkeypatch.setattr(figures_module, "BATCH_ROWS", 700)  # many batches per part, batches across row groups
    entries = []
    for part in range(3):
        path = f"ledger/part-{part}.parquet"
        (tmp_path / "ledger").mkdir(exist_ok=True)
        pq.write_table(_awkward_part(3_000 + 100 * part, seed=part), tmp_path / path, row_group_size=500)
        entries.append({"path": path})
    whole = pa.concat_tables([pq.read_table(tmp_path / e["path"]) for e in entries])
    for n, seed in ((3, 1), (5, 7)):
        got = ledger_figures(part_batches(str(tmp_path), entries), n, seed, read_rows=part_rows(str(tmp_path), entries))
        want = _reference(whole, n, seed)
        assert [(k, got.dropped_by_reason[k]) for k in got.samples] == want["top"]
        assert _same(got.language, want["language"]) and want["language"] is not None
        assert _same(got.quality, want["quality"]) and want["quality"] is not None
        assert _same(got.tokens, want["tokens"]) and want["tokens"] is not None
        assert repr(got.samples) == repr(want["samples"])  # repr: a NaN score equals itself
        assert [r["kept"] for r in got.samples["odd: null kept"]] == [None, False]
        assert list(got.samples)[-3:] == ["odd: null kept", "tie: t1", "tie: t0"]  # ties: first seen first


def test_a_ledger_without_values_has_no_histograms(tmp_path):
    run = synthetic_run(tmp_path / "run", 10)
    manifest = json.loads((run / "manifest.json").read_text())
    path = run / manifest["ledger"][0]["path"]
    table = pq.read_table(path)
    table = table.set_column(table.schema.get_field_index("language_score"), "language_score",
                             pa.nulls(10, pa.float64()))
    table = table.set_column(table.schema.get_field_index("scores"), "scores",
                             pa.nulls(10, table.schema.field("scores").type))
    table = table.set_column(table.schema.get_field_index("kept"), "kept", pa.array([False] * 10))
    pq.write_table(table, path)
    html = build_report(str(run))
    assert "Language score (every document with text): no data" in html
    assert "Tokens per kept document: no data" in html and "Quality score" not in html
