"""One bad record never stops a job. Every hostile single record tests/fuzz makes (hostile_records: Content-Encoding
and WARC-member bombs, codecs that are no page encoding in a <meta> and in the header, chunked bodies with bogus
sizes, ESC/NUL/bidi characters in the target URI, the Content-Type and the text, huge and endless headers,
empty and cut records, Content-Lengths beyond the file, NUL bytes, seeded random mutations), followed by a good
record, as gzip members and plain: read_warc, triage and decode_body never raise, reading stays within a bound
far below what a bomb inflates to, and the good record after it is read whole, unless the damage is in the
WARC framing itself (then the file ends with a ReadError, as a file that cannot be framed further does).

TOKENMILL_FUZZ_SEED=N runs other random mutations."""

from __future__ import annotations

import io
import os
import tracemalloc

import pytest

from ingest.decode import decode_body
from ingest.warc import ReadError, Record, read_warc, triage
from schemas.recipe import ReadConfig
from tests.fuzz.broken_warcs import GOOD_URL, good_record, hostile_records

BOMB = 64 << 20  # what each bomb inflates to
LIMIT = 1 << 20  # max_body_bytes
MEMORY = 24 << 20  # the most Python may hold while reading one file
CONFIG = ReadConfig(max_body_bytes=LIMIT)
GOOD_BODY = good_record().partition(b"\r\n\r\n")[2].partition(b"\r\n\r\n")[2][: -len(b"\r\n\r\n")]


@pytest.fixture(scope="module")
def cases():
    return hostile_records(BOMB, seed=int(os.environ.get("TOKENMILL_FUZZ_SEED", "0")))


def _read(data: bytes, name: str) -> tuple[list, list[tuple[str, str]], int]:
    """read_warc's items, each record's triage reason and decoded codec, and the peak of traced memory."""
    tracemalloc.start()
    try:
        items = list(read_warc(io.BytesIO(data), name, LIMIT))
        outcomes = []
        for item in items:
            if isinstance(item, Record):
                decision = triage(item, CONFIG)
                _text, codec = decode_body(item.body, item.content_type)
                outcomes.append((decision.reason if decision else "", codec))
        return items, outcomes, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_no_hostile_record_raises_costs_memory_or_takes_the_next_record(cases):
    assert len(cases) > 100
    failures = []
    for case in cases:
        for compressed in (True, False) if case.plain else (True,):
            where = f"{case.name} ({'gzip members' if compressed else 'plain'}: {case.what})"
            try:
                items, _outcomes, peak = _read(case.file(compressed), f"{case.name}.warc")
            except Exception as exc:  # noqa: BLE001 - collected: every case is run and named
                failures.append(f"{where}: raised {type(exc).__name__}: {exc}")
                continue
            if peak > MEMORY:
                failures.append(f"{where}: {peak >> 20} MiB held while reading")
            good = [i for i in items if isinstance(i, Record) and i.url == GOOD_URL]
            whole = (len(good) == 1 and good[0].body == GOOD_BODY and good[0].http_status == 200
                     and triage(good[0], CONFIG) is None)
            errors = [i for i in items if isinstance(i, ReadError)]
            if case.ends_file is False and (not whole or errors):
                failures.append(f"{where}: the good record after it was not read whole ({items[-2:]})")
            if case.ends_file and (not errors or good):
                failures.append(f"{where}: the framing damage was not a ReadError ending the file ({items[-2:]})")
    assert not failures, "\n".join(failures)


def test_the_bombs_are_among_the_cases_and_dropped_as_too_large(cases):
    by_name = {case.name: case for case in cases}
    for name in ("gzip-bomb", "deflate-bomb", "raw-deflate-bomb", "chunked-gzip-bomb", "member-bomb",
                 "member-bomb-one-chunk"):
        _items, outcomes, _peak = _read(by_name[name].file(True), name)
        assert outcomes[0][0] == "too_large" and outcomes[1] == ("", "utf-8"), name
    for name in ("meta-punycode", "header-punycode", "meta-base64", "meta-utf-7"):
        _items, outcomes, _peak = _read(by_name[name].file(True), name)
        assert outcomes[0][1] not in ("punycode", "base64", "utf-7"), (name, outcomes)
