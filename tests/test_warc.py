from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from demo.warc_writer import WarcWriter
from ingest.warc import ReadError, SkippedRecord, read_warc, source_name, triage
from outputs.run_files import inputs_root
from schemas.recipe import ReadConfig
from schemas.records import CONTENT_RECORD_TYPES, Record, make_doc_id


def _records(path):
    with open(path, "rb") as f:
        return list(read_warc(f, str(path)))


def test_every_sample_file_reads_with_counts_matching_the_readme(warc_samples):
    expected_content = {
        "whirlwind.warc.gz": 1,
        "whirlwind.warc.wet.gz": 1,
        "whirlwind.warc.wat.gz": 0,
        "resiliparse-cc-main-2020-34.warc.gz": 16,
        "resiliparse-clueweb09-quirk.warc.gz": 29,
        "resiliparse-clipped.warc.gz": 1,
        "dolma-wget-sample-0000.warc.gz": 24,
        "dolma-wget-sample-0001.warc.gz": 17,
        "warcio-example.warc.gz": 1,
        "warcio-example-iana.org-chunked.warc": 1,
    }
    for name, n in expected_content.items():
        items = _records(warc_samples / name)
        records = [i for i in items if isinstance(i, Record)]
        assert len(records) == n, name
        errors = [i for i in items if isinstance(i, ReadError)]
        if name == "resiliparse-clipped.warc.gz":  # its gzip stream is cut: 88,275 bytes declared, 75,657 there
            assert records[0].cut_short > 12_000
            assert triage(records[0], ReadConfig()).reason == "record_cut_short"
            assert len(errors) == 1 and "file ends inside the record" in errors[0].error
        else:
            assert not errors and not any(r.cut_short for r in records), name


def test_record_fields_and_chunked_body(warc_samples):
    (rec,) = [r for r in _records(warc_samples / "warcio-example-iana.org-chunked.warc") if isinstance(r, Record)]
    assert rec.url == "http://www.iana.org/"
    assert rec.http_status == 200
    assert rec.content_type.startswith("text/html")
    assert rec.warc_record_id.startswith("<urn:uuid:")
    assert rec.crawl_date.startswith("2017-03-06")
    assert b"</html>" in rec.body.lower()  # chunked transfer encoding removed
    assert re.fullmatch("[0-9a-f]{32}", rec.doc_id) and rec.doc_id == make_doc_id(rec.source, rec.warc_record_id)


def test_warc_018_clueweb_is_read(warc_samples):
    records = [r for r in _records(warc_samples / "resiliparse-clueweb09-quirk.warc.gz") if isinstance(r, Record)]
    assert all(r.http_status == 200 and r.body for r in records)
    assert "EUC-JP" in records[0].content_type


def test_non_content_records_are_counted_not_dropped(warc_samples):
    items = _records(warc_samples / "warcio-example.warc.gz")
    skipped = sorted(i.record_type for i in items if isinstance(i, SkippedRecord))
    assert skipped == ["request", "request", "revisit", "warcinfo", "warcinfo"]


def test_garbage_after_records_keeps_the_records_before_it(tmp_path):
    buf = io.BytesIO()
    w = WarcWriter(buf)
    w.response("https://a.example/", b"<html><body><p>first</p></body></html>")
    w.response("https://b.example/", b"<html><body><p>second</p></body></html>")
    data = buf.getvalue() + gzip.compress(b"this is not a WARC record at all\r\n\r\n")
    items = list(read_warc(io.BytesIO(data), "broken.warc.gz"))
    assert [i.url for i in items if isinstance(i, Record)] == ["https://a.example/", "https://b.example/"]
    errors = [i for i in items if isinstance(i, ReadError)]
    assert len(errors) == 1 and errors[0].source == "broken.warc.gz" and errors[0].offset > 0


def _named_ids(paths: list[str]) -> list[list[str]]:
    """The doc ids of each file's records, the files named as a run names its inputs."""
    root = inputs_root(paths)
    out = []
    for path in paths:
        with open(path.removeprefix("gs://bucket/"), "rb") as f:
            out.append([r.doc_id for r in read_warc(f, source_name(path, root)) if isinstance(r, Record)])
    return out


def test_ids_are_stable_and_independent_of_directory(demo_crawl, tmp_path):
    """A file is named by its path below the inputs' common folder: the same crawl in another folder, or on a
    store, has the same names and ids."""
    copy = tmp_path / "elsewhere" / Path(demo_crawl[0]).name
    copy.parent.mkdir()
    copy.write_bytes(Path(demo_crawl[0]).read_bytes())
    a = _named_ids([demo_crawl[0]])
    assert a == _named_ids([str(copy)]) == _named_ids([f"gs://bucket/{copy}"]) and a[0]


def test_files_of_one_base_name_in_two_folders_are_two_sources(demo_crawl, tmp_path):
    """crawlA/part-0.warc.gz and crawlB/part-0.warc.gz: two names, so the same record id in both gives two ids;
    the names are the same wherever the whole crawl is."""
    paths = [f"/data/{crawl}/segments/part-0.warc.gz" for crawl in ("crawlA", "crawlB")]
    root = inputs_root(paths)
    names = [source_name(p, root) for p in paths]
    assert names == ["crawlA/segments/part-0.warc.gz", "crawlB/segments/part-0.warc.gz"]
    moved = [f"gs://bucket/crawl/{name}" for name in names]
    assert [source_name(p, inputs_root(moved)) for p in moved] == names
    assert make_doc_id(names[0], "<urn:uuid:1>") != make_doc_id(names[1], "<urn:uuid:1>")
    alone = "/data/crawlA/segments/part-0.warc.gz"  # a folder's files alone: their base names
    assert source_name(alone, inputs_root([alone, "/data/crawlA/segments/part-1.warc.gz"])) == "part-0.warc.gz"
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "part-0.warc.gz").write_bytes(Path(demo_crawl[0]).read_bytes())
    a, b = _named_ids([str(tmp_path / folder / "part-0.warc.gz") for folder in ("a", "b")])
    assert a and len(a) == len(b) and not set(a) & set(b)


def _record(**kw) -> Record:
    base = dict(doc_id="x", source="s", offset=0, record_type="response", url="u", warc_record_id="r",
                crawl_date="d", http_status=200, content_type="text/html; charset=utf-8", body=b"<html>hi</html>")
    base.update(kw)
    return Record(**base)


def test_triage_reasons():
    cfg = ReadConfig(max_body_bytes=100)
    assert triage(_record(), cfg) is None
    assert triage(_record(http_status=404), cfg).reason == "http_error"
    assert triage(_record(http_status=301), cfg).reason == "http_redirect"
    assert triage(_record(http_status=None), cfg).reason == "http_unparsable"
    assert triage(_record(content_type="image/png"), cfg).reason == "not_html"
    assert triage(_record(content_type="application/pdf"), cfg).detail == "application/pdf"
    assert triage(_record(body=b"  \r\n"), cfg).reason == "empty_body"
    big = triage(_record(body=b"x" * 101), cfg)
    assert big.reason == "too_large" and big.score == 101
    assert triage(_record(record_type="conversion", http_status=None, content_type="text/plain"), cfg) is None
    resource = _record(record_type="resource", http_status=None, content_type="text/plain")
    assert triage(resource, cfg).reason == "not_html"


def test_content_record_types_match_warcio(warc_samples):
    """Our count of content records equals an independent warcio count, file by file."""
    for path in sorted(warc_samples.glob("*.warc*")):
        with open(path, "rb") as f:
            n = sum(1 for r in ArchiveIterator(f) if r.rec_type in CONTENT_RECORD_TYPES)
        assert n == sum(1 for r in _records(path) if isinstance(r, Record)), path.name


def test_http_message_is_split_when_the_uri_is_not_http():
    buf = io.BytesIO()
    w = WarcWriter(buf)
    w.response("hard::some-page.html", b"<html><body><p>text</p></body></html>")
    w.response("urn:x:404", b"missing", status=404)
    (page, missing) = [r for r in read_warc(io.BytesIO(buf.getvalue()), "x.warc.gz") if isinstance(r, Record)]
    assert (page.http_status, page.content_type, page.body) == (
        200, "text/html; charset=utf-8", b"<html><body><p>text</p></body></html>")
    assert missing.http_status == 404


def test_chunked_body_is_decoded_in_the_fallback():
    from ingest.warc import split_http_message

    msg = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert split_http_message(msg) == (200, "text/html", b"hello world")


def test_a_file_cut_anywhere_is_reported_and_the_records_before_the_cut_stand():
    """Cut a gzip-per-record file and a plain one at every 7th byte: the records wholly before the cut are read
    unchanged, and the cut is silent only when every record that starts before it was read whole (a cut in the
    gzip trailer or a record's closing blank lines loses nothing). Otherwise the file gets a ReadError or its
    last record is marked cut short (and dropped by triage); warcio alone ends silently inside a gzip member."""
    buf = io.BytesIO()
    w = WarcWriter(buf, seed="cut")
    for i in range(4):
        w.response(f"https://cut.example/{i}", f"<html><body><p>page {i} {'text ' * 80}</p></body></html>".encode())
    for data in (buf.getvalue(), gzip.decompress(buf.getvalue())):
        whole = [i for i in read_warc(io.BytesIO(data), "x.warc") if isinstance(i, Record)]
        assert len(whole) == 4
        for cut in range(1, len(data), 7):
            items = list(read_warc(io.BytesIO(data[:cut]), "x.warc"))
            records = [i for i in items if isinstance(i, Record)]
            errors = [i for i in items if isinstance(i, ReadError)]
            intact = [r for r in records if not r.cut_short]
            assert [r.body for r in intact] == [r.body for r in whole[: len(intact)]], cut
            started = sum(1 for r in whole if r.offset < cut)
            if not errors and not any(r.cut_short for r in records):
                assert len(intact) == started, cut


def test_a_file_that_is_not_a_warc_is_one_read_error_not_records():
    """warcio reads almost anything as records: a text file named .warc.gz became ten 'responses'. A file whose
    first bytes (plain or gzip) are not a WARC record's first line is one ReadError at offset 0."""
    text = b"these are my notes, not a crawl\n" * 20
    for raw in (text, gzip.compress(text)):
        items = list(read_warc(io.BytesIO(raw), "notes.warc.gz"))
        assert len(items) == 1 and isinstance(items[0], ReadError)
        assert items[0].offset == 0 and items[0].error.startswith("not a WARC file: it starts with b'these are my")
    buf = io.BytesIO()
    WarcWriter(buf).response("https://example.com/", b"<p>hi</p>")
    assert [type(i) for i in read_warc(io.BytesIO(buf.getvalue()), "a.warc.gz")] == [Record]
    assert [type(i) for i in read_warc(io.BytesIO(gzip.decompress(buf.getvalue())), "a.warc")] == [Record]


class _Dropping:
    """A local file whose connection 'drops' after `after` bytes (`later` bytes from the second opening on) on
    each of its first `drops` openings."""

    def __init__(self, path, drops: int, after: int = 700, later: int | None = None) -> None:
        self.path, self.drops, self.after, self.opened = path, drops, after, 0
        self.later = after if later is None else later  # bytes before the drop on the second opening on

    def open_at(self, position: int):
        import io

        self.opened += 1
        f = open(self.path, "rb")
        f.seek(position)
        if self.opened > self.drops:
            return f
        budget = [self.after if self.opened == 1 else self.later]

        class Stream(io.RawIOBase):
            def readinto(self, buffer):
                if budget[0] <= 0:
                    raise ConnectionResetError(104, "Connection reset by peer")
                data = f.read(min(len(buffer), budget[0]))
                budget[0] -= len(data)
                buffer[: len(data)] = data
                return len(data)

            def close(self):
                f.close()
                super().close()

        return Stream()


def test_a_store_failing_part_way_is_resumed_or_raised_never_a_file_error(demo_crawl, monkeypatch):
    """A read that fails part way resumes at the byte it reached (same records as a clean read); a store that
    keeps failing raises StoreError for the runner to retry the bundle. Before, read_warc turned any
    exception into a ReadError: the rest of the file silently lost to a dropped connection."""
    import storage.retry
    from storage.retry import RetryingReader, StoreError

    monkeypatch.setattr(storage.retry, "FIRST_DELAY_S", 0.01)
    path = demo_crawl[0]
    with open(path, "rb") as f:
        clean = [(r.doc_id, r.body) for r in read_warc(f, path) if isinstance(r, Record)]
    flaky = _Dropping(path, drops=2)
    reader = RetryingReader(flaky.open_at, path)
    items = list(read_warc(reader, path))
    assert not [i for i in items if isinstance(i, ReadError)]
    assert [(r.doc_id, r.body) for r in items if isinstance(r, Record)] == clean
    assert reader.reopened == 2
    broken = RetryingReader(_Dropping(path, drops=10**6, later=0).open_at, path)  # gone after 700 bytes
    with pytest.raises(StoreError, match="failed 4 times"):
        list(read_warc(broken, path))
