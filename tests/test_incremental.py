"""Incremental releases: a release carries its dedup index; a later run drops the exact and near copies of
released documents (duplicate_of_release, cluster_id <release>:<doc_id>), keeps what is new, records the
lineage; a release it cannot use stops it at start in one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash

import run_pipeline
import tokenmill_cli
from demo.crawl import ARTICLES, page
from demo.warc_writer import WarcWriter
from schemas.records import DOC_ID_METADATA_KEY, DOC_ID_SCHEME, LEGACY_DOC_ID_SCHEME
from tests.test_pipeline import IN_MEMORY, ledger, run

NEAR = "[dedup.near]\nenabled = true\n"


def crawl_b(path: Path) -> dict[str, str]:
    """A later crawl: an exact copy and a near copy (one word changed) of pages crawl A (demo-0: the even
    articles) holds, and two pages it does not. {url: what it is}."""
    kinds = {}
    with path.open("wb") as f:
        w = WarcWriter(f, seed="crawl-b")
        w.warcinfo()
        for url, (lang, title, paragraphs), kind in (
            ("https://site0.example/en/article-0?recrawl", ARTICLES[0], "exact"),
            ("https://elsewhere.example/lighthouses", ARTICLES[2], "near"),
            ("https://site1.example/en/new-1", ARTICLES[1], "new"),
            ("https://site1.example/en/new-3", ARTICLES[3], "new"),
        ):
            if kind == "near":
                paragraphs = [paragraphs[0].replace("trimmed wicks", "trimmed lamps"), *paragraphs[1:]]
            w.response(url, page(title, paragraphs, lang, "b.example"))
            kinds[url] = kind
    return kinds


def write_recipe(folder: Path, name: str, against: list[Path], extra: str = NEAR) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f"[dedup]\nagainst = {json.dumps([str(p) for p in against])}\n" + extra)
    return path


@pytest.fixture(scope="module")
def chain(demo_crawl, tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    near = root / "near.toml"
    near.write_text(NEAR)
    run([demo_crawl[0]], root / "A", "--config", str(near), *IN_MEMORY)
    assert tokenmill_cli.main(["release", str(root / "A"), "--name", "web-a", "--version", "1", "--to",
                               str(root / "rel-A")]) == 0
    kinds = crawl_b(root / "crawl-b.warc.gz")
    stats = run([str(root / "crawl-b.warc.gz")], root / "B", "--config",
                str(write_recipe(root, "b", [root / "rel-A"])), *IN_MEMORY)
    assert tokenmill_cli.main(["release", str(root / "B"), "--name", "web-b", "--version", "1", "--to",
                               str(root / "rel-B")]) == 0
    return {"root": root, "kinds": kinds, "stats": stats}


def test_a_release_carries_its_dedup_index_and_verify_covers_it(chain, tmp_path, capsys):
    rel = chain["root"] / "rel-A"
    manifest = json.loads((rel / "manifest.json").read_text())
    index = manifest["dedup_index"]
    assert index["settings"]["minhash"] == {**index["settings"]["minhash"], "ngram": 5, "bands": 14, "rows": 8,
                                            "seed": 1}
    assert sum(f["rows"] for f in index["files"]) == manifest["totals"]["documents"] > 0
    assert index["bytes_per_document"] > 0
    table = pq.read_table([str(rel / f["path"]) for f in index["files"]])
    assert table.column_names == ["doc_id", "exact_key", "band_keys", "signature"]
    # The release says which ids it carries, as its run did (manifest and the doc_id column's metadata).
    assert manifest["doc_id"] == DOC_ID_SCHEME == json.loads((chain["root"] / "A" / "manifest.json").read_text())[
        "doc_id"]
    assert table.schema.field("doc_id").metadata == {DOC_ID_METADATA_KEY.encode(): DOC_ID_SCHEME.encode()}
    assert all(len(k) == 14 for k in table.column("band_keys").to_pylist())
    assert all(len(s) == 112 * 8 for s in table.column("signature").to_pylist())
    assert tokenmill_cli.main(["verify", str(rel)]) == 0
    damaged = tmp_path / "damaged"
    shutil.copytree(rel, damaged)
    part = damaged / index["files"][0]["path"]
    os.chmod(part, 0o644)
    part.write_bytes(part.read_bytes()[:-10] + b"0123456789")
    capsys.readouterr()
    assert tokenmill_cli.main(["verify", str(damaged)]) == 1
    assert "sha256 mismatch" in capsys.readouterr().out


def test_a_later_crawl_drops_the_released_copies_and_keeps_what_is_new(chain):
    root, kinds = chain["root"], chain["kinds"]
    rows = {r["url"]: r for r in ledger(root / "B")}
    released = {r["doc_id"] for r in ledger(root / "A") if r["kept"]}
    for url, kind in kinds.items():
        row = rows[url]
        if kind == "new":
            assert row["kept"], (url, row["stage"], row["reason"])
            continue
        assert row["reason"] == "duplicate_of_release", (url, row["stage"], row["reason"])
        assert row["stage"] == ("exact_dedup" if kind == "exact" else "near_dedup")
        name, doc_id = row["cluster_id"].split(":")
        assert name == "web-a" and doc_id in released
    (against,) = chain["stats"]["dedup_against"]
    assert (against["name"], against["exact_copies"], against["near_copies"]) == ("web-a", 1, 1)
    # Released files are only read: their bytes and read-only modes are as released.
    assert tokenmill_cli.main(["verify", str(root / "rel-A")]) == 0


def test_lineage_is_recorded_and_a_third_crawl_dedups_against_both(chain):
    root = chain["root"]
    manifest = json.loads((root / "rel-B" / "manifest.json").read_text())
    (lineage,) = manifest["deduplicated_against"]
    assert (lineage["name"], lineage["version"], lineage["path"]) == ("web-a", "1", str(root / "rel-A"))
    assert len(lineage["manifest_sha256"]) == 64
    assert "## Deduplicated against" in (root / "rel-B" / "README.md").read_text()
    # C holds a copy of a page B released and one A released: each is dropped against its own release, while
    # dedup within C stays per snapshot.
    path = root / "crawl-c.warc.gz"
    with path.open("wb") as f:
        w = WarcWriter(f, seed="crawl-c")
        w.warcinfo()
        w.response("https://c.example/1", page(ARTICLES[1][1], ARTICLES[1][2], "en", "c.example"))
        w.response("https://c.example/0", page(ARTICLES[0][1], ARTICLES[0][2], "en", "c.example"))
    recipe = write_recipe(root, "c", [root / "rel-A", root / "rel-B"], NEAR + 'scope = "snapshot"\n')
    stats = run([str(path)], root / "C", "--config", str(recipe), *IN_MEMORY)
    rows = {r["url"]: r for r in ledger(root / "C")}
    assert rows["https://c.example/1"]["cluster_id"].startswith("web-b:")
    assert rows["https://c.example/0"]["cluster_id"].startswith("web-a:")
    assert {a["name"]: a["exact_copies"] for a in stats["dedup_against"]} == {"web-a": 1, "web-b": 1}
    assert [a["name"] for a in json.loads((root / "C" / "manifest.json").read_text())["dedup_against"]] == [
        "web-a", "web-b"]


def test_a_release_of_64_bit_ids_is_deduplicated_against_all_the_same(chain, tmp_path):
    """A release made before ids were 128-bit (no `doc_id` entry in its manifest, 16-hex-digit ids in its dedup
    index): matching is on text keys, so a later crawl drops its copies all the same; their cluster ids cite
    the release's own ids, and the run's lineage names the release's id scheme beside its own."""
    root = chain["root"]
    old = tmp_path / "rel-old"
    shutil.copytree(root / "rel-A", old)
    for dirpath, _dirs, files in os.walk(old):
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["doc_id"]
    legacy = set()
    for entry in manifest["dedup_index"]["files"]:
        path = old / entry["path"]
        table = pq.read_table(path)
        ids = [xxhash.xxh3_64_hexdigest(i.encode()) for i in table.column("doc_id").to_pylist()]
        legacy.update(ids)
        pq.write_table(table.set_column(0, pa.field("doc_id", pa.string(), nullable=False), pa.array(ids)), path)
        entry.update(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), bytes=path.stat().st_size)
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert tokenmill_cli.main(["verify", str(old)]) == 0
    run([str(root / "crawl-b.warc.gz")], tmp_path / "B", "--config", str(write_recipe(tmp_path, "b", [old])),
        *IN_MEMORY)
    rows = {r["url"]: r for r in ledger(tmp_path / "B")}
    for url, kind in chain["kinds"].items():
        if kind != "new":
            name, doc_id = rows[url]["cluster_id"].split(":")
            assert rows[url]["reason"] == "duplicate_of_release" and name == "web-a" and doc_id in legacy
    run_manifest = json.loads((tmp_path / "B" / "manifest.json").read_text())
    assert run_manifest["doc_id"] == DOC_ID_SCHEME
    assert [a["doc_id"] for a in run_manifest["dedup_against"]] == [LEGACY_DOC_ID_SCHEME]


def _broken(root: Path, tmp_path: Path, how: str) -> Path:
    copy = tmp_path / f"rel-{how}"
    shutil.copytree(root / "rel-A", copy)
    for dirpath, _dirs, files in os.walk(copy):
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    manifest = json.loads((copy / "manifest.json").read_text())
    if how == "no-index":
        manifest["dedup_index"] = None
    elif how == "tokenizer":
        manifest["tokenizer"] = {**manifest["tokenizer"], "name": "o200k_base", "vocab_sha256": "f" * 64}
    elif how == "checksum":
        part = copy / manifest["dedup_index"]["files"][0]["path"]
        part.write_bytes(part.read_bytes() + b"x")
    elif how == "missing-file":
        (copy / manifest["dedup_index"]["files"][0]["path"]).unlink()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize(("how", "says"), [
    ("missing", "not a release (no manifest.json)"),
    ("run", "a run's output folder, not a release"),
    ("no-index", "the release carries no dedup index"),
    ("tokenizer", "its tokens are o200k_base"),
    ("minhash", "its MinHash index was made with"),
])
def test_a_release_the_run_cannot_use_stops_it_at_start(chain, demo_crawl, tmp_path, capsys, how, says):
    root = chain["root"]
    target = {"missing": tmp_path / "nothing", "run": root / "A", "minhash": root / "rel-A"}.get(how)
    if target is None:
        target = _broken(root, tmp_path, how)
    extra = NEAR + ("ngram = 4\n" if how == "minhash" else "")
    out = tmp_path / "o"
    argv = ["--input", demo_crawl[1], "--output", str(out), "--config", str(write_recipe(tmp_path, how, [target],
                                                                                           extra))]
    assert run_pipeline.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tokenmill: dedup.against: {target}: "), err
    assert says in err[0], err[0]
    assert not out.exists()


@pytest.mark.parametrize(("how", "says"), [("checksum", "fails its sha256 checksum"), ("missing-file", "is missing")])
def test_a_damaged_index_file_fails_the_run_in_one_line_naming_it(chain, demo_crawl, tmp_path, capsys, how, says):
    """The driver reads only the release's manifest (issue 35: hashing every index file held it for as long as
    reading the whole index takes); the worker reading an index file checks it against the manifest's sha256.
    A file that is missing or differs is the release's fault: the run fails (exit 1) in one line naming it,
    and leaves no manifest.json."""
    target = _broken(chain["root"], tmp_path, how)
    entry = json.loads((target / "manifest.json").read_text())["dedup_index"]["files"][0]["path"]
    out = tmp_path / "o"
    argv = ["--input", demo_crawl[1], "--output", str(out), "--config",
            str(write_recipe(tmp_path, how, [target])), *IN_MEMORY]
    capsys.readouterr()
    assert run_pipeline.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tokenmill: error: dedup.against: {target}: {entry} {says} (tokenmill verify {target})"], err
    assert not (out / "manifest.json").exists()
