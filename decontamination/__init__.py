"""Decontamination: documents that share word n-grams with benchmark items (test sets) are dropped or flagged.

text.py normalizes and hashes words and n-grams (one definition for benchmark items and pages); sources.py reads
benchmark files (jsonl, Parquet, txt) into items and names the file and row of anything it cannot read;
index.py builds the n-gram index once per run and matches a page against it.
"""
