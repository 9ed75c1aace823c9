"""stats / inspect / diff on real runs; release, verify and the packed reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

import run_pipeline
import tokenmill_cli
from tests.test_pipeline import IN_MEMORY, run
from training.reader import PackedReader


def test_stats_prints_the_funnel_in_stage_order(runs, capsys):
    assert tokenmill_cli.main(["stats", str(runs / "fw")]) == 0
    out = capsys.readouterr().out
    assert out.index("read") < out.index("extract") < out.index("filters") < out.index("tokenize")
    assert "kept by language" in out
    assert "near dedup (all): " in out and "converged; edges per round" in out
    assert tokenmill_cli.main(["stats", str(runs / "fw"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kept"] > 0


def test_reading_a_local_run_does_not_import_beam(runs, tmp_path):
    """stats, inspect, diff and report read a finished local run without Apache Beam, whose import costs
    ~0.9 s and logs a warning about BigQuery client libraries on every command (a fresh interpreter)."""
    run = str(runs / "fw")
    code = (
        "import contextlib, io, sys, tokenmill_cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    codes = [tokenmill_cli.main(a) for a in (['stats', {run!r}], ['inspect', {run!r}, '--dropped'],\n"
        f"             ['diff', {run!r}, {run!r}], ['report', {run!r}, '--out', {str(tmp_path / 'r.html')!r}])]\n"
        "print(codes, 'apache_beam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=run_pipeline.CHECKOUT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[0,", "0,", "0,", "0]", "False"], done.stdout + done.stderr
    assert "apitools" not in done.stderr


def test_inspect_dropped_with_reason_filter_and_json(runs, capsys):
    ledger = pq.read_table(sorted((runs / "fw" / "ledger").glob("*.parquet"))).to_pylist()
    reason = next(r["reason"] for r in ledger if r["stage"] == "filters")
    assert tokenmill_cli.main(["inspect", str(runs / "fw"), "--dropped", "--stage", "filters", "--reason", reason,
                               "--sample", "3", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert 1 <= len(rows) <= 3 and all(r["reason"] == reason and r["text"] for r in rows)
    assert tokenmill_cli.main(["inspect", str(runs / "fw"), "--dropped", "--stage", "filters", "--reason", reason,
                               "--sample", "3", "--json"]) == 0
    assert [json.loads(line)["doc_id"] for line in capsys.readouterr().out.splitlines()] == [r["doc_id"] for r in rows]


def test_inspect_kept_decodes_tokens_and_id_shows_history(runs, capsys):
    assert tokenmill_cli.main(["inspect", str(runs / "fw"), "--kept", "--sample", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all(r["kept"] and len(r["text"]) > 100 for r in rows)
    doc_id = rows[0]["doc_id"]
    assert tokenmill_cli.main(["inspect", str(runs / "fw"), "--id", doc_id]) == 0
    out = capsys.readouterr().out
    assert doc_id in out and "KEPT" in out and "shard row" in out
    assert tokenmill_cli.main(["inspect", str(runs / "fw"), "--id", "nope"]) == 1


def test_inspect_refuses_missing_or_partial_output(runs, tmp_path, capsys):
    assert tokenmill_cli.main(["inspect", str(tmp_path)]) == 2
    assert "not a tokenmill output directory" in capsys.readouterr().err
    assert tokenmill_cli.main(["stats", str(tmp_path / "typo")]) == 2
    assert capsys.readouterr().err == f"tokenmill: {tmp_path / 'typo'}: no such folder\n"
    (tmp_path / "running").mkdir()
    (tmp_path / "running" / "_started.json").write_text("{}")
    assert tokenmill_cli.main(["stats", str(tmp_path / "running")]) == 2
    assert capsys.readouterr().err == (f"tokenmill: {tmp_path / 'running'}: holds a run that was interrupted or is "
                                       "still running (no manifest.json yet); the same command runs it again from "
                                       "the start\n")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "manifest.json").write_text((runs / "fw" / "manifest.json").read_text())
    assert tokenmill_cli.main(["stats", str(partial)]) == 2  # stats reads only manifest.json and stats.json
    assert "partial output, no stats.json" in capsys.readouterr().err
    assert tokenmill_cli.main(["inspect", str(partial)]) == 2
    assert "partial output, missing shards/" in capsys.readouterr().err


def test_diff_names_what_one_run_kept_and_the_other_dropped(runs, capsys):
    assert tokenmill_cli.main(["diff", str(runs / "default"), str(runs / "fw"), "--sample", "1"]) == 0
    out = capsys.readouterr().out
    assert "kept by" in out and "filters/" in out


def test_diff_refuses_runs_whose_ids_differ_and_warns_when_runs_share_no_record(runs, tmp_path, capsys):
    import shutil

    import pyarrow as pa

    legacy = tmp_path / "legacy"
    shutil.copytree(runs / "default", legacy)
    manifest = json.loads((legacy / "manifest.json").read_text())
    del manifest["doc_id"]  # a run made before 128-bit ids
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    assert tokenmill_cli.main(["diff", str(runs / "default"), str(legacy)]) == 2
    assert "cannot be matched" in capsys.readouterr().err
    other = tmp_path / "other"  # the same run with every id changed: what other inputs' names give
    shutil.copytree(runs / "default", other)
    for part in (other / "ledger").glob("*.parquet"):
        table = pq.read_table(part)
        ids = pa.array(["x" + i[1:] for i in table.column("doc_id").to_pylist()])
        at = table.schema.get_field_index("doc_id")
        pq.write_table(table.set_column(at, table.schema.field("doc_id"), ids), part)
    assert tokenmill_cli.main(["diff", str(runs / "default"), str(other)]) == 0
    assert "the two runs share no record" in capsys.readouterr().err


def test_release_verify_and_refusals(runs, tmp_path, capsys):
    target = tmp_path / "rel"
    assert tokenmill_cli.main(["release", str(runs / "fw"), "--name", "web", "--version", "1.0.0", "--to",
                               str(target)]) == 0
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["tokenizer"]["vocab_sha256"] and manifest["recipe_sha256"] and manifest["created"]
    assert len(manifest["files"]) >= 2 and "Funnel" in (target / "README.md").read_text()
    assert tokenmill_cli.main(["verify", str(target)]) == 0
    capsys.readouterr()
    assert tokenmill_cli.main(["release", str(runs / "fw"), "--name", "web", "--version", "1.0.0", "--to",
                               str(target)]) == 0  # the same command again: nothing to do, and it says so
    said = capsys.readouterr().out
    assert said == f"{target} already holds release web 1.0.0 of this run (verified), nothing copied\n"
    assert tokenmill_cli.main(["release", str(runs / "default"), "--name", "web", "--version", "2.0.0", "--to",
                               str(target)]) == 2
    assert "already holds release web 1.0.0" in capsys.readouterr().err
    victim = target / manifest["files"][0]["path"]
    os.chmod(victim, 0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert tokenmill_cli.main(["verify", str(target)]) == 1
    assert manifest["files"][0]["path"] in capsys.readouterr().out


def _all_tokens(path) -> int:
    return sum(len(t) for f in sorted((path / "shards").glob("*.parquet"))
               for t in pq.read_table(f, columns=["tokens"]).column("tokens").to_pylist())


def test_reader_ranks_read_only_their_row_groups_and_step_together(runs):
    """Each rank reads only the row groups dealt to it (a snapshot's release is too large for every rank to
    read), ranks never share a document, and every rank yields the same number of sequences. One rank alone
    reads every row group and yields every full sequence."""
    seq = 16
    path = str(runs / "fw")
    single = PackedReader(path, seq, seed=3)
    assert len(single.row_groups) >= 3, "the test needs several row groups"
    assert sum(t for *_, t in single.row_groups) == _all_tokens(runs / "fw")
    whole = list(single)
    assert len(whole) == _all_tokens(runs / "fw") // (seq + 1) and sorted(single.read_log) == sorted(
        (f, g) for f, g, _ in single.row_groups)
    readers = [PackedReader(path, seq, seed=3, rank=r, world_size=3) for r in range(3)]
    ranks = [list(r) for r in readers]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == readers[0].sequences > 0
    assert all(len(s) == seq + 1 for r in ranks for s in r)
    logs = [set(r.read_log) for r in readers]
    assert not (logs[0] & logs[1] or logs[0] & logs[2] or logs[1] & logs[2])
    assert set().union(*logs) <= {(f, g) for f, g, _ in single.row_groups}
    assert all(set(r.read_log) <= set(r.owned) for r in readers)
    other_seed = list(PackedReader(path, seq, seed=4))
    assert not all(np.array_equal(a, b) for a, b in zip(other_seed, whole, strict=True))


def test_reader_resumes_exactly_without_replay(runs):
    path = str(runs / "fw")
    full = list(PackedReader(path, 16, seed=1))
    reader = PackedReader(path, 16, seed=1)
    it = iter(reader)
    head = [next(it) for _ in range(len(full) * 2 // 3)]
    state = reader.state_dict()
    resumed = PackedReader(path, 16, seed=1)
    resumed.load_state_dict(json.loads(json.dumps(state)))
    rest = list(resumed)
    assert len(head + rest) == len(full) and all(np.array_equal(a, b) for a, b in zip(head + rest, full, strict=True))
    # The resumed reader starts at the row group the first one was in and reads nothing before it again.
    assert len(reader.read_log) > 1 and resumed.read_log[0] == reader.read_log[-1]
    assert len(resumed.read_log) == len(reader.owned) - len(reader.read_log) + 1
    with pytest.raises(ValueError, match="world_size"):
        PackedReader(path, 16, seed=1, rank=0, world_size=2).load_state_dict(state)


def test_reader_reads_a_release(runs, tmp_path):
    from release.publish import release

    release(str(runs / "fw"), "web", "1", str(tmp_path / "r"))
    a = list(PackedReader(str(tmp_path / "r"), 32, seed=0))
    b = list(PackedReader(str(runs / "fw"), 32, seed=0))
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_report_renders_in_headless_chromium_without_console_errors(runs, tmp_path):
    from outputs.browser import render
    from tests.conftest import require_chromium

    require_chromium()

    out = tmp_path / "report.html"
    assert tokenmill_cli.main(["report", str(runs / "fw"), "-o", str(out)]) == 0
    page = out.read_text()
    assert "http://" not in page.split("<h2>Sampled")[0] and "<script" not in page  # self-contained
    dom, console = render(str(out), screenshot=str(tmp_path / "report.png"))
    assert dom.count('class="chart"') >= 4 and dom.count('class="bar"') > 20
    assert "Funnel" in dom and "Sampled dropped documents" in dom
    assert "Edges entering each near-dedup round" in dom and "LSH components by size" in dom
    assert not console, console
    assert (tmp_path / "report.png").stat().st_size > 20_000


def test_inspect_points_at_the_offending_part(runs, capsys):
    ledger = pq.read_table(sorted((runs / "fw" / "ledger").glob("*.parquet"))).to_pylist()
    reason = next((r["reason"] for r in ledger if r["reason"] in ("line_punct_ratio", "dup_line_frac",
                                                                  "char_dup_ratio") and r["text"]), None)
    assert reason, "the bench crawl always has such drops"
    assert tokenmill_cli.main(["inspect", str(runs / "fw"), "--reason", reason, "--sample", "1"]) == 0
    out = capsys.readouterr().out
    assert ">>> " in out and ("repeated" in out or "without end punctuation" in out)


def test_stats_inspect_diff_report_on_a_release_and_verify_on_a_run_say_so_in_one_line(runs, tmp_path, capsys):
    """Each of these raised a KeyError traceback: a release and a run's folder hold different manifests."""
    target = tmp_path / "rel"
    assert tokenmill_cli.main(["release", str(runs / "fw"), "--name", "web", "--version", "1.0.0", "--to",
                               str(target)]) == 0
    capsys.readouterr()
    for argv in (["stats", str(target)], ["inspect", str(target), "--kept"], ["diff", str(target), str(runs / "fw")],
                 ["report", str(target), "-o", str(tmp_path / "r.html")]):
        assert tokenmill_cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{target} is a release, not a run's output folder" in err[0], argv
    assert tokenmill_cli.main(["verify", str(runs / "fw")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tokenmill: {runs / 'fw'} is a run's output folder, not a release: `tokenmill release "
                   f"{runs / 'fw'} --to DIR` makes one; `tokenmill stats {runs / 'fw'}` reads the run"]


def test_verify_fails_on_a_file_the_manifest_does_not_list(runs, tmp_path, capsys):
    """SELECT * FROM 'shards/*.parquet' would read an extra shard that verify used to pass."""
    import shutil

    target = tmp_path / "rel"
    assert tokenmill_cli.main(["release", str(runs / "fw"), "--name", "web", "--version", "1.0.0", "--to",
                               str(target)]) == 0
    first = sorted((target / "shards").glob("*.parquet"))[0]
    shutil.copy(first, target / "shards" / "part-99999-000.parquet")
    capsys.readouterr()
    assert tokenmill_cli.main(["verify", str(target)]) == 1
    assert capsys.readouterr().out.strip() == (
        "MISMATCH shards/part-99999-000.parquet: not listed in the manifest (a reader of shards/*.parquet would "
        "read it)")


def test_inspect_id_of_a_kept_document_shows_its_text_and_decode_gives_it_back(runs, capsys):
    """inspect --id on a kept document said '(text not kept ...)'; its text is in its tokens. tokenmill decode
    turns token ids back into that text offline."""
    shard = pq.read_table(sorted((runs / "fw" / "shards").glob("*.parquet"))[0], columns=["doc_id", "tokens"])
    doc_id, tokens = shard.column("doc_id")[0].as_py(), shard.column("tokens")[0].as_py()
    assert tokenmill_cli.main(["inspect", str(runs / "fw"), "--id", doc_id]) == 0
    out = capsys.readouterr().out
    assert "text not kept" not in out
    assert tokenmill_cli.main(["decode", "--from", str(runs / "fw"), *map(str, tokens[:-1])]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    assert len(text) > 100 and " ".join(text.split())[:300] in " ".join(out.split())
    assert tokenmill_cli.main(["decode", "--tokenizer", "cl100k_base", "9906", "1917"]) == 0
    assert capsys.readouterr().out == "Hello world\n"


def test_the_reader_raises_on_a_path_without_a_release_and_warns_a_rank_with_nothing(runs, tmp_path):
    """PackedReader on a mistyped path, or on a release shorter than one sequence (the README's seq_len=2048 on
    the demo), yielded nothing without a word."""
    with pytest.raises(FileNotFoundError, match="no release or run here"):
        PackedReader(str(tmp_path / "relaese"), 128)
    tokens = json.loads((runs / "fw" / "manifest.json").read_text())["totals"]["tokens"]
    with pytest.warns(RuntimeWarning, match=f"rank 0 of 1 gets no full sequence: .* holds {tokens:,} tokens"):
        assert list(PackedReader(str(runs / "fw"), tokens + 10)) == []
    groups = len(PackedReader(str(runs / "fw"), 128).row_groups)
    with pytest.warns(RuntimeWarning, match=f"rank 0 of {groups + 1} gets no full sequence: rank .* hold 0 tokens"):
        PackedReader(str(runs / "fw"), 128, rank=0, world_size=groups + 1)  # more ranks than row groups
    sequences = tokens // 129
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(PackedReader(str(runs / "fw"), 128))) == sequences


def test_without_chromium_the_report_test_skips_with_a_reason_and_fails_under_ci(monkeypatch):
    from tests.conftest import require_chromium

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium on PATH.*under CI this fails"):
        require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no Chromium on PATH.*CI must render the report"):
        require_chromium()


def test_report_labels_are_whole_and_inside_their_charts_and_histograms_have_axes(runs, tmp_path):
    """Drop-reason labels were cut at 28 characters and clipped at the chart's left edge; histograms had only
    their two end values. Measured in Chromium: every text of every chart lies inside its SVG."""
    import re

    from outputs.browser import render
    from tests.conftest import require_chromium

    require_chromium()
    out = tmp_path / "report.html"
    assert tokenmill_cli.main(["report", str(runs / "fw"), "-o", str(out)]) == 0
    page = out.read_text()
    reasons = {f"{r['stage']}: {r['reason']}" for r in pq.read_table(
        sorted((runs / "fw" / "ledger").glob("*.parquet")), columns=["stage", "reason", "kept"]).to_pylist()
        if not r["kept"]}
    longest = max(reasons, key=len)
    assert len(longest) > 28 and f">{longest}</text>" in page
    # A script that measures every chart text against its SVG (the report itself has no scripts).
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", """<script>
const out = [];
for (const svg of document.querySelectorAll("svg.chart")) {
  const w = svg.width.baseVal.value, h = svg.height.baseVal.value;
  for (const t of svg.querySelectorAll("text")) {
    const b = t.getBBox();
    if (b.x < -0.5 || b.y < -0.5 || b.x + b.width > w + 0.5 || b.y + b.height > h + 0.5) out.push(t.textContent);
  }
}
document.body.setAttribute("data-outside", JSON.stringify(out));
document.body.setAttribute("data-measured", document.querySelectorAll("svg.chart text").length);
</script></body>"""))
    dom, _console = render(str(probe))
    measured = int(re.search(r'data-measured="(\d+)"', dom).group(1))
    outside = json.loads(re.search(r"data-outside=\"([^\"]*)\"", dom).group(1).replace("&quot;", '"'))
    assert measured > 50 and outside == []
    histograms = re.findall(r'<svg class="chart" role="img" aria-label="(?:Language score|Tokens per kept).*?</svg>',
                            page, re.S)
    assert len(histograms) == 2
    for svg in histograms:
        assert ">documents</text>" in svg and ">0</text>" in svg and svg.count("<line") >= 8


def test_the_dataset_card_lists_the_funnel_in_pipeline_order_and_the_files_read_short(clipped_warc, demo_crawl,
                                                                                     tmp_path):
    from schemas.records import STAGES

    clipped = clipped_warc
    # Allowed to read it short: a run that failed on it is not released.
    run([clipped, demo_crawl[0]], tmp_path / "run", "--max-file-errors", "0.5", *IN_MEMORY)
    assert tokenmill_cli.main(["release", str(tmp_path / "run"), "--name", "web", "--version", "1.0.0", "--to",
                               str(tmp_path / "rel")]) == 0
    card = (tmp_path / "rel" / "README.md").read_text()
    funnel = card.split("## Funnel")[1].split("##")[0]
    order = [line.split("|")[1].strip() for line in funnel.splitlines() if line.startswith("| ")][1:]
    assert order == [s for s in STAGES if s in order] and order[0] == "read" and len(order) >= 8
    errors = card.split("## Input files not read to the end")[1].split("##")[0]
    assert f"| {clipped} | " in errors
