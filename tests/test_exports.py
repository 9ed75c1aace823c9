"""`tokenmill export`: a release of the 300-page bench crawl and a two-source mixture of releases, written as
Megatron-Core indexed datasets and as a Hugging Face dataset folder, then read back by the stacks' own readers
(megatron-core's IndexedDataset, datasets.load_dataset; tests/readers/) token for token against the release's
shards; verify, resume, and the inputs that must stop an export with one line and nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

import tokenmill_cli
from exports import megatron as mg
from exports.run import export
from release.publish import release

FINEWEB2 = {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}  # FineWeb-2's rehydration table


@pytest.fixture(scope="module")
def sources(runs, tmp_path_factory):
    """Two releases of the 300-page crawl's runs and a mixture of them: web's English documents repeated by
    FineWeb-2's table at 0.7, other's documents under 1,500 tokens at 0.3."""
    root = tmp_path_factory.mktemp("export-sources")
    release(str(runs / "fw"), "web", "1.0.0", str(root / "web"))
    release(str(runs / "default"), "other", "1.0.0", str(root / "other"))
    spec = root / "mix.toml"
    spec.write_text(
        f'name = "m"\ntotal_tokens = 300000\nseed = 0\n[[sources]]\npath = "{root / "web"}"\nweight = 0.7\n'
        "where = \"language = 'en'\"\n[sources.repeat_by_cluster_size]\n"
        + "".join(f"{k} = {v}\n" for k, v in FINEWEB2.items())
        + f'[[sources]]\npath = "{root / "other"}"\nweight = 0.3\nwhere = "token_count < 1500"\n')
    assert tokenmill_cli.main(["mix", str(spec), "--to", str(root / "mix")]) == 0
    return root


def _expected(release_dir, where=None, repeat=None) -> dict[int, list[dict]]:
    """Per shard (in the release's manifest order), the documents an export must hold, from the shards as
    pyarrow reads them: rows kept by `where` (a Python predicate), each repeated by `repeat` on cluster_size."""
    manifest = json.loads((release_dir / "manifest.json").read_text())
    out = {}
    for i, f in enumerate(manifest["files"]):
        docs = []
        for row in pq.read_table(release_dir / f["path"]).to_pylist():
            if where is None or where(row):
                copies = FINEWEB2[max(k for k in FINEWEB2 if k <= (row["cluster_size"] or 1))] if repeat else 1
                docs += [row] * copies
        out[i] = docs
    return out


@pytest.fixture(scope="module")
def readers():
    """The readers' interpreter (tests/readers/venv.py builds their environment once per machine)."""
    from tests.readers.venv import readers_python

    try:
        return readers_python()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the readers' environment could not be built: {exc}")
        pytest.skip(f"the readers' environment could not be built (needs PyPI): {exc}")


def _read_back(readers, fmt: str, folder, *configs: str) -> dict:
    done = subprocess.run([str(readers), os.path.join(os.path.dirname(__file__), "readers", "read_back.py"), fmt,
                           str(folder), *configs], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                               "HF_HOME": str(folder) + ".hf-home"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


CASES = {
    "release": lambda root: [("web", root / "web", _expected(root / "web"), 1.0)],
    "mixture": lambda root: [
        ("web", root / "web", _expected(root / "web", lambda r: r["language"] == "en", True), 0.7),
        ("other", root / "other", _expected(root / "other", lambda r: r["token_count"] < 1500), 0.3)],
}


@pytest.mark.parametrize("kind", CASES)
def test_megatron_reads_every_document_back_token_for_token(sources, readers, kind, tmp_path, capsys):
    src = sources / ("web" if kind == "release" else "mix")
    out = tmp_path / "megatron"
    assert tokenmill_cli.main(["export", str(src), "--format", "megatron", "--to", str(out)]) == 0
    assert "--data-args-path" in capsys.readouterr().out
    got = _read_back(readers, "megatron", out)
    manifest = json.loads((out / "manifest.json").read_text())
    labels = {s["path"]: s["label"] for s in manifest["sources"]}
    blend = {p: w for w, p in got["blend"]}
    for _name, rel, expected, share in CASES[kind](sources):
        label = labels[str(rel)]
        tokens_in_source = sum(len(d["tokens"]) for docs in expected.values() for d in docs)
        source_weight = 0.0
        for i, docs in expected.items():
            prefix = f"{out}/{label}/{i:05d}"
            if not docs:  # a shard whose rows `where` leaves out writes no pair
                assert prefix not in got["pairs"]
                continue
            pair = got["pairs"][prefix]
            assert pair["dtype"] == "int32"  # cl100k's 100,277 ids: what Megatron picks (DType.optimal_dtype)
            assert pair["document_indices_ok"] and pair["documents"] == len(docs)
            assert pair["tokens"] == [d["tokens"] for d in docs]
            assert all(t[-1] == 100257 for t in pair["tokens"])  # each document ends with end-of-text
            source_weight += blend[prefix]
            assert blend[prefix] == pytest.approx(share * sum(len(d["tokens"]) for d in docs) / tokens_in_source,
                                                  rel=1e-9)
        assert source_weight == pytest.approx(share, rel=1e-9)
    nemo = (out / "blend.nemo.yaml").read_text().split("data_prefix:")[1].split()
    assert [float(x) for x in nemo[1::4]] == pytest.approx([w for w, _ in got["blend"]], rel=1e-9)
    assert [json.loads(x) for x in nemo[3::4]] == [p for _, p in got["blend"]]
    assert tokenmill_cli.main(["verify", str(out)]) == 0


@pytest.mark.parametrize("kind", CASES)
def test_datasets_loads_the_hf_folder_with_its_rows_features_and_card(sources, readers, kind, tmp_path):
    src = sources / ("web" if kind == "release" else "mix")
    out = tmp_path / "hf"
    assert tokenmill_cli.main(["export", str(src), "--format", "hf", "--to", str(out), "--license", "odc-by"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    configs = [s["label"] for s in manifest["sources"]] if kind == "mixture" else []
    got = _read_back(readers, "hf", out, *configs)
    card = got["card"]
    assert card["license"] == "odc-by" and card["task_categories"] == ["text-generation"]
    assert card["size_categories"] == ["n<1K"]
    languages = set()
    for (_name, _rel, expected, _share), config in zip(CASES[kind](sources), configs or ["default"], strict=True):
        docs = [d for i in sorted(expected) for d in expected[i]]
        read = got["configs"][config]
        assert read["rows"] == len(docs)
        assert read["input_ids"] == [d["tokens"] for d in docs]
        assert read["doc_id"] == [d["doc_id"] for d in docs]
        assert read["features"]["input_ids"] == "List(Value('int32'))"
        for column in ("doc_id", "url", "language", "language_score", "token_count", "cluster_size", "topic"):
            assert column in read["features"]
        languages |= {d["language"] for d in docs}
    assert set(card["language"]) == languages
    if kind == "mixture":  # the card's interleave_datasets lines run as written
        assert got["interleaved_rows"] > 0
    assert [c["config_name"] for c in card["configs"]] == (configs or ["default"])
    assert tokenmill_cli.main(["verify", str(out)]) == 0


def _same_documents(read: dict, docs: list[dict]) -> None:
    """What a reader gave back (tokens as int32, doc ids, languages, language scores) is the documents'."""
    assert read["dtype"] == "int32"
    assert read["tokens"] == [d["tokens"] for d in docs]
    assert read["doc_id"] == [d["doc_id"] for d in docs]
    assert read["language"] == [d["language"] for d in docs]
    assert read["language_score"] == [d["language_score"] for d in docs]


@pytest.mark.parametrize("kind", CASES)
def test_streaming_reads_every_mds_sample_back(sources, readers, kind, tmp_path, capsys):
    src = sources / ("web" if kind == "release" else "mix")
    out = tmp_path / "mds"
    assert tokenmill_cli.main(["export", str(src), "--format", "mds", "--to", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    streams = [s["label"] for s in manifest["sources"]] if kind == "mixture" else []
    got = _read_back(readers, "mds", out, *streams)
    total = 0
    for (_name, _rel, expected, share), stream in zip(CASES[kind](sources), streams or ["default"], strict=True):
        docs = [d for i in sorted(expected) for d in expected[i]]
        read = got["streams"][stream]
        assert read["samples"] == len(docs)
        _same_documents(read, docs)
        assert got["yaml"][stream if kind == "mixture" else "web-1.0.0"]["proportion"] == pytest.approx(share)
        total += len(docs)
    assert got["yaml_samples"] > 0 and (kind == "mixture" or got["yaml_samples"] == total)
    assert tokenmill_cli.main(["verify", str(out)]) == 0


@pytest.mark.parametrize("kind", CASES)
def test_litdata_reads_every_item_back(sources, readers, kind, tmp_path):
    src = sources / ("web" if kind == "release" else "mix")
    out = tmp_path / "litdata"
    assert tokenmill_cli.main(["export", str(src), "--format", "litdata", "--to", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    datasets = [s["label"] for s in manifest["sources"]] if kind == "mixture" else []
    got = _read_back(readers, "litdata", out, *datasets)
    for (_name, _rel, expected, share), name, listed in zip(CASES[kind](sources), datasets or ["default"],
                                                           got["combined"], strict=True):
        docs = [d for i in sorted(expected) for d in expected[i]]
        read = got["datasets"][name]
        assert read["items"] == len(docs)
        _same_documents(read, docs)
        assert listed["weight"] == pytest.approx(share)
    assert got["combined_drawn"] == 50
    assert tokenmill_cli.main(["verify", str(out)]) == 0


def test_verify_finds_a_changed_byte_and_a_stray_file(sources, tmp_path, capsys):
    out = tmp_path / "x"
    export(str(sources / "web"), "megatron", str(out), log=lambda _: None)
    assert tokenmill_cli.main(["verify", str(out)]) == 0
    data = out / "web-1.0.0" / "00000.bin"
    raw = bytearray(data.read_bytes())
    raw[10] ^= 1
    data.write_bytes(bytes(raw))
    (out / "stray.bin").write_bytes(b"x")
    capsys.readouterr()
    assert tokenmill_cli.main(["verify", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "MISMATCH web-1.0.0/00000.bin: sha256 mismatch" in printed
    assert "MISMATCH stray.bin: not listed in the manifest" in printed


def test_a_stopped_export_resumes_with_the_parts_it_lacks(sources, tmp_path, monkeypatch):
    fresh, stopped = tmp_path / "fresh", tmp_path / "stopped"
    export(str(sources / "mix"), "megatron", str(fresh), log=lambda _: None)
    calls = []
    real = mg.write_part

    def stop_at_the_third(src, part, build, dtype):
        calls.append(part.index)
        if len(calls) == 3:
            raise KeyboardInterrupt  # a stop from outside, part way through
        return real(src, part, build, dtype)

    monkeypatch.setattr(mg, "write_part", stop_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        export(str(sources / "mix"), "megatron", str(stopped), threads=1, log=lambda _: None)
    assert not stopped.exists()  # nothing at the target until it is complete
    monkeypatch.setattr(mg, "write_part", real)
    written, said = [], []
    monkeypatch.setattr(mg, "write_part", lambda *a: written.append(a[1].index) or real(*a))
    export(str(sources / "mix"), "megatron", str(stopped), threads=1, log=said.append)
    # Parts 0 and 1 were recorded; the part the worker thread took up while the stop reached the caller may
    # have finished and recorded itself too.
    assert said in (["  resuming: 2 of 5 parts already written"], ["  resuming: 3 of 5 parts already written"])
    assert len(written) == 5 - int(said[0].split()[1])
    a, b = (json.loads((d / "manifest.json").read_text()) for d in (fresh, stopped))
    pairs = [[(f["path"], f["sha256"]) for f in m["files"] if f["path"].endswith((".bin", ".idx"))] for m in (a, b)]
    assert pairs[0] == pairs[1] and len(pairs[0]) == 10 and a["totals"] == b["totals"]
    assert not (stopped / ".progress").exists() and tokenmill_cli.main(["verify", str(stopped)]) == 0


def test_the_same_export_again_is_a_checked_no_op_and_a_cut_record_is_redone(sources, tmp_path, capsys):
    out = tmp_path / "again"
    assert tokenmill_cli.main(["export", str(sources / "web"), "--format", "litdata", "--to", str(out)]) == 0
    first = (out / "manifest.json").read_bytes()
    capsys.readouterr()
    assert tokenmill_cli.main(["export", str(sources / "web"), "--format", "litdata", "--to", str(out)]) == 0
    assert "already holds this export (verified), nothing written" in capsys.readouterr().out
    assert (out / "manifest.json").read_bytes() == first
    assert tokenmill_cli.main(["export", str(sources / "web"), "--format", "mds", "--to", str(out)]) == 2
    assert "already holds another export" in capsys.readouterr().err
    # A stop that left one record cut short and one part's file cut short: both parts are written again.
    cut = tmp_path / "cut"
    export(str(sources / "web"), "megatron", str(cut), log=lambda _: None)
    build = tmp_path / "cut.tmp-export"
    os.rename(cut, build)
    (build / ".progress").mkdir()
    (build / ".progress" / "export.json").write_text(json.dumps(json.loads((build / "manifest.json").read_text())[
        "identity"], sort_keys=True))
    manifest = json.loads((build / "manifest.json").read_text())
    pairs = {}
    for f in manifest["files"]:
        if f["path"].endswith((".bin", ".idx")):
            pairs.setdefault(int(f["path"].split("/")[1][:5]), []).append(f)
    for part, entries in pairs.items():
        (build / ".progress" / f"part-{part:06d}.json").write_text(json.dumps({"part": part, "files": entries}))
    (build / ".progress" / "part-000000.json").write_text('{"part": 0, "fil')  # cut short
    binary = build / pairs[1][0]["path"]
    os.chmod(binary, 0o644)
    raw = bytearray(binary.read_bytes())
    raw[-1] ^= 1  # same size, other bytes: a file a lost machine never finished writing
    binary.write_bytes(bytes(raw))
    (build / "manifest.json").unlink()
    said: list[str] = []
    export(str(sources / "web"), "megatron", str(cut), log=said.append)
    assert said == [f"  resuming: {len(pairs) - 2} of {len(pairs)} parts already written"]
    assert json.loads((cut / "manifest.json").read_text())["files"] == manifest["files"]
    assert tokenmill_cli.main(["verify", str(cut)]) == 0


def _nothing_written(out) -> bool:
    return not out.exists() and not os.path.exists(f"{out}.tmp-export")


def test_bad_inputs_stop_with_one_line_exit_2_and_nothing_written(sources, runs, tmp_path, capsys):
    out = tmp_path / "out"

    def refused(*argv) -> str:
        capsys.readouterr()
        assert tokenmill_cli.main(["export", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, err
        return err

    # a vocabulary that does not fit the dtype asked for: cl100k's 100,277 ids in uint16
    assert "do not fit megatron's uint16" in refused(str(sources / "web"), "--format", "megatron", "--to", str(out),
                                                     "--dtype", "uint16")
    assert _nothing_written(out)
    # a target that is not empty
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert "is not empty" in refused(str(sources / "web"), "--format", "hf", "--to", str(busy))
    assert sorted(os.listdir(busy)) == ["keep.txt"] and not os.path.exists(f"{busy}.tmp-export")
    # a Megatron target whose path Megatron's --data-path would split
    assert "splits on whitespace" in refused(str(sources / "web"), "--format", "megatron", "--to",
                                             str(tmp_path / "two words"))
    assert _nothing_written(tmp_path / "two words")
    # --dtype with a format that has one id type
    assert "--dtype is for --format megatron" in refused(str(sources / "web"), "--format", "mds", "--to", str(out),
                                                         "--dtype", "int32")
    assert _nothing_written(out)
    # a release that fails verify (one shard's byte changed)
    damaged = tmp_path / "damaged"
    shutil.copytree(sources / "web", damaged)
    shard = damaged / json.loads((damaged / "manifest.json").read_text())["files"][0]["path"]
    os.chmod(shard, 0o644)
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 1
    shard.write_bytes(bytes(raw))
    assert "fails verify" in refused(str(damaged), "--format", "megatron", "--to", str(out))
    assert _nothing_written(out)
    # a run's folder, not a release
    assert "run's output folder" in refused(str(runs / "fw"), "--format", "hf", "--to", str(out))
    assert _nothing_written(out)
    # a hostile license id (it goes into the card's YAML)
    assert "--license" in refused(str(sources / "web"), "--format", "hf", "--to", str(out), "--license",
                                  "mit\nconfigs: []")
    assert _nothing_written(out)


def test_the_index_is_megatrons_layout_byte_for_byte():
    """The .idx of two documents, against the layout megatron-core's _IndexWriter writes (read at 0.16.1)."""
    import io
    import struct

    sink = io.BytesIO()
    w = mg.IndexedDatasetWriter(sink, np.dtype(np.uint16))
    w.add(np.array([5, 6, 7, 8, 9], np.uint32), np.array([2, 3]))
    assert sink.getvalue() == np.array([5, 6, 7, 8, 9], np.uint16).tobytes()
    want = (b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + struct.pack("<B", 8) + struct.pack("<Q", 2)
            + struct.pack("<Q", 3) + np.array([2, 3], np.int32).tobytes() + np.array([0, 4], np.int64).tobytes()
            + np.array([0, 1, 2], np.int64).tobytes())
    assert w.index() == want
    with pytest.raises(ValueError, match="does not fit"):
        w.add(np.array([70000], np.uint32), np.array([1]))
    assert mg.megatron_dtype(65_499) == np.uint16 and mg.megatron_dtype(65_500) == np.int32
