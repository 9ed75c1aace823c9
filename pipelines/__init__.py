"""Beam wiring only: DoFns that call the pure cores, the shuffles for global work, and the output sinks.

Read `pipelines/build.py` top to bottom to follow one document from WARC record to token shard.
"""
