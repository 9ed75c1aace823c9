"""Minimal WARC/1.1 writer (one gzip member per record, as Common Crawl ships them) for demos and tests."""

from __future__ import annotations

import gzip
import uuid
from typing import BinaryIO


def _record(warc_type: str, url: str, date: str, payload: bytes, content_type: str, record_id: str) -> bytes:
    headers = [
        "WARC/1.1",
        f"WARC-Type: {warc_type}",
        f"WARC-Record-ID: <urn:uuid:{record_id}>",
        f"WARC-Date: {date}",
    ]
    if url:
        headers.append(f"WARC-Target-URI: {url}")
    headers += [f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + payload + b"\r\n\r\n"


class WarcWriter:
    """Writes records to a binary stream; record ids are derived from a seed so files are reproducible."""

    def __init__(self, stream: BinaryIO, seed: str = "tokenmill", date: str = "2026-01-01T00:00:00Z") -> None:
        self.stream = stream
        self.seed = seed
        self.date = date
        self.count = 0

    def _id(self) -> str:
        self.count += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.seed}/{self.count}"))

    def _write(self, raw: bytes) -> None:
        self.stream.write(gzip.compress(raw, mtime=0))

    def warcinfo(self, text: str = "software: tokenmill demo") -> None:
        self._write(_record("warcinfo", "", self.date, text.encode(), "application/warc-fields", self._id()))

    def metadata(self, url: str, text: str) -> None:
        self._write(_record("metadata", url, self.date, text.encode(), "application/warc-fields", self._id()))

    def response(
        self, url: str, body: bytes, *, status: int = 200, content_type: str = "text/html; charset=utf-8",
        extra_headers: dict[str, str] | None = None,
    ) -> str:
        """Write a response record; return its WARC-Record-ID (a truth file names records by it)."""
        reason = {200: "OK", 301: "Moved Permanently", 404: "Not Found", 500: "Internal Server Error"}
        lines = [f"HTTP/1.1 {status} {reason.get(status, 'Status')}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (extra_headers or {}).items()]
        http = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        record_id = self._id()
        self._write(_record("response", url, self.date, http, "application/http; msgtype=response", record_id))
        return f"<urn:uuid:{record_id}>"

    def request(self, url: str) -> None:
        http = f"GET / HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n\r\n".encode()
        self._write(_record("request", url, self.date, http, "application/http; msgtype=request", self._id()))

    def conversion(self, url: str, text: str, record_id: str | None = None) -> None:
        """A WET-style text record; `record_id` (a uuid, or `<urn:uuid:...>`) names it, else one is derived."""
        rid = record_id.removeprefix("<urn:uuid:").removesuffix(">") if record_id else self._id()
        self._write(_record("conversion", url, self.date, text.encode("utf-8"), "text/plain", rid))
