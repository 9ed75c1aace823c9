"""`tokenmill select`: another recipe over a --keep-scored run must equal a full run with that recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import run_pipeline
from schemas.recipe import RecipeError
from tests.test_pipeline import IN_MEMORY, file_bytes, run

FIRST = """
name = "first"
[filters]
order = ["language", "gopher_quality", "c4", "fineweb", "pii"]
"""


@pytest.fixture(scope="module")
def scored_run(bench_crawl_300, tmp_path_factory):
    root = tmp_path_factory.mktemp("select")
    recipe = root / "first.toml"
    recipe.write_text(FIRST)
    inputs = [str(p) for p in sorted(bench_crawl_300.glob("*.warc.gz"))]
    run(inputs, root / "first", "--config", str(recipe), "--keep-scored", *IN_MEMORY)
    return root, inputs


def test_scored_holds_every_document_that_reached_the_filters(scored_run):
    root, _ = scored_run
    stats = json.loads((root / "first" / "stats.json").read_text())
    scored = pq.read_table(sorted((root / "first" / "scored").glob("*.parquet"))).to_pylist()
    assert len(scored) == stats["stages"]["filters"]["in"]
    names = {s["name"] for s in scored[0]["scores"]}
    assert {"gopher_words", "c4_sentences", "fw_line_punct_ratio", "pii_emails"} <= names
    assert all(row["text"] for row in scored)


@pytest.mark.parametrize("recipe", ["gopher", "fineweb_no_url"])
def test_select_equals_a_full_run(scored_run, recipe, tmp_path):
    root, inputs = scored_run
    if recipe == "fineweb_no_url":
        text = ('[filters]\norder = ["language", "gopher_repetition", "gopher_quality", "c4", "fineweb"]\n'
                '[filters.language]\nkeep = ["en"]\nmin_score = 0.65\n[tokenizer]\nname = "o200k_base"\n')
    else:
        text = (Path(__file__).parents[1] / "schemas" / "builtin_recipes" / f"{recipe}.toml").read_text()
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    # The equal full run is the one without the language precheck: select starts from extracted text, so
    # pages the precheck would drop before extraction are dropped by the language filter instead.
    no_precheck = tmp_path / "no-precheck.toml"
    no_precheck.write_text(text.replace("[filters.language]\n", "[filters.language]\nprecheck_margin = 0\n"))
    assert "precheck_margin = 0" in no_precheck.read_text()
    selected = run_pipeline.select([str(root / "first"), "--config", str(path), "--output", str(tmp_path / "sel"),
                                    *IN_MEMORY])
    full = run(inputs, tmp_path / "full", "--config", str(no_precheck), *IN_MEMORY)
    sel_files, full_files = file_bytes(tmp_path / "sel"), file_bytes(tmp_path / "full")
    sel_manifest, full_manifest = (json.loads(f.pop("manifest.json")) for f in (sel_files, full_files))
    assert sel_files == full_files
    for manifest in (sel_manifest, full_manifest):  # the recipes differ in precheck_margin (and file name) only
        manifest["recipe"]["filters"]["language"].pop("precheck_margin")
        manifest["recipe"].pop("name")
        del manifest["recipe_sha256"]
    assert sel_manifest == full_manifest
    for key in ("records", "kept", "stages", "read", "tokens"):
        assert selected[key] == full[key]
    first = json.loads((root / "first" / "stats.json").read_text())
    assert 0 < selected["kept"] != first["kept"]  # the other recipe decided differently, from stored text


def test_select_refuses_recipes_that_change_extraction(scored_run, tmp_path):
    root, _ = scored_run
    path = tmp_path / "x.toml"
    path.write_text("[extract]\nfavor_precision = false\n")
    with pytest.raises(RecipeError, match="cannot change \\[extract\\]"):
        run_pipeline.select([str(root / "first"), "--config", str(path), "--output", str(tmp_path / "o")])
    with pytest.raises(run_pipeline.UsageError, match="not a tokenmill run"):
        run_pipeline.select([str(tmp_path), "--output", str(tmp_path / "o")])
    # A run made before 128-bit ids (no doc_id entry): its scored rows carry ids and file names of that scheme.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    manifest = json.loads((root / "first" / "manifest.json").read_text())
    del manifest["doc_id"]
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(run_pipeline.UsageError, match="has doc ids xxh3_64\\(base name, WARC-Record-ID\\)"):
        run_pipeline.select([str(legacy), "--output", str(tmp_path / "o")])


def test_the_readmes_select_example_works_as_written(demo_crawl, tmp_path):
    """The README's two commands and its my-thresholds.toml, taken from the README itself: a fineweb run with
    --keep-scored, then select with the stricter recipe; it keeps a subset of what the first run kept."""
    import re

    import tokenmill_cli

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (toml,) = re.findall(r"```toml\n(# my-thresholds\.toml.*?)```", readme, re.S)
    commands = re.search(r"```bash\n(tokenmill run [^\n]*--keep-scored)\n(tokenmill select [^\n#]*)", readme)
    assert commands, "the README's select example moved"
    (tmp_path / "my-thresholds.toml").write_text(toml)
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    for path in demo_crawl:
        (crawl / Path(path).name).write_bytes(Path(path).read_bytes())
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for line in commands.groups():
            argv = [a.strip("'") for a in line.split()[1:]] + IN_MEMORY
            assert tokenmill_cli.main(argv) == 0, line
    finally:
        os.chdir(cwd)
    first = json.loads((tmp_path / "out" / "stats.json").read_text())
    second = json.loads((tmp_path / "out2" / "stats.json").read_text())
    manifest = json.loads((tmp_path / "out2" / "manifest.json").read_text())
    assert manifest["recipe"]["filters"]["fineweb"]["line_punct_thr"] == 0.2
    assert manifest["recipe"]["tokenizer"]["name"] == "o200k_base"
    assert 0 < second["kept"] <= first["kept"]


def test_scored_parts_are_in_input_order_and_listed_in_the_manifest(scored_run):
    """--keep-scored writes scored/part-<n>, cut across input files every ledger_rows_per_part rows (issue 35) in
    input order: the first input file's documents sorted by doc id, then the next file's (select then reads
    them file by file), and the manifest lists every part with its rows, bytes and sha256: the finalize step
    waited for them."""
    import hashlib

    root, inputs = scored_run
    run_dir = root / "first"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    on_disk = sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / "scored").iterdir())
    assert [e["path"] for e in manifest["scored"]] == on_disk == ["scored/part-00000.parquet"]
    rows = []
    for entry in manifest["scored"]:
        data = (run_dir / entry["path"]).read_bytes()
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        table = pq.read_table(run_dir / entry["path"], columns=["doc_id", "source"])
        assert entry["rows"] == table.num_rows > 0
        rows += table.to_pylist()
    files = sorted({r["source"] for r in rows})
    assert len(files) == len(inputs) > 1
    keys = [(files.index(r["source"]), r["doc_id"]) for r in rows]
    assert keys == sorted(keys)
    runs_without = json.loads((root / "first" / "stats.json").read_text())
    assert sum(e["rows"] for e in manifest["scored"]) == runs_without["stages"]["filters"]["in"]


def test_select_stages_files_per_input_file_not_per_document(tmp_path, monkeypatch):
    """select reads scored/ part by part, so the staging writers (at most two files open, a new file when the
    source changes) make one file per input file and bundle, not one per document. With scored parts spread by
    a hash of the doc id (before 2026-12-07) this select wrote 105 document and 24 ledger staging files for the
    200 documents of 5 input files (two input files stay open together, so it takes more than two)."""
    from collections import Counter

    import outputs.staging as staging
    from demo.bench_crawl import build_bench_crawl

    build_bench_crawl(str(tmp_path / "crawl"), docs=200, shards=5, seed=1)
    inputs = [str(p) for p in sorted((tmp_path / "crawl").glob("*.warc.gz"))]
    run(inputs, tmp_path / "first", "--keep-scored", *IN_MEMORY)
    made: Counter[str] = Counter()
    original = staging.StagingFile.__init__

    def counting(self, path: str) -> None:
        if f"/{staging.STAGING}/" in path:
            made[path.rsplit("/", 1)[-1].split("-")[0]] += 1
        original(self, path)

    monkeypatch.setattr(staging.StagingFile, "__init__", counting)  # the in-memory runner runs DoFns here
    stats = run_pipeline.select([str(tmp_path / "first"), "--config", "gopher", "--output", str(tmp_path / "sel"),
                                 *IN_MEMORY])
    assert stats["stages"]["filters"]["in"] == 200
    # documents: one file per input file; ledger rows: the source's early rows and the filters' drops, per file
    assert 0 < made["docs"] <= len(inputs) and 0 < made["ledger"] <= 2 * len(inputs), made


def test_select_reads_a_run_made_before_scored_parts_were_per_file(scored_run, tmp_path):
    """A --keep-scored run made before 2026-12-07 has scored/part-NNNNN.parquet (documents of every input file in
    each part) and no `scored` entry in its manifest: select lists scored/ and writes the same bytes."""
    import shutil

    import pyarrow as pa

    root, _ = scored_run
    old = tmp_path / "old"
    shutil.copytree(root / "first", old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["scored"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    parts = sorted((old / "scored").glob("*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in parts]).sort_by("doc_id")
    for p in parts:
        p.unlink()
    pq.write_table(table, old / "scored" / "part-00000.parquet")
    for source, out in ((root / "first", tmp_path / "new-sel"), (old, tmp_path / "old-sel")):
        run_pipeline.select([str(source), "--config", "gopher", "--output", str(out), *IN_MEMORY])
    new_files, old_files = file_bytes(tmp_path / "new-sel"), file_bytes(tmp_path / "old-sel")
    assert new_files and new_files == old_files


def test_select_sizes_its_source_by_the_scored_parts_its_manifest_lists():
    """What select reads decides its local runner's mode and near-dedup rounds: the scored/ parts' listed bytes;
    a manifest without the list (runs before 2026-12-07) or with a size that is not a byte count is not known,
    which counts as large (never in one process, rounds unrolled)."""
    from driver.select_source import scored_bytes

    assert scored_bytes({"scored": [{"path": "scored/part-00000.parquet", "bytes": 10}, {"bytes": 5}]}) == 15
    assert scored_bytes({"scored": []}) == 0
    for manifest in ({}, {"scored": None}, {"scored": [{"bytes": "10"}]}, {"scored": [{"bytes": -1}]},
                     {"scored": [{"bytes": True}]}, {"scored": [{}]}, {"scored": ["scored/part-00000.parquet"]}):
        assert scored_bytes(manifest) is None, manifest
