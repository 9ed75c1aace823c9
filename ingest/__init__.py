"""From bytes on disk to text: WARC framing, record triage, charset decoding, main-text extraction.

Pure Python, no Beam: `pipelines/` calls these per record.
"""
