"""End-to-end runs of the Beam pipeline on real and demo crawls, on the runners we support locally."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

import run_pipeline
from schemas.records import CONTENT_RECORD_TYPES

IN_MEMORY = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


def run(inputs: list[str], out: Path, *extra: str) -> dict:
    args = [a for i in inputs for a in ("--input", i)] + ["--output", str(out), *extra]
    return run_pipeline.run(args)


def content_records(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            try:
                n += sum(1 for r in ArchiveIterator(f) if r.rec_type in CONTENT_RECORD_TYPES)
            except Exception:  # noqa: BLE001 - counted up to the framing error, as the pipeline does
                pass
    return n


def ledger(out: Path):
    return pq.read_table(sorted((out / "ledger").glob("*.parquet"))).to_pylist()


def shards(out: Path):
    return pq.read_table(sorted((out / "shards").glob("*.parquet"))).to_pylist()


def file_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))} | {
        "manifest.json": (out / "manifest.json").read_bytes()
    }


@pytest.fixture(scope="module")
def demo_run(demo_crawl, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_out")
    return run(demo_crawl, out, *IN_MEMORY), out


def test_demo_crawl_funnel_and_contract(demo_run, demo_crawl):
    stats, out = demo_run
    rows = ledger(out)
    assert stats["records"] == len(rows) == content_records([Path(p) for p in demo_crawl]) == 18
    assert stats["stages"]["read"]["dropped"] == {"http_error": 2, "http_redirect": 2, "not_html": 4}
    assert stats["stages"]["exact_dedup"]["dropped"] == {"exact_duplicate": 2}
    assert stats["read"]["skipped_record_types"] == {"request": 8, "warcinfo": 2}
    kept = shards(out)
    assert stats["kept"] == len(kept) == 8
    assert {d["language"] for d in kept} == {"en", "de", "fr"}
    # One shard (8 documents < shard_tokens), in input order: the first file's documents, then the second's,
    # each file's sorted by doc id.
    (shard,) = sorted((out / "shards").glob("*.parquet"))
    rows_of = pq.read_table(shard, columns=["doc_id"]).column("doc_id").to_pylist()
    sources = {r["doc_id"]: r["source"] for r in rows}
    order = sorted(rows_of, key=lambda d: (sorted(set(sources.values())).index(sources[d]), d))
    assert rows_of == order and len({sources[d] for d in rows_of}) == 2
    assert all(d["tokens"][-1] == 100257 and d["token_count"] == len(d["tokens"]) for d in kept)
    assert all(d["title"] and d["published_date"] == "2025-03-14" for d in kept)
    by_id = {r["doc_id"]: r for r in rows}
    for d in kept:
        assert by_id[d["doc_id"]]["kept"] and by_id[d["doc_id"]]["token_count"] == d["token_count"]
    dups = [r for r in rows if r["reason"] == "exact_duplicate"]
    assert all(by_id[r["detail"].removeprefix("duplicate of ")]["kept"] for r in dups)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"] == {"documents": 8, "tokens": sum(d["token_count"] for d in kept), "ledger_rows": 18}
    assert manifest["tokenizer"]["name"] == "cl100k_base" and manifest["tokenizer"]["eos_id"] == 100257
    assert manifest["recipe"]["name"] == "default" and len(manifest["recipe_sha256"]) == 64
    # Shards are cut across input files every shard_tokens tokens and numbered.
    assert [s["path"] for s in manifest["shards"]] == ["shards/part-00000.parquet"]
    assert sum(s["rows"] for s in manifest["shards"]) == 8
    assert pq.ParquetFile(out / manifest["shards"][0]["path"]).metadata.row_group(0).column(0).compression == "ZSTD"
    assert [e["path"] for e in manifest["ledger"]] == ["ledger/part-00000.parquet"]
    assert not (out / "_staging").exists()


def test_files_of_one_base_name_in_two_folders_are_two_sources(demo_run, demo_crawl, tmp_path):
    """a/part-0.warc.gz and b/part-0.warc.gz (the demo crawl's two files, renamed): two sources, named by their
    paths below the inputs' common folder, each with its own parts and every record's ledger row; ids are
    xxh3_128 of (source, WARC-Record-ID), 32 hex digits, and the manifest and every doc_id column say so."""
    import pyarrow as pa
    import xxhash

    from schemas.records import DOC_ID_METADATA_KEY, DOC_ID_SCHEME

    inputs = []
    for folder, original in zip("ab", demo_crawl, strict=True):
        (tmp_path / "crawl" / folder).mkdir(parents=True)
        inputs.append(tmp_path / "crawl" / folder / "part-0.warc.gz")
        inputs[-1].write_bytes(Path(original).read_bytes())
    out = tmp_path / "out"
    stats = run([str(p) for p in inputs], out, *IN_MEMORY)
    rows = ledger(out)
    assert stats["records"] == len(rows) == demo_run[0]["records"] == 18 and stats["kept"] == demo_run[0]["kept"]
    assert {r["source"] for r in rows} == {"a/part-0.warc.gz", "b/part-0.warc.gz"}
    assert len({r["doc_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["doc_id"] == xxhash.xxh3_128_hexdigest(f"{r['source']}\x00{r['warc_record_id']}".encode())
        assert len(r["doc_id"]) == 32 and int(r["doc_id"], 16) >= 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["path"] for e in manifest["ledger"]] == ["ledger/part-00000.parquet"]
    # Parts are cut across input files, in input order: a's rows, then b's, each sorted by doc id.
    part = pq.read_table(out / "ledger" / "part-00000.parquet", columns=["source", "doc_id"]).to_pylist()
    assert [(r["source"], r["doc_id"]) for r in part] == sorted((r["source"], r["doc_id"]) for r in rows)
    assert {r["source"] for r in part} == {"a/part-0.warc.gz", "b/part-0.warc.gz"}
    assert [e["path"] for e in manifest["shards"]] == ["shards/part-00000.parquet"]
    assert manifest["doc_id"] == DOC_ID_SCHEME == "xxh3_128(source, WARC-Record-ID)"
    for entry in manifest["shards"] + manifest["ledger"] + manifest["dedup_index"]["parts"]:
        field = pq.read_schema(out / entry["path"]).field("doc_id")
        assert field.type == pa.string() and field.metadata == {DOC_ID_METADATA_KEY.encode(): DOC_ID_SCHEME.encode()}


def test_real_warc_samples_no_crash_and_ledger_identity(warc_samples, tmp_path):
    files = sorted(warc_samples.glob("*.warc*"))
    stats = run([str(p) for p in files], tmp_path / "out", *IN_MEMORY)
    rows = ledger(tmp_path / "out")
    assert len(rows) == stats["records"] == content_records(files)
    assert len({r["doc_id"] for r in rows}) == len(rows)
    reasons = {(r["stage"], r["reason"]) for r in rows}
    assert ("read", "not_html") in reasons  # the wget resource records are text/plain
    assert stats["kept"] > 40
    kept = shards(tmp_path / "out")
    langs = {d["language"] for d in kept}
    assert {"en", "ja"} <= langs  # ClueWeb WARC/0.18 Japanese pages decode (EUC-JP) and are labeled
    wet = [r for r in rows if r["record_type"] == "conversion"]
    # The WET conversion record (already plain text) skips extraction and is kept; lid.176 calls this
    # Aragonese Wikipedia page Spanish, the closest language it knows well.
    assert len(wet) == 1 and wet[0]["kept"] and wet[0]["language"] in ("an", "es")


def test_retried_bundles_leave_no_trace(demo_crawl, tmp_path):
    """Every bundle of the run is first run once more and thrown away (Beam's --direct_runner_bundle_repeat:
    a dry run whose outputs the runner discards, as it discards a failed attempt before retrying it), with
    every side effect it has: staging files of another attempt id, shard and ledger parts, the manifest. The
    output is the output of a run without retries, and nothing is left in _staging/."""
    recipe = tmp_path / "near.toml"
    recipe.write_text('[dedup.near]\nenabled = true\n')
    run(demo_crawl, tmp_path / "once", "--config", str(recipe), *IN_MEMORY)
    run(demo_crawl, tmp_path / "twice", "--config", str(recipe), *IN_MEMORY, "--direct_runner_bundle_repeat=1")
    assert file_bytes(tmp_path / "once") == file_bytes(tmp_path / "twice")
    assert not (tmp_path / "twice" / "_staging").exists()
    assert sorted(p.name for p in (tmp_path / "twice").iterdir()) == ["dedup_index", "ledger", "manifest.json",
                                                                       "shards", "stats.json"]
    for folder in ("shards", "ledger", "dedup_index"):  # no part of a discarded attempt left
        assert sorted(p.name for p in (tmp_path / "twice" / folder).iterdir()) == sorted(
            p.name for p in (tmp_path / "once" / folder).iterdir())


def test_rerun_is_byte_identical_and_multiprocessing_matches_in_memory(demo_crawl, tmp_path):
    run(demo_crawl, tmp_path / "a", *IN_MEMORY)
    run(demo_crawl, tmp_path / "b", *IN_MEMORY)
    run(demo_crawl, tmp_path / "c", "--runner=DirectRunner", "--direct_running_mode=multi_processing",
        "--direct_num_workers=2")
    a = file_bytes(tmp_path / "a")
    assert a == file_bytes(tmp_path / "b") == file_bytes(tmp_path / "c")


@pytest.mark.parametrize("precheck", [True, False])
def test_recipe_keep_rule_and_small_shards(demo_crawl, tmp_path, precheck):
    recipe = tmp_path / "en.toml"
    recipe.write_text(
        'name = "english"\n[filters.language]\nkeep = ["en"]\nmin_score = 0.5\n'
        f"precheck_margin = {0.02 if precheck else 0}\n"
        "[output]\nshard_tokens = 300\nledger_rows_per_part = 5\n"
    )
    stats = run(demo_crawl, tmp_path / "out", "--config", str(recipe), *IN_MEMORY)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["shards"]) > 1 and len(manifest["ledger"]) > 1
    assert sum(s["rows"] for s in manifest["shards"]) == stats["kept"] == 5
    assert {d["language"] for d in shards(tmp_path / "out")} == {"en"}
    dropped = [r for r in ledger(tmp_path / "out") if r["reason"] == "language_not_kept"]
    if precheck:
        # The German and French pages never reach trafilatura: the tag-stripped text already gives English
        # almost nothing. Same reason, earlier stage; the score is English's probability there.
        assert stats["stages"]["language_precheck"]["dropped"] == {"language_not_kept": 3}
        assert stats["stages"]["filters"]["dropped"] == {}
        assert all(r["stage"] == "language_precheck" and r["score"] < 0.02 for r in dropped)
        assert sorted(r["detail"][-2:] for r in dropped) in (["de", "fr", "fr"], ["de", "de", "fr"])
    else:
        assert stats["stages"]["filters"]["dropped"] == {"language_not_kept": 3}
        assert {r["language"] for r in dropped} == {"de", "fr"} and all(r["score"] > 0.5 for r in dropped)


@pytest.mark.parametrize("crawl", ["bench_crawl_300", "real_crawl_300"])
def test_bench_crawl_300(crawl, request, tmp_path):
    bench_crawl_300 = request.getfixturevalue(crawl)
    files = sorted(bench_crawl_300.glob("*.warc.gz"))
    stats = run([str(p) for p in files], tmp_path / "out", *IN_MEMORY)
    rows = ledger(tmp_path / "out")
    assert len(rows) == stats["records"] == content_records(files)
    truth = [json.loads(line) for line in (bench_crawl_300 / "truth.jsonl").read_text().splitlines()]
    assert stats["stages"]["exact_dedup"]["dropped"].get("exact_duplicate", 0) > 0
    assert stats["kept"] > 0.5 * len([t for t in truth])
    if crawl == "bench_crawl_300":  # the project's crawl: one copy dropped per planted mirror, in its family
        family = {t["record_id"]: t["family"] for t in truth}
        mirrored = {t["family"] for t in truth if t["kind"] == "exact"}
        dropped = [family[r["warc_record_id"]] for r in rows if r["reason"] == "exact_duplicate"]
        assert len(dropped) == sum(t["kind"] == "exact" for t in truth) and set(dropped) == mirrored
    assert stats["tokens"] == sum(d["token_count"] for d in shards(tmp_path / "out"))


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    assert run_pipeline.main(["--input", str(tmp_path / "none-*.warc.gz"), "--output", str(tmp_path / "o")]) == 2
    assert "matches no file" in capsys.readouterr().err
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.docx").write_text("mine")
    warc = tmp_path / "x.warc"
    warc.write_bytes(b"")
    assert run_pipeline.main(["--input", str(warc), "--output", str(tmp_path / "foreign")]) == 2
    assert "not a tokenmill run" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "says"), [
    (["--keep-scord"], "unknown flag --keep-scord: neither tokenmill nor Beam knows it; did you mean --keep-scored?"),
    (["--recipe", "fineweb"], "unknown flag --recipe: neither tokenmill nor Beam knows it; did you mean --config?"),
    (["stray.warc.gz"], "unexpected argument 'stray.warc.gz'"),
])
def test_a_flag_nobody_knows_stops_the_run_before_it_starts(demo_crawl, tmp_path, capsys, extra, says):
    """Beam drops arguments it does not know with a log line and runs on: a typo ran the default recipe."""
    out = tmp_path / "o"
    assert run_pipeline.main(["--input", demo_crawl[0], "--output", str(out), *extra, *IN_MEMORY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tokenmill: {says}")
    assert not out.exists()


def test_input_takes_several_values_as_an_unquoted_glob_gives_them(demo_crawl, tmp_path):
    """`--input crawl/*.warc.gz` unquoted: the shell hands over every file; each is read."""
    stats = run([], tmp_path / "o", "--input", *demo_crawl, *IN_MEMORY)
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert len(demo_crawl) == 2 and manifest["inputs"] == sorted(demo_crawl) and stats["records"] == 18


def test_a_finished_run_is_refused_unless_overwrite_and_stays_byte_identical(demo_run, demo_crawl, tmp_path,
                                                                             capsys):
    """A second command into a folder holding a finished run once emptied it and wrote its own (8 shards became
    1); now it stops with one line, the earlier run untouched, and --overwrite replaces it."""
    import shutil

    _stats, finished = demo_run
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    before = file_bytes(out) | {"stats.json": (out / "stats.json").read_bytes()}
    recipe = tmp_path / "one.toml"
    recipe.write_text("[output]\nshard_tokens = 100000000\n")
    argv = ["--input", demo_crawl[0], "--output", str(out), "--config", str(recipe), *IN_MEMORY]
    assert run_pipeline.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tokenmill: output directory {out} holds a finished run; give --overwrite to replace it, or "
                   "choose another directory"]
    assert file_bytes(out) | {"stats.json": (out / "stats.json").read_bytes()} == before
    assert run_pipeline.main([*argv, "--overwrite"]) == 0
    assert json.loads((out / "manifest.json").read_text())["inputs"] == [demo_crawl[0]]
    assert not (out / run_pipeline.STARTED).exists()


def test_an_interrupted_run_resumes_only_with_its_own_recipe_and_inputs(demo_crawl, tmp_path, capsys):
    """A run that died leaves _started.json and no manifest. The same command starts it again; another recipe
    or other inputs are refused, naming what differs."""
    from schemas.recipe import load_recipe

    out = tmp_path / "out"
    run_pipeline.prepare_output(str(out), recipe=load_recipe(None), inputs=sorted(demo_crawl))
    (out / "shards").mkdir()
    (out / "shards" / "part-00000-000.parquet").write_bytes(b"half-written")
    argv = ["--input", *demo_crawl, "--output", str(out), *IN_MEMORY]
    assert run_pipeline.main([*argv, "--config", "fineweb"]) == 2
    err = capsys.readouterr().err
    assert "holds an interrupted run of another kind (recipe 'default'" in err and "'fineweb'" in err
    assert run_pipeline.main(["--input", demo_crawl[0], "--output", str(out), *IN_MEMORY]) == 2
    assert "inputs: 0 file(s) new, 1 missing" in capsys.readouterr().err
    assert (out / "shards" / "part-00000-000.parquet").read_bytes() == b"half-written"
    assert run_pipeline.main(argv) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"tokenmill: note: running the interrupted run in {out} again from the start"]
    assert json.loads((out / "stats.json").read_text())["records"] == 18


def test_a_file_read_short_is_named_on_the_console_and_fails_the_run_unless_allowed(clipped_warc, demo_crawl,
                                                                                   tmp_path, capsys):
    """A clipped WARC (the real resiliparse-clipped.warc.gz found it): its error used to appear only inside
    stats.json, exit 0. Now the console names the file, the byte and the error, and the run exits 1 unless
    --max-file-errors allows that share of files; the outputs hold what could be read either way."""
    clipped = clipped_warc
    argv = ["--input", clipped, demo_crawl[0], "--output", str(tmp_path / "a"), *IN_MEMORY]
    assert run_pipeline.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"tokenmill: error: could not read {clipped} to the end: at byte ")
    assert err[1].startswith("tokenmill: error: 1 of 2 input files could not be read to the end")
    stats = json.loads((tmp_path / "a" / "stats.json").read_text())
    assert stats["kept"] > 0 and (tmp_path / "a" / "manifest.json").exists()
    assert run_pipeline.main([*argv[:3], "--output", str(tmp_path / "b"), "--max-file-errors", "0.5",
                              *IN_MEMORY]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tokenmill: warning: could not read {clipped} to the end")


def test_an_input_with_no_record_fails_the_run(tmp_path, capsys):
    """A text file named .warc.gz as the only input: '0 records, 0 kept' and exit 0 before. (A folder means the
    crawl files in it: tests/test_run_folder.py.)"""
    path = tmp_path / "notes.warc.gz"
    path.write_text("these are my notes, not a crawl\n" * 20)
    assert run_pipeline.main(["--input", str(path), "--output", str(tmp_path / "o"), *IN_MEMORY]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "tokenmill: error: read no record from 1 input file(s): is this a WARC/WET crawl?"
    assert any(str(path) in line for line in err[:-1])


def test_outputs_read_unchanged_by_duckdb(demo_run):
    import duckdb

    stats, out = demo_run
    con = duckdb.connect()
    n, tokens = con.execute(
        f"SELECT count(*), sum(len(tokens)) FROM read_parquet('{out}/shards/*.parquet')"
    ).fetchone()
    assert n == stats["kept"] and tokens == stats["tokens"]
    reasons = dict(con.execute(
        f"SELECT reason, count(*) FROM read_parquet('{out}/ledger/*.parquet') WHERE NOT kept GROUP BY reason"
    ).fetchall())
    assert reasons == {"http_error": 2, "http_redirect": 2, "not_html": 4, "exact_duplicate": 2}


def test_a_stage_that_drops_almost_everything_is_named(demo_crawl, tmp_path, capsys):
    recipe = tmp_path / "xx.toml"
    recipe.write_text('[filters.language]\nkeep = ["xx"]\n')
    run(demo_crawl, tmp_path / "out", "--config", str(recipe), *IN_MEMORY)
    err = capsys.readouterr().err
    assert "stage 'language_precheck' dropped 10 of 10 documents (100.0%), mostly 'language_not_kept'" in err


def test_a_worker_started_elsewhere_applies_the_memory_settings_itself():
    """Dataflow, Flink and Spark start workers from their own environment, where the driver's settings
    (tune_malloc) never arrive. A worker's first DoFn setup applies them: Arrow's default pool is glibc's
    ("system") unless the worker's environment names one."""
    import os
    import subprocess
    import sys

    probe = ("from pipelines.documents import ReadWarcFiles\n"
             "import pyarrow as pa\n"
             "before = pa.default_memory_pool().backend_name\n"
             "ReadWarcFiles().setup()\n"
             "print(before, pa.default_memory_pool().backend_name)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "ARROW_DEFAULT_MEMORY_POOL"))}

    def worker() -> list[str]:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env,
                              cwd=run_pipeline.CHECKOUT).stdout.split()

    before, after = worker()
    assert after == "system" and before != "system", (before, after)
    env["ARROW_DEFAULT_MEMORY_POOL"] = before
    assert worker() == [before, before]  # the worker's own setting wins


def test_malloc_is_tuned_for_the_run_and_the_processes_it_starts(monkeypatch):
    import os

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    run_pipeline.tune_malloc()
    assert os.environ["MALLOC_ARENA_MAX"] == run_pipeline.MALLOC_ARENAS  # inherited by workers and children
    assert os.environ["MALLOC_MMAP_THRESHOLD_"] == os.environ["MALLOC_TRIM_THRESHOLD_"] == "131072"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    run_pipeline.tune_malloc()
    assert os.environ["MALLOC_ARENA_MAX"] == "4"  # a user's own setting wins


def test_the_processes_a_run_starts_allocate_arrow_memory_from_glibc(monkeypatch):
    """pyarrow reads ARROW_DEFAULT_MEMORY_POOL when first imported: a fresh interpreter (as an SDK worker is)
    must get the system pool, so a shard's row group is handed back to the system when written."""
    import os
    import subprocess
    import sys

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    run_pipeline.tune_malloc()
    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system"
    probe = subprocess.run([sys.executable, "-c", "import pyarrow; print(pyarrow.default_memory_pool().backend_name)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "system"


def test_workers_import_the_drivers_checkout(monkeypatch):
    """SDK workers find tokenmill on sys.path: this checkout goes first on the PYTHONPATH they inherit."""
    import os

    checkout = os.path.dirname(os.path.abspath(run_pipeline.__file__))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/elsewhere", checkout]))
    run_pipeline.pin_worker_code()
    run_pipeline.pin_worker_code()
    assert os.environ["PYTHONPATH"].split(os.pathsep) == [checkout, "/elsewhere"]
    monkeypatch.delenv("PYTHONPATH")
    run_pipeline.pin_worker_code()
    assert os.environ["PYTHONPATH"] == checkout


def test_the_local_runner_is_pinned_so_nothing_is_downloaded():
    """Beam's DirectRunner tries Prism first and downloads it at run time; tokenmill runs FnApiRunner instead."""
    assert run_pipeline.local_runner([]) == run_pipeline.DEFAULT_RUNNER_ARGS
    # Small inputs run in one process, unless a --direct_* flag says otherwise; unknown sizes count as large.
    small = run_pipeline.IN_PROCESS_BYTES
    assert run_pipeline.local_runner([], small) == ["--runner=FnApiRunner", "--direct_running_mode=in_memory"]
    assert run_pipeline.local_runner([], small + 1) == run_pipeline.local_runner([], None) == \
        run_pipeline.DEFAULT_RUNNER_ARGS
    assert run_pipeline.local_runner(["--direct_num_workers=2"], small) == [
        *run_pipeline.DEFAULT_RUNNER_ARGS, "--direct_num_workers=2"]
    assert run_pipeline.local_runner(["--runner=DirectRunner"], small) == ["--runner=FnApiRunner"]
    assert run_pipeline.local_runner(["--runner=DirectRunner", "--direct_num_workers=2"]) == [
        "--runner=FnApiRunner", "--direct_num_workers=2"]
    assert run_pipeline.local_runner(["--runner", "DirectRunner"]) == ["--runner", "FnApiRunner"]
    for other in (["--runner=DataflowRunner", "--project=p"], ["--runner", "PrismRunner"]):
        assert run_pipeline.local_runner(other) == other
    # Two extraction children for the one worker of a run in one process, one a worker everywhere else.
    from driver.runner import IN_PROCESS_EXTRACT_CHILDREN

    assert run_pipeline.extract_children([], small) == IN_PROCESS_EXTRACT_CHILDREN == 2
    for args, size in (([], small + 1), ([], None), (["--direct_num_workers=2"], small),
                       (["--runner=DirectRunner"], small), (["--runner=FlinkRunner"], small)):
        assert run_pipeline.extract_children(args, size) == 1, (args, size)


def _worker_command(_element) -> str:
    with open("/proc/self/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def test_the_local_runners_worker_processes_run_tokenmills_worker_main(tmp_path):
    """driver/runner.py: LocalRunner gives the multi_processing workers harness/local_worker.py (Beam's worker
    main, ended without the interpreter's teardown); a worker reports its own command line here."""
    import apache_beam as beam

    out = tmp_path / "commands"
    p = run_pipeline.make_pipeline(run_pipeline.local_runner(["--direct_num_workers=1"]))
    _ = (p | beam.Create([0]) | beam.Map(_worker_command)
         | beam.io.WriteToText(str(out), shard_name_template=""))
    p.run().wait_until_finish()
    assert out.read_text().split() == [sys.executable, "-m", "harness.local_worker"]


def test_the_driver_builds_the_pipeline_without_the_compiled_kernels(tmp_path):
    """The driver imports the filters and near dedup for their names and shapes, never runs a kernel: numba (and
    the scipy it imports) must stay out of it, also while it builds the decontamination index. The manifest's
    tokenizer entry is read without building an encoder and must equal what a built tokenizer says."""
    import subprocess
    import sys

    items = tmp_path / "items.txt"
    items.write_text("one benchmark item of more than eight words, to be indexed by the driver\n")

    probe = (
        "import sys, apache_beam as beam, run_pipeline\n"
        "from pipelines.build import build_pipeline\n"
        "from schemas.recipe import load_recipe\n"
        "recipe = load_recipe('fineweb')\n"
        "recipe.dedup.near.enabled = True\n"
        "recipe.decontamination.enabled = True\n"
        f"recipe.decontamination.sources = [{str(items)!r}]\n"
        "info = run_pipeline.tokenizer_info(recipe)\n"
        f"plan, index = run_pipeline.decontamination_index(recipe, {str(tmp_path)!r})\n"
        "run_pipeline.write_decontamination_index(plan, index)\n"
        f"build_pipeline(beam.Pipeline(), inputs_file='inputs.txt', output={str(tmp_path)!r}, recipe=recipe,\n"
        "               tokenizer_info=info, decontamination=plan)\n"
        "print(sorted(m for m in ('numba', 'scipy', 'tiktoken') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=run_pipeline.CHECKOUT)
    assert out.stdout.split("\n")[-2] == "[]"

    from schemas.recipe import load_recipe
    from tokenization.tokenizers import Tokenizer

    recipe = load_recipe("fineweb")
    tok = Tokenizer(recipe.tokenizer.name, recipe.tokenizer.append_eos)
    assert run_pipeline.tokenizer_info(recipe) == {
        "name": tok.name, "vocab_sha256": tok.vocab_hash, "eos_id": tok.eos_id,
        "append_eos": recipe.tokenizer.append_eos}


def test_min_text_chars_drops_short_texts_as_empty_text(demo_crawl, tmp_path):
    """extract.min_text_chars: every demo article is shorter than 100,000 characters."""
    recipe = tmp_path / "long.toml"
    recipe.write_text("[extract]\nmin_text_chars = 100000\n")
    stats = run(demo_crawl, tmp_path / "out", "--config", str(recipe), *IN_MEMORY)
    assert stats["kept"] == 0 and stats["stages"]["extract"]["dropped"] == {"empty_text": 10}


def test_a_run_reports_its_trafilatura_and_says_when_the_speed_patches_are_off(
        demo_crawl, demo_run, tmp_path, monkeypatch, capsys):
    """stats.json names the trafilatura the workers ran and each speed patch; on a release the patches were not
    verified on they are off, the run still completes with trafilatura's own code, and the console says so in
    one line. Extraction runs inline here so the in-memory runner's worker is this process."""
    from ingest import speedups

    stats, _out = demo_run
    assert stats["extract"] == {"trafilatura": "2.3.1", "speed_patches": dict.fromkeys(speedups.PATCHES, True)}
    recipe = tmp_path / "inline.toml"
    recipe.write_text('[extract]\nisolation = "inline"\n')
    speedups.uninstall()
    monkeypatch.setattr(speedups, "trafilatura_version", lambda: "2.4.0")
    try:
        slow = run(demo_crawl, tmp_path / "out", "--config", str(recipe), *IN_MEMORY)
    finally:
        monkeypatch.undo()
        speedups.uninstall()
    assert slow["kept"] == stats["kept"] and slow["tokens"] == stats["tokens"]
    assert slow["extract"]["trafilatura"] == "2.4.0"
    assert slow["extract"]["speed_patches"] == dict.fromkeys(speedups.PATCHES, False)
    assert "not a verified release" in slow["extract"]["speed_patches_off"]["readability_skip"]
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "speed patches off" in ln]
    assert len(lines) == 1 and lines[0].startswith("tokenmill: warning: trafilatura speed patches off")



def test_the_survivor_rule_picks_which_copy_of_a_duplicate_stays(demo_crawl, tmp_path):
    """dedup.survivor: the smallest doc id, or the copy first in the crawl (input file, then offset), the one
    datatrove's MinHash clustering keeps for FineWeb. Of the demo crawl's two duplicate pairs, named
    crawl-0.warc.gz and crawl-1.warc.gz (ids hash the file's name), one has its smaller id first and one last,
    so the rules keep different copies."""
    crawl = []
    for k, path in enumerate(demo_crawl):
        crawl.append(str(tmp_path / f"crawl-{k}.warc.gz"))
        Path(crawl[-1]).write_bytes(Path(path).read_bytes())
    survivors = {}
    for rule in ("smallest_id", "first_seen"):
        recipe = tmp_path / f"{rule}.toml"
        recipe.write_text(f'[dedup]\nsurvivor = "{rule}"\n')
        run(crawl, tmp_path / rule, "--config", str(recipe), *IN_MEMORY)
        rows = {r["doc_id"]: r for r in ledger(tmp_path / rule)}
        dups = [r for r in rows.values() if r["reason"] == "exact_duplicate"]
        assert len(dups) == 2
        for dup in dups:
            kept = rows[dup["cluster_id"]]
            assert kept["kept"] and kept["cluster_id"] == kept["doc_id"]
            if rule == "first_seen":
                assert (kept["source"], kept["offset"]) < (dup["source"], dup["offset"])
            else:
                assert kept["doc_id"] < dup["doc_id"]
        survivors[rule] = {dup["cluster_id"] for dup in dups}
    assert len(survivors["smallest_id"] & survivors["first_seen"]) == 1


@pytest.mark.parametrize(("argv", "says"), [
    (["--runner=PortableRunner"], "--runner=PortableRunner needs --job_endpoint=HOST:PORT"),
    (["--config", "{tok}"], "tokenizer.name = 'gpt5': tokenizer 'gpt5' is neither one of cl100k_base, o200k_base"),
    (["--config", "{old}"], "{old}: recipe key 'output.shard_target_tokens' is now 'output.shard_tokens': shards "
                            "are now cut across input files"),
])
def test_user_mistakes_are_one_line_and_exit_2_before_anything_is_written(demo_crawl, tmp_path, capsys, argv, says):
    tok = tmp_path / "tok.toml"
    tok.write_text('[tokenizer]\nname = "gpt5"\n')
    old = tmp_path / "old.toml"  # a recipe written before shards were cut across input files
    old.write_text("[output]\nshard_target_tokens = 100000000\n")
    out = tmp_path / "o"
    argv = [a.format(tok=tok, old=old) for a in argv]
    assert run_pipeline.main(["--input", demo_crawl[0], "--output", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tokenmill: {says.format(old=old)}")
    assert not out.exists()


def test_ctrl_c_says_how_to_resume(capfd):
    def interrupted(argv, console_fd=None):
        raise KeyboardInterrupt

    assert run_pipeline.main([], command=interrupted) == 130
    # Written to the real standard error, which QuietStderr kept aside (descriptor 2 goes nowhere after Ctrl-C).
    assert capfd.readouterr().err.strip() == "tokenmill: interrupted; the same command runs it again from the start"


def test_the_console_shows_tokenmills_lines_only_unless_verbose_and_quiet_only_the_summary(demo_crawl, tmp_path):
    """A local run printed Beam's INFO logging for every SDK worker and (Beam 2.78) a bigquery/apitools warning
    per process around tokenmill's few lines. Now: tokenmill's lines; --verbose shows Beam's, the SDK workers'
    among them; --quiet only the summary. Beam 2.62 logs no apitools warning, and its workers send their
    logging to the driver (local_job_service 'Worker:' lines) rather than print it: 2.78 does both."""
    import subprocess
    import sys

    def console(*extra: str) -> tuple[list[str], list[str]]:
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}"
        done = subprocess.run([sys.executable, str(Path(run_pipeline.__file__)), "--input", *demo_crawl,
                               "--output", str(out), "--direct_num_workers=2", "--config", str(recipe), *extra],
                              capture_output=True, text=True, check=True)
        return done.stdout.splitlines(), done.stderr.splitlines()

    recipe = tmp_path / "drops.toml"  # a stage that drops everything: a warning line to see or not
    recipe.write_text('[filters.language]\nkeep = ["xx"]\n')
    out, err = console()
    assert len(out) == 1 and out[0].startswith("tokenmill: 18 records, 0 kept")
    assert err == ["tokenmill: warning: stage 'language_precheck' dropped 10 of 10 documents (100.0%), mostly "
                   "'language_not_kept' (10): check its recipe and dependencies"]
    out, err = console("--quiet")
    assert len(out) == 1 and err == []
    _out, err = console("--verbose")
    assert any(line.startswith("INFO:") for line in err)
    assert any(line.startswith("WARNING:") and "local_job_service:Worker:" in line for line in err)


def test_tokenmill_version(capsys):
    import tokenmill_cli

    assert tokenmill_cli.main(["--version"]) == 0
    assert capsys.readouterr().out == "tokenmill 0.1.0\n"


def test_progress_line_counts_bytes_records_and_what_passed_the_filters(bench_crawl_300, tmp_path):
    """On a terminal (here a pseudo-terminal) a local run redraws one line: bytes read of the inputs' total,
    records, documents past the filters, rate, time left; it clears it at the end."""
    import os
    import pty

    from console.progress import render

    assert render({"bytes": 12_000_000, "records": 1204, "kept": 310}, 48_000_000, 12.5) == (
        "read 12.0 of 48.0 MB (25%), 1,204 records, 310 past the filters, 96 records/s, 0:37 left")
    assert render({"bytes": 48_000_000, "records": 4000}, 48_000_000, 50).endswith("records/s")
    assert render({"bytes": 41_200, "records": 17}, 43_000, 1.0).startswith("read 41.2 of 43.0 kB (96%), 17 records")
    master, terminal = pty.openpty()
    files = [str(p) for p in sorted(bench_crawl_300.glob("*.warc.gz"))]
    stats = run_pipeline.run([a for f in files for a in ("--input", f)] + ["--output", str(tmp_path / "o"),
                             *IN_MEMORY], console_fd=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    lines = [line for line in shown.decode().split("\r") if line.startswith("\x1b[Ktokenmill: read ")]
    assert lines, shown[:200]
    total = sum(os.path.getsize(f) for f in files)
    last = lines[-1]
    of = f"of {total / 1e6:,.1f} MB" if total >= 1e6 else f"of {total / 1e3:,.1f} kB"
    assert of in last and "records" in last and "past the filters" in last
    assert int(last.split(" records,")[0].rsplit(" ", 1)[-1].replace(",", "")) <= stats["records"]
    assert shown.endswith(b"\r\x1b[K")


def test_the_job_graph_does_not_grow_with_the_input_list():
    """A Common Crawl snapshot is ~90,000 WARC files. Their paths were built into the job graph three times
    (1.19 MB for 100,000); now the pipeline reads them from the run's input list."""
    from bench.graph_size import graph_bytes

    small, large = graph_bytes(10, "fineweb"), graph_bytes(100_000, "fineweb")
    assert abs(large - small) < 1_000 and large < 1 << 20, (small, large)


def test_a_crawl_without_content_records_is_a_run_every_reading_command_reads(tmp_path, capsys):
    """A WARC of warcinfo, request and metadata records only: no ledger row, no shard, no index row, so since
    parts are cut across input files (bdc7f72) the run has no part of any kind; stats, inspect and diff read it
    as empty tables with their columns instead of failing on a missing doc_id."""
    import tokenmill_cli
    from demo.warc_writer import WarcWriter

    warc = tmp_path / "nothing.warc.gz"
    with open(warc, "wb") as raw:
        w = WarcWriter(raw, seed="nothing")
        w.warcinfo()
        w.request("https://example.com/")
        w.metadata("https://example.com/", "fetchTimeMs: 12")
    stats = run([str(warc)], tmp_path / "out", *IN_MEMORY)
    assert stats["kept"] == 0, stats
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["ledger"] == [] and manifest["shards"] == [], manifest
    out = str(tmp_path / "out")
    capsys.readouterr()
    for argv in (["stats", out], ["inspect", out, "--json"], ["inspect", out, "--kept", "--sample", "2"],
                 ["diff", out, out]):
        assert tokenmill_cli.main(argv) == 0, argv
    said = capsys.readouterr()
    assert "Traceback" not in said.err, said.err
